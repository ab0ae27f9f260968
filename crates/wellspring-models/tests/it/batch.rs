//! Building batches: shapes, and errors when a dataset does not fit a model.

use wellspring_core::{Dataset, Features, Targets};
use wellspring_models::{Input, Model, ModelConfig, Target};

use crate::{cpu, mnist};

#[test]
fn mnist_rows_become_images_for_a_cnn_and_flat_rows_for_an_mlp() {
    let device = cpu();
    let data = mnist("train", 5);
    let cnn = Model::new(ModelConfig::mnist_cnn(), 0, &device).unwrap();
    match cnn.input_batch(&data, &[4, 0], &device).unwrap() {
        Input::Image(t) => assert_eq!(t.dims(), [2, 1, 28, 28]),
        other => panic!("expected an image batch, got {other:?}"),
    }
    let mlp = Model::new(ModelConfig::mnist_mlp(), 0, &device).unwrap();
    match mlp.input_batch(&data, &[4, 0, 1], &device).unwrap() {
        Input::Flat(t) => assert_eq!(t.dims(), [3, 784]),
        other => panic!("expected a flat batch, got {other:?}"),
    }
    match mlp.target_batch(&data, &[4, 0], &device).unwrap() {
        Target::Classes(y) => {
            let v: Vec<i64> = y.into_data().convert::<i64>().try_into_vec().unwrap();
            let l = data.labels().unwrap();
            assert_eq!(v, vec![l[4] as i64, l[0] as i64]);
        }
        other => panic!("expected classes, got {other:?}"),
    }
}

#[test]
fn datasets_that_do_not_fit_are_named() {
    let device = cpu();
    let data = mnist("train", 5);
    let e = Model::new(
        ModelConfig::LogReg {
            d_in: 100,
            n_out: 10,
        },
        0,
        &device,
    )
    .unwrap()
    .input_batch(&data, &[0], &device)
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("mnist-train[:5]") && e.contains("100") && e.contains("784"),
        "{e}"
    );
    let e = Model::new(
        ModelConfig::LogReg {
            d_in: 784,
            n_out: 7,
        },
        0,
        &device,
    )
    .unwrap()
    .check_dataset(&data)
    .unwrap_err()
    .to_string();
    assert!(e.contains("10 classes") && e.contains("7 outputs"), "{e}");
    let rgb = ModelConfig::ResNet9 {
        in_channels: 3,
        n_out: 10,
        width: 1,
    };
    let e = Model::new(rgb, 0, &device)
        .unwrap()
        .check_dataset(&data)
        .unwrap_err()
        .to_string();
    assert!(e.contains("3 channel"), "{e}");
    let text = ModelConfig::TextBag {
        vocab: 3,
        dim: 2,
        hidden: 2,
        n_out: 2,
    };
    let e = Model::new(text.clone(), 0, &device)
        .unwrap()
        .check_dataset(&data)
        .unwrap_err()
        .to_string();
    assert!(e.contains("expects tokens"), "{e}");
    let toks = Dataset::new(
        "sst",
        Features::Tokens {
            ids: vec![0, 4],
            offsets: vec![0, 1, 2],
            vocab_size: 5,
        },
        Targets::Classes {
            labels: vec![0, 1],
            n_classes: 2,
        },
    )
    .unwrap();
    let e = Model::new(text, 0, &device)
        .unwrap()
        .check_dataset(&toks)
        .unwrap_err()
        .to_string();
    assert!(e.contains("5 ids") && e.contains("only 3"), "{e}");
    let mlp = Model::new(ModelConfig::mnist_mlp(), 0, &device).unwrap();
    let e = mlp
        .input_batch(&data, &[1, 9], &device)
        .unwrap_err()
        .to_string();
    assert!(e.contains("index 9") && e.contains("length 5"), "{e}");
    let e = mlp
        .input_batch(&data, &[], &device)
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty"), "{e}");
}
