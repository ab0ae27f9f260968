//! Data brittleness (brittleness paper §2.1, appendix A.2/A.6; Ilyas et al.
//! 2022): per test point, the smallest number of top-ranked training points
//! whose **removal** (data removal support) or **relabelling** to the test
//! point's highest incorrect class (data mislabel support) makes an average
//! training run misclassify it.
//!
//! Each oracle evaluation trains `n_models` models (default 5) on the modified
//! set; it "flips" when their mean correctness on the test point is below
//! `threshold` (default 0.5). The searches of all test points run in lock
//! step: every round gathers each unfinished point's next probe into one
//! [`Retrainer::retrain_many`] batch. Results are summarised as a CDF (fraction
//! of test points with support ≤ k) and its normalised area ([`SupportCdf`]),
//! with the area's standard error over test points.
//!
//! Test points that the full-data models already misclassify are **excluded**
//! (the paper evaluates correctly classified points only): they have no
//! support to search, and counting them as support 0 would give a method full
//! credit for a point it never had to explain. [`BrittlenessResult::excluded`]
//! counts them.
//!
//! The candidate pool is the caller's per-method choice ([`CandidatePool`]):
//! the paper restricts the similarity methods (ESVM, `ℓ2`, embedding
//! distances) to the test point's class ("Sign Estimation", §3, App. A.4) and
//! explicitly does **not** restrict Grad-Cos (App. A.5.1), whose scores
//! already rank the same class first; attribution methods with signed scores
//! (TRAK, influence functions, datamodels) rank every point.

use serde::{Deserialize, Serialize};
use wellspring_core::{ScoreMatrix, Subset, argsort_desc, derive_seed_str};

use crate::error::{EvalError, Result, check_indices, check_shape};
use crate::metric::{EvalContext, Metric};
use crate::retrain::{RetrainSpec, Retrainer, model_seeds, run_checked};
use crate::search::{Bisection, LinearScan, Probe, SupportSearch, check_sizes};

/// Which modification the support measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SupportKind {
    /// Remove the points (data removal support).
    Removal,
    /// Relabel them to the test point's highest incorrect class (data mislabel support).
    Mislabel,
}

/// Which training points are ranked: a per-method choice (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CandidatePool {
    /// Only points labelled with the test point's class (the paper's filter
    /// for its similarity methods, ESVM and `ℓ2`: §3 "Sign Estimation", App. A.4).
    SameClass,
    /// Every point, in the method's own order (the paper's choice for
    /// Grad-Cos, App. A.5.1, and for TRAK / IF / datamodels). For
    /// mislabelling, points already labelled with the target class are
    /// skipped: relabelling them changes nothing.
    All,
}

/// How the support size is searched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// Budgeted bisection (appendix A.6; see [`crate::search`]).
    Bisection {
        /// Oracle evaluations per test point (paper: 7).
        budget: usize,
    },
    /// Probe fixed increasing sizes, stop at the first flip.
    LinearScan {
        /// Sizes probed.
        sizes: Vec<usize>,
    },
}

/// x-axis of the CDF area.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CdfScale {
    /// `AUC = (1/N_max) ∫₀^{N_max} F(k) dk`.
    #[default]
    Linear,
    /// `AUC = ∫₀^{ln(1+N_max)} F dx / ln(1+N_max)` with `x = ln(1+k)`.
    Log,
}

/// Checked brittleness parameters; also the [`Metric`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Brittleness {
    kind: SupportKind,
    pool: CandidatePool,
    strategy: Strategy,
    max_k: usize,
    n_models: usize,
    threshold: f64,
    seed: u64,
    test_points: Option<Vec<usize>>,
    scale: CdfScale,
}

/// The support CDF and its area.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SupportCdf {
    /// Maximum support size `N_max`.
    pub max_k: usize,
    /// Scale of the area.
    pub scale: CdfScale,
    /// `(k, F(k))` at every distinct found support, increasing: the step
    /// function `F(k)` = fraction of test points with support ≤ k.
    pub steps: Vec<(usize, f64)>,
    /// Fraction of test points with a support ≤ `N_max` (`F(N_max)`).
    pub found_fraction: f64,
    /// Normalised area under `F` on `[0, N_max]` ∈ [0, 1]; larger = smaller
    /// supports found (paper Fig. 1b, Table 2).
    pub auc: f64,
    /// Standard error of `auc` over the test points (the area is the mean of
    /// one contribution per point; 0 for fewer than two points).
    pub auc_std_err: f64,
    /// Test points the CDF is over.
    pub n_points: usize,
}

impl SupportCdf {
    /// CDF of `supports` (`None` = not found within `max_k`). A found support
    /// `s` contributes `(N_max − s)/N_max` (linear) or
    /// `(ln(1+N_max) − ln(1+s))/ln(1+N_max)` (log) to the mean that is the
    /// area, a point not found 0; `auc_std_err` is the standard error of
    /// that mean. An empty slice gives area 0 over 0 points.
    pub fn new(supports: &[Option<usize>], max_k: usize, scale: CdfScale) -> Self {
        let n = supports.len().max(1) as f64;
        let mk = max_k.max(1) as f64;
        let contribution = |s: usize| match scale {
            CdfScale::Linear => (mk - s as f64) / mk,
            CdfScale::Log => ((1.0 + mk).ln() - (1.0 + s as f64).ln()) / (1.0 + mk).ln(),
        };
        let per_point: Vec<f64> = supports
            .iter()
            .map(|s| s.map_or(0.0, |s| contribution(s.min(max_k))))
            .collect();
        let mut found: Vec<usize> = supports.iter().flatten().map(|&s| s.min(max_k)).collect();
        found.sort_unstable();
        let mut steps: Vec<(usize, f64)> = Vec::new();
        for (c, &s) in found.iter().enumerate() {
            let f = (c + 1) as f64 / n;
            match steps.last_mut() {
                Some(last) if last.0 == s => last.1 = f,
                _ => steps.push((s, f)),
            }
        }
        let auc = per_point.iter().sum::<f64>() / n;
        Self {
            max_k,
            scale,
            steps,
            found_fraction: found.len() as f64 / n,
            auc,
            auc_std_err: crate::stats::std_err(&per_point),
            n_points: supports.len(),
        }
    }

    /// `F(k)`: fraction of test points with support ≤ `k`.
    pub fn at(&self, k: usize) -> f64 {
        self.steps
            .iter()
            .take_while(|(s, _)| *s <= k)
            .last()
            .map_or(0.0, |&(_, f)| f)
    }
}

/// One probe with its measured mean correctness.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasuredProbe {
    /// Size and outcome.
    pub probe: Probe,
    /// Mean correctness over the models.
    pub mean_correct: f64,
}

/// Support of one test point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestSupport {
    /// Test point index.
    pub test: usize,
    /// Its label.
    pub label: usize,
    /// Mislabel target (highest incorrect class of the full-data models).
    pub target_class: Option<usize>,
    /// Mean correctness of the full-data models.
    pub baseline_correct: f64,
    /// Whether the point is excluded from the CDF because the full-data
    /// models already misclassify it (`baseline_correct` below the threshold;
    /// no search is run and `support` is `None`).
    pub excluded: bool,
    /// Ranked candidates available (`N_max` is clamped to it).
    pub pool_size: usize,
    /// Found support (`None` = not found within `N_max`).
    pub support: Option<usize>,
    /// Largest size known not to flip.
    pub lower: usize,
    /// Every probe.
    pub trace: Vec<MeasuredProbe>,
}

/// Result of [`Brittleness`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BrittlenessResult {
    /// Removal or mislabel.
    pub kind: SupportKind,
    /// Candidate pool.
    pub pool: CandidatePool,
    /// Search used.
    pub strategy: Strategy,
    /// `N_max`.
    pub max_k: usize,
    /// Models per oracle evaluation.
    pub n_models: usize,
    /// Correctness threshold.
    pub threshold: f64,
    /// Per test point.
    pub per_test: Vec<TestSupport>,
    /// CDF over the evaluated test points (excluded ones left out).
    pub cdf: SupportCdf,
    /// Test points excluded because the full-data models misclassify them.
    pub excluded: usize,
    /// Models trained in total (baseline included).
    pub models_trained: usize,
}

impl Brittleness {
    /// Data removal support: every training point ranked ([`CandidatePool::All`];
    /// set [`CandidatePool::SameClass`] for similarity methods), bisection
    /// with budget 7, `N_max = 1280`, 5 models, threshold 0.5 (paper
    /// appendix A.2/A.6).
    pub fn removal() -> Self {
        Self {
            kind: SupportKind::Removal,
            pool: CandidatePool::All,
            strategy: Strategy::Bisection { budget: 7 },
            max_k: 1280,
            n_models: 5,
            threshold: 0.5,
            seed: 0,
            test_points: None,
            scale: CdfScale::Linear,
        }
    }

    /// Data mislabel support: as [`Brittleness::removal`] but relabelling.
    pub fn mislabel() -> Self {
        Self {
            kind: SupportKind::Mislabel,
            ..Self::removal()
        }
    }

    /// Candidate pool (the method's choice: see [`CandidatePool`]).
    pub fn pool(mut self, pool: CandidatePool) -> Self {
        self.pool = pool;
        self
    }

    /// Bisection with this budget.
    pub fn bisection(mut self, budget: usize) -> Self {
        self.strategy = Strategy::Bisection { budget };
        self
    }

    /// Linear scan over these sizes (e.g. `[10, 20, 40, …, 1280]`).
    pub fn linear_scan(mut self, sizes: Vec<usize>) -> Self {
        self.strategy = Strategy::LinearScan { sizes };
        self
    }

    /// Maximum support size `N_max`.
    pub fn max_k(mut self, k: usize) -> Self {
        self.max_k = k;
        self
    }

    /// Models averaged per oracle evaluation.
    pub fn n_models(mut self, r: usize) -> Self {
        self.n_models = r;
        self
    }

    /// Flip when mean correctness `<` threshold (in `(0, 1]`).
    pub fn threshold(mut self, t: f64) -> Self {
        self.threshold = t;
        self
    }

    /// Seed of the model seeds.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Evaluate only these test points (default: all).
    pub fn test_points(mut self, idx: Vec<usize>) -> Self {
        self.test_points = Some(idx);
        self
    }

    /// Scale of the CDF area.
    pub fn cdf_scale(mut self, scale: CdfScale) -> Self {
        self.scale = scale;
        self
    }

    /// Errors on budget 0, `N_max = 0`, 0 models, a threshold outside `(0, 1]`
    /// or bad scan sizes.
    pub fn check(&self) -> Result<()> {
        match &self.strategy {
            Strategy::Bisection { budget: 0 } => {
                return Err(EvalError::invalid_param(
                    "bisection search budget",
                    0,
                    "must be ≥ 1 oracle evaluation",
                ));
            }
            Strategy::LinearScan { sizes } => check_sizes(sizes)?,
            Strategy::Bisection { .. } => {}
        }
        if self.max_k == 0 {
            return Err(EvalError::invalid_param(
                "maximum support size",
                0,
                "must be ≥ 1",
            ));
        }
        if self.n_models == 0 {
            return Err(EvalError::invalid_param(
                "models per evaluation",
                0,
                "must be ≥ 1",
            ));
        }
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(EvalError::invalid_param(
                "correctness threshold",
                self.threshold,
                "must lie in (0, 1]",
            ));
        }
        Ok(())
    }

    /// Runs the searches for every (selected) test point.
    pub fn run(
        &self,
        scores: &ScoreMatrix,
        retrainer: &dyn Retrainer,
    ) -> Result<BrittlenessResult> {
        self.check()?;
        let metric = self.name();
        let (n, m) = (retrainer.n_train(), retrainer.n_test());
        check_shape(metric, scores, n, m)?;
        let train_labels =
            retrainer
                .train_labels()
                .ok_or_else(|| EvalError::NeedsClassification {
                    what: metric.into(),
                })?;
        let test_labels =
            retrainer
                .test_labels()
                .ok_or_else(|| EvalError::NeedsClassification {
                    what: metric.into(),
                })?;
        let tests: Vec<usize> = match &self.test_points {
            Some(t) => {
                check_indices("brittleness test points", t, m)?;
                t.clone()
            }
            None => (0..m).collect(),
        };
        if tests.is_empty() {
            return Err(EvalError::EmptyTestSet {
                what: metric.into(),
            });
        }
        let seeds = model_seeds(
            derive_seed_str(self.seed, "brittleness-models"),
            self.n_models,
        );
        // baseline: full-data models give correctness and the mislabel target
        let base_jobs: Vec<(RetrainSpec, u64)> = seeds
            .iter()
            .map(|&s| (RetrainSpec::full(n).tagged("brittleness/full"), s))
            .collect();
        let base = run_checked(retrainer, &base_jobs)?;
        let mut models_trained = base.len();
        let n_classes = retrainer.n_classes().unwrap_or(0);

        let mut states: Vec<PointState> = Vec::with_capacity(tests.len());
        for &t in &tests {
            let label = test_labels[t];
            let baseline = mean_correct(&base, t);
            let target =
                (self.kind == SupportKind::Mislabel).then(|| mode_runner_up(&base, t, n_classes));
            let ranked = self.ranking(scores, t, label, target, train_labels);
            let mut cap = self.max_k.min(ranked.len());
            if self.kind == SupportKind::Removal {
                cap = cap.min(n - 1); // keep at least one training point
            }
            let search: Box<dyn SupportSearch + Send> = if baseline < self.threshold || cap == 0 {
                Box::new(Done)
            } else {
                match &self.strategy {
                    Strategy::Bisection { budget } => Box::new(Bisection::new(cap, *budget)?),
                    Strategy::LinearScan { sizes } => {
                        let s: Vec<usize> = sizes.iter().copied().filter(|&k| k <= cap).collect();
                        if s.is_empty() {
                            Box::new(Done)
                        } else {
                            Box::new(LinearScan::new(s)?)
                        }
                    }
                }
            };
            states.push(PointState {
                test: t,
                label,
                target,
                baseline,
                ranked,
                search,
                trace: Vec::new(),
            });
        }

        loop {
            let probes: Vec<(usize, usize)> = states
                .iter()
                .enumerate()
                .filter_map(|(p, st)| st.search.next_probe().map(|k| (p, k)))
                .collect();
            if probes.is_empty() {
                break;
            }
            let mut jobs = Vec::with_capacity(probes.len() * seeds.len());
            for &(p, k) in &probes {
                let spec = self.spec(&states[p], k, n)?;
                for &s in &seeds {
                    jobs.push((spec.clone(), s));
                }
            }
            let outs = run_checked(retrainer, &jobs)?;
            models_trained += outs.len();
            for (q, &(p, k)) in probes.iter().enumerate() {
                let st = &mut states[p];
                let chunk = &outs[q * seeds.len()..(q + 1) * seeds.len()];
                let mc = mean_correct(chunk, st.test);
                let flipped = mc < self.threshold;
                st.search.record(k, flipped);
                st.trace.push(MeasuredProbe {
                    probe: Probe { k, flipped },
                    mean_correct: mc,
                });
            }
        }

        let per_test: Vec<TestSupport> = states
            .into_iter()
            .map(|st| {
                let out = st.search.outcome();
                TestSupport {
                    test: st.test,
                    label: st.label,
                    target_class: st.target,
                    baseline_correct: st.baseline,
                    excluded: st.baseline < self.threshold,
                    pool_size: st.ranked.len(),
                    support: out.support,
                    lower: out.lower,
                    trace: st.trace,
                }
            })
            .collect();
        let supports: Vec<Option<usize>> = per_test
            .iter()
            .filter(|t| !t.excluded)
            .map(|t| t.support)
            .collect();
        let excluded = per_test.len() - supports.len();
        Ok(BrittlenessResult {
            kind: self.kind,
            pool: self.pool,
            strategy: self.strategy.clone(),
            max_k: self.max_k,
            n_models: self.n_models,
            threshold: self.threshold,
            cdf: SupportCdf::new(&supports, self.max_k, self.scale),
            excluded,
            per_test,
            models_trained,
        })
    }

    /// Candidates for test point `t`, most helpful first (ties to the lower index).
    fn ranking(
        &self,
        scores: &ScoreMatrix,
        t: usize,
        label: usize,
        target: Option<usize>,
        train_labels: &[usize],
    ) -> Vec<usize> {
        argsort_desc(&scores.column(t))
            .into_iter()
            .filter(|&i| match self.pool {
                CandidatePool::SameClass => train_labels[i] == label,
                CandidatePool::All => true,
            })
            .filter(|&i| target.is_none_or(|c| train_labels[i] != c))
            .collect()
    }

    fn spec(&self, st: &PointState, k: usize, n: usize) -> Result<RetrainSpec> {
        let top = &st.ranked[..k];
        let tag = format!(
            "brittleness/{}/{}/{k}",
            match self.kind {
                SupportKind::Removal => "remove",
                SupportKind::Mislabel => "mislabel",
            },
            st.test
        );
        Ok(match self.kind {
            SupportKind::Removal => RetrainSpec::without(n, top)?.tagged(tag),
            SupportKind::Mislabel => {
                let c = st.target.expect("mislabel has a target class");
                RetrainSpec::on(Subset::all(n))
                    .with_labels(top.iter().map(|&i| (i, c)))
                    .tagged(tag)
            }
        })
    }
}

struct PointState {
    test: usize,
    label: usize,
    target: Option<usize>,
    baseline: f64,
    ranked: Vec<usize>,
    search: Box<dyn SupportSearch + Send>,
    trace: Vec<MeasuredProbe>,
}

/// A search that is already over (baseline already misclassified: excluded;
/// empty pool: not found).
struct Done;

impl SupportSearch for Done {
    fn next_probe(&self) -> Option<usize> {
        None
    }
    fn record(&mut self, _: usize, _: bool) {}
    fn outcome(&self) -> crate::search::SearchOutcome {
        crate::search::SearchOutcome {
            support: None,
            lower: 0,
            evaluations: 0,
            trace: Vec::new(),
        }
    }
}

fn mean_correct(outs: &[crate::retrain::TestOutputs], t: usize) -> f64 {
    let c = outs
        .iter()
        .filter(|o| o.correct.as_ref().is_some_and(|c| c[t]))
        .count();
    c as f64 / outs.len().max(1) as f64
}

/// Most frequent runner-up class over the models (ties to the lower class).
fn mode_runner_up(outs: &[crate::retrain::TestOutputs], t: usize, n_classes: usize) -> usize {
    let mut counts = vec![0usize; n_classes.max(1)];
    for o in outs {
        if let Some(r) = &o.runner_up
            && r[t] < counts.len()
        {
            counts[r[t]] += 1;
        }
    }
    let best = counts.iter().copied().max().unwrap_or(0);
    counts.iter().position(|&c| c == best).unwrap_or(0)
}

impl Metric for Brittleness {
    type Output = BrittlenessResult;

    fn name(&self) -> &str {
        match self.kind {
            SupportKind::Removal => "removal-support",
            SupportKind::Mislabel => "mislabel-support",
        }
    }

    fn evaluate(&self, scores: &ScoreMatrix, ctx: &EvalContext<'_>) -> Result<BrittlenessResult> {
        self.run(scores, ctx.require_retrainer(self.name())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_area() {
        let c = SupportCdf::new(&[Some(0), Some(50), None, Some(100)], 100, CdfScale::Linear);
        assert_eq!(c.steps, vec![(0, 0.25), (50, 0.5), (100, 0.75)]);
        assert!((c.auc - (1.0 + 0.5 + 0.0) / 4.0).abs() < 1e-12);
        // contributions 1, 0.5, 0, 0: sample s.d. 0.4787, s.e. = s.d. / 2
        let sd = ((0.625f64.powi(2) + 0.125f64.powi(2) + 2.0 * 0.375f64.powi(2)) / 3.0).sqrt();
        assert!((c.auc_std_err - sd / 2.0).abs() < 1e-12);
        assert_eq!(c.n_points, 4);
        assert!((c.found_fraction - 0.75).abs() < 1e-12);
        assert_eq!(c.at(49), 0.25);
        assert_eq!(c.at(50), 0.5);
        let l = SupportCdf::new(&[Some(0), None], 100, CdfScale::Log);
        assert!((l.auc - 0.5).abs() < 1e-12);
        assert!(SupportCdf::new(&[None, None], 10, CdfScale::Linear).auc == 0.0);
        let empty = SupportCdf::new(&[], 10, CdfScale::Linear);
        assert!(empty.auc == 0.0 && empty.auc_std_err == 0.0 && empty.n_points == 0);
    }

    #[test]
    fn bad_params() {
        assert!(Brittleness::removal().bisection(0).check().is_err());
        assert!(Brittleness::removal().max_k(0).check().is_err());
        assert!(Brittleness::removal().n_models(0).check().is_err());
        assert!(Brittleness::removal().threshold(0.0).check().is_err());
        assert!(Brittleness::removal().linear_scan(vec![]).check().is_err());
        assert!(Brittleness::mislabel().check().is_ok());
    }
}
