//! Dense Gaussian / Rademacher projections generated chunk by chunk.

use std::borrow::Cow;
use std::sync::OnceLock;

use rand::{Rng, RngExt};
use rand_distr::StandardNormal;
use rayon::prelude::*;
use wellspring_core::{derive_seed, rng};

use super::{ProjectionSpec, Projector, check_dim, check_io};
use crate::error::Result;
use crate::gemm::{View, sgemm};

/// Parameters per generated chunk of `G` (rows of the `p × k` matrix `Gᵀ`).
/// Chunk `c` covers parameters `c·CHUNK_ROWS .. (c+1)·CHUNK_ROWS` and is drawn
/// from `ChaCha8(derive_seed(seed, c))` in row-major order.
pub const CHUNK_ROWS: usize = 512;

/// Distribution of the entries of a dense projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenseKind {
    /// `N(0, 1/k)`.
    Gaussian,
    /// `±1/√k` with probability 1/2 each.
    Rademacher,
}

/// A dense random projection `R^p → R^k` whose matrix is regenerated chunk by
/// chunk from the seed; at most [`DenseProjector::cache_limit`] bytes of
/// generated chunks are kept between calls, so a `p × k` matrix is never held
/// when it is larger than that.
#[derive(Debug)]
pub struct DenseProjector {
    kind: DenseKind,
    p: usize,
    k: usize,
    seed: u64,
    cache_limit: usize,
    cache: Vec<OnceLock<Vec<f32>>>,
}

/// Default cache budget for generated chunks (256 MiB).
const DEFAULT_CACHE: usize = 256 << 20;

impl DenseProjector {
    /// A projection of `p`-vectors to `k` dimensions. Errors if `k` is 0 or
    /// larger than `p`.
    pub fn new(kind: DenseKind, p: usize, k: usize, seed: u64) -> Result<Self> {
        check_dim(
            match kind {
                DenseKind::Gaussian => "Gaussian",
                DenseKind::Rademacher => "Rademacher",
            },
            p,
            k,
        )?;
        let mut me = DenseProjector {
            kind,
            p,
            k,
            seed,
            cache_limit: 0,
            cache: Vec::new(),
        };
        me.set_cache_limit(DEFAULT_CACHE);
        Ok(me)
    }

    /// Keeps at most `bytes` of generated chunks between calls (0: regenerate
    /// every chunk on every call). Output does not depend on this.
    pub fn with_cache_limit(mut self, bytes: usize) -> Self {
        self.set_cache_limit(bytes);
        self
    }

    fn set_cache_limit(&mut self, bytes: usize) {
        self.cache_limit = bytes;
        let per_chunk = CHUNK_ROWS * self.k * 4;
        let n = (bytes / per_chunk.max(1)).min(self.n_chunks());
        self.cache = (0..n).map(|_| OnceLock::new()).collect();
    }

    /// The cache budget in bytes.
    pub fn cache_limit(&self) -> usize {
        self.cache_limit
    }

    /// The entry distribution.
    pub fn kind(&self) -> DenseKind {
        self.kind
    }

    fn n_chunks(&self) -> usize {
        self.p.div_ceil(CHUNK_ROWS)
    }

    fn chunk_rows(&self, c: usize) -> usize {
        CHUNK_ROWS.min(self.p - c * CHUNK_ROWS)
    }

    /// Rows `c·CHUNK_ROWS..` of `Gᵀ` (`chunk_rows × k`, row-major).
    fn generate(&self, c: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; self.chunk_rows(c) * self.k];
        let mut r = rng(derive_seed(self.seed, c as u64));
        let s = 1.0 / (self.k as f32).sqrt();
        match self.kind {
            DenseKind::Gaussian => {
                for v in &mut out {
                    let x: f32 = r.sample(StandardNormal);
                    *v = x * s;
                }
            }
            DenseKind::Rademacher => {
                for block in out.chunks_mut(64) {
                    let bits = r.next_u64();
                    for (b, v) in block.iter_mut().enumerate() {
                        *v = if (bits >> b) & 1 == 1 { s } else { -s };
                    }
                }
            }
        }
        out
    }

    fn chunk(&self, c: usize) -> Cow<'_, [f32]> {
        match self.cache.get(c) {
            Some(cell) => Cow::Borrowed(cell.get_or_init(|| self.generate(c)).as_slice()),
            None => Cow::Owned(self.generate(c)),
        }
    }

    /// The full `k × p` matrix `G` (row-major), for tests and small `p`.
    pub fn matrix(&self) -> Vec<f32> {
        let mut g = vec![0.0f32; self.k * self.p];
        for c in 0..self.n_chunks() {
            let ch = self.chunk(c);
            for j in 0..self.chunk_rows(c) {
                for r in 0..self.k {
                    g[r * self.p + c * CHUNK_ROWS + j] = ch[j * self.k + r];
                }
            }
        }
        g
    }
}

impl Projector for DenseProjector {
    fn input_dim(&self) -> usize {
        self.p
    }

    fn output_dim(&self) -> usize {
        self.k
    }

    fn spec(&self) -> ProjectionSpec {
        match self.kind {
            DenseKind::Gaussian => ProjectionSpec::Gaussian {
                dim: self.k,
                seed: self.seed,
            },
            DenseKind::Rademacher => ProjectionSpec::Rademacher {
                dim: self.k,
                seed: self.seed,
            },
        }
    }

    /// `out = grads · Gᵀ`, accumulated chunk by chunk in a fixed order; rows
    /// are split across threads, so every row's arithmetic is the same for
    /// any block size or thread count.
    fn project(&self, rows: usize, grads: &[f32], out: &mut [f32]) -> Result<()> {
        let (p, k) = (self.p, self.k);
        check_io(rows, p, k, grads, out)?;
        out.fill(0.0);
        if rows == 0 {
            return Ok(());
        }
        let threads = rayon::current_num_threads().max(1);
        let rb = rows.div_ceil(2 * threads).max(4);
        // Chunks generated a few at a time, in parallel, then applied in order.
        let step = 2 * threads;
        let n = self.n_chunks();
        for c0 in (0..n).step_by(step) {
            let gs: Vec<Cow<'_, [f32]>> = (c0..(c0 + step).min(n))
                .into_par_iter()
                .map(|c| self.chunk(c))
                .collect();
            out.par_chunks_mut(rb * k).enumerate().for_each(|(bi, ob)| {
                let r0 = bi * rb;
                let nr = ob.len() / k;
                for (off, g) in gs.iter().enumerate() {
                    let c = c0 + off;
                    let cs = self.chunk_rows(c);
                    let a = View {
                        data: &grads[r0 * p + c * CHUNK_ROWS..],
                        rows: nr,
                        cols: cs,
                        rs: p,
                        cs: 1,
                    };
                    sgemm(1.0, a, View::rm(g, cs, k, k), 1.0, ob, k);
                }
            });
        }
        Ok(())
    }
}
