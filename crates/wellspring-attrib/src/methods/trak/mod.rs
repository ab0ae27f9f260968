//! TRAK (Park et al. 2023; FiMO §4.3.4, TRAK-M) with GGDA group scores.
//!
//! For each of `M` models `θ_m`, with `f(z) = log p_y − log(1 − p_y)` the
//! margin output and `P` a random projection (default Rademacher to 512
//! dimensions, TRAK's projector; Gaussian, Kronecker or identity on request):
//!
//! ```text
//! Φ_m = [P ∇_θ f(z_i; θ_m)]_i            (n × k training features)
//! K_m = (Φ_mᵀ Φ_m + λ I)⁻¹               (λ = lambda · tr(Φ_mᵀΦ_m)/k)
//! Q_m = diag(1 − p_y(z_i; θ_m))
//! τ(z_i, z_j) = (1/M) Σ_m φ_m(z_j) K_m φ_m(z_i)ᵀ (1 − p_y(z_i; θ_m))
//! ```
//!
//! the ensemble average of TRAK's eq. (6)–(7). `Q` is applied per model
//! (dattri averages `Q` over the models separately; the two agree for
//! `M = 1`), which keeps the score linear in the weighted gradients
//! `q_i ∇f(z_i)` so that group scores are exact sums.
//! The damping `λ` is relative to the mean eigenvalue so that `K_m` exists
//! when `n < k`; TRAK itself uses an unregularised least-squares inverse.
//!
//! Sign: `τ > 0` means training on `z_i` raises the test point's correct-class
//! margin, i.e. helps. Self-influence: `τ(z_i, z_i)`.
//!
//! Regression targets (one output; FiMO App. D.4): the output function is
//! the prediction `f(z)` and `Q_m = diag(f(z_i; θ_m) − y_i)`, the squared
//! error's output-to-loss gradient. A test point's features are multiplied
//! by its own residual `f(z_j) − y_j` as well, so that `τ > 0` still means
//! the training point lowers the test loss (for the margin the matching
//! factor `1 − p_y(z_j)` is positive and TRAK leaves it out):
//! `τ(z_i, z_j) = (1/M) Σ_m r_j φ_m(z_j) K_m φ_m(z_i)ᵀ r_i`.
//!
//! Models: with [`ModelSource::ensemble`] empty the only model is
//! [`ModelSource::model`] (TRAK-M with `M = 1`, FiMO's setting); otherwise the
//! first `M` ensemble members are used and fewer than `M` is an error.
//! [`train_ensemble`] trains them on random `α`-subsets.
//!
//! Group scores (GGDA, Ley et al. 2024, §4): `φ_m(z_i) q_i` is replaced by the
//! batched group gradient `P ∇ Σ_{i∈g} sg(q_i) f(z_i; θ_m)` of the
//! `Q`-weighted margin ([`QWeightedMargin`], `q` held constant). The kernel
//! is, by default, the per-point `K_m` (`GroupKernel::Points`), so group
//! scores equal summed point scores up to rounding; with `group-kernel=batched`
//! it is GGDA's batched empirical Fisher `K_m = (Φ_GᵀΦ_G + λI)⁻¹` from the
//! group gradients `Φ_G` of the margin (GGDA §4, `F̂^batched`): group scores
//! then need `2M` batched group-gradient passes and no per-point gradient at
//! all, which is where GGDA's speedup comes from, at a fidelity that depends
//! on the grouping. Singleton groups give the per-point scores exactly either way.
//!
//! The per-point state (`Φ_m`, `K_m`, `Q_m`) is computed lazily on the first
//! call that needs it, so fitting is cheap and a group-only workflow never
//! pays for it.

mod ensemble;

pub use ensemble::{EnsembleParams, ensemble_member, ensemble_subset, train_ensemble};

use std::sync::{Arc, OnceLock};

use burn::tensor::Tensor;
use burn::tensor::activation::sigmoid;
use nalgebra::DMatrix;
use wellspring_core::{Dataset, Grouping, ScoreMatrix, Targets};
use wellspring_grad::{Logit, OutputFn, OutputSpec, TrakMargin};
use wellspring_models::AnyModel;
use wellspring_models::Target;

use super::gradient::{check_projection, GradFeaturizer, permute_rows, singleton_order};
use super::{MethodInfo, OptionReader};
use crate::blocks::{by_test_blocks, check_self};
use crate::dense::{dot, gemm_abt};
use crate::error::{AttribError, Result};
use crate::projection::ProjectionSpec;
use crate::signature::DataSignature;
pub use super::gradient::GroupKernel;
use crate::source::{ModelSource, check_same_architecture};
use crate::traits::{Attributor, DynAttributor, FittedAttributor, check_grouping};

/// TRAK's default projection.
pub const DEFAULT_TRAK_PROJECTION: ProjectionSpec = ProjectionSpec::Rademacher { dim: 512 };

/// Largest feature width TRAK inverts (`k × k` f64 = 512 MiB).
pub const MAX_TRAK_DIM: usize = 8192;

/// Parameters of TRAK.
#[derive(Clone, Debug, PartialEq)]
pub struct TrakParams {
    models: usize,
    lambda: f64,
    projection: ProjectionSpec,
    seed: u64,
    group_kernel: GroupKernel,
}

impl Default for TrakParams {
    /// One model, Rademacher-512, relative damping `1e-3`, seed 0.
    fn default() -> Self {
        Self {
            models: 1,
            lambda: 1e-3,
            projection: DEFAULT_TRAK_PROJECTION,
            seed: 0,
            group_kernel: GroupKernel::Points,
        }
    }
}

impl TrakParams {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of models `M` (≥ 1).
    pub fn models(mut self, m: usize) -> Self {
        self.models = m;
        self
    }

    /// Damping relative to the mean eigenvalue of `ΦᵀΦ` (≥ 0).
    pub fn lambda(mut self, lambda: f64) -> Self {
        self.lambda = lambda;
        self
    }

    /// The gradient projection.
    pub fn projection(mut self, p: ProjectionSpec) -> Self {
        self.projection = p;
        self
    }

    /// Seed of the projection (shared by every model, as in TRAK).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The kernel of group scores (default [`GroupKernel::Points`]).
    pub fn group_kernel(mut self, g: GroupKernel) -> Self {
        self.group_kernel = g;
        self
    }

    /// Checks `M ≥ 1`, `λ ≥ 0` and the projection.
    pub fn check(&self) -> Result<()> {
        if self.models == 0 {
            return Err(AttribError::invalid_param(
                "trak.models",
                0,
                "must be at least 1",
            ));
        }
        if !self.lambda.is_finite() || self.lambda < 0.0 {
            return Err(AttribError::invalid_param(
                "trak.lambda",
                self.lambda,
                "must be finite and >= 0",
            ));
        }
        check_projection("trak", self.projection)
    }

    fn pick_models<'a>(&self, source: &'a ModelSource) -> Result<Vec<&'a AnyModel>> {
        if source.ensemble.is_empty() {
            if self.models == 1 {
                return Ok(vec![&source.model]);
            }
        } else if source.ensemble.len() >= self.models {
            let picked = &source.ensemble[..self.models];
            for (m, model) in picked.iter().enumerate() {
                check_same_architecture(&source.model, model, &format!("trak ensemble model {m}"))?;
            }
            return Ok(picked.iter().collect());
        }
        Err(AttribError::invalid_param(
            "trak.models",
            self.models,
            format!(
                "the model source has {} ensemble models (ModelSource::with_ensemble; \
                 trak::train_ensemble trains them)",
                source.ensemble.len()
            ),
        ))
    }
}

/// TRAK's margin times `1 − p_y`, the latter held constant (detached):
/// its gradient is `(1 − p_y) ∇ margin`, the `Q`-weighted TRAK feature, so
/// batched group gradients of it are TRAK's group features.
#[derive(Clone, Copy, Debug, Default)]
pub struct QWeightedMargin;

impl OutputFn for QWeightedMargin {
    fn name(&self) -> String {
        "trak-margin-q-weighted".into()
    }
    /// The margin's spec: this function is never stored in a manifest.
    fn spec(&self) -> OutputSpec {
        OutputSpec::TrakMargin
    }
    fn forward(&self, logits: Tensor<2>, target: &Target) -> wellspring_grad::Result<Tensor<1>> {
        let m = TrakMargin.forward(logits, target)?;
        let q = sigmoid(m.clone().neg()).detach();
        Ok(m * q)
    }
}

/// The prediction times its residual `f − y`, the latter held constant:
/// its gradient is `(f − y) ∇f`, the `Q`-weighted TRAK feature of a
/// one-output regression (FiMO App. D.4), so batched group gradients of it
/// are TRAK's group features there.
#[derive(Clone, Copy, Debug, Default)]
pub struct QWeightedPrediction;

impl OutputFn for QWeightedPrediction {
    fn name(&self) -> String {
        "trak-prediction-q-weighted".into()
    }
    /// The prediction's spec: this function is never stored in a manifest.
    fn spec(&self) -> OutputSpec {
        OutputSpec::Logit(0)
    }
    fn forward(&self, logits: Tensor<2>, target: &Target) -> wellspring_grad::Result<Tensor<1>> {
        let f = Logit(0).forward(logits, target)?;
        let Target::Values(y) = target else {
            return Err(wellspring_grad::GradError::unsupported(
                "TRAK for regression",
                "needs regression targets",
            ));
        };
        let b = f.dims()[0];
        let r = (f.clone() - y.clone().reshape([b])).detach();
        Ok(f * r)
    }
}

/// What TRAK differentiates: the margin of a classifier, or the prediction
/// of a one-output regression model (FiMO App. D.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Task {
    Classes,
    Regression,
}

impl Task {
    fn of(train: &Dataset) -> Result<Task> {
        match train.targets() {
            Targets::Classes { .. } => Ok(Task::Classes),
            Targets::Regression { n_targets: 1, .. } => Ok(Task::Regression),
            Targets::Regression { n_targets, .. } => Err(AttribError::unsupported(
                "trak",
                format!(
                    "dataset {} has {n_targets} regression targets; TRAK for regression \
                     (FiMO App. D.4) takes one output",
                    train.name()
                ),
            )),
            Targets::NextToken { .. } => Err(AttribError::unsupported(
                "trak",
                format!(
                    "dataset {} has next-token targets; TRAK's margin needs classes \
                     (for a language model use tracin, ekfac or datainf)",
                    train.name()
                ),
            )),
        }
    }

    fn output(self) -> Arc<dyn OutputFn> {
        match self {
            Task::Classes => Arc::new(TrakMargin),
            Task::Regression => Arc::new(Logit(0)),
        }
    }

    fn weighted_output(self) -> Arc<dyn OutputFn> {
        match self {
            Task::Classes => Arc::new(QWeightedMargin),
            Task::Regression => Arc::new(QWeightedPrediction),
        }
    }

    /// `Q`'s diagonal from the outputs `f` of `data`: `1 − p_y =
    /// sigmoid(−margin)` (in f32 as [`QWeightedMargin`] computes it), or the
    /// residual `f − y`.
    fn weights(self, f: &[f32], data: &Dataset) -> Vec<f32> {
        match (self, data.targets()) {
            (Task::Regression, Targets::Regression { values, .. }) => {
                f.iter().zip(values).map(|(f, y)| f - y).collect()
            }
            _ => f.iter().map(|f| 1.0 / (1.0 + f.exp())).collect(),
        }
    }
}

/// One ensemble member's per-point state, computed on first use (group
/// scores with [`GroupKernel::Batched`] never need it).
#[derive(Debug)]
struct PointState {
    /// `K_m = (ΦᵀΦ + λI)⁻¹`, `k × k` (symmetric).
    kinv: Vec<f32>,
    /// `Q_m Φ K`, `n × k`.
    phik: Vec<f32>,
    /// `Φ`, `n × k` (for self-influence).
    phi: Vec<f32>,
    /// `1 − p_y(z_i; θ_m)`.
    q: Vec<f32>,
}

/// One ensemble member.
#[derive(Debug)]
struct Member {
    feat: GradFeaturizer,
    model: AnyModel,
    point: OnceLock<PointState>,
}

/// Fitted TRAK. The per-point training features are computed lazily, on the
/// first call that needs them (`attribute`, `self_attribute`, singleton or
/// [`GroupKernel::Points`] group scores).
#[derive(Debug)]
pub struct Trak {
    task: Task,
    members: Vec<Member>,
    n: usize,
    k: usize,
    sig: DataSignature,
    train: Dataset,
    params: TrakParams,
    device: wellspring_models::burn_types::Device,
}

/// `(ΦᵀΦ + λ tr(ΦᵀΦ)/k I)⁻¹` in f64 by Cholesky; a failed factorisation
/// (rank-deficient Φ at λ = 0) retries with growing damping and a warning.
fn damped_inverse(phi: &[f32], n: usize, k: usize, lambda: f64) -> Result<Vec<f32>> {
    let m =
        DMatrix::<f64>::from_row_slice(n, k, &phi.iter().map(|&v| v as f64).collect::<Vec<_>>());
    let gram = m.transpose() * &m;
    let mean_eig = (gram.trace() / k as f64).max(f64::MIN_POSITIVE);
    let mut rel = lambda;
    for attempt in 0..8 {
        let mut a = gram.clone();
        for d in 0..k {
            a[(d, d)] += rel * mean_eig;
        }
        if let Some(ch) = a.cholesky() {
            let inv = ch.inverse();
            if attempt > 0 {
                eprintln!(
                    "warning: trak: Phi^T Phi is singular at lambda = {lambda}; used lambda = {rel:e} (relative)"
                );
            }
            // row-major (symmetric, so either order)
            return Ok((0..k * k).map(|i| inv[(i / k, i % k)] as f32).collect());
        }
        rel = if rel == 0.0 { 1e-8 } else { rel * 100.0 };
    }
    Err(AttribError::Solver {
        solver: "trak inverse".into(),
        reason: format!("Phi^T Phi + lambda I not positive definite up to relative lambda {rel:e}"),
    })
}

impl Attributor for TrakParams {
    type Fitted = Trak;

    fn fit(&self, source: &ModelSource, train: &Dataset) -> Result<Trak> {
        self.check()?;
        let task = Task::of(train)?;
        if train.is_empty() {
            return Err(AttribError::mismatch(
                train.name(),
                "the training set is empty",
            ));
        }
        source.model.check_dataset(train)?;
        let models = self.pick_models(source)?;
        let mut members: Vec<Member> = Vec::with_capacity(models.len());
        for model in models {
            model.check_dataset(train)?;
            // every member uses the same seeded projection: share it
            let shared = members.first().map(|m| m.feat.projector());
            let feat = GradFeaturizer::with_projector(
                "trak",
                model,
                &source.device,
                task.output(),
                self.projection,
                self.seed,
                shared,
            )?;
            let k = feat.dim();
            if k > MAX_TRAK_DIM {
                return Err(AttribError::invalid_param(
                    "trak.projection",
                    self.projection,
                    format!(
                        "{k} features would need a {k} x {k} inverse; project to at most \
                         {MAX_TRAK_DIM} dimensions (default rademacher:512)"
                    ),
                ));
            }
            members.push(Member {
                feat,
                model: model.clone(),
                point: OnceLock::new(),
            });
        }
        Ok(Trak {
            task,
            k: members[0].feat.dim(),
            members,
            n: train.len(),
            sig: DataSignature::of(train),
            train: train.clone(),
            params: self.clone(),
            device: source.device.clone(),
        })
    }
}

impl Member {
    /// The per-point state, computed on first use.
    fn point(&self, train: &Dataset, lambda: f64, task: Task) -> Result<&PointState> {
        if let Some(p) = self.point.get() {
            return Ok(p);
        }
        let (n, k) = (train.len(), self.feat.dim());
        let phi = self.feat.features(train)?;
        let kinv = damped_inverse(&phi, n, k, lambda)?;
        let mut phik = vec![0.0f32; n * k];
        gemm_abt(&phi, n, k, &kinv, k, &mut phik);
        let q = task.weights(&self.feat.outputs(train)?, train);
        for (i, &qi) in q.iter().enumerate() {
            phik[i * k..(i + 1) * k].iter_mut().for_each(|v| *v *= qi);
        }
        Ok(self.point.get_or_init(|| PointState { kinv, phik, phi, q }))
    }
}

impl Trak {
    /// Number of ensemble models `M`.
    pub fn n_models(&self) -> usize {
        self.members.len()
    }

    /// TRAK's `Q` diagonal averaged over the models, per training point
    /// (`1 − p̄_i`, or the mean residual for regression; computes the
    /// per-point state if it is not there yet).
    pub fn q(&self) -> Result<Vec<f32>> {
        let mut q = vec![0.0f64; self.n];
        for m in &self.members {
            for (a, &b) in q
                .iter_mut()
                .zip(&m.point(&self.train, self.params.lambda, self.task)?.q)
            {
                *a += b as f64;
            }
        }
        let m = self.members.len() as f64;
        Ok(q.iter().map(|v| (v / m) as f32).collect())
    }

    fn points(&self) -> Result<Vec<&PointState>> {
        self.members
            .iter()
            .map(|m| m.point(&self.train, self.params.lambda, self.task))
            .collect()
    }

    /// Scores of rows `rows_m` (per model `n_rows × k`, already weighted by
    /// `Q_m` and multiplied by `K_m`), averaged over models, for the test points.
    fn scores(
        &self,
        rows: &[&[f32]],
        n_rows: usize,
        test: &[Vec<f32>],
        n_test: usize,
    ) -> Result<ScoreMatrix> {
        let k = self.k;
        let inv_m = 1.0 / self.members.len() as f32;
        by_test_blocks("trak", n_rows, n_test, |c0, cols| {
            let mut acc = vec![0.0f32; cols * n_rows];
            let mut buf = vec![0.0f32; cols * n_rows];
            for (m, r) in rows.iter().enumerate() {
                gemm_abt(
                    &test[m][c0 * k..(c0 + cols) * k],
                    cols,
                    k,
                    r,
                    n_rows,
                    &mut buf,
                );
                acc.iter_mut().zip(&buf).for_each(|(a, b)| *a += b);
            }
            acc.iter_mut().for_each(|v| *v *= inv_m);
            Ok(acc)
        })
    }

    /// Each model's test features `φ_m(z_j)` (times the residual
    /// `f(z_j) − y_j` for regression), one point at a time.
    fn test_features(&self, test: &Dataset) -> Result<Vec<Vec<f32>>> {
        self.sig.check(test)?;
        let k = self.k;
        self.members
            .iter()
            .map(|m| {
                let mut f = m.feat.point_features(test)?;
                if self.task == Task::Regression {
                    let r = self.task.weights(&m.feat.point_outputs(test)?, test);
                    for (row, &rj) in f.chunks_exact_mut(k).zip(&r) {
                        row.iter_mut().for_each(|v| *v *= rj);
                    }
                }
                Ok(f)
            })
            .collect()
    }
}

impl FittedAttributor for Trak {
    fn name(&self) -> &str {
        "trak"
    }

    fn n_train(&self) -> usize {
        self.n
    }

    fn attribute(&self, test: &Dataset) -> Result<ScoreMatrix> {
        let tf = self.test_features(test)?;
        let points = self.points()?;
        let rows: Vec<&[f32]> = points.iter().map(|p| p.phik.as_slice()).collect();
        self.scores(&rows, self.n_train(), &tf, test.len())
    }

    fn self_attribute(&self) -> Result<Vec<f32>> {
        let k = self.k;
        let inv_m = 1.0 / self.members.len() as f32;
        let points = self.points()?;
        let out: Vec<f32> = (0..self.n_train())
            .map(|i| {
                let s: f32 = points
                    .iter()
                    .map(|m| {
                        let d = dot(&m.phi[i * k..(i + 1) * k], &m.phik[i * k..(i + 1) * k]);
                        // regression: the test side's residual too (see the module docs)
                        match self.task {
                            Task::Classes => d,
                            Task::Regression => d * m.q[i],
                        }
                    })
                    .sum();
                s * inv_m
            })
            .collect();
        check_self("trak", &out)?;
        Ok(out)
    }

    /// GGDA group scores from batched group gradients of the margin.
    fn attribute_groups(&self, grouping: &Grouping, test: &Dataset) -> Result<ScoreMatrix> {
        check_grouping(grouping, self.n_train())?;
        let tf = self.test_features(test)?;
        let (k, g) = (self.k, grouping.n_groups());
        if let Some(order) = singleton_order(grouping) {
            let rows: Vec<Vec<f32>> = self
                .points()?
                .iter()
                .map(|p| permute_rows(&p.phik, k, &order))
                .collect();
            let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
            return self.scores(&refs, g, &tf, test.len());
        }
        let rows: Vec<Vec<f32>> = self
            .members
            .iter()
            .map(|m| {
                let weighted = GradFeaturizer::new(
                    "trak",
                    &m.model,
                    &self.device,
                    self.task.weighted_output(),
                    self.params.projection,
                    self.params.seed,
                )?;
                let gf = weighted.group_features(&self.train, grouping)?;
                let kinv = match self.params.group_kernel {
                    GroupKernel::Points => m.point(&self.train, self.params.lambda, self.task)?.kinv.clone(),
                    // GGDA's batched empirical Fisher from the (unweighted)
                    // group gradients of the margin
                    GroupKernel::Batched => {
                        let phi_g = m.feat.group_features(&self.train, grouping)?;
                        damped_inverse(&phi_g, g, k, self.params.lambda)?
                    }
                };
                let mut gk = vec![0.0f32; g * k];
                gemm_abt(&gf, g, k, &kinv, k, &mut gk);
                Ok(gk)
            })
            .collect::<Result<_>>()?;
        let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        self.scores(&refs, g, &tf, test.len())
    }
}

fn build(r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    let mut p = TrakParams::new()
        .projection(r.projection().unwrap_or(DEFAULT_TRAK_PROJECTION))
        .seed(r.seed());
    if let Some(m) = r.get::<usize>("models")? {
        p = p.models(m);
    }
    if let Some(l) = r.get::<f64>("lambda")? {
        p = p.lambda(l);
    }
    match r.get::<String>("group-kernel")?.as_deref() {
        None | Some("points") => {}
        Some("batched") => p = p.group_kernel(GroupKernel::Batched),
        Some(other) => {
            return Err(AttribError::invalid_param(
                "trak.group-kernel",
                other,
                "expected batched (GGDA's batched Fisher) or points",
            ));
        }
    }
    p.check()?;
    Ok(Box::new(p))
}

/// Registry entry.
pub(crate) const INFO: MethodInfo = MethodInfo {
    name: "trak",
    description: "TRAK: projected margin gradients (prediction for regression), (Phi^T Phi + lambda I)^-1, Q = 1 - p (residual), ensembled over M models",
    paper: "Park et al. 2023 (TRAK), eqs. 6-7; FiMO TRAK-M, App. D.4 for regression",
    uses_gradients: true,
    params: &[
        (
            "models",
            "ensemble size M (default 1: the source model; more need ModelSource::ensemble)",
        ),
        (
            "lambda",
            "damping relative to the mean eigenvalue of Phi^T Phi (default 1e-3)",
        ),
        (
            "group-kernel",
            "batched (GGDA's batched Fisher, default) or points (K from per-point features)",
        ),
    ],
    caps: super::Capabilities::projected(DEFAULT_TRAK_PROJECTION).with_ensemble("models"),
    build,
};
