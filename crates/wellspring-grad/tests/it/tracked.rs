//! Models defined outside the zoo (as a user would write them) through the
//! tracker: per-example gradients of every tracked layer kind equal
//! batch-of-one autodiff, sequence layers take the rank-T path, and
//! untracked, unrouted or shared parameters are clear errors.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::activation::{gelu, relu};
use burn::tensor::{FloatDType, Tensor};
use wellspring_core::{Dataset, Features, Grouping, Targets};
use wellspring_grad::{
    CompletionLogProb, CrossEntropy, GradEngine, KroneckerProjector, LayerSelection, OutputFn,
    Projector, Reduce, TokenLoss,
};
use wellspring_models::init::reinit_seeded;
use wellspring_models::zoo::{TransformerClassifier, TransformerConfig, TransformerLm};
use wellspring_models::{AnyModel, Attributable, Input, ModelOutput, ParamLayerKind, Tracker};

use crate::{cpu, synthetic, values};

type MResult<T> = wellspring_models::Result<T>;

#[derive(Module, Debug)]
struct TwoLinear {
    fc1: Linear,
    fc2: Linear,
}

impl Attributable for TwoLinear {
    fn forward_tracked(&self, input: &Input, t: &mut Tracker<'_>) -> MResult<ModelOutput> {
        let x = input.flat_tensor("TwoLinear")?;
        let h = relu(t.linear(&self.fc1, x));
        Ok(ModelOutput::flat(t.linear(&self.fc2, h.clone())).with_features(h))
    }
}

#[derive(Module, Debug)]
struct ConvNet {
    conv: Conv2d,
    fc: Linear,
}

impl Attributable for ConvNet {
    fn forward_tracked(&self, input: &Input, t: &mut Tracker<'_>) -> MResult<ModelOutput> {
        let x = input.image_tensor("ConvNet")?;
        let y = relu(t.conv2d(&self.conv, x));
        let [b, c, h, w] = y.dims();
        Ok(ModelOutput::flat(
            t.linear(&self.fc, y.reshape([b, c * h * w])),
        ))
    }
}

/// Embedding → LayerNorm → per-token Linear → GELU → masked mean → Linear.
#[derive(Module, Debug)]
struct TokenNet {
    emb: Embedding,
    ln: LayerNorm,
    proj: Linear,
    head: Linear,
}

impl Attributable for TokenNet {
    fn forward_tracked(&self, input: &Input, t: &mut Tracker<'_>) -> MResult<ModelOutput> {
        let (ids, mask) = input.token_tensors("TokenNet")?;
        let [b, len] = ids.dims();
        let e = t.embedding(&self.emb, ids);
        let n = t.layer_norm(&self.ln, e);
        let h = gelu(t.linear(&self.proj, n));
        let d = h.dims()[2];
        let count = mask.clone().sum_dim(1).clamp_min(1.0);
        let pooled = (h * mask.reshape([b, len, 1])).sum_dim(1).reshape([b, d]) / count;
        Ok(ModelOutput::flat(t.linear(&self.head, pooled)))
    }
}

/// A raw parameter outside any tracked layer.
#[derive(Module, Debug)]
struct Scaled {
    fc: Linear,
    scale: Param<Tensor<1>>,
}

impl Attributable for Scaled {
    fn forward_tracked(&self, input: &Input, t: &mut Tracker<'_>) -> MResult<ModelOutput> {
        let x = input.flat_tensor("Scaled")?;
        let z = t.linear(&self.fc, x);
        let c = z.dims()[1];
        Ok(ModelOutput::flat(z * self.scale.val().reshape([1, c])))
    }
}

/// `fc1` bypasses the tracker.
#[derive(Module, Debug)]
struct Unrouted {
    fc1: Linear,
    fc2: Linear,
}

impl Attributable for Unrouted {
    fn forward_tracked(&self, input: &Input, t: &mut Tracker<'_>) -> MResult<ModelOutput> {
        let x = input.flat_tensor("Unrouted")?;
        let h = relu(self.fc1.forward(x));
        Ok(ModelOutput::flat(t.linear(&self.fc2, h)))
    }
}

/// One layer applied twice (tied weights).
#[derive(Module, Debug)]
struct Shared {
    fc: Linear,
}

impl Attributable for Shared {
    fn forward_tracked(&self, input: &Input, t: &mut Tracker<'_>) -> MResult<ModelOutput> {
        let x = input.flat_tensor("Shared")?;
        let h = relu(t.linear(&self.fc, x));
        Ok(ModelOutput::flat(t.linear(&self.fc, h)))
    }
}

fn two_linear(d: usize, h: usize, c: usize) -> AnyModel {
    let dev = cpu();
    AnyModel::new(reinit_seeded(
        TwoLinear {
            fc1: LinearConfig::new(d, h).init(&dev),
            fc2: LinearConfig::new(h, c).init(&dev),
        },
        1,
    ))
}

fn token_net(vocab: usize) -> AnyModel {
    let dev = cpu();
    AnyModel::new(reinit_seeded(
        TokenNet {
            emb: EmbeddingConfig::new(vocab, 6).init(&dev),
            ln: LayerNormConfig::new(6).init(&dev),
            proj: LinearConfig::new(6, 5).init(&dev),
            head: LinearConfig::new(5, 3).init(&dev),
        },
        2,
    ))
}

/// `n` token sequences of lengths 2..=6 (so batches pad) over `vocab` ids.
fn token_rows(n: usize, vocab: usize) -> (Vec<u32>, Vec<usize>) {
    let mut ids = Vec::new();
    let mut offsets = vec![0];
    for i in 0..n {
        for t in 0..(2 + (i * 3) % 5) {
            ids.push(((i * 31 + t * 17 + 3) % vocab) as u32);
        }
        offsets.push(ids.len());
    }
    (ids, offsets)
}

fn token_classes(n: usize, vocab: usize, classes: usize) -> Dataset {
    let (ids, offsets) = token_rows(n, vocab);
    Dataset::new(
        "tokens",
        Features::Tokens {
            ids,
            offsets,
            vocab_size: vocab,
        },
        Targets::Classes {
            labels: (0..n).map(|i| i % classes).collect(),
            n_classes: classes,
        },
    )
    .unwrap()
}

fn lm_corpus(n: usize, vocab: usize) -> Dataset {
    let (ids, offsets) = token_rows(n, vocab);
    Dataset::new(
        "corpus",
        Features::Tokens {
            ids,
            offsets,
            vocab_size: vocab,
        },
        Targets::NextToken {
            prompt_lens: (0..n).map(|i| i % 2).collect(),
            vocab_size: vocab,
        },
    )
    .unwrap()
}

/// Max abs difference over max abs reference value.
fn max_rel(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .fold(0.0, f64::max);
    let scale = b.iter().map(|y| (*y as f64).abs()).fold(0.0, f64::max);
    diff / scale.max(1e-30)
}

/// Per-example gradients from batches (with padding) equal batch-of-one
/// autodiff within 1e-5 of the largest entry, in f64.
fn check_equal(model: &AnyModel, data: &Dataset, output: impl OutputFn + 'static, what: &str) {
    let model = model.cast(FloatDType::F64);
    let engine = GradEngine::params()
        .output(output)
        .batch_size(4)
        .block_rows(3)
        .build(&model, &cpu())
        .unwrap();
    let n = data.len();
    let fast = engine.per_sample_matrix(data, 0..n).unwrap();
    let reference = engine.per_sample_reference_matrix(data, 0..n).unwrap();
    assert_eq!(
        engine.dim(),
        model.n_params(),
        "{what}: every layer selected"
    );
    let e = max_rel(&fast, &reference);
    assert!(e < 1e-5, "{what}: max abs error {e} of the largest entry");
    assert!(
        reference.iter().any(|v| *v != 0.0),
        "{what}: gradients must not vanish"
    );
}

#[test]
fn linear_and_conv_layers_of_a_user_model_match_autodiff() {
    check_equal(
        &two_linear(6, 5, 3),
        &synthetic(9, &[6], 3, 4),
        CrossEntropy,
        "two linear layers",
    );
    let dev = cpu();
    let conv = AnyModel::new(reinit_seeded(
        ConvNet {
            conv: Conv2dConfig::new([2, 3], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(&dev),
            fc: LinearConfig::new(3 * 5 * 5, 4).init(&dev),
        },
        3,
    ));
    check_equal(
        &conv,
        &synthetic(7, &[2, 5, 5], 4, 5),
        CrossEntropy,
        "conv2d",
    );
}

#[test]
fn embedding_layer_norm_and_sequence_linear_match_autodiff() {
    let model = token_net(13);
    let kinds: Vec<ParamLayerKind> = model.param_layers().iter().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        [
            ParamLayerKind::Embedding,
            ParamLayerKind::LayerNorm,
            ParamLayerKind::Linear,
            ParamLayerKind::Linear
        ]
    );
    check_equal(&model, &token_classes(10, 13, 3), CrossEntropy, "token net");
}

#[test]
fn attention_blocks_match_autodiff_for_a_classifier_and_a_language_model() {
    let dev = cpu();
    let cfg = TransformerConfig {
        vocab: 11,
        max_len: 8,
        d_model: 8,
        n_heads: 2,
        d_ff: 12,
        n_layers: 1,
    };
    let clf = AnyModel::new(TransformerClassifier::new(&cfg, 2, 4, &dev).unwrap());
    check_equal(
        &clf,
        &token_classes(9, 11, 2),
        CrossEntropy,
        "transformer classifier",
    );
    let lm = AnyModel::new(TransformerLm::new(&cfg, 5, &dev).unwrap());
    let corpus = lm_corpus(8, 11);
    check_equal(
        &lm,
        &corpus,
        CrossEntropy,
        "transformer LM, mean token loss",
    );
    check_equal(
        &lm,
        &corpus,
        CompletionLogProb,
        "transformer LM, completion log-prob",
    );
    check_equal(
        &lm,
        &corpus,
        TokenLoss(0),
        "transformer LM, first token loss",
    );
}

#[test]
fn sequence_layers_project_group_and_sum_like_materialised_gradients() {
    let dev = cpu();
    let cfg = TransformerConfig {
        vocab: 11,
        max_len: 8,
        d_model: 8,
        n_heads: 2,
        d_ff: 12,
        n_layers: 1,
    };
    let model = AnyModel::new(TransformerClassifier::new(&cfg, 2, 6, &dev).unwrap());
    let data = token_classes(10, 11, 2);
    let engine = GradEngine::params()
        .batch_size(4)
        .build(&model, &dev)
        .unwrap();
    let (n, p) = (data.len(), engine.dim());
    let full = engine.per_sample_matrix(&data, 0..n).unwrap();
    // Kronecker projection straight from the per-token factors.
    let kron = KroneckerProjector::new(engine.layout(), 64, 9).unwrap();
    let fast = engine.projected_matrix(&data, 0..n, &kron).unwrap();
    let mut slow = vec![0.0f32; n * 64];
    kron.project(n, &full, &mut slow).unwrap();
    assert!(max_rel(&fast, &slow) < 1e-4, "kronecker projection");
    // Group gradients = sums of per-example gradients.
    let grouping = Grouping::from_assignment(&(0..n).map(|i| i % 3).collect::<Vec<_>>()).unwrap();
    let groups = engine.group(&data, &grouping, Reduce::Sum, None).unwrap();
    let mut sums = vec![0.0f32; 3 * p];
    for i in 0..n {
        for j in 0..p {
            sums[(i % 3) * p + j] += full[i * p + j];
        }
    }
    assert!(max_rel(&groups, &sums) < 1e-4, "group gradients");
    let w = values(n, 3);
    let ws = engine.weighted_sum(&data, 0..n, Some(&w)).unwrap();
    let mut want = vec![0.0f32; p];
    for i in 0..n {
        for j in 0..p {
            want[j] += w[i] * full[i * p + j];
        }
    }
    assert!(max_rel(&ws, &want) < 1e-4, "weighted sum");
}

#[test]
fn an_untracked_parameter_is_an_error_that_names_it() {
    let dev = cpu();
    let model = AnyModel::new(Scaled {
        fc: LinearConfig::new(4, 3).init(&dev),
        scale: Param::from_tensor(Tensor::ones([3], &dev)),
    });
    assert_eq!(model.untracked_params()[0].path, "scale");
    let e = GradEngine::params()
        .build(&model, &dev)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`scale`") && e.contains("LayerSelection::Tracked"),
        "{e}"
    );
    // Held fixed explicitly: the tracked layer's gradients still match autodiff.
    let data = synthetic(6, &[4], 3, 2);
    let model = model.cast(FloatDType::F64);
    let engine = GradEngine::params()
        .selection(LayerSelection::Tracked)
        .build(&model, &dev)
        .unwrap();
    assert_eq!(engine.dim(), 15);
    let fast = engine.per_sample_matrix(&data, 0..6).unwrap();
    let reference = engine.per_sample_reference_matrix(&data, 0..6).unwrap();
    assert!(max_rel(&fast, &reference) < 1e-5);
}

#[test]
fn unrouted_and_shared_layers_are_errors_that_name_them() {
    let dev = cpu();
    let data = synthetic(4, &[4], 3, 1);
    let unrouted = AnyModel::new(Unrouted {
        fc1: LinearConfig::new(4, 5).init(&dev),
        fc2: LinearConfig::new(5, 3).init(&dev),
    });
    let engine = GradEngine::params().build(&unrouted, &dev).unwrap();
    let e = engine
        .per_sample_matrix(&data, 0..4)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not routed") && e.contains("fc1"), "{e}");
    let shared = AnyModel::new(Shared {
        fc: LinearConfig::new(4, 4).init(&dev),
    });
    let data = synthetic(4, &[4], 4, 1);
    let engine = GradEngine::params().build(&shared, &dev).unwrap();
    let e = engine
        .per_sample_matrix(&data, 0..4)
        .unwrap_err()
        .to_string();
    assert!(e.contains("fc") && e.contains("more than once"), "{e}");
}
