//! wellspring facade (in progress)
//!
//! - [`repro`]: the reproduce targets behind `cargo xtask reproduce <target>`.
//! - Every crate, re-exported: [`core`], [`data`], [`models`], [`report`],
//!   [`eval`], [`select`], [`attrib`], [`group`], [`grad`].
//! - The `wellspring` binary (`src/bin/wellspring/`): `train`, `evaluate`,
//!   `attribute`, `self-influence`, `methods`, `quickstart`.

pub mod repro;

pub use wellspring_attrib as attrib;
pub use wellspring_core as core;
pub use wellspring_data as data;
pub use wellspring_eval as eval;
pub use wellspring_grad as grad;
pub use wellspring_group as group;
pub use wellspring_models as models;
pub use wellspring_report as report;
pub use wellspring_select as select;
