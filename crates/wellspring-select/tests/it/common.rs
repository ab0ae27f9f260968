//! Shared fixtures: the embedded Optdigits data and a host softmax-regression
//! model trained on it (a real model whose last-layer gradient is its full
//! gradient, so proxies, GLISTER's Taylor step and CREST's quadratic model
//! can be checked exactly).

use std::sync::OnceLock;

use wellspring_core::{Dataset, Features};
use wellspring_data::{DatasetName, LoadOptions, load};
use wellspring_select::{GradProxies, TrainingState};

pub const C: usize = 10;

pub struct Digits {
    pub x: Vec<f32>,
    pub y: Vec<usize>,
    pub xv: Vec<f32>,
    pub yv: Vec<usize>,
    pub xt: Vec<f32>,
    pub yt: Vec<usize>,
    pub d: usize,
}

fn parts(ds: &Dataset) -> (Vec<f32>, Vec<usize>) {
    let Features::Dense { values, .. } = ds.features() else {
        panic!("optdigits features are dense")
    };
    (
        values.clone(),
        ds.labels().expect("classification").to_vec(),
    )
}

/// Optdigits (standardised, clipped to ±4), 80/20 train/validation split of the official
/// training file, official test file.
pub fn digits() -> &'static Digits {
    static D: OnceLock<Digits> = OnceLock::new();
    D.get_or_init(|| {
        let split = load(
            DatasetName::Optdigits,
            &LoadOptions::new().valid_fraction(0.2).seed(3),
        )
        .expect("embedded optdigits loads");
        let (x, y) = parts(&split.train);
        let (xv, yv) = parts(split.valid.as_ref().expect("validation split"));
        let (xt, yt) = parts(&split.test);
        let d = split.train.features().width();
        Digits {
            x,
            y,
            xv,
            yv,
            xt,
            yt,
            d,
        }
    })
}

/// Multinomial logistic regression `z = W x + b`, `W: C × d`, row-major.
#[derive(Clone, Debug)]
pub struct SoftmaxReg {
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub d: usize,
}

impl SoftmaxReg {
    pub fn zeros(d: usize) -> Self {
        Self {
            w: vec![0.0; C * d],
            b: vec![0.0; C],
            d,
        }
    }

    pub fn n_params(&self) -> usize {
        self.w.len() + self.b.len()
    }

    pub fn logits(&self, x: &[f32]) -> Vec<f64> {
        let d = self.d;
        x.chunks_exact(d)
            .flat_map(|xi| {
                (0..C).map(move |c| {
                    self.b[c] as f64
                        + self.w[c * d..(c + 1) * d]
                            .iter()
                            .zip(xi)
                            .map(|(&w, &v)| w as f64 * v as f64)
                            .sum::<f64>()
                })
            })
            .collect()
    }

    pub fn probs(&self, x: &[f32]) -> Vec<f32> {
        let z = self.logits(x);
        z.chunks_exact(C)
            .flat_map(|r| {
                let m = r.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let s: f64 = r.iter().map(|v| (v - m).exp()).sum();
                r.iter()
                    .map(move |v| ((v - m).exp() / s) as f32)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Mean log-likelihood.
    pub fn log_lik(&self, x: &[f32], y: &[usize]) -> f64 {
        let z = self.logits(x);
        z.chunks_exact(C)
            .zip(y)
            .map(|(r, &t)| {
                let m = r.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + r.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                r[t] - lse
            })
            .sum::<f64>()
            / y.len() as f64
    }

    pub fn accuracy(&self, x: &[f32], y: &[usize]) -> f64 {
        let z = self.logits(x);
        let hits = z
            .chunks_exact(C)
            .zip(y)
            .filter(|(r, t)| {
                let arg = (0..C).max_by(|&a, &b| r[a].total_cmp(&r[b])).unwrap();
                arg == **t
            })
            .count();
        hits as f64 / y.len() as f64
    }

    /// Flat parameters `[W, b]`.
    pub fn flat(&self) -> Vec<f32> {
        let mut v = self.w.clone();
        v.extend_from_slice(&self.b);
        v
    }

    pub fn set_flat(&mut self, v: &[f32]) {
        let nw = self.w.len();
        self.w.copy_from_slice(&v[..nw]);
        self.b.copy_from_slice(&v[nw..]);
    }

    /// Weighted mean loss and its gradient (flat `[W, b]`) over rows `idx`.
    pub fn loss_grad(&self, x: &[f32], y: &[usize], idx: &[usize], wts: &[f32]) -> (f64, Vec<f32>) {
        let d = self.d;
        let mut g = vec![0.0f64; self.n_params()];
        let mut loss = 0.0;
        let wsum: f64 = wts.iter().map(|&w| w as f64).sum();
        for (&i, &wi) in idx.iter().zip(wts) {
            let xi = &x[i * d..(i + 1) * d];
            let p = self.probs(xi);
            loss -= wi as f64 * (p[y[i]].max(1e-30) as f64).ln();
            for c in 0..C {
                let e = wi as f64 * (p[c] as f64 - if c == y[i] { 1.0 } else { 0.0 });
                for j in 0..d {
                    g[c * d + j] += e * xi[j] as f64;
                }
                g[C * d + c] += e;
            }
        }
        (loss / wsum, g.iter().map(|&v| (v / wsum) as f32).collect())
    }

    /// Hessian–vector product of the weighted mean loss over rows `idx`.
    pub fn hvp(&self, x: &[f32], idx: &[usize], wts: &[f32], v: &[f32]) -> Vec<f32> {
        let d = self.d;
        let mut out = vec![0.0f64; self.n_params()];
        let wsum: f64 = wts.iter().map(|&w| w as f64).sum();
        for (&i, &wi) in idx.iter().zip(wts) {
            let xi = &x[i * d..(i + 1) * d];
            let p = self.probs(xi);
            let u: Vec<f64> = (0..C)
                .map(|c| {
                    v[C * d + c] as f64
                        + (0..d)
                            .map(|j| v[c * d + j] as f64 * xi[j] as f64)
                            .sum::<f64>()
                })
                .collect();
            let pu: f64 = (0..C).map(|c| p[c] as f64 * u[c]).sum();
            for c in 0..C {
                let s = wi as f64 * p[c] as f64 * (u[c] - pu);
                for j in 0..d {
                    out[c * d + j] += s * xi[j] as f64;
                }
                out[C * d + c] += s;
            }
        }
        out.iter().map(|&o| (o / wsum) as f32).collect()
    }

    /// One SGD step on a weighted mini-batch; returns the gradient used.
    pub fn sgd_step(
        &mut self,
        x: &[f32],
        y: &[usize],
        idx: &[usize],
        wts: &[f32],
        lr: f32,
    ) -> Vec<f32> {
        let (_, g) = self.loss_grad(x, y, idx, wts);
        let mut p = self.flat();
        for (pi, gi) in p.iter_mut().zip(&g) {
            *pi -= lr * gi;
        }
        self.set_flat(&p);
        g
    }

    /// Epochs of weighted mini-batch SGD over `idx` (shuffled by a simple LCG).
    #[allow(clippy::too_many_arguments)]
    pub fn train(
        &mut self,
        x: &[f32],
        y: &[usize],
        idx: &[usize],
        wts: &[f32],
        lr: f32,
        epochs: usize,
        seed: u64,
    ) {
        let mut order: Vec<usize> = (0..idx.len()).collect();
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        for _ in 0..epochs {
            for i in (1..order.len()).rev() {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                order.swap(i, (s >> 33) as usize % (i + 1));
            }
            for chunk in order.chunks(32) {
                let bi: Vec<usize> = chunk.iter().map(|&k| idx[k]).collect();
                let bw: Vec<f32> = chunk.iter().map(|&k| wts[k]).collect();
                self.sgd_step(x, y, &bi, &bw, lr);
            }
        }
    }
}

/// A model trained for one epoch on all of Optdigits' training split.
pub fn warm_model() -> &'static SoftmaxReg {
    static M: OnceLock<SoftmaxReg> = OnceLock::new();
    M.get_or_init(|| {
        let dg = digits();
        let mut m = SoftmaxReg::zeros(dg.d);
        let all: Vec<usize> = (0..dg.y.len()).collect();
        m.train(&dg.x, &dg.y, &all, &vec![1.0; all.len()], 0.05, 1, 1);
        m
    })
}

/// Host-side inputs for the selectors from `model` on Optdigits.
pub struct Inputs {
    pub probs: Vec<f32>,
    pub bias: GradProxies,
    pub full: GradProxies,
    pub vprobs: Vec<f32>,
}

pub fn inputs(model: &SoftmaxReg) -> Inputs {
    let dg = digits();
    let probs = model.probs(&dg.x);
    let bias = GradProxies::last_layer(&probs, &dg.y, C, None).unwrap();
    let full = GradProxies::last_layer(&probs, &dg.y, C, Some((&dg.x, dg.d))).unwrap();
    let vprobs = model.probs(&dg.xv);
    Inputs {
        probs,
        bias,
        full,
        vprobs,
    }
}

pub fn state<'a>(inp: &'a Inputs, proxies: &'a GradProxies) -> TrainingState<'a> {
    let dg = digits();
    TrainingState::new(&dg.y, C)
        .unwrap()
        .with_probs(&inp.probs)
        .unwrap()
        .with_proxies(proxies)
        .unwrap()
}
