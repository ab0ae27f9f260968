//! Integration tests of wellspring-models (one binary to save link time).

mod batch;
mod checkpoint;
mod determinism;
mod forward;
mod params;
mod train;

use std::sync::OnceLock;

use burn::tensor::Device;
use wellspring_core::{Dataset, Split};

/// The CPU device every test uses.
pub fn cpu() -> Device {
    Device::flex()
}

/// Full MNIST through wellspring-data, loaded once per test binary.
fn mnist_split() -> &'static Split {
    static SPLIT: OnceLock<Split> = OnceLock::new();
    SPLIT.get_or_init(|| {
        let dir = wellspring_data::DataDir::embedded().expect("repository datasets/ directory");
        wellspring_data::mnist(&dir).expect("MNIST in datasets/mnist")
    })
}

/// The first `n` MNIST images of `split` ("train" or "t10k"), pixels in [0, 1],
/// example shape `[1, 28, 28]`, named `mnist-{split}[:n]`.
pub fn mnist(split: &str, n: usize) -> Dataset {
    let s = mnist_split();
    let full = if split == "train" { &s.train } else { &s.test };
    wellspring_data::sample::first_n(full, n)
        .expect("n within MNIST")
        .renamed(format!("mnist-{split}[:{n}]"))
}
