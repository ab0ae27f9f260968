//! The `wellspring` binary end to end on a tiny MNIST subset: train →
//! attribute (points and groups) → self-influence → files exist and parse;
//! bad input → a clear message and a non-zero exit, never a panic.

use std::path::Path;
use std::process::{Command, Output};

fn wellspring(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wellspring"))
        .args(args)
        .env("WELLSPRING_QUIET", "1")
        .output()
        .expect("the wellspring binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = wellspring(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wellspring {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn fails(args: &[&str], needle: &str) {
    let out = wellspring(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "wellspring {args:?} should fail");
    assert_eq!(
        out.status.code(),
        Some(if stderr.contains("Usage") { 2 } else { 1 })
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(needle),
        "wellspring {args:?}: expected {needle:?} in:\n{stderr}"
    );
}

fn csv_rows(p: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn train_attribute_self_influence_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("lr.ckpt");
    let ckpt_s = ckpt.to_str().unwrap();
    let out = ok(&[
        "train",
        "--model",
        "logreg",
        "--data",
        "mnist",
        "--n-train",
        "200",
        "--n-test",
        "100",
        "--epochs",
        "1",
        "--out",
        ckpt_s,
    ]);
    assert!(out.contains("test accuracy"), "{out}");
    assert!(ckpt.is_file() && dir.path().join("lr.ckpt.json").is_file());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("lr.ckpt.json")).unwrap())
            .unwrap();
    assert_eq!(summary["n_train"], 200);

    // --n-train comes from the summary
    let attr = dir.path().join("attr");
    ok(&[
        "attribute",
        "--method",
        "pae",
        "--checkpoint",
        ckpt_s,
        "--data",
        "mnist",
        "--n-test",
        "5",
        "--top-k",
        "3",
        "--chunk",
        "2",
        "--out",
        attr.to_str().unwrap(),
    ]);
    let scores = wellspring_core::ScoreMatrix::load_npy(attr.join("scores.npy")).unwrap();
    assert_eq!(scores.shape(), (200, 5));
    scores.check_finite().unwrap();
    let rows = csv_rows(&attr.join("top_k.csv"));
    assert_eq!(rows.len(), 15);
    assert_eq!(rows[0].len(), 6);
    let (j, i): (usize, usize) = (rows[0][0].parse().unwrap(), rows[0][2].parse().unwrap());
    assert_eq!(i, scores.top_k(j, 1)[0]);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(attr.join("attribution.json")).unwrap())
            .unwrap();
    assert_eq!(meta["method"], "pae");

    let grouped = dir.path().join("grouped");
    ok(&[
        "attribute",
        "--method",
        "emb-cos",
        "--checkpoint",
        ckpt_s,
        "--data",
        "mnist",
        "--n-test",
        "4",
        "--groups",
        "kmeans:10",
        "--out",
        grouped.to_str().unwrap(),
    ]);
    let g = wellspring_core::ScoreMatrix::load_npy(grouped.join("scores.npy")).unwrap();
    assert_eq!(g.shape(), (10, 4));
    assert!(grouped.join("groups.json").is_file());

    let self_csv = dir.path().join("self.csv");
    ok(&[
        "self-influence",
        "--method",
        "rps",
        "--checkpoint",
        ckpt_s,
        "--data",
        "mnist",
        "--out",
        self_csv.to_str().unwrap(),
    ]);
    let rows = csv_rows(&self_csv);
    assert_eq!(rows.len(), 200);
    assert!(
        rows.iter()
            .all(|r| r[2].parse::<f32>().unwrap().is_finite())
    );
    let self_npy = dir.path().join("self.npy");
    ok(&[
        "self-influence",
        "--method",
        "emb-dot",
        "--checkpoint",
        ckpt_s,
        "--data",
        "mnist",
        "--out",
        self_npy.to_str().unwrap(),
    ]);
    let (shape, v) = wellspring_core::npy::read_f32(&self_npy).unwrap();
    assert_eq!((shape, v.len()), (vec![200], 200));

    let eval = ok(&[
        "evaluate",
        "--checkpoint",
        ckpt_s,
        "--data",
        "mnist",
        "--n-test",
        "50",
        "--json",
    ]);
    let e: serde_json::Value = serde_json::from_str(&eval).unwrap();
    assert_eq!(e["n_test"], 50);

    // bad input on a real checkpoint
    let o = attr.to_str().unwrap();
    fails(
        &[
            "attribute",
            "--method",
            "nope",
            "--checkpoint",
            ckpt_s,
            "--data",
            "mnist",
            "--out",
            o,
        ],
        "unknown attribution method",
    );
    fails(
        &[
            "attribute",
            "--method",
            "pae",
            "--checkpoint",
            ckpt_s,
            "--data",
            "mnist",
            "--top-k",
            "0",
            "--out",
            o,
        ],
        "--top-k 0",
    );
    fails(
        &[
            "attribute",
            "--method",
            "pae",
            "--checkpoint",
            ckpt_s,
            "--data",
            "mnist",
            "--projection",
            "gaussian:16",
            "--out",
            o,
        ],
        "does not use gradients",
    );
    fails(
        &[
            "attribute",
            "--method",
            "esvm",
            "--checkpoint",
            ckpt_s,
            "--data",
            "mnist",
            "--param",
            "c=-1",
            "--out",
            o,
        ],
        "esvm.c",
    );
    fails(
        &[
            "attribute",
            "--method",
            "pae",
            "--checkpoint",
            ckpt_s,
            "--data",
            "optdigits",
            "--out",
            o,
        ],
        "trained on mnist",
    );
    fails(
        &[
            "attribute",
            "--method",
            "pae",
            "--checkpoint",
            ckpt_s,
            "--data",
            "mnist",
            "--groups",
            "spectral:3",
            "--out",
            o,
        ],
        "groups",
    );
    fails(
        &[
            "attribute",
            "--method",
            "pae",
            "--checkpoint",
            ckpt_s,
            "--data",
            "mnist",
            "--n-test",
            "20000",
            "--out",
            o,
        ],
        "--n-test 20000 exceeds",
    );
    fails(
        &[
            "self-influence",
            "--method",
            "pae",
            "--checkpoint",
            ckpt_s,
            "--data",
            "mnist",
            "--out",
            "self.txt",
        ],
        ".npy or .csv",
    );
}

#[test]
fn bad_input_without_a_model() {
    fails(
        &[
            "train",
            "--model",
            "transformer",
            "--data",
            "mnist",
            "--n-train",
            "10",
            "--out",
            "x.ckpt",
        ],
        "unknown --model transformer",
    );
    fails(
        &[
            "train", "--model", "mlp", "--data", "imagenet", "--out", "x.ckpt",
        ],
        "imagenet",
    );
    fails(
        &[
            "train",
            "--model",
            "cnn",
            "--data",
            "adult",
            "--n-train",
            "10",
            "--out",
            "x.ckpt",
        ],
        "square images",
    );
    fails(
        &[
            "attribute",
            "--method",
            "pae",
            "--checkpoint",
            "/nonexistent/m.ckpt",
            "--data",
            "mnist",
            "--out",
            "o",
        ],
        "does not exist",
    );
    fails(
        &[
            "attribute",
            "--method",
            "pae",
            "--data",
            "mnist",
            "--out",
            "o",
        ],
        "--checkpoint",
    );
    let methods = ok(&["methods"]);
    for m in ["random", "pae", "emb-cos", "l2", "esvm", "rps"] {
        assert!(methods.contains(m), "{methods}");
    }
}

#[test]
fn quickstart_runs_small() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&[
        "quickstart",
        "--out",
        dir.path().to_str().unwrap(),
        "--n-train",
        "500",
        "--n-test",
        "10",
        "--epochs",
        "2",
        "--show",
        "1",
    ]);
    assert!(out.contains("top-3") && out.contains("rps"), "{out}");
    assert!(out.contains("tracin") && out.contains("trak"), "{out}");
    assert!(out.contains("LDS") && out.contains("trak: LDS"), "{out}");
    assert!(dir.path().join("quickstart.md").is_file());
    assert!(dir.path().join("quickstart.json").is_file());
    assert!(dir.path().join("mnist_mlp.ckpt").is_file());
}

fn stderr_of(args: &[&str]) -> (bool, String) {
    let out = wellspring(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.success(), stderr)
}

#[test]
fn bad_names_and_outputs_fail_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    fails(&["quickstart", "--out", d, "--n-test", "0"], "--n-test 0");
    fails(
        &["quickstart", "--out", d, "--methods", "pae,bogus"],
        "bogus",
    );
    assert!(
        !dir.path().join("mnist_mlp.ckpt").exists(),
        "nothing is trained before the arguments are checked"
    );
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let f = file.to_str().unwrap();
    fails(&["quickstart", "--out", f], "not a directory");
    fails(
        &[
            "train",
            "--model",
            "logreg",
            "--data",
            "mnist",
            "--n-train",
            "10",
            "--out",
            d,
        ],
        "is a directory",
    );
    let nested = format!("{f}/m.ckpt");
    fails(
        &[
            "train",
            "--model",
            "logreg",
            "--data",
            "mnist",
            "--n-train",
            "10",
            "--out",
            &nested,
        ],
        "--out",
    );
}

#[test]
fn trained_models_are_checked_and_inputs_validated() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("m.ckpt");
    let c = ckpt.to_str().unwrap();
    // An lr that overflows the weights: a clear error, nothing saved.
    let (ok_, err) = stderr_of(&[
        "train",
        "--model",
        "logreg",
        "--data",
        "mnist",
        "--n-train",
        "64",
        "--batch-size",
        "64",
        "--epochs",
        "1",
        "--lr",
        "1e39",
        "--out",
        c,
    ]);
    assert!(!ok_ && err.contains("training"), "{err}");
    assert!(!ckpt.exists() && !dir.path().join("m.ckpt.json").exists());
    // Divergence that stays finite (Concrete at a high lr): saved, with a warning.
    let conc = dir.path().join("concrete.ckpt");
    let (ok_, err) = stderr_of(&[
        "train",
        "--model",
        "mlp",
        "--data",
        "concrete",
        "--lr",
        "0.03",
        "--out",
        conc.to_str().unwrap(),
    ]);
    assert!(
        ok_ && err.contains("warning: test R²") && err.contains("diverged"),
        "{err}"
    );
    assert!(
        !dir.path().join("concrete.ckpt.state").exists(),
        "the per-epoch resume state is removed after a finished run"
    );
    ok(&[
        "train",
        "--model",
        "logreg",
        "--data",
        "mnist",
        "--n-train",
        "60",
        "--epochs",
        "1",
        "--out",
        c,
    ]);
    let out = dir.path().join("attr");
    let o = out.to_str().unwrap();
    // A repeated --param and an --ensemble the method ignores: warnings.
    let (ok_, err) = stderr_of(&[
        "attribute",
        "--method",
        "rps",
        "--checkpoint",
        c,
        "--data",
        "mnist",
        "--n-test",
        "3",
        "--param",
        "lambda=0.01",
        "--param",
        "lambda=0.1",
        "--ensemble",
        c,
        "--out",
        o,
    ]);
    assert!(ok_, "{err}");
    assert!(err.contains("--param lambda given more than once"), "{err}");
    assert!(err.contains("--ensemble is ignored by rps"), "{err}");
    // A summary with a negative learning rate would flip every TracIn sign.
    let summary = dir.path().join("m.ckpt.json");
    let mut s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    s["train"]["lr"] = serde_json::json!(-0.1);
    std::fs::write(&summary, serde_json::to_string(&s).unwrap()).unwrap();
    fails(
        &[
            "attribute",
            "--method",
            "tracin",
            "--checkpoint",
            c,
            "--data",
            "mnist",
            "--n-test",
            "3",
            "--out",
            o,
        ],
        "lr",
    );
}
