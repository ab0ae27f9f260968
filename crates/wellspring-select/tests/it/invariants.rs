//! Every selector returns unique, in-range indices of the requested size (or
//! the documented shortfall), non-negative weights, and the same answer for
//! the same seed.

use proptest::prelude::*;
use wellspring_select::{
    Budget, Craig, Crest, EntropyWeighting, FullData, Glister, GlisterGreedy, GradMatch,
    GradMatchMode, GradProxies, Greedy, RandE, Random, Selection, Selector, TrainingState,
    ValidationState,
};

#[derive(Debug)]
struct Case {
    labels: Vec<usize>,
    c: usize,
    probs: Vec<f32>,
    vlabels: Vec<usize>,
    vprobs: Vec<f32>,
    vfeat: Vec<f32>,
    feat: Vec<f32>,
    p: usize,
}

fn softmax_rows(z: &[f32], c: usize) -> Vec<f32> {
    z.chunks_exact(c)
        .flat_map(|r| {
            let m = r.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let s: f32 = r.iter().map(|v| (v - m).exp()).sum();
            r.iter().map(move |v| (v - m).exp() / s).collect::<Vec<_>>()
        })
        .collect()
}

fn case() -> impl Strategy<Value = (Case, usize, u64)> {
    (2usize..4, 4usize..40, 1usize..8, 1usize..4).prop_flat_map(|(c, n, m, p)| {
        (
            prop::collection::vec(0..c, n),
            prop::collection::vec(-3.0f32..3.0, n * c),
            prop::collection::vec(0..c, m),
            prop::collection::vec(-3.0f32..3.0, m * c),
            prop::collection::vec(-1.0f32..1.0, n * p),
            prop::collection::vec(-1.0f32..1.0, m * p),
            1..=n,
            any::<u64>(),
        )
            .prop_map(move |(labels, z, vlabels, vz, feat, vfeat, k, seed)| {
                (
                    Case {
                        probs: softmax_rows(&z, c),
                        vprobs: softmax_rows(&vz, c),
                        labels,
                        c,
                        vlabels,
                        vfeat,
                        feat,
                        p,
                    },
                    k,
                    seed,
                )
            })
    })
}

fn selectors() -> Vec<Box<dyn Selector>> {
    vec![
        Box::new(FullData),
        Box::new(Random::fixed()),
        Box::new(Random::adaptive(2).unwrap()),
        Box::new(RandE::params().check().unwrap()),
        Box::new(
            RandE::params()
                .weighting(EntropyWeighting::Softmax)
                .check()
                .unwrap(),
        ),
        Box::new(Craig::params().check().unwrap()),
        Box::new(
            Craig::params()
                .greedy(Greedy::Plain)
                .per_class(false)
                .check()
                .unwrap(),
        ),
        Box::new(
            Craig::params()
                .max_dense_bytes(0)
                .block_rows(3)
                .check()
                .unwrap(),
        ),
        Box::new(Glister::params().eta(0.1).check().unwrap()),
        Box::new(
            Glister::params()
                .greedy(GlisterGreedy::Stochastic { epsilon: 0.1 })
                .per_class(true)
                .check()
                .unwrap(),
        ),
        Box::new(GradMatch::params().check().unwrap()),
        Box::new(
            GradMatch::params()
                .mode(GradMatchMode::PerBatch { batch_size: 3 })
                .check()
                .unwrap(),
        ),
        Box::new(
            Crest::params()
                .batch_size(4)
                .random_subset_fraction(0.3)
                .check()
                .unwrap(),
        ),
    ]
}

fn check_selection(
    name: &str,
    sel: &Selection,
    n: usize,
    k: usize,
    unique: bool,
) -> Result<(), TestCaseError> {
    let idx = sel.subset.indices();
    prop_assert!(idx.iter().all(|&i| i < n), "{name}: index out of range");
    if unique {
        prop_assert!(
            sel.subset.check_unique().is_ok(),
            "{name}: duplicate index in {idx:?}"
        );
    }
    prop_assert_eq!(sel.info.selected, idx.len());
    prop_assert_eq!(
        sel.info.selected + sel.info.shortfall,
        sel.info.requested,
        "{}",
        name
    );
    if name == "Full" {
        prop_assert_eq!(idx.len(), n);
    } else if name != "CREST" {
        prop_assert_eq!(idx.len(), k, "{}: size", name);
    }
    if let Some(w) = sel.subset.weights() {
        prop_assert!(
            w.iter().all(|v| v.is_finite() && *v >= 0.0),
            "{name}: weights {w:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn selections_are_valid_and_deterministic((cs, k, seed) in case()) {
        let n = cs.labels.len();
        let bias = GradProxies::last_layer(&cs.probs, &cs.labels, cs.c, None).unwrap();
        let full = GradProxies::last_layer(&cs.probs, &cs.labels, cs.c, Some((&cs.feat, cs.p))).unwrap();
        let val = ValidationState::new(&cs.vlabels).with_probs(&cs.vprobs).with_features(&cs.vfeat, cs.p);
        let state = TrainingState::new(&cs.labels, cs.c).unwrap()
            .with_probs(&cs.probs).unwrap()
            .with_proxies(&bias).unwrap()
            .with_validation(val).unwrap();
        for s in selectors() {
            let a = s.select(&state, Budget::Count(k), seed).unwrap();
            let b = s.select(&state, Budget::Count(k), seed).unwrap();
            prop_assert_eq!(&a.subset, &b.subset, "{} is not deterministic", s.name());
            prop_assert_eq!(&a.info.objective, &b.info.objective);
            prop_assert_eq!(a.info.filled_at_random, b.info.filled_at_random);
            // CREST repeats a point only when a class is too small for disjoint random subsets.
            let unique = s.name() != "CREST" || {
                let per_class = (0.3 * n as f64 / cs.c as f64).ceil() as usize;
                let min_class = (0..cs.c).map(|c| cs.labels.iter().filter(|&&y| y == c).count()).filter(|&m| m > 0).min().unwrap();
                k.div_ceil(4) * per_class <= min_class
            };
            check_selection(s.name(), &a, n, k, unique)?;
        }
        // GLISTER with the weight block of the head.
        let state_full = TrainingState::new(&cs.labels, cs.c).unwrap()
            .with_proxies(&full).unwrap()
            .with_validation(val).unwrap();
        let g = Glister::params().proxy(wellspring_select::ProxyKind::BiasAndWeights).check().unwrap();
        let a = g.select(&state_full, Budget::Count(k), seed).unwrap();
        check_selection("GLISTER (W)", &a, n, k, true)?;
        let gm = GradMatch::params().proxy(wellspring_select::ProxyKind::BiasAndWeights).check().unwrap();
        let a = gm.select(&state_full, Budget::Count(k), seed).unwrap();
        check_selection("GradMatch (W)", &a, n, k, true)?;
    }
}
