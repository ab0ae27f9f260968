//! Small dense kernels shared by the host-side crates (attrib, group,
//! select): `A Bᵀ` through `matrixmultiply`'s packed GEMM, and dot products
//! with a fixed summation order. One implementation of each, so every crate
//! computes the same number the same way.

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A float type with a `matrixmultiply` GEMM kernel (`f32`: `sgemm`,
/// `f64`: `dgemm`).
pub trait GemmScalar: Copy + sealed::Sealed {
    /// Additive identity.
    const ZERO: Self;

    /// `C = A B` (alpha 1, beta 0) on strided operands.
    ///
    /// # Safety
    /// Every index `i·rs + j·cs` the strides reach for `A` (`m × k`), `B`
    /// (`k × n`) and `C` (`m × n`) must lie inside the pointed-to buffers.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

macro_rules! gemm_scalar {
    ($t:ty, $kernel:path) => {
        impl GemmScalar for $t {
            const ZERO: Self = 0.0;

            unsafe fn gemm(
                m: usize,
                k: usize,
                n: usize,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                c: *mut Self,
                rsc: isize,
                csc: isize,
            ) {
                // SAFETY: forwarded from the caller's contract.
                unsafe { $kernel(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 0.0, c, rsc, csc) }
            }
        }
    };
}

gemm_scalar!(f32, matrixmultiply::sgemm);
gemm_scalar!(f64, matrixmultiply::dgemm);

/// Multiply-adds below which [`gemm_abt`] stays on the calling thread.
const PAR_MIN_WORK: usize = 1 << 24;

/// `out = A Bᵀ` for row-major `A` (`m × k`), `B` (`n × k`) and `out` (`m × n`).
///
/// Each entry is computed by the same packed micro-kernel whatever `m` and
/// `n` are (edge tiles go through a scratch tile), so a score does not depend
/// on how rows were blocked or chunked. Large products are split into blocks
/// of `A`'s rows across rayon's threads (`matrixmultiply` itself runs on one
/// thread), which by the same property gives the same bits. Panics if a
/// buffer is too short.
pub fn gemm_abt<T: GemmScalar + Send + Sync>(
    a: &[T],
    m: usize,
    k: usize,
    b: &[T],
    n: usize,
    out: &mut [T],
) {
    use rayon::prelude::*;
    assert!(
        a.len() >= m * k && b.len() >= n * k && out.len() >= m * n,
        "gemm_abt: buffers too short"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        out[..m * n].fill(T::ZERO);
        return;
    }
    let threads = rayon::current_num_threads();
    if threads > 1 && m > 1 && m.saturating_mul(n).saturating_mul(k) >= PAR_MIN_WORK {
        let rows = m.div_ceil(threads);
        out[..m * n]
            .par_chunks_mut(rows * n)
            .zip(a[..m * k].par_chunks(rows * k))
            .for_each(|(o, ab)| gemm_abt_serial(ab, o.len() / n, k, b, n, o));
        return;
    }
    gemm_abt_serial(a, m, k, b, n, out);
}

/// [`gemm_abt`] on the calling thread (`m, n, k ≥ 1`, buffers checked).
fn gemm_abt_serial<T: GemmScalar>(a: &[T], m: usize, k: usize, b: &[T], n: usize, out: &mut [T]) {
    // SAFETY: the assert above bounds every index the strides reach:
    // A[i, t] = a[i k + t], Bᵀ[t, j] = b[j k + t], C[i, j] = out[i n + j].
    unsafe {
        T::gemm(
            m,
            k,
            n,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            1,
            k as isize,
            out.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// `Σ a_i b_i` in `f32` with eight independent accumulators combined in a
/// fixed order (deterministic and auto-vectorised). Extra entries of the
/// longer slice are ignored.
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

/// `Σ a_i b_i` in `f64`, summed left to right (the L-BFGS and linear-model
/// inner product).
pub fn dot64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_matches_loops_in_both_precisions() {
        for (m, k, n) in [(7, 9, 11), (6, 2, 6), (3, 8, 9), (9, 9, 1), (40, 33, 17)] {
            let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.3).sin()).collect();
            let b: Vec<f64> = (0..n * k).map(|i| (i as f64 * 0.7).cos()).collect();
            let mut out = vec![0.0; m * n];
            gemm_abt(&a, m, k, &b, n, &mut out);
            let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
            let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
            let mut out32 = vec![0.0f32; m * n];
            gemm_abt(&a32, m, k, &b32, n, &mut out32);
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k).map(|t| a[i * k + t] * b[j * k + t]).sum();
                    assert!((out[i * n + j] - want).abs() < 1e-12);
                    assert!((out32[i * n + j] as f64 - want).abs() < 1e-4);
                }
            }
        }
        let mut out = vec![7.0f32; 4];
        gemm_abt(&[], 2, 0, &[], 2, &mut out);
        assert_eq!(out, vec![0.0; 4]);
    }

    /// Row blocks on rayon's threads give the bits of one serial call.
    #[test]
    fn parallel_blocks_equal_the_serial_product() {
        let (m, k, n) = (301, 257, 263);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.11).cos()).collect();
        assert!(m * n * k >= PAR_MIN_WORK);
        let mut par = vec![0.0f32; m * n];
        gemm_abt(&a, m, k, &b, n, &mut par);
        let mut serial = vec![0.0f32; m * n];
        gemm_abt_serial(&a, m, k, &b, n, &mut serial);
        assert_eq!(par, serial);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let mut three = vec![0.0f32; m * n];
        pool.install(|| gemm_abt(&a, m, k, &b, n, &mut three));
        assert_eq!(three, serial);
    }

    #[test]
    fn dots_match_the_plain_sum() {
        let a: Vec<f32> = (0..21).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..21).map(|i| 1.0 - i as f32 * 0.25).collect();
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - want).abs() < 1e-3);
        assert_eq!(dot64(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), 32.0);
        assert_eq!(dot(&[], &[]), 0.0);
    }
}
