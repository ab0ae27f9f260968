//! Integration tests of wellspring-data: real embedded datasets, bad input,
//! file formats written to temp dirs, fetch with a local downloader, and
//! proptest invariants of the seeded samplers.

mod bad_input;
mod fetch;
mod formats;
mod props;
mod real;

use std::sync::OnceLock;

use wellspring_core::Split;
use wellspring_data::{DataDir, DatasetName, LoadOptions, load_full};

/// MNIST from the embedded directory, decompressed once per test binary.
pub fn mnist() -> &'static Split {
    static M: OnceLock<Split> = OnceLock::new();
    M.get_or_init(|| {
        let dir = DataDir::embedded().expect("embedded datasets/ exists");
        wellspring_data::mnist(&dir).expect("embedded MNIST loads")
    })
}

/// Loads a non-embedded dataset through `WELLSPRING_DATA`, or `None` (with a
/// note on stderr) when its files cannot be found: such tests skip, never fail.
pub fn optional(name: DatasetName, opts: &LoadOptions) -> Option<wellspring_data::Loaded> {
    match load_full(name, opts) {
        Ok(l) => Some(l),
        Err(
            e @ (wellspring_data::DataError::MissingFile { .. }
            | wellspring_data::DataError::MissingDir { .. }),
        ) => {
            eprintln!("skipping {name} test: {e}");
            None
        }
        Err(e) => panic!("{name} failed to load: {e}"),
    }
}
