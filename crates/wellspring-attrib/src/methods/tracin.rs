//! TracIn and TracInCP (Pruthi et al. 2020, eq. 3; App. E–F for projections).
//!
//! ```text
//! TracInCP(z_i, z_j) = Σ_c η_c  g_c(z_i) · g_c(z_j),     g_c(z) = P ∇_θ ℓ(z; θ_c)
//! ```
//!
//! over the checkpoints `θ_c` of [`ModelSource::checkpoints`] (oldest first),
//! each weighted by the learning rate `η_c` it was saved with. `tracin` is
//! the one-checkpoint version on the final model, weighted by the source's
//! training learning rate (1 when unknown; `--param lr=` overrides).
//!
//! Sign: a gradient step on `z_i` at checkpoint `c` lowers the test loss by
//! `η_c g_c(z_i) · g_c(z_j)` to first order (the paper's "proponents" are
//! positive), so positive = helps. Self-influence `Σ_c η_c ‖g_c(z_i)‖²`.
//!
//! Group scores (GGDA, Ley et al. 2024, §4): the batched group gradient
//! `P Σ_{i∈g} ∇ℓ(z_i; θ_c)` replaces `g_c(z_i)` per checkpoint.
//! Default projection: Kronecker 512 (App. F); any [`ProjectionSpec`] works.

use wellspring_core::Dataset;

use super::grad_dot::{GradSimilarity, Similarity};
use super::gradient::{DEFAULT_PROJECTION, check_projection};
use super::{MethodInfo, OptionReader};
use crate::error::{AttribError, Result, positive};
use crate::projection::ProjectionSpec;
use crate::source::{ModelSource, check_lr};
use crate::traits::{Attributor, DynAttributor};

/// Which models TracIn sums over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TracInMode {
    /// The final model only (`tracin`).
    Final,
    /// Every checkpoint in [`ModelSource::checkpoints`] (`tracin-cp`).
    Checkpoints,
}

/// Parameters of TracIn / TracInCP.
#[derive(Clone, Debug, PartialEq)]
pub struct TracInParams {
    mode: TracInMode,
    lr: Option<f64>,
    projection: ProjectionSpec,
    seed: u64,
}

impl TracInParams {
    /// TracIn on the final model or TracInCP over checkpoints; Kronecker-512
    /// projection, seed 0.
    pub fn new(mode: TracInMode) -> Self {
        Self {
            mode,
            lr: None,
            projection: DEFAULT_PROJECTION,
            seed: 0,
        }
    }

    /// Learning rate weighting the final model (`tracin` only; default: the
    /// source's training learning rate, else 1).
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = Some(lr);
        self
    }

    /// The gradient projection.
    pub fn projection(mut self, p: ProjectionSpec) -> Self {
        self.projection = p;
        self
    }

    /// Seed of the projection.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn name(&self) -> &'static str {
        match self.mode {
            TracInMode::Final => "tracin",
            TracInMode::Checkpoints => "tracin-cp",
        }
    }

    /// Checks the learning rate (> 0) and projection.
    pub fn check(&self) -> Result<()> {
        if let Some(lr) = self.lr {
            positive(&format!("{}.lr", self.name()), lr)?;
            if self.mode == TracInMode::Checkpoints {
                return Err(AttribError::invalid_param(
                    "tracin-cp.lr",
                    lr,
                    "tracin-cp weights each checkpoint by its own learning rate",
                ));
            }
        }
        check_projection(self.name(), self.projection)
    }
}

impl Attributor for TracInParams {
    type Fitted = GradSimilarity;

    fn fit(&self, source: &ModelSource, train: &Dataset) -> Result<GradSimilarity> {
        self.check()?;
        let models = match self.mode {
            TracInMode::Final => {
                let lr = match (self.lr, &source.train_config) {
                    (Some(lr), _) => lr,
                    (None, Some(c)) => {
                        check_lr("tracin: the training configuration's lr", c.lr)?;
                        c.lr
                    }
                    (None, None) => 1.0,
                };
                vec![(source.model.clone(), lr)]
            }
            TracInMode::Checkpoints => {
                source.check_checkpoints("tracin-cp")?;
                source
                    .checkpoints
                    .iter()
                    .map(|c| (c.model.clone(), c.lr))
                    .collect()
            }
        };
        GradSimilarity::fit(
            self.name(),
            Similarity::Dot,
            &models,
            &source.device,
            self.projection,
            self.seed,
            train,
        )
    }
}

fn build_mode(mode: TracInMode, r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    let mut p = TracInParams::new(mode)
        .projection(r.projection().unwrap_or(DEFAULT_PROJECTION))
        .seed(r.seed());
    if mode == TracInMode::Final
        && let Some(lr) = r.get::<f64>("lr")?
    {
        p = p.lr(lr);
    }
    p.check()?;
    Ok(Box::new(p))
}

fn build_final(r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    build_mode(TracInMode::Final, r)
}

fn build_cp(r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    build_mode(TracInMode::Checkpoints, r)
}

/// Registry entry of TracIn (final model).
pub(crate) const FINAL: MethodInfo = MethodInfo {
    name: "tracin",
    description: "lr * (projected) loss-gradient inner product at the final model",
    paper: "Pruthi et al. 2020 (TracIn), eq. 3 with one checkpoint; App. E-F",
    uses_gradients: true,
    params: &[("lr", "weight of the final model (default: training lr, else 1)")],
    caps: super::Capabilities::projected(DEFAULT_PROJECTION),
    build: build_final,
};

/// Registry entry of TracInCP.
pub(crate) const CHECKPOINTS: MethodInfo = MethodInfo {
    name: "tracin-cp",
    description: "sum over checkpoints of lr_c * (projected) loss-gradient inner products",
    paper: "Pruthi et al. 2020 (TracInCP), eq. 3; App. E-F",
    uses_gradients: true,
    params: &[],
    caps: super::Capabilities::projected(DEFAULT_PROJECTION).with_checkpoints(),
    build: build_cp,
};
