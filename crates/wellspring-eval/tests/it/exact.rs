//! Invariants on a retrainer whose margin is exactly the linear model of the scores.

use proptest::prelude::*;
use wellspring_core::{ScoreMatrix, argsort_desc};
use wellspring_eval::{Brittleness, CandidatePool, EvalContext, Lds, Metric};

use crate::common::ExactLinear;

fn exact(n: usize, m: usize, tau: Vec<i32>, bias: Vec<i32>, labels: Vec<usize>) -> ExactLinear {
    ExactLinear {
        tau: ScoreMatrix::from_vec(n, m, tau.iter().map(|&v| v as f32).collect()).unwrap(),
        bias: bias.iter().map(|&b| b as f64).collect(),
        train_labels: labels,
        test_labels: (0..m).map(|t| t % 2).collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// LDS = 1 when the retrained margins are exactly Σ_{i∈S} τ_i (+ a constant).
    #[test]
    fn lds_is_one_for_exact_linear_scores(
        n in 4usize..30,
        m in 1usize..4,
        sub in 2usize..20,
        seed in any::<u64>(),
        raw in proptest::collection::vec(-100i32..100, 30 * 4),
        bias in proptest::collection::vec(-50i32..50, 4),
    ) {
        let r = exact(n, m, raw[..n * m].to_vec(), bias[..m].to_vec(), vec![0; n]);
        let ctx = EvalContext::new().with_retrainer(&r);
        let res = Lds::params().m(sub).alpha(0.5).seed(seed).evaluate(&r.tau, &ctx).unwrap();
        for v in res.per_test.iter().flatten() {
            prop_assert!((v - 1.0).abs() < 1e-9, "per-test LDS {}", v);
        }
        if res.summary.n > 0 {
            prop_assert!((res.summary.mean - 1.0).abs() < 1e-9);
        }
        // negated scores: exactly −1
        let neg = ScoreMatrix::from_vec(n, m, r.tau.as_slice().iter().map(|v| -v).collect()).unwrap();
        let res = Lds::params().m(sub).alpha(0.5).seed(seed).evaluate(&neg, &ctx).unwrap();
        for v in res.per_test.iter().flatten() {
            prop_assert!((v + 1.0).abs() < 1e-9);
        }
    }

    /// On the exact model (non-negative scores: a monotone oracle), bisection
    /// with enough budget finds the brute-force removal support, a linear scan
    /// over every size agrees, and budget 7 gives an upper bound in ≤ 7 probes.
    #[test]
    fn brittleness_matches_brute_force(
        n in 4usize..40,
        raw in proptest::collection::vec(0i32..20, 40 * 3),
        bias in proptest::collection::vec(-30i32..5, 3),
        labels in proptest::collection::vec(0usize..2, 40),
    ) {
        let m = 3;
        let r = exact(n, m, raw[..n * m].to_vec(), bias.clone(), labels[..n].to_vec());
        let full_margin: Vec<f64> = (0..m)
            .map(|t| bias[t] as f64 + (0..n).map(|i| r.tau.get(i, t) as f64).sum::<f64>())
            .collect();
        // brute force over the same-class ranking; a point the full model
        // already misclassifies is excluded (no support, no credit)
        let excluded: Vec<bool> = full_margin.iter().map(|&v| v <= 0.0).collect();
        let brute: Vec<Option<usize>> = (0..m)
            .map(|t| {
                if excluded[t] {
                    return None;
                }
                let ranked: Vec<usize> = argsort_desc(&r.tau.column(t))
                    .into_iter()
                    .filter(|&i| r.train_labels[i] == r.test_labels[t])
                    .collect();
                let cap = ranked.len().min(n - 1);
                let mut acc = full_margin[t];
                for (k, &i) in ranked[..cap].iter().enumerate() {
                    acc -= r.tau.get(i, t) as f64;
                    if acc <= 0.0 {
                        return Some(k + 1);
                    }
                }
                None
            })
            .collect();
        let ctx = EvalContext::new().with_retrainer(&r);
        let same = || Brittleness::removal().pool(CandidatePool::SameClass).n_models(1).max_k(64);
        let exact_bis = same().bisection(8).evaluate(&r.tau, &ctx).unwrap();
        let scan = same().linear_scan((1..=64).collect()).evaluate(&r.tau, &ctx).unwrap();
        let cheap = same().bisection(3).evaluate(&r.tau, &ctx).unwrap();
        let n_excluded = excluded.iter().filter(|&&e| e).count();
        prop_assert_eq!(exact_bis.excluded, n_excluded);
        prop_assert_eq!(exact_bis.cdf.n_points, m - n_excluded);
        for t in 0..m {
            prop_assert_eq!(exact_bis.per_test[t].excluded, excluded[t]);
            prop_assert!(!excluded[t] || exact_bis.per_test[t].trace.is_empty());
            prop_assert_eq!(exact_bis.per_test[t].support, brute[t], "test {}", t);
            prop_assert_eq!(scan.per_test[t].support, brute[t]);
            prop_assert!(cheap.per_test[t].trace.len() <= 3);
            match (cheap.per_test[t].support, brute[t]) {
                (Some(c), Some(b)) => prop_assert!(c >= b),
                (Some(_), None) => prop_assert!(false, "bisection found a support brute force did not"),
                _ => {}
            }
        }
        prop_assert!((0.0..=1.0).contains(&exact_bis.cdf.auc));
    }
}

#[test]
fn mislabel_support_on_exact_model() {
    // one test point (label 0); training scores 5, 4, 3, 2, 1; margin starts at 15 − 10 = 5
    let r = exact(5, 1, vec![5, 4, 3, 2, 1], vec![-10], vec![0, 1, 0, 1, 0]);
    let ctx = EvalContext::new().with_retrainer(&r);
    // relabelling a point reverses its contribution: 5 − 2·5 = −5 ≤ 0 after k = 1
    let res = Brittleness::mislabel()
        .n_models(1)
        .max_k(5)
        .bisection(5)
        .evaluate(&r.tau, &ctx)
        .unwrap();
    assert_eq!(res.per_test[0].support, Some(1));
    assert_eq!(res.per_test[0].target_class, Some(1));
    // the mislabel target is class 1: points already labelled 1 are skipped
    assert_eq!(res.per_test[0].pool_size, 3);
    // removal, same class only (points 0, 2, 4): 5 − 5 = 0 ≤ 0 after k = 1
    let res = Brittleness::removal()
        .pool(CandidatePool::SameClass)
        .n_models(1)
        .max_k(5)
        .bisection(5)
        .evaluate(&r.tau, &ctx)
        .unwrap();
    assert_eq!(res.per_test[0].support, Some(1));
    assert_eq!(res.per_test[0].pool_size, 3);
    assert_eq!(res.models_trained, 1 + res.per_test[0].trace.len());
    // removal from every point (the choice for gradient methods): all 5 ranked
    let all = Brittleness::removal()
        .n_models(1)
        .max_k(5)
        .bisection(5)
        .evaluate(&r.tau, &ctx)
        .unwrap();
    assert_eq!(all.per_test[0].pool_size, 5);
    assert_eq!(all.per_test[0].support, Some(1));
}

#[test]
fn misclassified_test_points_are_excluded_not_credited() {
    // test 0 (label 0): margin −3 + 3 + 0 + 1 = 1 > 0, flips once point 0 is removed;
    // test 1 (label 1): margin −5 + 3 = −2 < 0, already misclassified
    let r = exact(3, 2, vec![3, 3, 0, 0, 1, 0], vec![-3, -5], vec![0, 1, 1]);
    let ctx = EvalContext::new().with_retrainer(&r);
    let res = Brittleness::removal()
        .n_models(1)
        .max_k(2)
        .bisection(4)
        .evaluate(&r.tau, &ctx)
        .unwrap();
    assert_eq!(res.excluded, 1);
    assert!(res.per_test[1].excluded && res.per_test[1].support.is_none());
    assert!(res.per_test[1].trace.is_empty());
    assert!(!res.per_test[0].excluded);
    // the area is over test 0 alone: support 1 of N_max 2 → 0.5, not (0.5 + 1) / 2
    assert_eq!(res.cdf.n_points, 1);
    assert!((res.cdf.auc - 0.5).abs() < 1e-12, "{:?}", res.cdf);
}
