//! # wellspring-attrib
//!
//! Training-data attribution behind one trait, in linfa's fit-then-use shape:
//!
//! ```text
//! checked params ──fit(&ModelSource, &train)──▶ fitted ──attribute(&test)──▶ ScoreMatrix (n_train × n_test)
//!                                                      ├─self_attribute()──▶ Vec<f32> (n_train)
//!                                                      └─attribute_groups(&grouping, &test)──▶ n_groups × n_test
//! ```
//!
//! Scores follow [`ScoreMatrix`]'s convention: **positive = the training
//! point helps the test prediction**. Every method checks that a test set has
//! the training set's feature kind and width, task and a model that accepts
//! it, returns only finite scores, and assembles scores block-wise over test
//! points ([`blocks`]), so a `50 000 × 10 000` matrix never sits twice in memory.
//!
//! | registry name | type | paper |
//! |---|---|---|
//! | `random` | [`methods::random::RandomParams`] | seeded baseline |
//! | `pae` | [`methods::pae::PaeParams`] | SVE (Mahmood, Yin & Khanna 2025), Alg. 1 |
//! | `emb-dot`, `emb-cos`, `emb-dist` | [`methods::embedding::EmbeddingParams`] | SVE §5.1; Hanawa et al. 2021 |
//! | `l2` | [`methods::l2::L2Params`] | brittleness paper §3 |
//! | `esvm` | [`methods::esvm::EsvmParams`] | brittleness paper §3; Malisiewicz et al. 2011 |
//! | `rps` | [`methods::rps::RpsParams`] | Yeh et al. 2018; TracIn App. A.2, eq. 4 |
//!
//! Gradient methods (Grad-Dot/Cos, TracIn(CP), influence functions, K-FAC,
//! EK-FAC, DataInf, TRAK) join the same registry; [`ProjectionSpec`] is the
//! `--projection` value they map onto `wellspring-grad`'s projectors.
//!
//! ```no_run
//! use wellspring_attrib::{Attributor, FittedAttributor, ModelSource};
//! use wellspring_attrib::methods::esvm::EsvmParams;
//! # fn demo(model: wellspring_models::Model, train: wellspring_core::Dataset,
//! #         test: wellspring_core::Dataset) -> wellspring_attrib::Result<()> {
//! let source = ModelSource::new(model, wellspring_models::burn_types::Device::flex());
//! let fitted = EsvmParams::new().c(0.1).fit(&source, &train)?;   // params checked first
//! let scores = fitted.attribute(&test)?;                          // n_train × n_test
//! let top = scores.top_k(0, 5);                                   // most helpful for test point 0
//! # Ok(()) }
//! ```
//!
//! ## Adding a method: one file plus one registry line
//!
//! 1. Write `src/methods/<name>.rs`: a params struct (setters + `check()`),
//!    `impl Attributor for <Params>` (call `check()` first, cache the training
//!    side), a fitted struct with `impl FittedAttributor` (validate the test
//!    set with [`DataSignature::check`], build scores with
//!    [`blocks::by_test_blocks`] / [`blocks::groups_by_test_blocks`]), rustdoc
//!    naming the paper and equation, and `pub(crate) const INFO: MethodInfo`
//!    whose `build` reads `--param`s through an [`methods::OptionReader`].
//! 2. Add `<name>: [INFO],` to the `registry!` list in `src/methods/mod.rs`.
//!
//! Methods outside this crate need only the trait: see
//! `examples/custom_attributor.rs`, which implements one in a page and scores
//! it with a `wellspring-eval` metric. Grouping helpers for GGDA live in
//! [`grouping`] (point matrices for `wellspring-group`'s groupers).

#![warn(missing_docs)]

pub mod blocks;
pub mod dense;
pub mod error;
pub mod features;
pub mod grouping;
pub mod methods;
pub mod projection;
pub mod signature;
pub mod solvers;
pub mod source;
pub mod traits;

pub use error::{AttribError, Result};
pub use features::{ClassSource, Extractor, FeatureSpace};
pub use grouping::{BuiltGrouping, GrouperKind, GroupingSpec};
pub use methods::{MethodInfo, MethodOptions, by_name};
pub use projection::ProjectionSpec;
pub use signature::{DataSignature, point_hash};
pub use source::{ModelSource, check_lr, check_same_architecture};
pub use traits::{
    Attributor, DynAttributor, FittedAttributor, attribute_in_chunks, attribute_streaming,
    check_grouping, score_rows,
};
pub use wellspring_core::{Grouping, ScoreMatrix};
