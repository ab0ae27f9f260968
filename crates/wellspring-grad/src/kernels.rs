//! Tight host loops: outer products, im2col, small dot products. The hot
//! loops are compiled twice (baseline and AVX2+FMA) and picked at run time,
//! because the workspace builds for baseline x86-64.

/// `out[j, :] = a[j] · d` for every `j` (row-major `a.len() × d.len()`): the
/// rank-1 per-example weight gradient `a ⊗ δ` of a linear layer.
pub(crate) fn outer(a: &[f32], d: &[f32], out: &mut [f32]) {
    debug_assert_eq!(out.len(), a.len() * d.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports the features the function is compiled for.
            unsafe { outer_avx2(a, d, out) };
            return;
        }
    }
    outer_generic(a, d, out)
}

#[inline(always)]
fn outer_generic(a: &[f32], d: &[f32], out: &mut [f32]) {
    let n = d.len();
    if n == 0 {
        return;
    }
    for (row, &s) in out.chunks_exact_mut(n).zip(a) {
        if s == 0.0 {
            row.fill(0.0);
        } else {
            for (o, &x) in row.iter_mut().zip(d) {
                *o = s * x;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn outer_avx2(a: &[f32], d: &[f32], out: &mut [f32]) {
    outer_generic(a, d, out)
}

/// `out += s · x`.
pub(crate) fn axpy(s: f32, x: &[f32], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o += s * v;
    }
}

/// `Σ x_i y_i`, accumulated in f64 so long sums stay accurate.
pub(crate) fn dot(x: &[f32], y: &[f32]) -> f64 {
    // Four partial sums keep the loop vectorisable.
    let mut acc = [0.0f64; 4];
    let mut cx = x.chunks_exact(4);
    let mut cy = y.chunks_exact(4);
    for (a, b) in (&mut cx).zip(&mut cy) {
        for k in 0..4 {
            acc[k] += (a[k] * b[k]) as f64;
        }
    }
    let mut s = acc[0] + acc[1] + acc[2] + acc[3];
    for (a, b) in cx.remainder().iter().zip(cy.remainder()) {
        s += (a * b) as f64;
    }
    s
}

/// Geometry of a 2-D convolution as seen by one example.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvGeom {
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    /// Top padding.
    pub pt: usize,
    /// Left padding.
    pub pl: usize,
    pub ho: usize,
    pub wo: usize,
}

impl ConvGeom {
    /// Rows of a patch matrix: `c_in · kh · kw` (the weight's fan-in).
    pub fn k(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    /// Output positions `ho · wo`.
    pub fn l(&self) -> usize {
        self.ho * self.wo
    }

    /// Input values per example.
    pub fn in_len(&self) -> usize {
        self.c_in * self.h * self.w
    }

    /// The patch matrix `P` (`k × l`, row `(c, u, v)`, column `(y, x)`) of one
    /// example's input `x` (`c_in × h × w`), zeros where the kernel reads padding.
    pub fn im2col(&self, x: &[f32], out: &mut [f32]) {
        let l = self.l();
        debug_assert_eq!(x.len(), self.in_len());
        debug_assert_eq!(out.len(), self.k() * l);
        let mut q = 0;
        for c in 0..self.c_in {
            let plane = &x[c * self.h * self.w..(c + 1) * self.h * self.w];
            for u in 0..self.kh {
                for v in 0..self.kw {
                    let row = &mut out[q * l..(q + 1) * l];
                    q += 1;
                    for y in 0..self.ho {
                        let seg = &mut row[y * self.wo..(y + 1) * self.wo];
                        let iy = (y * self.sh + u * self.dh) as isize - self.pt as isize;
                        if iy < 0 || iy >= self.h as isize {
                            seg.fill(0.0);
                            continue;
                        }
                        let src = &plane[iy as usize * self.w..(iy as usize + 1) * self.w];
                        for (xo, o) in seg.iter_mut().enumerate() {
                            let ix = (xo * self.sw + v * self.dw) as isize - self.pl as isize;
                            *o = if ix < 0 || ix >= self.w as isize {
                                0.0
                            } else {
                                src[ix as usize]
                            };
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_and_dot() {
        let a = [1.0, 0.0, -2.0];
        let d = [0.5, 2.0];
        let mut out = [9.0f32; 6];
        outer(&a, &d, &mut out);
        assert_eq!(out, [0.5, 2.0, 0.0, 0.0, -1.0, -4.0]);
        let x: Vec<f32> = (0..11).map(|v| v as f32).collect();
        assert_eq!(dot(&x, &x), (0..11).map(|v| (v * v) as f64).sum::<f64>());
    }

    #[test]
    fn im2col_reads_padding_as_zero() {
        let g = ConvGeom {
            c_in: 1,
            h: 2,
            w: 2,
            c_out: 1,
            kh: 3,
            kw: 3,
            sh: 1,
            sw: 1,
            dh: 1,
            dw: 1,
            pt: 1,
            pl: 1,
            ho: 2,
            wo: 2,
        };
        let x = [1.0, 2.0, 3.0, 4.0];
        let mut p = vec![0.0; 9 * 4];
        g.im2col(&x, &mut p);
        // Centre tap (u = v = 1) reads the image itself.
        assert_eq!(&p[4 * 4..5 * 4], &[1.0, 2.0, 3.0, 4.0]);
        // Top-left tap reads x[y-1, x-1]: only output (1, 1) sees pixel (0, 0).
        assert_eq!(&p[0..4], &[0.0, 0.0, 0.0, 1.0]);
    }
}
