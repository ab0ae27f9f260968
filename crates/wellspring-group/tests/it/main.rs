//! Integration tests of the groupers: partitions, monotone inertia,
//! determinism, exact recovery of well-separated blobs.

use proptest::prelude::*;
use rand::RngExt;
use wellspring_core::rng;
use wellspring_group::{GroupAmount, Grouper, KMeansParams, Points, RandomGrouping, Whitening};

/// `k` Gaussian-ish blobs of `m` points in `d` dimensions, centres far apart.
fn blobs(k: usize, m: usize, d: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let mut r = rng(seed);
    let mut x = Vec::new();
    let mut truth = Vec::new();
    for c in 0..k {
        let centre: Vec<f32> = (0..d).map(|_| r.random_range(-100.0f32..100.0)).collect();
        for _ in 0..m {
            for &cv in &centre {
                x.push(cv + r.random_range(-0.5f32..0.5));
            }
            truth.push(c);
        }
    }
    (x, truth)
}

fn is_partition(g: &wellspring_core::Grouping, n: usize) -> bool {
    let mut seen = vec![0usize; n];
    for members in g.groups() {
        if members.is_empty() {
            return false;
        }
        for &i in members {
            seen[i] += 1;
        }
    }
    seen.iter().all(|&c| c == 1) && g.n_points() == n
}

#[test]
fn recovers_separated_blobs_exactly() {
    let (x, truth) = blobs(5, 40, 3, 11);
    let n = truth.len();
    for seed in 0..4 {
        let fit = KMeansParams::new(GroupAmount::Groups(5))
            .seed(seed)
            .fit(Points::new(&x, n, 3).unwrap())
            .unwrap();
        assert!(fit.info.converged, "{:?}", fit.info);
        let g = &fit.grouping;
        for i in 0..n {
            for j in 0..n {
                assert_eq!(truth[i] == truth[j], g.group_of(i) == g.group_of(j));
            }
        }
    }
}

#[test]
fn deterministic_for_a_seed_and_seed_matters() {
    let (x, _) = blobs(3, 30, 4, 2);
    let x: Vec<f32> = x
        .iter()
        .enumerate()
        .map(|(i, v)| v + (i as f32 * 0.37).sin() * 60.0)
        .collect();
    let p = Points::new(&x, 90, 4).unwrap();
    let a = KMeansParams::new(GroupAmount::Size(6))
        .seed(3)
        .fit(p)
        .unwrap();
    let b = KMeansParams::new(GroupAmount::Size(6))
        .seed(3)
        .fit(p)
        .unwrap();
    assert_eq!(a.grouping, b.grouping);
    assert_eq!(a.info, b.info);
    assert_eq!(a.centres, b.centres);
    let r1 = RandomGrouping::new(GroupAmount::Groups(7))
        .seed(1)
        .group(p)
        .unwrap();
    let r2 = RandomGrouping::new(GroupAmount::Groups(7))
        .seed(1)
        .group(p)
        .unwrap();
    let r3 = RandomGrouping::new(GroupAmount::Groups(7))
        .seed(2)
        .group(p)
        .unwrap();
    assert_eq!(r1, r2);
    assert_ne!(r1, r3);
}

#[test]
fn iteration_cap_and_tolerance_are_honoured() {
    let x: Vec<f32> = (0..400)
        .map(|i| ((i * 7919) % 1000) as f32 / 10.0)
        .collect();
    let p = Points::new(&x, 200, 2).unwrap();
    let fit = KMeansParams::new(GroupAmount::Groups(17))
        .max_iter(2)
        .fit(p)
        .unwrap();
    assert!(fit.info.iterations <= 2);
    let fit = KMeansParams::new(GroupAmount::Groups(17)).fit(p).unwrap();
    assert!(fit.info.iterations <= 60);
    if fit.info.converged {
        assert!(fit.info.last_shift <= fit.info.shift_threshold);
    }
    // whitening off still partitions
    let fit = KMeansParams::new(GroupAmount::Groups(17))
        .whitening(Whitening::None)
        .fit(p)
        .unwrap();
    assert!(is_partition(&fit.grouping, 200));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn kmeans_is_a_partition_with_monotone_inertia(
        n in 1usize..60, d in 1usize..5, kfrac in 0.0f64..1.0, seed in 0u64..1000,
        vals in proptest::collection::vec(-5i32..5, 300),
    ) {
        let k = 1 + ((n - 1) as f64 * kfrac) as usize;
        let x: Vec<f32> = (0..n * d).map(|i| vals[i % vals.len()] as f32 + (i % 7) as f32 * 0.01).collect();
        let fit = KMeansParams::new(GroupAmount::Groups(k)).seed(seed)
            .fit(Points::new(&x, n, d).unwrap()).unwrap();
        prop_assert!(is_partition(&fit.grouping, n));
        prop_assert_eq!(fit.grouping.n_groups(), k);
        let h = &fit.info.inertia_history;
        for w in h.windows(2) {
            prop_assert!(w[1] <= w[0] * (1.0 + 1e-9) + 1e-9, "inertia rose: {:?}", h);
        }
        prop_assert!(fit.info.inertia <= h[0] * (1.0 + 1e-9) + 1e-9);
    }

    #[test]
    fn random_grouping_is_a_balanced_partition(n in 1usize..200, k in 1usize..50, seed in 0u64..100) {
        let k = k.min(n);
        let g = RandomGrouping::new(GroupAmount::Groups(k)).seed(seed).group_n(n).unwrap();
        prop_assert!(is_partition(&g, n));
        let sizes = g.sizes();
        let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        prop_assert!(hi - lo <= 1);
    }
}
