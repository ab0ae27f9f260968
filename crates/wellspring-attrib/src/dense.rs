//! Row-major dense helpers for the host-side methods: `A Bᵀ` and dot
//! products (from `wellspring_core::linalg`, shared with the other crates),
//! distances, softmax.

pub use wellspring_core::linalg::{dot, gemm_abt};

/// `‖a − b‖₂`, accumulated in `f64` from the differences (no cancellation,
/// unlike `‖a‖² + ‖b‖² − 2a·b`, which matters for near-identical points).
pub fn l2_dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = x as f64 - y as f64;
            d * d
        })
        .sum::<f64>()
        .sqrt()
}

/// Row-wise softmax of `n × c` logits, in `f64`.
pub fn softmax_rows(logits: &[f32], c: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks_exact(c) {
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let e: Vec<f64> = row.iter().map(|&z| (z as f64 - m).exp()).collect();
        let s: f64 = e.iter().sum();
        out.extend(e.iter().map(|v| v / s));
    }
    out
}

/// Arg-max of each row (first maximum on ties).
pub fn argmax_rows(values: &[f32], c: usize) -> Vec<usize> {
    values
        .chunks_exact(c)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold(0, |best, (j, &v)| if v > row[best] { j } else { best })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_and_argmax() {
        let p = softmax_rows(&[0.0, 0.0, 1000.0, 0.0], 2);
        assert!((p[0] - 0.5).abs() < 1e-12 && (p[2] - 1.0).abs() < 1e-12);
        assert_eq!(argmax_rows(&[1.0, 3.0, 3.0, 2.0, 2.0, 1.0], 3), vec![1, 0]);
        assert_eq!(l2_dist(&[0.0, 3.0], &[4.0, 0.0]), 5.0);
    }
}
