//! Orthogonal matching pursuit with non-negative, ridge-regularised weights:
//! GradMatch's solver (Killamsetty et al. 2021, Algorithm 1 / eq. 3;
//! CORDS' `OrthogonalMP_REG(positive=True)`), with the refit after every
//! addition done by Lawson–Hanson NNLS (1974) warm-started from the previous
//! weights, over an incrementally updated Cholesky factor.

use crate::kernels::dot;

/// Lower-triangular Cholesky factor of a growing/shrinking SPD matrix; row `i`
/// holds `L[i][0..=i]`.
#[derive(Clone, Debug, Default)]
struct Cholesky {
    rows: Vec<Vec<f64>>,
}

impl Cholesky {
    fn len(&self) -> usize {
        self.rows.len()
    }

    /// Appends a variable with cross terms `col` (against the current ones) and diagonal `diag`.
    fn push(&mut self, col: &[f64], diag: f64) {
        let m = self.len();
        let mut y = vec![0.0; m + 1];
        for i in 0..m {
            let li = &self.rows[i];
            let s: f64 = (0..i).map(|t| li[t] * y[t]).sum();
            y[i] = (col[i] - s) / li[i];
        }
        let ss: f64 = y[..m].iter().map(|v| v * v).sum();
        y[m] = (diag - ss).max(diag.abs() * 1e-14 + 1e-300).sqrt();
        self.rows.push(y);
    }

    /// Removes variable `pos`: drops its row and column and restores the
    /// trailing block by a rank-one update with the dropped column.
    fn remove(&mut self, pos: usize) {
        self.rows.remove(pos);
        let mut v: Vec<f64> = Vec::with_capacity(self.len() - pos);
        for r in self.rows.iter_mut().skip(pos) {
            v.push(r.remove(pos));
        }
        let m = v.len();
        for k in 0..m {
            let lkk = self.rows[pos + k][pos + k];
            let r = lkk.hypot(v[k]);
            let c = r / lkk;
            let s = v[k] / lkk;
            self.rows[pos + k][pos + k] = r;
            for (i, vi) in v.iter_mut().enumerate().skip(k + 1) {
                let lik = &mut self.rows[pos + i][pos + k];
                *lik = (*lik + s * *vi) / c;
                *vi = c * *vi - s * *lik;
            }
        }
    }

    /// Solves `L Lᵀ x = b`.
    fn solve(&self, b: &[f64]) -> Vec<f64> {
        let m = self.len();
        let mut y = vec![0.0; m];
        for i in 0..m {
            let li = &self.rows[i];
            let s: f64 = li[..i].iter().zip(&y[..i]).map(|(a, b)| a * b).sum();
            y[i] = (b[i] - s) / li[i];
        }
        // Back substitution with Lᵀ by rows of L (contiguous axpys).
        for t in (0..m).rev() {
            let row = &self.rows[t];
            y[t] /= row[t];
            let xt = y[t];
            for (yi, &l) in y[..t].iter_mut().zip(&row[..t]) {
                *yi -= l * xt;
            }
        }
        y
    }
}

/// Result of [`omp_nonneg`].
#[derive(Clone, Debug, PartialEq)]
pub struct OmpSolution {
    /// Atoms with positive weight, in the order OMP chose them.
    pub support: Vec<usize>,
    /// Their weights (all `> 0`).
    pub weights: Vec<f64>,
    /// `‖b − Σ_j w_j a_j‖₂` at the end.
    pub residual_norm: f64,
    /// `‖b‖₂`.
    pub target_norm: f64,
    /// Atoms OMP added (including ones the NNLS refit later set to 0).
    pub iterations: usize,
    /// Atom–residual inner products evaluated.
    pub evaluations: u64,
}

struct Atoms<'a> {
    a: &'a [f32],
    d: usize,
}

impl Atoms<'_> {
    fn row(&self, j: usize) -> &[f32] {
        &self.a[j * self.d..(j + 1) * self.d]
    }

    fn dot_f64(&self, j: usize, v: &[f64]) -> f64 {
        self.row(j).iter().zip(v).map(|(&a, &b)| a as f64 * b).sum()
    }

    fn dot_atoms(&self, i: usize, j: usize) -> f64 {
        self.row(i)
            .iter()
            .zip(self.row(j))
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum()
    }
}

/// Non-negative OMP: greedily picks up to `k` of the `m` atoms (rows of the
/// row-major `m × d` matrix `atoms`) to approximate `target`, minimising
/// `‖A_S w − b‖² + λ‖w‖²` over `w >= 0` after each pick (GradMatch eq. 3 with
/// `λ = 0.5` in the paper). Stops early when `‖r‖ <= tol·‖b‖` or when no
/// unselected atom has a positive inner product with the residual (no atom can
/// then lower the objective with a positive weight).
pub fn omp_nonneg(
    atoms: &[f32],
    d: usize,
    target: &[f64],
    k: usize,
    lambda: f64,
    tol: f64,
) -> OmpSolution {
    assert!(
        d > 0 && atoms.len().is_multiple_of(d) && target.len() == d,
        "omp_nonneg: shapes checked by callers"
    );
    let m = atoms.len() / d;
    let at = Atoms { a: atoms, d };
    let bnorm = target.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut in_s = vec![false; m];
    let mut s: Vec<usize> = Vec::new(); // atoms in OMP order
    let mut x: Vec<f64> = Vec::new(); // weight per position of s
    let mut c: Vec<f64> = Vec::new(); // a_jᵀ b per position of s
    let mut passive: Vec<usize> = Vec::new(); // positions of s with x > 0, in factor order
    let mut chol = Cholesky::default();
    let mut r = target.to_vec();
    let mut evaluations = 0u64;
    let anorm_max = (0..m)
        .map(|j| at.dot_atoms(j, j).sqrt())
        .fold(0.0f64, f64::max);
    let kkt_tol = 1e-12 * (bnorm * anorm_max).max(f64::MIN_POSITIVE);

    let residual = |x: &[f64], passive: &[usize], s: &[usize]| -> Vec<f64> {
        let mut r = target.to_vec();
        for &p in passive {
            for (ri, &a) in r.iter_mut().zip(at.row(s[p])) {
                *ri -= x[p] * a as f64;
            }
        }
        r
    };

    while s.len() < k.min(m) {
        let rn = r.iter().map(|v| v * v).sum::<f64>().sqrt();
        if rn <= tol * bnorm || bnorm == 0.0 {
            break;
        }
        // Screen with f32 projections (vectorised), confirm the winner in f64.
        let r32: Vec<f32> = r.iter().map(|&v| v as f32).collect();
        let mut best: Option<(f32, usize)> = None;
        for (j, _) in in_s.iter().enumerate().filter(|&(_, &s)| !s) {
            let p = dot(at.row(j), &r32);
            evaluations += 1;
            if best.is_none_or(|(bp, _)| p > bp) {
                best = Some((p, j));
            }
        }
        let Some((_, j)) = best else { break };
        if at.dot_f64(j, &r) <= kkt_tol {
            break;
        }
        in_s[j] = true;
        s.push(j);
        x.push(0.0);
        c.push(at.dot_f64(j, target));

        // Lawson–Hanson over s, warm-started: x is optimal on `passive`.
        let mut banned = vec![false; s.len()];
        for _outer in 0..3 * s.len() + 10 {
            r = residual(&x, &passive, &s);
            let mut enter: Option<(f64, usize)> = None;
            for pos in 0..s.len() {
                if x[pos] > 0.0 || banned[pos] {
                    continue;
                }
                let w = at.dot_f64(s[pos], &r);
                evaluations += 1;
                if w > kkt_tol && enter.is_none_or(|(bw, _)| w > bw) {
                    enter = Some((w, pos));
                }
            }
            let Some((_, e)) = enter else { break };
            let col: Vec<f64> = passive.iter().map(|&p| at.dot_atoms(s[p], s[e])).collect();
            chol.push(&col, at.dot_atoms(s[e], s[e]) + lambda);
            passive.push(e);
            loop {
                let rhs: Vec<f64> = passive.iter().map(|&p| c[p]).collect();
                let z = chol.solve(&rhs);
                if z.iter().all(|&v| v > 0.0) {
                    for (&p, &v) in passive.iter().zip(&z) {
                        x[p] = v;
                    }
                    break;
                }
                let mut alpha = f64::INFINITY;
                for (&p, &v) in passive.iter().zip(&z) {
                    if v <= 0.0 {
                        alpha = alpha.min(x[p] / (x[p] - v));
                    }
                }
                for (&p, &v) in passive.iter().zip(&z) {
                    x[p] += alpha * (v - x[p]);
                }
                // Drop variables that reached zero (largest positions first keeps indices valid).
                let mut drop: Vec<usize> = (0..passive.len())
                    .filter(|&q| x[passive[q]] <= 1e-15 * (1.0 + x[passive[q]].abs()))
                    .collect();
                if drop.is_empty() {
                    // Rounding left every variable positive: drop the one that hit the bound.
                    let q = (0..passive.len())
                        .filter(|&q| z[q] <= 0.0)
                        .min_by(|&a, &b| x[passive[a]].total_cmp(&x[passive[b]]))
                        .expect("some z <= 0");
                    drop.push(q);
                }
                for &q in drop.iter().rev() {
                    let p = passive.remove(q);
                    x[p] = 0.0;
                    chol.remove(q);
                    if p == e && alpha == 0.0 {
                        // The entering variable cannot move: exclude it from this refit.
                        banned[p] = true;
                    }
                }
                if passive.is_empty() {
                    break;
                }
            }
        }
        r = residual(&x, &passive, &s);
    }
    let residual_norm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
    let (support, weights): (Vec<usize>, Vec<f64>) = s
        .iter()
        .zip(&x)
        .filter(|&(_, &w)| w > 0.0)
        .map(|(&j, &w)| (j, w))
        .unzip();
    OmpSolution {
        support,
        weights,
        residual_norm,
        target_norm: bnorm,
        iterations: s.len(),
        evaluations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{DMatrix, DVector};

    #[test]
    fn cholesky_push_remove_solve() {
        // Random SPD 5x5 = BᵀB + I.
        let b = DMatrix::<f64>::from_fn(7, 5, |i, j| ((i * 5 + j) as f64 * 0.7).sin());
        let q = b.transpose() * &b + DMatrix::identity(5, 5);
        let mut ch = Cholesky::default();
        for j in 0..5 {
            let col: Vec<f64> = (0..j).map(|i| q[(i, j)]).collect();
            ch.push(&col, q[(j, j)]);
        }
        ch.remove(1);
        let keep = [0usize, 2, 3, 4];
        let rhs = [1.0, -2.0, 0.5, 3.0];
        let got = ch.solve(&rhs);
        let sub = DMatrix::from_fn(4, 4, |a, c| q[(keep[a], keep[c])]);
        let want = sub
            .cholesky()
            .unwrap()
            .solve(&DVector::from_row_slice(&rhs));
        for (g, w) in got.iter().zip(want.iter()) {
            assert!((g - w).abs() < 1e-10, "{g} vs {w}");
        }
    }

    #[test]
    fn exact_nonnegative_combination_is_recovered() {
        // b = 2 a0 + 3 a2 with orthogonal atoms; the ridge shrinks the weights slightly.
        let atoms = [
            1.0f32, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, -1.0, -1.0, 0.0,
        ];
        let b = [2.0, 3.0, 0.0];
        let sol = omp_nonneg(&atoms, 3, &b, 3, 0.0, 1e-9);
        let mut sup = sol.support.clone();
        sup.sort();
        assert_eq!(sup, vec![0, 2]);
        assert!(sol.residual_norm < 1e-9);
        let ridge = omp_nonneg(&atoms, 3, &b, 3, 0.5, 1e-9);
        assert!(ridge.weights.iter().all(|&w| w > 0.0 && w < 3.0));
    }
}
