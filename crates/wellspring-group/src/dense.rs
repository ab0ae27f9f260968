//! Row-major dense helpers: whitening and an `A Bᵀ` product through
//! `matrixmultiply`'s GEMM (no copies: strided operands).

/// How points are whitened before K-means (GGDA App. B.2 whitens every input).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Whitening {
    /// Cluster the points as given.
    None,
    /// Per-feature standardisation: subtract the mean, divide by the standard
    /// deviation (population); constant features become 0. This is a diagonal
    /// whitening, not a full PCA whitening (which would also decorrelate features).
    #[default]
    Standardize,
}

/// Returns a whitened copy of the row-major `n × d` matrix `x`.
pub(crate) fn whiten(x: &[f32], n: usize, d: usize, how: Whitening) -> Vec<f32> {
    match how {
        Whitening::None => x.to_vec(),
        Whitening::Standardize => {
            let mut mean = vec![0.0f64; d];
            for row in x.chunks_exact(d) {
                for (m, &v) in mean.iter_mut().zip(row) {
                    *m += v as f64;
                }
            }
            mean.iter_mut().for_each(|m| *m /= n as f64);
            let mut var = vec![0.0f64; d];
            for row in x.chunks_exact(d) {
                for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                    *s += (v as f64 - m).powi(2);
                }
            }
            let scale: Vec<f64> = var
                .iter()
                .map(|&s| {
                    let sd = (s / n as f64).sqrt();
                    if sd > 1e-12 { 1.0 / sd } else { 0.0 }
                })
                .collect();
            let mut out = Vec::with_capacity(x.len());
            for row in x.chunks_exact(d) {
                for ((&v, m), s) in row.iter().zip(&mean).zip(&scale) {
                    out.push(((v as f64 - m) * s) as f32);
                }
            }
            out
        }
    }
}

/// `out = A Bᵀ` for row-major `A` (`m × k`), `B` (`n × k`) and `out` (`m × n`).
pub(crate) fn gemm_abt(a: &[f64], m: usize, k: usize, b: &[f64], n: usize, out: &mut [f64]) {
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
    // SAFETY: the assert above bounds every index the strides reach:
    // A[i, t] = a[i k + t], Bᵀ[t, j] = b[j k + t], C[i, j] = out[i n + j].
    unsafe {
        matrixmultiply::dgemm(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_matches_loops() {
        for (m, k, n) in [(7, 9, 11), (6, 2, 6), (3, 8, 9), (9, 9, 1)] {
            let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.3).sin()).collect();
            let b: Vec<f64> = (0..n * k).map(|i| (i as f64 * 0.7).cos()).collect();
            let mut out = vec![0.0; m * n];
            gemm_abt(&a, m, k, &b, n, &mut out);
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k).map(|t| a[i * k + t] * b[j * k + t]).sum();
                    assert!((out[i * n + j] - want).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn standardize_centres_and_scales() {
        let x = [1.0f32, 5.0, 3.0, 5.0, 5.0, 5.0];
        let w = whiten(&x, 3, 2, Whitening::Standardize);
        let col0: Vec<f32> = w.iter().step_by(2).copied().collect();
        assert!((col0.iter().sum::<f32>()).abs() < 1e-6);
        let var: f32 = col0.iter().map(|v| v * v).sum::<f32>() / 3.0;
        assert!((var - 1.0).abs() < 1e-5);
        assert!(w.iter().skip(1).step_by(2).all(|&v| v == 0.0));
    }
}
