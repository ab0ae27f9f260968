//! Host copies of what one batched forward/backward captured at each selected
//! layer — the layer input `a_i` and backprop error `δ_i` of every example —
//! and the per-layer algebra on them:
//!
//! | layer | per-example gradient | path |
//! | --- | --- | --- |
//! | Linear | `[a_i; 1] ⊗ δ_i` (rank 1) | outer product |
//! | Conv2d | `Σ_pos δ_i[:, pos] ⊗ patch_i[:, pos]`, bias `Σ_pos δ_i` | im2col + GEMM |
//! | BatchNorm2d | `γ: Σ_pos δ_i x̂_i`, `β: Σ_pos δ_i` (eval-mode statistics) | direct sums |
//! | EmbeddingBag | row `t` of the table gets `δ_i · mask/len` per use | scatter |
//! | Linear on a sequence | `Σ_t [a_it; 1] ⊗ δ_it` (rank `T`) | GEMM `A_iᵀ Δ_i` |
//! | Embedding | row `id_it` of the table gets `δ_it` | scatter |
//! | LayerNorm | `γ: Σ_t δ_it ⊙ x̂_it`, `β: Σ_t δ_it` | direct sums |

use crate::gemm::{View, sgemm};
use crate::kernels::{ConvGeom, axpy, dot, outer};

/// Linear layer `y = x W + b`, `W: [d_in, d_out]`, applied to `t`
/// positions per example (`t = 1` for flat inputs).
#[derive(Clone, Debug)]
pub(crate) struct LinearCap {
    pub d_in: usize,
    pub d_out: usize,
    pub bias: bool,
    /// Positions per example.
    pub t: usize,
    /// Inputs, `rows × t × d_in`.
    pub a: Vec<f32>,
    /// Errors, `rows × t × d_out`.
    pub delta: Vec<f32>,
}

/// Token embedding `y_it = E[id_it]`.
#[derive(Clone, Debug)]
pub(crate) struct TokCap {
    pub vocab: usize,
    pub dim: usize,
    /// Positions per example.
    pub len: usize,
    /// Token ids, `rows × len`.
    pub ids: Vec<usize>,
    /// Errors, `rows × len × dim`.
    pub delta: Vec<f32>,
}

/// LayerNorm over the last axis, `y = γ ⊙ x̂ + β`, at `t` positions per example.
#[derive(Clone, Debug)]
pub(crate) struct LnCap {
    pub d: usize,
    pub t: usize,
    pub beta: bool,
    /// Normalised inputs `x̂`, `rows × t × d`.
    pub xhat: Vec<f32>,
    /// Errors, `rows × t × d`.
    pub delta: Vec<f32>,
}

/// 2-D convolution (groups = 1).
#[derive(Clone, Debug)]
pub(crate) struct ConvCap {
    pub geom: ConvGeom,
    pub bias: bool,
    /// Inputs, `rows × c_in × h × w`.
    pub x: Vec<f32>,
    /// Errors, `rows × c_out × ho × wo`.
    pub delta: Vec<f32>,
}

/// BatchNorm2d in evaluation mode (running statistics): `y = γ x̂ + β`.
#[derive(Clone, Debug)]
pub(crate) struct BnCap {
    pub c: usize,
    pub hw: usize,
    /// Normalised inputs `x̂`, `rows × c × hw`.
    pub xhat: Vec<f32>,
    /// Errors, `rows × c × hw`.
    pub delta: Vec<f32>,
}

/// EmbeddingBag (mean): `y_i = Σ_t w_it E[id_it]` with `w = mask / max(1, Σ mask)`.
#[derive(Clone, Debug)]
pub(crate) struct EmbCap {
    pub vocab: usize,
    pub dim: usize,
    /// Tokens per row (padded).
    pub len: usize,
    /// Token ids, `rows × len`.
    pub ids: Vec<usize>,
    /// Weights `mask / count`, `rows × len` (0 on padding).
    pub w: Vec<f32>,
    /// Errors, `rows × dim`.
    pub delta: Vec<f32>,
}

/// One selected layer's capture.
#[derive(Clone, Debug)]
pub(crate) enum LayerCap {
    Linear(LinearCap),
    Conv(ConvCap),
    Bn(BnCap),
    Emb(EmbCap),
    Tok(TokCap),
    Ln(LnCap),
}

/// Per-thread scratch for im2col and projections.
#[derive(Default)]
pub(crate) struct Scratch {
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    pub c: Vec<f32>,
}

fn grow(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

impl LayerCap {
    /// Number of parameters of the layer (weight then bias).
    pub fn len(&self) -> usize {
        match self {
            LayerCap::Linear(c) => (c.d_in + c.bias as usize) * c.d_out,
            LayerCap::Conv(c) => c.geom.c_out * (c.geom.k() + c.bias as usize),
            LayerCap::Bn(c) => 2 * c.c,
            LayerCap::Emb(c) => c.vocab * c.dim,
            LayerCap::Tok(c) => c.vocab * c.dim,
            LayerCap::Ln(c) => c.d * (1 + c.beta as usize),
        }
    }

    /// Writes example `i`'s gradient (canonical layout) into `out`.
    pub fn write_row(&self, i: usize, out: &mut [f32], s: &mut Scratch) {
        debug_assert_eq!(out.len(), self.len());
        match self {
            LayerCap::Linear(c) if c.t == 1 => {
                let a = &c.a[i * c.d_in..(i + 1) * c.d_in];
                let d = &c.delta[i * c.d_out..(i + 1) * c.d_out];
                let (w, b) = out.split_at_mut(c.d_in * c.d_out);
                outer(a, d, w);
                if c.bias {
                    b.copy_from_slice(d);
                }
            }
            LayerCap::Linear(c) => {
                let t = c.t;
                let a = &c.a[i * t * c.d_in..(i + 1) * t * c.d_in];
                let d = &c.delta[i * t * c.d_out..(i + 1) * t * c.d_out];
                let (w, b) = out.split_at_mut(c.d_in * c.d_out);
                // G_W = A_iᵀ Δ_i: [d_in × t] · [t × d_out], the rank-t sum Σ_t a_t δ_tᵀ.
                sgemm(
                    1.0,
                    View::rm(a, t, c.d_in, c.d_in).t(),
                    View::rm(d, t, c.d_out, c.d_out),
                    0.0,
                    w,
                    c.d_out,
                );
                if c.bias {
                    b.fill(0.0);
                    for row in d.chunks_exact(c.d_out) {
                        axpy(1.0, row, b);
                    }
                }
            }
            LayerCap::Conv(c) => {
                let g = &c.geom;
                let (k, l) = (g.k(), g.l());
                let p = grow(&mut s.a, k * l);
                g.im2col(&c.x[i * g.in_len()..(i + 1) * g.in_len()], p);
                let d = &c.delta[i * g.c_out * l..(i + 1) * g.c_out * l];
                let (w, b) = out.split_at_mut(g.c_out * k);
                // g_W = δ_i Pᵀ: [c_out × l] · [l × k].
                sgemm(
                    1.0,
                    View::rm(d, g.c_out, l, l),
                    View::rm(p, k, l, l).t(),
                    0.0,
                    w,
                    k,
                );
                if c.bias {
                    for (o, bo) in b.iter_mut().enumerate() {
                        *bo = d[o * l..(o + 1) * l].iter().sum();
                    }
                }
            }
            LayerCap::Bn(c) => {
                let n = c.c * c.hw;
                let x = &c.xhat[i * n..(i + 1) * n];
                let d = &c.delta[i * n..(i + 1) * n];
                let (gamma, beta) = out.split_at_mut(c.c);
                for ch in 0..c.c {
                    let r = ch * c.hw..(ch + 1) * c.hw;
                    gamma[ch] = dot(&d[r.clone()], &x[r.clone()]) as f32;
                    beta[ch] = d[r].iter().sum();
                }
            }
            LayerCap::Emb(c) => {
                out.fill(0.0);
                let d = &c.delta[i * c.dim..(i + 1) * c.dim];
                for t in 0..c.len {
                    let w = c.w[i * c.len + t];
                    if w != 0.0 {
                        let id = c.ids[i * c.len + t];
                        axpy(w, d, &mut out[id * c.dim..(id + 1) * c.dim]);
                    }
                }
            }
            LayerCap::Tok(c) => {
                out.fill(0.0);
                c.scatter(i, 1.0, out);
            }
            LayerCap::Ln(c) => {
                let n = c.t * c.d;
                let x = &c.xhat[i * n..(i + 1) * n];
                let d = &c.delta[i * n..(i + 1) * n];
                let (gamma, beta) = out.split_at_mut(c.d);
                gamma.fill(0.0);
                beta.fill(0.0);
                for (xr, dr) in x.chunks_exact(c.d).zip(d.chunks_exact(c.d)) {
                    for j in 0..c.d {
                        gamma[j] += dr[j] * xr[j];
                    }
                    if c.beta {
                        axpy(1.0, dr, beta);
                    }
                }
            }
        }
    }

    /// `out += Σ_r coef_r · g_{rows[r]}` (coefficients 1 when `coef` is `None`):
    /// the gradient of a weighted sum of outputs, without materialising
    /// per-example gradients (GGDA, Ley et al. 2024, eq. 1).
    pub fn accumulate(
        &self,
        rows: &[usize],
        coef: Option<&[f32]>,
        out: &mut [f32],
        s: &mut Scratch,
    ) {
        let cf = |r: usize| coef.map_or(1.0, |c| c[r]);
        match self {
            LayerCap::Linear(c) => {
                // Token rows: `t` per example (1 for flat inputs).
                let (t, di, dout) = (c.t, c.t * c.d_in, c.t * c.d_out);
                let m = rows.len() * t;
                let a = grow(&mut s.a, m * c.d_in);
                for (r, &i) in rows.iter().enumerate() {
                    a[r * di..(r + 1) * di].copy_from_slice(&c.a[i * di..(i + 1) * di]);
                }
                let d = grow(&mut s.b, m * c.d_out);
                for (r, &i) in rows.iter().enumerate() {
                    let src = &c.delta[i * dout..(i + 1) * dout];
                    let k = cf(r);
                    for (o, &v) in d[r * dout..(r + 1) * dout].iter_mut().zip(src) {
                        *o = k * v;
                    }
                }
                let (w, b) = out.split_at_mut(c.d_in * c.d_out);
                // G_W += Aᵀ (diag(coef) Δ): [d_in × m] · [m × d_out].
                sgemm(
                    1.0,
                    View::rm(a, m, c.d_in, c.d_in).t(),
                    View::rm(d, m, c.d_out, c.d_out),
                    1.0,
                    w,
                    c.d_out,
                );
                if c.bias {
                    for r in 0..m {
                        axpy(1.0, &d[r * c.d_out..(r + 1) * c.d_out], b);
                    }
                }
            }
            LayerCap::Conv(c) => {
                let g = &c.geom;
                let (k, l) = (g.k(), g.l());
                let p = grow(&mut s.a, k * l);
                let (w, b) = out.split_at_mut(g.c_out * k);
                for (r, &i) in rows.iter().enumerate() {
                    g.im2col(&c.x[i * g.in_len()..(i + 1) * g.in_len()], p);
                    let d = &c.delta[i * g.c_out * l..(i + 1) * g.c_out * l];
                    sgemm(
                        cf(r),
                        View::rm(d, g.c_out, l, l),
                        View::rm(p, k, l, l).t(),
                        1.0,
                        w,
                        k,
                    );
                    if c.bias {
                        for (o, bo) in b.iter_mut().enumerate() {
                            *bo += cf(r) * d[o * l..(o + 1) * l].iter().sum::<f32>();
                        }
                    }
                }
            }
            LayerCap::Tok(c) => {
                for (r, &i) in rows.iter().enumerate() {
                    c.scatter(i, cf(r), out);
                }
            }
            LayerCap::Bn(_) | LayerCap::Emb(_) | LayerCap::Ln(_) => {
                let row = grow(&mut s.c, self.len());
                let mut inner = Scratch::default();
                for (r, &i) in rows.iter().enumerate() {
                    self.write_row(i, row, &mut inner);
                    axpy(cf(r), row, out);
                }
            }
        }
    }

    /// `out += scale · Σ_{i ∈ rows} g_i` for a contiguous range of captured
    /// rows (GGDA, Ley et al. 2024, eq. 1). A Linear layer's factors are read
    /// in place, so the group gradient is one GEMM `scale · A_gᵀ Δ_g` straight
    /// into `out`, with no copies or temporaries; other layers go through
    /// [`LayerCap::accumulate`].
    pub fn accumulate_range(
        &self,
        rows: std::ops::Range<usize>,
        scale: f32,
        out: &mut [f32],
        s: &mut Scratch,
    ) {
        match self {
            LayerCap::Linear(c) => {
                let m = rows.len() * c.t;
                if m == 0 {
                    return;
                }
                let a = &c.a[rows.start * c.t * c.d_in..rows.end * c.t * c.d_in];
                let d = &c.delta[rows.start * c.t * c.d_out..rows.end * c.t * c.d_out];
                let (w, b) = out.split_at_mut(c.d_in * c.d_out);
                sgemm(
                    scale,
                    View::rm(a, m, c.d_in, c.d_in).t(),
                    View::rm(d, m, c.d_out, c.d_out),
                    1.0,
                    w,
                    c.d_out,
                );
                if c.bias {
                    for row in d.chunks_exact(c.d_out) {
                        axpy(scale, row, b);
                    }
                }
            }
            _ => {
                let local: Vec<usize> = rows.collect();
                let coef = (scale != 1.0).then(|| vec![scale; local.len()]);
                self.accumulate(&local, coef.as_deref(), out, s);
            }
        }
    }

    /// `out[r] += g_{rows[r]} · v` for the layer's slice `v` of a direction.
    pub fn dots(&self, rows: &[usize], v: &[f32], out: &mut [f64], s: &mut Scratch) {
        debug_assert_eq!(v.len(), self.len());
        match self {
            LayerCap::Linear(c) => {
                let (tp, di) = (c.t, c.t * c.d_in);
                let m = rows.len() * tp;
                let a = grow(&mut s.a, m * c.d_in);
                for (r, &i) in rows.iter().enumerate() {
                    a[r * di..(r + 1) * di].copy_from_slice(&c.a[i * di..(i + 1) * di]);
                }
                // T = A V_W: [m × d_out]; g_i·v = Σ_t (a_it V_W + v_b)·δ_it.
                let t = grow(&mut s.b, m * c.d_out);
                let (vw, vb) = v.split_at(c.d_in * c.d_out);
                sgemm(
                    1.0,
                    View::rm(a, m, c.d_in, c.d_in),
                    View::rm(vw, c.d_in, c.d_out, c.d_out),
                    0.0,
                    t,
                    c.d_out,
                );
                for (r, &i) in rows.iter().enumerate() {
                    for p in 0..tp {
                        let tr = r * tp + p;
                        let trow = &mut t[tr * c.d_out..(tr + 1) * c.d_out];
                        if c.bias {
                            axpy(1.0, vb, trow);
                        }
                        let ti = i * tp + p;
                        out[r] += dot(trow, &c.delta[ti * c.d_out..(ti + 1) * c.d_out]);
                    }
                }
            }
            LayerCap::Conv(c) => {
                let g = &c.geom;
                let (k, l) = (g.k(), g.l());
                let (vw, vb) = v.split_at(g.c_out * k);
                let p = grow(&mut s.a, k * l);
                let t = grow(&mut s.b, g.c_out * l);
                for (r, &i) in rows.iter().enumerate() {
                    g.im2col(&c.x[i * g.in_len()..(i + 1) * g.in_len()], p);
                    sgemm(
                        1.0,
                        View::rm(vw, g.c_out, k, k),
                        View::rm(p, k, l, l),
                        0.0,
                        t,
                        l,
                    );
                    let d = &c.delta[i * g.c_out * l..(i + 1) * g.c_out * l];
                    let mut acc = dot(t, d);
                    if c.bias {
                        for (o, &bv) in vb.iter().enumerate() {
                            acc += bv as f64
                                * d[o * l..(o + 1) * l].iter().map(|&x| x as f64).sum::<f64>();
                        }
                    }
                    out[r] += acc;
                }
            }
            LayerCap::Tok(c) => {
                for (r, &i) in rows.iter().enumerate() {
                    for p in 0..c.len {
                        let id = c.ids[i * c.len + p];
                        let d = &c.delta[(i * c.len + p) * c.dim..(i * c.len + p + 1) * c.dim];
                        out[r] += dot(d, &v[id * c.dim..(id + 1) * c.dim]);
                    }
                }
            }
            LayerCap::Bn(_) | LayerCap::Emb(_) | LayerCap::Ln(_) => {
                let row = grow(&mut s.c, self.len());
                let mut inner = Scratch::default();
                for (r, &i) in rows.iter().enumerate() {
                    self.write_row(i, row, &mut inner);
                    out[r] += dot(row, v);
                }
            }
        }
    }

    /// Output-side width (`d_out`, `c_out`, embedding dim; BatchNorm: none).
    pub fn out_width(&self) -> usize {
        match self {
            LayerCap::Linear(c) => c.d_out,
            LayerCap::Conv(c) => c.geom.c_out,
            LayerCap::Bn(c) => 2 * c.c,
            LayerCap::Emb(c) => c.dim,
            LayerCap::Tok(c) => c.dim,
            LayerCap::Ln(c) => c.d * (1 + c.beta as usize),
        }
    }

    /// Input-side width including the bias's constant 1 (`d_in + 1`,
    /// `c_in·kh·kw + 1`, vocabulary; BatchNorm: none).
    pub fn in_width(&self) -> usize {
        match self {
            LayerCap::Linear(c) => c.d_in + c.bias as usize,
            LayerCap::Conv(c) => c.geom.k() + c.bias as usize,
            LayerCap::Bn(c) => 2 * c.c,
            LayerCap::Emb(c) => c.vocab,
            LayerCap::Tok(c) => c.vocab,
            LayerCap::Ln(c) => c.d * (1 + c.beta as usize),
        }
    }
}

impl TokCap {
    /// `out[id_it] += k · δ_it` for every position of example `i`.
    fn scatter(&self, i: usize, k: f32, out: &mut [f32]) {
        for p in 0..self.len {
            let id = self.ids[i * self.len + p];
            let d = &self.delta[(i * self.len + p) * self.dim..(i * self.len + p + 1) * self.dim];
            axpy(k, d, &mut out[id * self.dim..(id + 1) * self.dim]);
        }
    }
}
