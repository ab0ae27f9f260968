//! [`RandomGrouping`]: equal-size groups from a seeded shuffle (GGDA §5.2, "Random").

use rand::seq::SliceRandom;
use wellspring_core::{Grouping, rng};

use crate::Grouper;
use crate::error::Result;
use crate::points::{GroupAmount, Points};

/// Random grouping: shuffle `0..n` with `ChaCha8Rng(seed)` and cut it into `k`
/// consecutive runs whose sizes differ by at most one (the first `n mod k`
/// groups get the extra point). Members are listed in increasing order.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RandomGrouping {
    amount: GroupAmount,
    seed: u64,
}

impl RandomGrouping {
    /// Random groups of the given count or size, seed 0.
    pub fn new(amount: GroupAmount) -> Self {
        Self { amount, seed: 0 }
    }

    /// The seed of the shuffle.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Groups `n` points (no features needed).
    pub fn group_n(&self, n: usize) -> Result<Grouping> {
        let k = self.amount.n_groups(n)?;
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng(self.seed));
        let (base, extra) = (n / k, n % k);
        let mut groups = Vec::with_capacity(k);
        let mut start = 0;
        for g in 0..k {
            let len = base + usize::from(g < extra);
            let mut members = order[start..start + len].to_vec();
            members.sort_unstable();
            groups.push(members);
            start += len;
        }
        Ok(Grouping::new(groups, n)?)
    }
}

impl Grouper for RandomGrouping {
    fn name(&self) -> &str {
        "random"
    }

    fn group(&self, points: Points<'_>) -> Result<Grouping> {
        self.group_n(points.n())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_differ_by_at_most_one() {
        let g = RandomGrouping::new(GroupAmount::Groups(3))
            .seed(5)
            .group_n(10)
            .unwrap();
        assert_eq!(g.sizes(), vec![4, 3, 3]);
        let g = RandomGrouping::new(GroupAmount::Size(4))
            .group_n(10)
            .unwrap();
        assert_eq!(g.n_groups(), 3);
        assert!(g.sizes().iter().all(|&s| s <= 4));
    }
}
