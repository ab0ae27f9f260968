//! Tidy: house rules checked on every test run (rust-analyzer's `tidy`
//! idea), run by `cargo xtask tidy` and by this module's tests (CI runs them
//! through `cargo nextest run --workspace`). Every violation names the file
//! and the rule, and all of them are collected, so one run shows everything
//! to fix:
//!
//! - every crate under `crates/` has a `README.md` and a `description`;
//! - no placeholder or debugging macros in any `.rs` file;
//! - no `.rs` file over 800 lines;
//! - no thread-local or OS-seeded random generators (seeds are explicit);
//! - the top-level `README.md` names every crate and shows the exact test
//!   command that `.ci/run` runs;
//! - the crate layering ([`layering::LAYERS`], [`layering::GATED`],
//!   [`layering::REPRO_API`]), read from
//!   each crate's `Cargo.toml` `[dependencies]` (followed transitively through
//!   the workspace, optional ones included) and from the `wellspring_*::` /
//!   `burn::` paths in its `src/`:
//!   - core reaches no other crate and not burn;
//!   - data never reaches models;
//!   - grad never reaches attrib;
//!   - attrib, select and group never reach eval; group never reaches attrib;
//!   - eval and select reach burn (and models, which brings it) only behind
//!     their `burn` feature: the dependencies are optional, only that feature
//!     enables them, and only modules that `lib.rs` declares under
//!     `#[cfg(feature = "burn")]` name them;
//!   - the CLI (`crates/wellspring/src/bin/`) and `xtask` never reach into
//!     the reproduce targets: of `wellspring::repro` they name only the run
//!     API ([`REPRO_API`]), never a target, a paper family or the recipes.

use std::collections::BTreeMap;
use std::fmt;
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

mod layering;

/// One broken house rule.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    /// The file (relative to the workspace root, with `:line` where known).
    pub file: String,
    /// The rule and how it is broken.
    pub rule: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.rule)
    }
}

fn violation(file: impl Into<String>, rule: impl Into<String>) -> Violation {
    Violation {
        file: file.into(),
        rule: rule.into(),
    }
}

/// Every house-rule violation under the workspace `root`.
pub fn check(root: &Path) -> Vec<Violation> {
    let crates = workspace_crates(root);
    let mut v = Vec::new();
    crate_docs(root, &crates, &mut v);
    source_rules(root, &mut v);
    readme(root, &crates, &mut v);
    layering::check(root, &crates, &mut v);
    v
}

/// A workspace crate as its manifest describes it.
#[derive(Clone, Debug, Default)]
struct Manifest {
    /// Directory.
    dir: PathBuf,
    /// Package name.
    name: String,
    /// Whether `[package]` has a non-empty description.
    described: bool,
    /// `[dependencies]`: name → optional.
    deps: BTreeMap<String, bool>,
    /// `[features]`: feature → what it enables.
    features: BTreeMap<String, Vec<String>>,
}

/// Parses the parts of a `Cargo.toml` the rules need (the workspace's
/// manifests use `key = value` lines and inline tables only).
fn parse_manifest(dir: &Path, text: &str) -> Manifest {
    let mut m = Manifest {
        dir: dir.to_path_buf(),
        ..Manifest::default()
    };
    let mut section = String::new();
    for line in text.lines() {
        let line = line.split(" #").next().unwrap_or("").trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).to_string();
            continue;
        }
        let Some((k, val)) = line.split_once('=') else {
            continue;
        };
        let key = k.trim().trim_end_matches(".workspace").to_string();
        let val = val.trim();
        match section.as_str() {
            "package" if key == "name" => m.name = val.trim_matches('"').to_string(),
            "package" if key == "description" => {
                m.described = !val.trim_matches('"').trim().is_empty();
            }
            "dependencies" => {
                let optional = val.replace(' ', "").contains("optional=true");
                m.deps.insert(key, optional);
            }
            "features" => {
                let items = val
                    .trim_matches(['[', ']'])
                    .split(',')
                    .map(|s| s.trim().trim_matches('"').to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                m.features.insert(key, items);
            }
            _ => {}
        }
    }
    if m.name.is_empty() {
        m.name = dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    }
    m
}

/// Crates under `crates/` plus `xtask`, by package name.
fn workspace_crates(root: &Path) -> BTreeMap<String, Manifest> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .map(|it| it.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.push(root.join("xtask"));
    dirs.into_iter()
        .filter_map(|d| {
            let text = std::fs::read_to_string(d.join("Cargo.toml")).ok()?;
            let m = parse_manifest(&d, &text);
            Some((m.name.clone(), m))
        })
        .collect()
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

fn crate_docs(root: &Path, crates: &BTreeMap<String, Manifest>, v: &mut Vec<Violation>) {
    for (name, m) in crates {
        if !m.dir.starts_with(root.join("crates")) {
            continue;
        }
        if !m.dir.join("README.md").is_file() {
            v.push(violation(
                rel(root, &m.dir),
                format!("crate {name} has no README.md"),
            ));
        }
        if !m.described {
            v.push(violation(
                format!("{}/Cargo.toml", rel(root, &m.dir)),
                format!("crate {name} has no [package] description"),
            ));
        }
    }
}

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

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(dir, &mut out);
    out
}

fn source_rules(root: &Path, v: &mut Vec<Violation>) {
    for file in rust_files(root) {
        let r = rel(root, &file);
        let Ok(text) = std::fs::read_to_string(&file) else {
            v.push(violation(r, "not readable as UTF-8"));
            continue;
        };
        let lines = text.lines().count();
        if lines > MAX_LINES {
            v.push(violation(
                &r,
                format!("{lines} lines, more than {MAX_LINES}; split the module"),
            ));
        }
        for (i, line) in text.lines().enumerate() {
            for m in FORBIDDEN_MACROS {
                if line.contains(m) {
                    v.push(violation(
                        format!("{r}:{}", i + 1),
                        format!("`{m}` must not be committed"),
                    ));
                }
            }
            for m in FORBIDDEN_RNG {
                if line.contains(m) {
                    v.push(violation(
                        format!("{r}:{}", i + 1),
                        format!(
                            "`{m}` is not reproducible; take a seed and use wellspring_core::rng"
                        ),
                    ));
                }
            }
        }
    }
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

fn readme(root: &Path, crates: &BTreeMap<String, Manifest>, v: &mut Vec<Violation>) {
    let Ok(readme) = std::fs::read_to_string(root.join("README.md")) else {
        v.push(violation("README.md", "missing at the repository root"));
        return;
    };
    for (name, m) in crates {
        if m.dir.starts_with(root.join("crates")) && !mentions(&readme, name) {
            v.push(violation(
                "README.md",
                format!("does not mention crate {name}"),
            ));
        }
    }
    match ci_test_command(root) {
        None => v.push(violation(".ci/run", "no `cargo nextest run` line found")),
        Some(cmd) if !readme.contains(&cmd) => v.push(violation(
            "README.md",
            format!("does not show the test command of .ci/run: `{cmd}`"),
        )),
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace_root() -> PathBuf {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        p.canonicalize().unwrap_or(p)
    }

    #[test]
    fn house_rules() {
        let root = workspace_root();
        let v = check(&root);
        let lines: Vec<String> = v.iter().map(Violation::to_string).collect();
        assert!(
            v.is_empty(),
            "\n{} tidy violation(s) in {}:\n  {}\n",
            v.len(),
            root.display(),
            lines.join("\n  ")
        );
    }

    /// Writes `files` (path, text) under a fresh temporary root.
    pub(super) fn plant(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (p, text) in files {
            let p = dir.path().join(p);
            std::fs::create_dir_all(p.parent().expect("has a parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        dir
    }

    pub(super) fn all(v: &[Violation]) -> String {
        v.iter()
            .map(Violation::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The house rules other than layering find each kind of violation.
    #[test]
    fn checker_catches_planted_violations() {
        let long = "// x\n".repeat(MAX_LINES + 1);
        let bad_lib = format!(
            "fn a() {{ {}) }}\nfn b() {{ {}) }}\n",
            FORBIDDEN_MACROS[0], FORBIDDEN_MACROS[2]
        );
        let bad_rng = format!("let r = rand::{}();\n", FORBIDDEN_RNG[0]);
        let dir = plant(&[
            (
                "crates/good/Cargo.toml",
                "[package]\nname = \"good\"\ndescription = \"fine\"\n",
            ),
            ("crates/good/README.md", "# good\n"),
            ("crates/good/src/lib.rs", "//! ok\npub fn f() {}\n"),
            (
                "crates/bad/Cargo.toml",
                "[package]\nname = \"bad-crate\"\n[dependencies]\ndescription = \"no\"\n",
            ),
            ("crates/bad/src/lib.rs", &bad_lib),
            ("crates/bad/src/rng.rs", &bad_rng),
            ("crates/bad/src/long.rs", &long),
            ("target/debug/build/x.rs", FORBIDDEN_MACROS[1]),
            (
                ".ci/run",
                "set -euo pipefail\ncargo nextest run --workspace --no-fail-fast\n",
            ),
            (
                "README.md",
                "# good and bad-crates\n\n    cargo nextest run --workspace\n",
            ),
        ]);
        let v = check(dir.path());
        let text = all(&v);
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
            assert!(text.contains(e), "expected {e:?} in:\n{text}");
        }
        assert_eq!(
            v.len(),
            expect.len(),
            "unexpected extra violations:\n{text}"
        );
        assert!(!text.contains("crate good "), "{text}");
    }
}
