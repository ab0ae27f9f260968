//! Real-data checks on the embedded datasets (and, when `WELLSPRING_DATA`
//! provides them, on HELOC, Fashion-MNIST and SST-2).

use wellspring_core::Features;
use wellspring_data::fetch::{self, Check};
use wellspring_data::{
    DataDir, DatasetName, LoadOptions, SuperclassMap, class_balanced, load, load_full, relabel,
};

use crate::{mnist, optional};

fn embedded() -> LoadOptions {
    LoadOptions::new().data_dir(DataDir::embedded_root())
}

#[test]
fn mnist_counts_shape_and_pixels() {
    let s = mnist();
    assert_eq!((s.train.len(), s.test.len()), (60000, 10000));
    assert_eq!(
        s.train.class_counts().unwrap(),
        vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        s.test.class_counts().unwrap(),
        vec![980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    let Features::Dense { values, shape } = s.train.features() else {
        panic!("dense")
    };
    assert_eq!(shape, &vec![1, 28, 28]);
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64;
    assert!((mean - 0.13066).abs() < 1e-4, "pixel mean {mean}");
    assert!(values.iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert_eq!(s.train.class_names().unwrap()[3], "3");
}

#[test]
fn mnist_relabel_and_class_balanced_pick() {
    let s = mnist();
    let bin = relabel(&s.test, &SuperclassMap::mnist_digit_lt5()).unwrap();
    assert_eq!(bin.n_classes(), Some(2));
    // Digits 0-4 in the test set: 980 + 1135 + 1032 + 1010 + 982.
    assert_eq!(bin.class_counts().unwrap(), vec![10000 - 5139, 5139]);
    let sub = bin.subclasses().unwrap();
    assert_eq!(sub.n_subclasses, 10);
    assert_eq!(&sub.labels, s.test.labels().unwrap());
    let pick = class_balanced(&s.test, 10, 3).unwrap();
    assert_eq!(pick.class_counts().unwrap(), vec![10; 10]);
    assert_eq!(pick, class_balanced(&s.test, 10, 3).unwrap());
}

#[test]
fn embedded_files_verify() {
    let root = DataDir::embedded_root();
    for name in DatasetName::ALL.into_iter().filter(|d| d.is_embedded()) {
        let checked = fetch::verify(name, &root).unwrap();
        assert!(!checked.is_empty(), "{name}");
        assert!(checked.iter().all(|(_, c)| *c == Check::Stored), "{name}");
    }
}

#[test]
fn optdigits_counts_and_shapes() {
    let s = load(DatasetName::Optdigits, &embedded().standardize(false)).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (3823, 1797));
    assert_eq!(
        s.train.class_counts().unwrap(),
        vec![376, 389, 380, 389, 387, 376, 377, 387, 380, 382]
    );
    assert_eq!(
        s.test.class_counts().unwrap(),
        vec![178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    );
    assert_eq!(s.train.features().width(), 64);
    // First test row of the file: 0,0,5,13,9,1,0,0,... label 0.
    assert_eq!(&s.test.features().dense_row(0)[..4], &[0.0, 0.0, 5.0, 13.0]);
    let img = load(DatasetName::Optdigits, &embedded().image_shape(true)).unwrap();
    let Features::Dense { shape, .. } = img.train.features() else {
        panic!("dense")
    };
    assert_eq!(shape, &vec![1, 8, 8]);
}

#[test]
fn adult_one_hot_is_consistent() {
    let l = load_full(DatasetName::Adult, &embedded()).unwrap();
    let s = &l.split;
    assert_eq!((s.train.len(), s.test.len()), (32561, 16281));
    let w = s.train.features().width();
    assert_eq!(w, s.test.features().width());
    assert_eq!(l.feature_names.as_ref().unwrap().len(), w);
    // 6 numeric + 8 one-hot blocks of the training vocabulary ('?' excluded).
    assert_eq!(w, 6 + 8 + 16 + 7 + 14 + 6 + 5 + 2 + 41);
    let counts = s.train.class_counts().unwrap();
    assert_eq!(counts, vec![24720, 7841]);
    assert_eq!(s.test.class_counts().unwrap(), vec![12435, 3846]);
    // One-hot columns stay 0/1 (only numeric columns are standardised).
    let names = l.feature_names.as_ref().unwrap();
    let sex = names.iter().position(|n| n == "sex=Male").unwrap();
    assert!((0..100).all(|r| {
        let v = s.test.features().dense_row(r)[sex];
        v == 0.0 || v == 1.0
    }));
    let st = l.standardizer.as_ref().unwrap();
    assert_eq!(st.std[sex], 1.0);
    assert!(st.std[0] > 1.0, "age is standardised");
}

#[test]
fn concrete_split_and_standardisation() {
    let opts = embedded().seed(11).standardize_targets(true);
    let l = load_full(DatasetName::Concrete, &opts).unwrap();
    let s = &l.split;
    assert_eq!((s.train.len(), s.test.len()), (824, 206));
    assert_eq!(s.train.features().width(), 8);
    // Train features are centred; test features only approximately.
    let Features::Dense { values, .. } = s.train.features() else {
        panic!("dense")
    };
    for c in 0..8 {
        let m: f64 = values
            .iter()
            .skip(c)
            .step_by(8)
            .map(|&v| v as f64)
            .sum::<f64>()
            / 824.0;
        assert!(m.abs() < 1e-4, "column {c} mean {m}");
    }
    // Targets round-trip to original units.
    let ts = l.target_standardizer.as_ref().unwrap();
    let wellspring_core::Targets::Regression { values, .. } = s.train.targets() else {
        panic!("regression")
    };
    let mut y = values.clone();
    ts.inverse_transform(&mut y).unwrap();
    let raw = load(
        DatasetName::Concrete,
        &embedded().seed(11).standardize(false),
    )
    .unwrap();
    let wellspring_core::Targets::Regression { values: yr, .. } = raw.train.targets() else {
        panic!("regression")
    };
    assert!(y.iter().zip(yr).all(|(a, b)| (a - b).abs() < 1e-3));
    // Same seed, same split; different seed, different split.
    let again = load(
        DatasetName::Concrete,
        &embedded().seed(11).standardize(false),
    )
    .unwrap();
    assert_eq!(again.test, raw.test);
    let other = load(
        DatasetName::Concrete,
        &embedded().seed(12).standardize(false),
    )
    .unwrap();
    assert_ne!(other.test, raw.test);
}

#[test]
fn energy_targets_never_leak_into_features() {
    for (t, n_targets) in [("Y1", 1), ("Y2", 1), ("both", 2)] {
        let l = load_full(
            DatasetName::Energy,
            &embedded().target(t).valid_fraction(0.1),
        )
        .unwrap();
        let s = &l.split;
        assert_eq!(s.train.features().width(), 8, "{t}");
        assert_eq!(s.train.targets().output_dim(), n_targets);
        let names = l.feature_names.unwrap();
        assert!(!names.iter().any(|n| n.starts_with('Y')), "{names:?}");
        let v = s.valid.as_ref().unwrap();
        assert_eq!(s.train.len() + v.len() + s.test.len(), 768);
    }
}

#[test]
fn breast_cancer_counts() {
    let raw = wellspring_data::breast_cancer(&DataDir::embedded().unwrap()).unwrap();
    assert_eq!(raw.train.len(), 569);
    assert_eq!(raw.train.class_counts().unwrap(), vec![212, 357]);
    assert_eq!(raw.feature_names.len(), 30);
    let s = load(DatasetName::BreastCancer, &embedded().stratify(true)).unwrap();
    assert_eq!(s.test.len(), 114);
    // round(0.2 · 569) = 114 held out; exact shares 42.475 / 71.525 → [42, 72]
    // by largest remainder.
    assert_eq!(s.test.class_counts().unwrap(), vec![42, 72]);
}

#[test]
fn heloc_when_available() {
    let Some(l) = optional(DatasetName::Heloc, &LoadOptions::new()) else {
        return;
    };
    let s = &l.split;
    assert_eq!(s.train.len() + s.test.len(), 9871); // 10459 minus 588 all-(-9) rows
    assert_eq!(s.train.features().width(), 23);
    let total: Vec<usize> = s
        .train
        .class_counts()
        .unwrap()
        .iter()
        .zip(s.test.class_counts().unwrap())
        .map(|(a, b)| a + b)
        .collect();
    assert_eq!(total, vec![4735, 5136]); // Good, Bad after dropping the all-(-9) rows
}

#[test]
fn fashion_mnist_when_available() {
    let Some(l) = optional(DatasetName::FashionMnist, &LoadOptions::new()) else {
        return;
    };
    let s = &l.split;
    assert_eq!(s.train.class_counts().unwrap(), vec![6000; 10]);
    assert_eq!(s.test.class_counts().unwrap(), vec![1000; 10]);
    let foot = relabel(&s.test, &SuperclassMap::fashion_footwear()).unwrap();
    assert_eq!(foot.class_counts().unwrap(), vec![7000, 3000]);
    if let Ok(dir) = DataDir::resolve(None) {
        let root = dir.root();
        if root.join("fashion-mnist").is_dir() {
            let checked = fetch::verify(DatasetName::FashionMnist, root).unwrap();
            assert_eq!(checked.len(), 4);
        }
    }
}

#[test]
fn sst2_when_available() {
    let opts = LoadOptions::new().min_count(2).max_tokens(40);
    let Some(l) = optional(DatasetName::Sst2, &opts) else {
        return;
    };
    let s = &l.split;
    assert_eq!((s.train.len(), s.test.len()), (67349, 872));
    assert_eq!(s.train.class_counts().unwrap(), vec![29780, 37569]);
    assert_eq!(s.test.class_counts().unwrap(), vec![428, 444]);
    let v = l.vocabulary.unwrap();
    assert_eq!(v.token(0), Some("<unk>"));
    assert!(v.len() > 1000 && v.len() == s.train.features().width());
    assert!((0..s.train.len()).all(|i| s.train.features().token_row(i).len() <= 40));
    // The dev set has words the training vocabulary lacks.
    let Features::Tokens { ids, .. } = s.test.features() else {
        panic!("tokens")
    };
    assert!(ids.contains(&0));
}
