//! Integration tests of wellspring-eval: exact-linear invariants (proptest),
//! real retraining with the logistic-regression retrainer on breast-cancer
//! data, the FiMO gold standard on a convex model, and bad inputs.

// index-heavy numeric checks read better with explicit indices
#![allow(clippy::needless_range_loop)]

mod common;
mod errors;
mod exact;
mod fimo;
mod metrics;
mod real;
#[cfg(feature = "burn")]
mod subset;
