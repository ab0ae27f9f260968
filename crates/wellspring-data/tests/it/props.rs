//! proptest invariants of the seeded samplers and label noise.

use proptest::prelude::*;
use wellspring_data::noise::flip_label_vec;
use wellspring_data::sample::{
    class_balanced_indices, holdout_indices, random_indices, stratified_counts,
    stratified_holdout_indices, stratified_indices,
};

fn labels_strategy() -> impl Strategy<Value = (Vec<usize>, usize)> {
    (2usize..6).prop_flat_map(|c| (prop::collection::vec(0..c, 1..200), Just(c)))
}

fn counts(labels: &[usize], c: usize) -> Vec<usize> {
    let mut k = vec![0; c];
    for &l in labels {
        k[l] += 1;
    }
    k
}

fn is_sorted_unique(v: &[usize]) -> bool {
    v.windows(2).all(|w| w[0] < w[1])
}

proptest! {
    #[test]
    fn stratified_keeps_proportions_within_one(
        (labels, c) in labels_strategy(), frac in 0.0f64..1.0, seed in any::<u64>()
    ) {
        let n = ((frac * labels.len() as f64).ceil() as usize).clamp(1, labels.len());
        let idx = stratified_indices(&labels, c, n, seed).unwrap();
        prop_assert_eq!(idx.len(), n);
        prop_assert!(is_sorted_unique(&idx));
        let all = counts(&labels, c);
        let picked: Vec<usize> = idx.iter().map(|&i| labels[i]).collect();
        let got = counts(&picked, c);
        for k in 0..c {
            let exact = n as f64 * all[k] as f64 / labels.len() as f64;
            prop_assert!((got[k] as f64 - exact).abs() < 1.0, "class {} got {} exact {}", k, got[k], exact);
            prop_assert!(got[k] <= all[k]);
        }
        prop_assert_eq!(stratified_counts(&all, n).unwrap(), got);
        prop_assert_eq!(stratified_indices(&labels, c, n, seed).unwrap(), idx);
    }

    #[test]
    fn label_noise_flips_exactly_and_never_to_the_same_label(
        (labels, c) in labels_strategy(), share in 0.01f64..0.99, seed in any::<u64>()
    ) {
        let k = (share * labels.len() as f64).round() as usize;
        match flip_label_vec(&labels, c, share, seed) {
            Err(_) => prop_assert_eq!(k, 0),
            Ok((new, flipped)) => {
                prop_assert_eq!(flipped.len(), k);
                prop_assert!(is_sorted_unique(&flipped));
                let changed: Vec<usize> =
                    (0..labels.len()).filter(|&i| new[i] != labels[i]).collect();
                prop_assert_eq!(&changed, &flipped);
                prop_assert!(new.iter().all(|&l| l < c));
                prop_assert_eq!(flip_label_vec(&labels, c, share, seed).unwrap().0, new);
            }
        }
    }

    #[test]
    fn seeded_splits_are_deterministic_disjoint_and_cover(
        len in 2usize..300, frac in 0.01f64..0.99, seed in any::<u64>()
    ) {
        let (kept, held) = holdout_indices(len, frac, seed).unwrap();
        prop_assert_eq!(holdout_indices(len, frac, seed).unwrap(), (kept.clone(), held.clone()));
        prop_assert!(!kept.is_empty() && !held.is_empty());
        prop_assert!(is_sorted_unique(&kept) && is_sorted_unique(&held));
        let mut all: Vec<usize> = kept.iter().chain(&held).copied().collect();
        all.sort_unstable();
        prop_assert_eq!(all, (0..len).collect::<Vec<_>>());
    }

    #[test]
    fn stratified_splits_are_disjoint_and_cover(
        (labels, c) in labels_strategy(), frac in 0.01f64..0.99, seed in any::<u64>()
    ) {
        prop_assume!(labels.len() >= 2);
        let (kept, held) = stratified_holdout_indices(&labels, c, frac, seed).unwrap();
        let mut all: Vec<usize> = kept.iter().chain(&held).copied().collect();
        all.sort_unstable();
        prop_assert_eq!(all, (0..labels.len()).collect::<Vec<_>>());
        prop_assert_eq!(stratified_holdout_indices(&labels, c, frac, seed).unwrap().1, held);
    }

    #[test]
    fn uniform_and_class_balanced_samples(
        (labels, c) in labels_strategy(), k in 1usize..5, seed in any::<u64>()
    ) {
        let n = labels.len().div_ceil(2);
        let idx = random_indices(labels.len(), n, seed).unwrap();
        prop_assert_eq!(idx.len(), n);
        prop_assert!(is_sorted_unique(&idx) && idx.iter().all(|&i| i < labels.len()));
        let all = counts(&labels, c);
        match class_balanced_indices(&labels, c, k, seed) {
            Err(_) => prop_assert!(all.iter().any(|&m| m < k)),
            Ok(idx) => {
                let picked: Vec<usize> = idx.iter().map(|&i| labels[i]).collect();
                prop_assert_eq!(counts(&picked, c), vec![k; c]);
            }
        }
    }
}
