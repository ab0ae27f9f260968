//! [`MethodSpec`]: one attribution method as a paper names it, with the
//! registry settings a reproduce target runs it with. Every target's method
//! list is a `const` slice of these.

use wellspring_attrib::methods::{self, MethodInfo};
use wellspring_attrib::{DynAttributor, MethodOptions, ProjectionSpec};

use super::ReproError;

/// Which layers' gradients a method sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layers {
    /// Every layer (the method's own default).
    All,
    /// The last layer only (SVE's last-layer methods): through the method's
    /// layer parameter if it has one, else on the head view of the model.
    Head,
}

/// One attribution method of a paper's comparison.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct MethodSpec {
    /// The paper's label ("Inf. (Fisher)").
    pub label: &'static str,
    /// Registry name (`if-explicit`).
    pub name: &'static str,
    /// Registry name to fall back on when `name` cannot be built.
    pub fallback: Option<&'static str>,
    /// Registry parameters.
    pub params: &'static [(&'static str, &'static str)],
    /// Parameters that replace the expensive defaults in a `--quick` run
    /// (applied once [`MethodSpec::quick`] is set).
    pub quick_params: &'static [(&'static str, &'static str)],
    /// Whether the `--quick` parameters apply.
    pub quick: bool,
    /// Projection (`None`: the method's default).
    pub projection: Option<ProjectionSpec>,
    /// Which layers' gradients it sees.
    pub layers: Layers,
}

impl MethodSpec {
    /// `name` under the paper's `label`, with the registry defaults.
    pub const fn new(label: &'static str, name: &'static str) -> Self {
        Self {
            label,
            name,
            fallback: None,
            params: &[],
            quick_params: &[],
            quick: false,
            projection: None,
            layers: Layers::All,
        }
    }

    /// With registry parameters.
    pub const fn params(mut self, params: &'static [(&'static str, &'static str)]) -> Self {
        self.params = params;
        self
    }

    /// With parameters for `--quick` runs (see [`MethodSpec::quick`]).
    pub const fn quick_params(mut self, params: &'static [(&'static str, &'static str)]) -> Self {
        self.quick_params = params;
        self
    }

    /// With a projection.
    pub const fn projection(mut self, p: ProjectionSpec) -> Self {
        self.projection = Some(p);
        self
    }

    /// On the last layer's gradients only.
    pub const fn head_only(mut self) -> Self {
        self.layers = Layers::Head;
        self
    }

    /// Falling back on `name` when the preferred method cannot be built.
    pub const fn or(mut self, name: &'static str) -> Self {
        self.fallback = Some(name);
        self
    }

    /// The registry names to try, preferred first.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + use<> {
        std::iter::once(self.name).chain(self.fallback)
    }

    /// The registry entry of `name`.
    pub fn info(&self) -> Result<&'static MethodInfo, ReproError> {
        Ok(methods::info(self.name)?)
    }

    /// Options with `seed`, the parameters (with the `--quick` ones when
    /// [`MethodSpec::quick`] is set) and the projection.
    pub fn options(&self, seed: u64) -> MethodOptions {
        let mut opts = MethodOptions::new().seed(seed);
        let quick: &[_] = if self.quick { self.quick_params } else { &[] };
        for (k, v) in self.params.iter().chain(quick) {
            opts = opts.param(*k, *v);
        }
        match self.projection {
            Some(p) => opts.projection(p),
            None => opts,
        }
    }

    /// Builds `name` from `opts`.
    pub fn build(&self, opts: &MethodOptions) -> Result<Box<dyn DynAttributor>, ReproError> {
        Ok(methods::by_name(self.name, opts)?)
    }
}
