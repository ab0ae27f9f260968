//! [`TestOutputs`] from a model's logits, computed on the host in `f64`.

use wellspring_core::{Dataset, Targets};
use wellspring_models::Loss;

use crate::error::{EvalError, Result};
use crate::retrain::TestOutputs;

/// Per-test-point outputs from row-major logits (`n × n_outputs`) of `test`.
///
/// Classification: the margin `z_y − log Σ_{c≠y} e^{z_c}` (TRAK, Park et al.
/// 2023, eq. 12), the correct-class margin `z_y − max_{c≠y} z_c`, cross-entropy, correctness, the arg-max and the
/// highest-scoring incorrect class (first maximum on ties). Regression: the
/// training loss of `loss` (`mean_j (z_j − y_j)²` for [`Loss::Mse`]), both
/// margins `= −loss`, and the predictions.
pub fn outputs_from_logits(logits: &[f32], test: &Dataset, loss: Loss) -> Result<TestOutputs> {
    let n = test.len();
    if n == 0 {
        return Err(EvalError::EmptyTestSet {
            what: "test outputs".into(),
        });
    }
    if !logits.len().is_multiple_of(n) || logits.is_empty() {
        return Err(EvalError::length(
            format!("logits of {} (a whole number of rows)", test.name()),
            n,
            logits.len(),
        ));
    }
    let c = logits.len() / n;
    match test.targets() {
        Targets::Classes { labels, n_classes } => {
            if c != *n_classes || c < 2 {
                return Err(EvalError::length(
                    format!("logits per row of {}", test.name()),
                    *n_classes,
                    c,
                ));
            }
            let mut out = TestOutputs {
                margin: Vec::with_capacity(n),
                class_margin: Vec::with_capacity(n),
                loss: Vec::with_capacity(n),
                correct: Some(Vec::with_capacity(n)),
                predicted: Some(Vec::with_capacity(n)),
                runner_up: Some(Vec::with_capacity(n)),
                prediction: None,
            };
            for (row, &y) in logits.chunks(c).zip(labels) {
                let z: Vec<f64> = row.iter().map(|&v| v as f64).collect();
                let lse = logsumexp(z.iter().copied());
                let lse_other = logsumexp(
                    z.iter()
                        .enumerate()
                        .filter(|&(k, _)| k != y)
                        .map(|(_, &v)| v),
                );
                out.margin.push((z[y] - lse_other) as f32);
                out.loss.push((lse - z[y]) as f32);
                let arg = argmax(&z, None);
                let runner_up = argmax(&z, Some(y));
                out.class_margin.push((z[y] - z[runner_up]) as f32);
                out.correct.as_mut().expect("set above").push(arg == y);
                out.predicted.as_mut().expect("set above").push(arg);
                out.runner_up.as_mut().expect("set above").push(runner_up);
            }
            Ok(out)
        }
        Targets::Regression { values, n_targets } => {
            if c != *n_targets {
                return Err(EvalError::length(
                    format!("outputs per row of {}", test.name()),
                    *n_targets,
                    c,
                ));
            }
            let losses: Vec<f32> = logits
                .chunks(c)
                .zip(values.chunks(c))
                .map(|(z, y)| {
                    let se: f64 = z
                        .iter()
                        .zip(y)
                        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                        .sum();
                    match loss {
                        Loss::Mse => (se / c as f64) as f32,
                        Loss::CrossEntropy => (0.5 * se) as f32,
                    }
                })
                .collect();
            Ok(TestOutputs {
                margin: losses.iter().map(|l| -l).collect(),
                class_margin: losses.iter().map(|l| -l).collect(),
                loss: losses,
                correct: None,
                predicted: None,
                runner_up: None,
                prediction: Some(logits.to_vec()),
            })
        }
        Targets::NextToken { .. } => Err(EvalError::invalid_param(
            format!("test set {}", test.name()),
            "next-token targets",
            "test outputs from [n × classes] logits need class or regression targets; \
             language models report per-example losses instead",
        )),
    }
}

fn logsumexp(v: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = v.clone().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + v.map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// Arg-max (first maximum), skipping class `skip`.
fn argmax(z: &[f64], skip: Option<usize>) -> usize {
    let mut best: Option<usize> = None;
    for (k, &v) in z.iter().enumerate() {
        if Some(k) == skip {
            continue;
        }
        if best.is_none_or(|b| v > z[b]) {
            best = Some(k);
        }
    }
    best.expect("at least two classes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use wellspring_core::Features;

    #[test]
    fn classification_outputs_match_hand_values() {
        let test = Dataset::new(
            "t",
            Features::Dense {
                values: vec![0.0; 2],
                shape: vec![1],
            },
            Targets::Classes {
                labels: vec![0, 2],
                n_classes: 3,
            },
        )
        .unwrap();
        let logits = [2.0, 1.0, 0.0, 0.0, 3.0, 1.0];
        let o = outputs_from_logits(&logits, &test, Loss::CrossEntropy).unwrap();
        let m0 = 2.0 - (1f64.exp() + 1.0).ln();
        assert!((o.margin[0] as f64 - m0).abs() < 1e-6);
        let l1 = (1f64 + 3f64.exp() + 1f64.exp()).ln() - 1.0;
        assert!((o.loss[1] as f64 - l1).abs() < 1e-6);
        assert_eq!(o.correct, Some(vec![true, false]));
        assert_eq!(o.predicted, Some(vec![0, 1]));
        assert_eq!(o.runner_up, Some(vec![1, 1]));
        // correct logit minus the highest incorrect one: 2 − 1, 1 − 3
        assert_eq!(o.class_margin, vec![1.0, -2.0]);
        assert!(outputs_from_logits(&logits[..5], &test, Loss::CrossEntropy).is_err());
    }

    #[test]
    fn regression_outputs_use_the_training_loss() {
        let test = Dataset::new(
            "r",
            Features::Dense {
                values: vec![0.0; 2],
                shape: vec![1],
            },
            Targets::Regression {
                values: vec![1.0, -1.0],
                n_targets: 1,
            },
        )
        .unwrap();
        let o = outputs_from_logits(&[3.0, -1.0], &test, Loss::Mse).unwrap();
        assert_eq!(o.loss, vec![4.0, 0.0]);
        assert_eq!(o.margin, vec![-4.0, -0.0]);
        assert_eq!(o.class_margin, o.margin);
        assert_eq!(o.prediction, Some(vec![3.0, -1.0]));
    }
}
