//! Turning rows of a host [`Dataset`] into device tensors, with checked errors
//! when the dataset does not fit the model.

use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use wellspring_core::{CoreError, Dataset, Features, Targets};

use crate::config::InputKind;
use crate::error::{ModelError, Result};
use crate::model::Model;
use crate::net::Input;

/// A batch of targets.
// Tensors are fixed-size handles; the token variant holds two of them.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Target {
    /// Class ids `[batch]`.
    Classes(Tensor<1, Int>),
    /// Regression targets `[batch, n_targets]`, in the model's dtype.
    Values(Tensor<2>),
    /// Next-token targets of a language model, aligned with per-token logits
    /// `[batch, T, vocab]`: position `t` predicts `next[b, t]` (the input's
    /// token `t + 1`) with weight `weight[b, t]` (1 for a target token, 0 for
    /// prompt, padding and the last position).
    Tokens {
        /// `[batch, T]` token ids to predict.
        next: Tensor<2, Int>,
        /// `[batch, T]` 0/1 weights, in the model's dtype.
        weight: Tensor<2>,
    },
}

/// Inputs for rows `idx` of `data` on `device` in `dtype`, for any model:
/// dense examples of shape `[c, h, w]` as [`Input::Image`], other dense
/// examples flattened to [`Input::Flat`], tokens as [`Input::Tokens`]
/// padded to the longest row (what [`crate::Attributable::input_batch`]
/// does unless a model overrides it). Errors on an empty batch or an index
/// out of range.
pub fn default_input_batch(
    data: &Dataset,
    idx: &[usize],
    device: &Device,
    dtype: DType,
) -> Result<Input> {
    check_indices(data, idx)?;
    let image = match data.features() {
        Features::Dense { shape, .. } if shape.len() == 3 => Some((shape[0], shape[1], shape[2])),
        _ => None,
    };
    rows_to_input(data, idx, device, dtype, image)
}

/// Targets for rows `idx` of `data`: class ids, regression values in
/// `dtype`, or next-token targets ([`Target::Tokens`]).
pub fn default_target_batch(
    data: &Dataset,
    idx: &[usize],
    device: &Device,
    dtype: DType,
) -> Result<Target> {
    check_indices(data, idx)?;
    match data.targets() {
        Targets::Classes { labels, .. } => {
            let v: Vec<i64> = idx.iter().map(|&i| labels[i] as i64).collect();
            Ok(Target::Classes(Tensor::from_data(
                TensorData::new(v, [idx.len()]),
                device,
            )))
        }
        Targets::Regression { values, n_targets } => {
            let t = *n_targets;
            let mut v = Vec::with_capacity(idx.len() * t);
            for &i in idx {
                v.extend_from_slice(&values[i * t..(i + 1) * t]);
            }
            Ok(Target::Values(Tensor::from_data(
                TensorData::new(v, [idx.len(), t]),
                (device, dtype),
            )))
        }
        Targets::NextToken { prompt_lens, .. } => {
            let feats = data.features();
            let b = idx.len();
            let len = padded_len(data, idx);
            let mut next = vec![0i64; b * len];
            let mut weight = vec![0f32; b * len];
            for (r, &i) in idx.iter().enumerate() {
                let row = feats.token_row(i);
                let first = prompt_lens[i].max(1);
                for t in 0..row.len().saturating_sub(1) {
                    next[r * len + t] = row[t + 1] as i64;
                    if t + 1 >= first {
                        weight[r * len + t] = 1.0;
                    }
                }
            }
            Ok(Target::Tokens {
                next: Tensor::from_data(TensorData::new(next, [b, len]), device),
                weight: Tensor::from_data(TensorData::new(weight, [b, len]), (device, dtype)),
            })
        }
    }
}

fn padded_len(data: &Dataset, idx: &[usize]) -> usize {
    let feats = data.features();
    idx.iter()
        .map(|&i| feats.token_row(i).len())
        .max()
        .unwrap_or(0)
        .max(1)
}

/// Rows `idx` of `data` as an input batch; dense rows become images of
/// shape `image` when given, flat rows otherwise.
fn rows_to_input(
    data: &Dataset,
    idx: &[usize],
    device: &Device,
    dtype: DType,
    image: Option<(usize, usize, usize)>,
) -> Result<Input> {
    let b = idx.len();
    match data.features() {
        Features::Dense { values, shape } => {
            let d: usize = shape.iter().product();
            let mut v = Vec::with_capacity(b * d);
            for &i in idx {
                v.extend_from_slice(&values[i * d..(i + 1) * d]);
            }
            match image {
                Some((c, h, w)) => Ok(Input::Image(Tensor::from_data(
                    TensorData::new(v, [b, c, h, w]),
                    (device, dtype),
                ))),
                None => Ok(Input::Flat(Tensor::from_data(
                    TensorData::new(v, [b, d]),
                    (device, dtype),
                ))),
            }
        }
        Features::Tokens { .. } => {
            let feats = data.features();
            let len = padded_len(data, idx);
            let mut ids = vec![0i64; b * len];
            let mut mask = vec![0f32; b * len];
            for (r, &i) in idx.iter().enumerate() {
                for (t, &tok) in feats.token_row(i).iter().enumerate() {
                    ids[r * len + t] = tok as i64;
                    mask[r * len + t] = 1.0;
                }
            }
            Ok(Input::Tokens {
                ids: Tensor::from_data(TensorData::new(ids, [b, len]), device),
                mask: Tensor::from_data(TensorData::new(mask, [b, len]), (device, dtype)),
            })
        }
    }
}

impl Model {
    /// Checks once that `data` fits the model: feature width or image shape,
    /// token vocabulary, number of classes or regression targets.
    pub fn check_dataset(&self, data: &Dataset) -> Result<()> {
        let name = data.name();
        match (self.config.input_kind(), data.features()) {
            (InputKind::Flat { d }, Features::Dense { shape, .. }) => {
                let w: usize = shape.iter().product();
                if w != d {
                    return Err(ModelError::data(
                        name,
                        format!(
                            "{} model expects {d} features per example, dataset has shape {shape:?} ({w} values)",
                            self.config.name()
                        ),
                    ));
                }
            }
            (InputKind::Image { channels, side }, Features::Dense { shape, .. }) => {
                let (c, h, w) = image_shape(shape, channels).ok_or_else(|| {
                    ModelError::data(
                        name,
                        format!(
                            "{} model expects images with {channels} channel(s), dataset has example shape {shape:?}",
                            self.config.name()
                        ),
                    )
                })?;
                if let Some(s) = side
                    && (h != s || w != s)
                {
                    return Err(ModelError::data(
                        name,
                        format!("model expects {c}x{s}x{s} images, dataset has {c}x{h}x{w}"),
                    ));
                }
                if side.is_none() && (h % 8 != 0 || w % 8 != 0 || h == 0 || w == 0) {
                    return Err(ModelError::data(
                        name,
                        format!("ResNet9 needs image sides divisible by 8, dataset has {h}x{w}"),
                    ));
                }
            }
            (InputKind::Tokens { vocab }, Features::Tokens { vocab_size, .. }) => {
                if *vocab_size > vocab {
                    return Err(ModelError::data(
                        name,
                        format!("token vocabulary has {vocab_size} ids, model embeds only {vocab}"),
                    ));
                }
            }
            (kind, Features::Tokens { .. }) => {
                return Err(ModelError::data(
                    name,
                    format!(
                        "dataset holds tokens, {} model expects {kind:?}",
                        self.config.name()
                    ),
                ));
            }
            (InputKind::Tokens { .. }, Features::Dense { shape, .. }) => {
                return Err(ModelError::data(
                    name,
                    format!("TextBag model expects tokens, dataset holds dense features {shape:?}"),
                ));
            }
        }
        let n_out = self.n_outputs();
        match data.targets() {
            Targets::NextToken { .. } => {
                return Err(ModelError::data(
                    name,
                    format!(
                        "next-token targets need a language model; {} is a classifier/regressor",
                        self.config.name()
                    ),
                ));
            }
            Targets::Classes { n_classes, .. } if *n_classes != n_out => {
                return Err(ModelError::data(
                    name,
                    format!("dataset has {n_classes} classes, model has {n_out} outputs"),
                ));
            }
            Targets::Regression { n_targets, .. } if *n_targets != n_out => {
                return Err(ModelError::data(
                    name,
                    format!(
                        "dataset has {n_targets} regression targets, model has {n_out} outputs"
                    ),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// Input tensors for rows `idx` of `data` on `device`, in the model's dtype:
    /// dense `[d]` (or any shape) → [`Input::Flat`] for flat models, `[c, h, w]`
    /// (or `[c·h·w]` for square images) → [`Input::Image`] for conv models,
    /// tokens → [`Input::Tokens`] padded to the longest row.
    pub fn input_batch(&self, data: &Dataset, idx: &[usize], device: &Device) -> Result<Input> {
        self.check_dataset(data)?;
        self.input_batch_unchecked(data, idx, device)
    }

    /// Targets for rows `idx` of `data` (class ids, or regression values in the
    /// model's dtype).
    pub fn target_batch(&self, data: &Dataset, idx: &[usize], device: &Device) -> Result<Target> {
        self.check_dataset(data)?;
        self.target_batch_unchecked(data, idx, device)
    }

    /// [`Model::input_batch`] without the dataset check (indices still checked).
    pub(crate) fn input_batch_unchecked(
        &self,
        data: &Dataset,
        idx: &[usize],
        device: &Device,
    ) -> Result<Input> {
        check_indices(data, idx)?;
        let image = match (self.config.input_kind(), data.features()) {
            (InputKind::Image { channels, .. }, Features::Dense { shape, .. }) => {
                Some(image_shape(shape, channels).expect("check_dataset verified the image shape"))
            }
            _ => None,
        };
        rows_to_input(data, idx, device, self.dtype(), image)
    }

    pub(crate) fn target_batch_unchecked(
        &self,
        data: &Dataset,
        idx: &[usize],
        device: &Device,
    ) -> Result<Target> {
        default_target_batch(data, idx, device, self.dtype())
    }
}

/// `[c, h, w]`, or `[c·h·w]` / `[h, w]` read as square images with `channels` channels.
fn image_shape(shape: &[usize], channels: usize) -> Option<(usize, usize, usize)> {
    match shape {
        [c, h, w] if *c == channels => Some((*c, *h, *w)),
        [h, w] if channels == 1 => Some((1, *h, *w)),
        [d] if d % channels == 0 => {
            let s = ((d / channels) as f64).sqrt().round() as usize;
            (s * s * channels == *d).then_some((channels, s, s))
        }
        _ => None,
    }
}

fn check_indices(data: &Dataset, idx: &[usize]) -> Result<()> {
    if idx.is_empty() {
        return Err(CoreError::Empty {
            what: format!("batch of {}", data.name()),
        }
        .into());
    }
    if let Some(&bad) = idx.iter().find(|&&i| i >= data.len()) {
        return Err(CoreError::IndexOutOfRange {
            what: format!("batch of {}", data.name()),
            index: bad,
            len: data.len(),
        }
        .into());
    }
    Ok(())
}
