//! CRAIG (Mirzasoleiman, Bilmes & Leskovec 2020): per-class facility location
//! on last-layer gradient proxies, weighted by cluster sizes.

use rayon::prelude::*;
use wellspring_core::Subset;

use crate::error::{Result, SelectError};
use crate::facility::{DenseSimilarity, FlSolution, Greedy, Metric, PointSimilarity, maximize};
use crate::schedule::SelectionSchedule;
use crate::selector::{Budget, Selection, SelectionInfo, Selector, class_quotas, timed};
use crate::state::{GradProxies, Needs, ProxyKind, TrainingState};

/// Parameters of [`Craig`] (checked builder).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CraigParams {
    proxy: ProxyKind,
    metric: Metric,
    greedy: Greedy,
    per_class: bool,
    max_dense_bytes: usize,
    block_rows: usize,
    every_epochs: usize,
    warm_start_epochs: usize,
}

impl Default for CraigParams {
    /// Bias proxies (`softmax − one-hot`), Euclidean distance, lazy greedy,
    /// per class, dense matrices up to 1 GiB, every epoch, no warm start.
    fn default() -> Self {
        Self {
            proxy: ProxyKind::Bias,
            metric: Metric::Euclidean,
            greedy: Greedy::Lazy,
            per_class: true,
            max_dense_bytes: 1 << 30,
            block_rows: 1024,
            every_epochs: 1,
            warm_start_epochs: 0,
        }
    }
}

impl CraigParams {
    /// Which proxy to request from the loop.
    pub fn proxy(mut self, p: ProxyKind) -> Self {
        self.proxy = p;
        self
    }

    /// Distance behind `s = d_max − d`.
    pub fn metric(mut self, m: Metric) -> Self {
        self.metric = m;
        self
    }

    /// Lazy (default) or plain greedy.
    pub fn greedy(mut self, g: Greedy) -> Self {
        self.greedy = g;
        self
    }

    /// Solve one facility-location problem per class (CORDS' "PerClass", the
    /// default) or one over all points.
    pub fn per_class(mut self, yes: bool) -> Self {
        self.per_class = yes;
        self
    }

    /// Largest `n_c² · 4` bytes held as a dense matrix; bigger problems compute
    /// similarities on demand from the proxies.
    pub fn max_dense_bytes(mut self, b: usize) -> Self {
        self.max_dense_bytes = b;
        self
    }

    /// Rows per matrix product in the on-demand mode's first pass.
    pub fn block_rows(mut self, b: usize) -> Self {
        self.block_rows = b;
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
    pub fn check(self) -> Result<Craig> {
        if self.block_rows == 0 {
            return Err(SelectError::invalid_param(
                "block_rows",
                0,
                "must be at least 1",
            ));
        }
        let schedule = SelectionSchedule::every_epochs(self.every_epochs)?
            .with_warm_start(self.warm_start_epochs);
        Ok(Craig {
            params: self,
            schedule,
        })
    }
}

/// CRAIG: for each class `c` with quota `k_c` (proportional to its size,
/// largest remainder), greedily maximise `F(S) = Σ_{i∈c} max_{j∈S} (d_max −
/// ‖g_i − g_j‖)` over the gradient proxies `g` (Mirzasoleiman et al. 2020, eq.
/// 7–9) and weight each selected point by the size of the cluster it covers
/// (`γ_j`, eq. 9). Weights sum to `n`, except that a selected point covering
/// no other point (exact ties) gets weight 1 instead of 0, as in the CREST
/// code; a class whose quota is its size is taken whole with weight 1.
/// Indices are per class in greedy order.
///
/// `info.objective` holds `F(S_c)` for each class with a positive quota, in
/// class order (0 for a class taken whole).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Craig {
    params: CraigParams,
    schedule: SelectionSchedule,
}

impl Craig {
    /// The parameter builder.
    pub fn params() -> CraigParams {
        CraigParams::default()
    }

    /// Solves facility location over the rows `idx` of `proxies` with `k`
    /// points; returns global indices, cluster sizes, `F(S)` and evaluations.
    pub(crate) fn solve_group(
        &self,
        proxies: &GradProxies,
        idx: &[usize],
        k: usize,
    ) -> Result<GroupSolution> {
        facility_group(
            proxies,
            idx,
            k,
            self.params.metric,
            self.params.greedy,
            self.params.max_dense_bytes,
            self.params.block_rows,
        )
    }
}

/// Global indices, weights, `F(S)` and gain evaluations of one facility-location problem.
pub(crate) type GroupSolution = (Vec<usize>, Vec<f32>, f64, u64);

/// Facility location over the rows `idx` of `proxies` (CRAIG's per-class
/// problem; CREST's per-random-subset one). `k >= idx.len()` takes every point
/// with weight 1.
pub(crate) fn facility_group(
    proxies: &GradProxies,
    idx: &[usize],
    k: usize,
    metric: Metric,
    greedy: Greedy,
    max_dense_bytes: usize,
    block_rows: usize,
) -> Result<GroupSolution> {
    if k == 0 || idx.is_empty() {
        return Ok((Vec::new(), Vec::new(), 0.0, 0));
    }
    if k >= idx.len() {
        return Ok((idx.to_vec(), vec![1.0; idx.len()], 0.0, 0));
    }
    let sub = proxies.gather(idx)?;
    let d = sub.dim();
    let m = idx.len();
    let sol: FlSolution = if m.saturating_mul(m).saturating_mul(4) <= max_dense_bytes {
        let sim = DenseSimilarity::from_points(sub.values(), d, metric)?;
        maximize(&sim, k, greedy)
    } else {
        let sim = PointSimilarity::new(sub.values(), d, metric, block_rows)?;
        maximize(&sim, k, greedy)
    };
    let objective = sol.objective();
    let global = sol.selected.iter().map(|&j| idx[j]).collect();
    // A point that covers no cluster (exact ties, e.g. identical proxies of an
    // untrained model) would get weight 0; like the CREST code, give it 1.
    let weights = sol.weights.iter().map(|&w| w.max(1.0)).collect();
    Ok((global, weights, objective, sol.evaluations))
}

impl Selector for Craig {
    fn name(&self) -> &'static str {
        "CRAIG"
    }

    fn needs(&self) -> Needs {
        Needs {
            proxies: Some(self.params.proxy),
            ..Needs::default()
        }
    }

    fn schedule(&self) -> SelectionSchedule {
        self.schedule
    }

    fn select(&self, state: &TrainingState<'_>, budget: Budget, _seed: u64) -> Result<Selection> {
        let n = state.len();
        let k = budget.resolve(n)?;
        let proxies = state.require_proxies(self.name())?;
        timed(self.name(), k, || {
            let groups: Vec<Vec<usize>> = if self.params.per_class {
                state.class_indices()
            } else {
                vec![(0..n).collect()]
            };
            let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
            let quotas = class_quotas(&sizes, k);
            let solved: Vec<Result<GroupSolution>> = groups
                .par_iter()
                .zip(quotas.par_iter())
                .map(|(g, &q)| self.solve_group(proxies, g, q))
                .collect();
            let mut idx = Vec::with_capacity(k);
            let mut w = Vec::with_capacity(k);
            let mut info = SelectionInfo::default();
            for (r, &q) in solved.into_iter().zip(&quotas) {
                let (i, wi, obj, ev) = r?;
                if q > 0 {
                    info.objective.push(obj);
                }
                info.evaluations += ev;
                idx.extend(i);
                w.extend(wi);
            }
            Ok((Subset::weighted(idx, w, n)?, info))
        })
    }
}
