//! Small transformers (Vaswani et al. 2017, pre-LayerNorm blocks) that
//! implement [`Attributable`] the way a user model would: every parameter
//! layer goes through the [`Tracker`].
//!
//! - [`TransformerClassifier`]: token + position embeddings, `n_layers`
//!   blocks of bidirectional self-attention (padding keys masked) and a GELU
//!   MLP, a final LayerNorm, the masked mean over tokens (the penultimate
//!   features) and a linear head.
//! - [`TransformerLm`]: the same blocks with causal attention and a per-token
//!   linear head over the vocabulary (a decoder-only language model; logits
//!   `[b, T, vocab]`, position `t` predicting token `t + 1`).
//!
//! [`SelfAttention`] and [`Block`] are public, so a model of one's own can
//! reuse them.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use wellspring_core::{Dataset, Features, Targets};

use crate::error::{ModelError, Result};
use crate::net::Input;
use crate::track::{Attributable, ModelOutput, Tracker};

/// Sizes of a [`TransformerClassifier`] or [`TransformerLm`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransformerConfig {
    /// Vocabulary size (token ids `0..vocab`).
    pub vocab: usize,
    /// Longest sequence (position embeddings).
    pub max_len: usize,
    /// Model width.
    pub d_model: usize,
    /// Attention heads (`d_model` divisible by it).
    pub n_heads: usize,
    /// Hidden width of each block's MLP.
    pub d_ff: usize,
    /// Blocks.
    pub n_layers: usize,
}

impl TransformerConfig {
    /// A small configuration for CPU experiments: width 32, 2 heads, MLP 64,
    /// 2 blocks.
    pub fn small(vocab: usize, max_len: usize) -> Self {
        Self {
            vocab,
            max_len,
            d_model: 32,
            n_heads: 2,
            d_ff: 64,
            n_layers: 2,
        }
    }

    /// Checks every size (≥ 1, `d_model` divisible by `n_heads`).
    pub fn check(&self) -> Result<()> {
        for (field, v) in [
            ("vocab", self.vocab),
            ("max_len", self.max_len),
            ("d_model", self.d_model),
            ("n_heads", self.n_heads),
            ("d_ff", self.d_ff),
            ("n_layers", self.n_layers),
        ] {
            if v == 0 {
                return Err(ModelError::config(
                    format!("TransformerConfig.{field}"),
                    v,
                    "must be at least 1",
                ));
            }
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(ModelError::config(
                "TransformerConfig.n_heads",
                self.n_heads,
                format!("must divide d_model = {}", self.d_model),
            ));
        }
        Ok(())
    }
}

/// Multi-head self-attention with tracked query, key, value and output
/// projections. `causal` masks future positions; padding keys (mask 0) are
/// always masked, so examples in a padded batch do not see each other's
/// padding and a batch gives each example exactly its batch-of-one output.
#[derive(Module, Debug)]
pub struct SelfAttention {
    /// Query projection.
    pub query: Linear,
    /// Key projection.
    pub key: Linear,
    /// Value projection.
    pub value: Linear,
    /// Output projection.
    pub output: Linear,
    /// Heads.
    pub n_heads: usize,
    /// Mask future positions.
    pub causal: bool,
}

impl SelfAttention {
    /// A freshly initialised layer (burn's default `Linear` init).
    pub fn new(d_model: usize, n_heads: usize, causal: bool, device: &Device) -> Self {
        let lin = || LinearConfig::new(d_model, d_model).init(device);
        Self {
            query: lin(),
            key: lin(),
            value: lin(),
            output: lin(),
            n_heads,
            causal,
        }
    }

    /// `x: [b, T, d]`, `mask: [b, T]` (1 = token) → `[b, T, d]`.
    pub fn forward(&self, x: Tensor<3>, mask: &Tensor<2>, t: &mut Tracker<'_>) -> Tensor<3> {
        let [b, len, d] = x.dims();
        let h = self.n_heads;
        let dk = d / h;
        let split = |y: Tensor<3>| y.reshape([b, len, h, dk]).swap_dims(1, 2);
        let q = split(t.linear(&self.query, x.clone()));
        let k = split(t.linear(&self.key, x.clone()));
        let v = split(t.linear(&self.value, x));
        let scores = q.matmul(k.swap_dims(2, 3)) / (dk as f64).sqrt();
        let bias = attention_bias(mask, self.causal);
        let att = softmax(scores + bias, 3);
        let ctx = att.matmul(v).swap_dims(1, 2).reshape([b, len, d]);
        t.linear(&self.output, ctx)
    }
}

/// Additive mask `[b, 1, T, T]`: `-1e9` for padding keys (and future keys
/// when `causal`), 0 elsewhere; `exp` of it is exactly 0 in f32/f64.
fn attention_bias(mask: &Tensor<2>, causal: bool) -> Tensor<4> {
    let [b, len] = mask.dims();
    let m: Vec<f32> = mask
        .clone()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("mask converts to f32");
    let mut bias = vec![0.0f32; b * len * len];
    for r in 0..b {
        for i in 0..len {
            for j in 0..len {
                if m[r * len + j] == 0.0 || (causal && j > i) {
                    bias[(r * len + i) * len + j] = -1.0e9;
                }
            }
        }
    }
    Tensor::from_data(
        TensorData::new(bias, [b, 1, len, len]),
        (&mask.device(), mask.dtype()),
    )
}

/// A pre-LayerNorm transformer block: `x + attn(ln1(x))`, then
/// `x + ff2(gelu(ff1(ln2(x))))`.
#[derive(Module, Debug)]
pub struct Block {
    /// LayerNorm before attention.
    pub ln1: LayerNorm,
    /// Self-attention.
    pub attn: SelfAttention,
    /// LayerNorm before the MLP.
    pub ln2: LayerNorm,
    /// MLP input layer.
    pub ff1: Linear,
    /// MLP output layer.
    pub ff2: Linear,
}

impl Block {
    /// A freshly initialised block.
    pub fn new(cfg: &TransformerConfig, causal: bool, device: &Device) -> Self {
        Self {
            ln1: LayerNormConfig::new(cfg.d_model).init(device),
            attn: SelfAttention::new(cfg.d_model, cfg.n_heads, causal, device),
            ln2: LayerNormConfig::new(cfg.d_model).init(device),
            ff1: LinearConfig::new(cfg.d_model, cfg.d_ff).init(device),
            ff2: LinearConfig::new(cfg.d_ff, cfg.d_model).init(device),
        }
    }

    /// `[b, T, d]` → `[b, T, d]`.
    pub fn forward(&self, x: Tensor<3>, mask: &Tensor<2>, t: &mut Tracker<'_>) -> Tensor<3> {
        let n1 = t.layer_norm(&self.ln1, x.clone());
        let x = x + self.attn.forward(n1, mask, t);
        let n2 = t.layer_norm(&self.ln2, x.clone());
        let hdn = gelu(t.linear(&self.ff1, n2));
        x + t.linear(&self.ff2, hdn)
    }
}

/// Token and position embeddings plus blocks: the shared trunk.
#[derive(Module, Debug)]
pub struct Trunk {
    /// Token embedding `[vocab, d]`.
    pub tokens: Embedding,
    /// Position embedding `[max_len, d]`.
    pub positions: Embedding,
    /// The blocks.
    pub blocks: Vec<Block>,
    /// Final LayerNorm.
    pub ln_f: LayerNorm,
}

impl Trunk {
    fn new(cfg: &TransformerConfig, causal: bool, device: &Device) -> Self {
        Self {
            tokens: EmbeddingConfig::new(cfg.vocab, cfg.d_model).init(device),
            positions: EmbeddingConfig::new(cfg.max_len, cfg.d_model).init(device),
            blocks: (0..cfg.n_layers)
                .map(|_| Block::new(cfg, causal, device))
                .collect(),
            ln_f: LayerNormConfig::new(cfg.d_model).init(device),
        }
    }

    /// `ids, mask: [b, T]` → hidden states `[b, T, d]`.
    fn forward(
        &self,
        ids: Tensor<2, Int>,
        mask: &Tensor<2>,
        t: &mut Tracker<'_>,
    ) -> Result<Tensor<3>> {
        let [b, len] = ids.dims();
        let max_len = self.positions.weight.dims()[0];
        if len > max_len {
            return Err(ModelError::Params {
                reason: format!(
                    "a batch of {len} tokens is longer than the transformer's {max_len} positions"
                ),
            });
        }
        let pos: Vec<i64> = (0..b).flat_map(|_| 0..len as i64).collect();
        let pos = Tensor::<2, Int>::from_data(TensorData::new(pos, [b, len]), &ids.device());
        let mut x = t.embedding(&self.tokens, ids) + t.embedding(&self.positions, pos);
        for block in &self.blocks {
            x = block.forward(x, mask, t);
        }
        Ok(t.layer_norm(&self.ln_f, x))
    }
}

fn check_tokens(data: &Dataset, vocab: usize, max_len: usize, who: &str) -> Result<()> {
    let Features::Tokens {
        vocab_size,
        offsets,
        ..
    } = data.features()
    else {
        return Err(ModelError::data(
            data.name(),
            format!("{who} takes token sequences, the dataset holds dense features"),
        ));
    };
    if *vocab_size > vocab {
        return Err(ModelError::data(
            data.name(),
            format!("token vocabulary has {vocab_size} ids, the {who} embeds {vocab}"),
        ));
    }
    if let Some(i) = (0..data.len()).find(|&i| offsets[i + 1] - offsets[i] > max_len) {
        return Err(ModelError::data(
            data.name(),
            format!(
                "row {i} has {} tokens, the {who} has {max_len} positions (truncate when encoding)",
                offsets[i + 1] - offsets[i]
            ),
        ));
    }
    Ok(())
}

/// A transformer text classifier (the zoo's SST-2 model).
#[derive(Module, Debug)]
pub struct TransformerClassifier {
    /// Embeddings and blocks.
    pub trunk: Trunk,
    /// Linear head on the masked mean of the final hidden states.
    pub head: Linear,
}

impl TransformerClassifier {
    /// A classifier with `n_classes` outputs, every parameter drawn from
    /// `seed` ([`crate::init::reinit_seeded`]: PyTorch's default bounds).
    pub fn new(
        cfg: &TransformerConfig,
        n_classes: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        cfg.check()?;
        if n_classes < 2 {
            return Err(ModelError::config(
                "TransformerClassifier n_classes",
                n_classes,
                "must be at least 2",
            ));
        }
        Ok(crate::init::reinit_seeded(
            Self {
                trunk: Trunk::new(cfg, false, device),
                head: LinearConfig::new(cfg.d_model, n_classes).init(device),
            },
            seed,
        ))
    }
}

impl Attributable for TransformerClassifier {
    fn forward_tracked(&self, input: &Input, t: &mut Tracker<'_>) -> Result<ModelOutput> {
        let (ids, mask) = input.token_tensors("TransformerClassifier")?;
        let [b, len] = ids.dims();
        let hdn = self.trunk.forward(ids, &mask, t)?;
        let d = hdn.dims()[2];
        let w = mask.clone().reshape([b, len, 1]);
        let count = mask.sum_dim(1).clamp_min(1.0); // [b, 1]
        let pooled = (hdn * w).sum_dim(1).reshape([b, d]) / count;
        let logits = t.linear(&self.head, pooled.clone());
        Ok(ModelOutput::flat(logits).with_features(pooled))
    }

    fn check_dataset(&self, data: &Dataset) -> Result<()> {
        let vocab = self.trunk.tokens.weight.dims()[0];
        let max_len = self.trunk.positions.weight.dims()[0];
        check_tokens(data, vocab, max_len, "TransformerClassifier")?;
        let c = self.head.weight.dims()[1];
        match data.targets() {
            Targets::Classes { n_classes, .. } if *n_classes == c => Ok(()),
            Targets::Classes { n_classes, .. } => Err(ModelError::data(
                data.name(),
                format!("dataset has {n_classes} classes, the classifier has {c} outputs"),
            )),
            _ => Err(ModelError::data(
                data.name(),
                "the TransformerClassifier needs class labels",
            )),
        }
    }
}

/// A decoder-only transformer language model (the zoo's SST-2 LM).
#[derive(Module, Debug)]
pub struct TransformerLm {
    /// Embeddings and causal blocks.
    pub trunk: Trunk,
    /// Per-token linear head over the vocabulary.
    pub head: Linear,
}

impl TransformerLm {
    /// A language model, every parameter drawn from `seed` (see
    /// [`TransformerClassifier::new`]).
    pub fn new(cfg: &TransformerConfig, seed: u64, device: &Device) -> Result<Self> {
        cfg.check()?;
        Ok(crate::init::reinit_seeded(
            Self {
                trunk: Trunk::new(cfg, true, device),
                head: LinearConfig::new(cfg.d_model, cfg.vocab).init(device),
            },
            seed,
        ))
    }
}

impl TransformerLm {
    /// Greedy decoding: `prompt` followed by the `new_tokens` most likely
    /// next tokens, one at a time (never id `skip`, e.g. `<unk>`, when
    /// given), stopping at the model's context length. Returns the new
    /// tokens only. Errors on an empty prompt or an id out of the vocabulary.
    pub fn generate(
        &self,
        prompt: &[u32],
        new_tokens: usize,
        skip: Option<u32>,
        device: &Device,
    ) -> Result<Vec<u32>> {
        let vocab = self.trunk.tokens.weight.dims()[0];
        let max_len = self.trunk.positions.weight.dims()[0];
        if prompt.is_empty() {
            return Err(ModelError::Params {
                reason: "generation needs a prompt of at least one token".into(),
            });
        }
        if let Some(&bad) = prompt.iter().find(|&&t| t as usize >= vocab) {
            return Err(ModelError::Params {
                reason: format!("prompt token {bad} is outside the vocabulary of {vocab}"),
            });
        }
        let model = self.valid();
        let mut seq: Vec<u32> = prompt.to_vec();
        let mut out = Vec::with_capacity(new_tokens);
        while out.len() < new_tokens && seq.len() < max_len {
            let len = seq.len();
            let ids = Tensor::<2, Int>::from_data(
                TensorData::new(seq.iter().map(|&t| t as i64).collect::<Vec<_>>(), [1, len]),
                device,
            );
            let mask = Tensor::<2>::ones([1, len], device);
            let logits = match model
                .forward_tracked(&Input::Tokens { ids, mask }, &mut Tracker::passive())?
                .logits
            {
                crate::track::Logits::Seq(z) => z,
                crate::track::Logits::Flat(z) => z.reshape([1, 1, vocab]),
            };
            let last: Vec<f32> = logits
                .narrow(1, len - 1, 1)
                .reshape([vocab])
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("logits convert to f32");
            let next = last
                .iter()
                .enumerate()
                .filter(|(k, _)| Some(*k as u32) != skip)
                .fold((0usize, f32::NEG_INFINITY), |best, (k, &v)| {
                    if v > best.1 { (k, v) } else { best }
                })
                .0 as u32;
            seq.push(next);
            out.push(next);
        }
        Ok(out)
    }
}

impl Attributable for TransformerLm {
    fn forward_tracked(&self, input: &Input, t: &mut Tracker<'_>) -> Result<ModelOutput> {
        let (ids, mask) = input.token_tensors("TransformerLm")?;
        let hdn = self.trunk.forward(ids, &mask, t)?;
        Ok(ModelOutput::seq(t.linear(&self.head, hdn)))
    }

    fn check_dataset(&self, data: &Dataset) -> Result<()> {
        let vocab = self.trunk.tokens.weight.dims()[0];
        let max_len = self.trunk.positions.weight.dims()[0];
        check_tokens(data, vocab, max_len, "TransformerLm")?;
        match data.targets() {
            Targets::NextToken { .. } => Ok(()),
            _ => Err(ModelError::data(
                data.name(),
                "the TransformerLm needs next-token targets (Targets::NextToken)",
            )),
        }
    }
}
