//! Every metric runs through the one `Metric` trait, for any score matrix,
//! and its output serialises.

use wellspring_core::ScoreMatrix;
use wellspring_eval::{
    Brittleness, DatasetPruning, EvalContext, ExemplarCount, IdenticalClass, Lds, LooCorrelation,
    Metric, NoisyLabelDetection, Order, RetrainingScore,
};

use crate::common::{Method, bc_retrainer, scores};

/// Runs any metric and returns its JSON, knowing nothing about the method.
fn run<M: Metric>(metric: &M, s: &ScoreMatrix, ctx: &EvalContext<'_>) -> serde_json::Value {
    let out = metric
        .evaluate(s, ctx)
        .unwrap_or_else(|e| panic!("{}: {e}", metric.name()));
    serde_json::to_value(&out).unwrap()
}

#[test]
fn all_metrics_through_one_trait() {
    let r = bc_retrainer(80, 10);
    let flipped = [3usize, 17, 40];
    let poisoned = [5usize];
    let ctx = EvalContext::new()
        .with_retrainer(&r)
        .with_flipped(&flipped)
        .with_poisoned(&poisoned);
    for method in [Method::GradDot, Method::Influence] {
        let s = scores(&r, method);
        let outs = [
            run(&Lds::params().m(10), &s, &ctx),
            run(&LooCorrelation::params().random_points(5), &s, &ctx),
            run(
                &Brittleness::removal()
                    .n_models(1)
                    .max_k(16)
                    .test_points(vec![0, 1]),
                &s,
                &ctx,
            ),
            run(
                &Brittleness::mislabel()
                    .n_models(1)
                    .max_k(16)
                    .test_points(vec![0]),
                &s,
                &ctx,
            ),
            run(&RetrainingScore::params(), &s, &ctx),
            run(&DatasetPruning::params(), &s, &ctx),
            run(&NoisyLabelDetection::new(Order::Ascending), &s, &ctx),
            run(&ExemplarCount::new(3, 2), &s, &ctx),
            run(&IdenticalClass, &s, &ctx),
        ];
        assert!(outs.iter().all(|o| o.is_object()));
        assert!(outs[0]["summary"]["mean"].is_number());
        assert!(outs[2]["cdf"]["auc"].is_number());
    }
}
