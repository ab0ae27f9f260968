//! `ggda-pruning`: GGDA Table 2 / Table 7 layout (Ley et al. 2024, §5.4.2)
//! for MNIST: test accuracy after pruning 25 / 50 / 75% of the training set
//! by TracIn and influence (Fisher, LiSSA) importances, DA vs GGDA.

use super::common::{INF_FISHER, INF_LISSA, TRACIN};
use super::prune::{PruningSpec, pruning};
use crate::repro::recipes::MNIST5K_MLP;
use crate::repro::{ReproError, RunContext, Target};
use wellspring_report::Report;

pub(in crate::repro) const TARGET: Target = Target {
    name: "ggda-pruning",
    paper: "Ley et al. 2024 (GGDA), Table 2 / Table 7 (MNIST)",
    description: "MNIST MLP: accuracy after pruning 25/50/75% by DA vs GGDA importances",
    run,
};

const SPEC: PruningSpec = PruningSpec {
    target: "ggda-pruning",
    title: "GGDA Table 2/7 layout: pruning MNIST (MLP)",
    recipe: &MNIST5K_MLP,
    n_train: (Some(5000), Some(1000)),
    n_test: (Some(1000), Some(100)),
    epochs: (Some(10), Some(6)),
    group_size: (256, 64),
    methods: &[TRACIN, INF_FISHER, INF_LISSA],
    paper: &[],
    paper_source: "GGDA Tables 2 and 7 (MNIST, groups of 1024, full data 97.7%); their bodies are \
                   missing from our copy of the paper, so no per-cell values are shown",
    stand_in: "CPU setting: the first 5000 MNIST training digits, dattri's MLP 784-128-64-10 trained \
               10 epochs (SGD lr 0.01, momentum 0.9, batch 64) instead of GGDA's full-MNIST ANN; \
               groups of 256 (about 20 groups) instead of 1024 (about 58 on full MNIST).",
};

fn run(ctx: &RunContext) -> Result<Report, ReproError> {
    pruning(ctx, &SPEC)
}
