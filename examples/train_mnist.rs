//! Train dattri's MNIST MLP (784-128-64-10, dropout 0.1), evaluate it, save a
//! checkpoint and load it back.
//!
//!     cargo run -p wellspring --example train_mnist [-- <epochs> <checkpoint path>]
//!
//! Full MNIST, 3 epochs of SGD (momentum 0.9, lr 0.1, batch 128, cosine
//! schedule) reaches about 97.6% test accuracy in a few seconds on 2 cores.

use wellspring_data::{DataDir, mnist};
use wellspring_models::burn_types::Device;
use wellspring_models::{
    EpochStats, Model, ModelConfig, Optimizer, Schedule, TrainConfig, evaluate, train,
};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let epochs: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
    let path = args.next().unwrap_or_else(|| "target/mnist_mlp.bpk".into());

    // MNIST from the repository's datasets/ (or $WELLSPRING_DATA), pixels in [0, 1].
    let split = mnist(&DataDir::resolve(None)?)?;
    let device = Device::flex();

    let model = Model::new(ModelConfig::mnist_mlp(), 0, &device)?;
    let cfg = TrainConfig::params()
        .epochs(epochs)
        .batch_size(128)
        .optimizer(Optimizer::sgd_momentum(0.9))
        .lr(0.1)
        .schedule(Schedule::Cosine { min_lr: 0.0 })
        .seed(0)
        .check()?;

    let start = std::time::Instant::now();
    let mut report = |s: &EpochStats| {
        println!(
            "epoch {:>2}: train loss {:.4}, lr {:.4}, {:.1}s",
            s.epoch,
            s.train_loss,
            s.lr,
            start.elapsed().as_secs_f64()
        )
    };
    let out = train(model, &split.train, None, &cfg, &device, Some(&mut report))?;

    let eval = evaluate(&out.model, &split.test, &device)?;
    println!(
        "test accuracy {:.2}%, mean loss {:.4}",
        100.0 * eval.accuracy().unwrap_or(f64::NAN),
        eval.mean_loss
    );

    out.model.save(&path)?;
    let back = Model::load(&path, &device)?;
    assert_eq!(back.params_flat(), out.model.params_flat());
    println!("saved and reloaded {path} ({} parameters)", back.n_params());
    Ok(())
}
