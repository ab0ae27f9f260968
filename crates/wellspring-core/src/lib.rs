//! # wellspring-core
//!
//! Plain data types shared by every wellspring crate, with no dependency on a
//! tensor library, so metrics and reports can be used alone:
//!
//! - [`ScoreMatrix`]: attribution scores, `n_train × n_test`, positive = helps;
//! - [`Dataset`], [`Features`], [`Targets`], [`Split`]: host-side labelled data;
//! - [`Subset`]: indices with optional per-sample weights;
//! - [`Grouping`]: a checked partition of the training set (group attribution);
//! - [`seed`]: explicit `ChaCha8Rng` streams;
//! - [`npy`]: `.npy` I/O and atomic writes, streamed writes of score blocks;
//! - [`fingerprint`]: the content hash of datasets used in every cache key;
//! - [`linalg`]: `A Bᵀ` (GEMM) and dot products, one implementation for
//!   every host-side crate; [`lbfgs`]: the workspace's L-BFGS;
//! - [`CoreError`]: the error type.

#![warn(missing_docs)]

pub mod dataset;
pub mod error;
pub mod fingerprint;
pub mod grouping;
pub mod lbfgs;
pub mod linalg;
pub mod npy;
pub mod score;
pub mod seed;
pub mod stream;
pub mod subset;

pub use dataset::{Dataset, Features, Split, Subclasses, Targets};
pub use error::{CoreError, Result, check_finite};
pub use fingerprint::{ContentHasher, dataset_fingerprint};
pub use grouping::Grouping;
pub use score::{ScoreMatrix, argsort_desc, top_k_of};
pub use seed::{ChaCha8Rng, derive_seed, derive_seed_str, rng};
pub use stream::{ScoreNpyWriter, StreamingTopK};
pub use subset::Subset;
