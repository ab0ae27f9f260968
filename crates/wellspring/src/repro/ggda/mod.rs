//! GGDA (Ley et al. 2024): group vs per-point attribution speed (`speed`)
//! and the downstream tasks of §5.3–5.4 (`table1`, `pruning`, `noisy`,
//! `retrain`), which share `common`'s model, methods and retraining harness;
//! `prune` is the pruning experiment of `table1` and `pruning`.

mod common;
mod prune;

pub(super) mod noisy;
pub(super) mod pruning;
pub(super) mod retrain;
pub(super) mod speed;
pub(super) mod table1;
