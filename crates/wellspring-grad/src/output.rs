//! Output functions: the per-example scalar a method differentiates.
//!
//! Every [`OutputFn`] maps logits `z ∈ R^{b×c}` and targets to `f(z_i, y_i) ∈ R^b`
//! with burn ops, so autodiff differentiates it; where Gauss-Newton needs it, it
//! also gives the per-example Hessian `∂²f/∂z²` on the host in f64.

use std::fmt::Debug;

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};
use wellspring_models::Target;

use crate::error::{GradError, Result};

/// One example's target on the host, for [`OutputFn::logit_hessian`].
#[derive(Clone, Copy, Debug)]
pub enum HostTarget<'a> {
    /// Class id.
    Class(usize),
    /// Regression values (one per output).
    Values(&'a [f32]),
}

/// What is differentiated per example (loss, margin, probability or a logit).
pub trait OutputFn: Send + Sync + Debug {
    /// Stable name used in manifests and cache keys (`cross-entropy`, `logit(3)`).
    fn name(&self) -> String;

    /// The serialisable description of this function.
    fn spec(&self) -> OutputSpec;

    /// Per-example outputs `[b]` from logits `[b, c]`, as differentiable burn ops.
    fn forward(&self, logits: Tensor<2>, target: &Target) -> Result<Tensor<1>>;

    /// Per-example Hessian `∂²f/∂z∂zᵀ` (row-major `c × c`, written to `out`) at
    /// logits `z`, in f64. Used by Gauss-Newton products `Jᵀ H J` (Martens 2010;
    /// FiMO eq. 10, second term dropped).
    fn logit_hessian(&self, z: &[f64], target: HostTarget<'_>, out: &mut [f64]) -> Result<()> {
        let _ = (z, target, out);
        Err(GradError::unsupported(
            format!("logit Hessian of {}", self.name()),
            "this output function provides no Hessian w.r.t. the logits",
        ))
    }
}

/// Serialisable names of the built-in output functions (for manifests and
/// configs); [`OutputSpec::build`] turns one into an [`OutputFn`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputSpec {
    /// [`CrossEntropy`].
    CrossEntropy,
    /// [`Mse`].
    Mse,
    /// [`TrakMargin`].
    TrakMargin,
    /// [`CorrectProb`].
    CorrectProb,
    /// [`Logit`] of this class.
    Logit(usize),
}

impl OutputSpec {
    /// The output function this spec names.
    pub fn build(&self) -> Box<dyn OutputFn> {
        match self {
            OutputSpec::CrossEntropy => Box::new(CrossEntropy),
            OutputSpec::Mse => Box::new(Mse),
            OutputSpec::TrakMargin => Box::new(TrakMargin),
            OutputSpec::CorrectProb => Box::new(CorrectProb),
            OutputSpec::Logit(k) => Box::new(Logit(*k)),
        }
    }
}

fn classes(target: &Target, who: &str) -> Result<Tensor<1, Int>> {
    match target {
        Target::Classes(y) => Ok(y.clone()),
        Target::Values(_) => Err(GradError::unsupported(
            who.to_string(),
            "needs class labels, the dataset has regression targets (use Mse or Logit)",
        )),
    }
}

fn check_classes(z: &[f64], y: usize, out: &[f64], who: &str) -> Result<usize> {
    let c = z.len();
    if y >= c {
        return Err(GradError::param(
            format!("{who} target"),
            y,
            format!("class id out of range for {c} logits"),
        ));
    }
    if out.len() != c * c {
        return Err(GradError::shape(
            format!("{who} Hessian buffer"),
            c * c,
            out.len(),
        ));
    }
    Ok(c)
}

fn softmax(z: &[f64]) -> Vec<f64> {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

fn gather_y(logits: Tensor<2>, y: Tensor<1, Int>) -> Tensor<1> {
    let [b, _] = logits.dims();
    logits.gather(1, y.reshape([b, 1])).reshape([b])
}

/// Softmax cross-entropy `−log p_y = logsumexp(z) − z_y` (the training loss).
#[derive(Clone, Copy, Debug, Default)]
pub struct CrossEntropy;

impl OutputFn for CrossEntropy {
    fn name(&self) -> String {
        "cross-entropy".into()
    }
    fn spec(&self) -> OutputSpec {
        OutputSpec::CrossEntropy
    }
    fn forward(&self, logits: Tensor<2>, target: &Target) -> Result<Tensor<1>> {
        let y = classes(target, "cross-entropy")?;
        Ok(gather_y(log_softmax(logits, 1), y).neg())
    }
    /// `diag(p) − p pᵀ`.
    fn logit_hessian(&self, z: &[f64], target: HostTarget<'_>, out: &mut [f64]) -> Result<()> {
        let HostTarget::Class(y) = target else {
            return Err(GradError::unsupported(
                "cross-entropy",
                "needs a class label, got regression values",
            ));
        };
        let c = check_classes(z, y, out, "cross-entropy")?;
        let p = softmax(z);
        for j in 0..c {
            for k in 0..c {
                out[j * c + k] = if j == k { p[j] } else { 0.0 } - p[j] * p[k];
            }
        }
        Ok(())
    }
}

/// Squared error averaged over outputs, `mean_j (z_j − y_j)²` (the trainer's
/// `Loss::Mse`, per example).
#[derive(Clone, Copy, Debug, Default)]
pub struct Mse;

impl OutputFn for Mse {
    fn name(&self) -> String {
        "mse".into()
    }
    fn spec(&self) -> OutputSpec {
        OutputSpec::Mse
    }
    fn forward(&self, logits: Tensor<2>, target: &Target) -> Result<Tensor<1>> {
        let [b, c] = logits.dims();
        match target {
            Target::Values(y) => {
                if y.dims() != [b, c] {
                    return Err(GradError::shape(
                        "mse targets",
                        format!("[{b}, {c}]"),
                        format!("{:?}", y.dims()),
                    ));
                }
                let d = logits - y.clone();
                Ok((d.clone() * d).mean_dim(1).reshape([b]))
            }
            Target::Classes(_) => Err(GradError::unsupported(
                "mse",
                "needs regression targets, the dataset has class labels (use CrossEntropy)",
            )),
        }
    }
    /// `(2/c) I`.
    fn logit_hessian(&self, z: &[f64], _: HostTarget<'_>, out: &mut [f64]) -> Result<()> {
        let c = z.len();
        if out.len() != c * c {
            return Err(GradError::shape("mse Hessian buffer", c * c, out.len()));
        }
        out.fill(0.0);
        for j in 0..c {
            out[j * c + j] = 2.0 / c as f64;
        }
        Ok(())
    }
}

/// TRAK's margin `log p_y − log(1 − p_y) = z_y − logsumexp_{j≠y} z_j`
/// (Park et al. 2023, §3.3), computed without forming `1 − p_y`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrakMargin;

impl OutputFn for TrakMargin {
    fn name(&self) -> String {
        "trak-margin".into()
    }
    fn spec(&self) -> OutputSpec {
        OutputSpec::TrakMargin
    }
    fn forward(&self, logits: Tensor<2>, target: &Target) -> Result<Tensor<1>> {
        let y = classes(target, "TRAK margin")?;
        let [b, c] = logits.dims();
        if c < 2 {
            return Err(GradError::unsupported(
                "TRAK margin",
                format!("needs at least 2 logits, the model has {c}"),
            ));
        }
        let zy = gather_y(logits.clone(), y.clone());
        let mask = y.one_hot::<2>(c).equal_elem(1);
        // Large finite rather than -inf so no inf - inf appears anywhere.
        let others = logits.mask_fill(mask, -1.0e30);
        let m = others.clone().max_dim(1).detach();
        let lse = (others - m.clone()).exp().sum_dim(1).log() + m;
        Ok(zy - lse.reshape([b]))
    }
    /// `−(diag(q) − q qᵀ)` with `q` the softmax over the logits other than `y`
    /// (zero at `y`).
    fn logit_hessian(&self, z: &[f64], target: HostTarget<'_>, out: &mut [f64]) -> Result<()> {
        let HostTarget::Class(y) = target else {
            return Err(GradError::unsupported("TRAK margin", "needs a class label"));
        };
        let c = check_classes(z, y, out, "TRAK margin")?;
        let mut zo = z.to_vec();
        zo[y] = f64::NEG_INFINITY;
        let q = softmax(&zo);
        for j in 0..c {
            for k in 0..c {
                out[j * c + k] = -(if j == k { q[j] } else { 0.0 } - q[j] * q[k]);
            }
        }
        Ok(())
    }
}

/// Probability of the correct class, `p_y = softmax(z)_y`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CorrectProb;

impl OutputFn for CorrectProb {
    fn name(&self) -> String {
        "correct-prob".into()
    }
    fn spec(&self) -> OutputSpec {
        OutputSpec::CorrectProb
    }
    fn forward(&self, logits: Tensor<2>, target: &Target) -> Result<Tensor<1>> {
        let y = classes(target, "correct-class probability")?;
        Ok(gather_y(log_softmax(logits, 1), y).exp())
    }
    /// `p_y [(e_y − p)(e_y − p)ᵀ − (diag(p) − p pᵀ)]`.
    fn logit_hessian(&self, z: &[f64], target: HostTarget<'_>, out: &mut [f64]) -> Result<()> {
        let HostTarget::Class(y) = target else {
            return Err(GradError::unsupported(
                "correct-class probability",
                "needs a class label",
            ));
        };
        let c = check_classes(z, y, out, "correct-class probability")?;
        let p = softmax(z);
        let e = |j: usize| if j == y { 1.0 } else { 0.0 };
        for j in 0..c {
            for k in 0..c {
                let cov = if j == k { p[j] } else { 0.0 } - p[j] * p[k];
                out[j * c + k] = p[y] * ((e(j) - p[j]) * (e(k) - p[k]) - cov);
            }
        }
        Ok(())
    }
}

/// One logit `z_k` (targets ignored).
#[derive(Clone, Copy, Debug)]
pub struct Logit(pub usize);

impl OutputFn for Logit {
    fn name(&self) -> String {
        format!("logit({})", self.0)
    }
    fn spec(&self) -> OutputSpec {
        OutputSpec::Logit(self.0)
    }
    fn forward(&self, logits: Tensor<2>, _: &Target) -> Result<Tensor<1>> {
        let [b, c] = logits.dims();
        if self.0 >= c {
            return Err(GradError::param(
                "Logit",
                self.0,
                format!("the model has {c} outputs"),
            ));
        }
        Ok(logits.narrow(1, self.0, 1).reshape([b]))
    }
    /// Zero: a logit is linear in the logits.
    fn logit_hessian(&self, z: &[f64], _: HostTarget<'_>, out: &mut [f64]) -> Result<()> {
        let c = z.len();
        if out.len() != c * c {
            return Err(GradError::shape("logit Hessian buffer", c * c, out.len()));
        }
        out.fill(0.0);
        Ok(())
    }
}
