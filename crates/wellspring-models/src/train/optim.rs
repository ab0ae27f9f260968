//! Building burn-optim's optimizers from a [`TrainConfig`].

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{
    AdaGradConfig, AdamConfig, AdamWConfig, ModuleOptimizer, RmsPropConfig, SgdConfig,
};

use super::{Optimizer, TrainConfig};

/// The burn optimizer for `cfg` (hyper-parameters already checked).
///
/// SGD momentum uses dampening 0 (PyTorch's default; burn's default is 0.1).
pub(crate) fn build(cfg: &TrainConfig) -> ModuleOptimizer {
    let l2 = (cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay as f32));
    match &cfg.optimizer {
        Optimizer::Sgd { momentum, nesterov } => SgdConfig::new()
            .with_weight_decay(l2)
            .with_momentum((*momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(*momentum)
                    .with_dampening(0.0)
                    .with_nesterov(*nesterov)
            }))
            .init(),
        Optimizer::Adam { beta1, beta2, eps } => AdamConfig::new()
            .with_beta_1(*beta1 as f32)
            .with_beta_2(*beta2 as f32)
            .with_epsilon(*eps as f32)
            .with_weight_decay(l2)
            .init(),
        Optimizer::AdamW { beta1, beta2, eps } => AdamWConfig::new()
            .with_beta_1(*beta1 as f32)
            .with_beta_2(*beta2 as f32)
            .with_epsilon(*eps as f32)
            .with_weight_decay(cfg.weight_decay as f32)
            .init(),
        Optimizer::AdaGrad { lr_decay, eps } => AdaGradConfig::new()
            .with_lr_decay(*lr_decay)
            .with_epsilon(*eps as f32)
            .with_weight_decay(l2)
            .init(),
        Optimizer::RmsProp {
            alpha,
            momentum,
            eps,
            centered,
        } => RmsPropConfig::new()
            .with_alpha(*alpha as f32)
            .with_momentum(*momentum as f32)
            .with_epsilon(*eps as f32)
            .with_centered(*centered)
            .with_weight_decay(l2)
            .init(),
    }
}
