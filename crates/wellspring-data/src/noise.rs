//! Label noise and label-flip poisoning, seeded, returning which points changed.

use rand::RngExt;
use wellspring_core::{Dataset, rng};

use crate::error::{DataError, Result};

fn labels_of(ds: &Dataset) -> Result<(&[usize], usize)> {
    let labels = ds.labels_checked()?;
    Ok((labels, ds.n_classes().expect("classification set")))
}

/// Symmetric label noise on a label vector: flips exactly
/// `round(share · n)` labels, chosen uniformly without replacement, each to a
/// uniformly chosen *different* class. Returns the new labels and the sorted
/// flipped indices. `share` must lie in `(0, 1)` and flip at least one label.
pub fn flip_label_vec(
    labels: &[usize],
    n_classes: usize,
    share: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(share > 0.0 && share < 1.0) {
        return Err(DataError::invalid_param(
            "noise share",
            share,
            "must be strictly between 0 and 1",
        ));
    }
    if n_classes < 2 {
        return Err(DataError::invalid_param(
            "n_classes",
            n_classes,
            "label noise needs at least 2 classes",
        ));
    }
    if let Some(i) = labels.iter().position(|&l| l >= n_classes) {
        return Err(DataError::invalid_param(
            format!("label at index {i}"),
            labels[i],
            format!("out of range for {n_classes} classes"),
        ));
    }
    let n = labels.len();
    let k = (share * n as f64).round() as usize;
    if k == 0 {
        return Err(DataError::invalid_param(
            "noise share",
            share,
            format!("flips no label of {n} points (round(share·n) = 0)"),
        ));
    }
    let mut r = rng(seed);
    let mut flipped = rand::seq::index::sample(&mut r, n, k).into_vec();
    flipped.sort_unstable();
    let mut out = labels.to_vec();
    for &i in &flipped {
        // Adding 1..n_classes-1 modulo n_classes is uniform over the other classes.
        let step = 1 + r.random_range(0..n_classes - 1);
        out[i] = (out[i] + step) % n_classes;
    }
    Ok((out, flipped))
}

/// [`flip_label_vec`] on a dataset: returns the noisy copy (named
/// `<name>+noise<share>`, subclasses kept) and the sorted flipped indices.
pub fn flip_labels(ds: &Dataset, share: f64, seed: u64) -> Result<(Dataset, Vec<usize>)> {
    let (labels, c) = labels_of(ds)?;
    let (new, flipped) = flip_label_vec(labels, c, share, seed)?;
    let out = ds
        .with_labels(new, c)?
        .renamed(format!("{}+noise{share}", ds.name()));
    Ok((out, flipped))
}

/// A targeted label-flip poisoning attack: relabel a share of the points of
/// `source` (or, with `source = None`, of every class but `target`) as `target`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Poison {
    /// Class whose points are flipped; `None` = any class other than `target`.
    pub source: Option<usize>,
    /// Class they are flipped to.
    pub target: usize,
    /// Share of the candidate points flipped, in `(0, 1]`.
    pub share: f64,
}

impl Poison {
    /// Flips `share` of class `source` to `target`.
    pub fn targeted(source: usize, target: usize, share: f64) -> Self {
        Self {
            source: Some(source),
            target,
            share,
        }
    }

    /// Flips `share` of every point not in `target` to `target`.
    pub fn to_class(target: usize, share: f64) -> Self {
        Self {
            source: None,
            target,
            share,
        }
    }

    /// Checks the classes and share against `n_classes`.
    pub fn check(&self, n_classes: usize) -> Result<()> {
        if !(self.share > 0.0 && self.share <= 1.0) {
            return Err(DataError::invalid_param(
                "poison share",
                self.share,
                "must be in (0, 1]",
            ));
        }
        if self.target >= n_classes {
            return Err(DataError::invalid_param(
                "poison target class",
                self.target,
                format!("out of range for {n_classes} classes"),
            ));
        }
        if let Some(s) = self.source {
            if s >= n_classes {
                return Err(DataError::invalid_param(
                    "poison source class",
                    s,
                    format!("out of range for {n_classes} classes"),
                ));
            }
            if s == self.target {
                return Err(DataError::invalid_param(
                    "poison source class",
                    s,
                    "equals the target class",
                ));
            }
        }
        Ok(())
    }
}

/// Applies a [`Poison`] attack: flips exactly `round(share · m)` of the `m`
/// candidate points (uniformly chosen) to the target class. Returns the
/// poisoned copy (named `<name>+poison`) and the sorted flipped indices.
pub fn poison_labels(ds: &Dataset, poison: &Poison, seed: u64) -> Result<(Dataset, Vec<usize>)> {
    let (labels, c) = labels_of(ds)?;
    poison.check(c)?;
    let candidates: Vec<usize> = (0..labels.len())
        .filter(|&i| match poison.source {
            Some(s) => labels[i] == s,
            None => labels[i] != poison.target,
        })
        .collect();
    let k = (poison.share * candidates.len() as f64).round() as usize;
    if k == 0 {
        return Err(DataError::invalid_param(
            "poison share",
            poison.share,
            format!(
                "flips no label: {} candidate points in {}",
                candidates.len(),
                ds.name()
            ),
        ));
    }
    let mut r = rng(seed);
    let mut flipped: Vec<usize> = rand::seq::index::sample(&mut r, candidates.len(), k)
        .into_iter()
        .map(|j| candidates[j])
        .collect();
    flipped.sort_unstable();
    let mut new = labels.to_vec();
    for &i in &flipped {
        new[i] = poison.target;
    }
    let name = match poison.source {
        Some(s) => format!("{}+poison{s}->{}", ds.name(), poison.target),
        None => format!("{}+poison->{}", ds.name(), poison.target),
    };
    Ok((ds.with_labels(new, c)?.renamed(name), flipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_are_exact_and_different() {
        let labels: Vec<usize> = (0..100).map(|i| i % 3).collect();
        let (new, flipped) = flip_label_vec(&labels, 3, 0.25, 9).unwrap();
        assert_eq!(flipped.len(), 25);
        for i in 0..100 {
            assert_eq!(new[i] != labels[i], flipped.binary_search(&i).is_ok());
        }
        assert!(flip_label_vec(&labels, 3, 1.0, 9).is_err());
        assert!(flip_label_vec(&labels, 3, 0.0, 9).is_err());
        assert!(flip_label_vec(&labels, 3, 0.001, 9).is_err());
    }
}
