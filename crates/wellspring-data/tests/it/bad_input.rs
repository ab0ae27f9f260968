//! Bad input gives a clear error naming the file / row / value, never a panic.

use std::io::Write;
use std::path::Path;

use wellspring_core::{Dataset, Features, Targets};
use wellspring_data::cifar::{CifarRecords, parse_cifar};
use wellspring_data::idx::{encode_idx_images, encode_idx_labels, idx_dataset, read_idx_images};
use wellspring_data::sample::{stratified_indices, stratified_subsample};
use wellspring_data::tables::csv_regression;
use wellspring_data::{
    CsvOptions, CsvTable, DataDir, DatasetName, LoadOptions, Poison, adult_from_files, cifar10,
    flip_labels, load, poison_labels,
};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn toy(n: usize, classes: usize) -> Dataset {
    Dataset::new(
        "toy",
        Features::Dense {
            values: (0..n).map(|i| i as f32).collect(),
            shape: vec![1],
        },
        Targets::Classes {
            labels: (0..n).map(|i| i % classes).collect(),
            n_classes: classes,
        },
    )
    .unwrap()
}

#[test]
fn truncated_idx_names_file_and_sizes() {
    let t = tempfile::tempdir().unwrap();
    let mut bytes = encode_idx_images(3, 28, 28, &vec![7u8; 3 * 784]);
    bytes.truncate(16 + 2 * 784 + 5);
    let p = write(t.path(), "train-images-idx3-ubyte", &bytes);
    let e = read_idx_images(&p).unwrap_err().to_string();
    assert!(e.contains("train-images-idx3-ubyte"), "{e}");
    assert!(
        e.contains("truncated") && e.contains("2352") && e.contains("1573"),
        "{e}"
    );
    let p = write(t.path(), "short", &[0, 0, 8]);
    let e = read_idx_images(&p).unwrap_err().to_string();
    assert!(e.contains("truncated IDX header"), "{e}");
}

#[test]
fn truncated_gzip_idx_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    let raw = encode_idx_images(2, 4, 4, &[1u8; 32]);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&raw).unwrap();
    let mut gz = enc.finish().unwrap();
    gz.truncate(gz.len() / 2);
    let p = write(t.path(), "x-idx3-ubyte.gz", &gz);
    let e = read_idx_images(&p).unwrap_err().to_string();
    assert!(e.contains("x-idx3-ubyte.gz") && e.contains("gzip"), "{e}");
}

#[test]
fn wrong_idx_magic() {
    let t = tempfile::tempdir().unwrap();
    let mut bytes = encode_idx_images(1, 2, 2, &[0; 4]);
    bytes[3] = 0x01;
    let p = write(t.path(), "imgs", &bytes);
    let e = read_idx_images(&p).unwrap_err().to_string();
    assert!(
        e.contains("imgs") && e.contains("magic number 2049") && e.contains("2051"),
        "{e}"
    );
}

#[test]
fn idx_count_mismatch_and_label_range() {
    let t = tempfile::tempdir().unwrap();
    let img = write(t.path(), "i", &encode_idx_images(3, 2, 2, &[0; 12]));
    let lab = write(t.path(), "l", &encode_idx_labels(&[1, 2]));
    let e = idx_dataset("x", &img, &lab, 10).unwrap_err().to_string();
    assert!(e.contains("2 labels") && e.contains("3 images"), "{e}");
    let lab = write(t.path(), "l2", &encode_idx_labels(&[1, 2, 11]));
    let e = idx_dataset("x", &img, &lab, 10).unwrap_err().to_string();
    assert!(
        e.contains("l2") && e.contains("label 11 at index 2") && e.contains("10 classes"),
        "{e}"
    );
}

#[test]
fn truncated_cifar_file_names_file_and_bytes() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("cifar10");
    std::fs::create_dir_all(&d).unwrap();
    let good = vec![0u8; 3073 * 2];
    for i in 1..=5 {
        write(&d, &format!("data_batch_{i}.bin"), &good);
    }
    write(&d, "test_batch.bin", &good[..3073 + 100]);
    let e = cifar10(&DataDir::at(t.path()).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("test_batch.bin") && e.contains("3173 bytes") && e.contains("3073"),
        "{e}"
    );
    let mut bad = vec![0u8; 3073];
    bad[0] = 10;
    let mut out = CifarRecords::default();
    let e = parse_cifar(&bad, Path::new("b.bin"), 1, &mut out)
        .unwrap_err()
        .to_string();
    assert!(e.contains("record 0") && e.contains("label 10"), "{e}");
}

#[test]
fn csv_ragged_row() {
    let e = CsvTable::parse(
        "a,b,c\n1,2,3\n4,5\n",
        Path::new("r.csv"),
        &CsvOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("r.csv, line 3, column c") && e.contains("expected 3 fields, found 2"),
        "{e}"
    );
    let e = CsvTable::parse("a,b\n1,2,3\n", Path::new("r.csv"), &CsvOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2") && e.contains("extra field"), "{e}");
}

#[test]
fn csv_non_numeric_and_non_finite_cells() {
    let t = tempfile::tempdir().unwrap();
    let p = write(t.path(), "t.csv", b"x1,x2,y\n1,2,3\n4,abc,6\n");
    let e = csv_regression(&p, "t", &["y"], &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("t.csv, line 3, column x2") && e.contains("\"abc\""),
        "{e}"
    );
    for bad in ["NaN", "inf", "-inf"] {
        let p = write(
            t.path(),
            "n.csv",
            format!("x1,y\n1,2\n3,{bad}\n").as_bytes(),
        );
        let e = csv_regression(&p, "n", &["y"], &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3, column y") && e.contains("non-finite"),
            "{bad}: {e}"
        );
    }
    let p = write(t.path(), "e.csv", b"x1,y\n1,\n");
    let e = csv_regression(&p, "e", &["y"], &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty cell"), "{e}");
    let e = csv_regression(&p, "e", &["target"], &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no column named \"target\"") && e.contains("x1, y"),
        "{e}"
    );
}

#[test]
fn csv_labels_out_of_range() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("breast-cancer-wisconsin");
    std::fs::create_dir_all(&d).unwrap();
    write(
        &d,
        "breast_cancer_wisconsin.csv",
        b"a,target\n1,0\n2,1\n3,2\n",
    );
    let e = load(
        DatasetName::BreastCancer,
        &LoadOptions::new().data_dir(t.path()),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("line 4, column target") && e.contains("label 2 out of range"),
        "{e}"
    );
}

#[test]
fn adult_unknown_label_and_wrong_width() {
    let t = tempfile::tempdir().unwrap();
    let row = "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, United-States";
    let tr = write(
        t.path(),
        "adult.data",
        format!("{row}, <=50K\n{row}, >50K\n").as_bytes(),
    );
    let te = write(
        t.path(),
        "adult.test",
        format!("|1x3 Cross validator\n{row}, maybe.\n").as_bytes(),
    );
    let e = adult_from_files(&tr, &te).unwrap_err().to_string();
    assert!(
        e.contains("adult.test, line 2, column 15") && e.contains("\"maybe.\""),
        "{e}"
    );
    let te = write(t.path(), "adult2.test", b"1, 2, 3\n");
    let e = adult_from_files(&tr, &te).unwrap_err().to_string();
    assert!(e.contains("adult2.test") && e.contains("15 columns"), "{e}");
    // Unseen test categories encode as all zeros, the width stays the train width.
    let other = row.replace("State-gov", "Martian-gov");
    let te = write(
        t.path(),
        "adult3.test",
        format!("{other}, >50K.\n").as_bytes(),
    );
    let (tab, enc) = adult_from_files(&tr, &te).unwrap();
    let test = tab.test.unwrap();
    assert_eq!(test.features().width(), enc.width());
    let names = enc.feature_names();
    let k = names
        .iter()
        .position(|n| n == "workclass=State-gov")
        .unwrap();
    assert_eq!(test.features().dense_row(0)[k], 0.0);
    assert_eq!(test.labels().unwrap(), &[1]);
}

#[test]
fn missing_data_directory() {
    let e = DataDir::at("/definitely/not/here").unwrap_err().to_string();
    assert!(
        e.contains("/definitely/not/here") && e.contains("does not exist"),
        "{e}"
    );
    let e = DataDir::resolve_with(None, Some(std::ffi::OsStr::new("/nope/wellspring")))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/nope/wellspring") && e.contains("WELLSPRING_DATA"),
        "{e}"
    );
}

#[test]
fn missing_dataset_file() {
    let t = tempfile::tempdir().unwrap();
    let e = load(DatasetName::Heloc, &LoadOptions::new().data_dir(t.path()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("dataset heloc") && e.contains("heloc_dataset_v1.csv"),
        "{e}"
    );
    assert!(
        e.contains(&t.path().join("heloc").display().to_string()),
        "{e}"
    );
    assert!(
        e.contains("WELLSPRING_DATA") && e.contains("cargo xtask fetch-data heloc"),
        "{e}"
    );
}

#[test]
fn empty_and_out_of_range_subsets() {
    let d = toy(10, 2);
    assert!(d.select(&[]).unwrap_err().to_string().contains("empty"));
    let e = d.select(&[3, 10]).unwrap_err().to_string();
    assert!(e.contains("index 10") && e.contains("10"), "{e}");
    let e = wellspring_data::first_n(&d, 0).unwrap_err().to_string();
    assert!(e.contains("at least 1"), "{e}");
    let e = wellspring_data::subsample(&d, 11, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("11") && e.contains("dataset toy"), "{e}");
}

#[test]
fn noise_share_outside_unit_interval() {
    let d = toy(10, 3);
    for share in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
        let e = flip_labels(&d, share, 0).unwrap_err().to_string();
        assert!(
            e.contains("noise share") && e.contains("between 0 and 1"),
            "{share}: {e}"
        );
    }
    let e = poison_labels(&d, &Poison::targeted(1, 1, 0.5), 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("equals the target"), "{e}");
    let e = poison_labels(&d, &Poison::targeted(1, 3, 0.5), 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("target class") && e.contains("3 classes"), "{e}");
}

#[test]
fn stratified_request_larger_than_set() {
    let d = toy(10, 2);
    let e = stratified_subsample(&d, 11, 0).unwrap_err().to_string();
    assert!(e.contains("11") && e.contains("10 points"), "{e}");
    let e = stratified_indices(&[0, 1, 2], 2, 1, 0)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("label at index 2") && e.contains("2 classes"),
        "{e}"
    );
    let e = wellspring_data::class_balanced(&d, 6, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("class 0 has only 5"), "{e}");
}

#[test]
fn unknown_dataset_name_and_bad_options() {
    let e = "mnist2".parse::<DatasetName>().unwrap_err().to_string();
    assert!(e.contains("mnist2") && e.contains("fashion-mnist"), "{e}");
    let e = load(
        DatasetName::Concrete,
        &LoadOptions::new().test_fraction(1.0),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("test_fraction = 1"), "{e}");
    let e = load(DatasetName::Concrete, &LoadOptions::new().max_vocab(1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_size = 1"), "{e}");
    let e = load(DatasetName::Mnist, &LoadOptions::new().target("coarse"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("fixed label"), "{e}");
    let e = load(DatasetName::Energy, &LoadOptions::new().target("Y3"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("Y3"), "{e}");
    let e = load(
        DatasetName::Optdigits,
        &LoadOptions::new().standardize_targets(true),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("class labels"), "{e}");
}
