//! The model-dependent half of GGDA's groupers (§5.2): the point matrices
//! that `wellspring-group` clusters, and [`GroupingSpec`] (`--groups kmeans:100`).

use std::fmt;
use std::str::FromStr;

use wellspring_core::{Dataset, Features, Grouping, Targets};
use wellspring_group::{GroupAmount, KMeansInfo, KMeansParams, Points, RandomGrouping};
use wellspring_models::burn_types::Device;
use wellspring_models::{AnyModel, features, predict_logits};

use crate::dense::softmax_rows;
use crate::error::{AttribError, Result};
use crate::features::head_weights;

/// Raw dense inputs, row-major `n × d` (K-Means).
pub fn input_features(data: &Dataset) -> Result<(Vec<f32>, usize)> {
    match data.features() {
        Features::Dense { values, shape } => Ok((values.clone(), shape.iter().product())),
        Features::Tokens { .. } => Err(AttribError::unsupported(
            "kmeans on inputs",
            format!(
                "dataset {} holds tokens; use repr-kmeans or grad-kmeans",
                data.name()
            ),
        )),
    }
}

/// Penultimate features of `model`, row-major `n × feature_dim` (Repr-K-Means).
pub fn repr_features(
    model: impl Into<AnyModel>,
    data: &Dataset,
    device: &Device,
) -> Result<(Vec<f32>, usize)> {
    let f = features(model, data, device)?;
    let d = f.len() / data.len().max(1);
    Ok((f, d))
}

/// Per-point gradients of the training loss w.r.t. the head's input `h`
/// (the pre-classification activations; Grad-K-Means). For a linear head
/// `z = W h + b`: cross-entropy gives `∂L/∂h = Wᵀ (softmax(z) − onehot(y))`,
/// mean squared error `Wᵀ (2/C)(z − y)`. Computed on the host from the
/// logits, the targets and the head weights; no autodiff.
pub fn grad_features(
    model: impl Into<AnyModel>,
    data: &Dataset,
    device: &Device,
) -> Result<(Vec<f32>, usize)> {
    let model: AnyModel = model.into();
    let logits = predict_logits(&model, data, device)?;
    let (theta, _) = head_weights(&model)?;
    let n = data.len();
    let c = logits.len() / n.max(1);
    let d = theta.len() / c.max(1);
    let residual = match data.targets() {
        Targets::Classes { labels, .. } => {
            let mut p = softmax_rows(&logits, c);
            for (i, &y) in labels.iter().enumerate() {
                p[i * c + y] -= 1.0;
            }
            p
        }
        Targets::Regression { values, .. } => logits
            .iter()
            .zip(values)
            .map(|(&z, &y)| 2.0 * (z as f64 - y as f64) / c as f64)
            .collect(),
        Targets::NextToken { .. } => {
            return Err(AttribError::unsupported(
                "grad-kmeans",
                format!(
                    "dataset {} has next-token targets; group a language model's data with kmeans, repr-kmeans or random",
                    data.name()
                ),
            ));
        }
    };
    let mut out = Vec::with_capacity(n * d);
    for i in 0..n {
        let r = &residual[i * c..(i + 1) * c];
        for a in 0..d {
            let g: f64 = (0..c).map(|k| r[k] * theta[k * d + a]).sum();
            out.push(g as f32);
        }
    }
    Ok((out, d))
}

/// Which points a grouper clusters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GrouperKind {
    /// Equal-size seeded random groups.
    Random,
    /// K-means on raw inputs.
    KMeans,
    /// K-means on penultimate features.
    ReprKMeans,
    /// K-means on gradients w.r.t. the pre-classification activations.
    GradKMeans,
}

impl GrouperKind {
    /// Name as in `--groups` (`random`, `kmeans`, `repr-kmeans`, `grad-kmeans`).
    pub fn as_str(&self) -> &'static str {
        match self {
            GrouperKind::Random => "random",
            GrouperKind::KMeans => "kmeans",
            GrouperKind::ReprKMeans => "repr-kmeans",
            GrouperKind::GradKMeans => "grad-kmeans",
        }
    }
}

/// A grouper and how many groups: parsed from `random:100`, `kmeans:100`,
/// `repr-kmeans:size=16`, `grad-kmeans:100` (a count, or `size=S` for groups
/// of about `S` points).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupingSpec {
    /// The grouper.
    pub kind: GrouperKind,
    /// Group count or size.
    pub amount: GroupAmount,
}

/// A grouping plus the K-means report when one ran.
#[derive(Clone, Debug)]
pub struct BuiltGrouping {
    /// The partition of the training set.
    pub grouping: Grouping,
    /// K-means convergence information (`None` for random groups).
    pub kmeans: Option<KMeansInfo>,
}

impl GroupingSpec {
    /// Builds the grouping of `train` (K-means with GGDA's defaults: whitened,
    /// tolerance 1e-3, at most 60 iterations, k-means++ seeded with `seed`).
    pub fn build(
        &self,
        model: impl Into<AnyModel>,
        train: &Dataset,
        device: &Device,
        seed: u64,
    ) -> Result<BuiltGrouping> {
        let (x, d) = match self.kind {
            GrouperKind::Random => {
                let g = RandomGrouping::new(self.amount)
                    .seed(seed)
                    .group_n(train.len())?;
                return Ok(BuiltGrouping {
                    grouping: g,
                    kmeans: None,
                });
            }
            GrouperKind::KMeans => input_features(train)?,
            GrouperKind::ReprKMeans => repr_features(model, train, device)?,
            GrouperKind::GradKMeans => grad_features(model, train, device)?,
        };
        let fit =
            KMeansParams::new(self.amount)
                .seed(seed)
                .fit(Points::new(&x, train.len(), d)?)?;
        Ok(BuiltGrouping {
            grouping: fit.grouping,
            kmeans: Some(fit.info),
        })
    }
}

impl fmt::Display for GroupingSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.amount {
            GroupAmount::Groups(k) => write!(f, "{}:{k}", self.kind.as_str()),
            GroupAmount::Size(s) => write!(f, "{}:size={s}", self.kind.as_str()),
        }
    }
}

impl FromStr for GroupingSpec {
    type Err = AttribError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| AttribError::invalid_param("groups", s, reason.to_string());
        let (kind, amount) = s.split_once(':').ok_or_else(|| {
            bad("expected KIND:COUNT or KIND:size=S with KIND random, kmeans, repr-kmeans or grad-kmeans")
        })?;
        let kind = match kind {
            "random" => GrouperKind::Random,
            "kmeans" => GrouperKind::KMeans,
            "repr-kmeans" => GrouperKind::ReprKMeans,
            "grad-kmeans" => GrouperKind::GradKMeans,
            _ => {
                return Err(bad(
                    "unknown grouper; expected random, kmeans, repr-kmeans or grad-kmeans",
                ));
            }
        };
        let amount = match amount.strip_prefix("size=") {
            Some(v) => GroupAmount::Size(
                v.parse()
                    .map_err(|_| bad("size must be a positive integer"))?,
            ),
            None => GroupAmount::Groups(
                amount
                    .parse()
                    .map_err(|_| bad("the group count must be a positive integer"))?,
            ),
        };
        if matches!(amount, GroupAmount::Size(0) | GroupAmount::Groups(0)) {
            return Err(bad("must be at least 1"));
        }
        Ok(GroupingSpec { kind, amount })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_round_trip() {
        for s in [
            "random:100",
            "kmeans:3",
            "repr-kmeans:size=16",
            "grad-kmeans:100",
        ] {
            let g: GroupingSpec = s.parse().unwrap();
            assert_eq!(g.to_string(), s);
        }
        for bad in [
            "kmeans",
            "kmeans:0",
            "kmeans:x",
            "spectral:4",
            "random:size=0",
        ] {
            assert!(bad.parse::<GroupingSpec>().is_err(), "{bad}");
        }
    }
}
