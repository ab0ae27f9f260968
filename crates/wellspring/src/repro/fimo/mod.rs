//! FiMO's further-training gold standard (Bae et al.): Figures 2 and 3 read
//! the same cached further-training runs through `common`.

mod common;
mod methods;

pub(super) mod fig2;
pub(super) mod fig3;
