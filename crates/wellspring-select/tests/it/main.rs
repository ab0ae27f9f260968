//! Integration tests for wellspring-select, on the embedded Optdigits data and
//! a host softmax-regression model trained on it.

mod bad_input;
mod common;
mod crest;
mod facility;
mod glister;
mod gradmatch;
mod invariants;
#[cfg(feature = "burn")]
mod model_loop;
mod rande;
mod timing;
mod training_loop;
#[cfg(feature = "burn")]
mod user_model;
