//! Exemplar SVM distance (ESVM; Malisiewicz et al. 2011) with the same-class
//! sign, the brittleness paper's best attribution ("Data Brittleness
//! Estimation with Self-Supervised Features", §3 "Distance function" and
//! "Sign Estimation", App. A.4).
//!
//! For each test point `j` a linear SVM is trained with the test point's
//! features as the only positive example against the training points of its
//! class as negatives (the paper's code: `label_conditioning = True`,
//! `LinearSVC(C = 0.1, class_weight = "balanced")`, i.e. LIBLINEAR's
//! L2-regularised squared-hinge dual solver with a regularised bias feature
//! of value 1; see [`crate::solvers::svm`]). Training points are ranked by the
//! SVM's decision value `m_i = wᵀf_i + b`: the nearer the hyperplane (larger
//! `m_i`), the more influential. As a score matrix:
//!
//! ```text
//! score(i, j) = s_ij · h(m_i),   h(m) = 1 + m (m ≥ 0), 1 / (1 − m) (m < 0)
//! ```
//!
//! `h` is positive and increasing, `1/(1 + distance)` on the negative side
//! (the paper's "inverse of decision boundary distance"), so the same-class
//! order is exactly the paper's; `s_ij = +1` for training points of the test
//! point's class and `−1` otherwise (their decision values come from the same
//! hyperplane). If the test class has no training points, all training points
//! are negatives. Self-influence of `i`: `h(wᵀf_i + b)` of the SVM with `f_i`
//! as positive against the rest of its class (one SVM per training point).

use wellspring_core::{Dataset, Grouping, ScoreMatrix, derive_seed, derive_seed_str};

use super::{MethodInfo, OptionReader};
use crate::blocks::{by_test_blocks, check_self, groups_by_test_blocks};
use crate::error::{AttribError, Result, positive};
use crate::features::{ClassSource, Extractor, FeatureSpace, classes_of};
use crate::signature::{DataSignature, point_hash};
use crate::solvers::svm::{LinearSvm, SvmLoss, SvmParams, fit_linear_svm};
use crate::source::ModelSource;
use crate::traits::{Attributor, DynAttributor, FittedAttributor};
use rayon::prelude::*;

/// Which training points are the SVM's negatives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Negatives {
    /// The training points of the test point's class (the paper's choice).
    #[default]
    SameClass,
    /// Every training point (the paper's unconditioned variant).
    All,
}

/// Parameters of ESVM.
#[derive(Clone, Debug)]
pub struct EsvmParams {
    c: f64,
    loss: SvmLoss,
    balanced: bool,
    bias: Option<f64>,
    tol: f64,
    max_iter: usize,
    negatives: Negatives,
    class_source: ClassSource,
    signed: bool,
    space: FeatureSpace,
    seed: u64,
}

impl Default for EsvmParams {
    /// The paper's settings: `C = 0.1`, squared hinge, balanced class weights,
    /// bias feature 1, tolerance 1e-6, at most 10 000 passes, same-class
    /// negatives, test labels, signed, penultimate features, seed 0.
    fn default() -> Self {
        Self {
            c: 0.1,
            loss: SvmLoss::SquaredHinge,
            balanced: true,
            bias: Some(1.0),
            tol: 1e-6,
            max_iter: 10_000,
            negatives: Negatives::SameClass,
            class_source: ClassSource::Label,
            signed: true,
            space: FeatureSpace::Penultimate,
            seed: 0,
        }
    }
}

impl EsvmParams {
    /// The paper's settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// SVM cost `C` (> 0).
    pub fn c(mut self, c: f64) -> Self {
        self.c = c;
        self
    }

    /// SVM loss.
    pub fn loss(mut self, loss: SvmLoss) -> Self {
        self.loss = loss;
        self
    }

    /// Balanced class weights `n / (2 n_class)` (default on).
    pub fn balanced(mut self, on: bool) -> Self {
        self.balanced = on;
        self
    }

    /// Bias feature value (`None`: no bias).
    pub fn bias(mut self, b: Option<f64>) -> Self {
        self.bias = b;
        self
    }

    /// Dual solver tolerance (> 0) and maximum passes (≥ 1).
    pub fn solver(mut self, tol: f64, max_iter: usize) -> Self {
        self.tol = tol;
        self.max_iter = max_iter;
        self
    }

    /// Which training points are negatives.
    pub fn negatives(mut self, n: Negatives) -> Self {
        self.negatives = n;
        self
    }

    /// Whose class defines "same class": the test label or the prediction.
    pub fn class_source(mut self, c: ClassSource) -> Self {
        self.class_source = c;
        self
    }

    /// Apply the same-class sign (default) or rank by decision value only.
    pub fn signed(mut self, on: bool) -> Self {
        self.signed = on;
        self
    }

    /// The feature space.
    pub fn features(mut self, space: FeatureSpace) -> Self {
        self.space = space;
        self
    }

    /// Seed of the coordinate-descent permutations.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks `C`, the tolerance, the pass limit and the bias.
    pub fn check(&self) -> Result<()> {
        positive("esvm.c", self.c)?;
        positive("esvm.tol", self.tol)?;
        if let Some(b) = self.bias {
            positive("esvm.bias", b)?;
        }
        if self.max_iter == 0 {
            return Err(AttribError::invalid_param("esvm.max_iter", 0, "must be at least 1"));
        }
        Ok(())
    }
}

/// Fitted ESVM: training features and the training points of every class.
#[derive(Clone, Debug)]
pub struct Esvm {
    p: EsvmParams,
    feats: Vec<f32>,
    labels: Vec<usize>,
    by_class: Vec<Vec<usize>>,
    extractor: Extractor,
    sig: DataSignature,
}

/// `h(m)`: positive, increasing, `1/(1 + distance)` below the hyperplane.
fn magnitude(m: f64) -> f64 {
    if m >= 0.0 { 1.0 + m } else { 1.0 / (1.0 - m) }
}

impl Attributor for EsvmParams {
    type Fitted = Esvm;

    fn fit(&self, source: &ModelSource, train: &Dataset) -> Result<Esvm> {
        self.check()?;
        let labels = train
            .labels()
            .ok_or_else(|| {
                AttribError::unsupported("esvm", format!("dataset {} has no class labels", train.name()))
            })?
            .to_vec();
        let k = train.n_classes().unwrap_or(0);
        let mut by_class = vec![Vec::new(); k];
        for (i, &y) in labels.iter().enumerate() {
            by_class[y].push(i);
        }
        let (extractor, feats) = Extractor::fit(&self.space, source, train)?;
        Ok(Esvm {
            p: self.clone(),
            feats,
            labels,
            by_class,
            extractor,
            sig: DataSignature::of(train),
        })
    }
}

impl Esvm {
    fn row(&self, i: usize) -> &[f32] {
        let d = self.extractor.dim();
        &self.feats[i * d..(i + 1) * d]
    }

    /// The exemplar SVM of `rows[0]` (the only positive) against the rest.
    fn exemplar_svm(&self, rows: &[&[f32]], seed: u64) -> Result<LinearSvm> {
        let mut y = vec![-1i8; rows.len()];
        y[0] = 1;
        let l = rows.len() as f64;
        let (wp, wn) = if self.p.balanced {
            (l / 2.0, l / (2.0 * (l - 1.0)))
        } else {
            (1.0, 1.0)
        };
        fit_linear_svm(
            rows,
            &y,
            &SvmParams {
                loss: self.p.loss,
                c_pos: self.p.c * wp,
                c_neg: self.p.c * wn,
                bias: self.p.bias,
                tol: self.p.tol,
                max_iter: self.p.max_iter,
                seed,
            },
        )
    }

    /// Decision values of every training point under the exemplar SVM of
    /// `positive` against `negatives` (a non-empty pool).
    fn decisions(&self, positive: &[f32], negatives: &[usize], seed: u64) -> Result<Vec<f64>> {
        let mut rows: Vec<&[f32]> = Vec::with_capacity(negatives.len() + 1);
        rows.push(positive);
        rows.extend(negatives.iter().map(|&i| self.row(i)));
        let svm = self.exemplar_svm(&rows, seed)?;
        Ok((0..self.labels.len()).map(|i| svm.decision(self.row(i))).collect())
    }

    fn pool(&self, class: usize) -> Vec<usize> {
        match self.p.negatives {
            Negatives::SameClass if self.by_class.get(class).is_some_and(|v| !v.is_empty()) => {
                self.by_class[class].clone()
            }
            _ => (0..self.labels.len()).collect(),
        }
    }

    /// Test features, classes and per-point seeds (from the point's content,
    /// so results do not depend on chunking).
    fn prepare(&self, test: &Dataset) -> Result<(Vec<f32>, Vec<usize>, Vec<u64>)> {
        self.sig.check(test)?;
        let f = self.extractor.test(test)?;
        let c = classes_of(
            self.p.class_source,
            self.extractor.model(),
            self.extractor.device(),
            test,
            "esvm",
        )?;
        let seeds = (0..test.len())
            .map(|j| derive_seed(self.p.seed, point_hash(test, j)))
            .collect();
        Ok((f, c, seeds))
    }

    fn block(
        &self,
        tf: &[f32],
        classes: &[usize],
        seeds: &[u64],
        col0: usize,
        cols: usize,
    ) -> Result<Vec<f32>> {
        let d = self.extractor.dim();
        let n = self.labels.len();
        let results: Vec<Result<Vec<f32>>> = (0..cols)
            .into_par_iter()
            .map(|j| {
                let col = col0 + j;
                let cj = classes[col];
                let m = self.decisions(
                    &tf[col * d..(col + 1) * d],
                    &self.pool(cj),
                    seeds[col],
                )?;
                Ok(m.iter()
                    .zip(&self.labels)
                    .map(|(&mi, &yi)| {
                        let s = if !self.p.signed || yi == cj { 1.0 } else { -1.0 };
                        (s * magnitude(mi)) as f32
                    })
                    .collect())
            })
            .collect();
        let mut out = Vec::with_capacity(n * cols);
        for r in results {
            out.extend(r?);
        }
        Ok(out)
    }
}

impl FittedAttributor for Esvm {
    fn name(&self) -> &str {
        "esvm"
    }

    fn n_train(&self) -> usize {
        self.labels.len()
    }

    fn attribute(&self, test: &Dataset) -> Result<ScoreMatrix> {
        let (tf, c, s) = self.prepare(test)?;
        by_test_blocks("esvm", self.n_train(), test.len(), |c0, k| {
            self.block(&tf, &c, &s, c0, k)
        })
    }

    fn self_attribute(&self) -> Result<Vec<f32>> {
        let seed = derive_seed_str(self.p.seed, "self");
        let out: Vec<Result<f32>> = (0..self.n_train())
            .into_par_iter()
            .map(|i| {
                let pool: Vec<usize> = self.pool(self.labels[i]).into_iter().filter(|&t| t != i).collect();
                if pool.is_empty() {
                    return Ok(magnitude(0.0) as f32);
                }
                let mut rows: Vec<&[f32]> = vec![self.row(i)];
                rows.extend(pool.iter().map(|&t| self.row(t)));
                let svm = self.exemplar_svm(&rows, derive_seed(seed, i as u64))?;
                Ok(magnitude(svm.decision(rows[0])) as f32)
            })
            .collect();
        let out = out.into_iter().collect::<Result<Vec<f32>>>()?;
        check_self("esvm", &out)?;
        Ok(out)
    }

    fn attribute_groups(&self, grouping: &Grouping, test: &Dataset) -> Result<ScoreMatrix> {
        let (tf, c, s) = self.prepare(test)?;
        groups_by_test_blocks("esvm", grouping, self.n_train(), test.len(), |c0, k| {
            self.block(&tf, &c, &s, c0, k)
        })
    }
}

fn build(r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    let mut p = EsvmParams::new().seed(r.seed());
    if let Some(c) = r.get::<f64>("c")? {
        p = p.c(c);
    }
    if let Some(s) = r.get::<FeatureSpace>("features")? {
        p = p.features(s);
    }
    if let Some(c) = r.get::<ClassSource>("class")? {
        p = p.class_source(c);
    }
    if let Some(s) = r.get::<bool>("signed")? {
        p = p.signed(s);
    }
    if let Some(all) = r.get::<bool>("all_negatives")? {
        p = p.negatives(if all { Negatives::All } else { Negatives::SameClass });
    }
    p.check()?;
    Ok(Box::new(p))
}

/// Registry entry.
pub(crate) const INFO: MethodInfo = MethodInfo {
    name: "esvm",
    description: "exemplar SVM per test point (C=0.1, balanced) vs its class; signed decision values",
    paper: "Data brittleness with self-supervised features, §3 (ESVM + sign estimation)",
    uses_gradients: false,
    params: &[
        ("c", "SVM cost C (default 0.1)"),
        ("features", "penultimate (default) or inputs"),
        ("class", "label (default) or predicted"),
        ("signed", "true (default) or false"),
        ("all_negatives", "false (default: same-class negatives) or true"),
    ],
    caps: super::Capabilities::NONE,
    build,
};
