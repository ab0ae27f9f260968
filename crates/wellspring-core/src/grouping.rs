//! [`Grouping`]: a partition of the training set into groups (GGDA).

use crate::error::{CoreError, Result};

/// A partition of `0..n` into non-empty groups. Every training point belongs to
/// exactly one group; construction checks this and names any index that is
/// missing, repeated or out of range.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Grouping {
    n: usize,
    groups: Vec<Vec<usize>>,
    assignment: Vec<usize>,
}

impl Grouping {
    /// Builds a grouping from explicit member lists, checking it partitions `0..n`.
    pub fn new(groups: Vec<Vec<usize>>, n: usize) -> Result<Self> {
        const UNSET: usize = usize::MAX;
        let mut assignment = vec![UNSET; n];
        for (g, members) in groups.iter().enumerate() {
            if members.is_empty() {
                return Err(CoreError::Empty {
                    what: format!("group {g}"),
                });
            }
            for &i in members {
                if i >= n {
                    return Err(CoreError::IndexOutOfRange {
                        what: format!("group {g}"),
                        index: i,
                        len: n,
                    });
                }
                if assignment[i] != UNSET {
                    return Err(CoreError::DuplicateIndex {
                        what: format!("grouping (groups {} and {g})", assignment[i]),
                        index: i,
                    });
                }
                assignment[i] = g;
            }
        }
        if let Some(missing) = assignment.iter().position(|&a| a == UNSET) {
            return Err(CoreError::invalid_param(
                "grouping",
                format!("{} groups", groups.len()),
                format!("training point {missing} is in no group"),
            ));
        }
        Ok(Self {
            n,
            groups,
            assignment,
        })
    }

    /// Builds a grouping from a per-point group id in `0..k`. Empty ids are dropped
    /// and the remaining groups renumbered in order of first id.
    pub fn from_assignment(assignment: &[usize]) -> Result<Self> {
        let k = assignment.iter().copied().max().map_or(0, |m| m + 1);
        let mut groups = vec![Vec::new(); k];
        for (i, &g) in assignment.iter().enumerate() {
            groups[g].push(i);
        }
        groups.retain(|g| !g.is_empty());
        Self::new(groups, assignment.len())
    }

    /// One group per point: group attribution then equals per-point attribution.
    pub fn singletons(n: usize) -> Self {
        Self {
            n,
            groups: (0..n).map(|i| vec![i]).collect(),
            assignment: (0..n).collect(),
        }
    }

    /// Number of training points covered.
    pub fn n_points(&self) -> usize {
        self.n
    }

    /// Number of groups.
    pub fn n_groups(&self) -> usize {
        self.groups.len()
    }

    /// Member lists, one per group.
    pub fn groups(&self) -> &[Vec<usize>] {
        &self.groups
    }

    /// Group id of every point.
    pub fn assignment(&self) -> &[usize] {
        &self.assignment
    }

    /// Group id of point `i`.
    pub fn group_of(&self, i: usize) -> usize {
        self.assignment[i]
    }

    /// Group sizes.
    pub fn sizes(&self) -> Vec<usize> {
        self.groups.iter().map(Vec::len).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bad_groupings_are_named() {
        let e = Grouping::new(vec![vec![0, 1], vec![1, 2]], 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("index 1 occurs more than once"), "{e}");
        let e = Grouping::new(vec![vec![0, 1]], 3).unwrap_err().to_string();
        assert!(e.contains("training point 2 is in no group"), "{e}");
        let e = Grouping::new(vec![vec![0, 1, 2, 3]], 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("index 3 out of range"), "{e}");
        assert!(Grouping::new(vec![vec![0, 1, 2], vec![]], 3).is_err());
    }

    proptest! {
        #[test]
        fn assignment_round_trips(assign in proptest::collection::vec(0usize..6, 1..50)) {
            let g = Grouping::from_assignment(&assign).unwrap();
            prop_assert_eq!(g.sizes().iter().sum::<usize>(), assign.len());
            for (i, &a) in assign.iter().enumerate() {
                let gid = g.group_of(i);
                prop_assert!(g.groups()[gid].contains(&i));
                // points sharing an original id share a group
                for (j, &b) in assign.iter().enumerate() {
                    prop_assert_eq!(a == b, g.group_of(j) == gid);
                }
            }
        }
    }
}
