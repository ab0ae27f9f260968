//! Bad inputs give errors that name the input and the problem.

use wellspring_select::{
    Budget, Craig, CrestParams, Glister, GlisterGreedy, GradMatch, GradMatchMode, GradMatchTarget,
    GradProxies, ProxyKind, ProxyLayout, RandE, Random, SelectError, Selector, TrainingState,
    ValidationState,
};

use crate::common::{C, digits, inputs, state, warm_model};

#[test]
fn budgets_out_of_range_are_rejected_by_every_selector() {
    let dg = digits();
    let n = dg.y.len();
    let inp = inputs(warm_model());
    let st = state(&inp, &inp.bias);
    let selectors: Vec<Box<dyn Selector>> = vec![
        Box::new(Random::fixed()),
        Box::new(RandE::params().check().unwrap()),
        Box::new(Craig::params().check().unwrap()),
        Box::new(GradMatch::params().check().unwrap()),
        Box::new(CrestParams::default().check().unwrap()),
    ];
    for s in &selectors {
        let e = s.select(&st, Budget::Count(0), 0).unwrap_err();
        assert!(matches!(e, SelectError::ZeroBudget), "{}: {e}", s.name());
        let e = s.select(&st, Budget::Count(n + 1), 0).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&(n + 1).to_string()) && msg.contains(&n.to_string()),
            "{}: {msg}",
            s.name()
        );
        for rho in [0.0, -0.1, 1.5, f64::NAN] {
            let e = s.select(&st, Budget::Fraction(rho), 0).unwrap_err();
            assert!(
                matches!(e, SelectError::BadFraction { .. }),
                "{}: {e}",
                s.name()
            );
            assert!(e.to_string().contains("(0, 1]"));
        }
    }
}

#[test]
fn glister_needs_a_nonempty_validation_set_with_the_right_parts() {
    let dg = digits();
    let inp = inputs(warm_model());
    let g = Glister::params().check().unwrap();
    // No validation set at all.
    let st = state(&inp, &inp.bias);
    let e = g.select(&st, Budget::Count(10), 0).unwrap_err().to_string();
    assert!(e.contains("GLISTER") && e.contains("validation set"), "{e}");
    // An empty one.
    let empty: [usize; 0] = [];
    let no_probs: [f32; 0] = [];
    let st = state(&inp, &inp.bias)
        .with_validation(ValidationState::new(&empty).with_probs(&no_probs))
        .unwrap();
    let e = g.select(&st, Budget::Count(10), 0).unwrap_err();
    assert!(
        matches!(
            e,
            SelectError::EmptyValidation {
                selector: "GLISTER"
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("non-empty validation set"));
    // Validation labels without probabilities.
    let st = state(&inp, &inp.bias)
        .with_validation(ValidationState::new(&dg.yv))
        .unwrap();
    let e = g.select(&st, Budget::Count(10), 0).unwrap_err().to_string();
    assert!(e.contains("validation probabilities"), "{e}");
    // Weight proxies without validation features.
    let gw = Glister::params()
        .proxy(ProxyKind::BiasAndWeights)
        .check()
        .unwrap();
    let st = state(&inp, &inp.full)
        .with_validation(ValidationState::new(&dg.yv).with_probs(&inp.vprobs))
        .unwrap();
    let e = gw
        .select(&st, Budget::Count(10), 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("validation penultimate features"), "{e}");
    // Proxies without the layout GLISTER asked for.
    let e = g.select(&st, Budget::Count(10), 0).unwrap_err().to_string();
    assert!(e.contains("Bias") && e.contains("layout"), "{e}");
    // Validation probabilities of the wrong shape.
    let short = &inp.vprobs[..inp.vprobs.len() - C];
    let e = state(&inp, &inp.bias)
        .with_validation(ValidationState::new(&dg.yv).with_probs(short))
        .unwrap_err()
        .to_string();
    assert!(e.contains("validation probabilities"), "{e}");
}

#[test]
fn missing_and_misshapen_inputs_are_named() {
    let dg = digits();
    let n = dg.y.len();
    let st = TrainingState::new(&dg.y, C).unwrap();
    let e = RandE::params()
        .check()
        .unwrap()
        .select(&st, Budget::Count(5), 0)
        .unwrap_err();
    assert!(e.to_string().contains("training probabilities"), "{e}");
    let e = Craig::params()
        .check()
        .unwrap()
        .select(&st, Budget::Count(5), 0)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("CRAIG needs training gradient proxies"),
        "{e}"
    );
    let g = GradProxies::new(
        vec![0.0; (n - 1) * 4],
        n - 1,
        ProxyLayout::Opaque { dim: 4 },
    )
    .unwrap();
    let e = st.with_proxies(&g).unwrap_err().to_string();
    assert!(
        e.contains(&format!("{n} rows")) && e.contains(&format!("{} rows", n - 1)),
        "{e}"
    );
    let g3 = GradProxies::new(vec![0.0; n * 3], n, ProxyLayout::Bias { n_classes: 3 }).unwrap();
    let e = st.with_proxies(&g3).unwrap_err().to_string();
    assert!(e.contains("10 classes") && e.contains("3 classes"), "{e}");
    let mut bad = vec![0.0f32; n * 4];
    bad[4 * 7 + 2] = f32::INFINITY;
    let e = GradProxies::new(bad, n, ProxyLayout::Opaque { dim: 4 })
        .unwrap_err()
        .to_string();
    assert!(e.contains("row 7") && e.contains("column 2"), "{e}");
    let inp = inputs(warm_model());
    let e = GradMatch::params()
        .target(GradMatchTarget::Validation)
        .check()
        .unwrap()
        .select(&state(&inp, &inp.bias), Budget::Count(5), 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("GradMatch needs a validation set"), "{e}");
}

#[test]
fn bad_parameters_are_rejected_before_any_work() {
    let cases: Vec<(String, &str)> = vec![
        (
            RandE::params()
                .every_epochs(0)
                .check()
                .unwrap_err()
                .to_string(),
            "select_every",
        ),
        (Random::adaptive(0).unwrap_err().to_string(), "select_every"),
        (
            Craig::params()
                .block_rows(0)
                .check()
                .unwrap_err()
                .to_string(),
            "block_rows",
        ),
        (
            Glister::params().eta(0.0).check().unwrap_err().to_string(),
            "eta",
        ),
        (
            Glister::params()
                .eta(f64::NAN)
                .check()
                .unwrap_err()
                .to_string(),
            "eta",
        ),
        (
            Glister::params()
                .greedy(GlisterGreedy::Stochastic { epsilon: 1.0 })
                .check()
                .unwrap_err()
                .to_string(),
            "epsilon",
        ),
        (
            GradMatch::params()
                .lambda(-0.5)
                .check()
                .unwrap_err()
                .to_string(),
            "lambda",
        ),
        (
            GradMatch::params()
                .tol(1.0)
                .check()
                .unwrap_err()
                .to_string(),
            "tol",
        ),
        (
            GradMatch::params()
                .mode(GradMatchMode::PerBatch { batch_size: 0 })
                .check()
                .unwrap_err()
                .to_string(),
            "batch_size",
        ),
        (
            CrestParams::default()
                .batch_size(0)
                .check()
                .unwrap_err()
                .to_string(),
            "batch_size",
        ),
        (
            CrestParams::default()
                .random_subset_fraction(0.0)
                .check()
                .unwrap_err()
                .to_string(),
            "random_subset_fraction",
        ),
        (
            CrestParams::default()
                .tau(-0.1)
                .check()
                .unwrap_err()
                .to_string(),
            "tau",
        ),
        (
            CrestParams::default()
                .check_interval(0)
                .check()
                .unwrap_err()
                .to_string(),
            "check_interval",
        ),
    ];
    for (msg, name) in cases {
        assert!(
            msg.contains(name) && msg.contains("invalid parameter"),
            "{name}: {msg}"
        );
    }
}
