//! `wellspring quickstart`: train the MNIST MLP on embedded data, attribute a
//! few test predictions with every quick method, print the most helpful
//! training digits and each method's LDS (Park et al. 2023) against models
//! retrained on random halves (cached), and write a report — no download.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use wellspring_attrib::methods::{self, MethodOptions};
use wellspring_attrib::{FittedAttributor, ModelSource, ProjectionSpec};
use wellspring_core::ScoreMatrix;
use wellspring_eval::{ExemplarCount, IdenticalClass, Lds, ModelRetrainer, Output};
use wellspring_models::{Model, ModelConfig, Optimizer, Schedule, TrainConfig, evaluate, train};
use wellspring_report::{BarChart, Cache, Cell, Report, Table, progress};

use crate::DataArgs;
use crate::ascii::{side_by_side, thumbnail};
use crate::common::{Summary, check_out_dir, device, load_data, summary_path, write_text};

/// The methods the quickstart compares (gradient methods with
/// [`GRADIENT_PROJECTION`]).
const QUICKSTART_METHODS: &[&str] = &["pae", "emb-cos", "rps", "tracin", "trak"];

/// Projection of the gradient methods: Kronecker-structured, computed from
/// the layer factors (a dense 512-d projection of 10 000 gradients of
/// 109 386 parameters alone takes ~10 s on two cores).
const GRADIENT_PROJECTION: ProjectionSpec = ProjectionSpec::Kronecker { dim: 512 };

/// Arguments of `wellspring quickstart`.
#[derive(Args, Debug)]
pub struct QuickstartArgs {
    /// Directory for the report, the checkpoint and its summary.
    #[arg(long, default_value = "results/quickstart")]
    pub out: PathBuf,
    /// Training points (the first N of MNIST's training split).
    #[arg(long, default_value_t = 10000)]
    pub n_train: usize,
    /// Test points attributed (the first M of the test split).
    #[arg(long, default_value_t = 100)]
    pub n_test: usize,
    /// Test points printed with their top training digits.
    #[arg(long, default_value_t = 3)]
    pub show: usize,
    /// Training epochs.
    #[arg(long, default_value_t = 6)]
    pub epochs: usize,
    /// Seed of the weights, shuffles and methods.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Directory holding the datasets (default: $WELLSPRING_DATA, else the repository's datasets/).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Random half-subsets retrained for each method's LDS (0: skip LDS).
    /// Retrained models are cached ($WELLSPRING_CACHE, else target/wellspring-cache).
    #[arg(long, default_value_t = 16)]
    pub lds_subsets: usize,
    /// Methods to compare, comma-separated (default: pae, emb-cos, rps, tracin, trak).
    #[arg(long, value_delimiter = ',')]
    pub methods: Vec<String>,
}

struct MethodRun {
    name: String,
    scores: ScoreMatrix,
    fit_s: f64,
    attribute_s: f64,
    same_class: f64,
    exemplars: usize,
    /// Mean and standard error of the per-test-point LDS.
    lds: Option<(f64, f64)>,
}

pub fn run(a: &QuickstartArgs) -> Result<()> {
    let start = Instant::now();
    // Everything that can be wrong with the arguments fails here, before training.
    if a.n_test == 0 {
        bail!("--n-test 0: need at least one test point to attribute");
    }
    if a.lds_subsets == 1 {
        bail!("--lds-subsets 1: the LDS needs at least 2 retrained subsets (0 skips it)");
    }
    let names: Vec<String> = if a.methods.is_empty() {
        QUICKSTART_METHODS.iter().map(|s| s.to_string()).collect()
    } else {
        a.methods.clone()
    };
    for name in &names {
        methods::info(name).with_context(|| format!("--methods {name}"))?;
    }
    if a.show > a.n_test {
        eprintln!(
            "warning: --show {} exceeds --n-test {}; showing {}",
            a.show, a.n_test, a.n_test
        );
    }
    check_out_dir(&a.out, "--out")?;
    let device = device();
    let data = load_data(
        &DataArgs {
            data: "mnist".into(),
            n_train: Some(a.n_train),
            n_test: None,
            data_dir: a.data_dir.clone(),
            split_seed: 0,
        },
        None,
    )?;
    let (train_set, full_test) = (&data.train, &data.test);
    let test = crate::common::first(full_test, Some(a.n_test), "--n-test")?;

    // 1. Train dattri's MNIST MLP (784-128-64-10, dropout 0.1).
    let cfg = TrainConfig::params()
        .epochs(a.epochs)
        .batch_size(128)
        .optimizer(Optimizer::sgd_momentum(0.9))
        .lr(0.1)
        .schedule(Schedule::Cosine { min_lr: 0.0 })
        .seed(a.seed)
        .check()?;
    let model_config = ModelConfig::mnist_mlp();
    let bar = progress::bar(a.epochs as u64, "training the MNIST MLP");
    let t = Instant::now();
    let model = Model::new(model_config.clone(), a.seed, &device)?;
    let trained = train(
        model,
        train_set,
        None,
        &cfg,
        &device,
        Some(&mut |_| bar.inc(1)),
    )?;
    bar.finish_and_clear();
    let train_s = t.elapsed().as_secs_f64();
    let eval = evaluate(&trained.model, full_test, &device)?;
    let acc = eval.accuracy().unwrap_or(f64::NAN);
    println!(
        "trained an MLP on {} MNIST digits in {train_s:.1}s: test accuracy {:.2}% on {} digits",
        train_set.len(),
        100.0 * acc,
        full_test.len()
    );
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let ckpt = a.out.join("mnist_mlp.ckpt");
    trained.model.save(&ckpt)?;
    let summary = Summary {
        model: "mlp".into(),
        config: trained.model.config.clone(),
        data: "mnist".into(),
        n_train: train_set.len(),
        split_seed: 0,
        train: cfg.clone(),
        history: trained.history.clone(),
        test_accuracy: Some(acc),
        test_loss: eval.mean_loss,
        checkpoints: Vec::new(),
        wall_time_s: train_s,
    };
    write_text(
        &summary_path(&ckpt),
        &serde_json::to_string_pretty(&summary)?,
    )?;

    // 2. Attribute the test points with each method.
    let source =
        ModelSource::new(trained.model.clone(), device.clone()).with_train_config(cfg.clone());
    let train_labels = train_set.labels_checked()?;
    let test_labels = test.labels_checked()?;
    let mut runs = Vec::new();
    for name in names {
        let name = name.as_str();
        let spin = progress::spinner(format!("attributing with {name}"));
        let mut opts = MethodOptions::new().seed(a.seed);
        if methods::info(name)?.uses_gradients {
            opts = opts.projection(GRADIENT_PROJECTION);
        }
        let method = methods::by_name(name, &opts)?;
        let t = Instant::now();
        let fitted: Box<dyn FittedAttributor> = method.fit_dyn(&source, train_set)?;
        let fit_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let scores = fitted.attribute(&test)?;
        let attribute_s = t.elapsed().as_secs_f64();
        spin.finish_and_clear();
        let same = IdenticalClass.run(&scores, train_labels, test_labels, None)?;
        let ex = ExemplarCount::new(10, 5).count(&scores, None)?;
        println!(
            "{name:>8}: fit {fit_s:.2}s, attribute {attribute_s:.2}s, top-1 same class {:.0}%, exemplars (top-10 of >= 5 test points) {}",
            100.0 * same.class_rate,
            ex.exemplars.len()
        );
        runs.push(MethodRun {
            name: name.to_string(),
            scores,
            fit_s,
            attribute_s,
            same_class: same.class_rate,
            exemplars: ex.exemplars.len(),
            lds: None,
        });
    }

    // 2b. LDS: retrain on random halves (cached), correlate predicted and actual margins.
    if a.lds_subsets >= 2 {
        let t = Instant::now();
        let retrainer = ModelRetrainer::new(train_set, &test, model_config, cfg.clone(), &device)?
            .with_cache(Cache::open_default()?);
        let lds = Lds::params().m(a.lds_subsets).alpha(0.5).seed(a.seed);
        let truth = lds.ground_truth(&retrainer)?;
        println!(
            "\nLDS (Spearman of predicted vs retrained test margins over {} random halves, \
             {:.1}s incl. cache):",
            a.lds_subsets,
            t.elapsed().as_secs_f64()
        );
        for r in &mut runs {
            let res = truth.score(&r.scores, Output::Margin)?;
            r.lds = Some((res.summary.mean, res.summary.std_err));
            println!(
                "{:>8}: LDS {:.3} +- {:.3}",
                r.name, res.summary.mean, res.summary.std_err
            );
        }
    }

    // 3. Show the most helpful training digits for a few test points.
    println!("\nmost helpful training digits (top-1 per method; scores: positive = helps)");
    let mut examples = Table::new([
        "test",
        "label",
        "method",
        "rank",
        "train index",
        "train label",
        "score",
    ])
    .title("Most helpful training points");
    for (j, &label) in test_labels.iter().enumerate().take(a.show) {
        let mut blocks = vec![(
            format!("test #{j} ({label})"),
            thumbnail(test.features().dense_row(j), 28, 4),
        )];
        for r in &runs {
            let top = r.scores.top_k(j, 3);
            blocks.push((
                format!("{} #{} ({})", r.name, top[0], train_labels[top[0]]),
                thumbnail(train_set.features().dense_row(top[0]), 28, 4),
            ));
            for (rank, &i) in top.iter().enumerate() {
                examples.push_row([
                    Cell::int(j as i64),
                    Cell::int(label as i64),
                    Cell::text(r.name.clone()),
                    Cell::int(rank as i64 + 1),
                    Cell::int(i as i64),
                    Cell::int(train_labels[i] as i64),
                    Cell::num(r.scores.get(i, j) as f64, 5),
                ]);
            }
        }
        println!();
        print!("{}", side_by_side(&blocks, 3));
        for r in &runs {
            let top = r.scores.top_k(j, 3);
            let list: Vec<String> = top
                .iter()
                .map(|&i| {
                    format!(
                        "#{i} (label {}, score {:.4})",
                        train_labels[i],
                        r.scores.get(i, j)
                    )
                })
                .collect();
            println!("  {:>8} top-3: {}", r.name, list.join(", "));
        }
    }

    // 4. Report.
    let mut table = Table::new([
        "method",
        "fit (s)",
        "attribute (s)",
        "top-1 same class",
        "exemplars (k=10, r=5)",
        "LDS",
        "LDS s.e.",
    ])
    .title(format!(
        "{} test points x {} training points",
        test.len(),
        train_set.len()
    ));
    for r in &runs {
        table.push_row([
            Cell::text(r.name.clone()),
            Cell::num(r.fit_s, 3),
            Cell::num(r.attribute_s, 3),
            Cell::num(r.same_class, 3),
            Cell::int(r.exemplars as i64),
            Cell::num(r.lds.map_or(f64::NAN, |l| l.0), 3),
            Cell::num(r.lds.map_or(f64::NAN, |l| l.1), 3),
        ]);
    }
    let chart = BarChart::new("Top-1 training point shares the test label")
        .categories(runs.iter().map(|r| r.name.clone()))
        .group("same class", runs.iter().map(|r| r.same_class))
        .y_label("fraction of test points");
    let report = Report::new("quickstart", "Quickstart: attributing an MNIST MLP's predictions")
        .paragraph(
            "An MLP (784-128-64-10) trained on the first MNIST training digits; each method scores every \
             training point for the first test digits (positive = helps). Exemplars: training points \
             in the top 10 of at least 5 test points (SVE eq. 4). LDS: Spearman correlation, per test \
             point, between summed scores and the margins of models retrained on random halves \
             (Park et al. 2023), averaged over test points.",
        )
        .setting("n_train", train_set.len())
        .setting("n_test", test.len())
        .setting("epochs", a.epochs)
        .setting("seed", a.seed)
        .setting("test_accuracy", acc)
        .setting(
            "methods",
            runs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", "),
        )
        .setting("gradient_projection", GRADIENT_PROJECTION.to_string())
        .setting("lds_subsets", a.lds_subsets)
        .table(table)
        .table(examples)
        .plot("same-class", chart)
        .timing("train", std::time::Duration::from_secs_f64(train_s), false)
        .wall_time(start.elapsed());
    let written = report.write(&a.out)?;
    println!(
        "\nreport: {} (also {} and {} plot(s)); model: {}",
        written.markdown.display(),
        written.json.display(),
        written.plots.len(),
        ckpt.display()
    );
    println!(
        "next: wellspring attribute --method esvm --checkpoint {} --data mnist --n-test 10 --out {}",
        ckpt.display(),
        a.out.join("esvm").display()
    );
    println!("done in {:.1}s", start.elapsed().as_secs_f64());
    Ok(())
}
