//! The report of `cargo xtask compare-dattri`: timing and agreement rows,
//! the description and the notes.

use std::path::Path;

use wellspring::attrib::ProjectionSpec;
use wellspring::core::ScoreMatrix;
use wellspring::eval::{pearson, spearman};
use wellspring_report::{Cell, Table};

use super::python::DattriRun;
use super::{WsRun, ws_paths};

pub(super) const PARAGRAPH: &str = "Both libraries attribute the same exported weights on the same \
    exported data (the first 5000 MNIST training and 500 test digits; the models of \
    `lds-mnist`, trained once by wellspring and written as safetensors in PyTorch layout). \
    Time: wellspring's fit + attribute in the xtask process; dattri's attributor construction, \
    `cache` and `attribute` in a fresh Python process (imports and data loading not timed), \
    run right after on the same machine with the same thread count (OMP_NUM_THREADS, \
    MKL_NUM_THREADS and torch.set_num_threads set to the core count). Memory: VmHWM after \
    resetting it with /proc/self/clear_refs just before the clock starts, on each side; in \
    brackets the growth over the RSS at that point. Agreement: Pearson and Spearman \
    correlation between wellspring's and dattri's scores of the 5000 training points, per \
    test point. Both matrices are n_train × n_test with positive = the training point helps \
    (dattri returns this orientation and sign for every method here; the Python side \
    checks the shape). Goal (issue G): dattri / wellspring ≥ 10 for every method at equal \
    settings, ≥ 50 for the projection methods.";

pub(super) const NOTES: [&str; 8] = [
    "Exact = no projection on either side (wellspring `--projection identity`; dattri TracIn \
     with `proj_type=identity`, its IF attributors, which take no projector). The curvature \
     is the Hessian of the mean training cross-entropy on both sides: for LR wellspring forms \
     its Gauss-Newton matrix, which for a linear model is that Hessian; for the MLP it uses \
     matrix-free Hessian-vector products (`curvature=hessian`, central differences of f64 \
     gradients), dattri autodiff Hessian-vector products.",
    "Damping: wellspring `damping=λ` and dattri `regularization=λ` both add λI to the \
     curvature (λ in the settings). LiSSA: wellspring iterates h ← b + h − (C_B + λ)h/s and \
     returns h/s; dattri iterates x ← v + (1 − d)x − C_B x/s and returns x/s, the same \
     recursion when d = λ/s, which is what dattri gets; depth, minibatch, repeats and s are \
     the same on both sides, the minibatches are drawn by each side's own generator. CG: the \
     same iteration count on both sides (wellspring's tolerance set to 1e-30 so it never \
     stops early; it does stop a column on non-positive curvature of the MLP Hessian), but \
     dattri starts from x₀ = v and wellspring from x₀ = 0, so truncated iterates differ. \
     Arnoldi: top rank eigenpairs of C + λI from the same number of Krylov iterations \
     (dattri Arnoldi, wellspring Lanczos; different random start vectors); dattri keeps \
     eigenvalues by magnitude and divides by their square roots, wellspring drops \
     non-positive ones.",
    "DataInf: one absolute λ for every layer on both sides (wellspring's new `damping` \
     option; its default is λ_l = 0.1 · mean ‖g_l‖² / d_l per layer). Layers are the same \
     three (LR: one) Linear layers, weight and bias together.",
    "EK-FAC: both sides fit the Kronecker factors and the corrected eigenvalues on the \
     dataset's labels (wellspring `labels=true`; its default samples labels from the model, \
     the true Fisher). Two things about dattri 0.3's EK-FAC: (1) torch's float32 `eigh` \
     fails to converge on MNIST's input covariance (constant-zero pixels give many repeated \
     zero eigenvalues), so the harness takes its two eigendecompositions in float64; (2) it \
     rotates a layer gradient as Q_S dW Q_Aᵀ with Q from `eigh` (eigenvectors in the \
     columns), i.e. by Q instead of Qᵀ, so its eigenvalue correction and inverse are taken \
     in a basis that is not the K-FAC eigenbasis. On the quick LR case the textbook formula \
     (Q_Sᵀ dW Q_A, float64, by hand) agrees with wellspring's scores to a per-test Pearson \
     of 1.000 and dattri's rotation only to 0.597, which is the agreement the EK-FAC rows \
     show: they compare timings of the same amount of work, not the same estimator.",
    "dattri runs inside `torch.no_grad()` (its torch.func transforms do not need the outer \
     autograd graph; with it, LiSSA keeps every recursion step's graph: on the quick LR case \
     39 s and 4.9 GB instead of 7 s and 0.9 GB, same scores), except EK-FAC, which calls \
     `backward()`.",
    "Sketched = the methods dattri can project (TracIn/Grad-Dot/Grad-Cos and TRAK; dattri's \
     IF attributors take no projector), at k = 512 on both sides. dattri projects with a \
     dense matrix (BasicProjector on CPU, regenerated in blocks of 100 columns); wellspring \
     with a dense Gaussian/Rademacher matrix of the same distribution, or with its per-layer \
     Kronecker sketch (its default). Two independent random projections agree only \
     approximately, so the agreement of sketched rows is bounded by how well each sketch \
     keeps the exact scores: the last column gives each side's Pearson correlation with \
     wellspring's exact scores. TRAK: M = 1 (the exported model), margin output \
     log p − log(1 − p), Q = 1 − p, no regularisation on either side (dattri's default \
     `regularization=0`; wellspring `lambda=0`).",
    "dattri loaders: the cache loader holds the whole training set in one batch (dattri's \
     Hessian-based attributors sum per-batch inverse-Hessian products, so one batch is the \
     only setting that solves the full-data system), and its attribute loop recomputes the \
     test-side transformation once per training batch, so training batches are as large as \
     memory allows (usually all 5000 points); test batches are smaller where dattri's \
     vmapped products need it (batch sizes per run in the settings).",
    "Times are from a shared 2-core development machine: other engineers' builds and tests \
     may run at the same time. The load average (1 min) at the start of each side's run is \
     in the table; a pair measured under very different load is less reliable than the \
     ratio suggests.",
];

fn mib(peak: Option<(f64, f64)>) -> Cell {
    peak.map_or(Cell::text("n/a"), |(p, g)| {
        Cell::text(format!("{p:.0} (+{g:.0})"))
    })
}

/// Adds the timing row of one wellspring setting; returns dattri / wellspring.
pub(super) fn row(
    t: &mut Table,
    model: &str,
    method: &str,
    w: &WsRun,
    d: &DattriRun,
    dsetting: &str,
) -> Option<f64> {
    let goal = if w.setting == "exact" { 10.0 } else { 50.0 };
    let (dcell, ratio, ratio_cell, dmem) = match (&d.outcome, &w.scores) {
        (_, Err(e)) => (
            Cell::text("—"),
            None,
            Cell::text(format!("wellspring failed: {e}")),
            Cell::text("—"),
        ),
        (Ok(m), Ok(_)) => {
            let s = m["seconds"].as_f64().unwrap_or(f64::NAN);
            let r = s / w.seconds.max(1e-9);
            let peak = m["peak_rss_mib"].as_f64();
            let start = m["start_rss_mib"].as_f64();
            let mem = match (peak, start) {
                (Some(p), Some(s0)) => Cell::text(format!("{p:.0} (+{:.0})", p - s0)),
                _ => Cell::text("n/a"),
            };
            (Cell::num(s, 2), Some(r), Cell::text(ratio_text(r)), mem)
        }
        (Err(e), Ok(_)) if e.starts_with("capped") => {
            let cap = d.spec["timeout"].as_f64();
            let r = cap.map(|c| c / w.seconds.max(1e-9));
            (
                Cell::text(format!("> cap ({e})")),
                None,
                Cell::text(r.map_or("—".into(), |r| format!("> {}", ratio_text(r)))),
                Cell::text("—"),
            )
        }
        (Err(e), Ok(_)) => (
            Cell::text(format!("dattri {e}")),
            None,
            Cell::text("—"),
            Cell::text("—"),
        ),
    };
    let verdict = ratio.map_or("—".to_string(), |r| {
        if r >= goal {
            format!("≥ {goal:.0}×: met")
        } else {
            format!("≥ {goal:.0}×: missed")
        }
    });
    t.push_row([
        Cell::text(model),
        Cell::text(method),
        Cell::text(w.setting.clone()),
        Cell::text(if dsetting == "exact" {
            "exact".to_string()
        } else {
            dsetting.to_string()
        }),
        Cell::num(w.seconds, 2),
        dcell,
        ratio_cell,
        Cell::text(verdict),
        mib(w.peak),
        dmem,
        Cell::text(format!("{:.1} / {:.1}", w.load, d.load)),
    ]);
    ratio
}

fn ratio_text(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}×")
    } else if r >= 1.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.2}×")
    }
}

/// Per-test-point Pearson and Spearman: `(mean, min)` of each, and the
/// number of test points where a correlation is undefined.
fn per_test(a: &ScoreMatrix, b: &ScoreMatrix) -> ((f64, f64), (f64, f64), usize) {
    let (mut ps, mut ss, mut undefined) = (Vec::new(), Vec::new(), 0);
    for j in 0..a.n_test() {
        let x: Vec<f64> = a.column(j).iter().map(|&v| v as f64).collect();
        let y: Vec<f64> = b.column(j).iter().map(|&v| v as f64).collect();
        match (pearson(&x, &y), spearman(&x, &y)) {
            (Some(p), Some(s)) if p.is_finite() && s.is_finite() => {
                ps.push(p);
                ss.push(s);
            }
            _ => undefined += 1,
        }
    }
    let stat = |v: &[f64]| {
        if v.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            (
                v.iter().sum::<f64>() / v.len() as f64,
                v.iter().copied().fold(f64::INFINITY, f64::min),
            )
        }
    };
    (stat(&ps), stat(&ss), undefined)
}

pub(super) fn agreement(
    t: &mut Table,
    model: &str,
    method: &str,
    w: &WsRun,
    d: &DattriRun,
    dir: &Path,
    notes: &mut Vec<String>,
) {
    let mut cells = vec![
        Cell::text(model),
        Cell::text(method),
        Cell::text(w.setting.clone()),
    ];
    let loaded = match (&w.scores, &d.outcome) {
        (Ok(p), Ok(_)) => ScoreMatrix::load_npy(p)
            .and_then(|a| Ok((a, ScoreMatrix::load_npy(&d.scores)?)))
            .map_err(|e| e.to_string()),
        _ => Err("no pair of score matrices".to_string()),
    };
    let Ok((a, b)) = loaded else {
        cells.extend((0..5).map(|_| Cell::text("—")));
        t.push_row(cells);
        return;
    };
    if a.shape() != b.shape() {
        notes.push(format!(
            "{model} {method} ({}): shapes differ, wellspring {:?} vs dattri {:?}",
            w.setting,
            a.shape(),
            b.shape()
        ));
    }
    let ((pm, pmin), (sm, smin), undefined) = per_test(&a, &b);
    let bad = b.as_slice().iter().filter(|v| !v.is_finite()).count();
    if bad > 0 || undefined > 0 {
        notes.push(format!(
            "{model} {method} ({}): dattri returned {bad} non-finite scores; correlation \
             undefined on {undefined} of {} test points (left out of mean/min).",
            w.setting,
            a.n_test()
        ));
    }
    cells.extend([
        Cell::num(pm, 3),
        Cell::num(pmin, 3),
        Cell::num(sm, 3),
        Cell::num(smin, 3),
    ]);
    let exact = ws_paths(dir, method, ProjectionSpec::Identity).0;
    let vs_exact = if w.setting != "exact" && exact.exists() {
        ScoreMatrix::load_npy(&exact).ok().map(|e| {
            let ws = per_test(&a, &e).0.0;
            let da = per_test(&b, &e).0.0;
            Cell::text(format!("{ws:.3} / {da:.3}"))
        })
    } else {
        None
    };
    cells.push(vs_exact.unwrap_or_else(|| Cell::text("—")));
    t.push_row(cells);
}
