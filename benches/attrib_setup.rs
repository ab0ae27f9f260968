// Shared setup of `benches/attrib.rs` and `examples/attrib_timing.rs`
// (included with `include!`): dattri's MNIST MLP (784-128-64-10) trained for
// two epochs on 5000 MNIST training digits, 500 test digits, 100 groups.

use wellspring_attrib::{FittedAttributor, MethodOptions, ModelSource, ProjectionSpec, by_name};
use wellspring_core::{Dataset, Grouping};
use wellspring_models::burn_types::Device;
use wellspring_models::{Model, ModelConfig, Optimizer, Schedule, TrainConfig, train};

/// Training points, test points and groups of dattri's benchmark size.
pub const N_TRAIN: usize = 5000;
/// Test points attributed.
pub const N_TEST: usize = 500;
/// Groups of the GGDA comparison.
pub const N_GROUPS: usize = 100;

/// The trained model, data and grouping.
pub struct Setup {
    pub source: ModelSource,
    pub train: Dataset,
    pub test: Dataset,
    pub groups: Grouping,
}

pub fn setup(device: &Device) -> Setup {
    let dir = wellspring_data::DataDir::embedded().expect("repository datasets/ directory");
    let split = wellspring_data::mnist(&dir).expect("MNIST in datasets/mnist");
    let train_set = split.train.select(&(0..N_TRAIN).collect::<Vec<_>>()).expect("5000 digits");
    let test = split.test.select(&(0..N_TEST).collect::<Vec<_>>()).expect("500 digits");
    let cfg = TrainConfig::params()
        .epochs(2)
        .batch_size(128)
        .optimizer(Optimizer::sgd_momentum(0.9))
        .lr(0.1)
        .schedule(Schedule::Cosine { min_lr: 0.0 })
        .checkpoint_every(Some(1))
        .seed(0)
        .check()
        .expect("valid config");
    let model = Model::new(ModelConfig::mnist_mlp(), 0, device).expect("valid model");
    let out = train(model, &train_set, None, &cfg, device, None).expect("training runs");
    let source = ModelSource::new(out.model, device.clone())
        .with_checkpoints(out.checkpoints)
        .with_train_config(cfg);
    let assign: Vec<usize> = (0..N_TRAIN).map(|i| i % N_GROUPS).collect();
    Setup {
        source,
        train: train_set,
        test,
        groups: Grouping::from_assignment(&assign).expect("100 groups"),
    }
}

/// Every registered gradient method.
pub fn gradient_methods() -> Vec<&'static str> {
    wellspring_attrib::methods::list()
        .iter()
        .filter(|m| m.uses_gradients)
        .map(|m| m.name)
        .collect()
}

/// Methods compared group vs per point (those present).
pub fn group_methods() -> Vec<&'static str> {
    let have = gradient_methods();
    ["tracin", "trak", "if-cg", "if-explicit", "if-lissa", "ekfac"]
        .into_iter()
        .filter(|m| have.contains(m))
        .collect()
}

/// Fits `name` with its default projection (Kronecker-512 for first-order
/// methods, Rademacher-512 for TRAK) and seed 0.
pub fn fit(s: &Setup, name: &str, projection: Option<ProjectionSpec>) -> Result<Box<dyn FittedAttributor>, String> {
    let mut opts = MethodOptions::new();
    if let Some(p) = projection {
        opts = opts.projection(p);
    }
    by_name(name, &opts)
        .and_then(|m| m.fit_dyn(&s.source, &s.train))
        .map_err(|e| e.to_string())
}
