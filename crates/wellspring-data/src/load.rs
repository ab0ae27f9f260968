//! The one entry point: [`load`] a [`DatasetName`] with [`LoadOptions`].

use std::path::PathBuf;

use wellspring_core::{Split, derive_seed_str};

use crate::adult::adult;
use crate::cifar::{Cifar100Labels, cifar10, cifar100};
use crate::dir::DataDir;
use crate::error::{DataError, Result};
use crate::idx::{fashion_mnist, mnist};
use crate::name::DatasetName;
use crate::sample::{train_test_split, with_validation};
use crate::standardize::Standardizer;
use crate::tables::{EnergyTarget, Table, breast_cancer, concrete, energy, heloc, optdigits};
use crate::text::{VocabParams, Vocabulary, sst2};

/// Options for [`load`], as a checked builder (linfa style): set what you need,
/// [`LoadOptions::check`] runs before any file is read.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadOptions {
    data_dir: Option<PathBuf>,
    test_fraction: f64,
    valid_fraction: Option<f64>,
    stratify: bool,
    seed: u64,
    standardize: bool,
    standardize_targets: bool,
    target: Option<String>,
    image_shape: bool,
    vocab: VocabParams,
    max_tokens: Option<usize>,
}

impl Default for LoadOptions {
    /// Test fraction 0.2, seed 0, no validation split, no stratification,
    /// tables standardised, targets not, default target, `[64]` optdigits,
    /// vocabulary min count 1 and no size or length limit.
    fn default() -> Self {
        Self {
            data_dir: None,
            test_fraction: 0.2,
            valid_fraction: None,
            stratify: false,
            seed: 0,
            standardize: true,
            standardize_targets: false,
            target: None,
            image_shape: false,
            vocab: VocabParams::default(),
            max_tokens: None,
        }
    }
}

impl LoadOptions {
    /// The defaults (see [`Default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Read from this directory instead of `WELLSPRING_DATA` / the embedded one.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Test share for datasets without an official test split (Concrete,
    /// Energy, HELOC, Breast Cancer); in `(0, 1)`, default 0.2.
    pub fn test_fraction(mut self, f: f64) -> Self {
        self.test_fraction = f;
        self
    }

    /// Also carve a validation set of this share out of the training split.
    pub fn valid_fraction(mut self, f: f64) -> Self {
        self.valid_fraction = Some(f);
        self
    }

    /// Stratify the seeded test and validation splits by class (classification only).
    pub fn stratify(mut self, on: bool) -> Self {
        self.stratify = on;
        self
    }

    /// Seed of the seeded splits (test and validation use derived streams).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Standardise table features with train-split statistics (default on;
    /// ignored for images and text). Adult standardises only its numeric columns.
    pub fn standardize(mut self, on: bool) -> Self {
        self.standardize = on;
        self
    }

    /// Standardise regression targets too (the fitted mean/std are returned in
    /// [`Loaded::target_standardizer`] to report in original units).
    pub fn standardize_targets(mut self, on: bool) -> Self {
        self.standardize_targets = on;
        self
    }

    /// Target choice: Concrete a column name (default `compressive_strength_mpa`);
    /// Energy `Y1` (default), `Y2` or `both`; CIFAR-100 `fine` (default) or `coarse`.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Optdigits examples as `[1, 8, 8]` images instead of `[64]`.
    pub fn image_shape(mut self, on: bool) -> Self {
        self.image_shape = on;
        self
    }

    /// SST-2 vocabulary: minimum token count (≥ 1).
    pub fn min_count(mut self, n: usize) -> Self {
        self.vocab.min_count = n;
        self
    }

    /// SST-2 vocabulary: maximum size including `<unk>` (≥ 2).
    pub fn max_vocab(mut self, n: usize) -> Self {
        self.vocab.max_size = Some(n);
        self
    }

    /// SST-2: truncate every sentence to this many tokens (≥ 1).
    pub fn max_tokens(mut self, n: usize) -> Self {
        self.max_tokens = Some(n);
        self
    }

    /// Checks every value; errors name the option and the bad value.
    pub fn check(&self) -> Result<()> {
        if !(self.test_fraction > 0.0 && self.test_fraction < 1.0) {
            return Err(DataError::invalid_param(
                "test_fraction",
                self.test_fraction,
                "must be strictly between 0 and 1",
            ));
        }
        if let Some(f) = self.valid_fraction
            && !(f > 0.0 && f < 1.0)
        {
            return Err(DataError::invalid_param(
                "valid_fraction",
                f,
                "must be strictly between 0 and 1",
            ));
        }
        if self.max_tokens == Some(0) {
            return Err(DataError::invalid_param(
                "max_tokens",
                0,
                "must be at least 1",
            ));
        }
        self.vocab.check()
    }
}

/// A loaded split plus everything fitted on its training part.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Train / test (/ validation) sets.
    pub split: Split,
    /// Names of the feature columns (tables only).
    pub feature_names: Option<Vec<String>>,
    /// Feature standardisation fitted on the training split (tables, if on).
    pub standardizer: Option<Standardizer>,
    /// Target standardisation fitted on the training split (regression, if on);
    /// use [`Standardizer::inverse_transform`] to report in original units.
    pub target_standardizer: Option<Standardizer>,
    /// The vocabulary built from the training split (SST-2).
    pub vocabulary: Option<Vocabulary>,
    /// The directory the files were resolved against.
    pub data_dir: DataDir,
}

/// Loads `name` and returns its split (see [`load_full`]).
pub fn load(name: DatasetName, opts: &LoadOptions) -> Result<Split> {
    Ok(load_full(name, opts)?.split)
}

fn no_target(name: DatasetName, target: &Option<String>) -> Result<()> {
    if let Some(t) = target {
        return Err(DataError::invalid_param(
            "target",
            t,
            format!("dataset {name} has a fixed label; no target choice"),
        ));
    }
    Ok(())
}

/// Loads `name`: resolves the data directory, reads the files, splits (seeded,
/// for datasets without an official test split), optionally carves a
/// validation set, and standardises tables with training statistics.
pub fn load_full(name: DatasetName, opts: &LoadOptions) -> Result<Loaded> {
    opts.check()?;
    let dir = DataDir::resolve(opts.data_dir.as_deref())?;
    let test_seed = derive_seed_str(opts.seed, "test-split");
    let valid_seed = derive_seed_str(opts.seed, "valid-split");
    let mut vocabulary = None;
    let mut numeric_cols: Option<Vec<usize>> = None;
    let (split, feature_names) = match name {
        DatasetName::Mnist | DatasetName::FashionMnist | DatasetName::Cifar10 => {
            no_target(name, &opts.target)?;
            let s = match name {
                DatasetName::Mnist => mnist(&dir)?,
                DatasetName::FashionMnist => fashion_mnist(&dir)?,
                _ => cifar10(&dir)?,
            };
            (s, None)
        }
        DatasetName::Cifar100 => {
            let which = match opts
                .target
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                None | Some("fine") => Cifar100Labels::Fine,
                Some("coarse") => Cifar100Labels::Coarse,
                Some(other) => {
                    return Err(DataError::invalid_param(
                        "target",
                        other,
                        "CIFAR-100 labels are fine or coarse",
                    ));
                }
            };
            (cifar100(&dir, which)?, None)
        }
        DatasetName::Sst2 => {
            no_target(name, &opts.target)?;
            let (s, v) = sst2(&dir, &opts.vocab, opts.max_tokens)?;
            vocabulary = Some(v);
            (s, None)
        }
        DatasetName::Adult => {
            no_target(name, &opts.target)?;
            let (t, enc) = adult(&dir)?;
            numeric_cols = Some(enc.numeric_positions());
            table_split(t, opts, test_seed)?
        }
        _ => {
            let t = match name {
                DatasetName::Concrete => concrete(&dir, opts.target.as_deref())?,
                DatasetName::Energy => {
                    let which = match &opts.target {
                        Some(t) => t.parse::<EnergyTarget>()?,
                        None => EnergyTarget::Y1,
                    };
                    energy(&dir, which)?
                }
                DatasetName::Heloc => {
                    no_target(name, &opts.target)?;
                    heloc(&dir)?
                }
                DatasetName::BreastCancer => {
                    no_target(name, &opts.target)?;
                    breast_cancer(&dir)?
                }
                DatasetName::Optdigits => {
                    no_target(name, &opts.target)?;
                    optdigits(&dir, opts.image_shape)?
                }
                _ => unreachable!("every other dataset is matched above"),
            };
            table_split(t, opts, test_seed)?
        }
    };
    let mut split = split;
    if let Some(f) = opts.valid_fraction {
        let strat = opts.stratify && split.train.labels().is_some();
        split = with_validation(split, f, valid_seed, strat)?;
    }
    let mut standardizer = None;
    if opts.standardize && name.is_table() {
        let (values, width) = match split.train.features() {
            wellspring_core::Features::Dense { values, shape } => {
                (values, shape.iter().product::<usize>())
            }
            wellspring_core::Features::Tokens { .. } => unreachable!("tables are dense"),
        };
        let s = match &numeric_cols {
            Some(cols) => Standardizer::fit_columns(values, width, cols)?,
            None => Standardizer::fit(values, width)?,
        };
        split = apply(split, |d| s.apply_features(d))?;
        standardizer = Some(s);
    }
    let mut target_standardizer = None;
    if opts.standardize_targets {
        if !name.is_regression() {
            return Err(DataError::invalid_param(
                "standardize_targets",
                true,
                format!("dataset {name} has class labels, not regression targets"),
            ));
        }
        let s = Standardizer::fit_targets(&split.train)?;
        split = apply(split, |d| s.apply_targets(d))?;
        target_standardizer = Some(s);
    }
    Ok(Loaded {
        split,
        feature_names,
        standardizer,
        target_standardizer,
        vocabulary,
        data_dir: dir,
    })
}

fn table_split(t: Table, opts: &LoadOptions, seed: u64) -> Result<(Split, Option<Vec<String>>)> {
    let split = match t.test {
        Some(test) => Split {
            train: t.train,
            test,
            valid: None,
        },
        None => {
            let strat = opts.stratify && t.train.labels().is_some();
            train_test_split(&t.train, opts.test_fraction, seed, strat)?
        }
    };
    Ok((split, Some(t.feature_names)))
}

fn apply(
    split: Split,
    f: impl Fn(&wellspring_core::Dataset) -> Result<wellspring_core::Dataset>,
) -> Result<Split> {
    Ok(Split {
        train: f(&split.train)?,
        test: f(&split.test)?,
        valid: split.valid.as_ref().map(&f).transpose()?,
    })
}
