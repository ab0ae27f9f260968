//! Host-side datasets: features plus targets, with no dependency on burn.
//!
//! Loaders (`wellspring-data`) produce a [`Dataset`]; models turn batches of it
//! into tensors; metrics and selectors read labels from it. Everything is checked
//! at construction, so a `Dataset` in hand always has matching lengths, finite
//! features and labels in range.

use crate::error::{CoreError, Result};

/// Per-example inputs.
#[derive(Clone, Debug, PartialEq)]
pub enum Features {
    /// Dense `f32` features, row-major `n × prod(shape)`; `shape` is the shape of
    /// one example (`[784]`, `[1, 28, 28]`, `[3, 32, 32]`, `[d]` for tables).
    Dense {
        /// All values, example after example.
        values: Vec<f32>,
        /// Shape of one example.
        shape: Vec<usize>,
    },
    /// Token-id sequences (text), ragged: example `i` is
    /// `ids[offsets[i]..offsets[i + 1]]`; `offsets.len() == n + 1`.
    Tokens {
        /// All token ids, concatenated.
        ids: Vec<u32>,
        /// Start of each example, plus the end.
        offsets: Vec<usize>,
        /// Vocabulary size; every id is `< vocab_size`.
        vocab_size: usize,
    },
}

impl Features {
    /// Number of examples.
    pub fn len(&self) -> usize {
        match self {
            Features::Dense { values, shape } => {
                let d: usize = shape.iter().product();
                values.len().checked_div(d).unwrap_or(0)
            }
            Features::Tokens { offsets, .. } => offsets.len().saturating_sub(1),
        }
    }

    /// True if there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Flat width of one dense example (`prod(shape)`), or the vocabulary size for tokens.
    pub fn width(&self) -> usize {
        match self {
            Features::Dense { shape, .. } => shape.iter().product(),
            Features::Tokens { vocab_size, .. } => *vocab_size,
        }
    }

    /// Dense row `i` (panics on token features or out of range).
    pub fn dense_row(&self, i: usize) -> &[f32] {
        match self {
            Features::Dense { values, shape } => {
                let d: usize = shape.iter().product();
                &values[i * d..(i + 1) * d]
            }
            Features::Tokens { .. } => panic!("dense_row called on token features"),
        }
    }

    /// Token ids of example `i` (panics on dense features or out of range).
    pub fn token_row(&self, i: usize) -> &[u32] {
        match self {
            Features::Tokens { ids, offsets, .. } => &ids[offsets[i]..offsets[i + 1]],
            Features::Dense { .. } => panic!("token_row called on dense features"),
        }
    }

    /// The rows `idx`, in that order (indices must be in range).
    pub fn select(&self, idx: &[usize]) -> Features {
        match self {
            Features::Dense { values, shape } => {
                let d: usize = shape.iter().product();
                let mut out = Vec::with_capacity(idx.len() * d);
                for &i in idx {
                    out.extend_from_slice(&values[i * d..(i + 1) * d]);
                }
                Features::Dense {
                    values: out,
                    shape: shape.clone(),
                }
            }
            Features::Tokens {
                ids,
                offsets,
                vocab_size,
            } => {
                let mut new_ids = Vec::new();
                let mut new_off = Vec::with_capacity(idx.len() + 1);
                new_off.push(0);
                for &i in idx {
                    new_ids.extend_from_slice(&ids[offsets[i]..offsets[i + 1]]);
                    new_off.push(new_ids.len());
                }
                Features::Tokens {
                    ids: new_ids,
                    offsets: new_off,
                    vocab_size: *vocab_size,
                }
            }
        }
    }

    fn check(&self, name: &str) -> Result<()> {
        match self {
            Features::Dense { values, shape } => {
                let d: usize = shape.iter().product();
                if d == 0 {
                    return Err(CoreError::shape(
                        format!("{name} features"),
                        "a non-empty example shape",
                        format!("{shape:?}"),
                    ));
                }
                if values.len() % d != 0 {
                    return Err(CoreError::shape(
                        format!("{name} features"),
                        format!("a multiple of {d} values (example shape {shape:?})"),
                        values.len(),
                    ));
                }
                if let Some(p) = values.iter().position(|v| !v.is_finite()) {
                    return Err(CoreError::NonFinite {
                        what: format!("{name} features (row {}, column {})", p / d, p % d),
                        position: p,
                        value: values[p] as f64,
                    });
                }
            }
            Features::Tokens {
                ids,
                offsets,
                vocab_size,
            } => {
                if offsets.first() != Some(&0)
                    || offsets.last() != Some(&ids.len())
                    || offsets.windows(2).any(|w| w[0] > w[1])
                {
                    return Err(CoreError::shape(
                        format!("{name} token offsets"),
                        format!("non-decreasing from 0 to {}", ids.len()),
                        "offsets that do not",
                    ));
                }
                if let Some(p) = ids.iter().position(|&t| t as usize >= *vocab_size) {
                    let row = offsets.partition_point(|&o| o <= p) - 1;
                    return Err(CoreError::IndexOutOfRange {
                        what: format!("{name} token ids (row {row})"),
                        index: ids[p] as usize,
                        len: *vocab_size,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Per-example targets.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// Class labels in `0..n_classes`.
    Classes {
        /// One label per example.
        labels: Vec<usize>,
        /// Number of classes.
        n_classes: usize,
    },
    /// Real-valued targets, row-major `n × n_targets`.
    Regression {
        /// All targets, example after example.
        values: Vec<f32>,
        /// Targets per example.
        n_targets: usize,
    },
    /// Language modelling: each example (a token sequence) predicts its own
    /// next tokens. Token `t` of example `i` is a target when
    /// `t ≥ max(1, prompt_lens[i])`: the first `prompt_lens[i]` tokens are
    /// context only (0 for a plain corpus sentence; a prompt's length for
    /// the log-probability of a completion).
    NextToken {
        /// Context-only prefix length of every example.
        prompt_lens: Vec<usize>,
        /// Vocabulary size (the features' `vocab_size`).
        vocab_size: usize,
    },
}

impl Targets {
    /// Number of examples.
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes { labels, .. } => labels.len(),
            Targets::Regression { values, n_targets } => values.len() / (*n_targets).max(1),
            Targets::NextToken { prompt_lens, .. } => prompt_lens.len(),
        }
    }

    /// True if there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Output width a model needs: classes, or regression targets.
    pub fn output_dim(&self) -> usize {
        match self {
            Targets::Classes { n_classes, .. } => *n_classes,
            Targets::Regression { n_targets, .. } => *n_targets,
            Targets::NextToken { vocab_size, .. } => *vocab_size,
        }
    }

    /// The rows `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Targets {
        match self {
            Targets::Classes { labels, n_classes } => Targets::Classes {
                labels: idx.iter().map(|&i| labels[i]).collect(),
                n_classes: *n_classes,
            },
            Targets::Regression { values, n_targets } => {
                let t = *n_targets;
                let mut out = Vec::with_capacity(idx.len() * t);
                for &i in idx {
                    out.extend_from_slice(&values[i * t..(i + 1) * t]);
                }
                Targets::Regression {
                    values: out,
                    n_targets: t,
                }
            }
            Targets::NextToken {
                prompt_lens,
                vocab_size,
            } => Targets::NextToken {
                prompt_lens: idx.iter().map(|&i| prompt_lens[i]).collect(),
                vocab_size: *vocab_size,
            },
        }
    }

    fn check(&self, name: &str) -> Result<()> {
        match self {
            Targets::Classes { labels, n_classes } => {
                if *n_classes < 2 {
                    return Err(CoreError::invalid_param(
                        format!("{name} n_classes"),
                        n_classes,
                        "need at least 2 classes",
                    ));
                }
                if let Some(row) = labels.iter().position(|&l| l >= *n_classes) {
                    return Err(CoreError::invalid_param(
                        format!("{name} label in row {row}"),
                        labels[row],
                        format!("out of range for {n_classes} classes"),
                    ));
                }
            }
            Targets::Regression { values, n_targets } => {
                if *n_targets == 0 || values.len() % n_targets != 0 {
                    return Err(CoreError::shape(
                        format!("{name} targets"),
                        format!("a multiple of {n_targets}"),
                        values.len(),
                    ));
                }
                if let Some(p) = values.iter().position(|v| !v.is_finite()) {
                    return Err(CoreError::NonFinite {
                        what: format!("{name} targets (row {})", p / n_targets),
                        position: p,
                        value: values[p] as f64,
                    });
                }
            }
            Targets::NextToken { vocab_size, .. } => {
                if *vocab_size < 2 {
                    return Err(CoreError::invalid_param(
                        format!("{name} vocab_size"),
                        vocab_size,
                        "need at least 2 tokens",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A labelled dataset held in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    name: String,
    features: Features,
    targets: Targets,
    subclasses: Option<Subclasses>,
    class_names: Option<Vec<String>>,
}

/// Fine-grained labels kept when a dataset is relabelled into superclasses
/// (SVE's CIFAR-10B: "vehicle vs not", keeping the original class as subclass).
#[derive(Clone, Debug, PartialEq)]
pub struct Subclasses {
    /// Subclass id of every example.
    pub labels: Vec<usize>,
    /// Number of subclasses.
    pub n_subclasses: usize,
}

impl Dataset {
    /// A checked dataset: lengths match, features finite, labels in range.
    pub fn new(name: impl Into<String>, features: Features, targets: Targets) -> Result<Self> {
        let name = name.into();
        features.check(&name)?;
        targets.check(&name)?;
        if features.len() != targets.len() {
            return Err(CoreError::shape(
                format!("{name} targets"),
                format!("{} rows (one per example)", features.len()),
                format!("{} rows", targets.len()),
            ));
        }
        if let Targets::NextToken {
            prompt_lens,
            vocab_size,
        } = &targets
        {
            let Features::Tokens {
                vocab_size: v,
                offsets,
                ..
            } = &features
            else {
                return Err(CoreError::invalid_param(
                    format!("{name} targets"),
                    "next-token targets",
                    "need token features",
                ));
            };
            if v != vocab_size {
                return Err(CoreError::invalid_param(
                    format!("{name} next-token vocab_size"),
                    vocab_size,
                    format!("the token features have vocab_size {v}"),
                ));
            }
            for (i, &p) in prompt_lens.iter().enumerate() {
                let len = offsets[i + 1] - offsets[i];
                if len <= p.max(1) {
                    return Err(CoreError::invalid_param(
                        format!("{name} row {i}"),
                        format!("{len} tokens with a {p}-token prompt"),
                        "needs at least one token to predict after the prompt (and after the first token)",
                    ));
                }
            }
        }
        Ok(Self {
            name,
            features,
            targets,
            subclasses: None,
            class_names: None,
        })
    }

    /// Attaches subclass labels (checked: one per example, in range).
    pub fn with_subclasses(mut self, labels: Vec<usize>, n_subclasses: usize) -> Result<Self> {
        if labels.len() != self.len() {
            return Err(CoreError::shape(
                format!("{} subclasses", self.name),
                self.len(),
                labels.len(),
            ));
        }
        if let Some(row) = labels.iter().position(|&l| l >= n_subclasses) {
            return Err(CoreError::invalid_param(
                format!("{} subclass in row {row}", self.name),
                labels[row],
                format!("out of range for {n_subclasses} subclasses"),
            ));
        }
        self.subclasses = Some(Subclasses {
            labels,
            n_subclasses,
        });
        Ok(self)
    }

    /// Attaches class names (checked: one per class).
    pub fn with_class_names(mut self, names: Vec<String>) -> Result<Self> {
        if let Some(c) = self.n_classes()
            && names.len() != c
        {
            return Err(CoreError::shape(
                format!("{} class names", self.name),
                c,
                names.len(),
            ));
        }
        self.class_names = Some(names);
        Ok(self)
    }

    /// Renames the dataset (e.g. "mnist-train[:5000]").
    pub fn renamed(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Name used in reports and error messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// True if there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The features.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// The targets.
    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    /// Class labels, if this is a classification set.
    pub fn labels(&self) -> Option<&[usize]> {
        match &self.targets {
            Targets::Classes { labels, .. } => Some(labels),
            Targets::Regression { .. } | Targets::NextToken { .. } => None,
        }
    }

    /// Class labels, or an error naming the dataset if it is a regression set.
    pub fn labels_checked(&self) -> Result<&[usize]> {
        self.labels().ok_or_else(|| {
            CoreError::invalid_param(
                format!("dataset {}", self.name),
                match self.targets {
                    Targets::NextToken { .. } => "next-token targets",
                    _ => "regression targets",
                },
                "this needs class labels",
            )
        })
    }

    /// Number of classes, if classification.
    pub fn n_classes(&self) -> Option<usize> {
        match &self.targets {
            Targets::Classes { n_classes, .. } => Some(*n_classes),
            Targets::Regression { .. } | Targets::NextToken { .. } => None,
        }
    }

    /// Subclass labels, if attached.
    pub fn subclasses(&self) -> Option<&Subclasses> {
        self.subclasses.as_ref()
    }

    /// Class names, if attached.
    pub fn class_names(&self) -> Option<&[String]> {
        self.class_names.as_deref()
    }

    /// Per-class counts (classification only).
    pub fn class_counts(&self) -> Option<Vec<usize>> {
        let (labels, c) = match &self.targets {
            Targets::Classes { labels, n_classes } => (labels, *n_classes),
            Targets::Regression { .. } | Targets::NextToken { .. } => return None,
        };
        let mut counts = vec![0; c];
        for &l in labels {
            counts[l] += 1;
        }
        Some(counts)
    }

    /// The examples `idx`, in that order, checked for range and non-emptiness.
    pub fn select(&self, idx: &[usize]) -> Result<Dataset> {
        if idx.is_empty() {
            return Err(CoreError::Empty {
                what: format!("selection from {}", self.name),
            });
        }
        if let Some(&bad) = idx.iter().find(|&&i| i >= self.len()) {
            return Err(CoreError::IndexOutOfRange {
                what: format!("selection from {}", self.name),
                index: bad,
                len: self.len(),
            });
        }
        Ok(Dataset {
            name: self.name.clone(),
            features: self.features.select(idx),
            targets: self.targets.select(idx),
            subclasses: self.subclasses.as_ref().map(|s| Subclasses {
                labels: idx.iter().map(|&i| s.labels[i]).collect(),
                n_subclasses: s.n_subclasses,
            }),
            class_names: self.class_names.clone(),
        })
    }

    /// A copy with new class labels (checked against `n_classes`); subclasses are kept.
    pub fn with_labels(&self, labels: Vec<usize>, n_classes: usize) -> Result<Dataset> {
        let targets = Targets::Classes { labels, n_classes };
        targets.check(&self.name)?;
        if targets.len() != self.len() {
            return Err(CoreError::shape(
                format!("{} labels", self.name),
                self.len(),
                targets.len(),
            ));
        }
        let mut out = self.clone();
        if out.n_classes() != Some(n_classes) {
            out.class_names = None;
        }
        out.targets = targets;
        Ok(out)
    }

    /// A copy with new features (same number of examples, checked).
    pub fn with_features(&self, features: Features) -> Result<Dataset> {
        features.check(&self.name)?;
        if features.len() != self.len() {
            return Err(CoreError::shape(
                format!("{} features", self.name),
                self.len(),
                features.len(),
            ));
        }
        let mut out = self.clone();
        out.features = features;
        Ok(out)
    }
}

/// A train/test (and optional validation) split of one dataset.
#[derive(Clone, Debug)]
pub struct Split {
    /// Training set.
    pub train: Dataset,
    /// Test set.
    pub test: Dataset,
    /// Validation set (selection methods such as GLISTER need one).
    pub valid: Option<Dataset>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Dataset {
        Dataset::new(
            "toy",
            Features::Dense {
                values: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
                shape: vec![2],
            },
            Targets::Classes {
                labels: vec![0, 1, 1],
                n_classes: 2,
            },
        )
        .unwrap()
    }

    #[test]
    fn select_and_counts() {
        let d = toy();
        assert_eq!(d.len(), 3);
        assert_eq!(d.class_counts().unwrap(), vec![1, 2]);
        let s = d.select(&[2, 0]).unwrap();
        assert_eq!(s.features().dense_row(0), &[4.0, 5.0]);
        assert_eq!(s.labels().unwrap(), &[1, 0]);
    }

    #[test]
    fn bad_datasets_are_named() {
        let e = Dataset::new(
            "train.csv",
            Features::Dense {
                values: vec![0.0; 6],
                shape: vec![2],
            },
            Targets::Classes {
                labels: vec![0, 12, 1],
                n_classes: 10,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("row 1") && e.contains("12") && e.contains("10 classes"),
            "{e}"
        );
        let e = Dataset::new(
            "x",
            Features::Dense {
                values: vec![0.0, f32::NAN, 0.0, 0.0],
                shape: vec![2],
            },
            Targets::Classes {
                labels: vec![0, 1],
                n_classes: 2,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("row 0, column 1"), "{e}");
        let e = Dataset::new(
            "x",
            Features::Dense {
                values: vec![0.0; 4],
                shape: vec![2],
            },
            Targets::Classes {
                labels: vec![0, 1, 1],
                n_classes: 2,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("2 rows"), "{e}");
        let e = Dataset::new(
            "sst",
            Features::Tokens {
                ids: vec![1, 2, 9],
                offsets: vec![0, 2, 3],
                vocab_size: 5,
            },
            Targets::Classes {
                labels: vec![0, 1],
                n_classes: 2,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("row 1") && e.contains("index 9"), "{e}");
        assert!(toy().select(&[]).is_err());
        assert!(
            toy()
                .select(&[3])
                .unwrap_err()
                .to_string()
                .contains("index 3")
        );
    }
}
