//! `wellspring attribute`, `wellspring self-influence`, `wellspring methods`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use wellspring_attrib::methods::{self, MethodOptions};
use wellspring_attrib::{
    DynAttributor, FittedAttributor, GroupingSpec, ModelSource, ProjectionSpec,
    attribute_streaming, score_rows,
};
use wellspring_core::{Dataset, Grouping, ScoreNpyWriter, StreamingTopK};
use wellspring_models::Model;
use wellspring_report::progress;

use crate::DataArgs;
use crate::common::{
    Summary, check_out_dir, check_out_file, check_summary_data, device, load_checkpoints,
    load_data, load_model, read_summary, write_text,
};

/// Which method, on which model.
#[derive(Args, Debug, Clone)]
pub struct MethodArgs {
    /// Attribution method (see `wellspring methods`).
    #[arg(long)]
    pub method: String,
    /// Checkpoint written by `wellspring train`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Seed of every random choice of the method (projections, groupings, SVM orders).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Gradient projection for gradient methods: identity, gaussian:D, rademacher:D, kronecker:D.
    #[arg(long)]
    pub projection: Option<String>,
    /// A method parameter KEY=VALUE (repeatable; `wellspring methods` lists them).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Further checkpoints trained with other seeds (TRAK's ensemble; repeatable).
    #[arg(long)]
    pub ensemble: Vec<PathBuf>,
}

/// Arguments of `wellspring attribute`.
#[derive(Args, Debug)]
pub struct AttributeArgs {
    #[command(flatten)]
    pub method: MethodArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Attribute to groups: random:K, kmeans:K, repr-kmeans:K, grad-kmeans:K (or KIND:size=S).
    #[arg(long)]
    pub groups: Option<String>,
    /// Training points (or groups) listed per test point in top_k.csv.
    #[arg(long, default_value_t = 10)]
    pub top_k: usize,
    /// Test points per chunk (progress granularity; results do not depend on it).
    #[arg(long, default_value_t = 256)]
    pub chunk: usize,
    /// Output directory (scores.npy, top_k.csv, attribution.json, groups.json).
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `wellspring self-influence`.
#[derive(Args, Debug)]
pub struct SelfInfluenceArgs {
    #[command(flatten)]
    pub method: MethodArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Output file: `.npy` (one f32 per training point) or `.csv` (index, label, score).
    #[arg(long)]
    pub out: PathBuf,
}

/// Methods that read `--ensemble` models.
const ENSEMBLE_METHODS: &[&str] = &["trak"];

/// The method built from the command line, plus what it was built from.
struct Prepared {
    method: Box<dyn DynAttributor>,
    options: MethodOptions,
    source: ModelSource,
    summary: Option<Summary>,
}

fn prepare(m: &MethodArgs, data: &DataArgs) -> Result<Prepared> {
    let mut options = MethodOptions::new().seed(m.seed);
    if let Some(p) = &m.projection {
        options = options.projection(p.parse::<ProjectionSpec>()?);
    }
    for kv in &m.params {
        let before = options.params.clone();
        options = options.parse_param(kv)?;
        if let Some((k, v)) = kv.split_once('=')
            && let Some(old) = before.get(k)
        {
            eprintln!("warning: --param {k} given more than once ({old}, then {v}); using {v}");
        }
    }
    let method = methods::by_name(&m.method, &options)?;
    if !m.ensemble.is_empty() && !ENSEMBLE_METHODS.contains(&m.method.as_str()) {
        eprintln!(
            "warning: --ensemble is ignored by {} (only {} use ensemble models)",
            m.method,
            ENSEMBLE_METHODS.join(", ")
        );
    }
    let device = device();
    let model = load_model(&m.checkpoint, &device)?;
    let summary = read_summary(&m.checkpoint)?;
    check_summary_data(&m.checkpoint, summary.as_ref(), data)?;
    let ensemble = m
        .ensemble
        .iter()
        .map(|p| load_model(p, &device))
        .collect::<Result<Vec<Model>>>()?;
    let mut source = ModelSource::new(model, device.clone())
        .with_checkpoints(load_checkpoints(&m.checkpoint, summary.as_ref(), &device)?)
        .with_ensemble(ensemble);
    if let Some(s) = &summary {
        source = source.with_train_config(s.train.clone());
    }
    Ok(Prepared {
        method,
        options,
        source,
        summary,
    })
}

fn fit(p: &Prepared, name: &str, train: &Dataset) -> Result<(Box<dyn FittedAttributor>, f64)> {
    let spin = progress::spinner(format!("fitting {name} on {} training points", train.len()));
    let t = Instant::now();
    let fitted = p
        .method
        .fit_dyn(&p.source, train)
        .with_context(|| format!("fitting {name}"))?;
    spin.finish_and_clear();
    Ok((fitted, t.elapsed().as_secs_f64()))
}

pub fn run_attribute(a: &AttributeArgs) -> Result<()> {
    if a.top_k == 0 {
        bail!("--top-k 0: need at least one training point per test point");
    }
    if a.chunk == 0 {
        bail!("--chunk 0: need at least one test point per chunk");
    }
    let spec: Option<GroupingSpec> = a.groups.as_deref().map(str::parse).transpose()?;
    check_out_dir(&a.out, "--out")?;
    let p = prepare(&a.method, &a.data)?;
    let data = load_data(&a.data, p.summary.as_ref().map(|s| s.n_train))?;
    let name = a.method.method.as_str();
    let (fitted, fit_s) = fit(&p, name, &data.train)?;
    let built = match &spec {
        Some(s) => Some(
            s.build(
                &p.source.model,
                &data.train,
                &p.source.device,
                a.method.seed,
            )
            .with_context(|| format!("building groups {s}"))?,
        ),
        None => None,
    };
    let grouping = built.as_ref().map(|b| &b.grouping);
    let bar = progress::bar(data.test.len() as u64, format!("attributing with {name}"));
    let t = Instant::now();
    // Scores stream straight into scores.npy (column blocks, appended) and
    // the per-test top-k: memory holds one chunk, never the whole matrix.
    let rows = score_rows(fitted.as_ref(), grouping)?;
    let npy = a.out.join("scores.npy");
    let mut writer = ScoreNpyWriter::create(&npy, rows, data.test.len())?;
    let mut top = StreamingTopK::new(a.top_k, rows);
    attribute_streaming(
        fitted.as_ref(),
        &data.test,
        a.chunk,
        grouping,
        &mut |_, block| {
            writer.write_test_block(block)?;
            top.push_test_block(block)?;
            Ok(())
        },
        &mut |done| bar.set_position(done as u64),
    )?;
    writer.finish()?;
    bar.finish_and_clear();
    let attribute_s = t.elapsed().as_secs_f64();

    let csv = a.out.join("top_k.csv");
    write_text(
        &csv,
        &top_k_csv(&top.into_lists(), &data.train, &data.test, grouping),
    )?;
    if let Some(b) = &built {
        let v = serde_json::json!({
            "spec": spec.map(|s| s.to_string()),
            "n_groups": b.grouping.n_groups(),
            "assignment": b.grouping.assignment(),
            "kmeans": b.kmeans,
        });
        write_text(&a.out.join("groups.json"), &serde_json::to_string(&v)?)?;
    }
    let meta = serde_json::json!({
        "method": name,
        "checkpoint": a.method.checkpoint,
        "data": data.name.as_str(),
        "n_train": data.train.len(),
        "n_test": data.test.len(),
        "rows": rows,
        "groups": spec.map(|s| s.to_string()),
        "seed": a.method.seed,
        "projection": p.options.projection.map(|s| s.to_string()),
        "params": p.options.params,
        "fit_seconds": fit_s,
        "attribute_seconds": attribute_s,
        "orientation": "rows = training points (or groups), columns = test points; positive = helps",
    });
    write_text(
        &a.out.join("attribution.json"),
        &serde_json::to_string_pretty(&meta)?,
    )?;
    println!(
        "{name}: {rows} x {} scores (fit {fit_s:.2}s, attribute {attribute_s:.2}s)",
        data.test.len()
    );
    println!(
        "wrote {}, {} and attribution.json",
        npy.display(),
        csv.display()
    );
    Ok(())
}

fn label(ds: &Dataset, i: usize) -> String {
    ds.labels().map(|l| l[i].to_string()).unwrap_or_default()
}

/// `top_k.csv`: per test point, its `k` highest-scoring training points (or groups).
fn top_k_csv(
    lists: &[Vec<(usize, f32)>],
    train: &Dataset,
    test: &Dataset,
    g: Option<&Grouping>,
) -> String {
    let mut out = String::new();
    match g {
        None => out.push_str("test_index,rank,train_index,score,train_label,test_label\n"),
        Some(_) => out.push_str("test_index,rank,group,score,group_size,test_label\n"),
    }
    for (j, list) in lists.iter().enumerate() {
        for (rank, &(i, score)) in list.iter().enumerate() {
            // Points: the training label; groups: the group size.
            let detail = match g {
                None => label(train, i),
                Some(g) => g.groups()[i].len().to_string(),
            };
            let _ = writeln!(
                out,
                "{j},{},{i},{score},{detail},{}",
                rank + 1,
                label(test, j)
            );
        }
    }
    out
}

pub fn run_self_influence(a: &SelfInfluenceArgs) -> Result<()> {
    let ext = a.out.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext != "npy" && ext != "csv" {
        bail!("--out {}: must end in .npy or .csv", a.out.display());
    }
    check_out_file(&a.out, "--out")?;
    if a.data.n_test.is_some() {
        eprintln!("warning: --n-test is ignored by self-influence (it scores training points)");
    }
    let p = prepare(&a.method, &a.data)?;
    let data = load_data(&a.data, p.summary.as_ref().map(|s| s.n_train))?;
    let name = a.method.method.as_str();
    let (fitted, fit_s) = fit(&p, name, &data.train)?;
    let spin = progress::spinner(format!("self-influence with {name}"));
    let t = Instant::now();
    let values = fitted.self_attribute()?;
    spin.finish_and_clear();
    write_self(&a.out, &values, &data.train)?;
    println!(
        "{name}: self-influence of {} training points (fit {fit_s:.2}s, scores {:.2}s) -> {}",
        values.len(),
        t.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}

fn write_self(path: &Path, values: &[f32], train: &Dataset) -> Result<()> {
    if path.extension().is_some_and(|e| e == "npy") {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        wellspring_core::npy::write_f32(path, &[values.len()], values)?;
    } else {
        let mut s = String::from("train_index,train_label,score\n");
        for (i, v) in values.iter().enumerate() {
            let _ = writeln!(s, "{i},{},{v}", label(train, i));
        }
        write_text(path, &s)?;
    }
    Ok(())
}

pub fn print_methods() {
    println!("{:<10} {:<5} description", "method", "grad");
    for m in methods::list() {
        println!(
            "{:<10} {:<5} {}",
            m.name,
            if m.uses_gradients { "yes" } else { "no" },
            m.description
        );
        println!("{:<16} paper: {}", "", m.paper);
        if m.caps.needs_checkpoints {
            println!(
                "{:<16} needs the training checkpoints of `wellspring train --checkpoint-every K`",
                ""
            );
        }
        if let Some(key) = m.caps.ensemble_param {
            println!(
                "{:<16} ensemble: --ensemble CHECKPOINT (repeatable) with --param {key}=M",
                ""
            );
        }
        for (k, d) in m.params {
            println!("{:<16} --param {k}=...  {d}", "");
        }
    }
    println!(
        "\ncommon options: --seed S; gradient methods also take --projection (identity, gaussian:D, rademacher:D, kronecker:D)"
    );
}
