//! Integration tests of wellspring-attrib (one binary to save link time), on
//! a small MLP trained on real MNIST.

mod bad_input;
mod gradient;
mod grouping;
mod influence;
mod kfac;
mod methods;
mod rps;
mod sign;
mod svm;
mod user_model;

use std::sync::OnceLock;

use wellspring_attrib::ModelSource;
use wellspring_core::{Dataset, Split};
use wellspring_models::burn_types::Device;
use wellspring_models::{Model, ModelConfig, Optimizer, Schedule, TrainConfig, train};

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

/// MNIST images `from..from + n` of the train or test split.
pub fn mnist(test_split: bool, from: usize, n: usize) -> Dataset {
    let s = mnist_split();
    let full = if test_split { &s.test } else { &s.train };
    let idx: Vec<usize> = (from..from + n).collect();
    full.select(&idx)
        .expect("indices within MNIST")
        .renamed(format!(
            "mnist-{}[{from}..{}]",
            if test_split { "test" } else { "train" },
            from + n
        ))
}

/// 400 training points, 40 test points, and an MLP (784-64-32-10, no
/// dropout) trained on them for 8 epochs; built once per test binary.
pub struct Fixture {
    pub train: Dataset,
    pub test: Dataset,
    pub model: Model,
    /// Checkpoints after epochs 4 and 8 (TracInCP).
    pub checkpoints: Vec<wellspring_models::Checkpoint>,
    pub train_config: TrainConfig,
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let train_set = mnist(false, 0, 400);
        let test = mnist(true, 0, 40);
        let cfg = ModelConfig::Mlp {
            d_in: 784,
            hidden: vec![64, 32],
            n_out: 10,
            dropout: 0.0,
        };
        let model = Model::new(cfg, 0, &cpu()).expect("valid config");
        let tc = TrainConfig::params()
            .epochs(8)
            .batch_size(32)
            .optimizer(Optimizer::sgd_momentum(0.9))
            .lr(0.05)
            .schedule(Schedule::Cosine { min_lr: 0.0 })
            .seed(0)
            .checkpoint_every(Some(4))
            .check()
            .expect("valid train config");
        let out = train(model, &train_set, None, &tc, &cpu(), None).expect("training runs");
        Fixture {
            train: train_set,
            test,
            model: out.model,
            checkpoints: out.checkpoints,
            train_config: tc,
        }
    })
}

pub fn source() -> ModelSource {
    ModelSource::new(fixture().model.clone(), cpu())
        .with_checkpoints(fixture().checkpoints.clone())
        .with_train_config(fixture().train_config.clone())
}
