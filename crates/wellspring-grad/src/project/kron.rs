//! The factored (Kronecker) projection of TracIn's appendix F.

use rand::RngExt;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use wellspring_core::{derive_seed_str, rng};
use wellspring_models::ParamLayerKind;

use super::{ProjectionSpec, Projector, check_dim, check_io};
use crate::caps::{LayerCap, Scratch};
use crate::error::{GradError, Result};
use crate::gemm::{View, sgemm};
use crate::kernels::axpy;
use crate::layout::GradLayout;

/// How one layer is projected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KronLayerKind {
    /// Linear `[d_in, d_out]` weight plus bias: the gradient is the matrix
    /// `M = [a; 1] δᵀ` (`(d_in + 1) × d_out`, exactly the canonical layout);
    /// projected as `G_a M G_δᵀ`.
    Linear {
        /// Input width.
        d_in: usize,
        /// Output width.
        d_out: usize,
        /// Whether the layer has a bias (the `+1` row).
        bias: bool,
    },
    /// Conv2d `[c_out, c_in·kh·kw]` weight plus bias `[c_out]`: projected as
    /// `G_a [W | b]ᵀ G_δᵀ` with `G_a` over patch rows (and the bias's constant 1).
    Conv {
        /// Output channels.
        c_out: usize,
        /// Patch length `c_in·kh·kw`.
        patch: usize,
        /// Whether the layer has a bias.
        bias: bool,
    },
    /// EmbeddingBag table `[vocab, dim]`: `G_a E G_δᵀ` (`G_a` stored transposed,
    /// `vocab × k_a`, so a token's column is contiguous).
    Embedding {
        /// Vocabulary.
        vocab: usize,
        /// Embedding width.
        dim: usize,
    },
    /// Any other layer (BatchNorm): a dense Gaussian `k × len` matrix.
    Dense {
        /// Parameters of the layer.
        len: usize,
    },
}

/// One layer's projection factors. Entries of `G_a` are `N(0, 1/k_a)` and of
/// `G_δ` `N(0, 1/k_δ)`, so `E[(G_a ⊗ G_δ)ᵀ(G_a ⊗ G_δ)] = I`.
#[derive(Clone, Debug)]
pub struct KronLayer {
    /// Layer path.
    pub path: String,
    /// Projection shape.
    pub kind: KronLayerKind,
    /// Rows of `G_a`.
    pub k_a: usize,
    /// Rows of `G_δ`.
    pub k_d: usize,
    /// `G_a`, row-major `k_a × in_width` (Embedding: `vocab × k_a`); for
    /// `Dense` the `k × len` matrix.
    pub ga: Vec<f32>,
    /// `G_δ`, row-major `k_d × out_width` (empty for `Dense`).
    pub gd: Vec<f32>,
    /// Offset of the layer in the packed gradient.
    pub offset: usize,
    /// Offset of the layer's `k_a · k_δ` block in the output (0 when layers
    /// are summed, the running sum of block sizes when concatenated).
    pub out_offset: usize,
}

/// Per-layer Kronecker projections summed into one `k`-vector.
///
/// Each layer splits `k = k_a · k_δ` with `k_δ` the largest divisor of `k`
/// not above `min(out_width, ⌊√k⌋)` (powers of two split evenly: 512 = 32·16).
/// Layer factors come from `ChaCha8(derive_seed_str(seed, "<path>/in"))` and
/// `"<path>/out"`, so a layer's projection does not depend on which other
/// layers are selected.
#[derive(Clone, Debug)]
pub struct KroneckerProjector {
    layout: GradLayout,
    k: usize,
    seed: u64,
    layers: Vec<KronLayer>,
    custom: Option<String>,
}

fn gaussian(seed: u64, stream: &str, n: usize, scale: f32) -> Vec<f32> {
    let mut r = rng(derive_seed_str(seed, stream));
    (0..n)
        .map(|_| {
            let x: f32 = r.sample(StandardNormal);
            x * scale
        })
        .collect()
}

fn split(k: usize, out_width: usize) -> (usize, usize) {
    let cap = out_width.min((k as f64).sqrt().floor() as usize).max(1);
    let k_d = (1..=cap).rev().find(|&d| k.is_multiple_of(d)).unwrap_or(1);
    (k / k_d, k_d)
}

impl KroneckerProjector {
    /// Builds the factors for every layer of `layout`. Errors if `k` is 0 or
    /// exceeds the number of parameters.
    pub fn new(layout: &GradLayout, k: usize, seed: u64) -> Result<Self> {
        check_dim("Kronecker", layout.dim(), k)?;
        let mut layers = Vec::new();
        for slot in layout.slots() {
            let d = &slot.desc;
            let kind = match d.kind {
                ParamLayerKind::Linear => KronLayerKind::Linear {
                    d_in: d.weight_shape[0],
                    d_out: d.weight_shape[1],
                    bias: d.has_bias,
                },
                ParamLayerKind::Conv2d => KronLayerKind::Conv {
                    c_out: d.weight_shape[0],
                    patch: d.weight_shape[1..].iter().product(),
                    bias: d.has_bias,
                },
                ParamLayerKind::EmbeddingBag | ParamLayerKind::Embedding => {
                    KronLayerKind::Embedding {
                        vocab: d.weight_shape[0],
                        dim: d.weight_shape[1],
                    }
                }
                ParamLayerKind::BatchNorm2d | ParamLayerKind::LayerNorm => {
                    KronLayerKind::Dense { len: d.len }
                }
            };
            let (in_w, out_w) = match kind {
                KronLayerKind::Linear { d_in, d_out, bias } => (d_in + bias as usize, d_out),
                KronLayerKind::Conv { c_out, patch, bias } => (patch + bias as usize, c_out),
                KronLayerKind::Embedding { vocab, dim } => (vocab, dim),
                KronLayerKind::Dense { len } => (len, 0),
            };
            let layer = if let KronLayerKind::Dense { len } = kind {
                KronLayer {
                    path: d.path.clone(),
                    kind,
                    k_a: k,
                    k_d: 1,
                    ga: gaussian(
                        seed,
                        &format!("{}/dense", d.path),
                        k * len,
                        1.0 / (k as f32).sqrt(),
                    ),
                    gd: Vec::new(),
                    offset: slot.offset,
                    out_offset: 0,
                }
            } else {
                let (k_a, k_d) = split(k, out_w);
                KronLayer {
                    path: d.path.clone(),
                    kind,
                    k_a,
                    k_d,
                    ga: gaussian(
                        seed,
                        &format!("{}/in", d.path),
                        k_a * in_w,
                        1.0 / (k_a as f32).sqrt(),
                    ),
                    gd: gaussian(
                        seed,
                        &format!("{}/out", d.path),
                        k_d * out_w,
                        1.0 / (k_d as f32).sqrt(),
                    ),
                    offset: slot.offset,
                    out_offset: 0,
                }
            };
            layers.push(layer);
        }
        Ok(KroneckerProjector {
            layout: layout.clone(),
            k,
            seed,
            layers,
            custom: None,
        })
    }

    /// A projector from given per-layer factors `(G_a, k_a, G_δ, k_δ)` (shapes
    /// as in [`KronLayer`]), e.g. K-FAC eigenbases `(Q_Aᵀ, Q_Sᵀ)`. With
    /// `concatenate` each layer gets its own `k_a · k_δ` block of the output
    /// (in layout order); otherwise all layers must share `k = k_a · k_δ` and
    /// are summed. Only Linear, Conv2d and EmbeddingBag layers are accepted.
    pub fn from_factors(
        layout: &GradLayout,
        factors: Vec<(Vec<f32>, usize, Vec<f32>, usize)>,
        concatenate: bool,
        description: impl Into<String>,
    ) -> Result<Self> {
        if factors.len() != layout.slots().len() {
            return Err(GradError::shape(
                "Kronecker factors",
                format!("one pair per selected layer ({})", layout.slots().len()),
                factors.len(),
            ));
        }
        let mut layers = Vec::new();
        let mut out_offset = 0;
        let mut k_common = None;
        for (slot, (ga, k_a, gd, k_d)) in layout.slots().iter().zip(factors) {
            let d = &slot.desc;
            let (kind, in_w, out_w) = match d.kind {
                ParamLayerKind::Linear => {
                    let (d_in, d_out) = (d.weight_shape[0], d.weight_shape[1]);
                    (
                        KronLayerKind::Linear {
                            d_in,
                            d_out,
                            bias: d.has_bias,
                        },
                        d_in + d.has_bias as usize,
                        d_out,
                    )
                }
                ParamLayerKind::Conv2d => {
                    let (c_out, patch) = (
                        d.weight_shape[0],
                        d.weight_shape[1..].iter().product::<usize>(),
                    );
                    (
                        KronLayerKind::Conv {
                            c_out,
                            patch,
                            bias: d.has_bias,
                        },
                        patch + d.has_bias as usize,
                        c_out,
                    )
                }
                ParamLayerKind::EmbeddingBag | ParamLayerKind::Embedding => {
                    let (vocab, dim) = (d.weight_shape[0], d.weight_shape[1]);
                    (KronLayerKind::Embedding { vocab, dim }, vocab, dim)
                }
                ParamLayerKind::BatchNorm2d | ParamLayerKind::LayerNorm => {
                    return Err(GradError::unsupported(
                        format!("Kronecker factors for {}", d.path),
                        "BatchNorm2d has no Kronecker structure",
                    ));
                }
            };
            if ga.len() != k_a * in_w || gd.len() != k_d * out_w || k_a == 0 || k_d == 0 {
                return Err(GradError::shape(
                    format!("Kronecker factors of {}", d.path),
                    format!("G_a {k_a}×{in_w} and G_δ {k_d}×{out_w}"),
                    format!("{} and {} values", ga.len(), gd.len()),
                ));
            }
            let kl = k_a * k_d;
            if !concatenate {
                match k_common {
                    None => k_common = Some(kl),
                    Some(k) if k != kl => {
                        return Err(GradError::shape(
                            format!("Kronecker factors of {}", d.path),
                            format!("k_a·k_δ = {k} like the other layers (summed projection)"),
                            kl,
                        ));
                    }
                    _ => {}
                }
            }
            layers.push(KronLayer {
                path: d.path.clone(),
                kind,
                k_a,
                k_d,
                ga,
                gd,
                offset: slot.offset,
                out_offset: if concatenate { out_offset } else { 0 },
            });
            out_offset += kl;
        }
        let k = if concatenate {
            out_offset
        } else {
            k_common.unwrap_or(0)
        };
        Ok(KroneckerProjector {
            layout: layout.clone(),
            k,
            seed: 0,
            layers,
            custom: Some(description.into()),
        })
    }

    /// The layout it projects.
    pub fn layout(&self) -> &GradLayout {
        &self.layout
    }

    /// Per-layer factors.
    pub fn layers(&self) -> &[KronLayer] {
        &self.layers
    }

    /// Projects captured factors: `out` (`rows × k`) is overwritten with
    /// `Σ_layers vec(G_a a_i (G_δ δ_i)ᵀ)` (conv: summed over positions).
    pub(crate) fn project_captured(&self, caps: &[LayerCap], out: &mut [f32]) -> Result<()> {
        let k = self.k;
        out.fill(0.0);
        for (layer, cap) in self.layers.iter().zip(caps) {
            match (layer.kind, cap) {
                (KronLayerKind::Linear { d_in, d_out, bias }, LayerCap::Linear(c)) => {
                    // Token rows (`t` per example; 1 for flat inputs).
                    let rows = c.a.len() / d_in.max(1);
                    let t = c.t;
                    let (ka, kd) = (layer.k_a, layer.k_d);
                    let in_w = d_in + bias as usize;
                    let mut ah = vec![0.0f32; rows * ka];
                    // Â = A G_a[:, :d_in]ᵀ (+ bias column).
                    if bias {
                        for row in ah.chunks_exact_mut(ka) {
                            for (r, v) in row.iter_mut().enumerate() {
                                *v = layer.ga[r * in_w + d_in];
                            }
                        }
                    }
                    par_gemm_rows(
                        &c.a,
                        rows,
                        d_in,
                        View::rm(&layer.ga, ka, d_in, in_w).t(),
                        &mut ah,
                        ka,
                    );
                    let mut dh = vec![0.0f32; rows * kd];
                    par_gemm_rows(
                        &c.delta,
                        rows,
                        d_out,
                        View::rm(&layer.gd, kd, d_out, d_out).t(),
                        &mut dh,
                        kd,
                    );
                    // out_i = Σ_t Â_it ⊗ D̂_it: rank 1 for flat inputs, a
                    // `[k_a × t] · [t × k_δ]` GEMM over a sequence's tokens.
                    if t == 1 {
                        out.par_chunks_mut(k).enumerate().for_each(|(i, o)| {
                            let o = &mut o[layer.out_offset..layer.out_offset + ka * kd];
                            let d = &dh[i * kd..(i + 1) * kd];
                            for (r, &av) in ah[i * ka..(i + 1) * ka].iter().enumerate() {
                                axpy(av, d, &mut o[r * kd..(r + 1) * kd]);
                            }
                        });
                    } else {
                        out.par_chunks_mut(k).enumerate().for_each(|(i, o)| {
                            let o = &mut o[layer.out_offset..layer.out_offset + ka * kd];
                            sgemm(
                                1.0,
                                View::rm(&ah[i * t * ka..(i + 1) * t * ka], t, ka, ka).t(),
                                View::rm(&dh[i * t * kd..(i + 1) * t * kd], t, kd, kd),
                                1.0,
                                o,
                                kd,
                            );
                        });
                    }
                }
                (KronLayerKind::Conv { c_out, patch, bias }, LayerCap::Conv(c)) => {
                    let g = c.geom;
                    let l = g.l();
                    let (ka, kd) = (layer.k_a, layer.k_d);
                    let in_w = patch + bias as usize;
                    out.par_chunks_mut(k).enumerate().for_each_init(
                        Scratch::default,
                        |s, (i, o)| {
                            let o = &mut o[layer.out_offset..layer.out_offset + ka * kd];
                            s.a.resize(patch * l, 0.0);
                            s.b.resize(ka * l, 0.0);
                            s.c.resize(kd * l, 0.0);
                            g.im2col(&c.x[i * g.in_len()..(i + 1) * g.in_len()], &mut s.a);
                            // Â_i = G_a[:, :K] P_i (+ bias column), [k_a × l].
                            if bias {
                                for r in 0..ka {
                                    s.b[r * l..(r + 1) * l].fill(layer.ga[r * in_w + patch]);
                                }
                            }
                            sgemm(
                                1.0,
                                View::rm(&layer.ga, ka, patch, in_w),
                                View::rm(&s.a, patch, l, l),
                                if bias { 1.0 } else { 0.0 },
                                &mut s.b,
                                l,
                            );
                            // D̂_i = G_δ δ_i, [k_d × l].
                            let d = &c.delta[i * c_out * l..(i + 1) * c_out * l];
                            sgemm(
                                1.0,
                                View::rm(&layer.gd, kd, c_out, c_out),
                                View::rm(d, c_out, l, l),
                                0.0,
                                &mut s.c,
                                l,
                            );
                            // out_i += Â_i D̂_iᵀ, [k_a × k_d].
                            sgemm(
                                1.0,
                                View::rm(&s.b, ka, l, l),
                                View::rm(&s.c, kd, l, l).t(),
                                1.0,
                                o,
                                kd,
                            );
                        },
                    );
                }
                (KronLayerKind::Embedding { dim, .. }, LayerCap::Emb(c)) => {
                    let (ka, kd) = (layer.k_a, layer.k_d);
                    out.par_chunks_mut(k).enumerate().for_each(|(i, o)| {
                        let o = &mut o[layer.out_offset..layer.out_offset + ka * kd];
                        let mut ah = vec![0.0f32; ka];
                        for t in 0..c.len {
                            let w = c.w[i * c.len + t];
                            if w != 0.0 {
                                let id = c.ids[i * c.len + t];
                                axpy(w, &layer.ga[id * ka..(id + 1) * ka], &mut ah);
                            }
                        }
                        let d = &c.delta[i * dim..(i + 1) * dim];
                        let mut dh = vec![0.0f32; kd];
                        for (r, v) in dh.iter_mut().enumerate() {
                            *v = crate::kernels::dot(&layer.gd[r * dim..(r + 1) * dim], d) as f32;
                        }
                        for (r, &av) in ah.iter().enumerate() {
                            axpy(av, &dh, &mut o[r * kd..(r + 1) * kd]);
                        }
                    });
                }
                (KronLayerKind::Embedding { dim, .. }, LayerCap::Tok(c)) => {
                    let (ka, kd) = (layer.k_a, layer.k_d);
                    let (len, rows) = (c.len, c.ids.len() / c.len.max(1));
                    // D̂ = Δ G_δᵀ for every token, then
                    // out_i = Σ_t G_a[:, id_t] ⊗ D̂_it = A_iᵀ D̂_i with A_i the
                    // gathered `t × k_a` rows of G_a (stored `vocab × k_a`).
                    let mut dh = vec![0.0f32; rows * len * kd];
                    par_gemm_rows(
                        &c.delta,
                        rows * len,
                        dim,
                        View::rm(&layer.gd, kd, dim, dim).t(),
                        &mut dh,
                        kd,
                    );
                    out.par_chunks_mut(k).enumerate().for_each_init(
                        Scratch::default,
                        |s, (i, o)| {
                            let o = &mut o[layer.out_offset..layer.out_offset + ka * kd];
                            s.a.resize(len * ka, 0.0);
                            for p in 0..len {
                                let id = c.ids[i * len + p];
                                s.a[p * ka..(p + 1) * ka]
                                    .copy_from_slice(&layer.ga[id * ka..(id + 1) * ka]);
                            }
                            sgemm(
                                1.0,
                                View::rm(&s.a, len, ka, ka).t(),
                                View::rm(&dh[i * len * kd..(i + 1) * len * kd], len, kd, kd),
                                1.0,
                                o,
                                kd,
                            );
                        },
                    );
                }
                (KronLayerKind::Dense { len }, LayerCap::Ln(_)) => {
                    // LayerNorm: the batch's γ/β gradients as one `rows × len`
                    // matrix, then one GEMM with the `k × len` Gaussian.
                    let rows = out.len() / k;
                    let mut g = vec![0.0f32; rows * len];
                    g.par_chunks_mut(len.max(1))
                        .enumerate()
                        .for_each_init(Scratch::default, |s, (i, row)| cap.write_row(i, row, s));
                    par_gemm_rows(
                        &g,
                        rows,
                        len,
                        View::rm(&layer.ga, layer.k_a, len, len).t(),
                        out,
                        k,
                    );
                }
                (KronLayerKind::Dense { len }, cap) => {
                    out.par_chunks_mut(k).enumerate().for_each_init(
                        Scratch::default,
                        |s, (i, o)| {
                            let o =
                                &mut o[layer.out_offset..layer.out_offset + layer.k_a * layer.k_d];
                            let mut g = vec![0.0f32; len];
                            cap.write_row(i, &mut g, s);
                            for (r, v) in o.iter_mut().enumerate() {
                                *v += crate::kernels::dot(&layer.ga[r * len..(r + 1) * len], &g)
                                    as f32;
                            }
                        },
                    );
                }
                _ => {
                    return Err(GradError::unsupported(
                        format!("Kronecker projection of {}", layer.path),
                        "captured layer type does not match the projector's layout",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `out (rows × n) += A (rows × kdim, row-major) · B`, rows split across threads.
fn par_gemm_rows(a: &[f32], rows: usize, kdim: usize, b: View<'_, f32>, out: &mut [f32], n: usize) {
    let threads = rayon::current_num_threads().max(1);
    let rb = rows.div_ceil(threads).max(64);
    out.par_chunks_mut(rb * n).enumerate().for_each(|(bi, o)| {
        let r0 = bi * rb;
        let nr = o.len() / n;
        sgemm(1.0, View::rm(&a[r0 * kdim..], nr, kdim, kdim), b, 1.0, o, n);
    });
}

impl Projector for KroneckerProjector {
    fn input_dim(&self) -> usize {
        self.layout.dim()
    }

    fn output_dim(&self) -> usize {
        self.k
    }

    fn spec(&self) -> ProjectionSpec {
        match &self.custom {
            Some(description) => ProjectionSpec::Custom {
                description: description.clone(),
                dim: self.k,
            },
            None => ProjectionSpec::Kronecker {
                dim: self.k,
                seed: self.seed,
            },
        }
    }

    fn as_kronecker(&self) -> Option<&KroneckerProjector> {
        Some(self)
    }

    /// Projects materialised gradients (the same map as the fast path).
    fn project(&self, rows: usize, grads: &[f32], out: &mut [f32]) -> Result<()> {
        let (p, k) = (self.layout.dim(), self.k);
        check_io(rows, p, k, grads, out)?;
        out.par_chunks_mut(k).enumerate().for_each(|(i, o)| {
            o.fill(0.0);
            let g = &grads[i * p..(i + 1) * p];
            for layer in &self.layers {
                let (ka, kd) = (layer.k_a, layer.k_d);
                let o = &mut o[layer.out_offset..layer.out_offset + ka * kd];
                match layer.kind {
                    KronLayerKind::Linear { d_in, d_out, bias } => {
                        let in_w = d_in + bias as usize;
                        let m = &g[layer.offset..layer.offset + in_w * d_out];
                        // T = G_a M, [k_a × d_out]; out += T G_δᵀ.
                        let mut t = vec![0.0f32; ka * d_out];
                        sgemm(
                            1.0,
                            View::rm(&layer.ga, ka, in_w, in_w),
                            View::rm(m, in_w, d_out, d_out),
                            0.0,
                            &mut t,
                            d_out,
                        );
                        sgemm(
                            1.0,
                            View::rm(&t, ka, d_out, d_out),
                            View::rm(&layer.gd, kd, d_out, d_out).t(),
                            1.0,
                            o,
                            kd,
                        );
                    }
                    KronLayerKind::Conv { c_out, patch, bias } => {
                        let in_w = patch + bias as usize;
                        let w = &g[layer.offset..layer.offset + c_out * patch];
                        // T = G_a[:, :K] Wᵀ (+ G_a[:, K] bᵀ), [k_a × c_out].
                        let mut t = vec![0.0f32; ka * c_out];
                        sgemm(
                            1.0,
                            View::rm(&layer.ga, ka, patch, in_w),
                            View::rm(w, c_out, patch, patch).t(),
                            0.0,
                            &mut t,
                            c_out,
                        );
                        if bias {
                            let b = &g[layer.offset + c_out * patch..layer.offset + c_out * in_w];
                            for r in 0..ka {
                                axpy(
                                    layer.ga[r * in_w + patch],
                                    b,
                                    &mut t[r * c_out..(r + 1) * c_out],
                                );
                            }
                        }
                        sgemm(
                            1.0,
                            View::rm(&t, ka, c_out, c_out),
                            View::rm(&layer.gd, kd, c_out, c_out).t(),
                            1.0,
                            o,
                            kd,
                        );
                    }
                    KronLayerKind::Embedding { vocab, dim } => {
                        let m = &g[layer.offset..layer.offset + vocab * dim];
                        let mut t = vec![0.0f32; ka * dim];
                        sgemm(
                            1.0,
                            View::rm(&layer.ga, vocab, ka, ka).t(),
                            View::rm(m, vocab, dim, dim),
                            0.0,
                            &mut t,
                            dim,
                        );
                        sgemm(
                            1.0,
                            View::rm(&t, ka, dim, dim),
                            View::rm(&layer.gd, kd, dim, dim).t(),
                            1.0,
                            o,
                            kd,
                        );
                    }
                    KronLayerKind::Dense { len } => {
                        let m = &g[layer.offset..layer.offset + len];
                        for (r, v) in o.iter_mut().enumerate() {
                            *v += crate::kernels::dot(&layer.ga[r * len..(r + 1) * len], m) as f32;
                        }
                    }
                }
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn k_splits_into_balanced_factors() {
        assert_eq!(split(512, 128), (32, 16));
        assert_eq!(split(512, 10), (64, 8));
        assert_eq!(split(512, 1), (512, 1));
        assert_eq!(split(7, 100), (7, 1));
        assert_eq!(split(36, 100), (6, 6));
    }
}
