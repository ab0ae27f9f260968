//! `ggda-table1`: GGDA Table 1 (Ley et al. 2024, §5.4.2): test accuracy after
//! pruning 25 / 50 / 75% of HELOC with logistic regression, TracIn and
//! influence (Fisher, LiSSA), DA vs GGDA with groups of 256.

use super::common::{INF_FISHER_HELOC, INF_LISSA, TRACIN};
use super::prune::{PruningSpec, pruning};
use crate::repro::recipes::HELOC_LOGREG;
use crate::repro::{ReproError, RunContext, Target};
use wellspring_report::Report;

pub(in crate::repro) const TARGET: Target = Target {
    name: "ggda-table1",
    paper: "Ley et al. 2024 (GGDA), Table 1",
    description: "HELOC logistic regression: accuracy after pruning 25/50/75% by DA vs GGDA (groups of 256) importances",
    run,
};

const SPEC: PruningSpec = PruningSpec {
    target: "ggda-table1",
    title: "GGDA Table 1: pruning HELOC (logistic regression)",
    recipe: &HELOC_LOGREG,
    n_train: (None, Some(2000)),
    n_test: (Some(1000), Some(300)),
    epochs: (None, None),
    group_size: (256, 256),
    methods: &[TRACIN, INF_FISHER_HELOC, INF_LISSA],
    paper: &[
        ("TracIn", "DA", [70.8, 56.3, 47.9], 6.18),
        ("TracIn", "GGDA", [72.4, 72.6, 71.6], 0.09),
        ("Inf. (Fisher)", "DA", [57.0, 50.7, 42.5], 6.15),
        ("Inf. (Fisher)", "GGDA", [72.5, 71.7, 72.6], 0.08),
        ("Inf. (LiSSA)", "DA", [70.8, 56.5, 47.9], 10.7),
        ("Inf. (LiSSA)", "GGDA", [72.4, 72.6, 71.6], 4.30),
    ],
    paper_source: "GGDA Table 1 (HELOC, LR, groups of 256; full data 72.6%; GPU runtimes)",
    stand_in: "HELOC is read from WELLSPRING_DATA (its terms forbid copying it into the repository); no stand-in.",
};

fn run(ctx: &RunContext) -> Result<Report, ReproError> {
    pruning(ctx, &SPEC)
}
