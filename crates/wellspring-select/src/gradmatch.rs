//! GradMatch (Killamsetty et al. 2021): choose a weighted subset whose
//! gradient sum matches the full one, by non-negative OMP.

use rayon::prelude::*;
use wellspring_core::{Subset, derive_seed_str, rng};

use crate::error::{Result, SelectError};
use crate::omp::omp_nonneg;
use crate::schedule::SelectionSchedule;
use crate::selector::{
    Budget, Selection, SelectionInfo, Selector, class_quotas, fill_uniform, timed,
};
use crate::state::{GradProxies, Needs, ProxyKind, TrainingState};

/// Which points OMP chooses among.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradMatchMode {
    /// One OMP per class, matching that class's gradient sum, with a budget
    /// proportional to the class size (CORDS' "PerClass").
    PerClass,
    /// OMP over mini-batches (consecutive runs of `batch_size` indices, the
    /// last one shorter), atoms = mean proxy of each batch, target = the sum of
    /// the atoms ("GradMatch-PB"). Chosen batches are taken whole, the last
    /// one truncated so that exactly the budget is selected.
    PerBatch {
        /// Points per mini-batch.
        batch_size: usize,
    },
}

/// Which gradient sum OMP matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GradMatchTarget {
    /// The training gradient sum (CORDS `valid=False`).
    #[default]
    Train,
    /// The validation gradient sum of the same class, scaled by
    /// `n_train_c / m_val_c` so the weights stay on the training scale
    /// (per-class mode only).
    Validation,
}

/// Parameters of [`GradMatch`] (checked builder).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradMatchParams {
    proxy: ProxyKind,
    mode: GradMatchMode,
    target: GradMatchTarget,
    lambda: f64,
    tol: f64,
    every_epochs: usize,
    warm_start_epochs: usize,
}

impl Default for GradMatchParams {
    /// Bias proxies, per class, training target, `λ = 0.5`, `tol = 1e-100`
    /// (CORDS' configs: run OMP to the budget), every epoch, no warm start.
    fn default() -> Self {
        Self {
            proxy: ProxyKind::Bias,
            mode: GradMatchMode::PerClass,
            target: GradMatchTarget::Train,
            lambda: 0.5,
            tol: 1e-100,
            every_epochs: 1,
            warm_start_epochs: 0,
        }
    }
}

impl GradMatchParams {
    /// Which proxy to request from the loop.
    pub fn proxy(mut self, p: ProxyKind) -> Self {
        self.proxy = p;
        self
    }

    /// Per class (default) or per mini-batch.
    pub fn mode(mut self, m: GradMatchMode) -> Self {
        self.mode = m;
        self
    }

    /// Training (default) or validation gradient target.
    pub fn target(mut self, t: GradMatchTarget) -> Self {
        self.target = t;
        self
    }

    /// Ridge regularisation `λ >= 0` of the weight refit (GradMatch: 0.5).
    pub fn lambda(mut self, l: f64) -> Self {
        self.lambda = l;
        self
    }

    /// Stop OMP once `‖r‖ <= tol · ‖b‖`.
    pub fn tol(mut self, t: f64) -> Self {
        self.tol = t;
        self
    }

    /// Re-select every `e` epochs.
    pub fn every_epochs(mut self, e: usize) -> Self {
        self.every_epochs = e;
        self
    }

    /// Train on the full data for this many epochs first.
    pub fn warm_start_epochs(mut self, e: usize) -> Self {
        self.warm_start_epochs = e;
        self
    }

    /// Validates the parameters and builds the selector.
    pub fn check(self) -> Result<GradMatch> {
        if !(self.lambda >= 0.0 && self.lambda.is_finite()) {
            return Err(SelectError::invalid_param(
                "lambda",
                self.lambda,
                "must be finite and >= 0",
            ));
        }
        if !(self.tol >= 0.0 && self.tol < 1.0) {
            return Err(SelectError::invalid_param(
                "tol",
                self.tol,
                "must lie in [0, 1)",
            ));
        }
        if let GradMatchMode::PerBatch { batch_size } = self.mode {
            if batch_size == 0 {
                return Err(SelectError::invalid_param(
                    "batch_size",
                    0,
                    "must be at least 1",
                ));
            }
            if self.target == GradMatchTarget::Validation {
                return Err(SelectError::invalid_param(
                    "target",
                    "Validation",
                    "the validation target is per class; use GradMatchMode::PerClass",
                ));
            }
        }
        let schedule = SelectionSchedule::every_epochs(self.every_epochs)?
            .with_warm_start(self.warm_start_epochs);
        Ok(GradMatch {
            params: self,
            schedule,
        })
    }
}

/// GradMatch: `min_{w >= 0, |S| <= k} ‖Σ_{j∈S} w_j g_j − Σ_i g_i‖ + λ‖w‖²`
/// (Killamsetty et al. 2021, eq. 3) by non-negative OMP on gradient proxies;
/// when OMP stops short of the budget the rest is drawn uniformly at random
/// with weight 1 (as CORDS does; counted in `info.filled_at_random`).
///
/// `info.objective` holds the relative residual `‖r‖ / ‖b‖` of each OMP
/// problem (per class, or the single per-batch one).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradMatch {
    params: GradMatchParams,
    schedule: SelectionSchedule,
}

struct Omp {
    idx: Vec<usize>,
    w: Vec<f32>,
    rel_residual: f64,
    evaluations: u64,
}

impl GradMatch {
    /// The parameter builder.
    pub fn params() -> GradMatchParams {
        GradMatchParams::default()
    }

    fn per_class(&self, state: &TrainingState<'_>, g: &GradProxies, k: usize) -> Result<Vec<Omp>> {
        let classes = state.class_indices();
        let sizes: Vec<usize> = classes.iter().map(Vec::len).collect();
        let quotas = class_quotas(&sizes, k);
        let d = g.dim();
        let val = match self.params.target {
            GradMatchTarget::Train => None,
            GradMatchTarget::Validation => {
                let v = state
                    .validation()
                    .ok_or_else(|| SelectError::missing(self.name(), "a validation set"))?;
                if v.is_empty() {
                    return Err(SelectError::EmptyValidation {
                        selector: self.name(),
                    });
                }
                let vp = v.proxies().ok_or_else(|| {
                    SelectError::missing(self.name(), "validation gradient proxies")
                })?;
                if vp.dim() != d {
                    return Err(SelectError::shape(
                        "validation gradient proxies",
                        format!("width {d} (as the training proxies)"),
                        format!("width {}", vp.dim()),
                    ));
                }
                Some((v.labels(), vp))
            }
        };
        classes
            .par_iter()
            .zip(quotas.par_iter())
            .map(|(idx, &q)| {
                if q == 0 {
                    return Ok(None);
                }
                let sub = g.gather(idx)?;
                let mut b = vec![0.0f64; d];
                match val {
                    None => add_rows(&mut b, sub.values(), d, 1.0),
                    Some((labels, vp)) => {
                        let c = state.labels()[idx[0]];
                        let rows: Vec<usize> =
                            (0..labels.len()).filter(|&i| labels[i] == c).collect();
                        if !rows.is_empty() {
                            let scale = idx.len() as f64 / rows.len() as f64;
                            add_rows(&mut b, vp.gather(&rows)?.values(), d, scale);
                        }
                    }
                }
                let sol = omp_nonneg(sub.values(), d, &b, q, self.params.lambda, self.params.tol);
                Ok(Some(Omp {
                    idx: sol.support.iter().map(|&j| idx[j]).collect(),
                    w: sol.weights.iter().map(|&w| w as f32).collect(),
                    rel_residual: rel(sol.residual_norm, sol.target_norm),
                    evaluations: sol.evaluations,
                }))
            })
            .filter_map(|r| r.transpose())
            .collect()
    }

    fn per_batch(&self, g: &GradProxies, k: usize, bs: usize) -> Result<Omp> {
        let n = g.len();
        let d = g.dim();
        let n_batches = n.div_ceil(bs);
        let mut atoms = vec![0.0f32; n_batches * d];
        for b in 0..n_batches {
            let lo = b * bs;
            let hi = (lo + bs).min(n);
            let mut acc = vec![0.0f64; d];
            add_rows(&mut acc, &g.values()[lo * d..hi * d], d, 1.0);
            for (dst, a) in atoms[b * d..(b + 1) * d].iter_mut().zip(&acc) {
                *dst = (a / (hi - lo) as f64) as f32;
            }
        }
        let mut target = vec![0.0f64; d];
        add_rows(&mut target, &atoms, d, 1.0);
        let sol = omp_nonneg(
            &atoms,
            d,
            &target,
            k.div_ceil(bs),
            self.params.lambda,
            self.params.tol,
        );
        let mut idx = Vec::with_capacity(k);
        let mut w = Vec::with_capacity(k);
        'outer: for (&b, &wb) in sol.support.iter().zip(&sol.weights) {
            for i in b * bs..((b + 1) * bs).min(n) {
                if idx.len() == k {
                    break 'outer;
                }
                idx.push(i);
                w.push(wb as f32);
            }
        }
        Ok(Omp {
            idx,
            w,
            rel_residual: rel(sol.residual_norm, sol.target_norm),
            evaluations: sol.evaluations,
        })
    }
}

fn rel(r: f64, b: f64) -> f64 {
    if b > 0.0 { r / b } else { 0.0 }
}

fn add_rows(acc: &mut [f64], rows: &[f32], d: usize, scale: f64) {
    for r in rows.chunks_exact(d) {
        for (a, &v) in acc.iter_mut().zip(r) {
            *a += scale * v as f64;
        }
    }
}

impl Selector for GradMatch {
    fn name(&self) -> &'static str {
        match self.params.mode {
            GradMatchMode::PerClass => "GradMatch",
            GradMatchMode::PerBatch { .. } => "GradMatch-PB",
        }
    }

    fn needs(&self) -> Needs {
        let val = self.params.target == GradMatchTarget::Validation;
        Needs {
            proxies: Some(self.params.proxy),
            val_proxies: val.then_some(self.params.proxy),
            ..Needs::default()
        }
    }

    fn schedule(&self) -> SelectionSchedule {
        self.schedule
    }

    fn select(&self, state: &TrainingState<'_>, budget: Budget, seed: u64) -> Result<Selection> {
        let n = state.len();
        let k = budget.resolve(n)?;
        let g = state.require_proxies(self.name())?;
        timed(self.name(), k, || {
            let parts = match self.params.mode {
                GradMatchMode::PerClass => self.per_class(state, g, k)?,
                GradMatchMode::PerBatch { batch_size } => vec![self.per_batch(g, k, batch_size)?],
            };
            let mut info = SelectionInfo::default();
            let mut idx = Vec::with_capacity(k);
            let mut w = Vec::with_capacity(k);
            for p in parts {
                info.objective.push(p.rel_residual);
                info.evaluations += p.evaluations;
                idx.extend(p.idx);
                w.extend(p.w);
            }
            let mut r = rng(derive_seed_str(seed, "gradmatch-fill"));
            let missing = k - idx.len();
            info.filled_at_random = fill_uniform(&mut idx, &mut w, n, missing, 1.0, &mut r);
            Ok((Subset::weighted(idx, w, n)?, info))
        })
    }
}
