//! Content fingerprints: the one way wellspring turns data into a cache key.
//!
//! [`dataset_fingerprint`] is SHA-256 over *every* byte that defines a
//! [`Dataset`]: its name, every feature value (bit pattern, so `NaN`, `inf`,
//! `-0.0` and `0.0` all differ), the example shape or token layout, every
//! target, subclasses and class names. Each field is preceded by its name and
//! its length, and optional fields by a presence tag, so a missing field,
//! an empty one and a shifted boundary never give the same digest.
//! [`ContentHasher`] is the same encoding for other content (model weights).

use sha2::{Digest, Sha256};

use crate::dataset::{Dataset, Features, Targets};

/// Version of the fingerprint encoding; part of every digest.
pub const FINGERPRINT_VERSION: u32 = 1;

/// Streams tagged, length-prefixed fields into SHA-256.
#[derive(Clone, Debug)]
pub struct ContentHasher(Sha256);

impl ContentHasher {
    /// A hasher for content of kind `domain` (e.g. `"dataset"`, `"model"`).
    pub fn new(domain: &str) -> Self {
        let mut h = ContentHasher(Sha256::new());
        h.field("wellspring-fingerprint");
        h.u64(FINGERPRINT_VERSION as u64);
        h.str(domain);
        h
    }

    /// Starts a named field (the name is hashed, length-prefixed).
    pub fn field(&mut self, name: &str) -> &mut Self {
        self.0.update([0xF1]);
        self.str(name)
    }

    /// A `u64`, little-endian.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.update(v.to_le_bytes());
        self
    }

    /// A string, length-prefixed.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// Raw bytes, length-prefixed.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u64(b.len() as u64);
        self.0.update(b);
        self
    }

    /// Presence of an optional field: `false` for `None`, then nothing else.
    pub fn present(&mut self, present: bool) -> &mut Self {
        self.0.update([present as u8]);
        self
    }

    /// `usize` values, length-prefixed.
    pub fn usizes(&mut self, v: &[usize]) -> &mut Self {
        self.u64(v.len() as u64);
        self.chunked(v, |x| (*x as u64).to_le_bytes())
    }

    /// `u32` values, length-prefixed.
    pub fn u32s(&mut self, v: &[u32]) -> &mut Self {
        self.u64(v.len() as u64);
        self.chunked(v, |x| x.to_le_bytes())
    }

    /// `f32` values by bit pattern (NaN payloads and signed zeros kept), length-prefixed.
    pub fn f32s(&mut self, v: &[f32]) -> &mut Self {
        self.u64(v.len() as u64);
        self.chunked(v, |x| x.to_bits().to_le_bytes())
    }

    /// Hashes the little-endian encoding of every element, buffered.
    fn chunked<T, const N: usize>(&mut self, v: &[T], enc: impl Fn(&T) -> [u8; N]) -> &mut Self {
        let mut buf = Vec::with_capacity(N * 4096);
        for chunk in v.chunks(4096) {
            buf.clear();
            chunk.iter().for_each(|x| buf.extend_from_slice(&enc(x)));
            self.0.update(&buf);
        }
        self
    }

    /// The digest, lower-case hex (64 characters).
    pub fn hex(self) -> String {
        self.0
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// SHA-256 (hex) of every byte that defines `d`: name, features (values and
/// shape, or token ids, offsets and vocabulary size), targets (labels and
/// class count, or values and target count), subclasses and class names.
/// Any change to the data, including a NaN for an infinity, changes it.
pub fn dataset_fingerprint(d: &Dataset) -> String {
    let mut h = ContentHasher::new("dataset");
    h.field("name").str(d.name());
    h.field("len").u64(d.len() as u64);
    match d.features() {
        Features::Dense { values, shape } => {
            h.field("features.dense");
            h.field("shape").usizes(shape);
            h.field("values").f32s(values);
        }
        Features::Tokens {
            ids,
            offsets,
            vocab_size,
        } => {
            h.field("features.tokens");
            h.field("vocab_size").u64(*vocab_size as u64);
            h.field("offsets").usizes(offsets);
            h.field("ids").u32s(ids);
        }
    }
    match d.targets() {
        Targets::Classes { labels, n_classes } => {
            h.field("targets.classes");
            h.field("n_classes").u64(*n_classes as u64);
            h.field("labels").usizes(labels);
        }
        Targets::Regression { values, n_targets } => {
            h.field("targets.regression");
            h.field("n_targets").u64(*n_targets as u64);
            h.field("values").f32s(values);
        }
        Targets::NextToken {
            prompt_lens,
            vocab_size,
        } => {
            h.field("targets.next_token");
            h.field("vocab_size").u64(*vocab_size as u64);
            h.field("prompt_lens").usizes(prompt_lens);
        }
    }
    h.field("subclasses").present(d.subclasses().is_some());
    if let Some(s) = d.subclasses() {
        h.field("n_subclasses").u64(s.n_subclasses as u64);
        h.field("labels").usizes(&s.labels);
    }
    h.field("class_names").present(d.class_names().is_some());
    if let Some(names) = d.class_names() {
        h.u64(names.len() as u64);
        names.iter().for_each(|n| {
            h.str(n);
        });
    }
    h.hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(values: Vec<f32>, labels: Vec<usize>) -> Dataset {
        let n = labels.len();
        let w = values.len() / n;
        Dataset::new(
            "t",
            Features::Dense {
                values,
                shape: vec![w],
            },
            Targets::Classes {
                labels,
                n_classes: 3,
            },
        )
        .unwrap()
    }

    #[test]
    fn every_feature_value_counts() {
        let base: Vec<f32> = (0..70).map(|i| i as f32).collect();
        let fp = dataset_fingerprint(&dense(base.clone(), vec![0; 10]));
        for i in 0..base.len() {
            let mut v = base.clone();
            v[i] += 0.5;
            assert_ne!(fp, dataset_fingerprint(&dense(v, vec![0; 10])), "value {i}");
        }
        assert_eq!(fp, dataset_fingerprint(&dense(base, vec![0; 10])));
    }

    #[test]
    fn labels_shape_names_and_classes_count() {
        let v: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let a = dense(v.clone(), vec![0, 1, 2, 0]);
        let fp = dataset_fingerprint(&a);
        assert_ne!(fp, dataset_fingerprint(&dense(v.clone(), vec![0, 1, 2, 1])));
        assert_ne!(fp, dataset_fingerprint(&a.clone().renamed("u")));
        let wide = Dataset::new(
            "t",
            Features::Dense {
                values: v.clone(),
                shape: vec![6],
            },
            Targets::Classes {
                labels: vec![0, 1],
                n_classes: 3,
            },
        )
        .unwrap();
        assert_ne!(fp, dataset_fingerprint(&wide));
        let named = a
            .clone()
            .with_class_names(vec!["a".into(), "b".into(), "c".into()])
            .unwrap();
        assert_ne!(fp, dataset_fingerprint(&named));
        let named2 = a
            .with_class_names(vec!["ab".into(), "".into(), "c".into()])
            .unwrap();
        assert_ne!(dataset_fingerprint(&named), dataset_fingerprint(&named2));
    }

    #[test]
    fn regression_targets_keep_nan_and_inf_apart() {
        let t = |y: f32| {
            Dataset::new(
                "r",
                Features::Dense {
                    values: vec![1.0, 2.0],
                    shape: vec![1],
                },
                Targets::Regression {
                    values: vec![0.5, y],
                    n_targets: 1,
                },
            )
        };
        // Datasets reject non-finite targets; where they get through (or in
        // other hashed content) the bit patterns still differ.
        let fps: Vec<String> = [0.0f32, -0.0, 1.0]
            .iter()
            .filter_map(|&y| t(y).ok())
            .map(|d| dataset_fingerprint(&d))
            .collect();
        assert_eq!(fps.len(), 3);
        assert_ne!(fps[0], fps[1]);
        assert_ne!(fps[0], fps[2]);
        let mut a = ContentHasher::new("x");
        a.f32s(&[f32::NAN]);
        let mut b = ContentHasher::new("x");
        b.f32s(&[f32::INFINITY]);
        let mut c = ContentHasher::new("x");
        c.f32s(&[]);
        let (a, b, c) = (a.hex(), b.hex(), c.hex());
        assert!(a != b && b != c && a != c);
    }
}
