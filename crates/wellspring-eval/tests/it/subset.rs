//! `SubsetRetrainer`: retraining any attributable model through a closure,
//! including a language model whose test outputs are per-example token
//! losses, with cached outputs on a rerun.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use wellspring_core::{Dataset, Features, Subset, Targets};
use wellspring_eval::{EvalContext, Lds, Metric, RetrainSpec, Retrainer, SubsetRetrainer};
use wellspring_models::burn_types::Device;
use wellspring_models::zoo::{TransformerConfig, TransformerLm};
use wellspring_models::{AnyModel, Loss, Optimizer, TrainConfig, fit_attributable};
use wellspring_report::{Cache, Progress};

fn corpus(n: usize, salt: usize) -> Dataset {
    let mut ids = Vec::new();
    let mut offsets = vec![0];
    for i in 0..n {
        for t in 0..(3 + (i + salt) % 4) {
            ids.push(((i * 3 + t * 5 + salt) % 9) as u32);
        }
        offsets.push(ids.len());
    }
    Dataset::new(
        format!("corpus-{salt}"),
        Features::Tokens {
            ids,
            offsets,
            vocab_size: 9,
        },
        Targets::NextToken {
            prompt_lens: (0..n).map(|i| i % 2).collect(),
            vocab_size: 9,
        },
    )
    .unwrap()
}

#[test]
fn a_language_model_retrains_through_its_closure_and_is_cached() {
    let (train, test) = (corpus(16, 0), corpus(4, 1));
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let trainer = move |data: &Dataset, subset: &Subset, seed: u64| {
        counter.fetch_add(1, Ordering::SeqCst);
        let dev = Device::flex();
        let cfg = TransformerConfig {
            vocab: 9,
            max_len: 8,
            d_model: 8,
            n_heads: 2,
            d_ff: 8,
            n_layers: 1,
        };
        let tc = TrainConfig::params()
            .epochs(2)
            .batch_size(4)
            .optimizer(Optimizer::adam())
            .lr(0.01)
            .seed(seed)
            .check()?;
        let (m, _) = fit_attributable(
            TransformerLm::new(&cfg, seed, &dev)?,
            data,
            Some(subset),
            &tc,
            &dev,
        )?;
        Ok(AnyModel::new(m))
    };
    let dir = tempfile::tempdir().unwrap();
    let retrainer =
        SubsetRetrainer::new(&train, &test, trainer, Loss::CrossEntropy, &Device::flex())
            .unwrap()
            .with_cache(Cache::open(dir.path()).unwrap())
            .with_progress(Progress::hidden());
    let spec = RetrainSpec::on(Subset::new((0..10).collect(), 16).unwrap());
    let first = retrainer.retrain(&spec, 3).unwrap();
    assert_eq!(first.len(), 4);
    for (l, m) in first.loss.iter().zip(&first.margin) {
        assert!(l.is_finite() && *l > 0.0, "mean token loss {l}");
        assert_eq!(*m, -l, "margin is the negative loss");
    }
    assert!(first.correct.is_none());
    // a rerun comes from the cache: the closure is not called again
    let n = calls.load(Ordering::SeqCst);
    assert_eq!(retrainer.retrain(&spec, 3).unwrap().loss, first.loss);
    assert_eq!(calls.load(Ordering::SeqCst), n);
    // LDS of a score matrix over the corpus runs on these outputs
    let scores = wellspring_core::ScoreMatrix::from_vec(
        16,
        4,
        (0..64).map(|v| ((v * 7 % 11) as f32) - 5.0).collect(),
    )
    .unwrap();
    let r = Lds::params()
        .m(3)
        .evaluate(&scores, &EvalContext::new().with_retrainer(&retrainer))
        .unwrap();
    assert!(r.summary.mean.is_finite());
    // labels cannot be overridden on next-token targets
    assert!(
        retrainer
            .retrain(&RetrainSpec::full(16).with_labels([(0, 1)]), 0)
            .is_err()
    );
}

#[test]
fn a_task_mismatch_is_a_clear_error() {
    let test = Dataset::new(
        "classes",
        Features::Tokens {
            ids: vec![1, 2, 3],
            offsets: vec![0, 3],
            vocab_size: 9,
        },
        Targets::Classes {
            labels: vec![0],
            n_classes: 2,
        },
    )
    .unwrap();
    let trainer = |_: &Dataset, _: &Subset, _: u64| -> wellspring_models::Result<AnyModel> {
        unreachable!("never trained")
    };
    let e = SubsetRetrainer::new(
        &corpus(4, 0),
        &test,
        trainer,
        Loss::CrossEntropy,
        &Device::flex(),
    )
    .expect_err("mismatch")
    .to_string();
    assert!(e.contains("classes") && e.contains("different task"), "{e}");
}
