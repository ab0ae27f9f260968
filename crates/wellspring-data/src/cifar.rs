//! CIFAR-10 / CIFAR-100 binary format (Krizhevsky 2009,
//! <https://www.cs.toronto.edu/~kriz/cifar.html>).
//!
//! CIFAR-10 records are `1 label byte + 3072 pixel bytes`; CIFAR-100 records
//! are `1 coarse byte + 1 fine byte + 3072 pixel bytes`. Pixels are stored as
//! 1024 red, 1024 green, 1024 blue values, each a row-major 32×32 plane, which
//! is exactly the `[3, 32, 32]` channel-first layout.

use std::path::{Path, PathBuf};

use wellspring_core::{Dataset, Features, Split, Targets};

use crate::dir::DataDir;
use crate::error::{DataError, Result, read_maybe_gz};
use crate::name::DatasetName;

/// Bytes of one 32×32×3 image.
pub const CIFAR_IMAGE_BYTES: usize = 3072;

/// CIFAR-10 class names, in label order.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// CIFAR-100 coarse (superclass) names, in label order.
pub const CIFAR100_COARSE_CLASSES: [&str; 20] = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
];

/// CIFAR-100 fine class names, in label order.
pub const CIFAR100_FINE_CLASSES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

/// Which CIFAR-100 labels become the class labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cifar100Labels {
    /// 100 fine classes (no subclasses attached).
    #[default]
    Fine,
    /// 20 coarse superclasses; the fine labels are kept as subclasses.
    Coarse,
}

/// Records decoded from one or more CIFAR binary files.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CifarRecords {
    /// CIFAR-10 label, or CIFAR-100 fine label, per record.
    pub labels: Vec<usize>,
    /// CIFAR-100 coarse label per record (empty for CIFAR-10).
    pub coarse: Vec<usize>,
    /// Pixels, record after record, 3072 bytes each (channel-first).
    pub pixels: Vec<u8>,
}

impl CifarRecords {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True if there are no records.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

fn check_label(path: &Path, record: usize, what: &str, value: u8, n: usize) -> Result<usize> {
    if value as usize >= n {
        return Err(DataError::format(
            path,
            format!("record {record}: {what} label {value} out of range for {n} classes"),
        ));
    }
    Ok(value as usize)
}

/// Parses CIFAR binary bytes, appending to `out`. `label_bytes` is 1 for
/// CIFAR-10 and 2 (coarse, fine) for CIFAR-100.
pub fn parse_cifar(
    bytes: &[u8],
    path: &Path,
    label_bytes: usize,
    out: &mut CifarRecords,
) -> Result<()> {
    let rec = label_bytes + CIFAR_IMAGE_BYTES;
    if bytes.is_empty() || !bytes.len().is_multiple_of(rec) {
        return Err(DataError::format(
            path,
            format!(
                "file size {} bytes is not a positive multiple of the {rec}-byte CIFAR record \
                 ({label_bytes} label byte(s) + {CIFAR_IMAGE_BYTES} pixel bytes): truncated or wrong file",
                bytes.len()
            ),
        ));
    }
    let n = bytes.len() / rec;
    out.labels.reserve(n);
    out.pixels.reserve(n * CIFAR_IMAGE_BYTES);
    for (r, chunk) in bytes.chunks_exact(rec).enumerate() {
        if label_bytes == 1 {
            out.labels
                .push(check_label(path, r, "CIFAR-10", chunk[0], 10)?);
        } else {
            out.coarse
                .push(check_label(path, r, "coarse", chunk[0], 20)?);
            out.labels
                .push(check_label(path, r, "fine", chunk[1], 100)?);
        }
        out.pixels.extend_from_slice(&chunk[label_bytes..]);
    }
    Ok(())
}

/// Reads CIFAR binary files (gzip detected from the content) into one record set.
pub fn read_cifar(paths: &[PathBuf], label_bytes: usize) -> Result<CifarRecords> {
    let mut out = CifarRecords::default();
    for p in paths {
        parse_cifar(&read_maybe_gz(p)?, p, label_bytes, &mut out)?;
    }
    Ok(out)
}

fn features(pixels: &[u8]) -> Features {
    Features::Dense {
        values: pixels.iter().map(|&p| p as f32 / 255.0).collect(),
        shape: vec![3, 32, 32],
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// CIFAR-10 from `cifar10/data_batch_{1..5}.bin` and `cifar10/test_batch.bin`
/// (also found under `cifar10/cifar-10-batches-bin/`): 50000 / 10000, `[3, 32, 32]` in `[0, 1]`.
pub fn cifar10(dir: &DataDir) -> Result<Split> {
    let find = |f: &str| {
        let nested = format!("cifar-10-batches-bin/{f}");
        dir.find(DatasetName::Cifar10, &[f, nested.as_str()])
    };
    let train_files = (1..=5)
        .map(|i| find(&format!("data_batch_{i}.bin")))
        .collect::<Result<Vec<_>>>()?;
    let test_files = vec![find("test_batch.bin")?];
    let make = |files: &[PathBuf], split: &str| -> Result<Dataset> {
        let r = read_cifar(files, 1)?;
        let ds = Dataset::new(
            format!("cifar10-{split}"),
            features(&r.pixels),
            Targets::Classes {
                labels: r.labels,
                n_classes: 10,
            },
        )?;
        Ok(ds.with_class_names(names(&CIFAR10_CLASSES))?)
    };
    Ok(Split {
        train: make(&train_files, "train")?,
        test: make(&test_files, "test")?,
        valid: None,
    })
}

/// CIFAR-100 from `cifar100/train.bin` and `cifar100/test.bin` (also under
/// `cifar100/cifar-100-binary/`). With [`Cifar100Labels::Coarse`] the 20
/// superclasses are the labels and the fine labels become subclasses.
pub fn cifar100(dir: &DataDir, which: Cifar100Labels) -> Result<Split> {
    let find = |f: &str| {
        let nested = format!("cifar-100-binary/{f}");
        dir.find(DatasetName::Cifar100, &[f, nested.as_str()])
    };
    let make = |file: PathBuf, split: &str| -> Result<Dataset> {
        let r = read_cifar(&[file], 2)?;
        let name = format!("cifar100-{split}");
        let feats = features(&r.pixels);
        Ok(match which {
            Cifar100Labels::Fine => Dataset::new(
                name,
                feats,
                Targets::Classes {
                    labels: r.labels,
                    n_classes: 100,
                },
            )?
            .with_class_names(names(&CIFAR100_FINE_CLASSES))?,
            Cifar100Labels::Coarse => Dataset::new(
                name,
                feats,
                Targets::Classes {
                    labels: r.coarse,
                    n_classes: 20,
                },
            )?
            .with_class_names(names(&CIFAR100_COARSE_CLASSES))?
            .with_subclasses(r.labels, 100)?,
        })
    };
    Ok(Split {
        train: make(find("train.bin")?, "train")?,
        test: make(find("test.bin")?, "test")?,
        valid: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_name_tables_have_the_right_sizes() {
        assert_eq!(CIFAR100_FINE_CLASSES.len(), 100);
        let mut sorted = CIFAR100_FINE_CLASSES.to_vec();
        sorted.sort();
        assert_eq!(
            sorted,
            CIFAR100_FINE_CLASSES.to_vec(),
            "fine names are alphabetical"
        );
    }

    #[test]
    fn record_length_is_checked() {
        let mut out = CifarRecords::default();
        let e = parse_cifar(&[0u8; 3074], Path::new("b.bin"), 1, &mut out)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("b.bin") && e.contains("3074") && e.contains("3073"),
            "{e}"
        );
    }
}
