//! Checkpoints (Burnpack) and safetensors import/export.

use std::path::PathBuf;

use wellspring_core::{Dataset, Features, Subset, Targets};
use wellspring_models::{Mode, Model, ModelConfig, TrainConfig, Trainer, evaluate, train};

use crate::{cpu, mnist};

fn small_resnet() -> ModelConfig {
    ModelConfig::ResNet9 {
        in_channels: 1,
        n_out: 10,
        width: 2,
    }
}

fn mnist32(n: usize) -> Dataset {
    // MNIST padded to 32x32 so ResNet-9's three halvings divide evenly.
    let d = mnist("train", n);
    let mut v = Vec::with_capacity(n * 1024);
    for i in 0..n {
        let row = d.features().dense_row(i);
        for y in 0..32 {
            for x in 0..32 {
                let inside = (2..30).contains(&y) && (2..30).contains(&x);
                v.push(if inside {
                    row[(y - 2) * 28 + (x - 2)]
                } else {
                    0.0
                });
            }
        }
    }
    d.with_features(Features::Dense {
        values: v,
        shape: vec![1, 32, 32],
    })
    .unwrap()
}

fn trained_resnet() -> (Model, Dataset) {
    let device = cpu();
    let data = mnist32(64);
    let m = Model::new(small_resnet(), 3, &device).unwrap();
    let cfg = TrainConfig::params()
        .batch_size(16)
        .lr(0.05)
        .check()
        .unwrap();
    (
        train(m, &data, None, &cfg, &device, None).unwrap().model,
        data,
    )
}

#[test]
fn save_load_round_trips_weights_buffers_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resnet.ckpt");
    let (m, data) = trained_resnet();
    m.save(&path).unwrap();
    let back = Model::load(&path, &cpu()).unwrap();
    assert_eq!(back.config, m.config);
    assert_eq!(back.params_flat(), m.params_flat());
    // Eval uses the BatchNorm running statistics, so equal losses mean the
    // buffers came back too.
    let a = evaluate(&m, &data, &cpu()).unwrap();
    let b = evaluate(&back, &data, &cpu()).unwrap();
    assert_eq!(a, b);
    assert!(
        !dir.path().join("resnet.ckpt.bpk").exists(),
        "path is used as given"
    );
}

#[test]
fn broken_checkpoints_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let device = cpu();
    let e = Model::load(dir.path().join("nope.bpk"), &device)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope.bpk") && e.contains("no such"), "{e}");

    let junk = dir.path().join("junk.bpk");
    std::fs::write(&junk, b"definitely not a checkpoint").unwrap();
    let e = Model::load(&junk, &device).unwrap_err().to_string();
    assert!(e.contains("junk.bpk") && e.contains("Burnpack"), "{e}");

    let m = Model::new(ModelConfig::mnist_mlp(), 0, &device).unwrap();
    let good = dir.path().join("good.bpk");
    m.save(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();

    let cut = dir.path().join("cut.bpk");
    std::fs::write(&cut, &bytes[..bytes.len() - 1000]).unwrap();
    let e = Model::load(&cut, &device).unwrap_err().to_string();
    assert!(e.contains("cut.bpk"), "{e}");

    let flip = dir.path().join("flip.bpk");
    let mut b = bytes.clone();
    let k = b.len() - 77;
    b[k] ^= 0x40;
    std::fs::write(&flip, &b).unwrap();
    let e = Model::load(&flip, &device).unwrap_err().to_string();
    assert!(e.contains("checksum"), "{e}");

    // A checkpoint whose tensors do not fit its config (e.g. edited by hand).
    let other = dir.path().join("other.bpk");
    Model::new(ModelConfig::mnist_logreg(), 0, &device)
        .unwrap()
        .save(&other)
        .unwrap();
    let swapped = dir.path().join("swapped.bpk");
    let text = String::from_utf8_lossy(&std::fs::read(&other).unwrap()).into_owned();
    assert!(text.contains("LogReg"));
    let mut raw = std::fs::read(&other).unwrap();
    // Same-length edit of the JSON config: 784 inputs -> 783.
    let pat = b"\"d_in\":784";
    let pos = raw.windows(pat.len()).position(|w| w == pat).unwrap();
    raw[pos + pat.len() - 1] = b'3';
    std::fs::write(&swapped, &raw).unwrap();
    let e = Model::load(&swapped, &device).unwrap_err().to_string();
    assert!(
        e.contains("does not match the LogReg architecture") && e.contains("head.weight"),
        "{e}"
    );
}

#[test]
fn safetensors_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.safetensors");
    let (m, data) = trained_resnet();
    m.export_safetensors(&path).unwrap();
    let back = Model::import_safetensors(&path, m.config.clone(), &cpu()).unwrap();
    assert_eq!(back.params_flat(), m.params_flat());
    assert_eq!(
        evaluate(&m, &data, &cpu()).unwrap(),
        evaluate(&back, &data, &cpu()).unwrap()
    );
    let e = Model::import_safetensors(&path, ModelConfig::mnist_cnn(), &cpu())
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not match the Cnn architecture"), "{e}");
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_mlp.safetensors")
}

#[test]
fn pytorch_fixture_gives_the_hand_computed_logits() {
    let device = cpu();
    let cfg = ModelConfig::Mlp {
        d_in: 4,
        hidden: vec![3],
        n_out: 2,
        dropout: 0.0,
    };
    let m = Model::import_safetensors(fixture(), cfg, &device).unwrap();
    // burn keeps nn.Linear(4, 3).weight transposed: [d_in, d_out].
    assert_eq!(m.param_layers()[0].weight_shape, vec![4, 3]);
    let data = Dataset::new(
        "x",
        Features::Dense {
            values: vec![1.0, 2.0, 3.0, 4.0, -1.0, 0.0, 1.0, 0.0],
            shape: vec![4],
        },
        Targets::Classes {
            labels: vec![1, 1],
            n_classes: 2,
        },
    )
    .unwrap();
    let x = m.input_batch(&data, &[0, 1], &device).unwrap();
    let z: Vec<f32> = m
        .net
        .forward(x, Mode::Eval)
        .logits
        .into_data()
        .try_into_vec()
        .unwrap();
    let want = [4.6f32, 15.8, 1.1, 3.8];
    for (a, b) in z.iter().zip(want) {
        assert!((a - b).abs() < 1e-5, "{z:?} vs {want:?}");
    }
    // Exporting writes the same keys and PyTorch layout back.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("again.safetensors");
    m.export_safetensors(&out).unwrap();
    let again = Model::import_safetensors(&out, m.config.clone(), &device).unwrap();
    assert_eq!(again.params_flat(), m.params_flat());
    let e = Model::import_safetensors(
        fixture(),
        ModelConfig::LogReg { d_in: 4, n_out: 2 },
        &device,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("body.0"), "{e}");
}

#[test]
fn f64_models_keep_their_dtype_through_a_checkpoint() {
    let device = cpu();
    let m = Model::new(ModelConfig::mnist_logreg(), 0, &device)
        .unwrap()
        .to_dtype(burn::tensor::FloatDType::F64);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f64.bpk");
    m.save(&path).unwrap();
    let back = Model::load(&path, &device).unwrap();
    assert_eq!(back.dtype(), burn::tensor::DType::F64);
    assert_eq!(back.params_flat(), m.params_flat());
}

#[test]
fn same_weights_give_byte_identical_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let (m, data) = trained_resnet();
    let (a, b, c) = (
        dir.path().join("a.ckpt"),
        dir.path().join("b.ckpt"),
        dir.path().join("c.ckpt"),
    );
    m.save(&a).unwrap();
    // Loading builds a new model (other random parameter ids), same weights.
    let twin = Model::load(&a, &cpu()).unwrap();
    twin.save(&b).unwrap();
    Model::new(small_resnet(), 3, &cpu())
        .unwrap()
        .save(&c)
        .unwrap();
    let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(ba == bb, "two saves of the same weights differ");
    assert_ne!(ba, std::fs::read(&c).unwrap(), "other weights, other bytes");
    let back = Model::load(&b, &cpu()).unwrap();
    assert_eq!(back.params_flat(), m.params_flat());
    assert_eq!(
        evaluate(&back, &data, &cpu()).unwrap(),
        evaluate(&m, &data, &cpu()).unwrap()
    );
}

#[test]
fn non_finite_models_are_refused_and_training_that_overflows_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let device = cpu();
    let data = mnist("train", 64);
    // One full-batch step at an lr that is finite in f64 but not in f32: the
    // step's loss is finite (initial weights), the weights after it are not.
    let cfg = TrainConfig::params()
        .epochs(1)
        .batch_size(64)
        .lr(1e39)
        .check()
        .unwrap();
    let m = Model::new(ModelConfig::mnist_mlp(), 0, &device).unwrap();
    let e = train(m.clone(), &data, None, &cfg, &device, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("after epoch 1") && e.contains("non-finite parameter"),
        "{e}"
    );
    // The step-level trainer hands such a model back; saving refuses it.
    let mut t = Trainer::new(m, cfg, &device).unwrap();
    t.epoch(&data, &Subset::all(data.len())).unwrap();
    let broken = t.into_model();
    assert!(broken.check_finite().is_err());
    let path = dir.path().join("nan.ckpt");
    let e = broken.save(&path).unwrap_err().to_string();
    assert!(
        e.contains("nan.ckpt") && e.contains("refusing to save a non-finite model"),
        "{e}"
    );
    assert!(!path.exists());
}

#[test]
fn a_loaded_model_does_not_depend_on_its_file_afterwards() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.ckpt");
    let a = Model::new(ModelConfig::mnist_mlp(), 1, &cpu()).unwrap();
    a.save(&path).unwrap();
    let loaded = Model::load(&path, &cpu()).unwrap();
    // The file is replaced (a cache entry rewritten), then removed.
    Model::new(ModelConfig::mnist_mlp(), 2, &cpu())
        .unwrap()
        .save(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(loaded.params_flat() == a.params_flat());
}
