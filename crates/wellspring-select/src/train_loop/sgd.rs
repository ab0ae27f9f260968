//! The "SGD" baseline of SVE Table 4 (from CREST's evaluation): the standard
//! full-data mini-batch pipeline, stopped after a fraction of its steps.

use std::time::{Duration, Instant};

use wellspring_core::{Dataset, derive_seed, derive_seed_str, rng};
use wellspring_models::burn_types::Device;
use wellspring_models::{EpochStats, Model, TrainConfig, Trainer};

use super::{EpochRecord, LoopError, SelectionRun, finish_epoch, shuffle, test_accuracy};
use crate::error::SelectError;

/// Full-data mini-batch SGD with the full run's learning-rate schedule
/// (`train_cfg.epochs` epochs of all `n` points), stopped after
/// `round(fraction · epochs · ⌈n/B⌉)` steps — the same number of steps as a
/// `fraction` subset trained for `epochs` epochs. Our reading of SVE Table 4's
/// "SGD ... at 10% training": the schedule is not compressed, so the run ends
/// before the learning rate anneals. Mini-batches are drawn without
/// replacement, reshuffled every pass with `derive_seed(train_cfg.seed, pass)`.
pub fn train_truncated_sgd(
    model: Model,
    train: &Dataset,
    test: Option<&Dataset>,
    fraction: f64,
    train_cfg: &TrainConfig,
    device: &Device,
    mut progress: Option<&mut dyn FnMut(&EpochRecord)>,
) -> Result<SelectionRun, LoopError> {
    let total = Instant::now();
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(SelectError::BadFraction { rho: fraction }.into());
    }
    model.check_dataset(train)?;
    let n = train.len();
    let mut trainer = Trainer::new(model, train_cfg.clone(), device)?;
    let full_spe = trainer.steps_for(n).max(1);
    trainer = trainer.with_steps_per_epoch(full_spe);
    let steps = ((fraction * (train_cfg.epochs * full_spe) as f64).round() as usize).max(1);
    // Report progress in blocks of a subset-epoch's steps, like the other loops.
    let block = ((fraction * n as f64).round() as usize)
        .div_ceil(train_cfg.batch_size)
        .max(1);
    let mut run = SelectionRun {
        model: trainer.snapshot(),
        history: Vec::new(),
        rounds: Vec::new(),
        selection_time: Duration::ZERO,
        train_time: Duration::ZERO,
        total_time: Duration::ZERO,
        test_accuracy: None,
        steps: 0,
        budget: n,
        crest: None,
    };
    let mut order: Vec<usize> = (0..n).collect();
    let mut cursor = n;
    let mut pass = 0u64;
    let (mut loss_sum, mut seen, mut in_block) = (0.0f64, 0usize, 0usize);
    let mut block_time = Duration::ZERO;
    for t in 0..steps {
        if cursor >= n {
            order = (0..n).collect();
            let mut r = rng(derive_seed(
                derive_seed_str(train_cfg.seed, "sgd-passes"),
                pass,
            ));
            shuffle(&mut order, &mut r);
            pass += 1;
            cursor = 0;
        }
        let end = (cursor + train_cfg.batch_size).min(n);
        let batch = &order[cursor..end];
        cursor = end;
        let clock = Instant::now();
        let loss = trainer.step(train, batch, None)?;
        block_time += clock.elapsed();
        loss_sum += loss as f64 * batch.len() as f64;
        seen += batch.len();
        in_block += 1;
        if in_block == block || t + 1 == steps {
            run.train_time += block_time;
            let rec = EpochRecord {
                stats: EpochStats {
                    epoch: run.history.len() + 1,
                    steps: in_block,
                    examples: seen,
                    train_loss: loss_sum / seen.max(1) as f64,
                    lr: trainer.last_lr(),
                },
                full_data: true,
                rounds: 0,
                selection_time: Duration::ZERO,
                train_time: block_time,
            };
            finish_epoch(&mut run, rec, &mut progress);
            (loss_sum, seen, in_block) = (0.0, 0, 0);
            block_time = Duration::ZERO;
        }
    }
    run.steps = trainer.global_step();
    run.model = trainer.into_model();
    run.total_time = total.elapsed();
    run.test_accuracy = test_accuracy(&run.model, test, device)?;
    Ok(run)
}
