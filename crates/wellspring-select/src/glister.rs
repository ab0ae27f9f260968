//! GLISTER-ONLINE (Killamsetty et al. 2021, AAAI) with the last-layer
//! approximation CORDS uses: greedily add the training point whose gradient
//! best aligns with the current validation gradient, then move the validation
//! logits by one Taylor step of the selected set's gradient.

use rand::RngExt;
use rayon::prelude::*;
use wellspring_core::{ChaCha8Rng, Subset, derive_seed, rng};

use crate::error::{Result, SelectError};
use crate::schedule::SelectionSchedule;
use crate::selector::{
    Budget, Selection, SelectionInfo, Selector, class_quotas, sample_from, timed,
};
use crate::state::{GradProxies, Needs, ProxyKind, ProxyLayout, TrainingState, class_indices};

/// Greedy variant of GLISTER's outer maximisation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GlisterGreedy {
    /// Evaluate every remaining point at every step.
    Naive,
    /// Stochastic greedy (Mirzasoleiman et al. 2015): at each step evaluate
    /// `⌈(n/k) · ln(1/ε)⌉` remaining points drawn uniformly; CORDS uses `ε = 0.01`.
    Stochastic {
        /// Approximation slack `ε` in `(0, 1)`.
        epsilon: f64,
    },
}

/// Parameters of [`Glister`] (checked builder).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GlisterParams {
    proxy: ProxyKind,
    eta: f64,
    greedy: GlisterGreedy,
    per_class: bool,
    every_epochs: usize,
    warm_start_epochs: usize,
}

impl Default for GlisterParams {
    /// Bias proxies, `η = 0.01`, naive greedy, one problem over all points,
    /// every epoch, no warm start.
    fn default() -> Self {
        Self {
            proxy: ProxyKind::Bias,
            eta: 0.01,
            greedy: GlisterGreedy::Naive,
            per_class: false,
            every_epochs: 1,
            warm_start_epochs: 0,
        }
    }
}

impl GlisterParams {
    /// Which proxy to request: [`ProxyKind::Bias`] moves only the validation
    /// logits' bias; [`ProxyKind::BiasAndWeights`] also the head weights
    /// (needs validation penultimate features).
    pub fn proxy(mut self, p: ProxyKind) -> Self {
        self.proxy = p;
        self
    }

    /// Step size `η > 0` of the one-step inner update (the trainer's learning rate).
    pub fn eta(mut self, eta: f64) -> Self {
        self.eta = eta;
        self
    }

    /// Naive (default) or stochastic greedy.
    pub fn greedy(mut self, g: GlisterGreedy) -> Self {
        self.greedy = g;
        self
    }

    /// One problem per class (training and validation points of that class,
    /// budget proportional to class size) instead of one over all points.
    pub fn per_class(mut self, yes: bool) -> Self {
        self.per_class = yes;
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
    pub fn check(self) -> Result<Glister> {
        if !(self.eta > 0.0 && self.eta.is_finite()) {
            return Err(SelectError::invalid_param(
                "eta",
                self.eta,
                "must be finite and > 0",
            ));
        }
        if let GlisterGreedy::Stochastic { epsilon } = self.greedy
            && !(epsilon > 0.0 && epsilon < 1.0)
        {
            return Err(SelectError::invalid_param(
                "epsilon",
                epsilon,
                "must lie in (0, 1)",
            ));
        }
        let schedule = SelectionSchedule::every_epochs(self.every_epochs)?
            .with_warm_start(self.warm_start_epochs);
        Ok(Glister {
            params: self,
            schedule,
        })
    }
}

/// GLISTER-ONLINE: maximise the validation log-likelihood after one gradient
/// step on the subset, `max_S LL_V(θ − η Σ_{i∈S} ∇ℓ_i)`, greedily with the
/// Taylor gain `g_i · ∇LL_V` (Killamsetty et al. 2021, eq. 5–7), re-linearised
/// after each addition by moving the validation logits
/// `z_v ← z_v − η (g_b + g_W φ_v)` (last layer only, as in CORDS).
/// Unweighted; indices in greedy order.
///
/// `info.objective`: the validation mean log-likelihood under the updated
/// logits, before the first and after every greedy step (one problem), or
/// before and after each class's problem (`per_class`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Glister {
    params: GlisterParams,
    schedule: SelectionSchedule,
}

/// Validation side of one GLISTER problem.
struct ValSide {
    labels: Vec<usize>,
    logits: Vec<f64>,           // m × C
    features: Option<Vec<f64>>, // m × p
}

impl ValSide {
    fn m(&self) -> usize {
        self.labels.len()
    }

    /// Mean log-likelihood and the gradient of the mean loss w.r.t. the head,
    /// in the proxy layout.
    fn ll_and_grad(&self, c: usize, p: usize, d: usize) -> (f64, Vec<f64>) {
        let m = self.m();
        let mut grad = vec![0.0f64; d];
        let mut ll = 0.0;
        let mut e = vec![0.0f64; c];
        for v in 0..m {
            let z = &self.logits[v * c..(v + 1) * c];
            let mx = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let mut s = 0.0;
            for (ek, &zk) in e.iter_mut().zip(z) {
                *ek = (zk - mx).exp();
                s += *ek;
            }
            let y = self.labels[v];
            ll += z[y] - mx - s.ln();
            let inv_s = 1.0 / s;
            for (k, ek) in e.iter_mut().enumerate() {
                *ek = *ek * inv_s - if k == y { 1.0 } else { 0.0 };
                grad[k] += *ek;
            }
            if let Some(f) = &self.features {
                let phi = &f[v * p..(v + 1) * p];
                for k in 0..c {
                    let row = &mut grad[c + k * p..c + (k + 1) * p];
                    for (g, &x) in row.iter_mut().zip(phi) {
                        *g += e[k] * x;
                    }
                }
            }
        }
        let inv = 1.0 / m as f64;
        grad.iter_mut().for_each(|g| *g *= inv);
        (ll * inv, grad)
    }

    /// `z_v ← z_v − η (g_b + g_W φ_v)` for the proxy row `g`.
    fn step(&mut self, g: &[f32], eta: f64, c: usize, p: usize) {
        for v in 0..self.m() {
            let z = &mut self.logits[v * c..(v + 1) * c];
            for k in 0..c {
                let mut delta = g[k] as f64;
                if let Some(f) = &self.features {
                    let phi = &f[v * p..(v + 1) * p];
                    delta += g[c + k * p..c + (k + 1) * p]
                        .iter()
                        .zip(phi)
                        .map(|(&w, &x)| w as f64 * x)
                        .sum::<f64>();
                }
                z[k] -= eta * delta;
            }
        }
    }
}

/// Candidate gradient proxies stored column-major (`d × n_g`), so the gains
/// of all candidates are `d` vectorised axpys.
struct Columns {
    mt: Vec<f32>,
    n: usize,
    d: usize,
}

impl Columns {
    fn new(rows: &[f32], n: usize, d: usize) -> Self {
        let mut mt = vec![0.0f32; n * d];
        for (t, row) in rows.chunks_exact(d).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                mt[k * n + t] = v;
            }
        }
        Self { mt, n, d }
    }

    /// Row `t` as a vector (for the validation update).
    fn row(&self, t: usize) -> Vec<f32> {
        (0..self.d).map(|k| self.mt[k * self.n + t]).collect()
    }

    /// `g_t · grad`, accumulated over `k` in order (as [`Columns::gains`]).
    fn gain(&self, t: usize, grad: &[f32]) -> f32 {
        let mut acc = 0.0f32;
        for (k, &gk) in grad.iter().enumerate() {
            acc += self.mt[k * self.n + t] * gk;
        }
        acc
    }

    /// Gains of every candidate into `out`.
    fn gains(&self, grad: &[f32], out: &mut [f32]) {
        const CHUNK: usize = 8192;
        let fill = |lo: usize, o: &mut [f32]| {
            o.fill(0.0);
            for (k, &gk) in grad.iter().enumerate() {
                let col = &self.mt[k * self.n + lo..k * self.n + lo + o.len()];
                for (x, &m) in o.iter_mut().zip(col) {
                    *x += m * gk;
                }
            }
        };
        if self.n > 2 * CHUNK {
            out.par_chunks_mut(CHUNK)
                .enumerate()
                .for_each(|(c, o)| fill(c * CHUNK, o));
        } else {
            fill(0, out);
        }
    }
}

/// Largest gain among `alive` entries, ties to the smaller index.
fn best_alive(gains: &[f32], alive: &[bool]) -> usize {
    let mut best = (f32::NEG_INFINITY, usize::MAX);
    for (t, (&g, &a)) in gains.iter().zip(alive).enumerate() {
        if a && (g > best.0 || best.1 == usize::MAX) {
            best = (g, t);
        }
    }
    best.1
}

impl Glister {
    /// The parameter builder.
    pub fn params() -> GlisterParams {
        GlisterParams::default()
    }

    fn layout(&self, g: &GradProxies) -> Result<(usize, usize)> {
        match (g.layout(), self.params.proxy) {
            (ProxyLayout::Bias { n_classes }, ProxyKind::Bias) => Ok((n_classes, 0)),
            (
                ProxyLayout::BiasAndWeights {
                    n_classes,
                    n_features,
                },
                ProxyKind::BiasAndWeights,
            ) => Ok((n_classes, n_features)),
            (l, want) => Err(SelectError::shape(
                "GLISTER training gradient proxies",
                format!("the {want:?} last-layer layout"),
                format!("{l:?}"),
            )),
        }
    }

    /// Greedy over training rows `cands` against validation `val`; returns the
    /// chosen rows, the log-likelihood trace and the number of evaluations.
    fn greedy(
        &self,
        g: &GradProxies,
        cands: Vec<usize>,
        k: usize,
        mut val: ValSide,
        r: &mut ChaCha8Rng,
    ) -> (Vec<usize>, Vec<f64>, u64) {
        let (c, p) = self.layout(g).expect("checked by select");
        let d = g.dim();
        let n_g = cands.len();
        // Candidates column-major; `alive` marks those not yet chosen and
        // `pool` lists them (for stochastic sampling) with `slot` as inverse.
        let cols = Columns::new(
            g.gather(&cands)
                .expect("candidates are training rows")
                .values(),
            n_g,
            d,
        );
        let mut gains = vec![0.0f32; n_g];
        let mut alive = vec![true; n_g];
        let mut pool: Vec<usize> = (0..n_g).collect();
        let mut slot: Vec<usize> = (0..n_g).collect();
        let (ll0, mut grad) = val.ll_and_grad(c, p, d);
        let mut trace = vec![ll0];
        let mut chosen = Vec::with_capacity(k);
        let mut evals = 0u64;
        for _ in 0..k.min(n_g) {
            let grad32: Vec<f32> = grad.iter().map(|&v| v as f32).collect();
            let best = match self.params.greedy {
                GlisterGreedy::Naive => {
                    evals += pool.len() as u64;
                    cols.gains(&grad32, &mut gains);
                    best_alive(&gains, &alive)
                }
                GlisterGreedy::Stochastic { epsilon } => {
                    let s = ((n_g as f64 / k as f64) * (1.0 / epsilon).ln()).ceil() as usize;
                    let s = s.clamp(1, pool.len());
                    for i in 0..s {
                        let j = r.random_range(i..pool.len());
                        pool.swap(i, j);
                        slot[pool[i]] = i;
                        slot[pool[j]] = j;
                    }
                    evals += s as u64;
                    let mut best = (f32::NEG_INFINITY, usize::MAX);
                    for &t in &pool[..s] {
                        let gt = cols.gain(t, &grad32);
                        if best.1 == usize::MAX || gt > best.0 || (gt == best.0 && t < best.1) {
                            best = (gt, t);
                        }
                    }
                    best.1
                }
            };
            alive[best] = false;
            let at = slot[best];
            pool.swap_remove(at);
            if at < pool.len() {
                slot[pool[at]] = at;
            }
            chosen.push(cands[best]);
            val.step(&cols.row(best), self.params.eta, c, p);
            let (ll, gr) = val.ll_and_grad(c, p, d);
            grad = gr;
            trace.push(ll);
        }
        (chosen, trace, evals)
    }
}

impl Selector for Glister {
    fn name(&self) -> &'static str {
        "GLISTER"
    }

    fn needs(&self) -> Needs {
        Needs {
            proxies: Some(self.params.proxy),
            val_probs: true,
            val_features: self.params.proxy == ProxyKind::BiasAndWeights,
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
        let (c, p) = self.layout(g)?;
        let v = state
            .validation()
            .ok_or_else(|| SelectError::missing(self.name(), "a validation set"))?;
        if v.is_empty() {
            return Err(SelectError::EmptyValidation {
                selector: self.name(),
            });
        }
        let vprobs = v
            .probs()
            .ok_or_else(|| SelectError::missing(self.name(), "validation probabilities"))?;
        let vfeat = if p > 0 {
            let (f, fp) = v.features().ok_or_else(|| {
                SelectError::missing(self.name(), "validation penultimate features")
            })?;
            if fp != p {
                return Err(SelectError::shape(
                    "validation penultimate features",
                    format!("width {p} (as in the training proxies)"),
                    format!("width {fp}"),
                ));
            }
            Some(f)
        } else {
            None
        };
        let val_side = |rows: &[usize]| ValSide {
            labels: rows.iter().map(|&i| v.labels()[i]).collect(),
            // ln p is a valid logit vector: log-softmax ignores per-row shifts.
            logits: rows
                .iter()
                .flat_map(|&i| {
                    vprobs[i * c..(i + 1) * c]
                        .iter()
                        .map(|&q| (q.max(1e-30) as f64).ln())
                })
                .collect(),
            features: vfeat.map(|f| {
                rows.iter()
                    .flat_map(|&i| f[i * p..(i + 1) * p].iter().map(|&x| x as f64))
                    .collect()
            }),
        };
        timed(self.name(), k, || {
            let mut info = SelectionInfo::default();
            let mut idx = Vec::with_capacity(k);
            if self.params.per_class {
                let tr = state.class_indices();
                let va = class_indices(v.labels(), c);
                let quotas = class_quotas(&tr.iter().map(Vec::len).collect::<Vec<_>>(), k);
                for (cls, (t, &q)) in tr.into_iter().zip(&quotas).enumerate() {
                    if q == 0 {
                        continue;
                    }
                    let mut r = rng(derive_seed(seed, cls as u64));
                    if va[cls].is_empty() {
                        let pick = sample_from(&t, q, &mut r);
                        info.filled_at_random += pick.len();
                        idx.extend(pick);
                        continue;
                    }
                    let (ch, trace, ev) = self.greedy(g, t, q, val_side(&va[cls]), &mut r);
                    info.objective.push(trace[0]);
                    info.objective
                        .push(*trace.last().expect("trace starts non-empty"));
                    info.evaluations += ev;
                    idx.extend(ch);
                }
            } else {
                let all: Vec<usize> = (0..v.len()).collect();
                let mut r = rng(seed);
                let (ch, trace, ev) = self.greedy(g, (0..n).collect(), k, val_side(&all), &mut r);
                info.objective = trace;
                info.evaluations = ev;
                idx = ch;
            }
            Ok((Subset::new(idx, n)?, info))
        })
    }
}
