//! Load PyTorch weights from a safetensors file and evaluate them on MNIST.
//!
//!     cargo run -p wellspring --example load_pytorch_weights -- <file.safetensors> [logreg|mlp|cnn]
//!
//! The file must hold the `state_dict` of a PyTorch model laid out as
//! `body = nn.Sequential(...)` plus `head = nn.Linear(...)`, e.g. dattri's MLP
//! `body.0.weight [128, 784]`, `body.0.bias`, `body.3.weight [64, 128]`,
//! `body.3.bias`, `head.weight [10, 64]`, `head.bias` (PyTorch's `[out, in]`
//! layout; burn-store transposes). Without arguments the example first exports
//! a freshly initialised MLP in that layout and loads it back.

use wellspring_data::{DataDir, mnist};
use wellspring_models::burn_types::Device;
use wellspring_models::{Model, ModelConfig, evaluate};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match args.get(1).map(String::as_str) {
        Some("logreg") => ModelConfig::mnist_logreg(),
        Some("cnn") => ModelConfig::mnist_cnn(),
        _ => ModelConfig::mnist_mlp(),
    };
    let device = Device::flex();
    let path = match args.first() {
        Some(p) => p.clone(),
        None => {
            let p = "target/mlp_pytorch_layout.safetensors".to_string();
            Model::new(config.clone(), 0, &device)?.export_safetensors(&p)?;
            println!(
                "no file given: exported an untrained {} to {p}",
                config.name()
            );
            p
        }
    };

    let model = Model::import_safetensors(&path, config, &device)?;
    for layer in model.param_layers() {
        println!(
            "{:<8} {:?} {:?}",
            layer.path, layer.kind, layer.weight_shape
        );
    }

    let test = mnist(&DataDir::resolve(None)?)?.test;
    let eval = evaluate(&model, &test, &device)?;
    println!(
        "{}: test accuracy {:.2}%, mean loss {:.4}",
        path,
        100.0 * eval.accuracy().unwrap_or(f64::NAN),
        eval.mean_loss
    );
    Ok(())
}
