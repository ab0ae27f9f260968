//! Every bad input is a clear error naming the input.

use wellspring_core::{Dataset, Features, Grouping, ScoreMatrix, Targets};
use wellspring_eval::{
    Brittleness, DatasetPruning, EvalContext, EvalError, FimoComparison, FurtherTrainingParams,
    FurtherTrainingResult, Lds, LinearParams, LinearRetrainer, LooCorrelation, Metric,
    NoisyLabelDetection, Order, RetrainingScore, bisect_support,
};

use crate::common::bc_retrainer;

fn msg<T: std::fmt::Debug>(r: Result<T, EvalError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn lds_parameters() {
    let r = bc_retrainer(30, 5);
    let ctx = EvalContext::new().with_retrainer(&r);
    let s = ScoreMatrix::zeros(30, 5);
    for a in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
        let e = msg(Lds::params().alpha(a).evaluate(&s, &ctx));
        assert!(
            e.contains("alpha") && e.contains("strictly between 0 and 1"),
            "{e}"
        );
    }
    let e = msg(Lds::params().m(0).evaluate(&s, &ctx));
    assert!(e.contains("number of subsets m = 0"), "{e}");
    let e = msg(Lds::params().models_per_subset(0).evaluate(&s, &ctx));
    assert!(e.contains("models per subset"), "{e}");
    // α so small that subsets are empty
    let e = msg(Lds::params().alpha(0.001).evaluate(&s, &ctx));
    assert!(e.contains("subsets of 0 of 30"), "{e}");
}

#[test]
fn score_shape_must_match_the_data() {
    let r = bc_retrainer(30, 5);
    let ctx = EvalContext::new().with_retrainer(&r);
    for (n, m) in [(29, 5), (30, 4), (31, 6)] {
        let s = ScoreMatrix::zeros(n, m);
        for e in [
            msg(Lds::params().evaluate(&s, &ctx)),
            msg(LooCorrelation::params().evaluate(&s, &ctx)),
            msg(Brittleness::removal().evaluate(&s, &ctx)),
            msg(RetrainingScore::params().evaluate(&s, &ctx)),
            msg(DatasetPruning::params().evaluate(&s, &ctx)),
        ] {
            assert!(
                e.contains(&format!("is {n} x {m}")) && e.contains("30 training and 5 test"),
                "{e}"
            );
        }
    }
    // group scores need one row per group
    let g = Grouping::from_assignment(&(0..30).map(|i| i / 3).collect::<Vec<_>>()).unwrap();
    let e = msg(RetrainingScore::params().evaluate(
        &ScoreMatrix::zeros(11, 5),
        &EvalContext::new().with_retrainer(&r).with_grouping(&g),
    ));
    assert!(e.contains("is 11 x 5"), "{e}");
}

#[test]
fn noise_share_must_be_strictly_inside() {
    let d = NoisyLabelDetection::new(Order::Descending);
    let s = ScoreMatrix::zeros(10, 1);
    let none: [usize; 0] = [];
    let e = msg(d.evaluate(&s, &EvalContext::new().with_flipped(&none)));
    assert!(
        e.contains("noise share 0") && e.contains("strictly between 0 and 1"),
        "{e}"
    );
    let all: Vec<usize> = (0..10).collect();
    let e = msg(d.evaluate(&s, &EvalContext::new().with_flipped(&all)));
    assert!(e.contains("noise share 1 (10 flipped of 10"), "{e}");
    let e = msg(d.evaluate(&s, &EvalContext::new()));
    assert!(e.contains("flipped indices"), "{e}");
    let e = msg(d.evaluate(&s, &EvalContext::new().with_flipped(&[3, 12])));
    assert!(e.contains("index 12 out of range for length 10"), "{e}");
}

#[test]
fn search_and_removal_parameters() {
    let e = msg(bisect_support(1280, 0, |_| Ok(true)));
    assert!(e.contains("budget = 0"), "{e}");
    let r = bc_retrainer(30, 5);
    let ctx = EvalContext::new().with_retrainer(&r);
    let s = ScoreMatrix::zeros(30, 5);
    let e = msg(Brittleness::removal().bisection(0).evaluate(&s, &ctx));
    assert!(e.contains("budget = 0"), "{e}");
    let e = msg(Brittleness::removal()
        .test_points(vec![])
        .evaluate(&s, &ctx));
    assert!(e.contains("empty test set"), "{e}");
    let e = msg(Brittleness::removal()
        .test_points(vec![9])
        .evaluate(&s, &ctx));
    assert!(e.contains("index 9 out of range for length 5"), "{e}");
    for share in [-0.1, 1.0, 1.5] {
        let e = msg(RetrainingScore::params()
            .shares(vec![0.1, share])
            .evaluate(&s, &ctx));
        assert!(e.contains("removal share") && e.contains("[0, 1)"), "{e}");
    }
    // a share that rounds to every point
    let e = msg(DatasetPruning::params()
        .shares(vec![0.99])
        .evaluate(&s, &ctx));
    assert!(e.contains("removes 30 of 30"), "{e}");
    let e = msg(RetrainingScore::params().models(0).evaluate(&s, &ctx));
    assert!(e.contains("models per removal"), "{e}");
}

#[test]
fn missing_context_and_empty_test_sets() {
    let s = ScoreMatrix::zeros(30, 5);
    let e = msg(Lds::params().evaluate(&s, &EvalContext::new()));
    assert!(e.contains("lds needs a retrainer"), "{e}");
    let e = msg(FimoComparison::params().evaluate(&s, &EvalContext::new()));
    assert!(e.contains("further-training result"), "{e}");
    // an empty test set cannot even make a retrainer
    let (train, _) = crate::common::bc_slice(30, 5);
    let empty = Dataset::new(
        "empty",
        Features::Dense {
            values: vec![],
            shape: vec![30],
        },
        Targets::Classes {
            labels: vec![],
            n_classes: 2,
        },
    )
    .unwrap();
    let e = msg(LinearRetrainer::new(&train, &empty, LinearParams::new()));
    assert!(e.contains("empty test set"), "{e}");
    let e = msg(wellspring_eval::ExemplarCount::new(1, 1)
        .evaluate(&ScoreMatrix::zeros(3, 0), &EvalContext::new()));
    assert!(e.contains("empty test set"), "{e}");
    // further training: duplicate points, zero seeds, bad epochs
    assert!(msg(FurtherTrainingParams::new(vec![1, 1]).check(5)).contains("more than once"));
    assert!(msg(FurtherTrainingParams::new(vec![1]).n_seeds(0).check(5)).contains("n_seeds"));
    assert!(
        msg(FurtherTrainingParams::new(vec![1])
            .epochs(vec![3, 2])
            .check(5))
        .contains("increasing")
    );
    assert!(msg(FurtherTrainingParams::new(vec![7]).check(5)).contains("index 7"));
    let res = FurtherTrainingResult::zeros(vec![0, 1], 2, vec![1], vec![0], false);
    assert!(msg(res.gold(0, &[0], wellspring_eval::Adjustment::FullData)).contains("full-data"));
    assert!(msg(res.gold(3, &[0], Default::default())).contains("epoch index"));
}
