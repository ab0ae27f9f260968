//! Small vectorisable loops (eight independent `f32` accumulators, combined
//! in a fixed order, so results are deterministic and auto-vectorised).

const L: usize = 8;

pub(crate) use wellspring_core::linalg::dot;

/// `Σ_i max(0, s_i − c_i)` as `f64`. Each term is non-increasing in `c_i` and
/// the summation order is fixed, so the result never increases when any `c_i`
/// grows (IEEE rounding is monotone): lazy greedy's stale gains stay upper bounds.
pub(crate) fn sum_pos_diff(s: &[f32], c: &[f32]) -> f64 {
    let mut acc = [0.0f32; L];
    let (cs, cc) = (s.chunks_exact(L), c.chunks_exact(L));
    let (rs, rc) = (cs.remainder(), cc.remainder());
    for (x, y) in cs.zip(cc) {
        for k in 0..L {
            let d = x[k] - y[k];
            acc[k] += if d > 0.0 { d } else { 0.0 };
        }
    }
    let mut tail = 0.0f64;
    for (x, y) in rs.iter().zip(rc) {
        let d = x - y;
        tail += if d > 0.0 { d as f64 } else { 0.0 };
    }
    acc.iter().map(|&v| v as f64).sum::<f64>() + tail
}

/// `max(0, max_i v_i)`.
pub(crate) fn max_nonneg(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; L];
    let ch = v.chunks_exact(L);
    let rest = ch.remainder();
    for x in ch {
        for k in 0..L {
            acc[k] = if x[k] > acc[k] { x[k] } else { acc[k] };
        }
    }
    let mut m = acc.iter().fold(0.0f32, |a, &b| if b > a { b } else { a });
    for &x in rest {
        if x > m {
            m = x;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_plain_loops() {
        let a: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let d: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - d).abs() < 1e-5);
        let p: f64 = a.iter().zip(&b).map(|(x, y)| (x - y).max(0.0) as f64).sum();
        assert!((sum_pos_diff(&a, &b) - p).abs() < 1e-5);
        assert_eq!(max_nonneg(&a), a.iter().cloned().fold(0.0, f32::max));
        assert_eq!(max_nonneg(&[-1.0, -2.0]), 0.0);
    }
}
