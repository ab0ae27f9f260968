//! Superclass relabelling: the labels become superclasses and the original
//! labels are kept as [`wellspring_core::Subclasses`] (SVE's CIFAR-10B
//! "vehicle vs not", and similar binary tasks on MNIST / Fashion-MNIST).

use wellspring_core::Dataset;

use crate::error::{DataError, Result};

/// A map from original class to superclass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuperclassMap {
    map: Vec<usize>,
    n_superclasses: usize,
    names: Option<Vec<String>>,
}

impl SuperclassMap {
    /// `map[c]` is the superclass of original class `c`; superclasses must be
    /// `0..k` with every one used and `k ≥ 2`.
    pub fn new(map: Vec<usize>) -> Result<Self> {
        if map.is_empty() {
            return Err(DataError::invalid_param(
                "superclass map",
                "[]",
                "needs one entry per original class",
            ));
        }
        let k = map.iter().max().expect("non-empty") + 1;
        if k < 2 {
            return Err(DataError::invalid_param(
                "superclass map",
                format!("{map:?}"),
                "needs at least 2 superclasses",
            ));
        }
        let mut used = vec![false; k];
        for &s in &map {
            used[s] = true;
        }
        if let Some(s) = used.iter().position(|u| !u) {
            return Err(DataError::invalid_param(
                "superclass map",
                format!("{map:?}"),
                format!("superclass {s} has no original class"),
            ));
        }
        Ok(Self {
            map,
            n_superclasses: k,
            names: None,
        })
    }

    /// Binary map: classes in `members` → 1, all others → 0.
    pub fn binary(n_classes: usize, members: &[usize]) -> Result<Self> {
        let mut map = vec![0; n_classes];
        for &m in members {
            if m >= n_classes {
                return Err(DataError::invalid_param(
                    "superclass member",
                    m,
                    format!("out of range for {n_classes} classes"),
                ));
            }
            map[m] = 1;
        }
        Self::new(map)
    }

    /// Attaches superclass names (one per superclass).
    pub fn with_names(mut self, names: &[&str]) -> Result<Self> {
        if names.len() != self.n_superclasses {
            return Err(DataError::invalid_param(
                "superclass names",
                names.len(),
                format!("need one per superclass ({})", self.n_superclasses),
            ));
        }
        self.names = Some(names.iter().map(|s| s.to_string()).collect());
        Ok(self)
    }

    /// Superclass of each original class.
    pub fn map(&self) -> &[usize] {
        &self.map
    }

    /// Number of original classes.
    pub fn n_classes(&self) -> usize {
        self.map.len()
    }

    /// Number of superclasses.
    pub fn n_superclasses(&self) -> usize {
        self.n_superclasses
    }

    /// Superclass names, if attached.
    pub fn names(&self) -> Option<&[String]> {
        self.names.as_deref()
    }

    /// CIFAR-10B (SVE): airplane, automobile, ship, truck → 1 ("vehicle"), rest → 0.
    pub fn cifar10_vehicles() -> Self {
        Self::binary(10, &[0, 1, 8, 9])
            .and_then(|m| m.with_names(&["not vehicle", "vehicle"]))
            .expect("static map is valid")
    }

    /// MNIST "digit < 5": digits 0-4 → 1, 5-9 → 0.
    pub fn mnist_digit_lt5() -> Self {
        Self::binary(10, &[0, 1, 2, 3, 4])
            .and_then(|m| m.with_names(&["digit >= 5", "digit < 5"]))
            .expect("static map is valid")
    }

    /// Fashion-MNIST footwear: sandal, sneaker, ankle boot → 1, rest → 0.
    pub fn fashion_footwear() -> Self {
        Self::binary(10, &[5, 7, 9])
            .and_then(|m| m.with_names(&["not footwear", "footwear"]))
            .expect("static map is valid")
    }

    /// Fashion-MNIST coarse groups: 0 tops {T-shirt, pullover, coat, shirt},
    /// 1 trouser, 2 dress, 3 footwear {sandal, sneaker, ankle boot}, 4 bag.
    pub fn fashion_groups() -> Self {
        Self::new(vec![0, 1, 0, 2, 0, 3, 0, 3, 4, 3])
            .and_then(|m| m.with_names(&["top", "trouser", "dress", "footwear", "bag"]))
            .expect("static map is valid")
    }
}

/// Shorthand for [`SuperclassMap::new`] from a slice.
pub fn superclass_map(map: &[usize]) -> Result<SuperclassMap> {
    SuperclassMap::new(map.to_vec())
}

/// Relabels `ds` into superclasses: labels become `map[label]`, the original
/// labels become the subclasses (replacing any), class names come from the
/// map (if named); named `<name>/super<k>`.
pub fn relabel(ds: &Dataset, map: &SuperclassMap) -> Result<Dataset> {
    let labels = ds.labels_checked()?;
    let c = ds.n_classes().expect("classification set");
    if c != map.n_classes() {
        return Err(DataError::invalid_param(
            "superclass map length",
            map.n_classes(),
            format!("dataset {} has {c} classes", ds.name()),
        ));
    }
    let sup: Vec<usize> = labels.iter().map(|&l| map.map[l]).collect();
    let mut out = ds
        .with_labels(sup, map.n_superclasses)?
        .with_subclasses(labels.to_vec(), c)?
        .renamed(format!("{}/super{}", ds.name(), map.n_superclasses));
    if let Some(names) = &map.names {
        out = out.with_class_names(names.clone())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_checked() {
        assert!(superclass_map(&[0, 0, 0]).is_err());
        assert!(superclass_map(&[0, 2, 0]).is_err());
        assert_eq!(superclass_map(&[1, 0, 1]).unwrap().n_superclasses(), 2);
        assert_eq!(SuperclassMap::cifar10_vehicles().map()[8], 1);
        assert_eq!(SuperclassMap::fashion_groups().n_superclasses(), 5);
    }
}
