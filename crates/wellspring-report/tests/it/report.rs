use std::time::Duration;

use wellspring_report::{
    BarChart, CdfChart, Cell, CellValue, LineChart, REPORT_SCHEMA, Report, ReportRecord, Table,
};

fn sample() -> Report {
    Report::new("demo-table", "Demo: LDS on MNIST")
        .paragraph("Linear datamodeling score of TRAK against the paper's Table 1.")
        .setting("seed", 42)
        .setting("train_size", 5000)
        .setting("method", "trak")
        .settings_from("optimizer", &serde_json::json!({"lr": 0.1, "epochs": 3}))
        .unwrap()
        .table(
            Table::new(["method", "LDS", "time (s)"])
                .title("LDS")
                .row([
                    Cell::text("TRAK"),
                    Cell::mean_std_of(&[0.30, 0.34, 0.32], 3).vs_paper(Cell::num(0.33, 2)),
                    Cell::num(12.345, 1),
                ])
                .row([
                    Cell::text("TracIn"),
                    Cell::num(0.11, 3),
                    Cell::num(f64::NAN, 1),
                ]),
        )
        .plot(
            "lds",
            LineChart::new("LDS vs. projection dim").series("trak", [(512.0, 0.2), (2048.0, 0.3)]),
        )
        .plot(
            "counts",
            BarChart::new("Class counts")
                .categories(["0", "1"])
                .group("train", [3.0, 4.0]),
        )
        .plot(
            "cdf",
            CdfChart::new("Score CDF").series("s", [0.1, 0.2, 0.9]),
        )
        .note("CPU stand-in: MNIST CNN instead of CIFAR-10 ResNet-9")
        .timing("train models", Duration::from_millis(1500), false)
        .timing("gradients", Duration::from_millis(20), true)
        .wall_time(Duration::from_secs(75))
}

#[test]
fn write_produces_markdown_json_and_svgs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let w = sample().write(&out).unwrap();
    assert_eq!(w.markdown, out.join("demo-table.md"));
    assert_eq!(w.json, out.join("demo-table.json"));
    assert_eq!(
        w.plots,
        vec![
            out.join("demo-table.svg"),
            out.join("demo-table-counts.svg"),
            out.join("demo-table-cdf.svg")
        ]
    );
    for p in &w.plots {
        assert!(std::fs::read_to_string(p).unwrap().starts_with("<svg"));
    }
    let md = std::fs::read_to_string(&w.markdown).unwrap();
    for needle in [
        "# Demo: LDS on MNIST",
        "Linear datamodeling score",
        "## Settings",
        "| seed | 42 |",
        "| method | trak |",
        "| optimizer.lr | 0.1 |",
        "| method | LDS | LDS (paper) | time (s) |",
        "| TRAK | 0.320 ± 0.020 | 0.33 | 12.3 |",
        "| TracIn | 0.110 | – | NaN |",
        "![LDS vs. projection dim](demo-table.svg)",
        "![Class counts](demo-table-counts.svg)",
        "## Notes",
        "- CPU stand-in",
        "| gradients | 0.0 s | yes |",
        "## Environment",
        "| wall time | 1 min 15 s |",
        "rustc",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }
    // Settings come before results, results before plots, plots before notes.
    let pos = |s: &str| md.find(s).unwrap();
    assert!(pos("## Settings") < pos("## Results"));
    assert!(pos("## Results") < pos("## Plots"));
    assert!(pos("## Plots") < pos("## Notes"));
    assert!(pos("## Notes") < pos("## Environment"));

    let rec = ReportRecord::read(&w.json).unwrap();
    assert_eq!(rec.schema, REPORT_SCHEMA);
    assert_eq!(rec.target, "demo-table");
    assert_eq!(rec.settings["train_size"], serde_json::json!(5000));
    assert_eq!(rec.settings["optimizer.epochs"], serde_json::json!(3));
    assert_eq!(rec.tables[0].rows.len(), 2);
    match &rec.tables[0].rows[0][1].value {
        CellValue::MeanStd { mean, n, .. } => assert!((mean - 0.32).abs() < 1e-12 && *n == Some(3)),
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        matches!(rec.tables[0].rows[1][2].value, CellValue::Num { value, .. } if value.is_nan())
    );
    assert_eq!(rec.plots.len(), 3);
    assert_eq!(rec.plots[1].file, "demo-table-counts.svg");
    assert_eq!(rec.plots[1].series[0].y, vec![3.0, 4.0]);
    assert_eq!(rec.environment.wall_time_s, 75.0);
    assert_eq!(rec.timings.len(), 2);
    assert!(rec.timings[1].cached);
    // Markdown is a pure function of the JSON.
    assert_eq!(rec.to_markdown(), md);
}

#[test]
fn bad_names_are_rejected_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let e = Report::new("bad/name", "t")
        .write(dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad/name") && e.contains("target"), "{e}");
    let e = Report::new("ok", "t")
        .plot("p", LineChart::new("a"))
        .plot("p", LineChart::new("b"))
        .write(dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("used twice"), "{e}");
    let e = Report::new("ok", "t")
        .plot("has space", LineChart::new("a"))
        .write(dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("has space"), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn rewriting_replaces_files_atomically() {
    let dir = tempfile::tempdir().unwrap();
    sample().write(dir.path()).unwrap();
    let w = sample().note("second run").write(dir.path()).unwrap();
    let md = std::fs::read_to_string(&w.markdown).unwrap();
    assert!(md.contains("second run"));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
