//! Facility location, the submodular objective of CRAIG (Mirzasoleiman et al.
//! 2020, eq. 7–9) and CREST's mini-batch coresets:
//! `F(S) = Σ_i max_{j ∈ S} s_ij`, maximised greedily (Nemhauser et al. 1978:
//! `F(S_greedy) >= (1 − 1/e) F(S*)` for non-negative `s`), with Minoux's lazy
//! evaluations (a max-heap of stale marginal gains, which only shrink).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use nalgebra::DMatrix;

use crate::error::{Result, SelectError, check_finite_matrix};
use crate::kernels::{max_nonneg, sum_pos_diff};

/// Distance underlying the similarity `s_ij = d_max − d(x_i, x_j)` (CRAIG's
/// choice; `d_max` is the largest distance in the instance, so `s >= 0`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Metric {
    /// `‖x_i − x_j‖₂` (CRAIG's `pairwise_distances(metric="euclidean")`).
    #[default]
    Euclidean,
    /// `‖x_i − x_j‖₂²` (CORDS' `distance(x, y, exp=2)`).
    SquaredEuclidean,
}

/// Greedy variant; both return identical selections on a dense similarity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Greedy {
    /// Minoux's lazy greedy (priority queue of marginal gains).
    #[default]
    Lazy,
    /// Re-evaluates every marginal gain at every step (for tests and baselines).
    Plain,
}

/// A non-negative similarity matrix over `n` points, read by columns.
pub trait Similarity: Sync {
    /// Number of points.
    fn len(&self) -> usize;

    /// True if there are no points.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Column `j` (`s_ij` for all `i`), borrowed or computed into `scratch`.
    fn column<'s>(&'s self, j: usize, scratch: &'s mut Vec<f32>) -> &'s [f32];

    /// `Σ_i s_ij` for every `j`: the marginal gains of the empty set.
    fn column_sums(&self) -> Vec<f64> {
        let mut scratch = Vec::new();
        let zeros = vec![0.0f32; self.len()];
        (0..self.len())
            .map(|j| sum_pos_diff(self.column(j, &mut scratch), &zeros))
            .collect()
    }
}

/// A dense `n × n` similarity held in memory (column-major).
#[derive(Clone, Debug, PartialEq)]
pub struct DenseSimilarity {
    n: usize,
    values: Vec<f32>,
}

impl DenseSimilarity {
    /// From a row-major `n × n` matrix with `s[i·n + j] = s_ij`, checked finite and non-negative.
    pub fn from_matrix(n: usize, s: &[f32]) -> Result<Self> {
        if s.len() != n * n {
            return Err(SelectError::shape(
                "similarity matrix",
                format!("{n} x {n} = {} values", n * n),
                format!("{} values", s.len()),
            ));
        }
        check_finite_matrix("similarity matrix", s, n)?;
        if let Some(p) = s.iter().position(|&v| v < 0.0) {
            return Err(SelectError::OutOfRange {
                what: "similarity matrix".into(),
                row: p / n,
                col: p % n,
                value: s[p] as f64,
                reason: "is negative; facility location needs s >= 0".into(),
            });
        }
        let mut values = vec![0.0f32; n * n];
        for i in 0..n {
            for j in 0..n {
                values[j * n + i] = s[i * n + j];
            }
        }
        Ok(Self { n, values })
    }

    /// `s_ij = d_max − d(x_i, x_j)` over the rows of a row-major `n × d` matrix
    /// (distances through one matrix product, `‖x‖² + ‖y‖² − 2 xᵀy`).
    pub fn from_points(points: &[f32], d: usize, metric: Metric) -> Result<Self> {
        let n = check_points(points, d)?;
        let mut g = gram(points, n, d);
        let norms = row_norms(points, d);
        let mut dmax = 0.0f32;
        let vals = g.as_mut_slice();
        for (j, col) in vals.chunks_exact_mut(n.max(1)).enumerate() {
            let nj = norms[j];
            for (v, &ni) in col.iter_mut().zip(&norms) {
                *v = distance_from_dot(ni, nj, *v, metric);
            }
            col[j] = 0.0;
            dmax = dmax.max(max_nonneg(col));
        }
        for v in vals.iter_mut() {
            *v = dmax - *v;
        }
        Ok(Self {
            n,
            values: g.data.into(),
        })
    }

    /// `s_ij`.
    pub fn get(&self, i: usize, j: usize) -> f32 {
        self.values[j * self.n + i]
    }
}

impl Similarity for DenseSimilarity {
    fn len(&self) -> usize {
        self.n
    }

    fn column<'s>(&'s self, j: usize, _scratch: &'s mut Vec<f32>) -> &'s [f32] {
        &self.values[j * self.n..(j + 1) * self.n]
    }
}

/// `s_ij = d_max − d(x_i, x_j)` computed on demand from the points, for
/// instances whose `n × n` matrix does not fit in memory. Construction makes
/// one blockwise pass (`block × n` products) for `d_max` and the column sums.
#[derive(Clone, Debug)]
pub struct PointSimilarity<'a> {
    points: &'a [f32],
    n: usize,
    d: usize,
    metric: Metric,
    dmax: f32,
    col_sums: Vec<f64>,
}

impl<'a> PointSimilarity<'a> {
    /// Over the rows of a row-major `n × d` matrix; `block` rows per product.
    pub fn new(points: &'a [f32], d: usize, metric: Metric, block: usize) -> Result<Self> {
        let n = check_points(points, d)?;
        let block = block.max(1);
        let norms = row_norms(points, d);
        let all = DMatrix::<f32>::from_row_slice(n, d, points).transpose(); // d × n
        let mut dist_sums = vec![0.0f64; n];
        let mut dmax = 0.0f32;
        let mut start = 0;
        while start < n {
            let b = block.min(n - start);
            let xb = DMatrix::<f32>::from_row_slice(b, d, &points[start * d..(start + b) * d]);
            let g = &xb * &all; // b × n, column-major
            let gv = g.as_slice();
            for (j, sum) in dist_sums.iter_mut().enumerate() {
                for r in 0..b {
                    let i = start + r;
                    let v = if i == j {
                        0.0
                    } else {
                        distance_from_dot(norms[i], norms[j], gv[j * b + r], metric)
                    };
                    dmax = dmax.max(v);
                    *sum += v as f64;
                }
            }
            start += b;
        }
        let col_sums = dist_sums
            .iter()
            .map(|&s| (n as f64 * dmax as f64 - s).max(0.0))
            .collect();
        Ok(Self {
            points,
            n,
            d,
            metric,
            dmax,
            col_sums,
        })
    }
}

impl Similarity for PointSimilarity<'_> {
    fn len(&self) -> usize {
        self.n
    }

    fn column<'s>(&'s self, j: usize, scratch: &'s mut Vec<f32>) -> &'s [f32] {
        let d = self.d;
        let xj = &self.points[j * d..(j + 1) * d];
        scratch.clear();
        scratch.extend(self.points.chunks_exact(d).map(|xi| {
            let sq: f32 = xi.iter().zip(xj).map(|(a, b)| (a - b) * (a - b)).sum();
            let dist = match self.metric {
                Metric::Euclidean => sq.sqrt(),
                Metric::SquaredEuclidean => sq,
            };
            (self.dmax - dist).max(0.0)
        }));
        scratch
    }

    fn column_sums(&self) -> Vec<f64> {
        self.col_sums.clone()
    }
}

fn check_points(points: &[f32], d: usize) -> Result<usize> {
    if d == 0 || !points.len().is_multiple_of(d) {
        return Err(SelectError::shape(
            "points",
            "a row-major n x d matrix with d >= 1",
            format!("{} values for d = {d}", points.len()),
        ));
    }
    check_finite_matrix("points", points, d)?;
    Ok(points.len() / d)
}

fn row_norms(points: &[f32], d: usize) -> Vec<f32> {
    points
        .chunks_exact(d)
        .map(|r| r.iter().map(|v| v * v).sum())
        .collect()
}

fn gram(points: &[f32], n: usize, d: usize) -> DMatrix<f32> {
    let x = DMatrix::<f32>::from_row_slice(n, d, points);
    &x * x.transpose()
}

fn distance_from_dot(ni: f32, nj: f32, dot: f32, metric: Metric) -> f32 {
    let sq = (ni + nj - 2.0 * dot).max(0.0);
    match metric {
        Metric::Euclidean => sq.sqrt(),
        Metric::SquaredEuclidean => sq,
    }
}

/// A greedy facility-location solution.
#[derive(Clone, Debug, PartialEq)]
pub struct FlSolution {
    /// Selected points, in greedy order.
    pub selected: Vec<usize>,
    /// Cluster sizes: how many points have each selected point as their most
    /// similar selected point (ties to the earlier selection); CRAIG's `γ_j`.
    /// They sum to `n`.
    pub weights: Vec<f32>,
    /// `F(S)` after each greedy step.
    pub trace: Vec<f64>,
    /// Marginal-gain evaluations performed.
    pub evaluations: u64,
}

impl FlSolution {
    /// `F(S)` of the final selection (0 for an empty one).
    pub fn objective(&self) -> f64 {
        self.trace.last().copied().unwrap_or(0.0)
    }
}

/// `F(S) = Σ_i max_{j∈S} s_ij` (0 for the empty set).
pub fn facility_value<S: Similarity + ?Sized>(sim: &S, set: &[usize]) -> f64 {
    let n = sim.len();
    let mut cur = vec![0.0f32; n];
    let mut scratch = Vec::new();
    for &j in set {
        for (c, &s) in cur.iter_mut().zip(sim.column(j, &mut scratch)) {
            *c = c.max(s);
        }
    }
    cur.iter().map(|&v| v as f64).sum()
}

#[derive(PartialEq)]
struct Entry {
    gain: f64,
    j: usize,
    round: usize,
}

impl Eq for Entry {}

impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        // Largest gain first; ties to the smaller index (as the plain argmax).
        self.gain.total_cmp(&o.gain).then(o.j.cmp(&self.j))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Greedily maximises facility location with `min(k, n)` points.
///
/// Marginal gains `Σ_i max(0, s_ij − cur_i)` are accumulated in a fixed order
/// (eight `f32` lanes, then `f64`), so they never increase as `cur` grows, even
/// in floating point: the lazy and plain variants make the same choices (ties
/// to the smaller index).
pub fn maximize<S: Similarity + ?Sized>(sim: &S, k: usize, greedy: Greedy) -> FlSolution {
    let n = sim.len();
    let k = k.min(n);
    let mut cur = vec![0.0f32; n];
    let mut assign = vec![usize::MAX; n];
    let mut selected = Vec::with_capacity(k);
    let mut is_sel = vec![false; n];
    let mut trace = Vec::with_capacity(k);
    let mut evaluations = 0u64;
    let mut scratch = Vec::new();
    let mut value = 0.0f64;

    let gain = |j: usize, cur: &[f32], scratch: &mut Vec<f32>| -> f64 {
        sum_pos_diff(sim.column(j, scratch), cur)
    };

    let mut add =
        |j: usize, g: f64, cur: &mut [f32], scratch: &mut Vec<f32>, selected: &mut Vec<usize>| {
            let pos = selected.len();
            for (i, &s) in sim.column(j, scratch).iter().enumerate() {
                if assign[i] == usize::MAX || s > cur[i] {
                    assign[i] = pos;
                }
                cur[i] = cur[i].max(s);
            }
            selected.push(j);
            value += g;
            trace.push(value);
        };

    match greedy {
        Greedy::Plain => {
            for _ in 0..k {
                let mut best: Option<(f64, usize)> = None;
                for (j, _) in is_sel.iter().enumerate().filter(|&(_, &s)| !s) {
                    let g = gain(j, &cur, &mut scratch);
                    evaluations += 1;
                    if best.is_none_or(|(bg, _)| g > bg) {
                        best = Some((g, j));
                    }
                }
                let (g, j) = best.expect("k <= n leaves a candidate");
                is_sel[j] = true;
                add(j, g, &mut cur, &mut scratch, &mut selected);
            }
        }
        Greedy::Lazy => {
            let sums = sim.column_sums();
            evaluations += n as u64;
            let mut heap: BinaryHeap<Entry> = sums
                .into_iter()
                .enumerate()
                .map(|(j, gain)| Entry { gain, j, round: 0 })
                .collect();
            let mut round = 0usize;
            while selected.len() < k {
                let top = heap.pop().expect("k <= n leaves a candidate");
                if top.round == round {
                    add(top.j, top.gain, &mut cur, &mut scratch, &mut selected);
                    round += 1;
                } else {
                    let g = gain(top.j, &cur, &mut scratch);
                    evaluations += 1;
                    heap.push(Entry {
                        gain: g,
                        j: top.j,
                        round,
                    });
                }
            }
        }
    }

    let mut weights = vec![0.0f32; selected.len()];
    for &a in &assign {
        if a != usize::MAX {
            weights[a] += 1.0;
        }
    }
    FlSolution {
        selected,
        weights,
        trace,
        evaluations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_from_points_matches_direct_distances() {
        let pts = [0.0f32, 0.0, 3.0, 4.0, 1.0, 0.0];
        let s = DenseSimilarity::from_points(&pts, 2, Metric::Euclidean).unwrap();
        // Distances: d01 = 5, d02 = 1, d12 = sqrt(4 + 16).
        assert!((s.get(0, 1) - 0.0).abs() < 1e-5);
        assert!((s.get(0, 2) - 4.0).abs() < 1e-5);
        assert!((s.get(1, 1) - 5.0).abs() < 1e-6);
        let p = PointSimilarity::new(&pts, 2, Metric::Euclidean, 2).unwrap();
        let mut scratch = Vec::new();
        for j in 0..3 {
            let c = p.column(j, &mut scratch).to_vec();
            for (i, &v) in c.iter().enumerate() {
                assert!((v - s.get(i, j)).abs() < 1e-4);
            }
        }
        let sums = p.column_sums();
        let dense_sums = s.column_sums();
        for (a, b) in sums.iter().zip(&dense_sums) {
            assert!((a - b).abs() < 1e-3);
        }
    }

    #[test]
    fn lazy_equals_plain_and_weights_sum_to_n() {
        let pts: Vec<f32> = (0..40).map(|i| ((i * 37 % 11) as f32).sin()).collect();
        let s = DenseSimilarity::from_points(&pts, 2, Metric::Euclidean).unwrap();
        let a = maximize(&s, 6, Greedy::Lazy);
        let b = maximize(&s, 6, Greedy::Plain);
        assert_eq!(a.selected, b.selected);
        assert_eq!(a.weights, b.weights);
        assert_eq!(a.weights.iter().sum::<f32>(), 20.0);
        assert!(a.evaluations <= b.evaluations);
        assert!((a.objective() - facility_value(&s, &a.selected)).abs() < 1e-3);
        assert!(DenseSimilarity::from_matrix(2, &[1.0, -1.0, 0.0, 1.0]).is_err());
    }
}
