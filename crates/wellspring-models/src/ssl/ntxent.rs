//! The NT-Xent (normalised temperature-scaled cross-entropy) loss of SimCLR,
//! written with burn tensor ops so autodiff differentiates it.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};

use crate::error::{ModelError, Result};

/// NT-Xent loss (SimCLR, Chen et al. 2020, eq. 1) of two views `z1`, `z2`
/// (`[B, p]` projections; row `k` of each is the same image):
///
/// `ℓ(i, j) = −log( exp(sim(z_i, z_j)/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ) )`,
/// `L = (1/2B) Σ_k [ℓ(k, k+B) + ℓ(k+B, k)]` over the `2B` stacked rows, with
/// `sim` the cosine similarity. Returns a one-element tensor on `z1`'s
/// device. Errors if the shapes differ, `B < 2`, or `τ ≤ 0`.
pub fn nt_xent(z1: Tensor<2>, z2: Tensor<2>, temperature: f64) -> Result<Tensor<1>> {
    let [b, p] = z1.dims();
    if z2.dims() != [b, p] {
        return Err(ModelError::config(
            "NT-Xent views",
            format!("{:?} and {:?}", z1.dims(), z2.dims()),
            "both views must have the same shape [batch, dim]",
        ));
    }
    if b < 2 {
        return Err(ModelError::config(
            "NT-Xent batch size",
            b,
            "needs at least 2 images (each needs a negative)",
        ));
    }
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(ModelError::config(
            "temperature",
            temperature,
            "must be finite and > 0",
        ));
    }
    Ok(nt_xent_stacked(
        Tensor::cat(vec![z1, z2], 0),
        b,
        temperature,
    ))
}

/// NT-Xent of stacked projections `[z₁; z₂]` (`2B × p`, `B ≥ 2`, `τ > 0`):
/// row `k`'s positive is row `(k + B) mod 2B`.
pub(crate) fn nt_xent_stacked(z: Tensor<2>, b: usize, temperature: f64) -> Tensor<1> {
    let device = z.device();
    let dtype = z.dtype();
    let n = 2 * b;
    debug_assert_eq!(z.dims()[0], n);
    let norm = z
        .clone()
        .powf_scalar(2.0)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12);
    let zn = z / norm;
    let sim = zn.clone().matmul(zn.transpose()).div_scalar(temperature);
    // exclude k = i from the denominator: a large negative on the diagonal
    let mut diag = vec![0.0f32; n * n];
    (0..n).for_each(|k| diag[k * n + k] = -1e9);
    let mask = Tensor::<2>::from_data(TensorData::new(diag, [n, n]), (&device, dtype));
    let logp = log_softmax(sim + mask, 1);
    let pos: Vec<i64> = (0..n).map(|k| ((k + b) % n) as i64).collect();
    let pos = Tensor::<1, Int>::from_data(TensorData::new(pos, [n]), &device);
    logp.gather(1, pos.reshape([n, 1])).mean().neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    /// The loss written out in f64 on the host.
    fn by_hand(z1: &[f64], z2: &[f64], b: usize, p: usize, tau: f64) -> f64 {
        let rows: Vec<Vec<f64>> = (0..2 * b)
            .map(|k| {
                let r = if k < b {
                    &z1[k * p..(k + 1) * p]
                } else {
                    &z2[(k - b) * p..(k - b + 1) * p]
                };
                let nrm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
                r.iter().map(|v| v / nrm).collect()
            })
            .collect();
        let sim = |i: usize, j: usize| -> f64 {
            rows[i]
                .iter()
                .zip(&rows[j])
                .map(|(a, c)| a * c)
                .sum::<f64>()
                / tau
        };
        let mut total = 0.0;
        for i in 0..2 * b {
            let j = (i + b) % (2 * b);
            let denom: f64 = (0..2 * b)
                .filter(|&k| k != i)
                .map(|k| sim(i, k).exp())
                .sum();
            total += -(sim(i, j).exp() / denom).ln();
        }
        total / (2 * b) as f64
    }

    fn tensor(v: &[f64], b: usize, p: usize, device: &Device) -> Tensor<2> {
        let f: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        Tensor::from_data(TensorData::new(f, [b, p]), device)
    }

    #[test]
    fn matches_a_hand_computation() {
        let device = Device::flex();
        let (b, p) = (3, 2);
        let z1 = [1.0, 0.0, 0.0, 2.0, -1.0, 1.0];
        let z2 = [0.8, 0.3, 0.1, 1.0, -2.0, 0.5];
        for tau in [0.5, 0.1, 1.0] {
            let got: f32 = nt_xent(tensor(&z1, b, p, &device), tensor(&z2, b, p, &device), tau)
                .unwrap()
                .into_scalar();
            let want = by_hand(&z1, &z2, b, p, tau);
            assert!(
                (got as f64 - want).abs() < 1e-5 * want.max(1.0),
                "τ = {tau}: {got} vs {want}"
            );
        }
        // two identical, orthogonal pairs at τ = 1: ℓ = −log(e / (e + 2))
        let z = [1.0, 0.0, 0.0, 1.0];
        let got: f32 = nt_xent(tensor(&z, 2, 2, &device), tensor(&z, 2, 2, &device), 1.0)
            .unwrap()
            .into_scalar();
        let e = 1f64.exp();
        assert!((got as f64 - (-(e / (e + 2.0)).ln())).abs() < 1e-6);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let device = Device::flex();
        let a = tensor(&[1.0, 2.0], 1, 2, &device);
        assert!(
            nt_xent(a.clone(), a, 0.5)
                .unwrap_err()
                .to_string()
                .contains("at least 2")
        );
        let a = tensor(&[1.0, 2.0, 3.0, 4.0], 2, 2, &device);
        let c = tensor(&[1.0, 2.0, 3.0, 4.0], 1, 4, &device);
        assert!(nt_xent(a.clone(), c, 0.5).is_err());
        assert!(nt_xent(a.clone(), a, 0.0).is_err());
    }
}
