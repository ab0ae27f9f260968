//! Host-side math of the model's last linear layer `z = φ W + b` under
//! softmax cross-entropy: logits, probabilities, losses, and CREST's local
//! quadratic model (loss, gradient, Hessian diagonal) — all analytic, so no
//! autodiff is needed.
//!
//! Parameters are laid out as in `Model::params_flat` for the head: `W` in
//! burn's `[p, C]` row-major layout (`W[j·C + c]`), then `b` (`C` values).

use wellspring_models::AnyModel;

use super::LoopError;
use crate::crest_driver::{QuadraticModel, hutchinson_diagonal, rademacher};
use wellspring_core::derive_seed;

/// How CREST's Hessian diagonal of the last layer is obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HessianDiag {
    /// The exact diagonal, `Σ_i w_i p_ic (1 − p_ic) φ_ij² / m` (cheap for a linear head).
    Exact,
    /// Hutchinson's estimate `mean_k z_k ⊙ H z_k` from this many Rademacher
    /// probes, with `H z` computed analytically (CREST uses AdaHessian's estimator).
    Hutchinson {
        /// Number of probes (`>= 1`).
        probes: usize,
    },
}

/// A host copy of the head's parameters.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Head {
    /// `[p, C]` row-major.
    pub w: Vec<f32>,
    /// `C` values.
    pub b: Vec<f32>,
    /// Penultimate width.
    pub p: usize,
    /// Classes.
    pub c: usize,
}

impl Head {
    /// Reads the head of `model` (any device, autodiff or not): the layer
    /// named `head`, or else the last tracked layer.
    pub fn of(model: &AnyModel) -> Result<Head, LoopError> {
        let layers = model.param_layers();
        let desc = layers
            .iter()
            .find(|d| d.path == "head")
            .or(layers.last())
            .ok_or_else(|| LoopError::Unsupported {
                reason: format!("the {} model has no parameter layer", model.model_name()),
            })?;
        let (p, c) = match desc.weight_shape.as_slice() {
            [p, c] if desc.has_bias => (*p, *c),
            other => {
                return Err(LoopError::Unsupported {
                    reason: format!(
                        "the head must be a Linear layer with bias, got weight shape {other:?} (bias: {})",
                        desc.has_bias
                    ),
                });
            }
        };
        let flat = model.params_flat();
        let s = &flat[desc.offset..desc.offset + desc.len];
        Ok(Head {
            w: s[..p * c].to_vec(),
            b: s[p * c..].to_vec(),
            p,
            c,
        })
    }

    /// Parameters as one vector (`W` then `b`).
    pub fn flat(&self) -> Vec<f32> {
        let mut v = self.w.clone();
        v.extend_from_slice(&self.b);
        v
    }

    /// Logits `φ W + b` of `m` rows of features (`m × p`), `m × C`.
    pub fn logits(&self, phi: &[f32]) -> Vec<f32> {
        let (p, c) = (self.p, self.c);
        let m = phi.len() / p.max(1);
        let mut z = Vec::with_capacity(m * c);
        for row in phi.chunks_exact(p) {
            let mut acc: Vec<f64> = self.b.iter().map(|&v| v as f64).collect();
            for (j, &f) in row.iter().enumerate() {
                if f == 0.0 {
                    continue;
                }
                let wr = &self.w[j * c..(j + 1) * c];
                for (a, &w) in acc.iter_mut().zip(wr) {
                    *a += f as f64 * w as f64;
                }
            }
            z.extend(acc.into_iter().map(|v| v as f32));
        }
        z
    }
}

/// Row-wise softmax of `n × C` logits (in `f64`, rows renormalised).
pub(crate) fn softmax_rows(logits: &[f32], c: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks_exact(c) {
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let e: Vec<f64> = row.iter().map(|&v| (v as f64 - m).exp()).collect();
        let s: f64 = e.iter().sum();
        out.extend(e.into_iter().map(|v| (v / s) as f32));
    }
    out
}

/// Per-example cross-entropy `logsumexp(z) − z_y`.
pub(crate) fn ce_losses(logits: &[f32], labels: &[usize], c: usize) -> Vec<f32> {
    logits
        .chunks_exact(c)
        .zip(labels)
        .map(|(row, &y)| {
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let lse = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
            (lse - row[y] as f64) as f32
        })
        .collect()
}

/// CREST's quadratic model of the weighted mean loss `L = Σ w_i ℓ_i / m` of a
/// coreset w.r.t. the head parameters (CREST eq. 6): `L₀`, the exact gradient
/// `Σ w_i [(p_i − y_i) ⊗ φ_i, p_i − y_i] / m`, and the Hessian diagonal of the
/// Gauss–Newton-exact softmax Hessian `Jᵀ (diag p − p pᵀ) J`.
pub(crate) fn quadratic_fit(
    head: &Head,
    phi: &[f32],
    labels: &[usize],
    weights: &[f32],
    hessian: HessianDiag,
    seed: u64,
) -> Result<QuadraticModel, LoopError> {
    let (p, c) = (head.p, head.c);
    let dim = p * c + c;
    let logits = head.logits(phi);
    let probs = softmax_rows(&logits, c);
    let losses = ce_losses(&logits, labels, c);
    let norm = weights
        .iter()
        .map(|&w| w as f64)
        .sum::<f64>()
        .max(f64::MIN_POSITIVE);
    let loss0 = losses
        .iter()
        .zip(weights)
        .map(|(&l, &w)| l as f64 * w as f64)
        .sum::<f64>()
        / norm;
    let mut grad = vec![0.0f64; dim];
    for i in 0..labels.len() {
        let wi = weights[i] as f64 / norm;
        let f = &phi[i * p..(i + 1) * p];
        for k in 0..c {
            let e = probs[i * c + k] as f64 - if labels[i] == k { 1.0 } else { 0.0 };
            let e = wi * e;
            grad[p * c + k] += e;
            for (j, &fj) in f.iter().enumerate() {
                grad[j * c + k] += e * fj as f64;
            }
        }
    }
    let diag: Vec<f32> = match hessian {
        HessianDiag::Exact => {
            let mut h = vec![0.0f64; dim];
            for i in 0..labels.len() {
                let wi = weights[i] as f64 / norm;
                let f = &phi[i * p..(i + 1) * p];
                for k in 0..c {
                    let pk = probs[i * c + k] as f64;
                    let s = wi * pk * (1.0 - pk);
                    h[p * c + k] += s;
                    for (j, &fj) in f.iter().enumerate() {
                        h[j * c + k] += s * fj as f64 * fj as f64;
                    }
                }
            }
            h.into_iter().map(|v| v as f32).collect()
        }
        HessianDiag::Hutchinson { probes } => {
            let zs: Vec<Vec<f32>> = (0..probes.max(1))
                .map(|k| rademacher(dim, derive_seed(seed, k as u64)))
                .collect();
            let hzs: Vec<Vec<f32>> = zs
                .iter()
                .map(|z| hvp(head, phi, &probs, weights, norm, z))
                .collect();
            let pairs: Vec<(&[f32], &[f32])> = zs
                .iter()
                .zip(&hzs)
                .map(|(z, hz)| (z.as_slice(), hz.as_slice()))
                .collect();
            hutchinson_diagonal(&pairs)?
        }
    };
    Ok(QuadraticModel::new(
        loss0,
        grad.into_iter().map(|v| v as f32).collect(),
        diag,
    )?)
}

/// `H v` for the weighted mean loss: per example `Jᵀ (diag p − p pᵀ) J v`.
fn hvp(head: &Head, phi: &[f32], probs: &[f32], weights: &[f32], norm: f64, v: &[f32]) -> Vec<f32> {
    let (p, c) = (head.p, head.c);
    let mut out = vec![0.0f64; v.len()];
    let mut a = vec![0.0f64; c];
    for (i, &wi) in weights.iter().enumerate() {
        let f = &phi[i * p..(i + 1) * p];
        let pr = &probs[i * c..(i + 1) * c];
        for k in 0..c {
            a[k] = v[p * c + k] as f64;
        }
        for (j, &fj) in f.iter().enumerate() {
            for k in 0..c {
                a[k] += fj as f64 * v[j * c + k] as f64;
            }
        }
        let s: f64 = pr.iter().zip(&a).map(|(&pk, &ak)| pk as f64 * ak).sum();
        let wi = wi as f64 / norm;
        for k in 0..c {
            let u = wi * pr[k] as f64 * (a[k] - s);
            out[p * c + k] += u;
            for (j, &fj) in f.iter().enumerate() {
                out[j * c + k] += u * fj as f64;
            }
        }
    }
    out.into_iter().map(|x| x as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> (Head, Vec<f32>, Vec<usize>, Vec<f32>) {
        let head = Head {
            w: vec![0.3, -0.2, 0.1, 0.5, 0.0, -0.4],
            b: vec![0.1, 0.0, -0.1],
            p: 2,
            c: 3,
        };
        let phi = vec![1.0, 2.0, -1.0, 0.5, 0.3, -0.7, 2.0, 1.0];
        let labels = vec![0, 2, 1, 1];
        let w = vec![1.0, 2.0, 0.5, 1.5];
        (head, phi, labels, w)
    }

    fn loss_at(head: &Head, theta: &[f32], phi: &[f32], labels: &[usize], w: &[f32]) -> f64 {
        let mut h = head.clone();
        h.w = theta[..h.p * h.c].to_vec();
        h.b = theta[h.p * h.c..].to_vec();
        let l = ce_losses(&h.logits(phi), labels, h.c);
        let s: f64 = w.iter().map(|&x| x as f64).sum();
        l.iter()
            .zip(w)
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum::<f64>()
            / s
    }

    #[test]
    fn gradient_and_exact_diagonal_match_finite_differences() {
        let (head, phi, labels, w) = toy();
        let q = quadratic_fit(&head, &phi, &labels, &w, HessianDiag::Exact, 0).unwrap();
        let theta = head.flat();
        let l0 = loss_at(&head, &theta, &phi, &labels, &w);
        assert!((q.loss0() - l0).abs() < 1e-6);
        let eps = 1e-2f32;
        for k in 0..theta.len() {
            let mut tp = theta.clone();
            tp[k] += eps;
            let mut tm = theta.clone();
            tm[k] -= eps;
            let lp = loss_at(&head, &tp, &phi, &labels, &w);
            let lm = loss_at(&head, &tm, &phi, &labels, &w);
            let g = (lp - lm) / (2.0 * eps as f64);
            let h = (lp - 2.0 * l0 + lm) / (eps as f64 * eps as f64);
            let mut d = vec![0.0f32; theta.len()];
            d[k] = eps;
            // L̂(±eps e_k) reproduces the finite-difference gradient and curvature.
            let qp = q.predict(&d).unwrap();
            d[k] = -eps;
            let qm = q.predict(&d).unwrap();
            assert!(
                ((qp - qm) / (2.0 * eps as f64) - g).abs() < 1e-4,
                "grad {k}"
            );
            assert!(
                ((qp - 2.0 * q.loss0() + qm) / (eps as f64).powi(2) - h).abs() < 2e-2,
                "hess {k}"
            );
        }
    }

    #[test]
    fn hutchinson_converges_to_the_exact_diagonal() {
        let (head, phi, labels, w) = toy();
        let exact = quadratic_fit(&head, &phi, &labels, &w, HessianDiag::Exact, 0).unwrap();
        let est = quadratic_fit(
            &head,
            &phi,
            &labels,
            &w,
            HessianDiag::Hutchinson { probes: 4000 },
            7,
        )
        .unwrap();
        let rel = (est.curvature_norm() - exact.curvature_norm()).abs() / exact.curvature_norm();
        assert!(rel < 0.05, "relative difference {rel}");
    }
}
