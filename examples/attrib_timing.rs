//! One-shot timing table of `benches/attrib.rs` (same setup, one run each),
//! for the dev profile (optimised) where a second release build of burn is
//! too costly:
//!
//!     cargo run -p wellspring --example attrib_timing [METHOD ...]
//!
//! (method names restrict the table to those methods).
//! Prints, per gradient method: fit seconds, attribute seconds (500 test
//! points), and for the group methods fit + attribute_groups (100 groups)
//! and the attribution-stage speedup over per-point scoring.

use std::time::Instant;

include!("../benches/attrib_setup.rs");

fn main() {
    let device = Device::flex();
    let t = Instant::now();
    let s = setup(&device);
    println!(
        "setup (train 2 epochs on {N_TRAIN}): {:.1}s",
        t.elapsed().as_secs_f64()
    );
    println!(
        "| method | fit (s) | attribute {N_TEST} (s) | fit+attribute (s) | attribute_groups {N_GROUPS} (s) | group / point attribute |"
    );
    println!("|---|---|---|---|---|---|");
    let groups = group_methods();
    let mut cases: Vec<(&str, Option<ProjectionSpec>)> =
        gradient_methods().into_iter().map(|m| (m, None)).collect();
    cases.push(("trak", Some(ProjectionSpec::Kronecker { dim: 512 })));
    let only: Vec<String> = std::env::args().skip(1).collect();
    cases.retain(|(name, _)| only.is_empty() || only.iter().any(|o| o == name));
    for (name, proj) in cases {
        let label = match proj {
            Some(p) => format!("{name} ({p})"),
            None => name.to_string(),
        };
        let t = Instant::now();
        let f = match fit(&s, name, proj) {
            Ok(f) => f,
            Err(e) => {
                println!("| {label} | error: {e} | | | | |");
                continue;
            }
        };
        let fit_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let scores = f.attribute(&s.test);
        let att_s = t.elapsed().as_secs_f64();
        if let Err(e) = scores {
            println!("| {label} | {fit_s:.2} | error: {e} | | | |");
            continue;
        }
        let (grp, ratio) = if groups.contains(&name) {
            let t = Instant::now();
            let r = f.attribute_groups(&s.groups, &s.test);
            let g = t.elapsed().as_secs_f64();
            match r {
                Ok(_) => (format!("{g:.2}"), format!("{:.2}x", att_s / g)),
                Err(e) => (format!("error: {e}"), String::new()),
            }
        } else {
            (String::new(), String::new())
        };
        println!(
            "| {label} | {fit_s:.2} | {att_s:.2} | {:.2} | {grp} | {ratio} |",
            fit_s + att_s
        );
    }
}
