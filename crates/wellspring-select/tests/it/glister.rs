//! GLISTER on a real softmax regression, where the last layer is the whole
//! model, so the Taylor-updated validation logits are exact one-step logits.

use wellspring_select::{
    Budget, Glister, GlisterGreedy, ProxyKind, Selector, TrainingState, ValidationState,
};

use crate::common::{C, SoftmaxReg, digits, inputs, warm_model};

/// Validation mean log-likelihood after the step `θ ← θ − η Σ_{i∈S} ∇ℓ_i`.
fn ll_after_step(model: &SoftmaxReg, idx: &[usize], eta: f64) -> f64 {
    let dg = digits();
    let (_, g) = model.loss_grad(&dg.x, &dg.y, idx, &vec![1.0; idx.len()]);
    // loss_grad returns the mean gradient; the GLISTER step uses the sum.
    let mut p = model.flat();
    for (pi, gi) in p.iter_mut().zip(&g) {
        *pi -= (eta * idx.len() as f64) as f32 * gi;
    }
    let mut m = model.clone();
    m.set_flat(&p);
    m.log_lik(&dg.xv, &dg.yv)
}

#[test]
fn greedy_increases_the_validation_log_likelihood_at_each_step() {
    let dg = digits();
    let model = warm_model();
    let inp = inputs(model);
    let val = ValidationState::new(&dg.yv)
        .with_probs(&inp.vprobs)
        .with_features(&dg.xv, dg.d);
    let state = TrainingState::new(&dg.y, C)
        .unwrap()
        .with_proxies(&inp.full)
        .unwrap()
        .with_validation(val)
        .unwrap();
    let eta = 2e-4;
    let k = 40;
    let g = Glister::params()
        .proxy(ProxyKind::BiasAndWeights)
        .eta(eta)
        .check()
        .unwrap();
    let sel = g.select(&state, Budget::Count(k), 0).unwrap();
    let trace = &sel.info.objective;
    assert_eq!(trace.len(), k + 1);
    for (t, w) in trace.windows(2).enumerate() {
        assert!(w[1] > w[0], "step {t}: log-likelihood {} -> {}", w[0], w[1]);
    }
    // The first entry is the model's own validation log-likelihood.
    assert!((trace[0] - model.log_lik(&dg.xv, &dg.yv)).abs() < 1e-4);
    // The last is that of one exact SGD step on the selected set (linear model).
    let exact = ll_after_step(model, sel.subset.indices(), eta);
    assert!((trace[k] - exact).abs() < 1e-4, "{} vs {exact}", trace[k]);
    // And it beats the same step on a random set of the same size.
    let random: Vec<usize> = (0..k).map(|i| i * 7 % dg.y.len()).collect();
    assert!(exact > ll_after_step(model, &random, eta));

    // Stochastic greedy also climbs, with fewer evaluations.
    let sg = Glister::params()
        .proxy(ProxyKind::BiasAndWeights)
        .eta(eta)
        .greedy(GlisterGreedy::Stochastic { epsilon: 0.01 })
        .check()
        .unwrap();
    let s = sg.select(&state, Budget::Count(k), 0).unwrap();
    assert!(s.info.evaluations < sel.info.evaluations / 4);
    assert!(s.info.objective[k] > s.info.objective[0]);
}

#[test]
fn bias_only_and_per_class_variants_run_on_real_data() {
    let dg = digits();
    let inp = inputs(warm_model());
    let val = ValidationState::new(&dg.yv).with_probs(&inp.vprobs);
    let state = TrainingState::new(&dg.y, C)
        .unwrap()
        .with_proxies(&inp.bias)
        .unwrap()
        .with_validation(val)
        .unwrap();
    for per_class in [false, true] {
        let g = Glister::params()
            .eta(1e-3)
            .per_class(per_class)
            .check()
            .unwrap();
        let sel = g.select(&state, Budget::Fraction(0.05), 1).unwrap();
        assert_eq!(
            sel.subset.len(),
            (0.05 * dg.y.len() as f64).round() as usize
        );
        sel.subset.check_unique().unwrap();
        assert!(sel.subset.weights().is_none());
        assert_eq!(sel.info.filled_at_random, 0);
        let obj = &sel.info.objective;
        if per_class {
            assert_eq!(obj.len(), 2 * C);
            assert!(obj.chunks(2).all(|p| p[1] > p[0]), "{obj:?}");
        } else {
            assert!(obj.last().unwrap() > obj.first().unwrap());
        }
    }
}
