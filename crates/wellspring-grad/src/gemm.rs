//! Safe strided GEMM wrappers over `matrixmultiply` (runtime-dispatched
//! AVX2/FMA kernels, single-threaded; callers parallelise with rayon).

/// A strided matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> View<'a, T> {
    /// Row-major `rows × cols` with leading dimension `ld`.
    pub fn rm(data: &'a [T], rows: usize, cols: usize, ld: usize) -> Self {
        View {
            data,
            rows,
            cols,
            rs: ld,
            cs: 1,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        View {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    fn check(&self, what: &str) {
        if self.rows == 0 || self.cols == 0 {
            return;
        }
        let last = (self.rows - 1) * self.rs + (self.cols - 1) * self.cs;
        assert!(
            last < self.data.len(),
            "gemm {what}: view {}x{} (rs {}, cs {}) exceeds slice of {}",
            self.rows,
            self.cols,
            self.rs,
            self.cs,
            self.data.len()
        );
    }
}

/// `C = alpha · A B + beta · C` with `C` row-major `m × n`, leading dimension `ldc`.
pub(crate) fn sgemm(
    alpha: f32,
    a: View<'_, f32>,
    b: View<'_, f32>,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    assert_eq!(a.cols, b.rows, "gemm inner dimensions");
    a.check("A");
    b.check("B");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        (m - 1) * ldc + n <= c.len(),
        "gemm C: {m}x{n} (ld {ldc}) exceeds slice of {}",
        c.len()
    );
    if k == 0 {
        for i in 0..m {
            for v in &mut c[i * ldc..i * ldc + n] {
                *v *= beta;
            }
        }
        return;
    }
    // SAFETY: every index touched lies inside the slices, checked above.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.as_mut_ptr(),
            ldc as isize,
            1,
        );
    }
}

/// f64 version of [`sgemm`].
pub(crate) fn dgemm(
    alpha: f64,
    a: View<'_, f64>,
    b: View<'_, f64>,
    beta: f64,
    c: &mut [f64],
    ldc: usize,
) {
    assert_eq!(a.cols, b.rows, "gemm inner dimensions");
    a.check("A");
    b.check("B");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        (m - 1) * ldc + n <= c.len(),
        "gemm C: {m}x{n} (ld {ldc}) exceeds slice of {}",
        c.len()
    );
    if k == 0 {
        for i in 0..m {
            for v in &mut c[i * ldc..i * ldc + n] {
                *v *= beta;
            }
        }
        return;
    }
    // SAFETY: every index touched lies inside the slices, checked above.
    unsafe {
        matrixmultiply::dgemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.as_mut_ptr(),
            ldc as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_gemm_matches_naive() {
        let a: Vec<f32> = (0..6).map(|v| v as f32).collect(); // 2x3
        let b: Vec<f32> = (0..12).map(|v| (v as f32) * 0.5).collect(); // 3x4
        let mut c = vec![1.0f32; 8];
        sgemm(
            2.0,
            View::rm(&a, 2, 3, 3),
            View::rm(&b, 3, 4, 4),
            1.0,
            &mut c,
            4,
        );
        for i in 0..2 {
            for j in 0..4 {
                let want: f32 =
                    (0..3).map(|k| a[i * 3 + k] * b[k * 4 + j]).sum::<f32>() * 2.0 + 1.0;
                assert!((c[i * 4 + j] - want).abs() < 1e-5);
            }
        }
        // Aᵀ A through a transposed view.
        let mut g = vec![0.0f32; 9];
        sgemm(
            1.0,
            View::rm(&a, 2, 3, 3).t(),
            View::rm(&a, 2, 3, 3),
            0.0,
            &mut g,
            3,
        );
        assert_eq!(g[0], 0.0 * 0.0 + 3.0 * 3.0);
        assert_eq!(g[5], 1.0 * 2.0 + 4.0 * 5.0);
    }
}
