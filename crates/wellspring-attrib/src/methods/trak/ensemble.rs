//! TRAK's ensemble (Park et al. 2023, §3.2 and App. C): `M` models, each
//! trained from its own initialisation on its own random `α`-fraction of the
//! training set, cached so that a rerun (or a concurrent process with the
//! same cache) trains nothing twice.

use rand::seq::SliceRandom;
use wellspring_core::{Dataset, Subset, dataset_fingerprint, derive_seed, derive_seed_str, rng};
use wellspring_models::{AnyModel, Model, TrainConfig, train as train_model};
use wellspring_report::{Cache, CacheKey, ReportError};

use crate::error::{AttribError, Result};
use crate::source::ModelSource;

/// Bumped whenever what a cached ensemble member means changes.
const ENSEMBLE_FORMAT: u32 = 1;

/// Settings of [`train_ensemble`]: how many models, on what fraction of the
/// training set, from which seed.
#[derive(Clone, Debug, PartialEq)]
pub struct EnsembleParams {
    models: usize,
    alpha: f64,
    seed: u64,
}

impl EnsembleParams {
    /// `models` members on random halves (`α = 0.5`, TRAK's default), seed 0.
    pub fn new(models: usize) -> Self {
        Self {
            models,
            alpha: 0.5,
            seed: 0,
        }
    }

    /// Fraction of the training set each member trains on (`0 < α ≤ 1`).
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Seed of the subsets, initialisations and shuffles.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Number of members.
    pub fn models(&self) -> usize {
        self.models
    }

    /// Checks `models ≥ 1` and `0 < α ≤ 1`.
    pub fn check(&self) -> Result<()> {
        if self.models == 0 {
            return Err(AttribError::invalid_param(
                "trak ensemble models",
                0,
                "must be at least 1",
            ));
        }
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            return Err(AttribError::invalid_param(
                "trak ensemble alpha",
                self.alpha,
                "must be in (0, 1]",
            ));
        }
        Ok(())
    }
}

/// The training subset of member `m`: the first `max(1, round(α n))` indices
/// of a permutation drawn from `ChaCha8(derive_seed(derive_seed_str(seed,
/// "trak-subset"), m))`, sorted.
pub fn ensemble_subset(n: usize, p: &EnsembleParams, m: usize) -> Result<Subset> {
    p.check()?;
    if n == 0 {
        return Err(AttribError::invalid_param(
            "trak ensemble training set",
            "0 points",
            "cannot draw subsets of an empty training set",
        ));
    }
    let size = ((p.alpha * n as f64).round() as usize).clamp(1, n);
    let mut perm: Vec<usize> = (0..n).collect();
    perm.shuffle(&mut rng(derive_seed(
        derive_seed_str(p.seed, "trak-subset"),
        m as u64,
    )));
    let mut idx = perm[..size].to_vec();
    idx.sort_unstable();
    Ok(Subset::new(idx, n)?)
}

/// Wraps attribution errors so the cache can report its own.
struct CacheFail(AttribError);

impl From<ReportError> for CacheFail {
    fn from(e: ReportError) -> Self {
        CacheFail(AttribError::Solver {
            solver: "trak ensemble cache".into(),
            reason: e.to_string(),
        })
    }
}

fn train_config(source: &ModelSource) -> Result<&TrainConfig> {
    source.train_config.as_ref().ok_or_else(|| {
        AttribError::unsupported(
            "trak ensemble",
            "the model source has no training configuration (ModelSource::with_train_config); \
             ensemble members are trained with it",
        )
    })
}

/// Trains (or loads from `cache`) ensemble member `m` of [`train_ensemble`].
///
/// For a zoo model the member is `Model::new(config, derive_seed(derive_seed_str(seed,
/// "trak-init"), m))` trained with the source's [`TrainConfig`] (its seed
/// replaced by `derive_seed(derive_seed_str(seed, "trak-train"), m)`, no
/// checkpoints) on [`ensemble_subset`]`(n, p, m)`. Any other model is trained
/// by the source's [`wellspring_models::SubsetTrainer`]
/// ([`ModelSource::with_trainer`]) on the same subset with the init seed
/// (not cached: only zoo checkpoints are self-describing). Members are
/// independent, so callers may train them on several threads or processes
/// at once; the cache writes each file atomically.
pub fn ensemble_member(
    source: &ModelSource,
    train: &Dataset,
    p: &EnsembleParams,
    m: usize,
    cache: Option<&Cache>,
) -> Result<AnyModel> {
    p.check()?;
    let init_seed = derive_seed(derive_seed_str(p.seed, "trak-init"), m as u64);
    let Some(zoo) = source.model.downcast_ref::<Model>() else {
        let trainer = source.trainer.as_ref().ok_or_else(|| {
            AttribError::unsupported(
                "trak ensemble",
                format!(
                    "the {} model is not a zoo model; give the source a trainer \
                     (ModelSource::with_trainer) or an ensemble (ModelSource::with_ensemble)",
                    source.model.model_name()
                ),
            )
        })?;
        let subset = ensemble_subset(train.len(), p, m)?;
        let member = trainer.train_subset(train, &subset, init_seed)?;
        source
            .model
            .check_same_architecture(&member, &format!("trak ensemble member {m}"))?;
        return Ok(member);
    };
    let base = train_config(source)?;
    let mut cfg = base.clone();
    cfg.seed = derive_seed(derive_seed_str(p.seed, "trak-train"), m as u64);
    cfg.checkpoint_every = None;
    let device = &source.device;
    let fit = || -> Result<Model> {
        let subset = ensemble_subset(train.len(), p, m)?;
        let model = Model::new(zoo.config.clone(), init_seed, device)?;
        Ok(train_model(model, train, Some(&subset), &cfg, device, None)?.model)
    };
    let Some(cache) = cache else {
        return Ok(fit()?.into());
    };
    let key = CacheKey::new("trak-ensemble")
        .field("format", &ENSEMBLE_FORMAT)
        .field("version", env!("CARGO_PKG_VERSION"))
        .field("data", &dataset_fingerprint(train))
        .field("model", &zoo.config)
        .field("train_config", &cfg)
        .field("alpha", &p.alpha)
        .field("seed", &p.seed)
        .field("member", &m)
        .field("device", &format!("{device:?}"));
    let path = cache
        .get_or_create_file(&key, "ckpt", |tmp| -> std::result::Result<(), CacheFail> {
            let model = fit().map_err(CacheFail)?;
            model
                .save(tmp)
                .map_err(|e| CacheFail(AttribError::Model(e)))
        })
        .map_err(|e| e.0)?;
    Ok(Model::load(&path, device)?.into())
}

/// Trains TRAK's `M` ensemble members (Park et al. 2023, §3.2: models on
/// random `α`-subsets, default `α = 0.5`) with the source's training
/// configuration, members `0..M` in order, each cached in `cache` when given
/// (see [`ensemble_member`] for the seeds). Put the result into
/// [`ModelSource::with_ensemble`] and fit [`super::TrakParams`] with
/// `models(M)`. Member `m` does not depend on `M`, so the first 10 members of
/// a 50-model ensemble are those of a 10-model one (and come from the cache).
///
/// ```no_run
/// # fn demo(source: wellspring_attrib::ModelSource, train: wellspring_core::Dataset,
/// #         cache: wellspring_report::Cache) -> wellspring_attrib::Result<()> {
/// use wellspring_attrib::methods::trak::{EnsembleParams, TrakParams, train_ensemble};
/// use wellspring_attrib::Attributor;
/// let models = train_ensemble(&source, &train, &EnsembleParams::new(10).seed(7), Some(&cache))?;
/// let source = source.with_ensemble(models);
/// let fitted = TrakParams::new().models(10).fit(&source, &train)?;
/// # Ok(()) }
/// ```
pub fn train_ensemble(
    source: &ModelSource,
    train: &Dataset,
    p: &EnsembleParams,
    cache: Option<&Cache>,
) -> Result<Vec<AnyModel>> {
    p.check()?;
    if source.model.downcast_ref::<Model>().is_some() {
        train_config(source)?;
    }
    (0..p.models)
        .map(|m| ensemble_member(source, train, p, m, cache))
        .collect()
}
