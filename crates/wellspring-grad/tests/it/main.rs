//! Integration tests of wellspring-grad (one binary to save link time).

mod curvature;
mod errors;
mod factored;
mod group;
mod kfac;
mod per_sample;
mod project;
mod store;
mod tracked;

use std::sync::OnceLock;

use burn::tensor::Device;
use wellspring_core::{Dataset, Features, Split, Targets};
use wellspring_models::{Model, ModelConfig};

/// The CPU device every test uses.
pub fn cpu() -> Device {
    Device::flex()
}

fn mnist_split() -> &'static Split {
    static SPLIT: OnceLock<Split> = OnceLock::new();
    SPLIT.get_or_init(|| {
        let dir = wellspring_data::DataDir::embedded().expect("repository datasets/ directory");
        wellspring_data::mnist(&dir).expect("MNIST in datasets/mnist")
    })
}

/// The first `n` MNIST training images (`[1, 28, 28]`, pixels in `[0, 1]`).
pub fn mnist(n: usize) -> Dataset {
    wellspring_data::sample::first_n(&mnist_split().train, n).expect("n within MNIST")
}

/// Deterministic pseudo-random values in `[-1, 1)`.
pub fn values(n: usize, salt: u64) -> Vec<f32> {
    let mut s = salt.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// `n` examples of shape `shape` with labels in `0..classes`.
pub fn synthetic(n: usize, shape: &[usize], classes: usize, salt: u64) -> Dataset {
    let d: usize = shape.iter().product();
    Dataset::new(
        format!("synthetic-{salt}"),
        Features::Dense {
            values: values(n * d, salt),
            shape: shape.to_vec(),
        },
        Targets::Classes {
            labels: (0..n).map(|i| (i * 7 + salt as usize) % classes).collect(),
            n_classes: classes,
        },
    )
    .unwrap()
}

/// `n` regression examples with `d` features and `t` targets.
pub fn regression(n: usize, d: usize, t: usize) -> Dataset {
    Dataset::new(
        "synthetic-regression",
        Features::Dense {
            values: values(n * d, 11),
            shape: vec![d],
        },
        Targets::Regression {
            values: values(n * t, 12),
            n_targets: t,
        },
    )
    .unwrap()
}

/// `n` token sequences of lengths 1..=5 over a vocabulary of `vocab`.
pub fn tokens(n: usize, vocab: usize) -> Dataset {
    let mut ids = Vec::new();
    let mut offsets = vec![0];
    for i in 0..n {
        for t in 0..(1 + i % 5) {
            ids.push(((i * 31 + t * 17) % vocab) as u32);
        }
        offsets.push(ids.len());
    }
    Dataset::new(
        "synthetic-tokens",
        Features::Tokens {
            ids,
            offsets,
            vocab_size: vocab,
        },
        Targets::Classes {
            labels: (0..n).map(|i| i % 2).collect(),
            n_classes: 2,
        },
    )
    .unwrap()
}

/// A small MLP without dropout.
pub fn small_mlp(d_in: usize, hidden: &[usize], n_out: usize, seed: u64) -> Model {
    Model::new(
        ModelConfig::Mlp {
            d_in,
            hidden: hidden.to_vec(),
            n_out,
            dropout: 0.0,
        },
        seed,
        &cpu(),
    )
    .unwrap()
}

/// A tiny CNN for `side × side` single-channel images.
pub fn tiny_cnn(side: usize, seed: u64) -> Model {
    Model::new(
        ModelConfig::Cnn {
            in_channels: 1,
            side,
            channels: vec![2, 3],
            fc: 5,
            n_out: 4,
        },
        seed,
        &cpu(),
    )
    .unwrap()
}

/// `‖a − b‖ / ‖b‖` (0 when both vanish).
pub fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum::<f64>().sqrt();
    if den == 0.0 { num } else { num / den }
}

/// Same for f64.
pub fn rel_err64(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let den: f64 = b.iter().map(|y| y.powi(2)).sum::<f64>().sqrt();
    if den == 0.0 { num } else { num / den }
}
