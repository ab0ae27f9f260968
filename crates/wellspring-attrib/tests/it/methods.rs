//! Every registered method: shapes, finiteness, determinism, group scores,
//! chunked attribution, and clear errors on bad input.

use std::sync::OnceLock;

use proptest::prelude::*;
use wellspring_attrib::methods::esvm::EsvmParams;
use wellspring_attrib::methods::random::RandomParams;
use wellspring_attrib::methods::rps::RpsParams;
use wellspring_attrib::{
    Attributor, FittedAttributor, MethodOptions, attribute_in_chunks, by_name, methods,
};
use wellspring_core::{Dataset, Features, Grouping, Targets};

use super::{fixture, source};

fn fit(name: &str) -> Box<dyn FittedAttributor> {
    by_name(name, &MethodOptions::new().seed(5))
        .unwrap()
        .fit_dyn(&source(), &fixture().train)
        .unwrap()
}

#[test]
fn every_method_is_finite_shaped_and_deterministic() {
    let fx = fixture();
    let test = fx.test.select(&(0..8).collect::<Vec<_>>()).unwrap();
    for m in methods::list() {
        let a = fit(m.name);
        assert_eq!(a.name(), m.name);
        assert_eq!(a.n_train(), fx.train.len());
        let s = a.attribute(&test).unwrap();
        assert_eq!(s.shape(), (fx.train.len(), 8), "{}", m.name);
        s.check_finite().unwrap();
        let s2 = fit(m.name).attribute(&test).unwrap();
        assert!(s == s2, "{} is not deterministic", m.name);
        let chunked = attribute_in_chunks(a.as_ref(), &test, 3, None, &mut |_| {}).unwrap();
        assert!(chunked == s, "{}: chunked attribution differs", m.name);
        let self_inf = a.self_attribute().unwrap();
        assert_eq!(self_inf.len(), fx.train.len());
        assert!(self_inf.iter().all(|v| v.is_finite()), "{}", m.name);
        // chunked group attribution equals one-shot group attribution
        let assign: Vec<usize> = (0..fx.train.len()).map(|i| i % 7).collect();
        let grouping = Grouping::from_assignment(&assign).unwrap();
        let one = a.attribute_groups(&grouping, &test).unwrap();
        let chunked =
            attribute_in_chunks(a.as_ref(), &test, 3, Some(&grouping), &mut |_| {}).unwrap();
        assert!(
            one == chunked,
            "{}: chunked group attribution differs",
            m.name
        );
        // singleton groups reproduce per-point scores exactly
        let g = a
            .attribute_groups(&Grouping::singletons(fx.train.len()), &test)
            .unwrap();
        assert_eq!(
            g, s,
            "{}: singleton groups differ from per-point scores",
            m.name
        );
    }
}

#[test]
fn seeds_matter_for_random() {
    let fx = fixture();
    let a = RandomParams::new()
        .seed(1)
        .fit(&source(), &fx.train)
        .unwrap();
    let b = RandomParams::new()
        .seed(2)
        .fit(&source(), &fx.train)
        .unwrap();
    assert_ne!(
        a.attribute(&fx.test).unwrap(),
        b.attribute(&fx.test).unwrap()
    );
}

fn fitted_cheap() -> &'static [(String, Box<dyn FittedAttributor>)] {
    static F: OnceLock<Vec<(String, Box<dyn FittedAttributor>)>> = OnceLock::new();
    F.get_or_init(|| {
        ["pae", "emb-cos", "l2", "rps", "random"]
            .iter()
            .map(|n| (n.to_string(), fit(n)))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Group scores equal the additive sums of per-point scores for any
    /// partition; singleton groups are the special case above.
    #[test]
    fn group_scores_are_sums_of_point_scores(assign in proptest::collection::vec(0usize..7, 400)) {
        let fx = fixture();
        let test = fx.test.select(&[0, 3, 7]).unwrap();
        let g = Grouping::from_assignment(&assign).unwrap();
        for (name, a) in fitted_cheap() {
            let per_point = a.attribute(&test).unwrap();
            let grouped = a.attribute_groups(&g, &test).unwrap();
            prop_assert!(grouped == per_point.sum_over_groups(&g).unwrap(), "{}", name);
        }
    }
}

fn toy(name: &str, width: usize, classes: usize) -> Dataset {
    Dataset::new(
        name,
        Features::Dense {
            values: vec![0.5; 4 * width],
            shape: vec![width],
        },
        Targets::Classes {
            labels: vec![0, 1, 1, 0],
            n_classes: classes,
        },
    )
    .unwrap()
}

#[test]
fn bad_test_sets_are_clear_errors() {
    for m in methods::list() {
        let a = fit(m.name);
        let e = a.attribute(&toy("narrow", 64, 10)).unwrap_err().to_string();
        assert!(e.contains("narrow") && e.contains("64"), "{}: {e}", m.name);
        let e = a
            .attribute(&toy("three-class", 784, 3))
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 classes"), "{}: {e}", m.name);
        let e = a
            .attribute_groups(&Grouping::singletons(10), &fixture().test)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("10 points") && e.contains("400"),
            "{}: {e}",
            m.name
        );
    }
    // a grouping that misses or repeats an index cannot even be built
    assert!(Grouping::new(vec![vec![0, 1], vec![1, 2]], 3).is_err());
    assert!(Grouping::new(vec![vec![0]], 3).is_err());
}

#[test]
fn bad_params_are_clear_errors() {
    let fx = fixture();
    let e = EsvmParams::new()
        .c(-1.0)
        .fit(&source(), &fx.train)
        .unwrap_err()
        .to_string();
    assert!(e.contains("esvm.c") && e.contains("-1"), "{e}");
    let e = RpsParams::new()
        .lambda(0.0)
        .fit(&source(), &fx.train)
        .unwrap_err()
        .to_string();
    assert!(e.contains("rps.lambda"), "{e}");
    let e = RandomParams::new()
        .range(1.0, 1.0)
        .fit(&source(), &fx.train)
        .unwrap_err()
        .to_string();
    assert!(e.contains("random.range"), "{e}");
    let e = by_name("rps", &MethodOptions::new().param("lambda", "-3"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("rps.lambda"), "{e}");
    let chunk = attribute_in_chunks(fit("pae").as_ref(), &fx.test, 0, None, &mut |_| {});
    assert!(chunk.unwrap_err().to_string().contains("chunk"));
}

#[test]
fn similarity_methods_prefer_the_same_class() {
    // On a trained MLP the top-ranked training point mostly shares the test
    // label (SVE's identical class test); RPS filters by class by construction.
    let fx = fixture();
    let tl = fx.test.labels().unwrap();
    let yl = fx.train.labels().unwrap();
    for name in ["pae", "emb-cos", "emb-dist", "l2", "esvm", "rps"] {
        let s = fit(name).attribute(&fx.test).unwrap();
        let same = (0..fx.test.len())
            .filter(|&j| yl[s.top_k(j, 1)[0]] == tl[j])
            .count();
        assert!(
            same * 10 >= fx.test.len() * 7,
            "{name}: only {same}/{} same-class top-1",
            fx.test.len()
        );
    }
}
