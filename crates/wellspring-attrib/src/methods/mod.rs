//! Every attribution method, one file each, and the registry by name that
//! the CLI and the metric harnesses use ([`by_name`], [`list`]).
//!
//! ## Adding a method: one file plus one registry line
//!
//! 1. Write `src/methods/<name>.rs` with a params struct (builder setters and
//!    `check()`), `impl Attributor for <Params>` (check first, then cache the
//!    training side), the fitted struct with `impl FittedAttributor`
//!    (assemble scores with [`crate::blocks::by_test_blocks`], check the test
//!    set with [`crate::DataSignature::check`]), rustdoc naming the paper and
//!    equation, and `pub(crate) const INFO: MethodInfo` whose `build` reads
//!    its options through an [`OptionReader`].
//! 2. Add `<name>: [INFO],` to the `registry!` list below.
//!
//! The method then appears in `wellspring methods`, runs under
//! `wellspring attribute --method <name>`, and every metric of
//! `wellspring-eval` applies to its scores.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use crate::error::{AttribError, Result};
use crate::projection::ProjectionSpec;
use crate::traits::DynAttributor;

/// Options every method is built from: a seed, an optional gradient
/// projection, and free-form `key=value` parameters (`--param c=0.1`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MethodOptions {
    /// Seed of every random choice of the method.
    pub seed: u64,
    /// Random projection of per-example gradients (gradient methods only).
    pub projection: Option<ProjectionSpec>,
    /// Method parameters by name.
    pub params: BTreeMap<String, String>,
}

impl MethodOptions {
    /// Defaults (seed 0, no projection, no parameters).
    pub fn new() -> Self {
        Self::default()
    }

    /// With a seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// With a projection.
    pub fn projection(mut self, p: ProjectionSpec) -> Self {
        self.projection = Some(p);
        self
    }

    /// With one `key=value` parameter.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }

    /// Parses `key=value` (as given to `--param`) into the parameters.
    pub fn parse_param(mut self, kv: &str) -> Result<Self> {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| AttribError::invalid_param("param", kv, "expected KEY=VALUE"))?;
        if k.is_empty() {
            return Err(AttribError::invalid_param("param", kv, "empty key"));
        }
        self.params.insert(k.to_string(), v.to_string());
        Ok(self)
    }
}

/// Reads a method's options, remembering which keys were used so that a
/// misspelt or foreign parameter is an error instead of being ignored.
#[derive(Debug)]
pub struct OptionReader<'a> {
    method: &'static str,
    opts: &'a MethodOptions,
    used: BTreeSet<String>,
}

impl<'a> OptionReader<'a> {
    /// A reader of `opts` for `method`.
    pub fn new(method: &'static str, opts: &'a MethodOptions) -> Self {
        Self {
            method,
            opts,
            used: BTreeSet::new(),
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.opts.seed
    }

    /// The projection, if one was given.
    pub fn projection(&self) -> Option<ProjectionSpec> {
        self.opts.projection
    }

    /// Parameter `key` parsed as `T`, or `None` if absent; a value that does
    /// not parse is an error naming the method, key and value.
    pub fn get<T: FromStr>(&mut self, key: &str) -> Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        self.used.insert(key.to_string());
        match self.opts.params.get(key) {
            None => Ok(None),
            Some(v) => v.parse::<T>().map(Some).map_err(|e| {
                AttribError::invalid_param(format!("{}.{key}", self.method), v, e.to_string())
            }),
        }
    }

    /// Errors if a parameter was given that the method never asked for.
    pub fn finish(self) -> Result<()> {
        let unknown: Vec<&String> = self
            .opts
            .params
            .keys()
            .filter(|k| !self.used.contains(*k))
            .collect();
        if let Some(k) = unknown.first() {
            let accepted: Vec<&str> = self.used.iter().map(String::as_str).collect();
            return Err(AttribError::invalid_param(
                format!("{}.{k}", self.method),
                &self.opts.params[*k],
                format!(
                    "unknown parameter for {}; accepted: {}",
                    self.method,
                    if accepted.is_empty() {
                        "none".to_string()
                    } else {
                        accepted.join(", ")
                    }
                ),
            ));
        }
        Ok(())
    }
}

/// A registry entry.
#[derive(Clone, Copy, Debug)]
pub struct MethodInfo {
    /// Name on the command line (`pae`, `emb-cos`, `esvm`, ...).
    pub name: &'static str,
    /// One line: what it computes.
    pub description: &'static str,
    /// Paper and equation.
    pub paper: &'static str,
    /// Whether it works on gradients (and so accepts `--projection`).
    pub uses_gradients: bool,
    /// Accepted `--param` keys with a short description each.
    pub params: &'static [(&'static str, &'static str)],
    /// What it needs from the caller and which knobs it has, for code that
    /// drives many methods generically (the reproduce targets, the CLI).
    pub caps: Capabilities,
    /// Builds the method from its options.
    pub build: fn(&mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>>,
}

/// What a method needs beyond a model and data, and which of its parameters
/// play a known role, so callers decide by capability instead of by name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Capabilities {
    /// It needs the training checkpoints of
    /// [`crate::ModelSource::with_checkpoints`] (TracInCP).
    pub needs_checkpoints: bool,
    /// The parameter that sets how many models of
    /// [`crate::ModelSource::with_ensemble`] it averages (TRAK's `models`),
    /// if it takes an ensemble.
    pub ensemble_param: Option<&'static str>,
    /// The parameter that restricts its gradients to some layers, if any
    /// (callers that want last-layer gradients set it to `head`).
    pub layer_param: Option<&'static str>,
    /// The gradient projection it uses when none is given (`None`: it does
    /// not project, or does not use gradients).
    pub default_projection: Option<ProjectionSpec>,
}

impl Capabilities {
    /// Needs nothing beyond a model and data; no projection, no known
    /// parameter roles.
    pub const NONE: Capabilities = Capabilities {
        needs_checkpoints: false,
        ensemble_param: None,
        layer_param: None,
        default_projection: None,
    };

    /// Projects gradients with `p` unless told otherwise.
    pub const fn projected(p: ProjectionSpec) -> Self {
        Capabilities {
            default_projection: Some(p),
            ..Capabilities::NONE
        }
    }

    /// Also needs training checkpoints.
    pub const fn with_checkpoints(mut self) -> Self {
        self.needs_checkpoints = true;
        self
    }

    /// Also averages an ensemble whose size parameter is `param`.
    pub const fn with_ensemble(mut self, param: &'static str) -> Self {
        self.ensemble_param = Some(param);
        self
    }
}

/// Declares the method modules and lists their registry entries, one line per file.
pub mod gradient;

macro_rules! registry {
    ($($module:ident: [$($entry:ident),+ $(,)?]),* $(,)?) => {
        $(pub mod $module;)*
        static METHODS: &[MethodInfo] = &[$($($module::$entry),+),*];
    };
}

registry! {
    random: [INFO],
    pae: [INFO],
    embedding: [DOT, COSINE, DISTANCE],
    l2: [INFO],
    esvm: [INFO],
    rps: [INFO],
    grad_dot: [DOT, COSINE],
    tracin: [FINAL, CHECKPOINTS],
    trak: [INFO],
    influence: [EXPLICIT, CG, LISSA, ARNOLDI, SKETCH],
    kfac_family: [KFAC, EKFAC],
    data_inf: [INFO],
}

/// Every registered method, in display order.
pub fn list() -> &'static [MethodInfo] {
    METHODS
}

/// The registry entry called `name`.
pub fn info(name: &str) -> Result<&'static MethodInfo> {
    METHODS
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| AttribError::UnknownMethod {
            name: name.to_string(),
            available: METHODS
                .iter()
                .map(|m| m.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Builds method `name` from `opts`. Errors on an unknown name, a projection
/// given to a method that does not use gradients, or a parameter the method
/// does not accept or cannot parse.
pub fn by_name(name: &str, opts: &MethodOptions) -> Result<Box<dyn DynAttributor>> {
    let entry = info(name)?;
    if let Some(p) = opts.projection
        && !entry.uses_gradients
    {
        return Err(AttribError::unsupported(
            name,
            format!(
                "does not use gradients, so a projection ({p}) does not apply; \
                 gradient methods: {}",
                gradient_method_names()
            ),
        ));
    }
    let mut reader = OptionReader::new(entry.name, opts);
    let method = (entry.build)(&mut reader)?;
    reader.finish()?;
    Ok(method)
}

fn gradient_method_names() -> String {
    let names: Vec<&str> = METHODS
        .iter()
        .filter(|m| m.uses_gradients)
        .map(|m| m.name)
        .collect();
    if names.is_empty() {
        "none registered yet".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_lookup_works() {
        let mut names: Vec<&str> = list().iter().map(|m| m.name).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
        let e = by_name("nope", &MethodOptions::new())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("unknown attribution method") && e.contains("pae"),
            "{e}"
        );
    }

    #[test]
    fn capabilities_agree_with_the_params_and_the_builders() {
        for m in list() {
            for key in [m.caps.ensemble_param, m.caps.layer_param]
                .into_iter()
                .flatten()
            {
                assert!(
                    m.params.iter().any(|(k, _)| *k == key),
                    "{}: capability parameter {key} is not an accepted param",
                    m.name
                );
            }
            if m.caps.default_projection.is_some() {
                assert!(
                    m.uses_gradients,
                    "{} projects but uses no gradients",
                    m.name
                );
            }
        }
        let needs: Vec<&str> = list()
            .iter()
            .filter(|m| m.caps.needs_checkpoints)
            .map(|m| m.name)
            .collect();
        assert_eq!(needs, ["tracin-cp"]);
        assert_eq!(info("trak").unwrap().caps.ensemble_param, Some("models"));
    }

    #[test]
    fn options_are_checked() {
        let e = by_name(
            "pae",
            &MethodOptions::new().projection(ProjectionSpec::Gaussian { dim: 8 }),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("does not use gradients"), "{e}");
        let e = by_name("esvm", &MethodOptions::new().param("cc", "1"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("esvm.cc") && e.contains("accepted"), "{e}");
        let e = by_name("esvm", &MethodOptions::new().param("c", "abc"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("esvm.c") && e.contains("abc"), "{e}");
        assert!(MethodOptions::new().parse_param("novalue").is_err());
        for m in list() {
            assert!(by_name(m.name, &MethodOptions::new()).is_ok(), "{}", m.name);
        }
    }
}
