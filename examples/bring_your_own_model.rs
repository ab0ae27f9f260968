//! Bring your own model: a burn module defined only in this file (not in the
//! zoo), trained, attributed with TRAK, EK-FAC and influence functions (CG),
//! and scored with the linear datamodeling score, in one short program.
//!
//!     cargo run -p wellspring --example bring_your_own_model
//!
//! What a model needs to be attributable: `#[derive(Module)]` and one method,
//! `forward_tracked`, whose parameter layers go through the `Tracker`
//! (`t.conv2d(&self.conv, x)` instead of `self.conv.forward(x)`). The tracker
//! records each layer's input and attaches an output probe, so one batched
//! backward pass gives every example's gradient. What a metric that retrains
//! needs: a closure that trains a fresh model on a subset.

use std::time::Instant;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use wellspring_attrib::methods::trak::{EnsembleParams, train_ensemble};
use wellspring_attrib::{MethodOptions, ModelSource, by_name};
use wellspring_core::{Dataset, Subset};
use wellspring_eval::{Lds, SubsetRetrainer};
use wellspring_models::burn_types::Device;
use wellspring_models::init::reinit_seeded;
use wellspring_models::{
    AnyModel, Attributable, Input, Loss, ModelOutput, Optimizer, Tracker, TrainConfig, evaluate,
    fit_attributable,
};

/// conv 3×3 stride 2 → ReLU → LayerNorm → Linear(64) → ReLU → head.
#[derive(Module, Debug)]
struct SmallNet {
    conv: Conv2d,
    norm: LayerNorm,
    fc: Linear,
    head: Linear,
}

impl SmallNet {
    fn new(seed: u64, device: &Device) -> SmallNet {
        let net = SmallNet {
            conv: Conv2dConfig::new([1, 4], [3, 3])
                .with_stride([2, 2])
                .init(device),
            norm: LayerNormConfig::new(4 * 13 * 13).init(device),
            fc: LinearConfig::new(4 * 13 * 13, 64).init(device),
            head: LinearConfig::new(64, 10).init(device),
        };
        // seeded PyTorch-default initialisation, independent of other threads
        reinit_seeded(net, seed)
    }
}

impl Attributable for SmallNet {
    fn forward_tracked(
        &self,
        input: &Input,
        t: &mut Tracker<'_>,
    ) -> wellspring_models::Result<ModelOutput> {
        let x = input.image_tensor("SmallNet")?;
        let y = relu(t.conv2d(&self.conv, x));
        let [b, c, h, w] = y.dims();
        let y = t.layer_norm(&self.norm, y.reshape([b, c * h * w]));
        let features = relu(t.linear(&self.fc, y));
        let logits = t.linear(&self.head, features.clone());
        Ok(ModelOutput::flat(logits).with_features(features))
    }
}

fn train_config(seed: u64) -> wellspring_models::Result<TrainConfig> {
    TrainConfig::params()
        .epochs(4)
        .batch_size(64)
        .optimizer(Optimizer::adam())
        .lr(3e-3)
        .seed(seed)
        .check()
}

/// Trains a fresh `SmallNet` on `subset` of `train`: the seam that TRAK's
/// ensemble and the LDS retrainings go through.
fn train_subset(
    train: &Dataset,
    subset: &Subset,
    seed: u64,
) -> wellspring_models::Result<AnyModel> {
    let device = Device::flex();
    let (net, _) = fit_attributable(
        SmallNet::new(seed, &device),
        train,
        Some(subset),
        &train_config(seed)?,
        &device,
    )?;
    Ok(AnyModel::new(net))
}

fn main() -> anyhow::Result<()> {
    let split = wellspring_data::mnist(&wellspring_data::DataDir::resolve(None)?)?;
    let train = split.train.select(&(0..2000).collect::<Vec<_>>())?;
    let test = split.test.select(&(0..100).collect::<Vec<_>>())?;
    let device = Device::flex();

    let clock = Instant::now();
    let model = train_subset(&train, &Subset::all(train.len()), 0)?;
    let acc = evaluate(&model, &test, &device)?
        .accuracy()
        .unwrap_or(f64::NAN);
    println!(
        "SmallNet ({} parameters in {} tracked layers): test accuracy {:.1}% after {:.1} s",
        model.n_params(),
        model.param_layers().len(),
        100.0 * acc,
        clock.elapsed().as_secs_f64()
    );

    // The model, a way to train more of it (TRAK's ensemble), and the device.
    let source = ModelSource::new(model, device.clone()).with_trainer(train_subset);
    let ensemble = train_ensemble(&source, &train, &EnsembleParams::new(4).seed(1), None)?;
    let source = source.with_ensemble(ensemble);

    // LDS ground truth: 16 half-size subsets, retrained through the same
    // closure once and reused for every method (`Lds::evaluate` with an
    // `EvalContext` does the same in one call per method).
    let clock = Instant::now();
    let retrainer = SubsetRetrainer::new(&train, &test, train_subset, Loss::CrossEntropy, &device)?;
    let lds = Lds::params().m(16).alpha(0.5).seed(0);
    let truth = lds.ground_truth(&retrainer)?;
    println!(
        "LDS ground truth: 16 retrained models in {:.1} s",
        clock.elapsed().as_secs_f64()
    );

    println!("{:<8} {:>16} {:>10}", "method", "LDS (± s.e.)", "time");
    for (name, opts) in [
        ("trak", MethodOptions::new().param("models", "4")),
        ("ekfac", MethodOptions::new()),
        ("if-cg", MethodOptions::new()),
    ] {
        let clock = Instant::now();
        let fitted = by_name(name, &opts)?.fit_dyn(&source, &train)?;
        let scores = fitted.attribute(&test)?;
        let secs = clock.elapsed().as_secs_f64();
        let r = truth.score(&scores, Default::default())?;
        println!(
            "{name:<8} {:>9.3} ± {:.3} {:>9.2} s",
            r.summary.mean, r.summary.std_err, secs
        );
    }
    Ok(())
}
