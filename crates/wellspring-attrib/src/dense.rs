//! Row-major dense helpers for the host-side methods: `A Bᵀ` through
//! `matrixmultiply`'s GEMM (strided, no copies), dot products, softmax.

/// `out = A Bᵀ` for row-major `A` (`m × k`), `B` (`n × k`), `out` (`m × n`).
///
/// Each entry is computed by the same packed micro-kernel whatever `m` and
/// `n` are (edge tiles go through a scratch tile), so a score does not depend
/// on how test points were blocked or chunked.
pub fn gemm_abt(a: &[f32], m: usize, k: usize, b: &[f32], n: usize, out: &mut [f32]) {
    assert!(
        a.len() >= m * k && b.len() >= n * k && out.len() >= m * n,
        "gemm_abt: buffers too short"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        out[..m * n].fill(0.0);
        return;
    }
    // SAFETY: the asserts above bound every index the strides reach:
    // A[i, t] = a[i k + t], Bᵀ[t, j] = b[j k + t], C[i, j] = out[i n + j].
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            1,
            k as isize,
            0.0,
            out.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// `Σ a_i b_i` with eight independent accumulators combined in a fixed order
/// (deterministic, auto-vectorised).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const L: usize = 8;
    let mut acc = [0.0f32; L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for t in 0..L {
            acc[t] += x[t] * y[t];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

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
    fn gemm_matches_loops() {
        for (m, k, n) in [(7, 9, 11), (6, 2, 6), (3, 8, 9), (9, 9, 1), (40, 33, 17)] {
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.3).sin()).collect();
            let b: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.7).cos()).collect();
            let mut out = vec![0.0; m * n];
            gemm_abt(&a, m, k, &b, n, &mut out);
            for i in 0..m {
                for j in 0..n {
                    let want: f32 = (0..k).map(|t| a[i * k + t] * b[j * k + t]).sum();
                    assert!((out[i * n + j] - want).abs() < 1e-4);
                }
            }
        }
    }

    #[test]
    fn softmax_and_argmax() {
        let p = softmax_rows(&[0.0, 0.0, 1000.0, 0.0], 2);
        assert!((p[0] - 0.5).abs() < 1e-12 && (p[2] - 1.0).abs() < 1e-12);
        assert_eq!(argmax_rows(&[1.0, 3.0, 3.0, 2.0, 2.0, 1.0], 3), vec![1, 0]);
        assert_eq!(l2_dist(&[0.0, 3.0], &[4.0, 0.0]), 5.0);
    }
}
