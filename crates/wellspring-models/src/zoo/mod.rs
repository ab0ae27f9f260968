//! Models beyond the [`crate::ModelConfig`] zoo, written as a user would write
//! theirs: plain burn modules implementing [`crate::Attributable`].

mod transformer;

pub use transformer::{
    Block, SelfAttention, TransformerClassifier, TransformerConfig, TransformerLm, Trunk,
};
