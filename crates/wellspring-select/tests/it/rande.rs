//! RandE (SVE Algorithm 2) sampling statistics.

use wellspring_select::{Budget, EntropyWeighting, RandE, Selector, TrainingState};

use crate::common::{digits, inputs, state, warm_model};

/// Inclusion counts of every point over `reps` RandE draws with seeds `0..reps`.
fn inclusion_counts(rande: &RandE, state: &TrainingState<'_>, k: usize, reps: u64) -> Vec<usize> {
    let mut counts = vec![0usize; state.len()];
    for seed in 0..reps {
        let sel = rande.select(state, Budget::Count(k), seed).unwrap();
        assert_eq!(sel.subset.len(), k);
        sel.subset.check_unique().unwrap();
        for &i in sel.subset.indices() {
            counts[i] += 1;
        }
    }
    counts
}

#[test]
fn uniform_entropy_reduces_to_uniform_sampling() {
    // Every prediction uniform: equal entropies, so each point is included with
    // probability k/n; its count over R draws is Binomial(R, k/n) marginally.
    let n = 120;
    let k = 36;
    let reps = 3000u64;
    let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
    let probs = vec![1.0f32 / 3.0; n * 3];
    let state = TrainingState::new(&labels, 3)
        .unwrap()
        .with_probs(&probs)
        .unwrap();
    for weighting in [EntropyWeighting::Proportional, EntropyWeighting::Softmax] {
        let rande = RandE::params().weighting(weighting).check().unwrap();
        let counts = inclusion_counts(&rande, &state, k, reps);
        let p = k as f64 / n as f64;
        let mean = reps as f64 * p;
        let sd = (reps as f64 * p * (1.0 - p)).sqrt();
        let mut chi2 = 0.0;
        for (i, &c) in counts.iter().enumerate() {
            let z = (c as f64 - mean) / sd;
            // 4.5 sd per point: a false alarm among 120 points has probability < 1e-3.
            assert!(
                z.abs() < 4.5,
                "{weighting:?}: point {i} included {c} times, expected {mean:.0} ± {sd:.1}"
            );
            chi2 += z * z;
        }
        // Σ z² ≈ χ²-like with n terms (mean n, sd ≈ sqrt(2n) ≈ 15.5); counts are
        // negatively correlated (fixed total), which only lowers it.
        assert!(
            chi2 < n as f64 + 5.0 * (2.0 * n as f64).sqrt(),
            "{weighting:?}: chi2 {chi2}"
        );
        assert_eq!(counts.iter().sum::<usize>(), k * reps as usize);
    }
}

#[test]
fn higher_entropy_is_drawn_more_often() {
    // Half the points confident (entropy ≈ 0.06 nats), half uncertain (≈ 0.69).
    let n = 100;
    let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
    let probs: Vec<f32> = (0..n)
        .flat_map(|i| if i < 50 { [0.99f32, 0.01] } else { [0.5, 0.5] })
        .collect();
    let state = TrainingState::new(&labels, 2)
        .unwrap()
        .with_probs(&probs)
        .unwrap();
    let rande = RandE::params().check().unwrap();
    let counts = inclusion_counts(&rande, &state, 10, 500);
    let low: usize = counts[..50].iter().sum();
    let high: usize = counts[50..].iter().sum();
    assert!(high > 5 * low, "high {high} vs low {low}");
    // softmax(entropy) flattens the preference: ratio at most e^(0.69 − 0.06) per draw.
    let soft = RandE::params()
        .weighting(EntropyWeighting::Softmax)
        .check()
        .unwrap();
    let counts = inclusion_counts(&soft, &state, 10, 500);
    let low_s: usize = counts[..50].iter().sum();
    let high_s: usize = counts[50..].iter().sum();
    assert!(
        high_s > low_s && low_s > low,
        "softmax: high {high_s} low {low_s}"
    );
}

#[test]
fn rande_on_real_predictions_prefers_uncertain_digits() {
    let dg = digits();
    let inp = inputs(warm_model());
    let st = state(&inp, &inp.bias);
    let rande = RandE::params().check().unwrap();
    let sel = rande.select(&st, Budget::Fraction(0.1), 11).unwrap();
    assert_eq!(sel.subset.len(), (0.1 * dg.y.len() as f64).round() as usize);
    let [mean_sel, mean_all] = sel.info.objective[..] else {
        panic!("RandE reports two entropies")
    };
    // Proportional sampling draws with mean entropy E[H²]/E[H] >= E[H].
    assert!(
        mean_sel > 1.1 * mean_all,
        "selected {mean_sel} vs all {mean_all}"
    );
    assert_eq!(sel.info.filled_at_random, 0);
    assert!(rande.needs().probs);
}
