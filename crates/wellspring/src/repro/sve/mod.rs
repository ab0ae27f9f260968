//! SVE (Mahmood, Yin & Khanna 2025): the support vector effect in
//! last-layer attribution (Tables 1–2, Figures 1, 2 and 7) and simple data
//! selection against CREST (Tables 3–5, Figure 3). `exemplars` holds the
//! attribution side (methods, trained models, cached top-k lists), `select`
//! the selection runs every selection table shares.

mod exemplars;
mod select;

pub(super) mod fig1;
pub(super) mod fig2;
pub(super) mod fig3;
pub(super) mod fig7;
pub(super) mod table1;
pub(super) mod table2;
pub(super) mod table3;
pub(super) mod table4;
pub(super) mod table5;
