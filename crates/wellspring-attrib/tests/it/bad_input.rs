//! Broken models and trusted-looking inputs that must be errors naming the
//! problem: non-finite gradients, foreign checkpoints, bad learning rates.

use wellspring_attrib::methods::grad_dot::{GradDotParams, Similarity};
use wellspring_attrib::{Attributor, FittedAttributor, MethodOptions, ModelSource, by_name};
use wellspring_models::Model;

use super::{cpu, fixture, source};

/// The fixture's model with every weight 1e30: finite weights whose logits
/// overflow, so every loss gradient is NaN.
fn overflowing_model() -> Model {
    let mut m = fixture().model.clone();
    let n = m.n_params();
    m.set_params_flat(&vec![1e30; n]).unwrap();
    m
}

#[test]
fn non_finite_gradients_are_errors_naming_method_and_point() {
    let fx = fixture();
    let src = ModelSource::new(overflowing_model(), cpu());
    for sim in [Similarity::Cosine, Similarity::Dot] {
        let name = if sim == Similarity::Cosine {
            "grad-cos"
        } else {
            "grad-dot"
        };
        let fitted = GradDotParams::new(sim).fit(&src, &fx.train).unwrap();
        let e = fitted.attribute(&fx.test).unwrap_err().to_string();
        assert!(
            e.contains(name) && e.contains("point 0") && e.contains("not finite"),
            "{e}"
        );
        let e = fitted.self_attribute().unwrap_err().to_string();
        assert!(e.contains(name) && e.contains("point 0"), "{e}");
    }
    for m in ["tracin", "trak"] {
        let r = by_name(m, &MethodOptions::new())
            .unwrap()
            .fit_dyn(&src, &fx.train)
            .and_then(|f| f.attribute(&fx.test));
        let e = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("not finite"), "{m}: {e}");
    }
}

#[test]
fn grad_cos_self_influence_is_one() {
    let fx = fixture();
    let fitted = GradDotParams::new(Similarity::Cosine)
        .fit(&source(), &fx.train)
        .unwrap();
    let s = fitted.self_attribute().unwrap();
    assert!(s.iter().all(|&v| v == 1.0), "{:?}", &s[..8]);
    // The diagonal of the scores of the training set agrees.
    let few = fx.train.select(&[0, 1, 2]).unwrap();
    let m = fitted.attribute(&few).unwrap();
    for j in 0..3 {
        assert!((m.get(j, j) - 1.0).abs() < 1e-5, "{}", m.get(j, j));
    }
}

fn logreg() -> Model {
    Model::new(
        wellspring_models::ModelConfig::LogReg {
            d_in: 784,
            n_out: 10,
        },
        0,
        &cpu(),
    )
    .unwrap()
}

fn fit_err(name: &str, src: &ModelSource) -> String {
    let opts = MethodOptions::new().param("models", "2");
    let opts = if name == "trak" {
        opts
    } else {
        MethodOptions::new()
    };
    match by_name(name, &opts).unwrap().fit_dyn(src, &fixture().train) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn checkpoints_and_ensembles_of_another_architecture_are_rejected() {
    let mut ckpts = fixture().checkpoints.clone();
    ckpts[1].model = logreg();
    let e = fit_err("tracin-cp", &source().with_checkpoints(ckpts));
    assert!(
        e.contains("tracin-cp checkpoint 1 (epoch 8)") && e.contains("architecture"),
        "{e}"
    );
    let src = source().with_ensemble(vec![fixture().model.clone(), logreg()]);
    let e = fit_err("trak", &src);
    assert!(
        e.contains("trak ensemble model 1") && e.contains("body.0"),
        "{e}"
    );
    // Same architecture, other weights: accepted.
    let src = source().with_ensemble(vec![fixture().model.clone(), fixture().model.clone()]);
    assert_eq!(fit_err("trak", &src), "");
}

#[test]
fn negative_or_non_finite_learning_rates_are_rejected() {
    for lr in [-0.1, 0.0, f64::NAN, f64::INFINITY] {
        let mut ckpts = fixture().checkpoints.clone();
        ckpts[0].lr = lr;
        let e = fit_err("tracin-cp", &source().with_checkpoints(ckpts));
        assert!(
            e.contains("checkpoint 0 (epoch 4) learning rate") && e.contains("> 0"),
            "{lr}: {e}"
        );
        let mut tc = fixture().train_config.clone();
        tc.lr = lr;
        let e = fit_err("tracin", &source().with_train_config(tc));
        assert!(e.contains("training configuration's lr"), "{lr}: {e}");
    }
}
