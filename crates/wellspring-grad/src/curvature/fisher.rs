//! The empirical Fisher `F = (1/n) Σ_i g_i g_iᵀ` as an operator, applied from
//! the captured `(a, δ)` factors: `g_i · v` and `Σ_i u_i g_i` are GEMMs per
//! layer, so neither the per-example gradients nor `F` are ever formed.

use rayon::prelude::*;
use wellspring_core::Dataset;

use super::{Counter, LinearOperator, check_apply};
use crate::caps::Scratch;
use crate::capture::Captured;
use crate::engine::{GradEngine, Rows};
use crate::error::Result;
use crate::layout::GradLayout;

/// Empirical Fisher of an engine's output function over some rows (the
/// gradients are those of [`GradEngine::per_sample`]). Holds the captured
/// factors: `n × Σ_layers (d_in + d_out)` floats for linear layers (conv
/// layers keep their input images).
pub struct EmpiricalFisher {
    layout: GradLayout,
    batches: Vec<Captured>,
    n: usize,
    count: Counter,
}

impl EmpiricalFisher {
    /// Captures the factors of `rows` of `data` with `engine`.
    pub fn new<'r>(engine: &GradEngine, data: &Dataset, rows: impl Into<Rows<'r>>) -> Result<Self> {
        let idx = rows.into().resolve(data.len(), data.name())?;
        if idx.is_empty() {
            return Err(wellspring_core::CoreError::Empty {
                what: format!("rows of {}", data.name()),
            }
            .into());
        }
        let mut batches = Vec::new();
        engine.for_each_batch(data, &idx, |_, _, cap| {
            batches.push(cap);
            Ok(())
        })?;
        Ok(EmpiricalFisher {
            layout: engine.layout().clone(),
            batches,
            n: idx.len(),
            count: Counter::default(),
        })
    }

    /// Number of examples averaged.
    pub fn n(&self) -> usize {
        self.n
    }
}

impl LinearOperator for EmpiricalFisher {
    fn dim(&self) -> usize {
        self.layout.dim()
    }

    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        check_apply("empirical Fisher", self.dim(), v, out)?;
        self.count.bump();
        let vf: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        let slots = self.layout.slots();
        let mut acc = vec![0.0f64; self.dim()];
        for cap in &self.batches {
            let local: Vec<usize> = (0..cap.rows).collect();
            // u_i = g_i · v, summed over layers.
            let parts: Vec<Vec<f64>> = slots
                .par_iter()
                .zip(&cap.layers)
                .map_init(Scratch::default, |s, (slot, layer)| {
                    let mut u = vec![0.0f64; cap.rows];
                    layer.dots(&local, &vf[slot.range()], &mut u, s);
                    u
                })
                .collect();
            let mut u = vec![0.0f64; cap.rows];
            for part in parts {
                for (a, b) in u.iter_mut().zip(part) {
                    *a += b;
                }
            }
            let coef: Vec<f32> = u.iter().map(|&x| (x / self.n as f64) as f32).collect();
            // Σ_i (u_i / n) g_i.
            let sums: Vec<Vec<f32>> = slots
                .par_iter()
                .zip(&cap.layers)
                .map_init(Scratch::default, |s, (slot, layer)| {
                    let mut part = vec![0.0f32; slot.desc.len];
                    layer.accumulate(&local, Some(&coef), &mut part, s);
                    part
                })
                .collect();
            for (slot, part) in slots.iter().zip(sums) {
                for (a, b) in acc[slot.range()].iter_mut().zip(part) {
                    *a += b as f64;
                }
            }
        }
        out.copy_from_slice(&acc);
        Ok(())
    }

    fn name(&self) -> String {
        format!("empirical Fisher over {} examples", self.n)
    }

    fn applications(&self) -> usize {
        self.count.get()
    }
}
