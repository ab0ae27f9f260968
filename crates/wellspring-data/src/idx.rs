//! IDX files (MNIST, Fashion-MNIST): big-endian header, `uint8` payload,
//! gzipped or not.
//!
//! Format (LeCun et al., <http://yann.lecun.com/exdb/mnist/>): a 4-byte magic
//! `0x00 0x00 <type=0x08 ubyte> <ndim>`, read as a big-endian `u32` this is
//! 2051 for 3-d image files and 2049 for 1-d label files; then `ndim`
//! big-endian `u32` dimensions; then the bytes.

use std::path::Path;

use wellspring_core::{Dataset, Features, Split, Targets};

use crate::dir::DataDir;
use crate::error::{DataError, Result, read_maybe_gz};
use crate::name::DatasetName;

/// Magic number of an IDX image file (`ubyte`, 3 dimensions).
pub const IDX_IMAGES_MAGIC: u32 = 2051;
/// Magic number of an IDX label file (`ubyte`, 1 dimension).
pub const IDX_LABELS_MAGIC: u32 = 2049;

/// Class names of Fashion-MNIST (Xiao et al. 2017).
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Decoded IDX images: `count × rows × cols` bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// Raw pixels, image after image, row-major.
    pub pixels: Vec<u8>,
}

fn header(bytes: &[u8], path: &Path, magic: u32, ndim: usize) -> Result<Vec<usize>> {
    let need = 4 + 4 * ndim;
    let truncated = || {
        DataError::format(
            path,
            format!(
                "truncated IDX header: need {need} bytes, file has {}",
                bytes.len()
            ),
        )
    };
    if bytes.len() < 4 {
        return Err(truncated());
    }
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let got = be(0);
    if got != magic {
        return Err(DataError::format(
            path,
            format!(
                "bad IDX magic number {got} (0x{got:08x}); expected {magic} ({})",
                if magic == IDX_IMAGES_MAGIC {
                    "ubyte images, 3 dimensions"
                } else {
                    "ubyte labels, 1 dimension"
                }
            ),
        ));
    }
    if bytes.len() < need {
        return Err(truncated());
    }
    Ok((0..ndim).map(|k| be(4 + 4 * k) as usize).collect())
}

fn check_payload(bytes: &[u8], path: &Path, header_len: usize, dims: &[usize]) -> Result<()> {
    let expected = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| DataError::format(path, format!("IDX dimensions {dims:?} overflow")))?;
    let got = bytes.len() - header_len;
    if got != expected {
        return Err(DataError::format(
            path,
            format!(
                "{} IDX file: header dimensions {dims:?} need {expected} data bytes, found {got}",
                if got < expected {
                    "truncated"
                } else {
                    "oversized"
                }
            ),
        ));
    }
    Ok(())
}

/// Parses an IDX image file already in memory (decompressed); `path` is for errors.
pub fn parse_idx_images(bytes: &[u8], path: &Path) -> Result<IdxImages> {
    let dims = header(bytes, path, IDX_IMAGES_MAGIC, 3)?;
    check_payload(bytes, path, 16, &dims)?;
    Ok(IdxImages {
        count: dims[0],
        rows: dims[1],
        cols: dims[2],
        pixels: bytes[16..].to_vec(),
    })
}

/// Parses an IDX label file already in memory; every label must be `< n_classes`.
pub fn parse_idx_labels(bytes: &[u8], path: &Path, n_classes: usize) -> Result<Vec<usize>> {
    let dims = header(bytes, path, IDX_LABELS_MAGIC, 1)?;
    check_payload(bytes, path, 8, &dims)?;
    let labels: Vec<usize> = bytes[8..].iter().map(|&b| b as usize).collect();
    if let Some(i) = labels.iter().position(|&l| l >= n_classes) {
        return Err(DataError::format(
            path,
            format!(
                "label {} at index {i} out of range for {n_classes} classes",
                labels[i]
            ),
        ));
    }
    Ok(labels)
}

/// Reads an IDX image file (gzip detected from the content).
pub fn read_idx_images(path: &Path) -> Result<IdxImages> {
    parse_idx_images(&read_maybe_gz(path)?, path)
}

/// Reads an IDX label file (gzip detected from the content), range-checked.
pub fn read_idx_labels(path: &Path, n_classes: usize) -> Result<Vec<usize>> {
    parse_idx_labels(&read_maybe_gz(path)?, path, n_classes)
}

/// Reads an image/label file pair into a [`Dataset`] with example shape
/// `[1, rows, cols]` and pixels scaled to `[0, 1]`; counts must agree.
pub fn idx_dataset(name: &str, images: &Path, labels: &Path, n_classes: usize) -> Result<Dataset> {
    let img = read_idx_images(images)?;
    let lab = read_idx_labels(labels, n_classes)?;
    if img.count != lab.len() {
        return Err(DataError::format(
            labels,
            format!(
                "{} labels but {} has {} images",
                lab.len(),
                images.display(),
                img.count
            ),
        ));
    }
    let values: Vec<f32> = img.pixels.iter().map(|&p| p as f32 / 255.0).collect();
    let ds = Dataset::new(
        name,
        Features::Dense {
            values,
            shape: vec![1, img.rows, img.cols],
        },
        Targets::Classes {
            labels: lab,
            n_classes,
        },
    )?;
    Ok(ds)
}

fn idx_split(dir: &DataDir, which: DatasetName, class_names: Vec<String>) -> Result<Split> {
    let file = |stem: &str| -> Result<std::path::PathBuf> {
        let gz = format!("{stem}.gz");
        let dotted = stem.replacen("-idx", ".idx", 1);
        dir.find(which, &[gz.as_str(), stem, dotted.as_str()])
    };
    let part = |prefix: &str, split: &str| -> Result<Dataset> {
        let images = file(&format!("{prefix}-images-idx3-ubyte"))?;
        let labels = file(&format!("{prefix}-labels-idx1-ubyte"))?;
        let ds = idx_dataset(&format!("{which}-{split}"), &images, &labels, 10)?;
        Ok(ds.with_class_names(class_names.clone())?)
    };
    Ok(Split {
        train: part("train", "train")?,
        test: part("t10k", "test")?,
        valid: None,
    })
}

/// MNIST (LeCun et al. 1998): 60000 train / 10000 test, `[1, 28, 28]` in `[0, 1]`.
/// Accepts `*-idx3-ubyte.gz`, `*-idx3-ubyte` and `*.idx3-ubyte` names.
pub fn mnist(dir: &DataDir) -> Result<Split> {
    idx_split(
        dir,
        DatasetName::Mnist,
        (0..10).map(|d| d.to_string()).collect(),
    )
}

/// Fashion-MNIST (Xiao et al. 2017): same layout as [`mnist`], names in [`FASHION_MNIST_CLASSES`].
pub fn fashion_mnist(dir: &DataDir) -> Result<Split> {
    idx_split(
        dir,
        DatasetName::FashionMnist,
        FASHION_MNIST_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect(),
    )
}

/// Encodes images as an IDX image file (uncompressed), e.g. for test fixtures.
pub fn encode_idx_images(count: usize, rows: usize, cols: usize, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + pixels.len());
    for v in [IDX_IMAGES_MAGIC, count as u32, rows as u32, cols as u32] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

/// Encodes labels as an IDX label file (uncompressed), e.g. for test fixtures.
pub fn encode_idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&IDX_LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_small_idx() {
        let p = Path::new("x");
        let img = parse_idx_images(
            &encode_idx_images(2, 2, 3, &[0, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
            p,
        )
        .unwrap();
        assert_eq!((img.count, img.rows, img.cols), (2, 2, 3));
        let lab = parse_idx_labels(&encode_idx_labels(&[3, 9]), p, 10).unwrap();
        assert_eq!(lab, vec![3, 9]);
        let e = parse_idx_labels(&encode_idx_labels(&[3, 10]), p, 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("label 10 at index 1"), "{e}");
        let e = parse_idx_images(&encode_idx_labels(&[1]), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("magic number 2049") && e.contains("2051"), "{e}");
    }
}
