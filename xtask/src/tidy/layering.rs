//! The crate layering rules of [`super::check`]: what each crate may never
//! reach (through `Cargo.toml` `[dependencies]`, followed transitively, and
//! through `wellspring_*::` / `burn::` paths in its sources), what it reaches
//! only behind a feature, and the part of `wellspring::repro` the front ends
//! may name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{Manifest, Violation, rel, rust_files, violation};

/// `(crate, what it must never reach)`: transitively through `[dependencies]`
/// and directly in its sources. `burn` is the external tensor library.
pub const LAYERS: &[(&str, &[&str])] = &[
    (
        "wellspring-core",
        &[
            "wellspring-data",
            "wellspring-models",
            "wellspring-grad",
            "wellspring-attrib",
            "wellspring-group",
            "wellspring-eval",
            "wellspring-select",
            "wellspring-report",
            "wellspring",
            "burn",
        ],
    ),
    ("wellspring-data", &["wellspring-models"]),
    ("wellspring-grad", &["wellspring-attrib"]),
    ("wellspring-attrib", &["wellspring-eval"]),
    ("wellspring-select", &["wellspring-eval"]),
    (
        "wellspring-group",
        &["wellspring-eval", "wellspring-attrib"],
    ),
];

/// `(crate, feature, what it reaches only behind that feature)`.
pub const GATED: &[(&str, &str, &[&str])] = &[
    ("wellspring-eval", "burn", &["burn", "wellspring-models"]),
    ("wellspring-select", "burn", &["burn", "wellspring-models"]),
];

/// The only items of `wellspring::repro` that the CLI and `xtask` may name:
/// the registry and the run API, plus `dattri_match`, the head-to-head
/// settings and model that `lds-mnist` shares with `cargo xtask
/// compare-dattri` (so both attribute the same weights with the same
/// hyper-parameters). Targets, paper families (`sve`, `ggda`, ...), recipes
/// and method specs are the library's inside.
pub const REPRO_API: &[&str] = &[
    "self",
    "registry",
    "find",
    "run",
    "run_target",
    "run_all",
    "default_results_dir",
    "RunContext",
    "RunOutput",
    "RunFn",
    "Target",
    "ReproError",
    "dattri_match",
];

/// Where the CLI-side rule applies: the `wellspring` binary and `xtask`.
const FRONT_ENDS: [&str; 2] = ["crates/wellspring/src/bin", "xtask/src"];

/// Every layering violation under `root`.
pub(super) fn check(root: &Path, crates: &BTreeMap<String, Manifest>, v: &mut Vec<Violation>) {
    never(root, crates, v);
    for (name, feature, behind) in GATED {
        if let Some(m) = crates.get(*name) {
            gated(root, crates, m, feature, behind, v);
        }
    }
    repro_api(root, v);
}

/// Everything `name` reaches through `[dependencies]`, transitively within
/// the workspace (external crates are leaves), with the path to each.
fn reach(crates: &BTreeMap<String, Manifest>, name: &str) -> BTreeMap<String, Vec<String>> {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut stack = vec![vec![name.to_string()]];
    while let Some(path) = stack.pop() {
        let last = path.last().expect("paths are non-empty");
        let Some(m) = crates.get(last) else { continue };
        for dep in m.deps.keys() {
            if seen.contains_key(dep) || dep == name {
                continue;
            }
            let mut p = path.clone();
            p.push(dep.clone());
            seen.insert(dep.clone(), p.clone());
            stack.push(p);
        }
    }
    seen
}

/// The crate a source path segment names: `wellspring_eval` → `wellspring-eval`.
fn crate_of(segment: &str) -> String {
    segment.replace('_', "-")
}

/// Crates named by `wellspring_*::` or `burn::` paths on the code lines of
/// `text` (comments skipped), with their line numbers.
fn named_crates(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        for (at, _) in code.match_indices("::") {
            let start = code[..at]
                .rfind(|c: char| !is_ident(c))
                .map_or(0, |p| p + 1);
            let seg = &code[start..at];
            if seg == "burn" || seg.starts_with("wellspring") {
                out.push((i + 1, crate_of(seg)));
            }
        }
    }
    out
}

/// Modules `lib.rs` declares under `#[cfg(feature = "<feature>")]`.
fn gated_modules(lib: &str, feature: &str) -> BTreeSet<String> {
    let attr = format!("#[cfg(feature = \"{feature}\")]");
    let mut out = BTreeSet::new();
    let mut gated = false;
    for line in lib.lines().map(str::trim) {
        if line == attr {
            gated = true;
            continue;
        }
        if gated {
            let decl = line.strip_prefix("pub ").unwrap_or(line);
            if let Some(m) = decl.strip_prefix("mod ") {
                out.insert(m.trim_end_matches(';').trim().to_string());
            }
        }
        gated = false;
    }
    out
}

/// The [`LAYERS`] rules.
fn never(root: &Path, crates: &BTreeMap<String, Manifest>, v: &mut Vec<Violation>) {
    for (from, forbidden) in LAYERS {
        let Some(m) = crates.get(*from) else { continue };
        let manifest = format!("{}/Cargo.toml", rel(root, &m.dir));
        let reached = reach(crates, from);
        for to in *forbidden {
            if let Some(path) = reached.get(*to) {
                v.push(violation(
                    &manifest,
                    format!(
                        "layering: {from} must never reach {to}, but depends on it through {}",
                        path.join(" -> ")
                    ),
                ));
            }
        }
        for file in rust_files(&m.dir.join("src")) {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for (line, named) in named_crates(&text) {
                if forbidden.contains(&named.as_str()) {
                    v.push(violation(
                        format!("{}:{line}", rel(root, &file)),
                        format!("layering: {from} must never reach {named}"),
                    ));
                }
            }
        }
    }
}

/// `m` reaches `behind` only through optional dependencies that `feature`
/// (and no other feature) enables, and only gated modules name them.
fn gated(
    root: &Path,
    crates: &BTreeMap<String, Manifest>,
    m: &Manifest,
    feature: &str,
    behind: &[&str],
    v: &mut Vec<Violation>,
) {
    let manifest = format!("{}/Cargo.toml", rel(root, &m.dir));
    let rule = format!(
        "layering: {} reaches {} only behind its `{feature}` feature",
        m.name,
        behind.join(" and ")
    );
    // `dep:x` and `x/feature` name a dependency; a bare `x` names the
    // feature `x` when there is one, else the dependency.
    let enables = |f: &str, dep: &str| {
        m.features.get(f).is_some_and(|items| {
            items.iter().any(|i| {
                *i == format!("dep:{dep}")
                    || i.starts_with(&format!("{dep}/"))
                    || (i == dep && !m.features.contains_key(dep))
            })
        })
    };
    for (dep, optional) in &m.deps {
        let leads = behind.contains(&dep.as_str())
            || reach(crates, dep)
                .keys()
                .any(|k| behind.contains(&k.as_str()));
        if !leads {
            continue;
        }
        if !optional {
            v.push(violation(
                &manifest,
                format!("{rule}: dependency {dep} is not optional"),
            ));
        } else if !enables(feature, dep) {
            v.push(violation(
                &manifest,
                format!("{rule}: feature `{feature}` does not enable {dep}"),
            ));
        }
        for other in m.features.keys().filter(|f| *f != feature) {
            if enables(other, dep) {
                v.push(violation(
                    &manifest,
                    format!("{rule}: feature `{other}` enables {dep}"),
                ));
            }
        }
    }
    let src = m.dir.join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    let allowed = gated_modules(&lib, feature);
    for file in rust_files(&src) {
        let inner = file.strip_prefix(&src).unwrap_or(&file);
        let top = inner
            .components()
            .next()
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string()
            })
            .unwrap_or_default();
        if allowed.contains(&top) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (line, named) in named_crates(&text) {
            if behind.contains(&named.as_str()) {
                v.push(violation(
                    format!("{}:{line}", rel(root, &file)),
                    format!(
                        "{rule}: names {named} outside the modules lib.rs gates with \
                         #[cfg(feature = \"{feature}\")]"
                    ),
                ));
            }
        }
    }
}

/// Items of `wellspring::repro` named on one line: `repro::x` and the
/// first segment of every entry of `repro::{a, b::c}`.
fn repro_items(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for (at, _) in line.match_indices("repro::") {
        if line[..at].chars().next_back().is_some_and(is_ident) {
            continue; // `my_repro::`
        }
        let rest = &line[at + "repro::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let body = group.split('}').next().unwrap_or("");
            for entry in body.split(',') {
                let first = entry.trim().split("::").next().unwrap_or("").trim();
                let first = first.split_whitespace().next().unwrap_or("");
                if !first.is_empty() {
                    out.push(first.to_string());
                }
            }
        } else {
            let ident: String = rest.chars().take_while(|&c| is_ident(c)).collect();
            if !ident.is_empty() {
                out.push(ident);
            }
        }
    }
    out
}

fn repro_api(root: &Path, v: &mut Vec<Violation>) {
    for dir in FRONT_ENDS {
        for file in rust_files(&root.join(dir)) {
            if file.ends_with("xtask/src/tidy.rs") || file.starts_with(root.join("xtask/src/tidy"))
            {
                continue; // the rules' own text and fixtures
            }
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for (i, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for item in repro_items(line) {
                    if !REPRO_API.contains(&item.as_str()) {
                        v.push(violation(
                            format!("{}:{}", rel(root, &file), i + 1),
                            format!(
                                "layering: the CLI and xtask never reach into the reproduce \
                                 targets: `repro::{item}` is not part of the run API ({})",
                                REPRO_API.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::check;
    use super::super::tests::{all, plant};
    use super::*;

    fn krate(name: &str, deps: &str) -> (String, String) {
        (
            format!("crates/{name}/Cargo.toml"),
            format!("[package]\nname = \"{name}\"\ndescription = \"d\"\n\n{deps}"),
        )
    }

    /// A workspace that breaks every layering rule once is caught rule by
    /// rule, each violation naming the file and the rule.
    #[test]
    fn layering_violations_name_the_file_and_the_rule() {
        let manifests = [
            krate("wellspring-core", "[dependencies]\nburn.workspace = true\n"),
            krate(
                "wellspring-data",
                "[dependencies]\nwellspring-core.workspace = true\nwellspring-grad.workspace = true\n",
            ),
            krate(
                "wellspring-grad",
                "[dependencies]\nwellspring-models.workspace = true\n",
            ),
            krate(
                "wellspring-models",
                "[dependencies]\nburn.workspace = true\n",
            ),
            krate(
                "wellspring-group",
                "[dependencies]\nrand.workspace = true\n",
            ),
            krate(
                "wellspring-eval",
                "[features]\ndefault = [\"burn\"]\nburn = [\"dep:wellspring-models\"]\n\
                 gpu = [\"dep:burn\"]\n\n[dependencies]\n\
                 wellspring-models = { workspace = true, optional = true }\n\
                 burn = { workspace = true, optional = true }\n",
            ),
            krate(
                "wellspring",
                "[dependencies]\nwellspring-eval.workspace = true\n",
            ),
        ];
        let mut files: Vec<(String, String)> = manifests.to_vec();
        files.extend(
            [
                (
                    "crates/wellspring-group/src/lib.rs",
                    "use wellspring_attrib::Attributor;\n// wellspring_eval:: in a comment is fine\n",
                ),
                (
                    "crates/wellspring-eval/src/lib.rs",
                    "#[cfg(feature = \"burn\")]\npub mod model;\npub mod lds;\n",
                ),
                (
                    "crates/wellspring-eval/src/model/mod.rs",
                    "use wellspring_models::Model;\n",
                ),
                ("crates/wellspring-eval/src/lds.rs", "use burn::tensor::Tensor;\n"),
                (
                    "crates/wellspring/src/bin/wellspring/main.rs",
                    "use wellspring::repro::{self, RunContext, recipes::device};\n\
                     fn f() { repro::run_target(\"x\", &c); wellspring::repro::sve::table1(); }\n",
                ),
                (
                    "xtask/Cargo.toml",
                    "[package]\nname = \"xtask\"\n[dependencies]\nwellspring.workspace = true\n",
                ),
                ("xtask/src/main.rs", "use wellspring::repro::{registry, find};\n"),
            ]
            .map(|(p, t)| (p.to_string(), t.to_string())),
        );
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_str()))
            .collect();
        let dir = plant(&refs);
        let v: Vec<Violation> = check(dir.path())
            .into_iter()
            .filter(|x| x.rule.starts_with("layering"))
            .collect();
        let text = all(&v);
        let expect = [
            "crates/wellspring-core/Cargo.toml: layering: wellspring-core must never reach burn",
            "crates/wellspring-data/Cargo.toml: layering: wellspring-data must never reach \
             wellspring-models, but depends on it through wellspring-data -> wellspring-grad -> \
             wellspring-models",
            "crates/wellspring-group/src/lib.rs:1: layering: wellspring-group must never reach \
             wellspring-attrib",
            "crates/wellspring-eval/Cargo.toml: layering: wellspring-eval reaches burn and \
             wellspring-models only behind its `burn` feature: feature `burn` does not enable burn",
            "crates/wellspring-eval/Cargo.toml: layering: wellspring-eval reaches burn and \
             wellspring-models only behind its `burn` feature: feature `gpu` enables burn",
            "crates/wellspring-eval/src/lds.rs:1: layering: wellspring-eval reaches burn and \
             wellspring-models only behind its `burn` feature: names burn outside",
            "crates/wellspring/src/bin/wellspring/main.rs:1: layering: the CLI and xtask never \
             reach into the reproduce targets: `repro::recipes`",
            "crates/wellspring/src/bin/wellspring/main.rs:2: layering: the CLI and xtask never \
             reach into the reproduce targets: `repro::sve`",
        ];
        for e in expect {
            assert!(text.contains(e), "expected {e:?} in:\n{text}");
        }
        assert_eq!(
            v.len(),
            expect.len(),
            "unexpected extra violations:\n{text}"
        );
    }

    #[test]
    fn repro_items_reads_paths_and_groups() {
        assert_eq!(
            repro_items("use wellspring::repro::{self, RunContext as C, recipes::device};"),
            ["self", "RunContext", "recipes"]
        );
        assert_eq!(
            repro_items("x = repro::run_target(a); my_repro::y"),
            ["run_target"]
        );
        assert_eq!(
            gated_modules(
                "#[cfg(feature = \"burn\")]\npub mod model;\nmod lds;\n",
                "burn"
            ),
            BTreeSet::from(["model".to_string()])
        );
    }
}
