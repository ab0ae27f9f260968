//! `wellspring train` and `wellspring evaluate`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use wellspring_models::{
    EpochStats, Loss, Model, Optimizer, Schedule, TrainConfig, evaluate, train_resumable,
};
use wellspring_report::progress;

use crate::DataArgs;
use crate::common::{
    CheckpointEntry, Summary, check_out_file, check_summary_data, device, is_classification,
    load_data, load_model, model_config, read_summary, summary_path, write_text,
};

/// Arguments of `wellspring train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Architecture: logreg, mlp, cnn, resnet9, text-bag, fimo-mlp.
    #[arg(long)]
    pub model: String,
    #[command(flatten)]
    pub data: DataArgs,
    /// Passes over the training set.
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Seed of the initial weights, shuffles and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Learning rate (SGD with momentum 0.9, cosine schedule).
    #[arg(long, default_value_t = 0.1)]
    pub lr: f64,
    /// Mini-batch size.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Also save a checkpoint every K epochs (`<out>.epoch<E>`, listed in the summary; TracInCP uses them).
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Checkpoint file to write (a JSON summary goes to `<out>.json`).
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `wellspring evaluate`.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Checkpoint written by `wellspring train`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run_train(a: &TrainArgs) -> Result<()> {
    let start = Instant::now();
    check_out_file(&a.out, "--out")?;
    let device = device();
    let data = load_data(&a.data, None)?;
    let config = model_config(&a.model, &data.train)?;
    let loss = if is_classification(&data.train) {
        Loss::CrossEntropy
    } else {
        Loss::Mse
    };
    let cfg = TrainConfig::params()
        .epochs(a.epochs)
        .batch_size(a.batch_size)
        .optimizer(Optimizer::sgd_momentum(0.9))
        .lr(a.lr)
        .weight_decay(a.weight_decay)
        .schedule(Schedule::Cosine { min_lr: 0.0 })
        .loss(loss)
        .seed(a.seed)
        .checkpoint_every(a.checkpoint_every)
        .check()?;
    let model = Model::new(config.clone(), a.seed, &device)?;
    println!(
        "training {} ({} parameters) on {} ({} points) for {} epochs",
        a.model,
        model.n_params(),
        data.train.name(),
        data.train.len(),
        a.epochs
    );
    let bar = progress::bar(a.epochs as u64, "training");
    let mut on_epoch = |s: &EpochStats| {
        bar.inc(1);
        bar.println(format!(
            "epoch {:>3}: train loss {:.4}, lr {:.4}",
            s.epoch, s.train_loss, s.lr
        ));
    };
    // Per-epoch state next to the output: the same command after a kill
    // resumes at the last finished epoch (bit-identical result).
    let mut state = a.out.as_os_str().to_owned();
    state.push(".state");
    let out = train_resumable(
        model,
        &data.train,
        None,
        &cfg,
        &device,
        Some(&mut on_epoch),
        std::path::Path::new(&state),
        None,
    )?
    .expect("runs to the end without stop_after");
    bar.finish_and_clear();
    let eval = evaluate(&out.model, &data.test, &device)?;
    if !eval.mean_loss.is_finite() {
        bail!(
            "training diverged: the test loss is {} on {} (lower --lr, now {}); nothing saved",
            eval.mean_loss,
            data.test.name(),
            a.lr
        );
    }
    for w in divergence_warnings(&out.history, eval.r2(), a.lr) {
        eprintln!("warning: {w}");
    }
    out.model
        .save(&a.out)
        .with_context(|| format!("saving {}", a.out.display()))?;
    let mut entries = Vec::new();
    for c in &out.checkpoints {
        let mut p = a.out.as_os_str().to_owned();
        p.push(format!(".epoch{}", c.epoch));
        let p = PathBuf::from(p);
        c.model.save(&p)?;
        entries.push(CheckpointEntry {
            path: PathBuf::from(p.file_name().expect("a checkpoint path has a file name")),
            epoch: c.epoch,
            step: c.step,
            lr: c.lr,
        });
    }
    let summary = Summary {
        model: a.model.clone(),
        config,
        data: data.name.as_str().to_string(),
        n_train: data.train.len(),
        split_seed: a.data.split_seed,
        train: cfg,
        history: out.history,
        test_accuracy: eval.accuracy(),
        test_loss: eval.mean_loss,
        checkpoints: entries,
        wall_time_s: start.elapsed().as_secs_f64(),
    };
    write_text(
        &summary_path(&a.out),
        &serde_json::to_string_pretty(&summary)?,
    )?;
    match eval.accuracy() {
        Some(acc) => println!(
            "test accuracy {:.2}% (loss {:.4}) on {} points",
            100.0 * acc,
            eval.mean_loss,
            data.test.len()
        ),
        None => println!(
            "test MSE {:.4} on {} points",
            eval.mse().unwrap_or(f64::NAN),
            data.test.len()
        ),
    }
    println!(
        "saved {} and {} in {:.1}s",
        a.out.display(),
        summary_path(&a.out).display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Signs that a finished run diverged without overflowing: the training loss
/// rose from the first epoch to the last, or a regression model predicts
/// worse than the test targets' mean (R² < 0; e.g. MSE 3.4e7 on Concrete at
/// lr 0.1).
pub fn divergence_warnings(history: &[EpochStats], r2: Option<f64>, lr: f64) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(first), Some(last)) = (history.first(), history.last())
        && history.len() > 1
        && last.train_loss > first.train_loss
    {
        out.push(format!(
            "the training loss rose from {:.4} (epoch {}) to {:.4} (epoch {}): training may \
             have diverged; try a lower --lr than {lr}",
            first.train_loss, first.epoch, last.train_loss, last.epoch
        ));
    }
    if let Some(r2) = r2
        && r2 < 0.0
    {
        out.push(format!(
            "test R² is {r2:.3}: the model predicts worse than the mean target, so training \
             probably diverged; try a lower --lr than {lr}"
        ));
    }
    out
}

pub fn run_evaluate(a: &EvaluateArgs) -> Result<()> {
    let device = device();
    let model = load_model(&a.checkpoint, &device)?;
    let summary = read_summary(&a.checkpoint)?;
    check_summary_data(&a.checkpoint, summary.as_ref(), &a.data)?;
    let data = load_data(&a.data, None)?;
    let eval = evaluate(&model, &data.test, &device)?;
    if a.json {
        let v = serde_json::json!({
            "checkpoint": a.checkpoint,
            "data": data.test.name(),
            "n_test": data.test.len(),
            "mean_loss": eval.mean_loss,
            "accuracy": eval.accuracy(),
            "mse": eval.mse(),
            "r2": eval.r2(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{} on {} ({} points)",
            a.checkpoint.display(),
            data.test.name(),
            data.test.len()
        );
        println!("  mean loss {:.4}", eval.mean_loss);
        if let Some(acc) = eval.accuracy() {
            println!("  accuracy  {:.2}%", 100.0 * acc);
        }
        if let (Some(mse), Some(r2)) = (eval.mse(), eval.r2()) {
            println!("  MSE {mse:.4}, R² {r2:.4}");
        }
    }
    Ok(())
}
