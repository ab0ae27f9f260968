//! Computes exactly what a selector's [`Needs`] ask for, from the current
//! model: probabilities (forward pass), losses, last-layer gradient proxies
//! (softmax − one-hot, optionally ⊗ penultimate features, on the host) and
//! the validation quantities.

use wellspring_core::Dataset;
use wellspring_models::burn_types::Device;
use wellspring_models::{AnyModel, features, predict_logits};

use super::LoopError;
use super::head::{Head, ce_losses, softmax_rows};
use crate::state::{GradProxies, Needs, ProxyKind};

/// Host quantities of one dataset under the current model.
#[derive(Debug, Default)]
pub(crate) struct Outputs {
    pub probs: Option<Vec<f32>>,
    pub losses: Option<Vec<f32>>,
    pub features: Option<(Vec<f32>, usize)>,
    pub proxies: Option<GradProxies>,
}

/// What to compute for one dataset.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Want {
    pub probs: bool,
    pub losses: bool,
    pub features: bool,
    pub proxies: Option<ProxyKind>,
}

impl Want {
    pub fn train(needs: &Needs) -> Want {
        Want {
            probs: needs.probs,
            losses: needs.losses,
            features: false,
            proxies: needs.proxies,
        }
    }

    pub fn validation(needs: &Needs) -> Want {
        Want {
            probs: needs.val_probs,
            losses: false,
            features: needs.val_features,
            proxies: needs.val_proxies,
        }
    }

    pub fn any(&self) -> bool {
        self.probs || self.losses || self.features || self.proxies.is_some()
    }
}

/// Forward passes over `data` in eval mode and the host math on top.
/// One pass either way: penultimate features plus the head on the host when
/// features are needed, plain logits otherwise.
pub(crate) fn compute(
    model: &AnyModel,
    data: &Dataset,
    want: Want,
    device: &Device,
) -> Result<Outputs, LoopError> {
    if !want.any() {
        return Ok(Outputs::default());
    }
    let labels = data.labels_checked()?;
    let need_phi = want.features || want.proxies == Some(ProxyKind::BiasAndWeights);
    let (logits, phi) = if need_phi {
        let phi = features(model, data, device)?;
        let head = Head::of(model)?;
        (head.logits(&phi), Some((phi, head.p)))
    } else {
        (predict_logits(model, data, device)?, None)
    };
    let c = logits.len() / data.len().max(1);
    let probs = softmax_rows(&logits, c);
    let losses = want.losses.then(|| ce_losses(&logits, labels, c));
    let proxies = match want.proxies {
        None => None,
        Some(ProxyKind::Bias) => Some(GradProxies::last_layer(&probs, labels, c, None)?),
        Some(ProxyKind::BiasAndWeights) => {
            let (f, p) = phi.as_ref().expect("features computed for weight proxies");
            Some(GradProxies::last_layer(&probs, labels, c, Some((f, *p)))?)
        }
    };
    Ok(Outputs {
        probs: (want.probs || want.proxies.is_some()).then_some(probs),
        losses,
        features: if want.features { phi } else { None },
        proxies,
    })
}
