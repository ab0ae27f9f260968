//! Attribution score matrices cached by content key (issue H: a killed full
//! run resumes without recomputing the methods it finished), together with
//! the cost measured when they were computed, so a report's time and memory
//! columns stay the ones of the run that did the work, not of a cache read.
//!
//! The key is the caller's (everything that produced the model and the
//! data: fingerprints, recipe, seeds) plus the method's name, its options and
//! the crate version, added here. Scores go to a checksummed `.npy` entry,
//! the cost to a JSON entry written first, so a present score entry always
//! has its cost. Failed methods are not cached (they are cheap to fail
//! again and their error may depend on the machine).

use std::time::Instant;

use serde::{Deserialize, Serialize};
use wellspring_attrib::{AttribError, MethodOptions, ModelSource, methods};
use wellspring_core::{Dataset, ScoreMatrix};
use wellspring_report::CacheKey;

use super::dattri_match::PeakMemory;
use super::{ReproError, RunContext};

/// What computing one score matrix cost, as measured when it was computed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Cost {
    /// Wall time of fit + attribute (s).
    pub seconds: f64,
    /// `(peak RSS MiB, peak − start MiB)` of the process, where measurable.
    pub peak: Option<(f64, f64)>,
}

/// A method's scores and their cost.
#[derive(Debug)]
pub(crate) struct Scored {
    pub scores: ScoreMatrix,
    pub cost: Cost,
    /// Read from the cache (the cost is the computing run's).
    pub cached: bool,
}

/// Fits method `name` with `opts` on `source` and `train` and attributes
/// `test`, or reads the result of an identical earlier run from
/// `ctx.cache`. `key` must identify the model and the data (see the module
/// docs). The outer error is the cache's or the registry's; the inner one
/// the method's own failure to run on this case (a report note, not an
/// abort).
pub(crate) fn attribute_cached(
    ctx: &RunContext,
    key: CacheKey,
    name: &str,
    opts: &MethodOptions,
    source: &ModelSource,
    train: &Dataset,
    test: &Dataset,
) -> Result<Result<Scored, AttribError>, ReproError> {
    let key = key
        .field("method", name)
        .field("options", &format!("{opts:?}"))
        .field("version", env!("CARGO_PKG_VERSION"));
    let cost_key = key.clone().field("part", "cost");
    attribute_cached_keyed(ctx, key, cost_key, name, opts, source, train, test)
}

#[allow(clippy::too_many_arguments)]
fn attribute_cached_keyed(
    ctx: &RunContext,
    key: CacheKey,
    cost_key: CacheKey,
    name: &str,
    opts: &MethodOptions,
    source: &ModelSource,
    train: &Dataset,
    test: &Dataset,
) -> Result<Result<Scored, AttribError>, ReproError> {
    let method = methods::by_name(name, opts)?;
    let mut fresh: Option<Cost> = None;
    let mut failure: Option<AttribError> = None;
    let scores = ctx.cache.get_or_compute_scores(&key, || {
        let mem = PeakMemory::start();
        let t = Instant::now();
        let scores = method
            .fit_dyn(source, train)
            .and_then(|f| f.attribute(test));
        let cost = Cost {
            seconds: t.elapsed().as_secs_f64(),
            peak: mem.finish(),
        };
        match scores {
            Ok(s) => {
                // the cost first: a score entry never lacks its cost
                ctx.cache.remove(&cost_key, "json")?;
                ctx.cache
                    .get_or_compute_json(&cost_key, || Ok::<_, ReproError>(cost))?;
                fresh = Some(cost);
                Ok(s)
            }
            Err(e) => {
                failure = Some(e);
                Err(ReproError::Failed(format!("{name}: not cached")))
            }
        }
    });
    let scores = match (scores, failure) {
        (_, Some(e)) => return Ok(Err(e)),
        (Err(e), None) => return Err(e),
        (Ok(s), None) => s,
    };
    let (cost, cached) = match fresh {
        Some(c) => (c, false),
        None => {
            let c = ctx.cache.get_or_compute_json(&cost_key, || {
                Err::<Cost, _>(ReproError::Failed(String::new()))
            });
            match c {
                Ok(c) => (c, true),
                // scores without their cost (an entry removed by hand):
                // drop them and compute both again
                Err(_) => {
                    ctx.cache.remove(&key, "npy")?;
                    return attribute_cached_keyed(
                        ctx, key, cost_key, name, opts, source, train, test,
                    );
                }
            }
        }
    };
    Ok(Ok(Scored {
        scores,
        cost,
        cached,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repro::tests::ctx;
    use wellspring_core::{Features, Targets};
    use wellspring_models::{Model, ModelConfig};

    fn data(name: &str, n: usize, shift: f32) -> Dataset {
        Dataset::new(
            name,
            Features::Dense {
                values: (0..n * 3)
                    .map(|i| (i as f32 * 0.37 + shift).sin())
                    .collect(),
                shape: vec![3],
            },
            Targets::Classes {
                labels: (0..n).map(|i| i % 2).collect(),
                n_classes: 2,
            },
        )
        .unwrap()
    }

    /// A rerun reads the scores and the first run's cost; a changed test set
    /// (same size and name) misses; an entry whose cost was removed is
    /// recomputed, not trusted.
    #[test]
    fn scores_are_cached_by_content_with_their_cost() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ctx(dir.path());
        let device = super::super::recipes::device();
        let model = Model::new(ModelConfig::LogReg { d_in: 3, n_out: 2 }, 0, &device).unwrap();
        let source = ModelSource::new(model, device);
        let (train, test) = (data("train", 12, 0.0), data("test", 4, 1.0));
        let opts = MethodOptions::new()
            .seed(1)
            .projection(wellspring_attrib::ProjectionSpec::Identity);
        let key = || {
            CacheKey::new("scores-test").field(
                "test",
                &wellspring_core::fingerprint::dataset_fingerprint(&test),
            )
        };
        let first = attribute_cached(&ctx, key(), "grad-dot", &opts, &source, &train, &test)
            .unwrap()
            .unwrap();
        assert!(!first.cached);
        let again = attribute_cached(&ctx, key(), "grad-dot", &opts, &source, &train, &test)
            .unwrap()
            .unwrap();
        assert!(again.cached);
        assert_eq!(again.scores, first.scores);
        assert_eq!(again.cost, first.cost);

        let other = data("test", 4, 2.0);
        let changed = attribute_cached(
            &ctx,
            CacheKey::new("scores-test").field(
                "test",
                &wellspring_core::fingerprint::dataset_fingerprint(&other),
            ),
            "grad-dot",
            &opts,
            &source,
            &train,
            &other,
        )
        .unwrap()
        .unwrap();
        assert!(!changed.cached);
        assert_ne!(changed.scores, first.scores);

        let cost_key = key()
            .field("method", "grad-dot")
            .field("options", &format!("{opts:?}"))
            .field("version", env!("CARGO_PKG_VERSION"))
            .field("part", "cost");
        ctx.cache.remove(&cost_key, "json").unwrap();
        let redone = attribute_cached(&ctx, key(), "grad-dot", &opts, &source, &train, &test)
            .unwrap()
            .unwrap();
        assert!(!redone.cached);
        assert_eq!(redone.scores, first.scores);
    }

    /// A method that cannot run is the inner error and leaves no entry.
    #[test]
    fn failures_are_reported_and_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ctx(dir.path());
        let device = super::super::recipes::device();
        let model = Model::new(ModelConfig::LogReg { d_in: 3, n_out: 2 }, 0, &device).unwrap();
        let source = ModelSource::new(model, device);
        let (train, test) = (data("train", 12, 0.0), data("test", 4, 1.0));
        let opts = MethodOptions::new();
        // tracin-cp needs checkpoints this source does not have
        for _ in 0..2 {
            let r = attribute_cached(
                &ctx,
                CacheKey::new("scores-test"),
                "tracin-cp",
                &opts,
                &source,
                &train,
                &test,
            )
            .unwrap();
            let e = r.unwrap_err().to_string();
            assert!(e.contains("checkpoint"), "{e}");
        }
    }
}
