//! Training any [`Attributable`] burn module ([`fit_attributable`]), and the
//! [`SubsetTrainer`] seam through which TRAK's ensemble and the retraining
//! metrics get fresh models of architectures the zoo does not describe.

use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use rand::RngExt;
use wellspring_core::{Dataset, Subset, derive_seed};

use super::trainer::{EpochStats, per_example_loss};
use super::{Loss, TrainConfig};
use crate::batch::Target;
use crate::error::{ModelError, Result};
use crate::track::{AnyModel, Attributable, Logits, Tracker};

/// Trains a fresh model on `subset` of `train` with `seed` (which should
/// decide the initialisation and the data order): the retraining seam for
/// models outside the zoo. Closures `|train, subset, seed| -> Result<AnyModel>`
/// implement it.
pub trait SubsetTrainer: Send + Sync {
    /// A model trained on `subset` of `train`.
    fn train_subset(&self, train: &Dataset, subset: &Subset, seed: u64) -> Result<AnyModel>;

    /// What identifies this trainer in cache keys and reports (default:
    /// "custom trainer"; override to make cached results reusable).
    fn describe(&self) -> String {
        "custom trainer".into()
    }
}

impl<F> SubsetTrainer for F
where
    F: Fn(&Dataset, &Subset, u64) -> Result<AnyModel> + Send + Sync,
{
    fn train_subset(&self, train: &Dataset, subset: &Subset, seed: u64) -> Result<AnyModel> {
        self(train, subset, seed)
    }
}

impl std::fmt::Debug for dyn SubsetTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SubsetTrainer({})", self.describe())
    }
}

/// Per-example losses `[b]` of any model's logits: the config's loss on
/// `[b, c]` logits, the mean token cross-entropy (over weighted target
/// tokens) on per-token logits.
pub fn per_example_loss_any(
    logits: Logits,
    target: Target,
    loss: Loss,
    dataset: &str,
) -> Result<Tensor<1>> {
    match (logits, target) {
        (Logits::Seq(z), Target::Tokens { next, weight }) => {
            let [b, t, _] = z.dims();
            let logp = burn::tensor::activation::log_softmax(z, 2)
                .gather(2, next.reshape([b, t, 1]))
                .reshape([b, t]);
            let count = weight.clone().sum_dim(1).clamp_min(1.0);
            Ok(((logp * weight).sum_dim(1) / count).reshape([b]).neg())
        }
        (Logits::Seq(z), _) => Err(ModelError::data(
            dataset,
            format!(
                "the model gives per-token logits {:?}; they need next-token targets",
                z.dims()
            ),
        )),
        (Logits::Flat(z), target) => per_example_loss(z, target, loss, dataset),
    }
}

/// Trains `model` (any [`Attributable`]) on `subset` of `data` (all of it if
/// `None`) with `cfg`: minibatches shuffled with `derive_seed(cfg.seed,
/// epoch)`, burn's optimizer and `cfg.schedule`, a weighted subset's weights
/// multiplying each example's loss, the forward pass through a passive
/// tracker (so the model trains in the mode it is attributed in: no dropout).
/// Returns the trained inference copy and the per-epoch statistics. A
/// non-finite loss is an error naming the step.
pub fn fit_attributable<M: Attributable>(
    model: M,
    data: &Dataset,
    subset: Option<&Subset>,
    cfg: &TrainConfig,
    device: &Device,
) -> Result<(M, Vec<EpochStats>)> {
    cfg.check()?;
    model.check_dataset(data)?;
    let all = Subset::all(data.len());
    let subset = subset.unwrap_or(&all);
    subset.check(data.len())?;
    let n = subset.len();
    let steps = if cfg.drop_last {
        n / cfg.batch_size
    } else {
        n.div_ceil(cfg.batch_size)
    };
    if steps == 0 {
        return Err(ModelError::Training {
            reason: format!(
                "subset of {n} examples of {} gives no batch of {}",
                data.name(),
                cfg.batch_size
            ),
        });
    }
    let ad = device.clone().autodiff();
    let mut model = model.fork(&ad).train();
    let mut optim = super::optim::build(cfg);
    let mut history = Vec::with_capacity(cfg.epochs);
    let mut global = 0usize;
    for epoch in 0..cfg.epochs {
        let mut order: Vec<usize> = (0..n).collect();
        if cfg.shuffle {
            let mut rng = wellspring_core::rng(derive_seed(cfg.seed, epoch as u64));
            for i in (1..n).rev() {
                let j = rng.random_range(0..=i);
                order.swap(i, j);
            }
        }
        let (mut sum, mut seen, mut lr) = (0.0f64, 0usize, cfg.lr);
        for chunk in order.chunks(cfg.batch_size).take(steps) {
            let idx: Vec<usize> = chunk.iter().map(|&p| subset.indices()[p]).collect();
            let bn = idx.len() as f32;
            let w: Vec<f32> = match subset.weights() {
                Some(w) => chunk.iter().map(|&p| w[p] / bn).collect(),
                None => vec![1.0 / bn; idx.len()],
            };
            let x = model.input_batch(data, &idx, &ad)?;
            let y = model.target_batch(data, &idx, &ad)?;
            let mut tracker = Tracker::passive();
            let out = model.forward_tracked(&x, &mut tracker)?;
            tracker.finish()?;
            let per_ex = per_example_loss_any(out.logits, y, cfg.loss, data.name())?;
            let wt = Tensor::<1>::from_data(TensorData::new(w, [idx.len()]), (&ad, per_ex.dtype()));
            let objective = (per_ex * wt).sum();
            let value: f32 = objective.clone().into_scalar::<f32>();
            if !value.is_finite() {
                return Err(ModelError::Training {
                    reason: format!(
                        "loss is {value} at step {global} (epoch {}) of the {} model; lower the learning rate",
                        epoch + 1,
                        model.model_name()
                    ),
                });
            }
            let grads = GradientsParams::from_grads(objective.backward(), &model);
            lr = cfg
                .schedule
                .lr_at(cfg.lr, global as f64 / steps as f64, cfg.epochs);
            model = optim.step(lr, model, grads);
            global += 1;
            sum += value as f64 * idx.len() as f64;
            seen += idx.len();
        }
        history.push(EpochStats {
            epoch: epoch + 1,
            steps,
            examples: seen,
            train_loss: sum / seen.max(1) as f64,
            lr,
        });
    }
    Ok((model.valid(), history))
}
