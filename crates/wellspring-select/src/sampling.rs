//! Exact random sampling without replacement, uniform and weighted, and the
//! prediction entropy RandE weights by.

use rand::RngExt;
use wellspring_core::rng;

use crate::error::{Result, SelectError};

/// Shannon entropy `H(p) = −Σ_c p_c ln p_c` (nats, `0 ln 0 = 0`) of each row of
/// a row-major `n × C` probability matrix (SVE Algorithm 2, line 3).
pub fn prediction_entropy(probs: &[f32], n_classes: usize) -> Vec<f64> {
    probs
        .chunks_exact(n_classes.max(1))
        .map(|r| {
            -r.iter()
                .filter(|&&p| p > 0.0)
                .map(|&p| {
                    let p = p as f64;
                    p * p.ln()
                })
                .sum::<f64>()
        })
        .map(|h: f64| h.max(0.0))
        .collect()
}

/// `k` distinct indices of `0..n`, uniformly at random (every `k`-subset equally
/// likely), in increasing order.
pub fn uniform_without_replacement(n: usize, k: usize, seed: u64) -> Result<Vec<usize>> {
    check_k(n, k)?;
    let mut r = rng(seed);
    let mut v: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = r.random_range(i..n);
        v.swap(i, j);
    }
    v.truncate(k);
    v.sort_unstable();
    Ok(v)
}

/// `k` distinct indices drawn without replacement with probability
/// proportional to `weights` (successive sampling, as `numpy.random.choice(...,
/// replace=False, p=w)`), by Efraimidis & Spirakis (2006) keys
/// `ln(u_i) / w_i`, `u_i ~ U(0, 1]`: the `k` largest keys are an exact draw.
/// O(n) time (one uniform per point, then a selection).
///
/// Points of weight 0 are never drawn while positive-weight points remain; if
/// fewer than `k` weights are positive, the rest are drawn uniformly from the
/// zero-weight points. Returns the indices in draw order and how many of them
/// came from that uniform fill.
pub fn weighted_without_replacement(
    weights: &[f64],
    k: usize,
    seed: u64,
) -> Result<(Vec<usize>, usize)> {
    let n = weights.len();
    check_k(n, k)?;
    if let Some(i) = weights.iter().position(|w| !w.is_finite() || *w < 0.0) {
        return Err(SelectError::OutOfRange {
            what: "sampling weights".into(),
            row: i,
            col: 0,
            value: weights[i],
            reason: "must be finite and non-negative".into(),
        });
    }
    let mut r = rng(seed);
    let mut keyed: Vec<(f64, usize)> = Vec::with_capacity(n);
    let mut zero: Vec<usize> = Vec::new();
    for (i, &w) in weights.iter().enumerate() {
        // Draw for every point so the stream does not depend on which weights are zero.
        let u: f64 = 1.0 - r.random::<f64>();
        if w > 0.0 {
            keyed.push((u.ln() / w, i));
        } else {
            zero.push(i);
        }
    }
    let by_key_desc = |a: &(f64, usize), b: &(f64, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    let take = k.min(keyed.len());
    if take > 0 && take < keyed.len() {
        keyed.select_nth_unstable_by(take - 1, by_key_desc);
    }
    keyed.truncate(take);
    keyed.sort_unstable_by(by_key_desc);
    let mut out: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
    let fill = k - take;
    if fill > 0 {
        for i in 0..fill {
            let j = r.random_range(i..zero.len());
            zero.swap(i, j);
        }
        out.extend_from_slice(&zero[..fill]);
    }
    Ok((out, fill))
}

fn check_k(n: usize, k: usize) -> Result<()> {
    if k == 0 {
        return Err(SelectError::ZeroBudget);
    }
    if k > n {
        return Err(SelectError::BudgetTooLarge { budget: k, n });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_values() {
        let h = prediction_entropy(&[0.5, 0.5, 1.0, 0.0, 0.25, 0.75], 2);
        assert!((h[0] - 2f64.ln()).abs() < 1e-12);
        assert_eq!(h[1], 0.0);
        let want = -(0.25f64 * 0.25f64.ln() + 0.75 * 0.75f64.ln());
        assert!((h[2] - want).abs() < 1e-7);
    }

    #[test]
    fn weighted_k1_frequencies_follow_weights() {
        let w = [1.0, 2.0, 3.0, 4.0];
        let mut counts = [0usize; 4];
        let reps = 20_000;
        for s in 0..reps {
            let (d, fill) = weighted_without_replacement(&w, 1, s).unwrap();
            assert_eq!(fill, 0);
            counts[d[0]] += 1;
        }
        for (i, &c) in counts.iter().enumerate() {
            let p = w[i] / 10.0;
            let sd = (reps as f64 * p * (1.0 - p)).sqrt();
            assert!((c as f64 - reps as f64 * p).abs() < 5.0 * sd, "{i}: {c}");
        }
    }

    #[test]
    fn zero_weights_fill_last() {
        let w = [0.0, 1.0, 0.0, 2.0, 0.0];
        let (d, fill) = weighted_without_replacement(&w, 4, 3).unwrap();
        assert_eq!(fill, 2);
        let mut first: Vec<usize> = d[..2].to_vec();
        first.sort();
        assert_eq!(first, vec![1, 3]);
        let mut all = d.clone();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 4);
        assert!(weighted_without_replacement(&[1.0, -1.0], 1, 0).is_err());
        assert!(weighted_without_replacement(&[1.0], 2, 0).is_err());
        assert_eq!(
            uniform_without_replacement(5, 5, 1).unwrap(),
            vec![0, 1, 2, 3, 4]
        );
    }
}
