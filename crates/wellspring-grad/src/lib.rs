//! # wellspring-grad
//!
//! The gradient engine every attribution and selection method builds on.
//! Everything takes a burn `&Device` and never names a backend.
//!
//! - [`OutputFn`]: what is differentiated per example — [`CrossEntropy`],
//!   [`Mse`], [`TrakMargin`], [`CorrectProb`], [`Logit`]; for language
//!   models (per-token logits) [`CrossEntropy`] (mean token loss),
//!   [`CompletionLogProb`] and [`TokenLoss`].
//! - Models: anything in a `wellspring_models::AnyModel` — the zoo's `Model`
//!   or any burn module implementing `wellspring_models::Attributable`,
//!   whose forward pass routes its parameter layers through a `Tracker`.
//! - [`GradEngine`] (built with [`GradParams`]): per-example gradients w.r.t. a
//!   [`LayerSelection`] streamed as `n × p` f32 blocks with bounded memory
//!   ([`GradEngine::per_sample`]), projected per-example gradients
//!   ([`GradEngine::projected`]), sums and group gradients
//!   ([`GradEngine::group`], GGDA), exact inner products from factored
//!   gradients ([`GradEngine::factored`], [`FactoredGrads`]: TracIn App. F's
//!   `⟨g_i, g_j⟩ = (ã_i · ã_j)(δ_i · δ_j)` per flat linear layer, never
//!   `n × p`), and the batch-of-one reference path
//!   ([`GradEngine::per_sample_reference`]).
//! - [`Projector`]s: [`Identity`], dense Gaussian/Rademacher
//!   ([`DenseProjector`]) and the factored [`KroneckerProjector`].
//! - Curvature: [`LinearOperator`] implemented by [`HessianOperator`],
//!   [`GaussNewtonOperator`], [`EmpiricalFisher`], [`Damped`],
//!   [`MatrixOperator`]; [`explicit_matrix`], [`explicit_gauss_newton`];
//!   K-FAC factors and eigenbases ([`Kfac`]).
//! - [`GradientStore`]: projected gradients on disk in checksummed `.npy`
//!   shards with a JSON manifest; interrupted runs resume.
//!
//! ## How per-example gradients are computed
//!
//! One batched forward in evaluation mode adds, through the model's
//! `Tracker`, a zero `require_grad` probe to every selected layer's output;
//! one backward of `Σ_i f(z_i, y_i)` gives each example's backprop error
//! `δ_i` as its row of the probe's gradient. With the layer inputs `a_i`
//! recorded by the same hook, per-example gradients follow on the host:
//!
//! | layer | gradient of example `i` | how |
//! | --- | --- | --- |
//! | Linear | `[a_i; 1] ⊗ δ_i` | rank-1 outer product (AVX2 when available) |
//! | Conv2d | `Σ_pos δ_i[:, pos] ⊗ patch_i[:, pos]`, bias `Σ_pos δ_i` | im2col + one GEMM per example |
//! | BatchNorm2d | `γ: Σ_pos δ_i x̂_i`, `β: Σ_pos δ_i` (running statistics) | direct sums |
//! | EmbeddingBag | `δ_i · mask/len` scattered to the used rows | scatter |
//! | Linear on a sequence | `Σ_t [a_it; 1] ⊗ δ_it` (rank `T`, never per token) | GEMM `A_iᵀ Δ_i` |
//! | Embedding | `δ_it` scattered to row `id_it` | scatter |
//! | LayerNorm | `γ: Σ_t δ_it ⊙ x̂_it`, `β: Σ_t δ_it` | direct sums |
//!
//! Group gradients and weighted sums use `A_gᵀ Δ_g` GEMMs on the same
//! factors; the Kronecker projection works on projected factors (per token
//! for sequences, then summed), and batches of token sequences are sorted by
//! length so little is spent on padding. The
//! reference path ([`GradEngine::per_sample_reference`]) is a batch-of-one
//! loop of plain autodiff on the parameters.

#![warn(missing_docs)]

mod caps;
mod capture;
pub mod curvature;
mod engine;
mod error;
mod factored;
mod gemm;
mod kernels;
mod layout;
mod output;
mod params64;
pub mod project;
mod reference;
mod store;

pub use curvature::{
    CurvatureParams, Damped, EmpiricalFisher, GaussNewtonOperator, HessianOperator, Kfac,
    KfacFactors, KfacLabels, KfacParams, LinearOperator, LossContext, MatrixOperator,
    explicit_gauss_newton, explicit_matrix, matmul,
};
pub use engine::{BUCKET_ROWS, GradBlock, GradEngine, GradParams, Reduce, Rows};
pub use error::{GradError, Result};
pub use factored::{FactorView, FactoredGrads};
pub use layout::{GradLayout, LayerSelection, LayerSlot};
pub use output::{
    CompletionLogProb, CorrectProb, CrossEntropy, HostTarget, Logit, Mse, OutputFn, OutputSpec,
    TokenLoss, TrakMargin,
};
pub use project::{
    CHUNK_ROWS, DenseKind, DenseProjector, Identity, KronLayer, KronLayerKind, KroneckerProjector,
    ProjectionSpec, Projector,
};
pub use store::{GradientStore, Manifest, ShardInfo, StoreParams, model_hash};
