//! wellspring facade (in progress)
//!
//! - [`repro`]: the reproduce targets behind `cargo xtask reproduce <target>`.

pub mod repro;
