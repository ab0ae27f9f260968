//! Seeded subsampling and splits.
//!
//! Index functions (`*_indices`) work on a length or a label vector and return
//! sorted indices into it, so callers can keep track of which original points
//! were chosen; the dataset functions apply them with [`Dataset::select`].
//! Every random choice builds a `ChaCha8Rng` from the given seed.

use rand::seq::SliceRandom;
use wellspring_core::{Dataset, Split, rng};

use crate::error::{DataError, Result};

fn check_size(what: &str, n: usize, len: usize, of: &str) -> Result<()> {
    if n == 0 {
        return Err(DataError::invalid_param(what, n, "must be at least 1"));
    }
    if n > len {
        return Err(DataError::invalid_param(
            what,
            n,
            format!("exceeds the {len} points of {of}"),
        ));
    }
    Ok(())
}

fn check_fraction(what: &str, f: f64) -> Result<()> {
    if !(f > 0.0 && f < 1.0) {
        return Err(DataError::invalid_param(
            what,
            f,
            "must be strictly between 0 and 1",
        ));
    }
    Ok(())
}

fn check_labels(labels: &[usize], n_classes: usize) -> Result<()> {
    if let Some(i) = labels.iter().position(|&l| l >= n_classes) {
        return Err(DataError::invalid_param(
            format!("label at index {i}"),
            labels[i],
            format!("out of range for {n_classes} classes"),
        ));
    }
    Ok(())
}

fn by_class(labels: &[usize], n_classes: usize) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); n_classes];
    for (i, &l) in labels.iter().enumerate() {
        out[l].push(i);
    }
    out
}

/// The first `n` indices `0..n` of a set of `len` points.
pub fn first_n_indices(len: usize, n: usize) -> Result<Vec<usize>> {
    check_size("first_n size", n, len, "the set")?;
    Ok((0..n).collect())
}

/// `n` distinct indices drawn uniformly from `0..len`, sorted.
pub fn random_indices(len: usize, n: usize, seed: u64) -> Result<Vec<usize>> {
    check_size("subsample size", n, len, "the set")?;
    let mut r = rng(seed);
    let mut idx = rand::seq::index::sample(&mut r, len, n).into_vec();
    idx.sort_unstable();
    Ok(idx)
}

/// Per-class counts summing to `n`, proportional to `class_counts` by
/// largest-remainder (Hamilton) rounding: each is `floor(n·c_k/N)` or one more,
/// so it lies within 1 of the exact proportion and never exceeds `c_k`.
/// Ties in the remainder go to the lower class index.
pub fn stratified_counts(class_counts: &[usize], n: usize) -> Result<Vec<usize>> {
    let total: usize = class_counts.iter().sum();
    check_size("stratified sample size", n, total, "the set")?;
    let (n128, t128) = (n as u128, total as u128);
    let mut counts: Vec<usize> = class_counts
        .iter()
        .map(|&c| (n128 * c as u128 / t128) as usize)
        .collect();
    let mut rest = n - counts.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..class_counts.len()).collect();
    // Exact integer remainders: no floating-point ties.
    order.sort_by_key(|&k| std::cmp::Reverse(n128 * class_counts[k] as u128 % t128));
    for k in order {
        if rest == 0 {
            break;
        }
        if !(n128 * class_counts[k] as u128).is_multiple_of(t128) {
            counts[k] += 1;
            rest -= 1;
        }
    }
    Ok(counts)
}

/// `n` indices whose class counts follow [`stratified_counts`], drawn
/// uniformly within each class, sorted.
pub fn stratified_indices(
    labels: &[usize],
    n_classes: usize,
    n: usize,
    seed: u64,
) -> Result<Vec<usize>> {
    check_labels(labels, n_classes)?;
    let mut classes = by_class(labels, n_classes);
    let counts = stratified_counts(&classes.iter().map(Vec::len).collect::<Vec<_>>(), n)?;
    let mut r = rng(seed);
    let mut out = Vec::with_capacity(n);
    for (members, &k) in classes.iter_mut().zip(&counts) {
        members.shuffle(&mut r);
        out.extend_from_slice(&members[..k]);
    }
    out.sort_unstable();
    Ok(out)
}

/// Exactly `k` indices of every class, drawn uniformly within the class,
/// sorted (Bae et al. 2024's brittleness test uses 100 class-balanced points).
pub fn class_balanced_indices(
    labels: &[usize],
    n_classes: usize,
    k: usize,
    seed: u64,
) -> Result<Vec<usize>> {
    check_labels(labels, n_classes)?;
    if k == 0 {
        return Err(DataError::invalid_param(
            "per-class count",
            k,
            "must be at least 1",
        ));
    }
    let mut classes = by_class(labels, n_classes);
    if let Some((c, m)) = classes.iter().enumerate().find(|(_, m)| m.len() < k) {
        return Err(DataError::invalid_param(
            "per-class count",
            k,
            format!("class {c} has only {} points", m.len()),
        ));
    }
    let mut r = rng(seed);
    let mut out = Vec::with_capacity(k * n_classes);
    for members in &mut classes {
        members.shuffle(&mut r);
        out.extend_from_slice(&members[..k]);
    }
    out.sort_unstable();
    Ok(out)
}

/// Number of held-out points for `fraction` of `len`: `round(fraction·len)`,
/// clamped to `1..=len-1` so both sides are non-empty.
pub fn holdout_size(len: usize, fraction: f64) -> Result<usize> {
    check_fraction("holdout fraction", fraction)?;
    if len < 2 {
        return Err(DataError::invalid_param(
            "holdout set size",
            len,
            "need at least 2 points to split",
        ));
    }
    Ok(((fraction * len as f64).round() as usize).clamp(1, len - 1))
}

/// Seeded split of `0..len` into `(kept, held_out)`, both sorted, disjoint and
/// covering `0..len`; `held_out` has [`holdout_size`] points.
pub fn holdout_indices(len: usize, fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    let h = holdout_size(len, fraction)?;
    let mut perm: Vec<usize> = (0..len).collect();
    perm.shuffle(&mut rng(seed));
    let mut held = perm[..h].to_vec();
    let mut kept = perm[h..].to_vec();
    held.sort_unstable();
    kept.sort_unstable();
    Ok((kept, held))
}

/// [`holdout_indices`] with the held-out class counts given by [`stratified_counts`].
pub fn stratified_holdout_indices(
    labels: &[usize],
    n_classes: usize,
    fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let h = holdout_size(labels.len(), fraction)?;
    let held = stratified_indices(labels, n_classes, h, seed)?;
    let mut is_held = vec![false; labels.len()];
    for &i in &held {
        is_held[i] = true;
    }
    let kept = (0..labels.len()).filter(|&i| !is_held[i]).collect();
    Ok((kept, held))
}

fn class_info(ds: &Dataset) -> Result<(&[usize], usize)> {
    let labels = ds.labels_checked()?;
    Ok((labels, ds.n_classes().expect("classification set")))
}

/// The first `n` points, named `<name>[:n]`.
pub fn first_n(ds: &Dataset, n: usize) -> Result<Dataset> {
    let idx = first_n_indices(ds.len(), n).map_err(|e| rename_err(e, ds))?;
    Ok(ds.select(&idx)?.renamed(format!("{}[:{n}]", ds.name())))
}

/// `n` points drawn uniformly without replacement (in original order).
pub fn subsample(ds: &Dataset, n: usize, seed: u64) -> Result<Dataset> {
    let idx = random_indices(ds.len(), n, seed).map_err(|e| rename_err(e, ds))?;
    Ok(ds
        .select(&idx)?
        .renamed(format!("{}[random {n}, seed {seed}]", ds.name())))
}

/// `n` points with class proportions kept (see [`stratified_indices`]).
pub fn stratified_subsample(ds: &Dataset, n: usize, seed: u64) -> Result<Dataset> {
    let (labels, c) = class_info(ds)?;
    let idx = stratified_indices(labels, c, n, seed).map_err(|e| rename_err(e, ds))?;
    Ok(ds
        .select(&idx)?
        .renamed(format!("{}[stratified {n}, seed {seed}]", ds.name())))
}

/// `k` points of every class (see [`class_balanced_indices`]).
pub fn class_balanced(ds: &Dataset, k: usize, seed: u64) -> Result<Dataset> {
    let (labels, c) = class_info(ds)?;
    let idx = class_balanced_indices(labels, c, k, seed).map_err(|e| rename_err(e, ds))?;
    Ok(ds
        .select(&idx)?
        .renamed(format!("{}[{k} per class, seed {seed}]", ds.name())))
}

/// Splits `ds` into `(rest, held_out)` with `fraction` held out, by a seeded
/// shuffle, stratified by class if asked (classification sets only).
pub fn holdout(
    ds: &Dataset,
    fraction: f64,
    seed: u64,
    stratified: bool,
) -> Result<(Dataset, Dataset)> {
    let (kept, held) = if stratified {
        let (labels, c) = class_info(ds)?;
        stratified_holdout_indices(labels, c, fraction, seed)?
    } else {
        holdout_indices(ds.len(), fraction, seed)?
    };
    Ok((ds.select(&kept)?, ds.select(&held)?))
}

/// A train/test [`Split`] of a set without an official test split; the parts
/// are named `<name>-train` / `<name>-test`.
pub fn train_test_split(
    ds: &Dataset,
    test_fraction: f64,
    seed: u64,
    stratified: bool,
) -> Result<Split> {
    let (train, test) = holdout(ds, test_fraction, seed, stratified)?;
    Ok(Split {
        train: train.renamed(format!("{}-train", ds.name())),
        test: test.renamed(format!("{}-test", ds.name())),
        valid: None,
    })
}

/// Carves a validation set of `valid_fraction` of the training set out of it
/// (replacing any existing one); named `<train name>-valid`.
pub fn with_validation(
    split: Split,
    valid_fraction: f64,
    seed: u64,
    stratified: bool,
) -> Result<Split> {
    let name = split.train.name().to_string();
    let (train, valid) = holdout(&split.train, valid_fraction, seed, stratified)?;
    Ok(Split {
        train: train.renamed(name.clone()),
        test: split.test,
        valid: Some(valid.renamed(format!("{name}-valid"))),
    })
}

fn rename_err(e: DataError, ds: &Dataset) -> DataError {
    match e {
        DataError::Core(wellspring_core::CoreError::InvalidParam {
            name,
            value,
            reason,
        }) => DataError::invalid_param(
            name,
            value,
            reason.replace("the set", &format!("dataset {}", ds.name())),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_remainder_counts() {
        // 10 of [5, 3, 2] → exact [5, 3, 2]; 7 of it → [3.5, 2.1, 1.4] → [4, 2, 1].
        assert_eq!(stratified_counts(&[5, 3, 2], 10).unwrap(), vec![5, 3, 2]);
        assert_eq!(stratified_counts(&[5, 3, 2], 7).unwrap(), vec![4, 2, 1]);
        assert!(stratified_counts(&[5, 3, 2], 11).is_err());
        assert!(stratified_counts(&[5, 3, 2], 0).is_err());
    }

    #[test]
    fn holdout_sizes() {
        assert_eq!(holdout_size(1030, 0.2).unwrap(), 206);
        assert_eq!(holdout_size(3, 0.01).unwrap(), 1);
        assert!(holdout_size(10, 1.0).is_err());
        assert!(holdout_size(1, 0.5).is_err());
    }
}
