//! Output functions: the per-example scalar a method differentiates.
//!
//! Every [`OutputFn`] maps logits `z ∈ R^{b×c}` and targets to `f(z_i, y_i) ∈ R^b`
//! with burn ops, so autodiff differentiates it; where Gauss-Newton needs it, it
//! also gives the per-example Hessian `∂²f/∂z²` on the host in f64.
//!
//! Language models give per-token logits `[b, T, vocab]` with next-token
//! targets ([`Target::Tokens`]); [`CrossEntropy`] then is the example's mean
//! token loss (the training loss), [`CompletionLogProb`] the summed
//! log-probability of its target tokens (a completion after a prompt, the
//! measurement of Grosse et al. 2023's fact tracing) and [`TokenLoss`] one
//! target token's loss.

use std::fmt::Debug;

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};
use wellspring_models::{Logits, Target};

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

    /// Per-example outputs `[b]` from per-token logits `[b, T, vocab]` and
    /// next-token targets (language models). Default: an error naming the
    /// function.
    fn forward_seq(&self, logits: Tensor<3>, target: &Target) -> Result<Tensor<1>> {
        let _ = target;
        Err(GradError::unsupported(
            self.name(),
            format!(
                "takes [batch, classes] logits; the model gives per-token logits {:?} \
                 (use cross-entropy, completion-logprob or token-loss)",
                logits.dims()
            ),
        ))
    }

    /// [`OutputFn::forward`] or [`OutputFn::forward_seq`], by the logits' kind.
    fn apply(&self, logits: Logits, target: &Target) -> Result<Tensor<1>> {
        match logits {
            Logits::Flat(z) => self.forward(z, target),
            Logits::Seq(z) => self.forward_seq(z, target),
        }
    }

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
    /// [`CompletionLogProb`].
    CompletionLogProb,
    /// [`TokenLoss`] at this target token.
    TokenLoss(usize),
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
            OutputSpec::CompletionLogProb => Box::new(CompletionLogProb),
            OutputSpec::TokenLoss(k) => Box::new(TokenLoss(*k)),
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
        Target::Tokens { .. } => Err(GradError::unsupported(
            who.to_string(),
            "needs class labels, the dataset has next-token targets",
        )),
    }
}

/// Next-token ids and weights `[b, T]` of a language-model target, checked
/// against per-token logits `[b, T, vocab]`.
fn tokens(logits: &Tensor<3>, target: &Target, who: &str) -> Result<(Tensor<2, Int>, Tensor<2>)> {
    let Target::Tokens { next, weight } = target else {
        return Err(GradError::unsupported(
            who.to_string(),
            "per-token logits need next-token targets (a language-model dataset)",
        ));
    };
    let [b, t, _] = logits.dims();
    if next.dims() != [b, t] {
        return Err(GradError::shape(
            format!("{who} next-token targets"),
            format!("[{b}, {t}] (the logits' batch and positions)"),
            format!("{:?}", next.dims()),
        ));
    }
    Ok((next.clone(), weight.clone()))
}

/// `log p(next_t)` at every position, `[b, T]`.
fn token_logp(logits: Tensor<3>, next: Tensor<2, Int>) -> Tensor<2> {
    let [b, t, _] = logits.dims();
    log_softmax(logits, 2)
        .gather(2, next.reshape([b, t, 1]))
        .reshape([b, t])
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
    /// The example's mean loss over its target tokens, `−(1/|w|) Σ_t w_t log p(y_t)`
    /// (the language-model training loss).
    fn forward_seq(&self, logits: Tensor<3>, target: &Target) -> Result<Tensor<1>> {
        let (next, w) = tokens(&logits, target, "cross-entropy")?;
        let b = logits.dims()[0];
        let count = w.clone().sum_dim(1).clamp_min(1.0);
        Ok(((token_logp(logits, next) * w).sum_dim(1) / count)
            .reshape([b])
            .neg())
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
            Target::Classes(_) | Target::Tokens { .. } => Err(GradError::unsupported(
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

/// Summed log-probability of an example's target tokens, `Σ_t w_t log p(y_t)`:
/// with a prompt (`Targets::NextToken::prompt_lens`), the log-probability of
/// the completion given the prompt (language models only; higher = more likely).
#[derive(Clone, Copy, Debug, Default)]
pub struct CompletionLogProb;

impl OutputFn for CompletionLogProb {
    fn name(&self) -> String {
        "completion-logprob".into()
    }
    fn spec(&self) -> OutputSpec {
        OutputSpec::CompletionLogProb
    }
    fn forward(&self, logits: Tensor<2>, _: &Target) -> Result<Tensor<1>> {
        Err(GradError::unsupported(
            "completion-logprob",
            format!(
                "needs per-token logits [batch, T, vocab] (a language model), got {:?}",
                logits.dims()
            ),
        ))
    }
    fn forward_seq(&self, logits: Tensor<3>, target: &Target) -> Result<Tensor<1>> {
        let (next, w) = tokens(&logits, target, "completion-logprob")?;
        let b = logits.dims()[0];
        Ok((token_logp(logits, next) * w).sum_dim(1).reshape([b]))
    }
}

/// The loss `−log p(y_t)` of one target token: the `k`-th token with nonzero
/// weight of each example (language models only). An example with fewer
/// target tokens is an error naming it.
#[derive(Clone, Copy, Debug)]
pub struct TokenLoss(pub usize);

impl OutputFn for TokenLoss {
    fn name(&self) -> String {
        format!("token-loss({})", self.0)
    }
    fn spec(&self) -> OutputSpec {
        OutputSpec::TokenLoss(self.0)
    }
    fn forward(&self, logits: Tensor<2>, _: &Target) -> Result<Tensor<1>> {
        Err(GradError::unsupported(
            self.name(),
            format!(
                "needs per-token logits [batch, T, vocab] (a language model), got {:?}",
                logits.dims()
            ),
        ))
    }
    fn forward_seq(&self, logits: Tensor<3>, target: &Target) -> Result<Tensor<1>> {
        let (next, w) = tokens(&logits, target, "token-loss")?;
        let [b, t, _] = logits.dims();
        // One-hot selector of the k-th weighted position of every row (host side).
        let wh: Vec<f32> = w
            .clone()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("weights convert to f32");
        let mut sel = vec![0.0f32; b * t];
        for (r, row) in wh.chunks_exact(t.max(1)).enumerate() {
            let pos = row
                .iter()
                .enumerate()
                .filter(|(_, v)| **v != 0.0)
                .nth(self.0)
                .map(|(p, _)| p)
                .ok_or_else(|| {
                    GradError::param(
                        "token-loss position",
                        self.0,
                        format!(
                            "row {r} of the batch has only {} target tokens",
                            row.iter().filter(|v| **v != 0.0).count()
                        ),
                    )
                })?;
            sel[r * t + pos] = 1.0;
        }
        let sel = Tensor::<2>::from_data(
            burn::tensor::TensorData::new(sel, [b, t]),
            (&w.device(), w.dtype()),
        );
        Ok((token_logp(logits, next) * sel)
            .sum_dim(1)
            .reshape([b])
            .neg())
    }
}
