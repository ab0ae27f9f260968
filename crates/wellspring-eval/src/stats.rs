//! Correlation and summary statistics on plain slices.
//!
//! Correlations return `None` where they are undefined (fewer than two points,
//! or a constant input), so callers decide how to report them instead of
//! propagating NaN. All work in `f64`.

use serde::{Deserialize, Serialize};

/// Arithmetic mean; NaN for an empty slice.
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation (denominator `n − 1`); 0 for fewer than two values.
pub fn std_dev(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    (ss / (xs.len() - 1) as f64).sqrt()
}

/// Standard error of the mean, `std_dev / √n`; 0 for fewer than two values.
pub fn std_err(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    std_dev(xs) / (xs.len() as f64).sqrt()
}

/// Mean, sample standard deviation, standard error and count of a sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Arithmetic mean (NaN if `n = 0`).
    pub mean: f64,
    /// Sample standard deviation (`n − 1` denominator; 0 if `n < 2`).
    pub std_dev: f64,
    /// Standard error of the mean (0 if `n < 2`).
    pub std_err: f64,
    /// Number of values.
    pub n: usize,
}

impl Summary {
    /// Summarises `xs`.
    pub fn of(xs: &[f64]) -> Self {
        Self {
            mean: mean(xs),
            std_dev: std_dev(xs),
            std_err: std_err(xs),
            n: xs.len(),
        }
    }

    /// Summarises the defined entries of `xs` (skipping `None`).
    pub fn of_defined(xs: &[Option<f64>]) -> Self {
        let v: Vec<f64> = xs.iter().flatten().copied().collect();
        Self::of(&v)
    }
}

/// 1-based ranks with ties given their average rank (the "fractional ranking"
/// Spearman's ρ needs). NaN values rank last, tied with each other.
pub fn average_ranks(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| cmp_nan_last(xs[a], xs[b]).then(a.cmp(&b)));
    let mut ranks = vec![0.0; xs.len()];
    let mut start = 0;
    while start < idx.len() {
        let mut end = start + 1;
        while end < idx.len() && same(xs[idx[end]], xs[idx[start]]) {
            end += 1;
        }
        // positions start..end (0-based) share ranks start+1..=end; average them
        let avg = (start + 1 + end) as f64 / 2.0;
        for &i in &idx[start..end] {
            ranks[i] = avg;
        }
        start = end;
    }
    ranks
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

fn cmp_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).expect("both finite or infinite"),
    }
}

/// Pearson correlation coefficient, clamped to `[-1, 1]`. `None` if the
/// lengths differ, fewer than two points are given, a value is not finite, or
/// either input is constant.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    if x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let (mx, my) = (mean(x), mean(y));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    Some((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// Spearman rank correlation: Pearson on average ranks (ties get their mean
/// rank), as used by LDS (Ilyas et al. 2022; Park et al. 2023, eq. 8). `None`
/// where [`pearson`] is undefined on the ranks.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    pearson(&average_ranks(x), &average_ranks(y))
}

/// Kendall's τ-b (tie-corrected), `O(n²)`: fine for the few hundred points a
/// per-test correlation sees. `None` if undefined (fewer than two points, a
/// constant input, or a non-finite value).
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len();
    if n != y.len() || n < 2 || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let (mut concordant, mut discordant, mut ties_x, mut ties_y) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            let dx = x[i] - x[j];
            let dy = y[i] - y[j];
            match (dx == 0.0, dy == 0.0) {
                (true, true) => {}
                (true, false) => ties_x += 1,
                (false, true) => ties_y += 1,
                (false, false) => {
                    if (dx > 0.0) == (dy > 0.0) {
                        concordant += 1
                    } else {
                        discordant += 1
                    }
                }
            }
        }
    }
    let n1 = (concordant + discordant + ties_x) as f64;
    let n2 = (concordant + discordant + ties_y) as f64;
    if n1 <= 0.0 || n2 <= 0.0 {
        return None;
    }
    Some(((concordant - discordant) as f64 / (n1 * n2).sqrt()).clamp(-1.0, 1.0))
}

/// Cosine similarity `xᵀy / (‖x‖ ‖y‖)`, clamped to `[-1, 1]` (FiMO, Bae et al.
/// appendix D.5). `None` if the lengths differ, a vector is zero, or a value is
/// not finite.
pub fn cosine(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.is_empty() || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        xy += a * b;
        xx += a * a;
        yy += b * b;
    }
    if xx <= 0.0 || yy <= 0.0 {
        return None;
    }
    Some((xy / (xx.sqrt() * yy.sqrt())).clamp(-1.0, 1.0))
}

/// Area under the piecewise-linear curve through `(xs[k], ys[k])` by the
/// trapezoid rule; `xs` must be non-decreasing (not checked). 0 for fewer than
/// two points.
pub fn trapezoid(xs: &[f64], ys: &[f64]) -> f64 {
    xs.windows(2)
        .zip(ys.windows(2))
        .map(|(x, y)| (x[1] - x[0]) * (y[0] + y[1]) / 2.0)
        .sum()
}

/// `f32` slice to `f64` vector.
pub(crate) fn to_f64(xs: &[f32]) -> Vec<f64> {
    xs.iter().map(|&v| v as f64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        assert_eq!(
            average_ranks(&[10.0, 20.0, 20.0, 5.0]),
            vec![2.0, 3.5, 3.5, 1.0]
        );
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [2.0, 4.0, 6.0, 8.0, 10.0];
        assert!((pearson(&x, &y).unwrap() - 1.0).abs() < 1e-12);
        let yneg: Vec<f64> = y.iter().map(|v| -v).collect();
        assert!((pearson(&x, &yneg).unwrap() + 1.0).abs() < 1e-12);
        // scipy.stats.spearmanr([1,2,3,4,5],[5,6,7,8,7]) = 0.8207826816681233
        let s = spearman(&x, &[5.0, 6.0, 7.0, 8.0, 7.0]).unwrap();
        assert!((s - 0.820_782_681_668_123_3).abs() < 1e-12, "{s}");
        // scipy.stats.kendalltau([1,2,3,4,5],[5,6,7,8,7]) = 0.7378647873726218
        let k = kendall_tau_b(&x, &[5.0, 6.0, 7.0, 8.0, 7.0]).unwrap();
        assert!((k - 0.737_864_787_372_621_8).abs() < 1e-12, "{k}");
        assert_eq!(pearson(&x, &[1.0; 5]), None);
        assert_eq!(spearman(&[1.0], &[2.0]), None);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 2.0]), None);
        assert!((cosine(&[1.0, 0.0], &[0.0, 3.0]).unwrap()).abs() < 1e-15);
        assert!((trapezoid(&[0.0, 0.5, 1.0], &[0.0, 1.0, 1.0]) - 0.75).abs() < 1e-15);
        let s = Summary::of(&[1.0, 2.0, 3.0, 4.0]);
        assert!((s.mean - 2.5).abs() < 1e-15);
        assert!((s.std_dev - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((s.std_err - (5.0f64 / 3.0).sqrt() / 2.0).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn correlations_in_range(v in proptest::collection::vec((-50i32..50, -50i32..50), 2..40)) {
            let x: Vec<f64> = v.iter().map(|p| p.0 as f64).collect();
            let y: Vec<f64> = v.iter().map(|p| p.1 as f64).collect();
            for r in [pearson(&x, &y), spearman(&x, &y), kendall_tau_b(&x, &y), cosine(&x, &y)]
                .into_iter()
                .flatten()
            {
                prop_assert!((-1.0..=1.0).contains(&r));
            }
        }

        #[test]
        fn monotone_data_correlate_perfectly(v in proptest::collection::vec(-1000i32..1000, 2..40)) {
            let mut x: Vec<f64> = v.iter().map(|&a| a as f64).collect();
            x.sort_by(|a, b| a.partial_cmp(b).unwrap());
            x.dedup();
            prop_assume!(x.len() >= 2);
            // strictly increasing transform: Spearman and Kendall are exactly 1
            let y: Vec<f64> = x.iter().map(|a| (a / 100.0).exp() + a).collect();
            prop_assert!((spearman(&x, &y).unwrap() - 1.0).abs() < 1e-12);
            prop_assert!((kendall_tau_b(&x, &y).unwrap() - 1.0).abs() < 1e-12);
            // affine: Pearson is exactly 1
            let z: Vec<f64> = x.iter().map(|a| 3.0 * a - 7.0).collect();
            prop_assert!((pearson(&x, &z).unwrap() - 1.0).abs() < 1e-9);
        }

        #[test]
        fn ranks_sum_to_triangle(v in proptest::collection::vec(-5i32..5, 1..40)) {
            let x: Vec<f64> = v.iter().map(|&a| a as f64).collect();
            let n = x.len() as f64;
            let s: f64 = average_ranks(&x).iter().sum();
            prop_assert!((s - n * (n + 1.0) / 2.0).abs() < 1e-9);
        }
    }
}
