//! Group gradients and weighted sums against sums of per-sample gradients.

use proptest::prelude::*;
use wellspring_core::Grouping;
use wellspring_grad::{GradEngine, ProjectionSpec, Reduce};

use crate::{cpu, rel_err, small_mlp, synthetic, tiny_cnn};

fn check_groups(assign: &[usize], reduce: Reduce, conv: bool) {
    let n = assign.len();
    let (model, data) = if conv {
        (tiny_cnn(8, 1), synthetic(n, &[1, 8, 8], 4, 9))
    } else {
        (small_mlp(9, &[7], 3, 2), synthetic(n, &[9], 3, 8))
    };
    let grouping = Grouping::from_assignment(assign).unwrap();
    let engine = GradEngine::params()
        .batch_size(7)
        .build(&model, &cpu())
        .unwrap();
    let p = engine.dim();
    let per = engine.per_sample_matrix(&data, 0..n).unwrap();
    let got = engine.group(&data, &grouping, reduce, None).unwrap();
    assert_eq!(got.len(), grouping.n_groups() * p);
    for (g, members) in grouping.groups().iter().enumerate() {
        let mut want = vec![0.0f32; p];
        for &i in members {
            for (w, v) in want.iter_mut().zip(&per[i * p..(i + 1) * p]) {
                *w += v;
            }
        }
        if reduce == Reduce::Mean {
            want.iter_mut().for_each(|w| *w /= members.len() as f32);
        }
        let e = rel_err(&got[g * p..(g + 1) * p], &want);
        assert!(
            e < 1e-4,
            "group {g} of {assign:?} ({reduce:?}): relative error {e}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn group_gradient_is_the_sum_of_member_gradients(assign in proptest::collection::vec(0usize..5, 1..24)) {
        check_groups(&assign, Reduce::Sum, false);
        check_groups(&assign, Reduce::Mean, false);
    }
}

#[test]
fn conv_group_gradients_and_singletons() {
    check_groups(&[0, 1, 0, 2, 1, 0, 2, 2, 3], Reduce::Sum, true);
    // Singleton groups reproduce per-sample gradients exactly in structure.
    let model = small_mlp(9, &[7], 3, 3);
    let data = synthetic(6, &[9], 3, 10);
    let engine = GradEngine::params().build(&model, &cpu()).unwrap();
    let per = engine.per_sample_matrix(&data, 0..6).unwrap();
    let single = engine
        .group(&data, &Grouping::singletons(6), Reduce::Sum, None)
        .unwrap();
    assert!(rel_err(&single, &per) < 1e-5);
}

#[test]
fn weighted_sum_and_projected_groups() {
    let model = small_mlp(9, &[7], 3, 4);
    let data = synthetic(11, &[9], 3, 11);
    let engine = GradEngine::params()
        .batch_size(4)
        .build(&model, &cpu())
        .unwrap();
    let p = engine.dim();
    let per = engine.per_sample_matrix(&data, 0..11).unwrap();
    let w: Vec<f32> = (0..11).map(|i| i as f32 * 0.3 - 1.0).collect();
    let got = engine.weighted_sum(&data, 0..11, Some(&w)).unwrap();
    let mut want = vec![0.0f32; p];
    for i in 0..11 {
        for (a, b) in want.iter_mut().zip(&per[i * p..(i + 1) * p]) {
            *a += w[i] * b;
        }
    }
    assert!(rel_err(&got, &want) < 1e-5);

    let grouping = Grouping::from_assignment(&[0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1]).unwrap();
    let plain = engine.group(&data, &grouping, Reduce::Sum, None).unwrap();
    for spec in [
        ProjectionSpec::Gaussian { dim: 16, seed: 3 },
        ProjectionSpec::Kronecker { dim: 16, seed: 3 },
    ] {
        let proj = spec.build(engine.layout()).unwrap();
        let got = engine
            .group(&data, &grouping, Reduce::Sum, Some(proj.as_ref()))
            .unwrap();
        let mut want = vec![0.0f32; 3 * 16];
        proj.project(3, &plain, &mut want).unwrap();
        assert!(rel_err(&got, &want) < 1e-5, "{spec:?}");
    }
}
