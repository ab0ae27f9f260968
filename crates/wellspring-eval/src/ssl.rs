//! SimCLR encoders (trained by [`wellspring_models::SimClr`]) stored in the
//! harness cache, so a brittleness run that needs the same self-supervised
//! features twice trains them once.

use wellspring_core::Dataset;
use wellspring_models::burn_types::Device;
use wellspring_models::{Model, SimClr, SimClrFit};
use wellspring_report::{Cache, CacheKey};

use crate::error::{EvalError, Result};
use crate::model::{HARNESS_FORMAT, data_fingerprint, model_err};

/// [`SimClr::fit`] through the harness cache.
pub trait CachedSimClr {
    /// [`SimClr::fit`], with the encoder stored in (or loaded from) `cache`
    /// under a key of the data fingerprint, the settings, the device and the
    /// crate version. A loaded fit has no projection.
    fn fit_cached(&self, data: &Dataset, device: &Device, cache: &Cache) -> Result<SimClrFit>;
}

impl CachedSimClr for SimClr {
    fn fit_cached(&self, data: &Dataset, device: &Device, cache: &Cache) -> Result<SimClrFit> {
        self.check().map_err(model_err("SimCLR settings"))?;
        let key = CacheKey::new("ssl-encoder")
            .field("format", &HARNESS_FORMAT)
            .field("version", env!("CARGO_PKG_VERSION"))
            .field("data", &data_fingerprint(data))
            .field("simclr", self)
            .field("device", &format!("{device:?}"));
        let history_key = key.clone().field("what", "history");
        let mut fresh = None;
        let path = cache.get_or_create_file(&key, "bpk", |tmp| -> Result<()> {
            let fit = self
                .fit(data, device)
                .map_err(model_err("SimCLR training"))?;
            fit.encoder
                .save(tmp)
                .map_err(model_err("saving the SimCLR encoder"))?;
            fresh = Some(fit);
            Ok(())
        })?;
        if let Some(fit) = fresh {
            let h = fit.history.clone();
            cache.get_or_compute_json(&history_key, || Ok::<_, EvalError>(h))?;
            return Ok(fit);
        }
        let encoder =
            Model::load(&path, device).map_err(model_err("loading the SimCLR encoder"))?;
        let history = if cache.contains(&history_key, "json")? {
            cache.get_or_compute_json(&history_key, || Ok::<_, EvalError>(Vec::new()))?
        } else {
            Vec::new()
        };
        Ok(SimClrFit {
            encoder,
            projection: None,
            history,
            from_cache: true,
        })
    }
}
