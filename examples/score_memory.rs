//! Peak memory of a large Grad-Dot attribution, streamed to disk: scores go
//! straight into a column-major `.npy` (one chunk of test points at a time)
//! and each test point's top-k is kept, so peak RSS does not grow with
//! `n_test`. Reports fit and attribute time, the file size and the process's
//! peak RSS (`VmHWM` from `/proc/self/status`):
//!
//!     cargo run -p wellspring --example score_memory -- \
//!         --n-train 60000 --n-test 60000 --out /work/tmp-bench/scores.npy
//!
//! Options: `--chunk C` (test points per chunk, default 256), `--top-k K`
//! (default 10), `--in-memory` (the old path for comparison: the whole
//! matrix in memory, then `save_npy`). Training and test points are MNIST
//! training digits (test point `j` is digit `j mod 60 000`); the model is
//! the MNIST MLP 784-128-64-10 at its seeded initialisation (no training:
//! memory and time do not depend on the weights). Not run in the tests.

use std::path::PathBuf;
use std::time::Instant;

use wellspring_attrib::methods::grad_dot::{GradDotParams, Similarity};
use wellspring_attrib::{Attributor, ModelSource, attribute_in_chunks, attribute_streaming};
use wellspring_core::{ScoreNpyWriter, StreamingTopK};
use wellspring_models::burn_types::Device;
use wellspring_models::{Model, ModelConfig};

/// Peak resident set size of this process so far, in MiB (`VmHWM`).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} {v}: not a valid value"))
        })
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n_train: usize = arg(&args, "--n-train", 60_000);
    let n_test: usize = arg(&args, "--n-test", 60_000);
    let chunk: usize = arg(&args, "--chunk", 256);
    let k: usize = arg(&args, "--top-k", 10);
    let out: PathBuf = arg(&args, "--out", PathBuf::from("/work/tmp-bench/scores.npy"));
    let in_memory = args.iter().any(|a| a == "--in-memory");

    let device = Device::flex();
    let dir = wellspring_data::DataDir::embedded().expect("repository datasets/ directory");
    let mnist = wellspring_data::mnist(&dir).expect("MNIST in datasets/");
    let pool = mnist.train;
    let train = pool
        .select(&(0..n_train).map(|i| i % pool.len()).collect::<Vec<_>>())
        .expect("indices in range");
    let test = pool
        .select(&(0..n_test).map(|j| j % pool.len()).collect::<Vec<_>>())
        .expect("indices in range");
    drop(pool);
    let model = Model::new(ModelConfig::mnist_mlp(), 0, &device).expect("valid config");
    let source = ModelSource::new(model, device);
    let base = peak_rss_mib();
    println!("grad-dot (kronecker:512), {n_train} train x {n_test} test, chunk {chunk}");
    println!("peak RSS after loading data: {base:.0} MiB");

    let t = Instant::now();
    let fitted = GradDotParams::new(Similarity::Dot)
        .fit(&source, &train)
        .expect("fit");
    // The training gradients are projected on first use; score one test
    // point so the fit time includes them.
    let one = test.select(&[0]).expect("one test point");
    wellspring_attrib::FittedAttributor::attribute(&fitted, &one).expect("warm-up");
    let fit_s = t.elapsed().as_secs_f64();
    println!(
        "fit (incl. training gradients): {fit_s:.1}s, peak RSS {:.0} MiB",
        peak_rss_mib()
    );

    let t = Instant::now();
    let mut last = Instant::now();
    let mut progress = |done: usize| {
        if last.elapsed().as_secs() >= 30 {
            last = Instant::now();
            eprintln!(
                "  {done}/{n_test} test points, {:.0}s, peak RSS {:.0} MiB",
                t.elapsed().as_secs_f64(),
                peak_rss_mib()
            );
        }
    };
    if in_memory {
        let s = attribute_in_chunks(&fitted, &test, chunk, None, &mut progress).expect("attribute");
        s.save_npy(&out).expect("save");
        let _ = s.top_k_all(k);
    } else {
        let mut w = ScoreNpyWriter::create(&out, n_train, n_test).expect("create");
        let mut top = StreamingTopK::new(k, n_train);
        attribute_streaming(
            &fitted,
            &test,
            chunk,
            None,
            &mut |_, block| {
                w.write_test_block(block)?;
                top.push_test_block(block)?;
                Ok(())
            },
            &mut progress,
        )
        .expect("attribute");
        w.finish().expect("finish");
        assert_eq!(top.into_lists().len(), n_test);
    }
    let attr_s = t.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    println!(
        "attribute + write ({}): {attr_s:.1}s, {:.2} GB on disk ({}), peak RSS {:.0} MiB",
        if in_memory {
            "in memory, then save_npy"
        } else {
            "streamed"
        },
        bytes as f64 / 1e9,
        out.display(),
        peak_rss_mib()
    );
}
