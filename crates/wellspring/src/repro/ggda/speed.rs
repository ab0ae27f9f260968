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
//! does). The speedup charges each group run with the grouping (K-means)
//! that produced its groups; the attribution-only speedup is shown beside it.
//! Fidelity is the Pearson correlation of the group scores with the summed
//! per-point scores of the same method.

use std::time::Instant;

use wellspring_attrib::{FittedAttributor, GrouperKind, GroupingSpec, ModelSource};
use wellspring_core::{Dataset, Grouping, ScoreMatrix};
use wellspring_data::sample;
use wellspring_group::GroupAmount;
use wellspring_report::{Cell, LineChart, Report, Table};

use super::common::{INF_FISHER, INF_LISSA, METHOD_SETTINGS, TRACIN, TRAK};
use crate::repro::method::MethodSpec;
use crate::repro::recipes::{MNIST5K_MLP, device, load_data, train_cached};
use crate::repro::{ReproError, RunContext, Target};

pub(in crate::repro) const TARGET: Target = Target {
    name: "ggda-speed",
    paper: "Ley et al. 2024 (GGDA), §4–5, Table 3 runtimes",
    description: "group vs per-point attribution wall time for TracIn, IF (Fisher, LiSSA) and TRAK across groupers and group sizes (MNIST MLP)",
    run,
};

/// The methods GGDA times, with GGDA App. B.3's settings (no `--quick`
/// cuts: the timings are the point).
const METHODS: [MethodSpec; 4] = [TRACIN, INF_FISHER, INF_LISSA, TRAK];

/// GGDA Table 3, MNIST: runtime (s) per group size 1 / 4 / 16 / 64 / 256 (GPU).
const PAPER_MNIST: [(&str, [f64; 5]); 4] = [
    ("TracIn", [208.0, 55.9, 18.1, 8.18, 5.69]),
    ("Inf. (Fisher)", [287.0, 90.7, 27.8, 9.49, 4.58]),
    ("Inf. (LiSSA)", [220.0, 71.7, 35.2, 25.5, 23.2]),
    ("TRAK", [868.0, 240.0, 87.7, 23.9, 33.0]),
];

/// The group sizes of the paper's table.
const PAPER_SIZES: [usize; 4] = [4, 16, 64, 256];

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

/// The sizes of one run: full or `--quick`.
struct Settings {
    n_train: usize,
    n_test: usize,
    sizes: &'static [usize],
    groupers: &'static [GrouperKind],
}

impl Settings {
    fn new(quick: bool) -> Self {
        if quick {
            Settings {
                n_train: 600,
                n_test: 40,
                sizes: &[4, 16],
                groupers: &[GrouperKind::Random, GrouperKind::GradKMeans],
            }
        } else {
            Settings {
                n_train: 5000,
                n_test: 500,
                sizes: &[4, 16, 64, 256],
                groupers: &[
                    GrouperKind::Random,
                    GrouperKind::KMeans,
                    GrouperKind::ReprKMeans,
                    GrouperKind::GradKMeans,
                ],
            }
        }
    }
}

/// The trained model and the data it is attributed on.
struct Setup {
    train: Dataset,
    test: Dataset,
    source: ModelSource,
}

/// One grouping: grouper, group size, groups, K-means seconds.
struct Grouped {
    kind: GrouperKind,
    size: usize,
    grouping: Grouping,
    seconds: f64,
}

/// One method's per-point run and its group runs.
struct Row {
    method: &'static str,
    point_s: f64,
    /// Per grouping (same order): seconds and fidelity r.
    groups: Vec<(f64, f64)>,
}

fn run(ctx: &RunContext) -> Result<Report, ReproError> {
    let st = Settings::new(ctx.quick);
    let s = setup(ctx, &st)?;
    let groupings = groupings(ctx, &st, &s)?;
    let rows = rows(ctx, &s, &groupings)?;
    Ok(report(ctx, &st, &s, &groupings, &rows))
}

fn setup(ctx: &RunContext, st: &Settings) -> Result<Setup, ReproError> {
    let rec = &MNIST5K_MLP;
    let mut split = load_data(ctx, rec)?;
    split.train = sample::first_n(&split.train, st.n_train.min(split.train.len()))?;
    split.test = sample::first_n(&split.test, st.n_test.min(split.test.len()))?;
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
    let source = ModelSource::new(model, device()).with_train_config(train_config);
    Ok(Setup {
        train: split.train,
        test: split.test,
        source,
    })
}

/// Every grouper at every size, built first (their K-means time is
/// reported apart).
fn groupings(ctx: &RunContext, st: &Settings, s: &Setup) -> Result<Vec<Grouped>, ReproError> {
    let mut out = Vec::new();
    for &kind in st.groupers {
        for &size in st.sizes {
            let spec = GroupingSpec {
                kind,
                amount: GroupAmount::Size(size),
            };
            let t = Instant::now();
            let built = spec.build(
                &s.source.model,
                &s.train,
                &device(),
                ctx.seed_for("ggda-speed.groups"),
            )?;
            out.push(Grouped {
                kind,
                size,
                grouping: built.grouping,
                seconds: t.elapsed().as_secs_f64(),
            });
        }
    }
    Ok(out)
}

/// Each method fitted afresh for the per-point run and for every group run.
fn rows(ctx: &RunContext, s: &Setup, groupings: &[Grouped]) -> Result<Vec<Row>, ReproError> {
    let bar = ctx.progress.bar(
        (METHODS.len() * (1 + groupings.len())) as u64,
        "ggda-speed runs",
    );
    let mut rows = Vec::new();
    for m in &METHODS {
        let method = m.build(&m.options(ctx.seed_for("ggda-speed.method")))?;
        let fit = || -> Result<Box<dyn FittedAttributor>, ReproError> {
            Ok(method.fit_dyn(&s.source, &s.train)?)
        };
        let t = Instant::now();
        let point: ScoreMatrix = fit()?.attribute(&s.test)?;
        let point_s = t.elapsed().as_secs_f64();
        bar.inc(1);
        let mut groups = Vec::new();
        for g in groupings {
            let t = Instant::now();
            let gs = fit()?.attribute_groups(&g.grouping, &s.test)?;
            let secs = t.elapsed().as_secs_f64();
            bar.inc(1);
            let sums = point.sum_over_groups(&g.grouping)?;
            groups.push((secs, pearson(gs.as_slice(), sums.as_slice())));
        }
        rows.push(Row {
            method: m.label,
            point_s,
            groups,
        });
    }
    bar.finish_and_clear();
    Ok(rows)
}

fn report(
    ctx: &RunContext,
    st: &Settings,
    s: &Setup,
    groupings: &[Grouped],
    rows: &[Row],
) -> Report {
    let (table, chart) = table_and_chart(s, groupings, rows);
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
             LiSSA show less pronounced group-wise speedups'). Speedup = per-point seconds / \
             (grouping seconds + group fit + attribute seconds): a group run needs its groups, \
             so the K-means (or random) grouping is charged to it; the attribution-only speedup \
             leaves it out. Fidelity r = Pearson correlation of the group scores with the \
             summed per-point scores of the same method.",
        )
        .setting("recipe", MNIST5K_MLP.name)
        .setting("train_points", s.train.len() as u64)
        .setting("test_points", s.test.len() as u64)
        .setting("group_sizes", format!("{:?}", st.sizes))
        .setting(
            "groupers",
            st.groupers
                .iter()
                .map(GrouperKind::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        )
        .setting(
            "device",
            "flex (CPU), 2 rayon threads on the development machine",
        )
        .setting(
            "methods",
            format!(
                "tracin (kronecker:512); if-explicit curvature=fisher group-kernel=batched \
                 (rademacher:32); if-lissa (gn, kronecker:512, damping 0.001, repeat 20, depth \
                 200, scale 50, batch 64); trak M=1 group-kernel=batched (rademacher:32). \
                 {METHOD_SETTINGS}"
            ),
        )
        .table(table)
        .plot("ggda-speed-speedup", chart)
        .note(
            "Paper speedups are GGDA Table 3's MNIST runtimes (per-point time / group time, \
             Grad-K-Means groups, GPU, their ANN; whether they include the grouping is not \
             stated); ours are CPU wall times of this crate.",
        )
        .note(
            "Our per-point path is already cheap where per-example gradients are projected \
             straight from the layer factors (Kronecker, TracIn and LiSSA): the test-side \
             gradients and the solve then dominate and groups cannot save much. The dense \
             Rademacher projection (Fisher, TRAK) materialises each per-example gradient before \
             projecting it, which is the regime GGDA targets; at GGDA's 32 dimensions the \
             projection itself is cheap.",
        );
    if ctx.quick {
        report = report.note(format!(
            "--quick: {} training / {} test points, 2 epochs, groupers random and grad-kmeans, \
             group sizes 4 and 16; timings at this size are dominated by fixed costs.",
            s.train.len(),
            s.test.len()
        ));
    }
    report
}

/// The timing table (one row per method and grouping) and the speedup
/// curves of the Grad-K-Means groups.
fn table_and_chart(s: &Setup, groupings: &[Grouped], rows: &[Row]) -> (Table, LineChart) {
    let mut table = Table::new([
        "method",
        "grouper",
        "group size",
        "groups",
        "grouping (s)",
        "fit + attribute (s)",
        "speedup vs per-point (incl. grouping)",
        "fidelity r",
        "speedup, attribution only",
        "paper speedup (MNIST, GPU)",
    ])
    .title(format!(
        "Group vs per-point attribution, MNIST MLP 784-128-64-10, {} train × {} test",
        s.train.len(),
        s.test.len()
    ));
    let mut chart =
        LineChart::new("Speedup of group attribution incl. grouping (Grad-K-Means groups)")
            .x_label("group size")
            .y_label("speedup over per-point")
            .log_x(true);
    for r in rows {
        let paper = PAPER_MNIST
            .iter()
            .find(|(l, _)| *l == r.method)
            .map(|(_, v)| v);
        table.push_row([
            Cell::text(r.method),
            Cell::text("— (per point)"),
            Cell::from(1usize),
            Cell::from(s.train.len()),
            Cell::text("—"),
            Cell::num(r.point_s, 2),
            Cell::num(1.0, 2),
            Cell::num(1.0, 3),
            Cell::num(1.0, 2),
            Cell::text(paper.map_or("—".into(), |v| format!("1 ({:.0} s)", v[0]))),
        ]);
        let mut series = vec![(1.0, 1.0)];
        for (g, &(secs, r_fid)) in groupings.iter().zip(&r.groups) {
            let speedup = r.point_s / (g.seconds + secs).max(1e-9);
            let attribution_only = r.point_s / secs.max(1e-9);
            let grad = g.kind == GrouperKind::GradKMeans;
            if grad {
                series.push((g.size as f64, speedup));
            }
            let paper_speedup = paper.and_then(|v| {
                PAPER_SIZES
                    .iter()
                    .position(|x| *x == g.size)
                    .map(|i| format!("{:.1}x", v[0] / v[i + 1]))
            });
            table.push_row([
                Cell::text(r.method),
                Cell::text(g.kind.as_str()),
                Cell::from(g.size),
                Cell::from(g.grouping.n_groups()),
                Cell::num(g.seconds, 2),
                Cell::num(secs, 2),
                Cell::num(speedup, 2),
                Cell::num(r_fid, 3),
                Cell::num(attribution_only, 2),
                Cell::text(if grad {
                    paper_speedup.unwrap_or_else(|| "—".into())
                } else {
                    "—".into()
                }),
            ]);
        }
        chart = chart.series(r.method, series);
    }
    (table, chart)
}
