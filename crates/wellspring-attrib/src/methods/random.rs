//! Random baseline: seeded uniform scores, the floor every metric is read against.

use rand::RngExt;
use wellspring_core::{ChaCha8Rng, Dataset, Grouping, ScoreMatrix, derive_seed, derive_seed_str, rng};

use super::{MethodInfo, OptionReader};
use crate::blocks::{by_test_blocks, check_self, groups_by_test_blocks, par_columns};
use crate::error::{AttribError, Result};
use crate::signature::{DataSignature, point_hash};
use crate::source::ModelSource;
use crate::traits::{Attributor, DynAttributor, FittedAttributor};

/// Parameters of the random baseline: scores `U(low, high)`, seeded.
#[derive(Clone, Debug, PartialEq)]
pub struct RandomParams {
    seed: u64,
    low: f32,
    high: f32,
}

impl Default for RandomParams {
    /// `U(−1, 1)`, seed 0.
    fn default() -> Self {
        Self {
            seed: 0,
            low: -1.0,
            high: 1.0,
        }
    }
}

impl RandomParams {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Seed of the scores.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Range of the uniform scores.
    pub fn range(mut self, low: f32, high: f32) -> Self {
        self.low = low;
        self.high = high;
        self
    }

    /// Errors unless `low < high`, both finite.
    pub fn check(&self) -> Result<()> {
        if !(self.low.is_finite() && self.high.is_finite() && self.low < self.high) {
            return Err(AttribError::invalid_param(
                "random.range",
                format!("[{}, {})", self.low, self.high),
                "need finite low < high",
            ));
        }
        Ok(())
    }
}

/// The fitted random baseline.
#[derive(Clone, Debug)]
pub struct RandomScores {
    p: RandomParams,
    n_train: usize,
    sig: DataSignature,
}

impl Attributor for RandomParams {
    type Fitted = RandomScores;

    fn fit(&self, _source: &ModelSource, train: &Dataset) -> Result<RandomScores> {
        self.check()?;
        Ok(RandomScores {
            p: self.clone(),
            n_train: train.len(),
            sig: DataSignature::of(train),
        })
    }
}

impl RandomScores {
    fn fill(&self, r: &mut ChaCha8Rng, out: &mut [f32]) {
        let (lo, w) = (self.p.low, self.p.high - self.p.low);
        out.iter_mut().for_each(|v| *v = lo + w * r.random::<f32>());
    }

    /// Test point `j` gets its own stream `derive_seed(seed, point_hash(j))`,
    /// so its scores do not depend on its position, chunking or threads.
    fn block(&self, hashes: &[u64], col0: usize, cols: usize) -> Vec<f32> {
        par_columns(self.n_train, cols, |j, out| {
            self.fill(&mut rng(derive_seed(self.p.seed, hashes[col0 + j])), out)
        })
    }

    fn hashes(&self, test: &Dataset) -> Result<Vec<u64>> {
        self.sig.check(test)?;
        Ok((0..test.len()).map(|j| point_hash(test, j)).collect())
    }
}

impl FittedAttributor for RandomScores {
    fn name(&self) -> &str {
        "random"
    }

    fn n_train(&self) -> usize {
        self.n_train
    }

    fn attribute(&self, test: &Dataset) -> Result<ScoreMatrix> {
        let h = self.hashes(test)?;
        by_test_blocks("random", self.n_train, test.len(), |c0, c| Ok(self.block(&h, c0, c)))
    }

    fn self_attribute(&self) -> Result<Vec<f32>> {
        let mut out = vec![0.0; self.n_train];
        self.fill(&mut rng(derive_seed_str(self.p.seed, "self")), &mut out);
        check_self("random", &out)?;
        Ok(out)
    }

    fn attribute_groups(&self, grouping: &Grouping, test: &Dataset) -> Result<ScoreMatrix> {
        let h = self.hashes(test)?;
        groups_by_test_blocks("random", grouping, self.n_train, test.len(), |c0, c| {
            Ok(self.block(&h, c0, c))
        })
    }
}

fn build(r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    let mut p = RandomParams::new().seed(r.seed());
    let low = r.get::<f32>("low")?.unwrap_or(p.low);
    let high = r.get::<f32>("high")?.unwrap_or(p.high);
    p = p.range(low, high);
    p.check()?;
    Ok(Box::new(p))
}

/// Registry entry.
pub(crate) const INFO: MethodInfo = MethodInfo {
    name: "random",
    description: "seeded uniform scores U(low, high): the baseline floor",
    paper: "baseline",
    uses_gradients: false,
    params: &[("low", "lower bound (default -1)"), ("high", "upper bound (default 1)")],
    caps: super::Capabilities::NONE,
    build,
};
