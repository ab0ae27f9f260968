//! # wellspring-data
//!
//! Loaders for the datasets wellspring's experiments use, plus the seeded
//! manipulations the papers need, all producing [`wellspring_core`] types:
//!
//! - [`load()`] / [`load_full`] a [`DatasetName`] with [`LoadOptions`]: MNIST and
//!   Fashion-MNIST (IDX), CIFAR-10/100 (binary), Concrete, Energy, HELOC,
//!   Adult, Breast Cancer, Optdigits (CSV, [`Standardizer`]-ed with training
//!   statistics), SST-2 (tokens, [`Vocabulary`] from the training split);
//! - [`DataDir`]: explicit path, else `WELLSPRING_DATA`, else the repository's
//!   embedded `datasets/`;
//! - [`sample`]: `first_n`, uniform, stratified (largest remainder) and
//!   class-balanced subsamples, seeded train/test/validation splits;
//! - [`noise`]: symmetric label noise and targeted label-flip poisoning,
//!   returning the flipped indices;
//! - [`mod@relabel`]: superclass relabelling keeping the original labels as subclasses;
//! - [`fetch`]: the checksummed registry of every file and a [`fetch::Downloader`]-based installer.
//!
//! ```no_run
//! use wellspring_data::{DatasetName, LoadOptions, load};
//! let split = load(DatasetName::Concrete, &LoadOptions::new().seed(7).test_fraction(0.2))?;
//! assert_eq!(split.train.len() + split.test.len(), 1030);
//! # Ok::<(), wellspring_data::DataError>(())
//! ```

#![warn(missing_docs)]

pub mod adult;
pub mod cifar;
pub mod csv;
pub mod dir;
pub mod error;
pub mod fetch;
pub mod idx;
pub mod load;
pub mod name;
pub mod noise;
pub mod relabel;
pub mod sample;
pub mod standardize;
pub mod tables;
pub mod text;

pub use adult::{AdultEncoder, adult, adult_from_files};
pub use cifar::{Cifar100Labels, cifar10, cifar100};
pub use csv::{CsvOptions, CsvTable};
pub use dir::{DataDir, DirOrigin};
pub use error::{DataError, Result};
pub use fetch::{CurlDownloader, Downloader, LocalDownloader};
pub use idx::{fashion_mnist, mnist};
pub use load::{LoadOptions, Loaded, load, load_full};
pub use name::DatasetName;
pub use noise::{Poison, flip_label_vec, flip_labels, poison_labels};
pub use relabel::{SuperclassMap, relabel, superclass_map};
pub use sample::{
    class_balanced, first_n, holdout, stratified_subsample, subsample, train_test_split,
    with_validation,
};
pub use standardize::Standardizer;
pub use tables::{EnergyTarget, Table, breast_cancer, concrete, energy, heloc, optdigits};
pub use text::{VocabParams, Vocabulary, next_token_corpus, prompt_completions, sst2, tokenize};
