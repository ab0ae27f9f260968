//! K-means (Lloyd's algorithm with k-means++ seeding) as used by GGDA for its
//! K-Means, Repr-K-Means and Grad-K-Means groupers (GGDA §5.2, App. B.2:
//! whitened inputs, tolerance 1e-3 on the centre shift, at most 60 iterations).
//!
//! faer's solver shape: [`KMeansParams`] in, [`KMeansFit`] (grouping, centres)
//! plus [`KMeansInfo`] (iterations, inertia, converged) out.

use rand::RngExt;
use rayon::prelude::*;
use wellspring_core::{Grouping, rng};

use crate::Grouper;
use crate::dense::{Whitening, gemm_abt, whiten};
use crate::error::{GroupError, Result};
use crate::points::{GroupAmount, Points};

/// Rows per block of the blocked distance computation.
const BLOCK: usize = 256;

/// Hyper-parameters of [`KMeansParams::fit`] (linfa-style builder; checked at fit).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KMeansParams {
    amount: GroupAmount,
    seed: u64,
    tolerance: f64,
    max_iter: usize,
    whitening: Whitening,
}

/// How a K-means run went.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KMeansInfo {
    /// Centre updates performed (`≤ max_iter`).
    pub iterations: usize,
    /// Final inertia `Σ_i ‖x_i − c_{a(i)}‖²` on the whitened points.
    pub inertia: f64,
    /// Whether the centre shift fell to the tolerance before `max_iter`.
    pub converged: bool,
    /// Inertia after every assignment step, first to last (non-increasing).
    pub inertia_history: Vec<f64>,
    /// Final total squared centre shift `Σ_k ‖c_k − c_k^{prev}‖²`.
    pub last_shift: f64,
    /// The absolute shift threshold used: `tolerance × mean feature variance`.
    pub shift_threshold: f64,
    /// How many times an empty cluster was re-seeded from the farthest point.
    pub reseeded: usize,
}

/// Result of [`KMeansParams::fit`].
#[derive(Clone, Debug)]
pub struct KMeansFit {
    /// The groups (every one non-empty).
    pub grouping: Grouping,
    /// Centres in the whitened space, row-major `k × d`.
    pub centres: Vec<f64>,
    /// Convergence information.
    pub info: KMeansInfo,
}

impl KMeansParams {
    /// K-means with `amount` groups; defaults: seed 0, tolerance 1e-3, at
    /// most 60 iterations, per-feature standardisation (GGDA App. B.2).
    pub fn new(amount: GroupAmount) -> Self {
        Self {
            amount,
            seed: 0,
            tolerance: 1e-3,
            max_iter: 60,
            whitening: Whitening::Standardize,
        }
    }

    /// Seed of the k-means++ initialisation.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Relative tolerance on the total squared centre shift (scikit-learn's
    /// convention: multiplied by the mean per-feature variance of the points).
    pub fn tolerance(mut self, tol: f64) -> Self {
        self.tolerance = tol;
        self
    }

    /// Maximum number of Lloyd iterations (`≥ 1`).
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }

    /// Whitening applied before clustering.
    pub fn whitening(mut self, w: Whitening) -> Self {
        self.whitening = w;
        self
    }

    /// Checks tolerance and iteration count (the group count is checked against `n` at fit).
    pub fn check(&self) -> Result<()> {
        if !self.tolerance.is_finite() || self.tolerance < 0.0 {
            return Err(GroupError::invalid_param(
                "kmeans tolerance",
                self.tolerance,
                "must be finite and >= 0",
            ));
        }
        if self.max_iter == 0 {
            return Err(GroupError::invalid_param(
                "kmeans max_iter",
                0,
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// Clusters `points`: whiten, k-means++ seeding, Lloyd iterations until the
    /// centre shift is within tolerance or `max_iter` is reached, then a final
    /// assignment. Empty clusters are re-seeded with the point farthest from
    /// its centre, so every group is non-empty. Deterministic for a seed.
    pub fn fit(&self, points: Points<'_>) -> Result<KMeansFit> {
        self.check()?;
        let (n, d) = (points.n(), points.d());
        let k = self.amount.n_groups(n)?;
        let x = whiten(points.as_slice(), n, d, self.whitening);
        let norms: Vec<f64> = x
            .chunks_exact(d)
            .map(|r| r.iter().map(|&v| (v as f64) * (v as f64)).sum())
            .collect();
        let threshold = self.tolerance * mean_variance(&x, n, d);

        let mut centres = plus_plus(&x, n, d, k, self.seed);
        let mut assign = vec![0usize; n];
        let mut dist = vec![0.0f64; n];
        let mut history = Vec::new();
        let (mut iterations, mut converged, mut last_shift, mut reseeded) = (0, false, 0.0, 0);
        for _ in 0..self.max_iter {
            history.push(assign_points(
                &x,
                &norms,
                d,
                &centres,
                k,
                &mut assign,
                &mut dist,
            ));
            reseeded += fix_empty(&mut assign, &mut dist, k);
            let new = means(&x, d, &assign, k);
            last_shift = new
                .iter()
                .zip(&centres)
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            centres = new;
            iterations += 1;
            if last_shift <= threshold {
                converged = true;
                break;
            }
        }
        // Final E-step, so that the groups match the returned centres.
        history.push(assign_points(
            &x,
            &norms,
            d,
            &centres,
            k,
            &mut assign,
            &mut dist,
        ));
        let fixed = fix_empty(&mut assign, &mut dist, k);
        if fixed > 0 {
            reseeded += fixed;
            centres = means(&x, d, &assign, k);
        }
        let inertia = inertia(&x, d, &centres, &assign);
        let grouping = Grouping::from_assignment(&assign)?;
        Ok(KMeansFit {
            grouping,
            centres,
            info: KMeansInfo {
                iterations,
                inertia,
                converged,
                inertia_history: history,
                last_shift,
                shift_threshold: threshold,
                reseeded,
            },
        })
    }
}

impl Grouper for KMeansParams {
    fn name(&self) -> &str {
        "kmeans"
    }

    fn group(&self, points: Points<'_>) -> Result<Grouping> {
        Ok(self.fit(points)?.grouping)
    }
}

fn mean_variance(x: &[f32], n: usize, d: usize) -> f64 {
    let mut total = 0.0;
    for j in 0..d {
        let m = (0..n).map(|i| x[i * d + j] as f64).sum::<f64>() / n as f64;
        total += (0..n)
            .map(|i| (x[i * d + j] as f64 - m).powi(2))
            .sum::<f64>()
            / n as f64;
    }
    total / d as f64
}

fn sq_dist(a: &[f32], c: &[f64]) -> f64 {
    a.iter().zip(c).map(|(&v, &w)| (v as f64 - w).powi(2)).sum()
}

/// k-means++ (Arthur & Vassilvitskii 2007): the first centre uniformly, each
/// next one with probability proportional to the squared distance to the
/// nearest chosen centre; uniformly among unchosen points if all distances are 0.
fn plus_plus(x: &[f32], n: usize, d: usize, k: usize, seed: u64) -> Vec<f64> {
    let mut r = rng(seed);
    let mut chosen = vec![false; n];
    let mut centres = Vec::with_capacity(k * d);
    let first = r.random_range(0..n);
    chosen[first] = true;
    centres.extend(x[first * d..(first + 1) * d].iter().map(|&v| v as f64));
    let mut d2: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| sq_dist(&x[i * d..(i + 1) * d], &centres[..d]))
        .collect();
    for _ in 1..k {
        let total: f64 = d2.iter().sum();
        let pick = if total > 0.0 {
            let target = r.random::<f64>() * total;
            let mut acc = 0.0;
            let mut pick = None;
            for (i, &w) in d2.iter().enumerate() {
                acc += w;
                if acc > target && w > 0.0 {
                    pick = Some(i);
                    break;
                }
            }
            // Rounding can leave `target` just above the running sum: take the
            // last point with positive weight.
            pick.unwrap_or_else(|| d2.iter().rposition(|&w| w > 0.0).expect("total > 0"))
        } else {
            let free: Vec<usize> = (0..n).filter(|&i| !chosen[i]).collect();
            free[r.random_range(0..free.len())]
        };
        chosen[pick] = true;
        let c: Vec<f64> = x[pick * d..(pick + 1) * d]
            .iter()
            .map(|&v| v as f64)
            .collect();
        d2.par_iter_mut().enumerate().for_each(|(i, w)| {
            let s = sq_dist(&x[i * d..(i + 1) * d], &c);
            if s < *w {
                *w = s;
            }
        });
        centres.extend(c);
    }
    centres
}

/// Assigns every point to its nearest centre (ties to the lower index) using
/// `‖x‖² + ‖c‖² − 2 x·c` in `f64` with a blocked GEMM; returns the inertia.
fn assign_points(
    x: &[f32],
    norms: &[f64],
    d: usize,
    centres: &[f64],
    k: usize,
    assign: &mut [usize],
    dist: &mut [f64],
) -> f64 {
    let cnorm: Vec<f64> = centres
        .chunks_exact(d)
        .map(|c| c.iter().map(|v| v * v).sum())
        .collect();
    assign
        .par_chunks_mut(BLOCK)
        .zip(dist.par_chunks_mut(BLOCK))
        .enumerate()
        .for_each(|(b, (a_blk, d_blk))| {
            let r0 = b * BLOCK;
            let rows = a_blk.len();
            let xb: Vec<f64> = x[r0 * d..(r0 + rows) * d]
                .iter()
                .map(|&v| v as f64)
                .collect();
            let mut dots = vec![0.0f64; rows * k];
            gemm_abt(&xb, rows, d, centres, k, &mut dots);
            for r in 0..rows {
                let row = &dots[r * k..(r + 1) * k];
                let (mut best, mut best_d) = (0usize, f64::INFINITY);
                for (c, &dot) in row.iter().enumerate() {
                    let dd = (norms[r0 + r] + cnorm[c] - 2.0 * dot).max(0.0);
                    if dd < best_d {
                        best = c;
                        best_d = dd;
                    }
                }
                a_blk[r] = best;
                d_blk[r] = best_d;
            }
        });
    dist.iter().sum()
}

/// Moves, for every empty cluster, the point farthest from its centre (among
/// clusters with more than one member) into it. Returns how many were moved.
fn fix_empty(assign: &mut [usize], dist: &mut [f64], k: usize) -> usize {
    let mut counts = vec![0usize; k];
    for &a in assign.iter() {
        counts[a] += 1;
    }
    let mut moved = 0;
    for c in 0..k {
        if counts[c] > 0 {
            continue;
        }
        let mut far: Option<usize> = None;
        for i in 0..assign.len() {
            if counts[assign[i]] > 1 && far.is_none_or(|f| dist[i] > dist[f]) {
                far = Some(i);
            }
        }
        let i = far.expect("k <= n guarantees a cluster with two or more members");
        counts[assign[i]] -= 1;
        assign[i] = c;
        counts[c] = 1;
        dist[i] = 0.0;
        moved += 1;
    }
    moved
}

/// Cluster means (sequential `f64` sums in index order: deterministic).
fn means(x: &[f32], d: usize, assign: &[usize], k: usize) -> Vec<f64> {
    let mut sums = vec![0.0f64; k * d];
    let mut counts = vec![0usize; k];
    for (i, &a) in assign.iter().enumerate() {
        counts[a] += 1;
        for (s, &v) in sums[a * d..(a + 1) * d]
            .iter_mut()
            .zip(&x[i * d..(i + 1) * d])
        {
            *s += v as f64;
        }
    }
    for (c, &cnt) in counts.iter().enumerate() {
        if cnt > 0 {
            sums[c * d..(c + 1) * d]
                .iter_mut()
                .for_each(|s| *s /= cnt as f64);
        }
    }
    sums
}

fn inertia(x: &[f32], d: usize, centres: &[f64], assign: &[usize]) -> f64 {
    assign
        .iter()
        .enumerate()
        .map(|(i, &a)| sq_dist(&x[i * d..(i + 1) * d], &centres[a * d..(a + 1) * d]))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_params_are_errors() {
        let p = Points::new(&[0.0, 1.0, 2.0], 3, 1).unwrap();
        assert!(KMeansParams::new(GroupAmount::Groups(4)).fit(p).is_err());
        assert!(
            KMeansParams::new(GroupAmount::Groups(2))
                .max_iter(0)
                .fit(p)
                .is_err()
        );
        let e = KMeansParams::new(GroupAmount::Groups(2))
            .tolerance(-1.0)
            .fit(p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tolerance"), "{e}");
    }

    #[test]
    fn duplicates_still_give_non_empty_groups() {
        let x = [1.0f32; 10];
        let fit = KMeansParams::new(GroupAmount::Groups(5))
            .fit(Points::new(&x, 10, 1).unwrap())
            .unwrap();
        assert_eq!(fit.grouping.n_groups(), 5);
        assert!(fit.grouping.sizes().iter().all(|&s| s >= 1));
    }

    #[test]
    fn k_equals_n_gives_singletons() {
        let x: Vec<f32> = (0..12).map(|i| (i as f32 * 1.7).sin()).collect();
        let fit = KMeansParams::new(GroupAmount::Size(1))
            .fit(Points::new(&x, 6, 2).unwrap())
            .unwrap();
        assert_eq!(fit.grouping.sizes(), vec![1; 6]);
        assert!(fit.info.inertia < 1e-12);
    }
}
