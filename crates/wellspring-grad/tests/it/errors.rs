//! Bad input gives errors that name it.

use wellspring_core::Grouping;
use wellspring_grad::{
    CurvatureParams, GradEngine, KroneckerProjector, LayerSelection, LinearOperator, Logit, Mse,
    ProjectionSpec, Reduce, Rows,
};

use crate::{cpu, mnist, small_mlp, synthetic};

#[test]
fn bad_inputs_are_named() {
    let model = small_mlp(6, &[4], 3, 1);
    let data = synthetic(5, &[6], 3, 1);
    let dev = cpu();

    let e = GradEngine::params()
        .selection(LayerSelection::layers(["body.7"]))
        .build(&model, &dev)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("body.7") && e.contains("body.0") && e.contains("head"),
        "{e}"
    );
    let e = GradEngine::params()
        .block_rows(0)
        .build(&model, &dev)
        .unwrap_err()
        .to_string();
    assert!(e.contains("block_rows"), "{e}");

    let engine = GradEngine::params().build(&model, &dev).unwrap();
    let p = engine.dim();
    for spec in [
        ProjectionSpec::Gaussian { dim: 0, seed: 0 },
        ProjectionSpec::Kronecker { dim: 0, seed: 0 },
    ] {
        let e = spec.build(engine.layout()).unwrap_err().to_string();
        assert!(e.contains("dim") && e.contains("at least 1"), "{e}");
    }
    let e = ProjectionSpec::Rademacher {
        dim: p + 1,
        seed: 0,
    }
    .build(engine.layout())
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(&format!("{}", p + 1)) && e.contains(&format!("{p} parameters")),
        "{e}"
    );

    // Dataset whose width does not fit the model.
    let wide = mnist(3);
    let e = engine
        .per_sample_matrix(&wide, Rows::All)
        .unwrap_err()
        .to_string();
    assert!(e.contains("784") && e.contains("6 features"), "{e}");
    // Row out of range.
    let e = engine
        .per_sample_matrix(&data, [0usize, 9].as_slice())
        .unwrap_err()
        .to_string();
    assert!(e.contains("index 9") && e.contains("length 5"), "{e}");
    // Grouping of another size.
    let e = engine
        .group(&data, &Grouping::singletons(4), Reduce::Sum, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("grouping") && e.contains('5') && e.contains('4'),
        "{e}"
    );
    // Projector built for another layout.
    let head = GradEngine::params()
        .selection(LayerSelection::Head)
        .build(&model, &dev)
        .unwrap();
    let kron = KroneckerProjector::new(head.layout(), 4, 0).unwrap();
    let e = engine
        .projected_matrix(&data, Rows::All, &kron)
        .unwrap_err()
        .to_string();
    assert!(e.contains("projector input dimension"), "{e}");

    // Output functions that do not fit the targets or the model.
    let e = GradEngine::params()
        .output(Mse)
        .build(&model, &dev)
        .unwrap()
        .per_sample_matrix(&data, Rows::All);
    assert!(e.unwrap_err().to_string().contains("regression targets"));
    let e = GradEngine::params()
        .output(Logit(3))
        .build(&model, &dev)
        .unwrap()
        .per_sample_matrix(&data, Rows::All);
    assert!(e.unwrap_err().to_string().contains("3 outputs"));

    // Operators reject vectors of the wrong length and bad settings.
    let op = CurvatureParams::new()
        .hessian(&model, &data, Rows::All, &dev)
        .unwrap();
    let mut out = vec![0.0; op.dim()];
    let e = op
        .apply(&vec![0.0; op.dim() - 1], &mut out)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("length {}", op.dim())), "{e}");
    let mut v = vec![0.0; op.dim()];
    v[2] = f64::NAN;
    assert!(
        op.apply(&v, &mut out)
            .unwrap_err()
            .to_string()
            .contains("position 2")
    );
    let e = CurvatureParams::new()
        .l2(-1.0)
        .hessian(&model, &data, Rows::All, &dev)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("l2"), "{e}");
    let e = CurvatureParams::new()
        .loss(Logit(0))
        .gauss_newton(&model, &data, Rows::All, &dev);
    assert!(e.is_ok(), "a logit has a (zero) logit Hessian");
    let e = CurvatureParams::new()
        .loss(wellspring_grad::TrakMargin)
        .gauss_newton(&model, &crate::regression(4, 6, 3), Rows::All, &dev)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("class label"), "{e}");
}
