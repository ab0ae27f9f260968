//! The exact (unprojected) Gauss-Newton curvature of a model whose
//! parameter layers are all flat linear layers (logistic regression, MLPs),
//! as a matrix-free operator on rank-1 factors:
//!
//! ```text
//! C v = (1/|B|) Σ_{i∈B} Σ_{a,b} J_iaᵀ H_i[a, b] (J_ib · v) + l2 v,
//! J_ib · v = Σ_l ã_iᵀ V_l δ_ib,      J_iaᵀ w = ⊕_l ã_i (w δ_ia)ᵀ
//! ```
//!
//! with `ã_i` layer `l`'s input (and a 1 for the bias), `δ_ib` the backprop
//! error of logit `b` at its output, `V_l` layer `l`'s block of `v` as a
//! `da × dd` matrix and `H_i` the loss's logit Hessian (FiMO eq. 10 without
//! the residual term). A product of `m` vectors is two GEMMs per layer of
//! `|B| × da × (dd·m)` in f64 (TracIn App. F's rank-1 structure applied to
//! the Jacobian), so CG, LiSSA and Arnoldi never form the `p × p` matrix or the
//! `c n × p` Jacobian rows that [`super::curvature::ProjectedGn`] keeps.

use nalgebra::DMatrix;
use rayon::prelude::*;
use wellspring_core::{Dataset, Targets};
use wellspring_grad::{FactorView, GradError, LinearOperator, Logit};
use wellspring_models::AnyModel;
use wellspring_models::burn_types::Device;

use crate::error::Result;
use super::curvature::logit_hessians;
use crate::methods::gradient::GradFeaturizer;
use crate::projection::ProjectionSpec;

/// One flat linear layer's factors.
#[derive(Debug)]
struct Layer {
    /// First index of the layer in a gradient row.
    offset: usize,
    da: usize,
    dd: usize,
    /// `ã_i`, `n × da` (f64: products must be those of one fixed matrix
    /// for Lanczos, so they are not rounded to f32).
    a: Vec<f64>,
    /// `δ_ib` per logit `b`, each `n × dd`.
    d: Vec<Vec<f64>>,
}

/// Matrix-free exact Gauss-Newton curvature from rank-1 factors (see the
/// module docs).
#[derive(Debug)]
pub(crate) struct FactoredGn {
    n: usize,
    p: usize,
    c: usize,
    l2: f64,
    layers: Vec<Layer>,
    /// `H_i`, `n × c × c`.
    h: Vec<f64>,
}

impl FactoredGn {
    /// The factors of `model` on `train`, or `None` when a parameter layer
    /// is not a flat linear layer (the caller falls back to the formed
    /// curvature).
    pub(crate) fn fit(
        method: &'static str,
        model: &AnyModel,
        device: &Device,
        train: &Dataset,
        l2: f64,
    ) -> Result<Option<Self>> {
        if matches!(train.targets(), Targets::NextToken { .. }) || train.is_empty() {
            return Ok(None);
        }
        let n = train.len();
        let logits = wellspring_models::predict_logits(model, train, device)?;
        let c = logits.len() / n;
        let mut layers: Vec<Layer> = Vec::new();
        let mut p = 0;
        for b in 0..c {
            let feat = GradFeaturizer::new(
                method,
                model,
                device,
                std::sync::Arc::new(Logit(b)),
                ProjectionSpec::Identity,
                0,
            )?;
            let f = feat.factored(train)?;
            p = f.dim();
            for (k, view) in f.layers().enumerate() {
                let FactorView::Rank1 {
                    params, a, da, d, dd,
                } = view
                else {
                    return Ok(None);
                };
                if b == 0 {
                    layers.push(Layer {
                        offset: params.start,
                        da,
                        dd,
                        a: a.iter().map(|&v| v as f64).collect(),
                        d: Vec::with_capacity(c),
                    });
                }
                layers[k].d.push(d.iter().map(|&v| v as f64).collect());
            }
        }
        let h = logit_hessians(method, train, &logits, c)?.concat();
        Ok(Some(FactoredGn {
            n,
            p,
            c,
            l2,
            layers,
            h,
        }))
    }

    /// `tr(C) = (1/n) Σ_i Σ_{a,b} H_i[a, b] (J_ia · J_ib) + l2 p`.
    pub(crate) fn trace(&self) -> f64 {
        let c = self.c;
        let dot = |x: &[f64], y: &[f64]| -> f64 { x.iter().zip(y).map(|(&u, &v)| u * v).sum() };
        let total: f64 = (0..self.n)
            .into_par_iter()
            .map(|i| {
                let mut jj = vec![0.0f64; c * c];
                for l in &self.layers {
                    let a = &l.a[i * l.da..(i + 1) * l.da];
                    let aa = dot(a, a);
                    for x in 0..c {
                        for y in 0..c {
                            let dx = &l.d[x][i * l.dd..(i + 1) * l.dd];
                            let dy = &l.d[y][i * l.dd..(i + 1) * l.dd];
                            jj[x * c + y] += aa * dot(dx, dy);
                        }
                    }
                }
                jj.iter()
                    .zip(&self.h[i * c * c..(i + 1) * c * c])
                    .map(|(j, h)| j * h)
                    .sum::<f64>()
            })
            .sum();
        total / self.n.max(1) as f64 + self.l2 * self.p as f64
    }

    /// `C_B X` over the training rows `rows` (see the module docs).
    fn products(&self, rows: &[usize], x: &DMatrix<f64>) -> DMatrix<f64> {
        let (c, m, nr) = (self.c, x.ncols(), rows.len());
        let mut out = x * self.l2;
        if nr == 0 || m == 0 {
            return out;
        }
        // z[r, b, j] = J_{rows[r], b} · x_j
        let mut z = vec![0.0f64; nr * c * m];
        // every row in order (full-data products): the factors as they are
        let all = rows.len() == self.n && rows.iter().enumerate().all(|(k, &i)| k == i);
        let gathered: Vec<std::borrow::Cow<'_, [f64]>> = self
            .layers
            .iter()
            .map(|l| {
                if all {
                    std::borrow::Cow::Borrowed(l.a.as_slice())
                } else {
                    std::borrow::Cow::Owned(gather(&l.a, l.da, rows))
                }
            })
            .collect();
        for (l, ar) in self.layers.iter().zip(&gathered) {
            let (da, dd) = (l.da, l.dd);
            let w = dd * m;
            // Wt[(q m + j) da + p] = x[(offset + p dd + q, j)]
            let mut wt = vec![0.0f64; w * da];
            for j in 0..m {
                let col = x.column(j);
                for pp in 0..da {
                    for q in 0..dd {
                        wt[(q * m + j) * da + pp] = col[l.offset + pp * dd + q];
                    }
                }
            }
            // P = A_B Wtᵀ: nr × (dd m)
            let mut pm = vec![0.0f64; nr * w];
            par_rows_abt(ar, nr, da, &wt, w, &mut pm);
            z.par_chunks_mut(c * m)
                .zip(pm.par_chunks(w))
                .zip(rows.par_iter())
                .for_each(|((zr, pr), &i)| {
                    for b in 0..c {
                        let db = &l.d[b][i * dd..(i + 1) * dd];
                        for (q, &dq) in db.iter().enumerate() {
                            if dq == 0.0 {
                                continue;
                            }
                            for (o, &v) in zr[b * m..(b + 1) * m].iter_mut().zip(&pr[q * m..(q + 1) * m]) {
                                *o += dq * v;
                            }
                        }
                    }
                });
        }
        // u[r, a, j] = Σ_b H_i[a, b] z[r, b, j]
        let mut u = vec![0.0f64; nr * c * m];
        u.par_chunks_mut(c * m)
            .zip(z.par_chunks(c * m))
            .zip(rows.par_iter())
            .for_each(|((ur, zr), &i)| {
                let hi = &self.h[i * c * c..(i + 1) * c * c];
                for a in 0..c {
                    for b in 0..c {
                        let hab = hi[a * c + b];
                        if hab == 0.0 {
                            continue;
                        }
                        for (o, &v) in ur[a * m..(a + 1) * m].iter_mut().zip(&zr[b * m..(b + 1) * m]) {
                            *o += hab * v;
                        }
                    }
                }
            });
        let scale = 1.0 / nr as f64;
        for (l, ar) in self.layers.iter().zip(&gathered) {
            let (da, dd) = (l.da, l.dd);
            let w = dd * m;
            // E[r, q m + j] = Σ_a u[r, a, j] δ_{rows[r], a}[q]
            let mut e = vec![0.0f64; nr * w];
            e.par_chunks_mut(w)
                .zip(u.par_chunks(c * m))
                .zip(rows.par_iter())
                .for_each(|((er, ur), &i)| {
                    for a in 0..c {
                        let da_row = &l.d[a][i * dd..(i + 1) * dd];
                        for (q, &dq) in da_row.iter().enumerate() {
                            if dq == 0.0 {
                                continue;
                            }
                            for (o, &v) in er[q * m..(q + 1) * m].iter_mut().zip(&ur[a * m..(a + 1) * m]) {
                                *o += dq * v;
                            }
                        }
                    }
                });
            // Gᵀ = Eᵀ A_B: (dd m) × da
            let mut gt = vec![0.0f64; w * da];
            par_rows_atb(&e, nr, w, ar, da, &mut gt);
            for j in 0..m {
                let mut col = out.column_mut(j);
                for q in 0..dd {
                    let g = &gt[(q * m + j) * da..(q * m + j + 1) * da];
                    for (pp, &v) in g.iter().enumerate() {
                        col[l.offset + pp * dd + q] += v * scale;
                    }
                }
            }
        }
        out
    }
}

/// Rows `rows` of the row-major `n × w` matrix `a`.
fn gather(a: &[f64], w: usize, rows: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity(rows.len() * w);
    for &i in rows {
        out.extend_from_slice(&a[i * w..(i + 1) * w]);
    }
    out
}

/// `out (m × n) = A (m × k) · Bᵀ (B: n × k)`, row-major f64, in parallel over
/// blocks of `A`'s rows.
fn par_rows_abt(a: &[f64], m: usize, k: usize, b: &[f64], n: usize, out: &mut [f64]) {
    let chunk = m.div_ceil(rayon::current_num_threads().max(1)).max(1);
    out.par_chunks_mut(chunk * n)
        .zip(a.par_chunks(chunk * k))
        .for_each(|(o, ab)| {
            let rows = ab.len() / k.max(1);
            wellspring_core::linalg::gemm_abt(ab, rows, k, b, n, o);
        });
}

/// `out (w × da) = Eᵀ A` for row-major `E` (`nr × w`) and `A` (`nr × da`),
/// in parallel over blocks of `out`'s rows.
fn par_rows_atb(e: &[f64], nr: usize, w: usize, a: &[f64], da: usize, out: &mut [f64]) {
    let chunk = w.div_ceil(rayon::current_num_threads().max(1)).max(1);
    out.par_chunks_mut(chunk * da)
        .enumerate()
        .for_each(|(t, o)| {
            let s0 = t * chunk;
            let rows = o.len() / da.max(1);
            if rows == 0 || nr == 0 {
                return;
            }
            // SAFETY: A' = Eᵀ[s0.., :] (rows × nr): A'[s, r] = e[r w + s0 + s],
            // the largest index (nr - 1) w + s0 + rows - 1 < nr w; B = A
            // (nr × da) row-major; C = o (rows × da) row-major; all within
            // their slices.
            unsafe {
                matrixmultiply::dgemm(
                    rows,
                    nr,
                    da,
                    1.0,
                    e.as_ptr().add(s0),
                    1,
                    w as isize,
                    a.as_ptr(),
                    da as isize,
                    1,
                    0.0,
                    o.as_mut_ptr(),
                    da as isize,
                    1,
                );
            }
        });
}

fn check(what: &str, p: usize, x: &DMatrix<f64>) -> std::result::Result<(), GradError> {
    if x.nrows() != p {
        return Err(GradError::shape(what, format!("{p} rows"), x.nrows()));
    }
    Ok(())
}

impl LinearOperator for FactoredGn {
    fn dim(&self) -> usize {
        self.p
    }
    fn apply(&self, v: &[f64], out: &mut [f64]) -> std::result::Result<(), GradError> {
        let x = self.apply_block(&DMatrix::from_column_slice(v.len(), 1, v))?;
        out.copy_from_slice(x.as_slice());
        Ok(())
    }
    fn apply_block(&self, x: &DMatrix<f64>) -> std::result::Result<DMatrix<f64>, GradError> {
        check("block given to the factored Gauss-Newton", self.p, x)?;
        let all: Vec<usize> = (0..self.n).collect();
        Ok(self.products(&all, x))
    }
    fn n(&self) -> usize {
        self.n
    }
    fn apply_batch(
        &self,
        batch: &[usize],
        x: &DMatrix<f64>,
    ) -> std::result::Result<DMatrix<f64>, GradError> {
        check("block given to the factored Gauss-Newton", self.p, x)?;
        if let Some(&i) = batch.iter().find(|&&i| i >= self.n) {
            return Err(GradError::shape("minibatch row", format!("< {}", self.n), i));
        }
        Ok(self.products(batch, x))
    }
    fn name(&self) -> String {
        format!("exact Gauss-Newton from rank-1 factors ({} parameters)", self.p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::influence::curvature::ProjectedGn;
    use wellspring_core::Features;
    use wellspring_models::{Model, ModelConfig};

    fn optdigits(n: usize) -> Dataset {
        let dir = wellspring_data::DataDir::embedded().unwrap();
        let t = wellspring_data::optdigits(&dir, false).unwrap();
        t.train.select(&(0..n).collect::<Vec<_>>()).unwrap()
    }

    fn rel(got: &DMatrix<f64>, want: &DMatrix<f64>) -> f64 {
        (got - want).norm() / want.norm()
    }

    /// Products, minibatch products and the trace equal those of the formed
    /// exact Gauss-Newton (`ProjectedGn` with the identity projection), for
    /// logistic regression, an MLP and a regression MLP.
    #[test]
    fn factored_products_equal_the_formed_gauss_newton() {
        let device = Device::flex();
        let cls = optdigits(90);
        let reg = Dataset::new(
            "reg",
            cls.features().clone(),
            Targets::Regression {
                values: (0..90).map(|i| ((i * 37) % 11) as f32 / 5.0 - 1.0).collect(),
                n_targets: 1,
            },
        )
        .unwrap();
        let mlp = |n_out| ModelConfig::Mlp {
            d_in: 64,
            hidden: vec![6],
            n_out,
            dropout: 0.0,
        };
        for (what, cfg, train) in [
            ("LR", ModelConfig::LogReg { d_in: 64, n_out: 10 }, &cls),
            ("MLP", mlp(10), &cls),
            ("regression MLP", mlp(1), &reg),
        ] {
            let model: AnyModel = Model::new(cfg, 5, &device).unwrap().into();
            let l2 = 0.01;
            let f = FactoredGn::fit("test", &model, &device, train, l2)
                .unwrap()
                .expect("every layer is flat linear");
            let g = ProjectedGn::fit(
                "test",
                &model,
                &device,
                ProjectionSpec::Identity,
                0,
                train,
                l2,
            )
            .unwrap();
            assert_eq!(f.dim(), g.full.nrows(), "{what}");
            let x = DMatrix::<f64>::from_fn(f.dim(), 3, |i, j| ((i * 7 + j * 13) % 11) as f64 - 5.0);
            let e = rel(&f.apply_block(&x).unwrap(), &(&g.full * &x));
            assert!(e < 1e-4, "{what}: products off by {e:e}");
            let rows = [3usize, 17, 40, 40, 89];
            let e = rel(
                &f.apply_batch(&rows, &x).unwrap(),
                &g.apply_batch(&rows, &x).unwrap(),
            );
            assert!(e < 1e-4, "{what}: minibatch products off by {e:e}");
            let (t, want) = (f.trace(), g.full.trace());
            assert!((t - want).abs() < 1e-4 * want, "{what}: trace {t} vs {want}");
        }
    }

    /// A convolution is not a rank-1 layer: no factored operator (the
    /// caller forms the curvature instead); bad rows are errors.
    #[test]
    fn other_layers_fall_back_and_bad_rows_are_errors() {
        let device = Device::flex();
        let images = Dataset::new(
            "img",
            Features::Dense {
                values: (0..6 * 64).map(|i| ((i * 13) % 7) as f32 / 7.0).collect(),
                shape: vec![1, 8, 8],
            },
            Targets::Classes {
                labels: (0..6).map(|i| i % 3).collect(),
                n_classes: 3,
            },
        )
        .unwrap();
        let cnn: AnyModel = Model::new(
            ModelConfig::Cnn {
                in_channels: 1,
                side: 8,
                channels: vec![2],
                fc: 4,
                n_out: 3,
            },
            1,
            &device,
        )
        .unwrap()
        .into();
        assert!(FactoredGn::fit("test", &cnn, &device, &images, 0.0).unwrap().is_none());
        let train = optdigits(10);
        let lr: AnyModel = Model::new(ModelConfig::LogReg { d_in: 64, n_out: 10 }, 1, &device)
            .unwrap()
            .into();
        let f = FactoredGn::fit("test", &lr, &device, &train, 0.0).unwrap().unwrap();
        let x = DMatrix::<f64>::zeros(f.dim(), 1);
        assert!(f.apply_batch(&[10], &x).is_err());
        assert!(f.apply_block(&DMatrix::<f64>::zeros(3, 1)).is_err());
    }
}
