//! Facility location: lazy and plain greedy agree exactly and reach
//! `(1 − 1/e)` of the brute-force optimum (Nemhauser, Wolsey & Fisher 1978).

use proptest::prelude::*;
use wellspring_select::facility::{facility_value, maximize};
use wellspring_select::{DenseSimilarity, Greedy, Metric, PointSimilarity};

use crate::common::digits;

/// Best `F(S)` over all `k`-subsets of `0..n`.
fn brute_force(sim: &DenseSimilarity, n: usize, k: usize) -> f64 {
    let mut best = 0.0f64;
    let mut set: Vec<usize> = (0..k).collect();
    loop {
        best = best.max(facility_value(sim, &set));
        // Next combination in lexicographic order.
        let mut i = k;
        while i > 0 && set[i - 1] == n - k + i - 1 {
            i -= 1;
        }
        if i == 0 {
            return best;
        }
        set[i - 1] += 1;
        for j in i..k {
            set[j] = set[j - 1] + 1;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn greedy_reaches_one_minus_one_over_e((pts, k, sq) in (3usize..10, 1usize..3, any::<bool>())
        .prop_flat_map(|(n, d, sq)| (prop::collection::vec(-2.0f32..2.0, n * d).prop_map(move |v| (v, d)), 1..=n.min(5), Just(sq)))
    ) {
        let (pts, d) = pts;
        let n = pts.len() / d;
        let metric = if sq { Metric::SquaredEuclidean } else { Metric::Euclidean };
        let sim = DenseSimilarity::from_points(&pts, d, metric).unwrap();
        let lazy = maximize(&sim, k, Greedy::Lazy);
        let plain = maximize(&sim, k, Greedy::Plain);
        prop_assert_eq!(&lazy.selected, &plain.selected);
        prop_assert_eq!(&lazy.weights, &plain.weights);
        prop_assert_eq!(&lazy.trace, &plain.trace);
        let opt = brute_force(&sim, n, k);
        let got = facility_value(&sim, &lazy.selected);
        prop_assert!(got >= (1.0 - (-1.0f64).exp()) * opt - 1e-4, "greedy {got} vs optimum {opt}");
        prop_assert!(got <= opt + 1e-4);
        // The trace is F after each step: increasing, ending at F(S).
        prop_assert!(lazy.trace.windows(2).all(|w| w[1] >= w[0]));
        prop_assert!((lazy.objective() - got).abs() < 1e-3);
        prop_assert_eq!(lazy.weights.iter().sum::<f32>() as usize, n);
    }

    #[test]
    fn general_similarity_matrices_too((n, vals, k) in (2usize..8).prop_flat_map(|n| (Just(n), prop::collection::vec(0.0f32..1.0, n * n), 1..=n.min(4)))) {
        let sim = DenseSimilarity::from_matrix(n, &vals).unwrap();
        let lazy = maximize(&sim, k, Greedy::Lazy);
        let plain = maximize(&sim, k, Greedy::Plain);
        prop_assert_eq!(&lazy.selected, &plain.selected);
        let opt = brute_force(&sim, n, k);
        prop_assert!(facility_value(&sim, &lazy.selected) >= (1.0 - (-1.0f64).exp()) * opt - 1e-5);
    }
}

#[test]
fn lazy_greedy_saves_evaluations_on_real_digits() {
    let dg = digits();
    let n = 600;
    let pts = &dg.x[..n * dg.d];
    let sim = DenseSimilarity::from_points(pts, dg.d, Metric::Euclidean).unwrap();
    let lazy = maximize(&sim, 30, Greedy::Lazy);
    let plain = maximize(&sim, 30, Greedy::Plain);
    assert_eq!(lazy.selected, plain.selected);
    assert_eq!(lazy.weights, plain.weights);
    assert!(
        lazy.evaluations * 5 < plain.evaluations,
        "{} vs {}",
        lazy.evaluations,
        plain.evaluations
    );
    // The on-demand similarity reaches the same objective up to rounding.
    let on_demand = PointSimilarity::new(pts, dg.d, Metric::Euclidean, 64).unwrap();
    let od = maximize(&on_demand, 30, Greedy::Lazy);
    let f_dense = facility_value(&sim, &lazy.selected);
    let f_od = facility_value(&sim, &od.selected);
    assert!(
        (f_dense - f_od).abs() < 1e-4 * f_dense,
        "{f_dense} vs {f_od}"
    );
}
