use wellspring_report::{
    BarChart, CdfChart, Histogram, LegendPosition, LineChart, Plot, ScatterChart,
};

fn all_kinds(points: &[(f64, f64)], values: &[f64]) -> Vec<Plot> {
    vec![
        LineChart::new("line")
            .x_label("subset size")
            .y_label("accuracy")
            .series("a", points.iter().copied())
            .series("b", points.iter().map(|&(x, y)| (x, y * 2.0)))
            .markers(true)
            .into(),
        LineChart::new("loglog")
            .series("a", points.iter().copied())
            .log_x(true)
            .log_y(true)
            .into(),
        BarChart::new("bars")
            .categories(["x", "y"])
            .group("g1", values.iter().copied())
            .group("g2", values.iter().map(|v| -v))
            .into(),
        Histogram::new("hist")
            .series("h", values.iter().copied())
            .log_y(true)
            .into(),
        Histogram::new("hist2")
            .series("h1", values.iter().copied())
            .series("h2", values.iter().map(|v| v + 1.0))
            .bins(7)
            .into(),
        CdfChart::new("cdf")
            .series("c1", values.iter().copied())
            .series("c2", values.iter().map(|v| v * 3.0))
            .log_x(true)
            .into(),
        ScatterChart::new("scatter")
            .series("s", points.iter().copied())
            .diagonal(true)
            .legend(LegendPosition::Hidden)
            .into(),
    ]
}

fn render_all(points: &[(f64, f64)], values: &[f64]) {
    for plot in all_kinds(points, values) {
        let svg = plot
            .to_svg("p")
            .unwrap_or_else(|e| panic!("{}: {e}", plot.title()));
        assert!(svg.starts_with("<svg"), "{}", plot.title());
        assert!(svg.contains(plot.title()), "{}", plot.title());
        let rec = plot.record("p", "p.svg");
        for s in &rec.series {
            assert_eq!(s.x.len(), s.y.len());
            assert!(
                s.x.iter().chain(&s.y).all(|v| v.is_finite()),
                "{}",
                rec.kind
            );
        }
    }
}

#[test]
fn ordinary_data_renders_every_kind() {
    let pts: Vec<(f64, f64)> = (1..50).map(|i| (i as f64, (i as f64).sqrt())).collect();
    let vals: Vec<f64> = (0..500)
        .map(|i| ((i * 37) % 101) as f64 / 10.0 + 0.1)
        .collect();
    render_all(&pts, &vals);
    let svg = Plot::from(
        LineChart::new("t")
            .x_label("epoch")
            .series("train", pts.clone()),
    )
    .to_svg("t")
    .unwrap();
    assert!(svg.contains("epoch") && svg.contains("train"));
}

#[test]
fn degenerate_data_never_panics() {
    render_all(&[], &[]);
    render_all(&[(1.0, 1.0)], &[2.0]);
    render_all(&[(3.0, 5.0), (3.0, 5.0)], &[4.0, 4.0, 4.0]);
    render_all(&[(0.0, 0.0), (-1.0, -2.0)], &[0.0, -1.0]);
    let nasty = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
    let pts: Vec<(f64, f64)> = nasty
        .iter()
        .flat_map(|&a| nasty.iter().map(move |&b| (a, b)))
        .collect();
    render_all(&pts, &nasty);
    let mixed: Vec<(f64, f64)> = vec![
        (1.0, f64::NAN),
        (2.0, 3.0),
        (f64::INFINITY, 1.0),
        (4.0, 1e-300),
    ];
    render_all(&mixed, &[1e300, -1e300, f64::NAN, 1e-300]);
    render_all(&[(1e-300, 1.1e-300), (1.2e-300, 1e-300)], &[1e-310, 2e-310]);
    render_all(
        &[(1e15, 1e15 + 1.0), (1e15 + 2.0, 1e15)],
        &[1e15, 1e15 + 0.5],
    );
    render_all(
        &[(f64::MAX, f64::MIN), (f64::MIN_POSITIVE, 0.0)],
        &[f64::MAX, f64::MIN, 5e-324],
    );
    render_all(&[(1e-100, 1e100), (1e100, 1e-100)], &[1e-100, 1e100]);
    let empty = Plot::from(LineChart::new("nothing")).to_svg("e").unwrap();
    assert!(empty.contains("no data"));
}

#[test]
fn records_hold_what_is_drawn() {
    let plot = Plot::from(
        LineChart::new("l")
            .series("s", [(1.0, 2.0), (f64::NAN, 1.0), (-1.0, 3.0), (3.0, 4.0)])
            .log_x(true),
    );
    let rec = plot.record("l", "x.svg");
    assert_eq!(rec.series[0].x, vec![1.0, 3.0]);
    assert_eq!(rec.kind, "line");
    assert!(rec.log_x && !rec.log_y);

    let hist = Plot::from(
        Histogram::new("h")
            .series("v", [0.0, 0.5, 1.0, 1.0])
            .bins(2),
    );
    let rec = hist.record("h", "h.svg");
    assert_eq!(rec.series[0].y, vec![1.0, 3.0]);
    assert_eq!(rec.series[0].x_edges.as_deref(), Some(&[0.0, 0.5, 1.0][..]));

    let bars = Plot::from(
        BarChart::new("b")
            .categories(["only"])
            .group("g", [2.0, f64::NAN, 5.0]),
    );
    let rec = bars.record("b", "b.svg");
    assert_eq!(rec.categories, vec!["only", "2", "3"]);
    assert_eq!(rec.series[0].y, vec![2.0, 5.0]);
    assert_eq!(rec.series[0].x.len(), 2);
}
