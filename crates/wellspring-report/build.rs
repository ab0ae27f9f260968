//! Records the compiler and target that built this crate, for the `Environment`
//! block of every report (the running binary cannot ask its own compiler).

use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(&rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=WELLSPRING_RUSTC_VERSION={version}");
    for (from, to) in [
        ("TARGET", "WELLSPRING_TARGET"),
        ("PROFILE", "WELLSPRING_PROFILE"),
        ("OPT_LEVEL", "WELLSPRING_OPT_LEVEL"),
    ] {
        let v = std::env::var(from).unwrap_or_default();
        println!("cargo:rustc-env={to}={v}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
