//! Self-supervised image features for the brittleness paper's main claim
//! (self-supervised features beat supervised ones for ESVM and ℓ2 support
//! estimates; brittleness paper §3, appendix A.3): a small SimCLR encoder
//! (Chen et al. 2020) trained in-framework.
//!
//! Two seeded augmentations of every image ([`AugmentParams`]) go through an
//! encoder of this crate (MLP, CNN, ResNet-9 or FiMO MLP body)
//! and a 2-layer projection head `g(h) = W₂ ReLU(W₁ h)`; the [`nt_xent`] loss
//! pulls the two views of an image together and pushes the other `2B − 2`
//! views away; Adam updates everything. The encoder is returned as a
//! [`Model`] whose body gives the representation `h` and whose head is `W₁`,
//! so it plugs straight into `wellspring_attrib::FeatureSpace::Encoder` (head
//! ignored), or its features from [`ssl_features`] into `FeatureSpace::given`.
//!
//! The paper trains MoCo / SimCLR ResNet-18s for 800 epochs on CIFAR-10 with
//! the Lightly library; ours is the CPU-sized stand-in (same objective as
//! SimCLR, smaller encoder, fewer epochs, augmentations for small images).
//! `wellspring_eval::CachedSimClr` stores trained encoders in the harness
//! cache.

mod augment;
mod ntxent;

pub use augment::{AugmentParams, ImageShape};
pub use ntxent::nt_xent;
use ntxent::nt_xent_stacked;

use crate::burn_types::Device;
use crate::{Input, InputKind, Mode, Model, ModelConfig, Net, features};
use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::relu;
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use wellspring_core::{ChaCha8Rng, Dataset, Features, Targets, derive_seed, derive_seed_str, rng};

use crate::error::{ModelError, Result};

/// Encoder plus projection head, trained jointly.
#[derive(Module, Debug)]
struct SimClrNet {
    encoder: Net,
    proj: Net,
}

impl SimClrNet {
    /// Projections `z = W₂ ReLU(W₁ h)` of a batch; dropout (if the encoder
    /// has any) draws from `train_rng`, eval mode without one.
    fn project(&self, x: Input, mut train_rng: Option<&mut ChaCha8Rng>) -> Tensor<2> {
        let mode = match train_rng.as_deref_mut() {
            Some(r) => Mode::Train(r),
            None => Mode::Eval,
        };
        let hidden = relu(self.encoder.forward(x, mode).logits);
        let mode = match train_rng {
            Some(r) => Mode::Train(r),
            None => Mode::Eval,
        };
        self.proj.forward(Input::Flat(hidden), mode).logits
    }
}

/// Checked SimCLR settings (linfa-style builder; [`SimClr::check`] validates).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimClr {
    encoder: ModelConfig,
    proj_hidden: Option<usize>,
    proj_dim: usize,
    temperature: f64,
    epochs: usize,
    batch_size: usize,
    lr: f64,
    weight_decay: f64,
    augment: AugmentParams,
    seed: u64,
}

/// A trained SimCLR model.
#[derive(Clone, Debug)]
pub struct SimClrFit {
    /// The encoder: body = representation `h`, head = the projection's first
    /// layer `W₁` (its output is not a class score; use the features).
    pub encoder: Model,
    /// The projection's second layer `W₂` (as a `LogReg` net), `None` when the
    /// encoder came from the cache.
    pub projection: Option<Model>,
    /// Mean training NT-Xent loss per epoch (empty if unknown).
    pub history: Vec<f64>,
    /// Whether the encoder was loaded from the cache.
    pub from_cache: bool,
}

impl SimClr {
    /// SimCLR with `encoder`'s body (its `n_out` is replaced by the
    /// projection's hidden width): projection hidden width = the feature
    /// width, output 64, τ = 0.5, 20 epochs, batch 256, Adam lr 1e-3, weight
    /// decay 1e-6, digit augmentations, seed 0.
    pub fn params(encoder: ModelConfig) -> Self {
        Self {
            encoder,
            proj_hidden: None,
            proj_dim: 64,
            temperature: 0.5,
            epochs: 20,
            batch_size: 256,
            lr: 1e-3,
            weight_decay: 1e-6,
            augment: AugmentParams::default(),
            seed: 0,
        }
    }

    /// Hidden width of the projection head (default: the feature width).
    pub fn proj_hidden(mut self, d: usize) -> Self {
        self.proj_hidden = Some(d);
        self
    }

    /// Output width of the projection head (SimCLR: 128).
    pub fn proj_dim(mut self, d: usize) -> Self {
        self.proj_dim = d;
        self
    }

    /// NT-Xent temperature τ (> 0; SimCLR: 0.1–0.5).
    pub fn temperature(mut self, t: f64) -> Self {
        self.temperature = t;
        self
    }

    /// Passes over the data (≥ 1).
    pub fn epochs(mut self, e: usize) -> Self {
        self.epochs = e;
        self
    }

    /// Images per step (≥ 2; each step sees `2 ×` this many views).
    pub fn batch_size(mut self, b: usize) -> Self {
        self.batch_size = b;
        self
    }

    /// Adam learning rate (> 0).
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }

    /// L2 weight decay (≥ 0).
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }

    /// Augmentations.
    pub fn augment(mut self, a: AugmentParams) -> Self {
        self.augment = a;
        self
    }

    /// Seed of the initialisation, shuffles, augmentations and dropout.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Errors on a value outside its range or an encoder without a body.
    pub fn check(&self) -> Result<()> {
        self.encoder_config()?;
        self.augment.check()?;
        if self.proj_dim == 0 || self.proj_hidden == Some(0) {
            return Err(ModelError::config("projection width", 0, "must be ≥ 1"));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(ModelError::config(
                "temperature",
                self.temperature,
                "must be finite and > 0",
            ));
        }
        if self.epochs == 0 {
            return Err(ModelError::config("epochs", 0, "must be ≥ 1"));
        }
        if self.batch_size < 2 {
            return Err(ModelError::config(
                "batch_size",
                self.batch_size,
                "must be ≥ 2 (NT-Xent needs negatives)",
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(ModelError::config("lr", self.lr, "must be finite and > 0"));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(ModelError::config(
                "weight_decay",
                self.weight_decay,
                "must be finite and ≥ 0",
            ));
        }
        Ok(())
    }

    /// The encoder's config with its head resized to the projection's hidden width.
    fn encoder_config(&self) -> Result<ModelConfig> {
        let mut cfg = self.encoder.clone();
        let hidden = self.proj_hidden.unwrap_or(cfg.feature_dim());
        match &mut cfg {
            ModelConfig::Mlp {
                n_out, hidden: h, ..
            } if !h.is_empty() => *n_out = hidden,
            ModelConfig::Cnn { n_out, .. }
            | ModelConfig::ResNet9 { n_out, .. }
            | ModelConfig::FimoMlp { n_out, .. } => *n_out = hidden,
            other => {
                return Err(ModelError::config(
                    "SimCLR encoder",
                    other.name(),
                    "needs an image encoder with a body (Mlp with hidden layers, Cnn, ResNet9, \
                     FimoMlp); LogReg has no representation to learn and TextBag takes tokens",
                ));
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// The untrained encoder and projection `fit` starts from.
    pub fn initial_models(&self, device: &Device) -> Result<(Model, Model)> {
        let cfg = self.encoder_config()?;
        let hidden = cfg.n_out();
        let enc = Model::new(cfg, derive_seed_str(self.seed, "encoder"), device)?;
        let proj = Model::new(
            ModelConfig::LogReg {
                d_in: hidden,
                n_out: self.proj_dim,
            },
            derive_seed_str(self.seed, "projection"),
            device,
        )?;
        Ok((enc, proj))
    }

    /// Trains the encoder on the images of `data` (labels are not used).
    pub fn fit(&self, data: &Dataset, device: &Device) -> Result<SimClrFit> {
        self.check()?;
        let images = Images::of(data, &self.encoder_config()?)?;
        let (enc, proj) = self.initial_models(device)?;
        let ad = device.clone().autodiff();
        let mut net = SimClrNet {
            encoder: enc.trainable(device).net,
            proj: proj.trainable(device).net,
        };
        let wd =
            (self.weight_decay > 0.0).then(|| WeightDecayConfig::new(self.weight_decay as f32));
        let mut optim = AdamConfig::new().with_weight_decay(wd).init();
        let mut dropout = rng(derive_seed_str(self.seed, "dropout"));
        let n = data.len();
        let mut order: Vec<usize> = (0..n).collect();
        let mut history = Vec::with_capacity(self.epochs);
        let mut step = 0u64;
        for epoch in 0..self.epochs {
            shuffle(
                &mut order,
                derive_seed(derive_seed_str(self.seed, "shuffle"), epoch as u64),
            );
            let (mut sum, mut count) = (0.0f64, 0usize);
            for chunk in order.chunks(self.batch_size).filter(|c| c.len() >= 2) {
                let seed = derive_seed(derive_seed_str(self.seed, "augment"), step);
                let x = images.views(chunk, &self.augment, seed, &enc.config, &ad);
                let z = net.project(x, Some(&mut dropout));
                let loss = nt_xent_stacked(z, chunk.len(), self.temperature);
                let value: f32 = loss.clone().into_scalar();
                if !value.is_finite() {
                    return Err(ModelError::Training {
                        reason: format!(
                            "SimCLR: NT-Xent is {value} at epoch {} step {step}; lower the learning rate",
                            epoch + 1
                        ),
                    });
                }
                let grads = GradientsParams::from_grads(loss.backward(), &net);
                net = optim.step(self.lr, net, grads);
                sum += value as f64;
                count += 1;
                step += 1;
            }
            history.push(sum / count.max(1) as f64);
        }
        let encoder = Model {
            config: enc.config,
            net: net.encoder,
        }
        .valid();
        let projection = Model {
            config: proj.config,
            net: net.proj,
        }
        .valid();
        Ok(SimClrFit {
            encoder,
            projection: Some(projection),
            history,
            from_cache: false,
        })
    }

    /// Mean NT-Xent of `encoder` + `projection` (eval mode) over `data` in
    /// batches of `batch_size`, with views drawn from `seed`: a fixed yardstick
    /// to compare models (e.g. before and after training).
    pub fn contrastive_loss(
        &self,
        encoder: &Model,
        projection: &Model,
        data: &Dataset,
        device: &Device,
        seed: u64,
    ) -> Result<f64> {
        self.check()?;
        let images = Images::of(data, &encoder.config)?;
        let device = device.clone().without_autodiff();
        let net = SimClrNet {
            encoder: encoder.to_device(&device).net,
            proj: projection.to_device(&device).net,
        };
        let idx: Vec<usize> = (0..data.len()).collect();
        let (mut sum, mut count) = (0.0f64, 0usize);
        for (s, chunk) in idx.chunks(self.batch_size).enumerate() {
            if chunk.len() < 2 {
                continue;
            }
            let x = images.views(
                chunk,
                &self.augment,
                derive_seed(seed, s as u64),
                &encoder.config,
                &device,
            );
            let z = net.project(x, None);
            let v: f32 = nt_xent_stacked(z, chunk.len(), self.temperature).into_scalar();
            sum += v as f64 * chunk.len() as f64;
            count += chunk.len();
        }
        if count == 0 {
            return Err(ModelError::config(
                "contrastive loss data",
                data.len(),
                "needs at least 2 images",
            ));
        }
        Ok(sum / count as f64)
    }
}

/// Representations `h` of every row of `data` under a (SimCLR) encoder,
/// row-major `n × encoder.feature_dim()`: what ESVM and ℓ2 compare. The
/// encoder's head and `data`'s labels are ignored.
pub fn ssl_features(encoder: &Model, data: &Dataset, device: &Device) -> Result<Vec<f32>> {
    let k = encoder.n_outputs();
    // the head's width is not a class count: evaluate on neutral targets
    let targets = if k >= 2 {
        Targets::Classes {
            labels: vec![0; data.len()],
            n_classes: k,
        }
    } else {
        Targets::Regression {
            values: vec![0.0; data.len()],
            n_targets: 1,
        }
    };
    let neutral = Dataset::new(data.name(), data.features().clone(), targets)?;
    features(encoder, &neutral, device)
}

/// The images of a dataset with their geometry and pixel statistics.
struct Images<'a> {
    values: &'a [f32],
    shape: ImageShape,
    mean: f32,
    std: f32,
}

impl<'a> Images<'a> {
    fn of(data: &'a Dataset, cfg: &ModelConfig) -> Result<Self> {
        let (values, ex_shape) = match data.features() {
            Features::Dense { values, shape } => (values.as_slice(), shape.as_slice()),
            Features::Tokens { .. } => {
                return Err(ModelError::config(
                    format!("SimCLR data {}", data.name()),
                    "tokens",
                    "needs dense image features",
                ));
            }
        };
        if data.len() < 2 {
            return Err(ModelError::config(
                format!("SimCLR data {}", data.name()),
                format!("{} images", data.len()),
                "needs at least 2 images",
            ));
        }
        let shape = ImageShape::from_example_shape(ex_shape)?;
        let fits = match cfg.input_kind() {
            InputKind::Flat { d } => d == shape.len(),
            InputKind::Image { channels, side } => {
                channels == shape.channels
                    && side.is_none_or(|s| s == shape.height && s == shape.width)
            }
            InputKind::Tokens { .. } => false,
        };
        if !fits {
            return Err(ModelError::config(
                format!("SimCLR data {}", data.name()),
                format!("images {}×{}×{}", shape.channels, shape.height, shape.width),
                format!(
                    "do not fit the {} encoder ({:?})",
                    cfg.name(),
                    cfg.input_kind()
                ),
            ));
        }
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        Ok(Self {
            values,
            shape,
            mean: mean as f32,
            std: var.sqrt().max(1e-6) as f32,
        })
    }

    /// Two augmented views of each image of `batch`, stacked `[view 1; view 2]`.
    fn views(
        &self,
        batch: &[usize],
        aug: &AugmentParams,
        seed: u64,
        cfg: &ModelConfig,
        device: &Device,
    ) -> Input {
        let len = self.shape.len();
        let b = batch.len();
        let mut buf = vec![0.0f32; 2 * b * len];
        buf.par_chunks_mut(len).enumerate().for_each(|(r, out)| {
            let i = batch[r % b];
            let mut g = rng(derive_seed(seed, r as u64));
            aug.apply(
                &self.values[i * len..(i + 1) * len],
                self.shape,
                self.mean,
                self.std,
                &mut g,
                out,
            );
        });
        let ImageShape {
            channels: c,
            height: h,
            width: w,
        } = self.shape;
        match cfg.input_kind() {
            InputKind::Image { .. } => Input::Image(Tensor::from_data(
                TensorData::new(buf, [2 * b, c, h, w]),
                device,
            )),
            _ => Input::Flat(Tensor::from_data(
                TensorData::new(buf, [2 * b, len]),
                device,
            )),
        }
    }
}

fn shuffle(order: &mut [usize], seed: u64) {
    use rand::RngExt;
    order.iter_mut().enumerate().for_each(|(k, v)| *v = k);
    let mut r = rng(seed);
    for k in (1..order.len()).rev() {
        order.swap(k, r.random_range(0..=k));
    }
}
