//! What a selector reads: the training state a loop hands over at selection
//! time, as plain host data, and the last-layer gradient proxies.
//!
//! The loop computes only what the selector asks for ([`Needs`]): a forward
//! pass gives probabilities and losses; the gradient engine (or
//! [`GradProxies::last_layer`] on the host) gives the last-layer proxies.

use crate::error::{Result, SelectError, check_finite_matrix};

/// Which last-layer gradient proxy a selector wants (CORDS' `linear_layer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyKind {
    /// `softmax − one-hot`: the gradient of the cross-entropy w.r.t. the
    /// logits, i.e. w.r.t. the last layer's bias (CRAIG §4, CREST). Dimension `C`.
    Bias,
    /// `[softmax − one-hot, (softmax − one-hot) ⊗ penultimate]`: the gradient
    /// w.r.t. the whole last linear layer (bias, then weights row by row, as
    /// CORDS lays them out). Dimension `C · (1 + p)`.
    BiasAndWeights,
}

/// How the columns of a [`GradProxies`] matrix are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyLayout {
    /// `C` columns: `e_i = softmax(z_i) − onehot(y_i)`.
    Bias {
        /// Number of classes `C`.
        n_classes: usize,
    },
    /// `C + C·p` columns: `e_i`, then `e_i[c] · φ_i[j]` at column `C + c·p + j`.
    BiasAndWeights {
        /// Number of classes `C`.
        n_classes: usize,
        /// Penultimate width `p`.
        n_features: usize,
    },
    /// Any other per-example vector (projected full gradients, embeddings):
    /// usable by CRAIG and GradMatch, not by GLISTER, which needs the structure.
    Opaque {
        /// Width of each row.
        dim: usize,
    },
}

impl ProxyLayout {
    /// Width of one row.
    pub fn dim(&self) -> usize {
        match *self {
            ProxyLayout::Bias { n_classes } => n_classes,
            ProxyLayout::BiasAndWeights {
                n_classes,
                n_features,
            } => n_classes * (1 + n_features),
            ProxyLayout::Opaque { dim } => dim,
        }
    }

    /// The proxy kind this layout holds, if it is a structured last-layer one.
    pub fn kind(&self) -> Option<ProxyKind> {
        match self {
            ProxyLayout::Bias { .. } => Some(ProxyKind::Bias),
            ProxyLayout::BiasAndWeights { .. } => Some(ProxyKind::BiasAndWeights),
            ProxyLayout::Opaque { .. } => None,
        }
    }
}

/// Per-example gradient proxies, a row-major `n × dim` host matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct GradProxies {
    values: Vec<f32>,
    n: usize,
    layout: ProxyLayout,
}

impl GradProxies {
    /// Checked proxies: `values.len() == n · layout.dim()`, all finite.
    pub fn new(values: Vec<f32>, n: usize, layout: ProxyLayout) -> Result<Self> {
        let d = layout.dim();
        if d == 0 {
            return Err(SelectError::shape("gradient proxies", "width >= 1", 0));
        }
        if values.len() != n * d {
            return Err(SelectError::shape(
                "gradient proxies",
                format!("{n} x {d} = {} values", n * d),
                format!("{} values", values.len()),
            ));
        }
        check_finite_matrix("gradient proxies", &values, d)?;
        Ok(Self { values, n, layout })
    }

    /// Last-layer proxies from probabilities (`n × C`), labels and optionally
    /// penultimate features (`n × p`): the exact cross-entropy gradient of a
    /// linear head, `∂ℓ/∂b = p − y`, `∂ℓ/∂W = (p − y) φᵀ` (CRAIG §4; CORDS).
    pub fn last_layer(
        probs: &[f32],
        labels: &[usize],
        n_classes: usize,
        features: Option<(&[f32], usize)>,
    ) -> Result<Self> {
        let n = labels.len();
        check_probs("probabilities", probs, n, n_classes)?;
        check_labels("labels", labels, n_classes)?;
        let c = n_classes;
        match features {
            None => {
                let mut v = probs.to_vec();
                for (i, &y) in labels.iter().enumerate() {
                    v[i * c + y] -= 1.0;
                }
                Self::new(v, n, ProxyLayout::Bias { n_classes: c })
            }
            Some((phi, p)) => {
                if p == 0 || phi.len() != n * p {
                    return Err(SelectError::shape(
                        "penultimate features",
                        format!("{n} x p values with p >= 1"),
                        format!("{} values for p = {p}", phi.len()),
                    ));
                }
                check_finite_matrix("penultimate features", phi, p)?;
                let d = c * (1 + p);
                let mut v = vec![0.0f32; n * d];
                for i in 0..n {
                    let row = &mut v[i * d..(i + 1) * d];
                    let f = &phi[i * p..(i + 1) * p];
                    for k in 0..c {
                        let e = probs[i * c + k] - if labels[i] == k { 1.0 } else { 0.0 };
                        row[k] = e;
                        for (dst, &fj) in row[c + k * p..c + (k + 1) * p].iter_mut().zip(f) {
                            *dst = e * fj;
                        }
                    }
                }
                Self::new(
                    v,
                    n,
                    ProxyLayout::BiasAndWeights {
                        n_classes: c,
                        n_features: p,
                    },
                )
            }
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True if there are no rows.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Width of one row.
    pub fn dim(&self) -> usize {
        self.layout.dim()
    }

    /// The column layout.
    pub fn layout(&self) -> ProxyLayout {
        self.layout
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        let d = self.dim();
        &self.values[i * d..(i + 1) * d]
    }

    /// All values, row-major.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The rows `idx`, in that order (indices must be `< len()`).
    pub fn gather(&self, idx: &[usize]) -> Result<GradProxies> {
        let d = self.dim();
        let mut v = Vec::with_capacity(idx.len() * d);
        for (k, &i) in idx.iter().enumerate() {
            if i >= self.n {
                return Err(SelectError::shape(
                    format!("proxy row index at position {k}"),
                    format!("< {}", self.n),
                    i,
                ));
            }
            v.extend_from_slice(self.row(i));
        }
        Ok(GradProxies {
            values: v,
            n: idx.len(),
            layout: self.layout,
        })
    }
}

/// What a selector needs the training loop to compute before calling it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Training-set predicted probabilities (`n × C`).
    pub probs: bool,
    /// Training-set per-example losses.
    pub losses: bool,
    /// Training-set gradient proxies of this kind.
    pub proxies: Option<ProxyKind>,
    /// Validation probabilities and labels.
    pub val_probs: bool,
    /// Validation penultimate features (GLISTER with [`ProxyKind::BiasAndWeights`]).
    pub val_features: bool,
    /// Validation gradient proxies of this kind (GradMatch matching the validation gradient).
    pub val_proxies: Option<ProxyKind>,
}

/// Host-side validation data: probabilities, labels and optional penultimate
/// features and gradient proxies, all with one row per validation point.
#[derive(Clone, Copy, Debug)]
pub struct ValidationState<'a> {
    labels: &'a [usize],
    probs: Option<&'a [f32]>,
    features: Option<(&'a [f32], usize)>,
    proxies: Option<&'a GradProxies>,
}

impl<'a> ValidationState<'a> {
    /// Validation labels (checked against the classes when attached to a
    /// [`TrainingState`]). An empty slice is allowed here; selectors that need
    /// validation points reject it with [`SelectError::EmptyValidation`].
    pub fn new(labels: &'a [usize]) -> Self {
        Self {
            labels,
            probs: None,
            features: None,
            proxies: None,
        }
    }

    /// Attaches probabilities, `m × C` row-major.
    pub fn with_probs(mut self, probs: &'a [f32]) -> Self {
        self.probs = Some(probs);
        self
    }

    /// Attaches penultimate features, `m × p` row-major.
    pub fn with_features(mut self, features: &'a [f32], p: usize) -> Self {
        self.features = Some((features, p));
        self
    }

    /// Attaches gradient proxies (one row per validation point).
    pub fn with_proxies(mut self, proxies: &'a GradProxies) -> Self {
        self.proxies = Some(proxies);
        self
    }

    /// Number of validation points.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True if there are no validation points.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Labels.
    pub fn labels(&self) -> &'a [usize] {
        self.labels
    }

    /// Probabilities, if attached.
    pub fn probs(&self) -> Option<&'a [f32]> {
        self.probs
    }

    /// Penultimate features and their width, if attached.
    pub fn features(&self) -> Option<(&'a [f32], usize)> {
        self.features
    }

    /// Gradient proxies, if attached.
    pub fn proxies(&self) -> Option<&'a GradProxies> {
        self.proxies
    }

    fn check(&self, n_classes: usize) -> Result<()> {
        let m = self.labels.len();
        check_labels("validation labels", self.labels, n_classes)?;
        if let Some(p) = self.probs {
            check_probs("validation probabilities", p, m, n_classes)?;
        }
        if let Some((f, p)) = self.features {
            if p == 0 || f.len() != m * p {
                return Err(SelectError::shape(
                    "validation penultimate features",
                    format!("{m} x p values with p >= 1"),
                    format!("{} values for p = {p}", f.len()),
                ));
            }
            check_finite_matrix("validation penultimate features", f, p)?;
        }
        if let Some(g) = self.proxies
            && g.len() != m
        {
            return Err(SelectError::shape(
                "validation gradient proxies",
                format!("{m} rows (one per validation point)"),
                format!("{} rows", g.len()),
            ));
        }
        Ok(())
    }
}

/// The training state a loop hands to [`crate::Selector::select`]: labels and
/// the optional per-example quantities, each checked when attached.
#[derive(Clone, Copy, Debug)]
pub struct TrainingState<'a> {
    labels: &'a [usize],
    n_classes: usize,
    probs: Option<&'a [f32]>,
    losses: Option<&'a [f32]>,
    proxies: Option<&'a GradProxies>,
    validation: Option<ValidationState<'a>>,
    epoch: usize,
    step: usize,
}

impl<'a> TrainingState<'a> {
    /// A state over `labels.len()` training points with labels in `0..n_classes`.
    pub fn new(labels: &'a [usize], n_classes: usize) -> Result<Self> {
        if n_classes < 2 {
            return Err(SelectError::invalid_param(
                "n_classes",
                n_classes,
                "need at least 2 classes",
            ));
        }
        check_labels("training labels", labels, n_classes)?;
        Ok(Self {
            labels,
            n_classes,
            probs: None,
            losses: None,
            proxies: None,
            validation: None,
            epoch: 0,
            step: 0,
        })
    }

    /// Attaches predicted probabilities, `n × C` row-major (non-negative, rows sum to 1 ± 1e-3).
    pub fn with_probs(mut self, probs: &'a [f32]) -> Result<Self> {
        check_probs("training probabilities", probs, self.len(), self.n_classes)?;
        self.probs = Some(probs);
        Ok(self)
    }

    /// Attaches per-example losses (length `n`, finite).
    pub fn with_losses(mut self, losses: &'a [f32]) -> Result<Self> {
        if losses.len() != self.len() {
            return Err(SelectError::shape(
                "training losses",
                format!("{} values (one per training point)", self.len()),
                losses.len(),
            ));
        }
        check_finite_matrix("training losses", losses, 1)?;
        self.losses = Some(losses);
        Ok(self)
    }

    /// Attaches gradient proxies (one row per training point).
    pub fn with_proxies(mut self, proxies: &'a GradProxies) -> Result<Self> {
        if proxies.len() != self.len() {
            return Err(SelectError::shape(
                "training gradient proxies",
                format!("{} rows (one per training point)", self.len()),
                format!("{} rows", proxies.len()),
            ));
        }
        if let Some(c) = layout_classes(proxies.layout())
            && c != self.n_classes
        {
            return Err(SelectError::shape(
                "training gradient proxies",
                format!("a layout over {} classes", self.n_classes),
                format!("{c} classes"),
            ));
        }
        self.proxies = Some(proxies);
        Ok(self)
    }

    /// Attaches the validation set (checked against the classes).
    pub fn with_validation(mut self, validation: ValidationState<'a>) -> Result<Self> {
        validation.check(self.n_classes)?;
        if let Some(g) = validation.proxies
            && let Some(c) = layout_classes(g.layout())
            && c != self.n_classes
        {
            return Err(SelectError::shape(
                "validation gradient proxies",
                format!("a layout over {} classes", self.n_classes),
                format!("{c} classes"),
            ));
        }
        self.validation = Some(validation);
        Ok(self)
    }

    /// Records where in training the state was taken.
    pub fn at(mut self, epoch: usize, step: usize) -> Self {
        self.epoch = epoch;
        self.step = step;
        self
    }

    /// Number of training points.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True if there are no training points.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Labels.
    pub fn labels(&self) -> &'a [usize] {
        self.labels
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Probabilities, if attached.
    pub fn probs(&self) -> Option<&'a [f32]> {
        self.probs
    }

    /// Losses, if attached.
    pub fn losses(&self) -> Option<&'a [f32]> {
        self.losses
    }

    /// Gradient proxies, if attached.
    pub fn proxies(&self) -> Option<&'a GradProxies> {
        self.proxies
    }

    /// The validation set, if attached.
    pub fn validation(&self) -> Option<&ValidationState<'a>> {
        self.validation.as_ref()
    }

    /// Epoch at which the state was taken.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Optimiser step at which the state was taken.
    pub fn step(&self) -> usize {
        self.step
    }

    /// Indices of each class, in increasing order.
    pub fn class_indices(&self) -> Vec<Vec<usize>> {
        class_indices(self.labels, self.n_classes)
    }

    pub(crate) fn require_probs(&self, selector: &'static str) -> Result<&'a [f32]> {
        self.probs
            .ok_or_else(|| SelectError::missing(selector, "training probabilities"))
    }

    pub(crate) fn require_proxies(&self, selector: &'static str) -> Result<&'a GradProxies> {
        self.proxies
            .ok_or_else(|| SelectError::missing(selector, "training gradient proxies"))
    }
}

fn layout_classes(l: ProxyLayout) -> Option<usize> {
    match l {
        ProxyLayout::Bias { n_classes } | ProxyLayout::BiasAndWeights { n_classes, .. } => {
            Some(n_classes)
        }
        ProxyLayout::Opaque { .. } => None,
    }
}

/// Indices of each class in `0..n_classes`, in increasing order.
pub(crate) fn class_indices(labels: &[usize], n_classes: usize) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); n_classes];
    for (i, &y) in labels.iter().enumerate() {
        out[y].push(i);
    }
    out
}

pub(crate) fn check_labels(what: &str, labels: &[usize], n_classes: usize) -> Result<()> {
    match labels.iter().position(|&y| y >= n_classes) {
        None => Ok(()),
        Some(row) => Err(SelectError::Label {
            what: what.to_string(),
            row,
            label: labels[row],
            n_classes,
        }),
    }
}

pub(crate) fn check_probs(what: &str, probs: &[f32], n: usize, c: usize) -> Result<()> {
    if probs.len() != n * c {
        return Err(SelectError::shape(
            what,
            format!("{n} x {c} = {} values", n * c),
            format!("{} values", probs.len()),
        ));
    }
    check_finite_matrix(what, probs, c)?;
    for (row, r) in probs.chunks_exact(c.max(1)).enumerate() {
        if let Some(col) = r.iter().position(|&p| !(0.0..=1.0).contains(&p)) {
            return Err(SelectError::OutOfRange {
                what: what.to_string(),
                row,
                col,
                value: r[col] as f64,
                reason: "is not a probability in [0, 1]".into(),
            });
        }
        let s: f64 = r.iter().map(|&p| p as f64).sum();
        if (s - 1.0).abs() > 1e-3 {
            return Err(SelectError::OutOfRange {
                what: what.to_string(),
                row,
                col: c - 1,
                value: s,
                reason: "(the row sum) differs from 1 by more than 1e-3".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_layer_layout_matches_cords() {
        let probs = [0.7f32, 0.2, 0.1, 0.1, 0.1, 0.8];
        let labels = [0usize, 2];
        let phi = [1.0f32, 2.0, -1.0, 0.5];
        let g = GradProxies::last_layer(&probs, &labels, 3, Some((&phi, 2))).unwrap();
        assert_eq!(g.dim(), 9);
        let r0 = g.row(0);
        // e_0 = (-0.3, 0.2, 0.1); weights row c = e_c * phi.
        assert!((r0[0] + 0.3).abs() < 1e-6 && (r0[1] - 0.2).abs() < 1e-6);
        assert!((r0[3] + 0.3).abs() < 1e-6 && (r0[4] + 0.6).abs() < 1e-6);
        assert!((r0[5] - 0.2).abs() < 1e-6 && (r0[8] - 0.2).abs() < 1e-6);
        let b = GradProxies::last_layer(&probs, &labels, 3, None).unwrap();
        assert_eq!(b.row(1), &[0.1, 0.1, 0.8 - 1.0]);
        assert_eq!(b.gather(&[1]).unwrap().row(0), b.row(1));
        assert!(b.gather(&[2]).is_err());
    }

    #[test]
    fn bad_state_inputs_are_named() {
        let labels = [0usize, 1, 5];
        let e = TrainingState::new(&labels, 3).unwrap_err().to_string();
        assert!(e.contains("label 5") && e.contains("row 2"), "{e}");
        let labels = [0usize, 1];
        let s = TrainingState::new(&labels, 2).unwrap();
        let e = s.with_probs(&[0.5, 0.5, 0.9]).unwrap_err().to_string();
        assert!(e.contains("4 values"), "{e}");
        let e = s.with_probs(&[0.5, 0.5, 0.9, 0.3]).unwrap_err().to_string();
        assert!(e.contains("row 1") && e.contains("sum"), "{e}");
        let e = s
            .with_probs(&[1.5, -0.5, 0.5, 0.5])
            .unwrap_err()
            .to_string();
        assert!(e.contains("row 0") && e.contains("1.5"), "{e}");
        let e = s.with_losses(&[f32::NAN, 0.0]).unwrap_err().to_string();
        assert!(e.contains("non-finite") && e.contains("row 0"), "{e}");
        let g = GradProxies::new(vec![0.0; 6], 3, ProxyLayout::Opaque { dim: 2 }).unwrap();
        let e = s.with_proxies(&g).unwrap_err().to_string();
        assert!(e.contains("2 rows") && e.contains("3 rows"), "{e}");
        let e = GradProxies::new(vec![0.0; 5], 3, ProxyLayout::Opaque { dim: 2 })
            .unwrap_err()
            .to_string();
        assert!(e.contains("6 values") && e.contains("5 values"), "{e}");
        let vl = [0usize, 4];
        let e = s
            .with_validation(ValidationState::new(&vl))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("validation labels") && e.contains("label 4"),
            "{e}"
        );
    }
}
