//! `cargo xtask`: wellspring's developer tasks. Thin on purpose: it parses
//! arguments and calls library code (`wellspring::repro`, `wellspring_data::fetch`,
//! `wellspring_report::bench`, and the house rules in [`tidy`]).

mod tidy;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use wellspring::repro::{self, RunContext};
use wellspring_data::fetch::{self, Check, FileStatus};
use wellspring_data::{CurlDownloader, DataDir, DatasetName};
use wellspring_report::{bench, format_duration, workspace_root};

mod compare_dattri;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "wellspring developer tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Regenerate a paper's table: results/<target>.md, .json and .svg plots.
    Reproduce(ReproduceArgs),
    /// Download and verify a dataset (or `all`) with curl.
    FetchData {
        /// Dataset name (`mnist`, `cifar10`, ...) or `all`.
        name: String,
        /// Directory to install into (default: $WELLSPRING_DATA, else the repository's datasets/).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run wellspring's criterion benches and collect their medians into results/bench.md.
    Bench {
        /// Run only this bench (`train_step`, `grad`, `attrib`, `select`); default all.
        #[arg(value_name = "BENCH")]
        only: Option<String>,
        /// Also save a criterion baseline under this name (default `main`).
        #[arg(long, num_args = 0..=1, default_missing_value = "main", value_name = "NAME")]
        save_baseline: Option<String>,
    },
    /// Check the house rules and the crate layering (xtask/src/tidy.rs).
    Tidy,
    /// Time and compare wellspring against dattri on lds-mnist's setting (needs PyPI once).
    CompareDattri(compare_dattri::CompareArgs),
}

#[derive(Args)]
struct ReproduceArgs {
    /// Target name (see --list), or `all`.
    #[arg(required_unless_present = "list")]
    target: Option<String>,
    /// List the targets and exit.
    #[arg(long)]
    list: bool,
    /// Run the small CPU-minutes version.
    #[arg(long)]
    quick: bool,
    /// Output directory (default: <workspace>/results).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Base seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Data directory (default: $WELLSPRING_DATA, else the repository's datasets/).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

fn main() {
    // Print the error chain ourselves: no backtrace noise when RUST_BACKTRACE is set.
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Reproduce(args) => reproduce(args),
        Cmd::FetchData { name, dir } => fetch_data(&name, dir),
        Cmd::Bench {
            only,
            save_baseline,
        } => run_bench(only, save_baseline),
        Cmd::Tidy => run_tidy(),
        Cmd::CompareDattri(args) => compare_dattri::run(args),
    }
}

fn reproduce(args: ReproduceArgs) -> Result<()> {
    if args.list {
        let w = repro::registry()
            .iter()
            .map(|t| t.name.len())
            .max()
            .unwrap_or(0);
        for t in repro::registry() {
            println!("{:w$}  {}  [{}]", t.name, t.description, t.paper);
        }
        return Ok(());
    }
    let target = args.target.expect("clap requires a target unless --list");
    let mut ctx = RunContext::new()?
        .quick(args.quick)
        .seed(args.seed)
        .data_dir(args.data_dir);
    if let Some(out) = args.out {
        ctx = ctx.out_dir(out);
    }
    if target != "all" && repro::find(&target).is_none() {
        // Let the library word the error (it lists the known targets).
        repro::run_target(&target, &ctx)?;
    }
    eprintln!("cache: {}", ctx.cache.root().display());
    if target == "all" {
        let mut failed = Vec::new();
        for (name, result) in repro::run_all(&ctx) {
            match result {
                Ok(out) => print_output(&out),
                Err(e) => {
                    eprintln!("{name}: FAILED: {e}");
                    failed.push(name);
                }
            }
        }
        if !failed.is_empty() {
            bail!("{} target(s) failed: {}", failed.len(), failed.join(", "));
        }
        return Ok(());
    }
    let out = repro::run_target(&target, &ctx)?;
    print_output(&out);
    Ok(())
}

fn print_output(out: &repro::RunOutput) {
    println!(
        "{}: done in {}",
        out.target,
        format_duration(out.wall_time.as_secs_f64())
    );
    let w = &out.written;
    for p in [&w.markdown, &w.json].into_iter().chain(&w.plots) {
        println!("  {}", p.display());
    }
}

fn run_tidy() -> Result<()> {
    let root = workspace_root();
    let violations = tidy::check(&root);
    for v in &violations {
        eprintln!("{v}");
    }
    if !violations.is_empty() {
        bail!(
            "{} tidy violation(s) in {}",
            violations.len(),
            root.display()
        );
    }
    println!("tidy: every house rule holds in {}", root.display());
    Ok(())
}

fn fetch_data(name: &str, dir: Option<PathBuf>) -> Result<()> {
    let names: Vec<DatasetName> = if name == "all" {
        DatasetName::ALL.to_vec()
    } else {
        vec![name.parse()?]
    };
    if let Some(d) = &dir {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let root = DataDir::resolve(dir.as_deref())?;
    println!(
        "installing into {} ({})",
        root.root().display(),
        root.origin()
    );
    let downloader = CurlDownloader::new();
    let mut failed = Vec::new();
    for n in names {
        let clock = Instant::now();
        match fetch::install(n, root.root(), &downloader) {
            Ok(reports) => {
                println!(
                    "{n}: ok ({})",
                    format_duration(clock.elapsed().as_secs_f64())
                );
                for r in reports {
                    println!("  {:<34} {}", r.file, describe(&r.status));
                }
            }
            Err(e) => {
                eprintln!("{n}: FAILED: {e}");
                failed.push(n.as_str());
            }
        }
    }
    if !failed.is_empty() {
        bail!("could not install: {}", failed.join(", "));
    }
    Ok(())
}

fn describe(status: &FileStatus) -> String {
    let check = |c: &Check| match c {
        Check::Stored => "sha256 of the file verified",
        Check::Content => "sha256 of the decompressed content verified",
    };
    match status {
        FileStatus::Present(c) => format!("already present, {}", check(c)),
        FileStatus::Downloaded { url, check: c } => format!("downloaded from {url}, {}", check(c)),
        FileStatus::Extracted { archive, check: c } => {
            format!("extracted from {archive}, {}", check(c))
        }
        FileStatus::Embedded(c) => format!("embedded in the repository, {}", check(c)),
        FileStatus::Skipped => "optional, no public source: skipped".to_string(),
    }
}

/// Runs the cargo that runs us (`$CARGO`) in the workspace root.
fn cargo(args: &[&str]) -> Result<()> {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&program)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(t) => std::path::absolute(PathBuf::from(&t)).unwrap_or_else(|_| t.into()),
        None => root.join("target"),
    }
}

fn run_bench(only: Option<String>, save_baseline: Option<String>) -> Result<()> {
    // Only the criterion targets: libtest in the lib target would reject
    // criterion's flags (and rerun the unit tests). The dev profile is fully
    // optimised (opt-level 3 everywhere) and already built by the tests;
    // the bench profile would inherit `release` and rebuild burn (~10 min).
    let which = only.as_deref().unwrap_or("*");
    let mut args = vec![
        "bench",
        "--profile",
        "dev",
        "-p",
        "wellspring",
        "--bench",
        which,
    ];
    if let Some(name) = &save_baseline {
        args.extend(["--", "--save-baseline", name.as_str()]);
    }
    cargo(&args)?;
    let root = workspace_root();
    let criterion = target_dir(&root).join("criterion");
    let estimates = bench::collect_criterion(&criterion)?;
    if estimates.is_empty() {
        eprintln!("no criterion results under {}", criterion.display());
    }
    for b in &estimates {
        println!("{:<50} {}", b.name, bench::format_ns(b.median_ns));
    }
    let written = bench::bench_report(&estimates)
        .setting("criterion_dir", criterion.display().to_string())
        .setting("baseline", save_baseline.unwrap_or_default())
        .write(&root.join("results"))?;
    println!("wrote {}", written.markdown.display());
    Ok(())
}
