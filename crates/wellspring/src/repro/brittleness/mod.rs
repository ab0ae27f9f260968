//! The data-brittleness paper (SSL features): removal / mislabel supports
//! (`support`, the `brittleness` target), LDS beside them (`lds`) and their
//! transfer across architectures (`transfer`), on `common`'s shared model,
//! methods and support searches.

mod common;

pub(super) mod lds;
pub(super) mod support;
pub(super) mod transfer;
