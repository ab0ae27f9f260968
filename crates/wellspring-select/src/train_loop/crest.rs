//! CREST proper (Yang, Kang & Mirzasoleiman 2023, Alg. 1) inside the model
//! loop: [`crate::CrestDriver`] decides, step by step, when to select
//! mini-batch coresets, fit the quadratic model and check it; this module
//! serves its requests with the model's last layer, on the host.

use std::time::{Duration, Instant};

use wellspring_core::{Dataset, derive_seed, derive_seed_str, rng};
use wellspring_models::burn_types::Device;
use wellspring_models::{AnyModel, EpochStats, Model, TrainConfig, Trainer, features};

use super::head::{Head, HessianDiag, ce_losses, quadratic_fit};
use super::inputs::{Want, compute};
use super::{
    EpochRecord, LoopError, RoundRecord, SelectionRun, finish_epoch, shuffle, test_accuracy,
};
use crate::crest::CrestParams;
use crate::crest_driver::{CrestAction, CrestDriver, QuadraticModel};
use crate::selector::{Budget, SelectionInfo};

/// CREST's settings for the model loop: the selection parameters and how the
/// last layer's Hessian diagonal is obtained. The coreset mini-batch size is
/// always the trainer's batch size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CrestLoop {
    /// Selection and check parameters (batch size overridden by the trainer's).
    pub params: CrestParams,
    /// Hessian diagonal of the quadratic model.
    pub hessian: HessianDiag,
    /// Evaluate each check's true loss on at most this many of the random
    /// subsets' points (a seeded uniform sample per check), or on all (`None`).
    pub max_check_points: Option<usize>,
}

impl Default for CrestLoop {
    /// CREST's defaults with a one-probe Hutchinson diagonal (AdaHessian's estimator).
    fn default() -> Self {
        Self::new(CrestParams::default())
    }
}

impl CrestLoop {
    /// `params` with a one-probe Hutchinson diagonal.
    pub fn new(params: CrestParams) -> Self {
        Self {
            params,
            hessian: HessianDiag::Hutchinson { probes: 1 },
            max_check_points: None,
        }
    }

    /// Caps the points each check evaluates (CPU budgets: a check otherwise
    /// runs a forward pass over every random subset of the round).
    pub fn max_check_points(mut self, m: Option<usize>) -> Self {
        self.max_check_points = m;
        self
    }

    /// Uses another Hessian-diagonal estimate.
    pub fn hessian(mut self, h: HessianDiag) -> Self {
        self.hessian = h;
        self
    }
}

/// What CREST's driver did during a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CrestStats {
    /// Selections (rounds of mini-batch coresets).
    pub selections: usize,
    /// Quadratic-model checks.
    pub checks: usize,
    /// Checks that found `|L − L̂| > τ·L` and triggered a reselection.
    pub failed_checks: usize,
    /// Warm-up steps on full-data mini-batches before the first selection.
    pub warmup_steps: usize,
    /// Time in selections (candidate forward passes, proxies, facility location).
    pub select_time: Duration,
    /// Time fitting quadratic models (features, loss, gradient, Hessian diagonal).
    pub fit_time: Duration,
    /// Time in checks (true loss on the random subsets, `L̂`).
    pub check_time: Duration,
    /// The check interval at the end of the run.
    pub final_check_interval: usize,
}

/// Trains `model` with CREST for `train_cfg.epochs` epochs of
/// `⌈budget/B⌉` steps each (`B = train_cfg.batch_size`), serving
/// [`CrestDriver`]'s requests: proxies of the random subsets'
/// candidates, the last layer's quadratic model on the weighted coreset
/// (`L₀`, exact gradient, Hessian diagonal per [`CrestLoop::hessian`]) and
/// checks of the true mean loss on the random subsets against
/// `L̂ = L₀ + gᵀδ + ½ δᵀ diag(h) δ`, with `δ` the head's displacement.
/// The first epoch's steps are CREST's full-data warm-up. The driver seeds
/// from `seed`; shuffles and dropout use `train_cfg.seed`.
///
/// The quadratic model covers the last layer only (the rest of the network
/// also moves between checks, which shows up as a larger `|L − L̂|`).
#[allow(clippy::too_many_arguments)]
pub fn train_with_crest(
    model: Model,
    train: &Dataset,
    test: Option<&Dataset>,
    crest: &CrestLoop,
    budget: Budget,
    train_cfg: &TrainConfig,
    device: &Device,
    seed: u64,
    mut progress: Option<&mut dyn FnMut(&EpochRecord)>,
) -> Result<SelectionRun, LoopError> {
    let total = Instant::now();
    model.check_dataset(train)?;
    let labels = train.labels_checked()?;
    let n = train.len();
    let c = model.n_outputs();
    let k = budget.resolve(n)?;
    let b = train_cfg.batch_size;
    let params = crest.params.batch_size(b);
    params.check()?;
    let mut trainer = Trainer::new(model, train_cfg.clone(), device)?;
    let spe = trainer.steps_for(k).max(1);
    trainer = trainer.with_steps_per_epoch(spe);
    let mut driver = CrestDriver::new(params, labels, c, spe, seed)?;
    let mut run = SelectionRun {
        model: trainer.snapshot(),
        history: Vec::new(),
        rounds: Vec::new(),
        selection_time: Duration::ZERO,
        train_time: Duration::ZERO,
        total_time: Duration::ZERO,
        test_accuracy: None,
        steps: 0,
        budget: k,
        crest: None,
    };
    let mut stats = CrestStats::default();
    let want = Want {
        proxies: Some(params.proxy),
        ..Want::default()
    };
    let fit_seed = derive_seed_str(seed, "crest-hutchinson");
    let check_seed = derive_seed_str(seed, "crest-check-sample");
    let mut quad: Option<(QuadraticModel, Vec<f32>)> = None;
    let mut order: Vec<usize> = Vec::new();
    let mut cursor = 0usize;
    let mut pass = 0u64;
    let total_steps = train_cfg.epochs * spe;
    let (mut loss_sum, mut seen, mut full_steps) = (0.0f64, 0usize, 0usize);
    let (mut block_train, mut block_sel, mut block_rounds) = (Duration::ZERO, Duration::ZERO, 0);
    for t in 0..total_steps {
        let (batch, weights) = loop {
            match driver.next_action(t)? {
                CrestAction::TrainFull => {
                    if cursor >= order.len() {
                        order = (0..n).collect();
                        let mut r = rng(derive_seed(
                            derive_seed_str(train_cfg.seed, "crest-warmup"),
                            pass,
                        ));
                        shuffle(&mut order, &mut r);
                        pass += 1;
                        cursor = 0;
                    }
                    let end = (cursor + b).min(n);
                    let batch = order[cursor..end].to_vec();
                    cursor = end;
                    stats.warmup_steps += 1;
                    full_steps += 1;
                    break (batch, None);
                }
                CrestAction::Select { candidates } => {
                    let clock = Instant::now();
                    let sub = train.select(&candidates)?;
                    let out = compute(&AnyModel::from(trainer.model()), &sub, want, device)?;
                    let proxies = out.proxies.expect("proxies were requested");
                    let input_time = clock.elapsed();
                    let clock = Instant::now();
                    let round = driver.select(&proxies)?;
                    let select_time = clock.elapsed();
                    let selected: usize = round.coresets.iter().map(Vec::len).sum();
                    let info = SelectionInfo {
                        selector: "CREST",
                        wall_time: select_time,
                        requested: round.coresets.len() * b,
                        selected,
                        shortfall: (round.coresets.len() * b).saturating_sub(selected),
                        filled_at_random: 0,
                        objective: round.objective.clone(),
                        evaluations: round.evaluations,
                    };
                    run.rounds.push(RoundRecord {
                        epoch: t / spe,
                        step: t,
                        input_time,
                        select_time,
                        info,
                    });
                    stats.selections += 1;
                    stats.select_time += input_time + select_time;
                    block_sel += input_time + select_time;
                    block_rounds += 1;
                }
                CrestAction::FitQuadratic { coreset } => {
                    let clock = Instant::now();
                    let sub = train.select(coreset.indices())?;
                    let phi = features(trainer.model(), &sub, device)?;
                    let head = Head::of(&AnyModel::from(trainer.model()))?;
                    let ones;
                    let w = match coreset.weights() {
                        Some(w) => w,
                        None => {
                            ones = vec![1.0f32; coreset.len()];
                            &ones
                        }
                    };
                    let q = quadratic_fit(
                        &head,
                        &phi,
                        sub.labels_checked()?,
                        w,
                        crest.hessian,
                        derive_seed(fit_seed, stats.selections as u64),
                    )?;
                    driver.set_quadratic(q.curvature_norm())?;
                    quad = Some((q, head.flat()));
                    let took = clock.elapsed();
                    stats.fit_time += took;
                    block_sel += took;
                }
                CrestAction::Check { mut points } => {
                    let clock = Instant::now();
                    if let Some(m) = crest.max_check_points
                        && points.len() > m.max(1)
                    {
                        let mut r = rng(derive_seed(check_seed, stats.checks as u64));
                        shuffle(&mut points, &mut r);
                        points.truncate(m.max(1));
                    }
                    let sub = train.select(&points)?;
                    let phi = features(trainer.model(), &sub, device)?;
                    let head = Head::of(&AnyModel::from(trainer.model()))?;
                    let losses = ce_losses(&head.logits(&phi), sub.labels_checked()?, c);
                    let l = losses.iter().map(|&v| v as f64).sum::<f64>() / losses.len() as f64;
                    let (q, theta0) = quad.as_ref().expect("a check follows a fit");
                    let delta: Vec<f32> =
                        head.flat().iter().zip(theta0).map(|(a, b)| a - b).collect();
                    let l_hat = q.predict(&delta)?;
                    let outcome = driver.check(l, l_hat)?;
                    stats.checks += 1;
                    stats.failed_checks += usize::from(outcome.reselect);
                    let took = clock.elapsed();
                    stats.check_time += took;
                    block_sel += took;
                }
                CrestAction::Train => {
                    let bt = driver.next_batch()?;
                    break (bt.indices, Some(bt.weights));
                }
            }
        };
        let clock = Instant::now();
        let loss = trainer.step(train, &batch, weights.as_deref())?;
        block_train += clock.elapsed();
        loss_sum += loss as f64 * batch.len() as f64;
        seen += batch.len();
        if (t + 1) % spe == 0 || t + 1 == total_steps {
            run.train_time += block_train;
            run.selection_time += block_sel;
            let rec = EpochRecord {
                stats: EpochStats {
                    epoch: t / spe + 1,
                    steps: (t % spe) + 1,
                    examples: seen,
                    train_loss: loss_sum / seen.max(1) as f64,
                    lr: trainer.last_lr(),
                },
                full_data: full_steps == (t % spe) + 1,
                rounds: block_rounds,
                selection_time: block_sel,
                train_time: block_train,
            };
            finish_epoch(&mut run, rec, &mut progress);
            (loss_sum, seen, full_steps) = (0.0, 0, 0);
            (block_train, block_sel, block_rounds) = (Duration::ZERO, Duration::ZERO, 0);
        }
    }
    stats.final_check_interval = driver.check_interval();
    run.crest = Some(stats);
    run.steps = trainer.global_step();
    run.model = trainer.into_model();
    run.total_time = total.elapsed();
    run.test_accuracy = test_accuracy(&run.model, test, device)?;
    Ok(run)
}
