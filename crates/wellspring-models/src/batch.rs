//! Turning rows of a host [`Dataset`] into device tensors, with checked errors
//! when the dataset does not fit the model.

use burn::tensor::{Device, Int, Tensor, TensorData};
use wellspring_core::{CoreError, Dataset, Features, Targets};

use crate::config::InputKind;
use crate::error::{ModelError, Result};
use crate::model::Model;
use crate::net::Input;

/// A batch of targets.
#[derive(Clone, Debug)]
pub enum Target {
    /// Class ids `[batch]`.
    Classes(Tensor<1, Int>),
    /// Regression targets `[batch, n_targets]`, in the model's dtype.
    Values(Tensor<2>),
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
        let dtype = self.dtype();
        let b = idx.len();
        match data.features() {
            Features::Dense { values, shape } => {
                let d: usize = shape.iter().product();
                let mut v = Vec::with_capacity(b * d);
                for &i in idx {
                    v.extend_from_slice(&values[i * d..(i + 1) * d]);
                }
                match self.config.input_kind() {
                    InputKind::Image { channels, .. } => {
                        let (c, h, w) = image_shape(shape, channels)
                            .expect("check_dataset verified the image shape");
                        Ok(Input::Image(Tensor::from_data(
                            TensorData::new(v, [b, c, h, w]),
                            (device, dtype),
                        )))
                    }
                    _ => Ok(Input::Flat(Tensor::from_data(
                        TensorData::new(v, [b, d]),
                        (device, dtype),
                    ))),
                }
            }
            Features::Tokens { .. } => {
                let feats = data.features();
                let len = idx
                    .iter()
                    .map(|&i| feats.token_row(i).len())
                    .max()
                    .unwrap_or(0)
                    .max(1);
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

    pub(crate) fn target_batch_unchecked(
        &self,
        data: &Dataset,
        idx: &[usize],
        device: &Device,
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
                    (device, self.dtype()),
                )))
            }
        }
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
