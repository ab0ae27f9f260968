//! The dattri head-to-head benchmark (issue D): LDS, wall time and memory of
//! every registered method on dattri's MNIST setting.

pub(super) mod mnist;
