//! Loaders on small files in the real formats, written to temp dirs
//! (CIFAR is not available offline; IDX and TSV fixtures exercise the variants).

use std::io::Write;
use std::path::Path;

use wellspring_core::Features;
use wellspring_data::idx::{encode_idx_images, encode_idx_labels};
use wellspring_data::{
    Cifar100Labels, DataDir, DatasetName, LoadOptions, SuperclassMap, cifar10, cifar100, load,
    load_full, relabel,
};

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A CIFAR record: label bytes then 3072 pixels whose red plane starts with `tag`.
fn record(labels: &[u8], tag: u8) -> Vec<u8> {
    let mut r = labels.to_vec();
    let mut px = vec![0u8; 3072];
    px[0] = tag;
    px[1024] = 255; // first green pixel
    r.extend(px);
    r
}

#[test]
fn cifar10_from_small_batches_nested_or_flat() {
    for nested in [false, true] {
        let t = tempfile::tempdir().unwrap();
        let mut d = t.path().join("cifar10");
        if nested {
            d = d.join("cifar-10-batches-bin");
        }
        std::fs::create_dir_all(&d).unwrap();
        for i in 1..=5u8 {
            let mut b = record(&[i], i);
            b.extend(record(&[9], 100 + i));
            std::fs::write(d.join(format!("data_batch_{i}.bin")), b).unwrap();
        }
        std::fs::write(d.join("test_batch.bin"), record(&[0], 51)).unwrap();
        let s = cifar10(&DataDir::at(t.path()).unwrap()).unwrap();
        assert_eq!((s.train.len(), s.test.len()), (10, 1));
        assert_eq!(s.train.labels().unwrap(), &[1, 9, 2, 9, 3, 9, 4, 9, 5, 9]);
        let Features::Dense { shape, .. } = s.train.features() else {
            panic!("dense")
        };
        assert_eq!(shape, &vec![3, 32, 32]);
        let row = s.train.features().dense_row(1);
        assert!((row[0] - 101.0 / 255.0).abs() < 1e-6 && row[1024] == 1.0 && row[1] == 0.0);
        assert_eq!(s.test.class_names().unwrap()[0], "airplane");
        // CIFAR-10B: vehicles (airplane, automobile, ship, truck) vs the rest.
        let b = relabel(&s.train, &SuperclassMap::cifar10_vehicles()).unwrap();
        assert_eq!(b.labels().unwrap(), &[1, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
        assert_eq!(b.subclasses().unwrap().labels, s.train.labels().unwrap());
        assert_eq!(b.class_names().unwrap()[1], "vehicle");
    }
}

#[test]
fn cifar100_fine_or_coarse_labels() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("cifar100");
    std::fs::create_dir_all(&d).unwrap();
    let mut train = record(&[4, 30], 1);
    train.extend(record(&[19, 99], 2));
    std::fs::write(d.join("train.bin"), gz(&train)).unwrap();
    std::fs::write(d.join("test.bin"), record(&[0, 0], 3)).unwrap();
    let dir = DataDir::at(t.path()).unwrap();
    let fine = cifar100(&dir, Cifar100Labels::Fine).unwrap();
    assert_eq!(fine.train.labels().unwrap(), &[30, 99]);
    assert_eq!(fine.train.n_classes(), Some(100));
    assert!(fine.train.subclasses().is_none());
    assert_eq!(fine.train.class_names().unwrap()[99], "worm");
    let coarse = load(
        DatasetName::Cifar100,
        &LoadOptions::new().data_dir(t.path()).target("coarse"),
    )
    .unwrap();
    assert_eq!(coarse.train.labels().unwrap(), &[4, 19]);
    assert_eq!(coarse.train.subclasses().unwrap().labels, vec![30, 99]);
    assert_eq!(coarse.train.class_names().unwrap()[19], "vehicles_2");
    let mut bad = record(&[20, 0], 0);
    bad.extend(record(&[0, 0], 0));
    std::fs::write(d.join("test.bin"), bad).unwrap();
    let e = cifar100(&dir, Cifar100Labels::Coarse)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("test.bin") && e.contains("record 0") && e.contains("coarse label 20"),
        "{e}"
    );
}

fn write_idx(dir: &Path, prefix: &str, n: usize, gzip: bool, dotted: bool) {
    let pixels: Vec<u8> = (0..n * 4).map(|i| (i * 20 % 256) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let imgs = encode_idx_images(n, 2, 2, &pixels);
    let labs = encode_idx_labels(&labels);
    let (iname, lname) = if dotted {
        (
            format!("{prefix}-images.idx3-ubyte"),
            format!("{prefix}-labels.idx1-ubyte"),
        )
    } else {
        (
            format!("{prefix}-images-idx3-ubyte"),
            format!("{prefix}-labels-idx1-ubyte"),
        )
    };
    if gzip {
        std::fs::write(dir.join(format!("{iname}.gz")), gz(&imgs)).unwrap();
        std::fs::write(dir.join(format!("{lname}.gz")), gz(&labs)).unwrap();
    } else {
        std::fs::write(dir.join(iname), imgs).unwrap();
        std::fs::write(dir.join(lname), labs).unwrap();
    }
}

#[test]
fn idx_accepts_gzip_plain_and_dotted_names() {
    for (gzip, dotted) in [(true, false), (false, false), (false, true)] {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("fashion-mnist");
        std::fs::create_dir_all(&d).unwrap();
        write_idx(&d, "train", 12, gzip, dotted);
        write_idx(&d, "t10k", 3, gzip, dotted);
        let s = load(
            DatasetName::FashionMnist,
            &LoadOptions::new().data_dir(t.path()),
        )
        .unwrap();
        assert_eq!((s.train.len(), s.test.len()), (12, 3));
        let Features::Dense { shape, values } = s.train.features() else {
            panic!("dense")
        };
        assert_eq!(shape, &vec![1, 2, 2]);
        assert_eq!(values[1], 20.0 / 255.0);
        assert_eq!(s.train.labels().unwrap()[11], 1);
        assert_eq!(s.test.class_names().unwrap()[9], "Ankle boot");
        let foot = relabel(&s.train, &SuperclassMap::fashion_groups()).unwrap();
        assert_eq!(foot.labels().unwrap()[..10], [0, 1, 0, 2, 0, 3, 0, 3, 4, 3]);
    }
}

#[test]
fn sst2_vocabulary_comes_from_train_only() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("sst2");
    std::fs::create_dir_all(&d).unwrap();
    let train = "sentence\tlabel\na good film \t1\na bad film \t0\ngood good \t1\n";
    std::fs::write(d.join("train.tsv.gz"), gz(train.as_bytes())).unwrap();
    std::fs::write(d.join("dev.tsv"), "sentence\tlabel\nan \"odd\" film \t0\n").unwrap();
    let l = load_full(DatasetName::Sst2, &LoadOptions::new().data_dir(t.path())).unwrap();
    let v = l.vocabulary.unwrap();
    // Counts: good 3, a 2, film 2, bad 1 → ties alphabetical.
    assert_eq!(v.tokens(), &["<unk>", "good", "a", "film", "bad"]);
    let s = l.split;
    assert_eq!(s.train.features().token_row(0), &[2, 1, 3]);
    assert_eq!(s.test.features().token_row(0), &[0, 0, 3]);
    assert_eq!(s.test.labels().unwrap(), &[0]);
    assert!(l.standardizer.is_none());
    let l = load_full(
        DatasetName::Sst2,
        &LoadOptions::new()
            .data_dir(t.path())
            .max_vocab(2)
            .max_tokens(2),
    )
    .unwrap();
    assert_eq!(l.vocabulary.unwrap().len(), 2);
    assert_eq!(l.split.train.features().token_row(0), &[0, 1]);
}

#[test]
fn seeded_validation_split_is_carved_from_train() {
    let opts = LoadOptions::new()
        .data_dir(DataDir::embedded_root())
        .valid_fraction(0.25)
        .stratify(true)
        .seed(5);
    let s = load(DatasetName::BreastCancer, &opts).unwrap();
    let v = s.valid.as_ref().unwrap();
    assert_eq!(s.test.len(), 114);
    assert_eq!(v.len(), 114); // round(0.25 · 455)
    assert_eq!(s.train.len(), 569 - 114 - 114);
    assert_eq!(v.name(), "breast-cancer-train-valid");
    let again = load(DatasetName::BreastCancer, &opts).unwrap();
    assert_eq!(again.valid.as_ref().unwrap(), v);
}
