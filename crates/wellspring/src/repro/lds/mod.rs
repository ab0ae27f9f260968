//! Linear datamodeling scores: the dattri head-to-head benchmark (issue D:
//! LDS, wall time and memory of every registered method on dattri's MNIST
//! setting) and the SST-2 transformer (issue F).

pub(super) mod mnist;
pub(super) mod transformer;
