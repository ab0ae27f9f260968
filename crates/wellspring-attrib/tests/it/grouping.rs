//! Grouping helpers: Grad-K-Means features equal finite differences of the
//! loss w.r.t. the head input, and every grouper builds a partition.

use wellspring_attrib::grouping::{grad_features, repr_features};
use wellspring_attrib::{GroupingSpec, ModelSource};
use wellspring_models::{Model, ModelConfig, evaluate};

use super::{cpu, fixture, mnist};

#[test]
fn grad_features_match_finite_differences_on_logreg() {
    // For logistic regression the head input is the input itself, so the
    // gradient w.r.t. the pre-classification activations is ∂L/∂x.
    let data = mnist(false, 0, 3);
    let model = Model::new(ModelConfig::mnist_logreg(), 3, &cpu()).unwrap();
    let (g, d) = grad_features(&model, &data, &cpu()).unwrap();
    assert_eq!(d, 784);
    let wellspring_core::Features::Dense { values, shape } = data.features().clone() else {
        unreachable!("MNIST is dense")
    };
    for &(row, col) in &[(0usize, 300usize), (1, 400), (2, 500), (0, 10)] {
        let eps = 1e-2f32;
        let mut plus = values.clone();
        plus[row * d + col] += eps;
        let mut minus = values.clone();
        minus[row * d + col] -= eps;
        let lp = evaluate(
            &model,
            &data
                .with_features(wellspring_core::Features::Dense {
                    values: plus,
                    shape: shape.clone(),
                })
                .unwrap(),
            &cpu(),
        )
        .unwrap()
        .loss[row];
        let lm = evaluate(
            &model,
            &data
                .with_features(wellspring_core::Features::Dense {
                    values: minus,
                    shape: shape.clone(),
                })
                .unwrap(),
            &cpu(),
        )
        .unwrap()
        .loss[row];
        let fd = (lp - lm) / (2.0 * eps);
        let an = g[row * d + col];
        assert!(
            (fd - an).abs() < 2e-3 * (1.0 + an.abs()),
            "({row},{col}): fd {fd} vs {an}"
        );
    }
}

#[test]
fn every_grouper_partitions_the_training_set() {
    let fx = fixture();
    let (r, d) = repr_features(&fx.model, &fx.train, &cpu()).unwrap();
    assert_eq!((r.len(), d), (400 * 32, 32));
    for spec in [
        "random:50",
        "kmeans:20",
        "repr-kmeans:size=16",
        "grad-kmeans:40",
    ] {
        let spec: GroupingSpec = spec.parse().unwrap();
        let built = spec.build(&fx.model, &fx.train, &cpu(), 1).unwrap();
        let g = &built.grouping;
        assert_eq!(g.n_points(), 400);
        assert!(g.sizes().iter().all(|&s| s > 0));
        assert_eq!(built.kmeans.is_some(), spec.to_string() != "random:50");
        if let Some(info) = &built.kmeans {
            assert!(info.iterations <= 60);
        }
        let again = spec.build(&fx.model, &fx.train, &cpu(), 1).unwrap();
        assert_eq!(again.grouping, built.grouping, "{spec} not deterministic");
    }
    let _ = ModelSource::new(fx.model.clone(), cpu());
}
