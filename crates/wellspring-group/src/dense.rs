//! Row-major dense helpers: whitening, and the workspace's `A Bᵀ` product
//! (`wellspring_core::linalg::gemm_abt`).

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

pub(crate) use wellspring_core::linalg::gemm_abt;

#[cfg(test)]
mod tests {
    use super::*;

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
