//! CREST (Yang, Kang & Mirzasoleiman 2023), the selection part: mini-batch
//! coresets chosen by facility location from random subsets of the data.
//! The step-by-step driver (quadratic-model checks) is in [`crate::crest_driver`].

use rand::RngExt;
use wellspring_core::{ChaCha8Rng, Subset, derive_seed_str, rng};

use crate::craig::facility_group;
use crate::error::{Result, SelectError};
use crate::facility::{Greedy, Metric};
use crate::schedule::SelectionSchedule;
use crate::selector::{Budget, Selection, SelectionInfo, Selector, class_quotas, timed};
use crate::state::{GradProxies, Needs, ProxyKind, TrainingState, class_indices};

/// Parameters of CREST (checked builder), shared by the one-round [`Crest`]
/// selector and the step-by-step [`crate::CrestDriver`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CrestParams {
    pub(crate) batch_size: usize,
    pub(crate) random_subset_fraction: f64,
    pub(crate) n_minibatches: usize,
    pub(crate) batch_num_mul: f64,
    pub(crate) interval_mul: f64,
    pub(crate) check_interval: usize,
    pub(crate) tau: f64,
    pub(crate) proxy: ProxyKind,
    pub(crate) metric: Metric,
    pub(crate) first_selection_step: Option<usize>,
    pub(crate) shuffle: bool,
}

impl Default for CrestParams {
    /// The CREST repository's defaults: mini-batch 128, random subsets of 1% of
    /// the data (`⌈0.01·n/C⌉` per class), 5 mini-batch coresets per selection,
    /// `batch_num_mul = 5`, `interval_mul = 1`, first check interval 1, `τ = 0.1`,
    /// bias proxies (`softmax − one-hot`), Euclidean similarity, shuffled
    /// coreset batches, first selection after one epoch.
    fn default() -> Self {
        Self {
            batch_size: 128,
            random_subset_fraction: 0.01,
            n_minibatches: 5,
            batch_num_mul: 5.0,
            interval_mul: 1.0,
            check_interval: 1,
            tau: 0.1,
            proxy: ProxyKind::Bias,
            metric: Metric::Euclidean,
            first_selection_step: None,
            shuffle: true,
        }
    }
}

impl CrestParams {
    /// Mini-batch (coreset) size `B`.
    pub fn batch_size(mut self, b: usize) -> Self {
        self.batch_size = b;
        self
    }

    /// Size of each random subset as a fraction of `n`, split evenly over classes.
    pub fn random_subset_fraction(mut self, r: f64) -> Self {
        self.random_subset_fraction = r;
        self
    }

    /// Mini-batch coresets selected together at the first selection.
    pub fn n_minibatches(mut self, p: usize) -> Self {
        self.n_minibatches = p;
        self
    }

    /// Coresets per selection = `check_interval · batch_num_mul` (capped at an epoch).
    pub fn batch_num_mul(mut self, m: f64) -> Self {
        self.batch_num_mul = m;
        self
    }

    /// Check interval = `⌈interval_mul · ‖H₀‖ / ‖H‖⌉` after each selection.
    pub fn interval_mul(mut self, m: f64) -> Self {
        self.interval_mul = m;
        self
    }

    /// Steps between quadratic-model checks until the first curvature update.
    pub fn check_interval(mut self, c: usize) -> Self {
        self.check_interval = c;
        self
    }

    /// Reselect when `|L − L̂| > τ · L` (CREST: `τ = 0.1`).
    pub fn tau(mut self, t: f64) -> Self {
        self.tau = t;
        self
    }

    /// Which proxy to request from the loop.
    pub fn proxy(mut self, p: ProxyKind) -> Self {
        self.proxy = p;
        self
    }

    /// Distance behind the facility-location similarity.
    pub fn metric(mut self, m: Metric) -> Self {
        self.metric = m;
        self
    }

    /// Optimiser step of the first selection (default: one epoch of full-data
    /// warm-up, `steps_per_epoch`, as the CREST code's first `reset_step`).
    pub fn first_selection_step(mut self, s: usize) -> Self {
        self.first_selection_step = Some(s);
        self
    }

    /// Reshuffle the union of the coresets into mini-batches every pass
    /// (CREST's `--shuffle`, default) or train on the coresets in order.
    pub fn shuffle(mut self, yes: bool) -> Self {
        self.shuffle = yes;
        self
    }

    /// Validates the parameters and builds the one-round selector.
    pub fn check(self) -> Result<Crest> {
        if self.batch_size == 0 {
            return Err(SelectError::invalid_param(
                "batch_size",
                0,
                "must be at least 1",
            ));
        }
        let r = self.random_subset_fraction;
        if !(r > 0.0 && r <= 1.0) {
            return Err(SelectError::invalid_param(
                "random_subset_fraction",
                r,
                "must lie in (0, 1]",
            ));
        }
        if self.n_minibatches == 0 {
            return Err(SelectError::invalid_param(
                "n_minibatches",
                0,
                "must be at least 1",
            ));
        }
        if self.check_interval == 0 {
            return Err(SelectError::invalid_param(
                "check_interval",
                0,
                "must be at least 1",
            ));
        }
        for (name, v) in [
            ("batch_num_mul", self.batch_num_mul),
            ("interval_mul", self.interval_mul),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(SelectError::invalid_param(
                    name,
                    v,
                    "must be finite and > 0",
                ));
            }
        }
        if !(self.tau > 0.0 && self.tau.is_finite()) {
            return Err(SelectError::invalid_param(
                "tau",
                self.tau,
                "must be finite and > 0",
            ));
        }
        Ok(Crest { params: self })
    }
}

/// One CREST selection: random subsets and the mini-batch coreset of each.
#[derive(Clone, Debug, PartialEq)]
pub struct CrestRound {
    /// The random subsets (training indices), one per coreset.
    pub random_sets: Vec<Vec<usize>>,
    /// The mini-batch coresets (training indices), in greedy order.
    pub coresets: Vec<Vec<usize>>,
    /// Weights of each coreset's points: cluster sizes, rescaled so that the
    /// mean weight over the whole round is 1 (as the CREST code does).
    pub weights: Vec<Vec<f32>>,
    /// Facility-location value of each coreset (sum over its classes).
    pub objective: Vec<f64>,
    /// Marginal-gain evaluations.
    pub evaluations: u64,
}

impl CrestRound {
    /// All coreset points with their weights, as one subset of `0..n`.
    pub fn subset(&self, n: usize) -> Result<Subset> {
        let idx: Vec<usize> = self.coresets.iter().flatten().copied().collect();
        let w: Vec<f32> = self.weights.iter().flatten().copied().collect();
        Ok(Subset::weighted(idx, w, n)?)
    }

    /// Concatenated random subsets (where CREST evaluates the true loss).
    pub fn random_points(&self) -> Vec<usize> {
        self.random_sets.iter().flatten().copied().collect()
    }
}

/// Draws `count` random subsets, each with `⌈r·n/C⌉` points of every class
/// (all of a smaller class). Within a class the subsets are dealt from one
/// shuffled order, so they are disjoint while the class lasts; a class that
/// runs out is reshuffled and dealt again (only then can subsets overlap).
pub(crate) fn draw_random_sets(
    labels: &[usize],
    n_classes: usize,
    fraction: f64,
    count: usize,
    r: &mut ChaCha8Rng,
) -> Vec<Vec<usize>> {
    let n = labels.len();
    let per_class = ((fraction * n as f64) / n_classes as f64).ceil().max(1.0) as usize;
    let mut sets = vec![Vec::new(); count];
    for class in class_indices(labels, n_classes) {
        if class.is_empty() {
            continue;
        }
        let take = per_class.min(class.len());
        let mut order = class.clone();
        let mut cursor = order.len();
        for set in sets.iter_mut() {
            if cursor + take > order.len() {
                for i in (1..order.len()).rev() {
                    let j = r.random_range(0..=i);
                    order.swap(i, j);
                }
                cursor = 0;
            }
            set.extend_from_slice(&order[cursor..cursor + take]);
            cursor += take;
        }
    }
    sets
}

/// Selects a coreset of `size` points from each random set by per-class
/// facility location over `proxies` (one row per point of the concatenated
/// random sets, in order).
pub(crate) fn coresets_from_sets(
    params: &CrestParams,
    labels: &[usize],
    n_classes: usize,
    sets: Vec<Vec<usize>>,
    sizes: &[usize],
    proxies: &GradProxies,
) -> Result<CrestRound> {
    let total: usize = sets.iter().map(Vec::len).sum();
    if proxies.len() != total {
        return Err(SelectError::shape(
            "CREST candidate proxies",
            format!("{total} rows (one per point of the random subsets, in order)"),
            format!("{} rows", proxies.len()),
        ));
    }
    let mut coresets = Vec::with_capacity(sets.len());
    let mut weights = Vec::with_capacity(sets.len());
    let mut objective = Vec::with_capacity(sets.len());
    let mut evaluations = 0;
    let mut offset = 0;
    for (set, &size) in sets.iter().zip(sizes) {
        // Rows of `proxies` for this set, grouped by class.
        let mut by_class = vec![Vec::new(); n_classes];
        for (t, &i) in set.iter().enumerate() {
            by_class[labels[i]].push(offset + t);
        }
        let quotas = class_quotas(&by_class.iter().map(Vec::len).collect::<Vec<_>>(), size);
        let (mut cs, mut ws, mut obj) = (Vec::new(), Vec::new(), 0.0);
        for (rows, &q) in by_class.iter().zip(&quotas) {
            let (sel, w, f, ev) =
                facility_group(proxies, rows, q, params.metric, Greedy::Lazy, 1 << 30, 1024)?;
            cs.extend(sel.iter().map(|&row| set[row - offset]));
            ws.extend(w);
            obj += f;
            evaluations += ev;
        }
        coresets.push(cs);
        weights.push(ws);
        objective.push(obj);
        offset += set.len();
    }
    let count: usize = weights.iter().map(Vec::len).sum();
    let sum: f64 = weights.iter().flatten().map(|&w| w as f64).sum();
    if sum > 0.0 {
        let scale = count as f64 / sum;
        weights
            .iter_mut()
            .flatten()
            .for_each(|w| *w = (*w as f64 * scale) as f32);
    }
    Ok(CrestRound {
        random_sets: sets,
        coresets,
        weights,
        objective,
        evaluations,
    })
}

/// CREST's selection as a one-round [`Selector`]: `⌈k/B⌉` random subsets, a
/// facility-location coreset of `B` points from each (the last one `k −
/// (⌈k/B⌉−1)·B`), weighted by cluster sizes rescaled to mean 1. A random
/// subset smaller than its coreset gives a shortfall (`info.shortfall`).
/// Indices come coreset by coreset, each in greedy order per class.
///
/// For CREST proper (reselection driven by the quadratic-model check), drive a
/// [`crate::CrestDriver`] step by step. `info.objective` holds the
/// facility-location value of each coreset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crest {
    pub(crate) params: CrestParams,
}

impl Crest {
    /// The parameter builder.
    pub fn params() -> CrestParams {
        CrestParams::default()
    }

    /// The checked parameters.
    pub fn get_params(&self) -> &CrestParams {
        &self.params
    }
}

impl Selector for Crest {
    fn name(&self) -> &'static str {
        "CREST"
    }

    fn needs(&self) -> Needs {
        Needs {
            proxies: Some(self.params.proxy),
            ..Needs::default()
        }
    }

    /// A new round every epoch when used as a plain selector; a
    /// [`crate::CrestDriver`] decides by itself when to reselect.
    fn schedule(&self) -> SelectionSchedule {
        SelectionSchedule::every_epochs(1).expect("1 is a valid interval")
    }

    fn select(&self, state: &TrainingState<'_>, budget: Budget, seed: u64) -> Result<Selection> {
        let n = state.len();
        let k = budget.resolve(n)?;
        let g = state.require_proxies(self.name())?;
        timed(self.name(), k, || {
            let b = self.params.batch_size;
            let count = k.div_ceil(b);
            let sizes: Vec<usize> = (0..count)
                .map(|p| {
                    if p + 1 < count {
                        b
                    } else {
                        k - b * (count - 1)
                    }
                })
                .collect();
            let mut r = rng(derive_seed_str(seed, "crest-random-sets"));
            let sets = draw_random_sets(
                state.labels(),
                state.n_classes(),
                self.params.random_subset_fraction,
                count,
                &mut r,
            );
            let cand: Vec<usize> = sets.iter().flatten().copied().collect();
            let sub = g.gather(&cand)?;
            let round = coresets_from_sets(
                &self.params,
                state.labels(),
                state.n_classes(),
                sets,
                &sizes,
                &sub,
            )?;
            let info = SelectionInfo {
                objective: round.objective.clone(),
                evaluations: round.evaluations,
                ..SelectionInfo::default()
            };
            Ok((round.subset(n)?, info))
        })
    }
}
