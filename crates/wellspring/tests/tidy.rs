//! Tidy: house rules checked on every test run (rust-analyzer's `tidy` idea),
//! also runnable as `cargo xtask tidy`. Every violation is collected and
//! printed at once, so one run shows everything to fix:
//!
//! - every crate under `crates/` has a `README.md` and a `description`;
//! - no placeholder or debugging macros in any `.rs` file;
//! - no `.rs` file over 800 lines;
//! - no thread-local or OS-seeded random generators (seeds are explicit);
//! - the top-level `README.md` names every crate and shows the exact test
//!   command that `.ci/run` runs.

use std::path::{Path, PathBuf};

const MAX_LINES: usize = 800;

/// Macro calls that must not be committed. Spelled in pieces so that this
/// file does not trip its own check.
const FORBIDDEN_MACROS: [&str; 3] = [
    concat!("todo", "!("),
    concat!("unimplemented", "!("),
    concat!("dbg", "!("),
];

/// Randomness that is not seeded explicitly.
const FORBIDDEN_RNG: [&str; 2] = [concat!("thread", "_rng"), concat!("rand::", "rng()")];

/// Directories never scanned: build output, VCS data, generated results and
/// the shared data checkout.
fn skip_dir(name: &str) -> bool {
    name.starts_with('.') || matches!(name, "target" | "results" | "shared" | "node_modules")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() && !skip_dir(&name) {
            walk(&path, out);
        } else if kind.is_file() && name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// Every `.rs` file under `root`, sorted.
fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(root, &mut out);
    out
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// Crate directories under `crates/` with their package names.
fn crates(root: &Path) -> Vec<(PathBuf, String)> {
    let Ok(entries) = std::fs::read_dir(root.join("crates")) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, String)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .map(|p| {
            let manifest = std::fs::read_to_string(p.join("Cargo.toml")).unwrap_or_default();
            let name = package_key(&manifest, "name")
                .map(|v| v.trim_matches('"').to_string())
                .unwrap_or_else(|| p.file_name().unwrap().to_string_lossy().into_owned());
            (p, name)
        })
        .collect();
    out.sort();
    out
}

/// The value of `key` (or `key.workspace`) in a manifest's `[package]` table.
fn package_key(manifest: &str, key: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if !in_package {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let k = k.trim();
            if k == key || k == format!("{key}.workspace") {
                return Some(v.trim().to_string());
            }
        }
    }
    None
}

/// Whether `text` names `word` as a whole word (`wellspring` in
/// `wellspring-core` does not count).
fn mentions(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// The test command line of `.ci/run` (the `cargo nextest` line).
fn ci_test_command(root: &Path) -> Option<String> {
    let ci = std::fs::read_to_string(root.join(".ci/run")).ok()?;
    ci.lines()
        .map(str::trim)
        .find(|l| l.starts_with("cargo nextest run"))
        .map(str::to_string)
}

/// Every house-rule violation under `root`, one line each.
fn violations(root: &Path) -> Vec<String> {
    let mut v = Vec::new();
    let crates = crates(root);
    for (dir, name) in &crates {
        if !dir.join("README.md").is_file() {
            v.push(format!("{}: crate {name} has no README.md", rel(root, dir)));
        }
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
        let described = package_key(&manifest, "description")
            .is_some_and(|d| !d.trim_matches('"').trim().is_empty());
        if !described {
            v.push(format!(
                "{}/Cargo.toml: crate {name} has no [package] description",
                rel(root, dir)
            ));
        }
    }
    for file in rust_files(root) {
        let r = rel(root, &file);
        let Ok(text) = std::fs::read_to_string(&file) else {
            v.push(format!("{r}: not readable as UTF-8"));
            continue;
        };
        let lines = text.lines().count();
        if lines > MAX_LINES {
            v.push(format!(
                "{r}: {lines} lines, more than {MAX_LINES}; split the module"
            ));
        }
        for (i, line) in text.lines().enumerate() {
            for m in FORBIDDEN_MACROS {
                if line.contains(m) {
                    v.push(format!("{r}:{}: `{m}` must not be committed", i + 1));
                }
            }
            for m in FORBIDDEN_RNG {
                if line.contains(m) {
                    v.push(format!(
                        "{r}:{}: `{m}` is not reproducible; take a seed and use wellspring_core::rng",
                        i + 1
                    ));
                }
            }
        }
    }
    match std::fs::read_to_string(root.join("README.md")) {
        Err(_) => v.push("README.md: missing at the repository root".to_string()),
        Ok(readme) => {
            for (_, name) in &crates {
                if !mentions(&readme, name) {
                    v.push(format!("README.md: does not mention crate {name}"));
                }
            }
            match ci_test_command(root) {
                None => v.push(".ci/run: no `cargo nextest run` line found".to_string()),
                Some(cmd) if !readme.contains(&cmd) => v.push(format!(
                    "README.md: does not show the test command of .ci/run: `{cmd}`"
                )),
                Some(_) => {}
            }
        }
    }
    v
}

fn workspace_root() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    p.canonicalize().unwrap_or(p)
}

#[test]
fn house_rules() {
    let root = workspace_root();
    let v = violations(&root);
    assert!(
        v.is_empty(),
        "\n{} tidy violation(s) in {}:\n  {}\n",
        v.len(),
        root.display(),
        v.join("\n  ")
    );
}

/// The checker itself finds each kind of violation in a planted tree.
#[test]
fn checker_catches_planted_violations() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let write = |p: &str, text: &str| {
        let p = root.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "crates/good/Cargo.toml",
        "[package]\nname = \"good\"\ndescription = \"fine\"\n",
    );
    write("crates/good/README.md", "# good\n");
    write("crates/good/src/lib.rs", "//! ok\npub fn f() {}\n");
    write(
        "crates/bad/Cargo.toml",
        "[package]\nname = \"bad-crate\"\n[dependencies]\ndescription = \"no\"\n",
    );
    write(
        "crates/bad/src/lib.rs",
        &format!(
            "fn a() {{ {}) }}\nfn b() {{ {}) }}\n",
            FORBIDDEN_MACROS[0], FORBIDDEN_MACROS[2]
        ),
    );
    write(
        "crates/bad/src/rng.rs",
        &format!("let r = rand::{}();\n", FORBIDDEN_RNG[0]),
    );
    write("crates/bad/src/long.rs", &"// x\n".repeat(MAX_LINES + 1));
    write("target/debug/build/x.rs", FORBIDDEN_MACROS[1]);
    write(
        ".ci/run",
        "set -euo pipefail\ncargo nextest run --workspace --no-fail-fast\n",
    );
    write(
        "README.md",
        "# good and bad-crates\n\n    cargo nextest run --workspace\n",
    );
    let v = violations(root);
    let all = v.join("\n");
    let expect = [
        "crates/bad: crate bad-crate has no README.md",
        "crates/bad/Cargo.toml: crate bad-crate has no [package] description",
        "crates/bad/src/lib.rs:1:",
        "crates/bad/src/lib.rs:2:",
        "crates/bad/src/rng.rs:1:",
        "crates/bad/src/long.rs: 801 lines",
        "README.md: does not mention crate bad-crate",
        "README.md: does not show the test command",
    ];
    for e in expect {
        assert!(all.contains(e), "expected {e:?} in:\n{all}");
    }
    assert_eq!(v.len(), expect.len(), "unexpected extra violations:\n{all}");
    assert!(!all.contains("crate good "), "{all}");
}
