//! [`DataSignature`]: what an attributor remembers of its training set so a
//! test set of the wrong kind is rejected with a clear message.

use wellspring_core::{Dataset, Features, Targets};

use crate::error::{AttribError, Result};

/// Feature kind, width and task of a dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataSignature {
    name: String,
    features: FeatureKind,
    task: Task,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum FeatureKind {
    Dense { shape: Vec<usize>, width: usize },
    Tokens { vocab: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Task {
    Classes(usize),
    Regression(usize),
    NextToken(usize),
}

impl DataSignature {
    /// The signature of `data` (its name, feature kind and width, task).
    pub fn of(data: &Dataset) -> Self {
        let features = match data.features() {
            Features::Dense { shape, .. } => FeatureKind::Dense {
                shape: shape.clone(),
                width: shape.iter().product(),
            },
            Features::Tokens { vocab_size, .. } => FeatureKind::Tokens { vocab: *vocab_size },
        };
        let task = match data.targets() {
            Targets::Classes { n_classes, .. } => Task::Classes(*n_classes),
            Targets::Regression { n_targets, .. } => Task::Regression(*n_targets),
            Targets::NextToken { vocab_size, .. } => Task::NextToken(*vocab_size),
        };
        Self {
            name: data.name().to_string(),
            features,
            task,
        }
    }

    /// Checks that `test` has the same feature kind and width and the same
    /// task (class count or target count) as the training set, and is not empty.
    pub fn check(&self, test: &Dataset) -> Result<()> {
        if test.is_empty() {
            return Err(AttribError::mismatch(test.name(), "the test set is empty"));
        }
        let other = DataSignature::of(test);
        match (&self.features, &other.features) {
            (
                FeatureKind::Dense { width: a, shape },
                FeatureKind::Dense {
                    width: b,
                    shape: sb,
                },
            ) if a != b => {
                return Err(AttribError::mismatch(
                    test.name(),
                    format!(
                        "{b} features per example (shape {sb:?}), the training set {} has {a} (shape {shape:?})",
                        self.name
                    ),
                ));
            }
            (FeatureKind::Tokens { vocab: a }, FeatureKind::Tokens { vocab: b }) if b > a => {
                return Err(AttribError::mismatch(
                    test.name(),
                    format!(
                        "token vocabulary of {b} ids, the training set {} has {a}",
                        self.name
                    ),
                ));
            }
            (FeatureKind::Dense { .. }, FeatureKind::Tokens { .. })
            | (FeatureKind::Tokens { .. }, FeatureKind::Dense { .. }) => {
                return Err(AttribError::mismatch(
                    test.name(),
                    format!(
                        "feature kind differs from the training set {} (dense vs tokens)",
                        self.name
                    ),
                ));
            }
            _ => {}
        }
        let same_task = match (self.task, other.task) {
            // A test set of prompts/completions may use fewer token ids.
            (Task::NextToken(a), Task::NextToken(b)) => b <= a,
            (a, b) => a == b,
        };
        if !same_task {
            let show = |t: Task| match t {
                Task::Classes(c) => format!("{c} classes"),
                Task::Regression(t) => format!("{t} regression targets"),
                Task::NextToken(v) => format!("next-token targets over {v} token ids"),
            };
            return Err(AttribError::mismatch(
                test.name(),
                format!(
                    "{}, the training set {} has {}",
                    show(other.task),
                    self.name,
                    show(self.task)
                ),
            ));
        }
        Ok(())
    }
}

/// A stable 64-bit hash (FNV-1a) of example `i`'s features: methods that draw
/// randomness per test point seed it with `derive_seed(seed, point_hash(..))`,
/// so scores depend on the point itself, not on its position in a chunk.
pub fn point_hash(data: &Dataset, i: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: [u8; 4]| {
        for b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
    };
    match data.features() {
        Features::Dense { .. } => data
            .features()
            .dense_row(i)
            .iter()
            .for_each(|v| eat(v.to_bits().to_le_bytes())),
        Features::Tokens { .. } => data
            .features()
            .token_row(i)
            .iter()
            .for_each(|t| eat(t.to_le_bytes())),
    }
    h
}
