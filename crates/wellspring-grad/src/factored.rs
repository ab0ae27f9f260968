//! Per-example gradients in factored form, for exact inner products without
//! materialising them: the rank-1 trick of TracIn (Pruthi et al. 2020),
//! appendix F. A flat linear layer's gradient is `[a_i; 1] ⊗ δ_i`, so
//!
//! ```text
//! ⟨g_i, g_j⟩_layer = ([a_i; 1] · [a_j; 1]) (δ_i · δ_j)
//! ```
//!
//! costs `d_in + 1 + d_out` per pair instead of `(d_in + 1) · d_out`, and an
//! `n × m` block of inner products is two small GEMMs and a Hadamard product
//! per layer. Every other layer (convolutions, normalisations, embeddings,
//! linear layers on token sequences, whose rank varies with the padded
//! length) keeps its materialised per-example gradient rows. The sum over
//! layers is the exact inner product of the full gradients (up to f32
//! rounding in a different order than one long dot product).

use rayon::prelude::*;
use wellspring_core::linalg::gemm_abt;
use wellspring_core::{Dataset, Features};

use crate::caps::{LayerCap, Scratch};
use crate::engine::{GradEngine, Rows};
use crate::error::{GradError, Result};

/// One layer's per-example gradients.
#[derive(Clone, Debug)]
enum Factor {
    /// `[a_i; 1]` (`n × da`, the 1 only with a bias) and `δ_i` (`n × dd`).
    Rank1 {
        a: Vec<f32>,
        da: usize,
        d: Vec<f32>,
        dd: usize,
    },
    /// Materialised gradient rows, `n × len`.
    Dense { g: Vec<f32>, len: usize },
}

impl Factor {
    fn shape(&self) -> (bool, usize, usize) {
        match self {
            Factor::Rank1 { da, dd, .. } => (true, *da, *dd),
            Factor::Dense { len, .. } => (false, *len, 0),
        }
    }
}

/// Per-example gradients of `n` rows, layer by layer, rank-1 factors where
/// a layer allows it (see the module docs). Built by
/// [`GradEngine::factored`]; [`FactoredGrads::dot_block`] gives exact inner
/// products with another set from the same engine (or a same-layout one).
#[derive(Clone, Debug)]
pub struct FactoredGrads {
    n: usize,
    dim: usize,
    layers: Vec<Factor>,
    /// Each layer's range in a gradient row.
    ranges: Vec<std::ops::Range<usize>>,
}

/// One layer of a [`FactoredGrads`], borrowed.
#[derive(Clone, Debug)]
pub enum FactorView<'a> {
    /// A flat linear layer: its gradient rows are `ã_i ⊗ δ_i`, laid out in
    /// `params` as the row-major `da × dd` matrix `ã_i δ_iᵀ` (weight rows
    /// `[d_in, d_out]`, then the bias row when `ã` ends with the 1).
    Rank1 {
        /// The layer's range in a gradient row.
        params: std::ops::Range<usize>,
        /// `ã_i` (the input, with a trailing 1 when the layer has a bias), `n × da`.
        a: &'a [f32],
        /// Width of `ã`.
        da: usize,
        /// `δ_i`, the output's backprop error, `n × dd`.
        d: &'a [f32],
        /// Width of `δ`.
        dd: usize,
    },
    /// Any other layer: the gradient rows themselves, `n × len`.
    Rows {
        /// The layer's range in a gradient row.
        params: std::ops::Range<usize>,
        /// Gradient rows.
        g: &'a [f32],
        /// Row width.
        len: usize,
    },
}

impl FactoredGrads {
    /// Number of rows (examples).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Width of the full gradient these factor (`p`).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The layers, in gradient-row order.
    pub fn layers(&self) -> impl Iterator<Item = FactorView<'_>> + '_ {
        self.layers.iter().zip(&self.ranges).map(|(l, r)| match l {
            Factor::Rank1 { a, da, d, dd } => FactorView::Rank1 {
                params: r.clone(),
                a,
                da: *da,
                d,
                dd: *dd,
            },
            Factor::Dense { g, len } => FactorView::Rows {
                params: r.clone(),
                g,
                len: *len,
            },
        })
    }

    /// Floats stored per row (the factors' widths plus the dense layers'):
    /// what one inner product costs, against [`FactoredGrads::dim`].
    pub fn stored_per_row(&self) -> usize {
        self.layers
            .iter()
            .map(|l| match l {
                Factor::Rank1 { da, dd, .. } => da + dd,
                Factor::Dense { len, .. } => *len,
            })
            .sum()
    }

    /// The first row with a non-finite factor or gradient entry, and the
    /// index of that layer among the selected ones.
    pub fn non_finite(&self) -> Option<(usize, usize)> {
        let bad = |v: &[f32], w: usize| v.iter().position(|x| !x.is_finite()).map(|p| p / w.max(1));
        self.layers
            .iter()
            .enumerate()
            .filter_map(|(k, l)| {
                let row = match l {
                    Factor::Rank1 { a, da, d, dd } => match (bad(a, *da), bad(d, *dd)) {
                        (Some(x), Some(y)) => Some(x.min(y)),
                        (x, y) => x.or(y),
                    },
                    Factor::Dense { g, len } => bad(g, *len),
                };
                row.map(|r| (r, k))
            })
            .min()
    }

    /// `‖g_i‖²` of every row, in f64.
    pub fn sq_norms(&self) -> Vec<f64> {
        let mut out = vec![0.0f64; self.n];
        let sq = |v: &[f32]| v.iter().map(|&x| x as f64 * x as f64).sum::<f64>();
        for l in &self.layers {
            match l {
                Factor::Rank1 { a, da, d, dd } => {
                    for (i, o) in out.iter_mut().enumerate() {
                        *o += sq(&a[i * da..(i + 1) * da]) * sq(&d[i * dd..(i + 1) * dd]);
                    }
                }
                Factor::Dense { g, len } => {
                    for (i, o) in out.iter_mut().enumerate() {
                        *o += sq(&g[i * len..(i + 1) * len]);
                    }
                }
            }
        }
        out
    }

    /// Inner products of `other`'s rows `c0..c0 + cols` with every row of
    /// `self`, test-major: `out[j * self.n() + i] = ⟨g_i, h_{c0 + j}⟩`.
    /// Errors when the two sets factor different layouts.
    pub fn dot_block(&self, other: &FactoredGrads, c0: usize, cols: usize) -> Result<Vec<f32>> {
        let shapes = |f: &FactoredGrads| f.layers.iter().map(Factor::shape).collect::<Vec<_>>();
        if self.dim != other.dim || (self.n > 0 && other.n > 0 && shapes(self) != shapes(other)) {
            return Err(GradError::shape(
                "factored gradients to take inner products with",
                format!("the same layer layout ({} parameters)", self.dim),
                format!("{} parameters, layers {:?}", other.dim, shapes(other)),
            ));
        }
        if c0 + cols > other.n {
            return Err(GradError::shape(
                "factored gradient rows",
                format!("at most {}", other.n),
                c0 + cols,
            ));
        }
        let n = self.n;
        let mut out = vec![0.0f32; cols * n];
        if n == 0 || cols == 0 {
            return Ok(out);
        }
        // blocks of test columns in parallel (the GEMMs are single-threaded)
        let chunk = cols.div_ceil(rayon::current_num_threads().max(1)).max(1);
        out.par_chunks_mut(chunk * n)
            .enumerate()
            .for_each(|(t, o)| self.dot_into(other, c0 + t * chunk, o.len() / n, o));
        Ok(out)
    }
}

impl FactoredGrads {
    /// `out (cols × n) += ⟨g_i, h_{c0 + j}⟩` for one block of test columns.
    fn dot_into(&self, other: &FactoredGrads, c0: usize, cols: usize, out: &mut [f32]) {
        let n = self.n;
        let mut left = vec![0.0f32; cols * n];
        let mut right = vec![0.0f32; cols * n];
        for (mine, theirs) in self.layers.iter().zip(&other.layers) {
            match (mine, theirs) {
                (Factor::Rank1 { a, da, d, dd }, Factor::Rank1 { a: oa, d: od, .. }) => {
                    gemm_abt(&oa[c0 * da..(c0 + cols) * da], cols, *da, a, n, &mut left);
                    gemm_abt(&od[c0 * dd..(c0 + cols) * dd], cols, *dd, d, n, &mut right);
                    for (o, (l, r)) in out.iter_mut().zip(left.iter().zip(&right)) {
                        *o += l * r;
                    }
                }
                (Factor::Dense { g, len }, Factor::Dense { g: og, .. }) => {
                    gemm_abt(
                        &og[c0 * len..(c0 + cols) * len],
                        cols,
                        *len,
                        g,
                        n,
                        &mut left,
                    );
                    for (o, l) in out.iter_mut().zip(&left) {
                        *o += l;
                    }
                }
                _ => unreachable!("layer shapes checked equal by dot_block"),
            }
        }
    }
}

impl GradEngine {
    /// Per-example gradients of `rows` in factored form ([`FactoredGrads`]):
    /// rank-1 factors `([a_i; 1], δ_i)` for linear layers on flat inputs,
    /// materialised rows for every other layer. Exact inner products then
    /// cost `Σ (d_in + 1 + d_out)` per pair on an MLP instead of `p`
    /// (TracIn, Pruthi et al. 2020, App. F).
    pub fn factored<'r>(&self, data: &Dataset, rows: impl Into<Rows<'r>>) -> Result<FactoredGrads> {
        let idx = rows.into().resolve(data.len(), data.name())?;
        let slots = self.layout().slots();
        // Token sequences are padded per batch, so a sequence layer's rank
        // varies between batches: only flat inputs take the rank-1 form.
        let flat_inputs = !matches!(data.features(), Features::Tokens { .. });
        let mut layers: Vec<Factor> = Vec::new();
        self.for_each_batch(data, &idx, |_, batch, cap| {
            if layers.is_empty() {
                layers = cap
                    .layers
                    .iter()
                    .map(|l| match l {
                        LayerCap::Linear(c) if c.t == 1 && flat_inputs => Factor::Rank1 {
                            a: Vec::with_capacity(idx.len() * (c.d_in + c.bias as usize)),
                            da: c.d_in + c.bias as usize,
                            d: Vec::with_capacity(idx.len() * c.d_out),
                            dd: c.d_out,
                        },
                        other => Factor::Dense {
                            g: Vec::with_capacity(idx.len() * other.len()),
                            len: other.len(),
                        },
                    })
                    .collect();
            }
            for ((factor, layer), slot) in layers.iter_mut().zip(&cap.layers).zip(slots) {
                match (factor, layer) {
                    (Factor::Rank1 { a, d, .. }, LayerCap::Linear(c)) if c.t == 1 => {
                        for r in 0..batch.len() {
                            a.extend_from_slice(&c.a[r * c.d_in..(r + 1) * c.d_in]);
                            if c.bias {
                                a.push(1.0);
                            }
                        }
                        d.extend_from_slice(&c.delta[..batch.len() * c.d_out]);
                    }
                    (Factor::Dense { g, len }, layer) => {
                        let start = g.len();
                        g.resize(start + batch.len() * *len, 0.0);
                        g[start..]
                            .par_chunks_mut((*len).max(1))
                            .enumerate()
                            .for_each_init(Scratch::default, |s, (r, row)| {
                                layer.write_row(r, row, s)
                            });
                    }
                    (Factor::Rank1 { .. }, _) => {
                        return Err(GradError::unsupported(
                            slot.desc.path.clone(),
                            "a layer captured as flat linear in one batch changed kind in another",
                        ));
                    }
                }
            }
            Ok(())
        })?;
        Ok(FactoredGrads {
            n: idx.len(),
            dim: self.dim(),
            ranges: if layers.is_empty() {
                Vec::new()
            } else {
                slots.iter().map(|s| s.range()).collect()
            },
            layers,
        })
    }
}
