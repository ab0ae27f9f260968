//! Fit + attribute time of every registered gradient attribution method on
//! dattri's benchmark size (MNIST MLP 784-128-64-10, 5000 training × 500
//! test digits), exact Grad-Dot / Grad-Cos / TracIn, and GGDA group attribution (100 groups) vs per-point for
//! TracIn, TRAK and the influence functions present.
//!
//!     cargo bench -p wellspring --bench attrib
//!
//! A one-shot table of the same cases: `cargo run -p wellspring --example attrib_timing`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

include!("attrib_setup.rs");

fn bench(c: &mut Criterion) {
    let device = Device::flex();
    let s = setup(&device);
    let mut g = c.benchmark_group("attrib");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for name in gradient_methods() {
        if fit(&s, name, None).is_err() {
            continue; // e.g. an explicit Hessian too large for this model
        }
        g.bench_function(format!("{name}/fit+attribute"), |b| {
            b.iter(|| {
                let f = fit(&s, name, None).expect("fits");
                black_box(f.attribute(&s.test).expect("attributes"))
            })
        });
    }
    // exact (unprojected) first-order methods: inner products from the
    // rank-1 factors (TracIn App. F), never the 5000 × 109 386 gradients
    for name in ["grad-dot", "grad-cos", "tracin"] {
        g.bench_function(format!("{name}/exact/fit+attribute"), |b| {
            b.iter(|| {
                let f = fit(&s, name, Some(ProjectionSpec::Identity)).expect("fits");
                black_box(f.attribute(&s.test).expect("attributes"))
            })
        });
    }
    for name in group_methods() {
        g.bench_function(format!("{name}/fit+attribute_groups-100"), |b| {
            b.iter(|| {
                let f = fit(&s, name, None).expect("fits");
                black_box(f.attribute_groups(&s.groups, &s.test).expect("attributes"))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
