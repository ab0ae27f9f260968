//! A new attribution method in one impl, outside the library crates, then
//! scored with wellspring-eval metrics next to a built-in method: a new
//! method gets every metric for free.
//!
//!     cargo run -p wellspring --example custom_attributor
//!
//! The method: cosine similarity of the raw inputs, plus a bonus for training
//! points labelled with the class the model predicts for the test point
//! ("looks alike, and teaches the predicted class").
//!
//! Data: 600 MNIST training digits and 40 test digits, average-pooled to 7×7
//! so that the linear retrainer behind the LDS fits in milliseconds.

use wellspring_attrib::methods::{self, MethodOptions};
use wellspring_attrib::{Attributor, DataSignature, FittedAttributor, ModelSource, Result};
use wellspring_core::{Dataset, Features, ScoreMatrix};
use wellspring_eval::{
    EvalContext, ExemplarCount, IdenticalClass, Lds, LinearParams, LinearRetrainer, Metric,
};
use wellspring_models::burn_types::Device;
use wellspring_models::{
    AnyModel, Model, ModelConfig, Optimizer, TrainConfig, predict_logits, train,
};

/// Parameters of the new method: the weight of the predicted-class bonus.
#[derive(Clone, Debug)]
struct CosineBonus {
    bonus: f32,
}

/// The fitted method: unit-normalised training inputs and their labels.
struct FittedCosineBonus {
    bonus: f32,
    unit: Vec<f32>,
    dim: usize,
    labels: Vec<usize>,
    model: AnyModel,
    device: Device,
    signature: DataSignature,
}

fn unit_rows(values: &[f32], dim: usize) -> Vec<f32> {
    values
        .chunks_exact(dim)
        .flat_map(|r| {
            let n = r.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            r.iter().map(move |v| v / n)
        })
        .collect()
}

impl Attributor for CosineBonus {
    type Fitted = FittedCosineBonus;

    fn fit(&self, source: &ModelSource, train: &Dataset) -> Result<FittedCosineBonus> {
        if !(self.bonus.is_finite() && self.bonus >= 0.0) {
            return Err(wellspring_attrib::AttribError::invalid_param(
                "bonus",
                self.bonus,
                "must be finite and >= 0",
            ));
        }
        let Features::Dense { values, shape } = train.features() else {
            return Err(wellspring_attrib::AttribError::unsupported(
                "cosine-bonus",
                "needs dense inputs",
            ));
        };
        let dim = shape.iter().product();
        Ok(FittedCosineBonus {
            bonus: self.bonus,
            unit: unit_rows(values, dim),
            dim,
            labels: train.labels_checked()?.to_vec(),
            model: source.model.clone(),
            device: source.device.clone(),
            signature: DataSignature::of(train),
        })
    }
}

impl FittedAttributor for FittedCosineBonus {
    fn name(&self) -> &str {
        "cosine-bonus"
    }

    fn n_train(&self) -> usize {
        self.labels.len()
    }

    fn attribute(&self, test: &Dataset) -> Result<ScoreMatrix> {
        self.signature.check(test)?;
        let logits = predict_logits(&self.model, test, &self.device)?;
        let c = logits.len() / test.len();
        let Features::Dense { values, .. } = test.features() else {
            unreachable!("checked dense")
        };
        let q = unit_rows(values, self.dim);
        let mut s = ScoreMatrix::zeros(self.n_train(), test.len());
        for j in 0..test.len() {
            let z = &logits[j * c..(j + 1) * c];
            let pred = (0..c).fold(0, |b, k| if z[k] > z[b] { k } else { b });
            let qj = &q[j * self.dim..(j + 1) * self.dim];
            for i in 0..self.n_train() {
                let cos: f32 = self.unit[i * self.dim..(i + 1) * self.dim]
                    .iter()
                    .zip(qj)
                    .map(|(a, b)| a * b)
                    .sum();
                s.set(
                    i,
                    j,
                    cos + if self.labels[i] == pred {
                        self.bonus
                    } else {
                        0.0
                    },
                );
            }
        }
        s.check_finite()?;
        Ok(s)
    }

    fn self_attribute(&self) -> Result<Vec<f32>> {
        Ok(vec![1.0 + self.bonus; self.n_train()])
    }
}

/// MNIST rows `range` of a split, average-pooled 4×4 → 7×7 = 49 features.
fn pooled(ds: &Dataset, range: std::ops::Range<usize>) -> anyhow::Result<Dataset> {
    let idx: Vec<usize> = range.collect();
    let part = ds.select(&idx)?;
    let mut values = Vec::with_capacity(idx.len() * 49);
    for i in 0..part.len() {
        let px = part.features().dense_row(i);
        for r in 0..7 {
            for c in 0..7 {
                let s: f32 = (0..4)
                    .flat_map(|dr| (0..4).map(move |dc| (dr, dc)))
                    .map(|(dr, dc)| px[(4 * r + dr) * 28 + 4 * c + dc])
                    .sum();
                values.push(s / 16.0);
            }
        }
    }
    Ok(part.with_features(Features::Dense {
        values,
        shape: vec![49],
    })?)
}

fn main() -> anyhow::Result<()> {
    let split = wellspring_data::mnist(&wellspring_data::DataDir::resolve(None)?)?;
    let train_set = pooled(&split.train, 0..600)?;
    let test = pooled(&split.test, 0..40)?;
    let device = Device::flex();

    let model = Model::new(
        ModelConfig::LogReg {
            d_in: 49,
            n_out: 10,
        },
        0,
        &device,
    )?;
    let cfg = TrainConfig::params()
        .epochs(20)
        .batch_size(32)
        .optimizer(Optimizer::sgd_momentum(0.9))
        .lr(0.05)
        .check()?;
    let model = train(model, &train_set, None, &cfg, &device, None)?.model;
    let source = ModelSource::new(model, device);

    // The new method, and a built-in one from the registry, behind the same trait.
    let ours = CosineBonus { bonus: 0.5 }.fit(&source, &train_set)?;
    let pae = methods::by_name("pae", &MethodOptions::new())?.fit_dyn(&source, &train_set)?;
    let candidates: Vec<&dyn FittedAttributor> = vec![&ours, pae.as_ref()];

    // Metrics from wellspring-eval, computed once per method.
    let retrainer = LinearRetrainer::new(&train_set, &test, LinearParams::new().l2(1e-2))?;
    let lds = Lds::params().m(48).alpha(0.5).seed(0);
    let truth = lds.ground_truth(&retrainer)?;
    let ctx = EvalContext::new().with_retrainer(&retrainer);
    let (tl, yl) = (test.labels_checked()?, train_set.labels_checked()?);
    println!(
        "{:<14} {:>8} {:>10} {:>12}",
        "method", "LDS", "same-class", "exemplars"
    );
    for m in candidates {
        let scores = m.attribute(&test)?;
        let lds_value = truth.score(&scores, Default::default())?.summary.mean;
        let same = IdenticalClass.run(&scores, yl, tl, None)?.class_rate;
        let ex = ExemplarCount::new(5, 3)
            .evaluate(&scores, &ctx)?
            .exemplars
            .len();
        println!(
            "{:<14} {:>8.3} {:>10.2} {:>12}",
            m.name(),
            lds_value,
            same,
            ex
        );
    }
    let _ = lds;
    Ok(())
}
