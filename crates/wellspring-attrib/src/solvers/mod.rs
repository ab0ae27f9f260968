//! Host solvers used by the attribution methods, with faer's shape (params
//! in, value plus info out): [`svm`] (dual coordinate descent, ESVM) and
//! [`lbfgs`] (L-BFGS, RPS's last-layer refit).

pub mod cholesky;
pub mod ihvp;
pub mod lbfgs;
pub mod svm;

pub use lbfgs::{LbfgsInfo, LbfgsParams, minimize};
pub use svm::{LinearSvm, SvmLoss, SvmParams, fit_linear_svm};
