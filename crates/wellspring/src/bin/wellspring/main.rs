//! The `wellspring` command line: train a model, evaluate it, attribute its
//! predictions to training data with any registered method, compute
//! self-influence, list methods, and a no-download quickstart.
//!
//! ```text
//! wellspring quickstart
//! wellspring train --model mlp --data mnist --n-train 5000 --epochs 3 --out mlp.ckpt
//! wellspring attribute --method rps --checkpoint mlp.ckpt --data mnist --n-test 100 --out attr/
//! wellspring self-influence --method emb-dot --checkpoint mlp.ckpt --data mnist --out self.csv
//! wellspring methods
//! ```

mod ascii;
mod attribute;
mod common;
mod quickstart;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Training-data attribution from the command line.
#[derive(Parser, Debug)]
#[command(name = "wellspring", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a model on a dataset and save a checkpoint (plus a JSON summary next to it).
    Train(train::TrainArgs),
    /// Evaluate a checkpoint on a dataset's test split.
    Evaluate(train::EvaluateArgs),
    /// Attribute test predictions to training points with a registered method.
    Attribute(attribute::AttributeArgs),
    /// Score every training point's influence on itself.
    SelfInfluence(attribute::SelfInfluenceArgs),
    /// List the registered attribution methods and their parameters.
    Methods,
    /// Train on embedded MNIST, attribute a few test points, print and write a report.
    Quickstart(quickstart::QuickstartArgs),
}

/// Which data: a dataset, its subsets and the seed of its split.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Dataset name (mnist, fashion-mnist, cifar10, optdigits, adult, ...).
    #[arg(long)]
    pub data: String,
    /// Use the first N training points (default: all, or what the checkpoint was trained on).
    #[arg(long)]
    pub n_train: Option<usize>,
    /// Use the first M test points (default: all).
    #[arg(long)]
    pub n_test: Option<usize>,
    /// Directory holding the datasets (default: $WELLSPRING_DATA, else the repository's datasets/).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Seed of the train/test split for datasets without an official one.
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => train::run_train(&a),
        Command::Evaluate(a) => train::run_evaluate(&a),
        Command::Attribute(a) => attribute::run_attribute(&a),
        Command::SelfInfluence(a) => attribute::run_self_influence(&a),
        Command::Methods => {
            attribute::print_methods();
            Ok(())
        }
        Command::Quickstart(a) => quickstart::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
