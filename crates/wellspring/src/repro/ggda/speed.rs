//! `ggda-speed`: wall time of group attribution against per-point
//! attribution (GGDA, Ley et al. 2024, §4–5 and Table 3's runtimes) for
//! TracIn, influence functions (empirical Fisher, and LiSSA) and TRAK,
//! across groupers (Random, K-Means, Repr-K-Means, Grad-K-Means) and group
//! sizes, on dattri's MNIST MLP setting (5000 train × 500 test) on the CPU.
//!
//! Every run fits the method afresh and then scores either every training
//! point (`attribute`, group size 1) or every group (`attribute_groups`);
//! fitted state is lazy, so a group run never computes per-point training
//! gradients unless its method needs them (LiSSA's Gauss-Newton curvature
//! does). Fidelity is the Pearson correlation of the group scores with the
//! summed per-point scores of the same method.

use std::time::Instant;

use wellspring_attrib::{FittedAttributor, GroupingSpec, MethodOptions, ProjectionSpec, by_name};
use wellspring_core::{Grouping, ScoreMatrix};
use wellspring_data::sample;
use wellspring_report::{Cell, LineChart, Report, Table};

use crate::repro::recipes::{device, load_data, recipe, train_cached};
use crate::repro::{ReproError, RunContext, Target};

pub(in crate::repro) const TARGET: Target = Target {
    name: "ggda-speed",
    paper: "Ley et al. 2024 (GGDA), §4–5, Table 3 runtimes",
    description: "group vs per-point attribution wall time for TracIn, IF (Fisher, LiSSA) and TRAK across groupers and group sizes (MNIST MLP)",
    run,
};

/// One attribution method as GGDA names it, with our registry settings.
struct Method {
    label: &'static str,
    name: &'static str,
    params: &'static [(&'static str, &'static str)],
    projection: Option<ProjectionSpec>,
}

const METHODS: [Method; 4] = [
    Method {
        label: "TracIn",
        name: "tracin",
        params: &[],
        projection: None,
    },
    Method {
        label: "Inf. (Fisher)",
        name: "if-explicit",
        params: &[("curvature", "fisher"), ("group-kernel", "batched")],
        projection: Some(ProjectionSpec::Rademacher { dim: 512 }),
    },
    Method {
        label: "Inf. (LiSSA)",
        name: "if-lissa",
        params: &[],
        projection: None,
    },
    Method {
        label: "TRAK",
        name: "trak",
        params: &[("group-kernel", "batched")],
        projection: None,
    },
];

/// GGDA Table 3, MNIST: runtime (s) per group size 1 / 4 / 16 / 64 / 256 (GPU).
const PAPER_MNIST: [(&str, [f64; 5]); 4] = [
    ("TracIn", [208.0, 55.9, 18.1, 8.18, 5.69]),
    ("Inf. (Fisher)", [287.0, 90.7, 27.8, 9.49, 4.58]),
    ("Inf. (LiSSA)", [220.0, 71.7, 35.2, 25.5, 23.2]),
    ("TRAK", [868.0, 240.0, 87.7, 23.9, 33.0]),
];

fn pearson(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().max(1) as f64;
    let ma = a.iter().map(|&v| v as f64).sum::<f64>() / n;
    let mb = b.iter().map(|&v| v as f64).sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64 - ma, y as f64 - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    if saa > 0.0 && sbb > 0.0 {
        sab / (saa * sbb).sqrt()
    } else {
        0.0
    }
}

fn run(ctx: &RunContext) -> Result<Report, ReproError> {
    let fail = |what: String| {
        move |e: wellspring_attrib::AttribError| ReproError::Failed {
            target: TARGET.name,
            reason: format!("{what}: {e}"),
        }
    };
    let rec = recipe("mnist5k-mlp")?;
    let mut split = load_data(ctx, rec)?;
    let (n_train, n_test) = if ctx.quick { (600, 40) } else { (5000, 500) };
    split.train = sample::first_n(&split.train, n_train.min(split.train.len()))?;
    split.test = sample::first_n(&split.test, n_test.min(split.test.len()))?;
    let config = rec.model_config(&split.train)?;
    let seed = ctx.seed_for("ggda-speed.model");
    let train_config = rec.train_config(ctx.quick, seed);
    let (model, _) = train_cached(
        ctx,
        "ggda-speed-mnist-mlp",
        &split.train,
        &config,
        &train_config,
        seed,
    )?;
    let source = wellspring_attrib::ModelSource::new(model.clone(), device())
        .with_train_config(train_config.clone());
    let sizes: &[usize] = if ctx.quick {
        &[4, 16]
    } else {
        &[4, 16, 64, 256]
    };
    let groupers: &[&str] = if ctx.quick {
        &["random", "grad-kmeans"]
    } else {
        &["random", "kmeans", "repr-kmeans", "grad-kmeans"]
    };

    // groupings first (their K-means time is reported apart)
    let mut groupings: Vec<(String, usize, Grouping, f64)> = Vec::new();
    for &g in groupers {
        for &size in sizes {
            let spec: GroupingSpec = format!("{g}:size={size}")
                .parse()
                .map_err(fail(format!("grouping {g}:size={size}")))?;
            let t = Instant::now();
            let built = spec
                .build(
                    &model,
                    &split.train,
                    &device(),
                    ctx.seed_for("ggda-speed.groups"),
                )
                .map_err(fail(format!("grouping {spec}")))?;
            groupings.push((
                g.to_string(),
                size,
                built.grouping,
                t.elapsed().as_secs_f64(),
            ));
        }
    }

    let mut table = Table::new([
        "method",
        "grouper",
        "group size",
        "groups",
        "grouping (s)",
        "fit + attribute (s)",
        "speedup vs per-point",
        "fidelity r",
        "paper speedup (MNIST, GPU)",
    ])
    .title(format!(
        "Group vs per-point attribution, MNIST MLP 784-128-64-10, {} train × {} test",
        split.train.len(),
        split.test.len()
    ));
    let mut chart = LineChart::new("Speedup of group attribution (Grad-K-Means groups)")
        .x_label("group size")
        .y_label("speedup over per-point")
        .log_x(true);
    let bar = ctx.progress.bar(
        (METHODS.len() * (1 + groupings.len())) as u64,
        "ggda-speed runs",
    );
    for m in &METHODS {
        let mut opts = MethodOptions::new().seed(ctx.seed_for("ggda-speed.method"));
        for (k, v) in m.params {
            opts = opts.param(*k, *v);
        }
        if let Some(p) = m.projection {
            opts = opts.projection(p);
        }
        let method = by_name(m.name, &opts).map_err(fail(m.name.to_string()))?;
        let fit = |what: &str| -> Result<Box<dyn FittedAttributor>, ReproError> {
            method
                .fit_dyn(&source, &split.train)
                .map_err(fail(format!("{} fit ({what})", m.name)))
        };
        let t = Instant::now();
        let point: ScoreMatrix = fit("per point")?
            .attribute(&split.test)
            .map_err(fail(format!("{} attribute", m.name)))?;
        let point_s = t.elapsed().as_secs_f64();
        bar.inc(1);
        let paper = PAPER_MNIST
            .iter()
            .find(|(l, _)| *l == m.label)
            .map(|(_, v)| v);
        table.push_row([
            Cell::text(m.label),
            Cell::text("— (per point)"),
            Cell::from(1usize),
            Cell::from(split.train.len()),
            Cell::text("—"),
            Cell::num(point_s, 2),
            Cell::num(1.0, 2),
            Cell::num(1.0, 3),
            Cell::text(paper.map_or("—".into(), |v| format!("1 ({:.0} s)", v[0]))),
        ]);
        let mut series = vec![(1.0, 1.0)];
        for (g, size, grouping, grouping_s) in &groupings {
            let t = Instant::now();
            let gs = fit("groups")?
                .attribute_groups(grouping, &split.test)
                .map_err(fail(format!("{} attribute_groups {g}", m.name)))?;
            let s = t.elapsed().as_secs_f64();
            bar.inc(1);
            let sums = point
                .sum_over_groups(grouping)
                .map_err(|e| ReproError::Failed {
                    target: TARGET.name,
                    reason: format!("summing per-point scores: {e}"),
                })?;
            let r = pearson(gs.as_slice(), sums.as_slice());
            let speedup = point_s / s.max(1e-9);
            if g == "grad-kmeans" {
                series.push((*size as f64, speedup));
            }
            let paper_speedup = paper.and_then(|v| {
                [4usize, 16, 64, 256]
                    .iter()
                    .position(|x| x == size)
                    .map(|i| format!("{:.1}x", v[0] / v[i + 1]))
            });
            table.push_row([
                Cell::text(m.label),
                Cell::text(g.clone()),
                Cell::from(*size),
                Cell::from(grouping.n_groups()),
                Cell::num(*grouping_s, 2),
                Cell::num(s, 2),
                Cell::num(speedup, 2),
                Cell::num(r, 3),
                Cell::text(if g == "grad-kmeans" {
                    paper_speedup.unwrap_or_else(|| "—".into())
                } else {
                    "—".into()
                }),
            ]);
        }
        chart = chart.series(m.label, series);
    }
    bar.finish_and_clear();
    let mut report = Report::new(
        TARGET.name,
        "GGDA: group vs per-point attribution wall time",
    );
    report = report
        .paragraph(
            "Each run fits the method from scratch and scores the test set against every \
             training point (group size 1) or every group. Group scores come from batched \
             group gradients (GGDA eq. 1); Inf. (Fisher) and TRAK use GGDA's batched empirical \
             Fisher of the group gradients, so their group runs compute no per-point gradient; \
             TracIn needs none either; Inf. (LiSSA) keeps the per-point Gauss-Newton \
             curvature, so only its training-gradient term shrinks (GGDA: 'methods like Inf. \
             LiSSA show less pronounced group-wise speedups'). Fidelity r = Pearson correlation \
             of the group scores with the summed per-point scores of the same method.",
        )
        .setting("recipe", rec.name)
        .setting("train_points", split.train.len() as u64)
        .setting("test_points", split.test.len() as u64)
        .setting("group_sizes", format!("{sizes:?}"))
        .setting("groupers", groupers.join(", "))
        .setting(
            "device",
            "flex (CPU), 2 rayon threads on the development machine",
        )
        .setting(
            "methods",
            "tracin (kronecker:512); if-explicit curvature=fisher group-kernel=batched \
             (rademacher:512); if-lissa (gn, kronecker:512, depth 200, batch 64); trak M=1 \
             group-kernel=batched (rademacher:512)",
        )
        .table(table)
        .plot("ggda-speed-speedup", chart)
        .note(
            "Paper speedups are GGDA Table 3's MNIST runtimes (per-point time / group time, \
             Grad-K-Means groups, GPU, their ANN); ours are CPU wall times of this crate.",
        )
        .note(
            "Our per-point path is already cheap where per-example gradients are projected \
             straight from the layer factors (Kronecker, TracIn and LiSSA): the test-side \
             gradients and the solve then dominate and groups cannot save much. The dense \
             Rademacher projection (Fisher, TRAK) makes per-point gradients expensive, which is \
             the regime GGDA targets.",
        );
    if ctx.quick {
        report = report.note(format!(
            "--quick: {} training / {} test points, 2 epochs, groupers random and grad-kmeans, \
             group sizes 4 and 16; timings at this size are dominated by fixed costs.",
            split.train.len(),
            split.test.len()
        ));
    }
    Ok(report)
}
