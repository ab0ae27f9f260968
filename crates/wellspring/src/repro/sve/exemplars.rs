//! Shared machinery of the SVE attribution targets (`sve-table1`,
//! `sve-table2`, `sve-fig7`, `sve-fig1`; Mahmood, Yin & Khanna 2025, §4.1,
//! §4.2, §5.1.3, §3.1): the five attribution methods of the paper (PAE, Emb,
//! TracIn, RPS, IF) resolved against the registry, trained models on CPU
//! stand-in datasets, and cached top-`k` lists / self-influence vectors, so a
//! model or score computed for one table is reused by the next.
//!
//! Only the top-`k` training points of every test point are kept (never the
//! full `n_train × n_test` matrix), computed test block by test block.

use std::sync::OnceLock;

use wellspring_attrib::{FittedAttributor, MethodOptions, ModelSource, ProjectionSpec, methods};
use wellspring_core::{Dataset, Features};
use wellspring_data::sample;
use wellspring_models::{Model, ModelConfig, TrainConfig, evaluate, features, predict_logits};
use wellspring_report::{CacheKey, Report};

use crate::repro::method::{Layers, MethodSpec};
use crate::repro::recipes::{
    FMNIST_MLP, MNIST_MLP, OPTDIGITS_MLP, Recipe, data_fingerprint, device, load_data, train_cached,
};
use crate::repro::{ReproError, RunContext};

/// Projection of all-layer gradients (full MLP gradients of 60 000 points
/// would not fit in memory): TracIn App. E's Gaussian sketch.
pub(super) const ALL_LAYER_PROJECTION: ProjectionSpec = ProjectionSpec::Gaussian { dim: 512 };

/// PAE (SVE Algorithm 1): −‖softmax(z_i) − softmax(z_j)‖₂.
pub(super) const PAE: MethodSpec = MethodSpec::new("PAE", "pae");
/// Emb: −‖f_i − f_j‖₂ of penultimate features (the SVE code's "Emb").
pub(super) const EMB: MethodSpec = MethodSpec::new("Emb", "emb-dist");
/// TracIn (Pruthi et al. 2020) on the last layer's gradients.
pub(super) const TRACIN: MethodSpec = MethodSpec::new("TracIn", "tracin").head_only();
/// Representer points (Yeh et al. 2018), a last-layer method by construction;
/// the head is refitted to the labels, so `α_i = −∂ℓ_i/∂z_i / (2λn)` is the
/// last-layer loss gradient whose sparsity the SVE is about.
pub(super) const RPS: MethodSpec = MethodSpec::new("RPS", "rps").params(&[("target", "labels")]);
/// Influence functions (Koh & Liang 2017) on the last layer: the explicit
/// damped Hessian (small there), else conjugate gradients.
pub(super) const IF: MethodSpec = MethodSpec::new("IF", "if-explicit").or("if-cg").head_only();
/// TracIn over all layers (the non-last-layer contrast of Figure 1).
pub(super) const TRACIN_ALL: MethodSpec = MethodSpec::new("TracIn (all layers)", "tracin");

/// The methods of Tables 1–2 and Figure 7, in the paper's order.
pub(super) const METHODS: [MethodSpec; 5] = [PAE, EMB, TRACIN, RPS, IF];

/// A method resolved against the registry: the name and options to build it
/// with, or why it cannot run here.
#[derive(Clone, Debug)]
pub(super) enum Resolved {
    /// Build `name` with `options`; `detail` says how (e.g. "if-explicit, layers=head").
    Ready {
        /// Registry name.
        name: &'static str,
        /// Options (seed, layer restriction).
        options: MethodOptions,
        /// How the method was set up, for the report.
        detail: String,
        /// Run on the head view: the last layer as a logistic regression on
        /// the penultimate features (exactly the last-layer gradients).
        on_head: bool,
    },
    /// Not registered (yet) or cannot be restricted as the paper needs.
    Unavailable(String),
}

/// Resolves `m` against the registry with seed `seed`: the first of its
/// names that builds, restricted to the last layer through the method's
/// layer parameter or, without one, on the head view.
pub(super) fn resolve(m: MethodSpec, seed: u64) -> Resolved {
    let mut why = Vec::new();
    for name in m.names() {
        let Ok(info) = methods::info(name) else {
            why.push(format!("{name} not yet available"));
            continue;
        };
        let mut options = MethodOptions::new().seed(seed);
        let mut detail = name.to_string();
        let mut on_head = false;
        for (k, v) in m.params {
            options = options.param(*k, *v);
            detail = format!("{detail}, {k}={v}");
        }
        match (m.layers, info.caps.layer_param) {
            (Layers::Head, Some(key)) => {
                options = options.param(key, "head");
                detail = format!("{detail}, {key}=head");
            }
            (Layers::Head, None) => {
                // The head is small: exact gradients, no projection.
                on_head = true;
                options = options.projection(ProjectionSpec::Identity);
                detail = format!(
                    "{detail} on the head (softmax regression on the penultimate \
                     features with the trained last layer's weights), no projection"
                );
            }
            (Layers::All, _) if info.uses_gradients => {
                options = options.projection(ALL_LAYER_PROJECTION);
                detail = format!("{detail}, all layers, projection {ALL_LAYER_PROJECTION}");
            }
            (Layers::All, _) => {}
        }
        match methods::by_name(name, &options) {
            Ok(_) => {
                return Resolved::Ready {
                    name,
                    options,
                    detail,
                    on_head,
                };
            }
            Err(e) => why.push(format!("{name}: {e}")),
        }
    }
    Resolved::Unavailable(why.join("; "))
}

/// A trained model with everything that identifies it (for cache keys).
pub(super) struct Trained {
    /// Tag (`mnist-mlp`, `mnist-mlp+flip1%`, ...).
    pub tag: String,
    /// Training set the model was trained on.
    pub train: Dataset,
    /// Test set (possibly a first-n slice in quick mode).
    pub test: Dataset,
    /// The model.
    pub model: Model,
    /// Its architecture.
    pub config: ModelConfig,
    /// Its training settings.
    pub train_config: TrainConfig,
    /// Model init seed.
    pub seed: u64,
    /// Test accuracy (%).
    pub accuracy: f64,
    /// The head view, built on first use.
    head: OnceLock<HeadView>,
}

/// The last layer as a model of its own: a softmax regression with the
/// trained head's weights, on the penultimate features of train and test.
/// Gradient methods run on it see exactly the last layer's gradients.
struct HeadView {
    model: Model,
    train: Dataset,
    test: Dataset,
}

/// Test points used in quick mode.
pub(super) const QUICK_TEST: usize = 500;

/// The datasets of Tables 1–2 with the paper row each stands in for:
/// quick mode keeps the embedded ones (MNIST, Optdigits).
pub(super) fn datasets(ctx: &RunContext) -> Vec<(&'static Recipe, &'static str)> {
    let all: [(&'static Recipe, &'static str); 3] = [
        (&MNIST_MLP, "MNIST"),
        (&FMNIST_MLP, "CIFAR-10"),
        (&OPTDIGITS_MLP, "CIFAR-100"),
    ];
    all.into_iter()
        .filter(|(r, _)| !ctx.quick || r.dataset != FMNIST_MLP.dataset)
        .collect()
}

/// The recipe's data (test set cut to [`QUICK_TEST`] in quick mode).
pub(super) fn split_for(ctx: &RunContext, r: &Recipe) -> Result<(Dataset, Dataset), ReproError> {
    let split = load_data(ctx, r)?;
    let test = if ctx.quick && split.test.len() > QUICK_TEST {
        sample::first_n(&split.test, QUICK_TEST)?
    } else {
        split.test
    };
    Ok((split.train, test))
}

/// Trains (or loads) `r`'s model on `train`, tagged `tag`.
pub(super) fn train_on(
    ctx: &RunContext,
    r: &Recipe,
    tag: &str,
    train: Dataset,
    test: Dataset,
) -> Result<Trained, ReproError> {
    let seed = ctx.seed_for("sve-exemplars.model");
    let config = r.model_config(&train)?;
    let train_config = r.train_config(ctx.quick, seed);
    let (model, _) = train_cached(ctx, tag, &train, &config, &train_config, seed)?;
    let accuracy = 100.0
        * evaluate(&model, &test, &device())?
            .accuracy()
            .expect("classification recipe");
    Ok(Trained {
        tag: tag.to_string(),
        train,
        test,
        model,
        config,
        train_config,
        seed,
        accuracy,
        head: OnceLock::new(),
    })
}

/// The clean model of a recipe (shared by Tables 1–2 and Figure 1).
pub(super) fn clean(ctx: &RunContext, r: &Recipe) -> Result<Trained, ReproError> {
    let (train, test) = split_for(ctx, r)?;
    train_on(ctx, r, r.name, train, test)
}

impl Trained {
    fn key(&self, namespace: &str, method: &str, options: &MethodOptions) -> CacheKey {
        CacheKey::new(namespace)
            .field("tag", &self.tag)
            .field("train", &data_fingerprint(&self.train))
            .field("test", &data_fingerprint(&self.test))
            .field("model", &self.config)
            .field("train_config", &self.train_config)
            .field("init_seed", &self.seed)
            .field("method", method)
            .field("seed", &options.seed)
            .field("params", &options.params)
            .field("version", env!("CARGO_PKG_VERSION"))
    }

    fn head_view(&self) -> Result<&HeadView, ReproError> {
        if let Some(h) = self.head.get() {
            return Ok(h);
        }
        let dev = device();
        let layers = self.model.param_layers();
        let head = layers.last().expect("a model has a head");
        let d = self.model.feature_dim();
        let c = self.model.n_outputs();
        let mut model = Model::new(ModelConfig::LogReg { d_in: d, n_out: c }, self.seed, &dev)?;
        let flat = self.model.params_flat();
        model.set_params_flat(&flat[head.offset..head.offset + head.len])?;
        let view = |ds: &Dataset| -> Result<Dataset, ReproError> {
            let values = features(&self.model, ds, &dev)?;
            Ok(ds.with_features(Features::Dense {
                values,
                shape: vec![d],
            })?)
        };
        let (train, test) = (view(&self.train)?, view(&self.test)?);
        // The head view must reproduce the network's logits.
        let probe = sample::first_n(&self.test, self.test.len().min(64))?;
        let a = predict_logits(&self.model, &probe, &dev)?;
        let b = predict_logits(&model, &sample::first_n(&test, probe.len())?, &dev)?;
        let gap = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        if gap > 1e-3 * (1.0 + a.iter().map(|x| x.abs()).fold(0.0f32, f32::max)) {
            return Err(ReproError::Failed(format!(
                "head view of {} differs from the network's logits by {gap}",
                self.tag
            )));
        }
        let _ = self.head.set(HeadView { model, train, test });
        Ok(self.head.get().expect("just set"))
    }

    fn fit(
        &self,
        name: &str,
        options: &MethodOptions,
        train: &Dataset,
        on_head: bool,
    ) -> Result<Box<dyn FittedAttributor>, ReproError> {
        let model = if on_head {
            self.head_view()?.model.clone()
        } else {
            self.model.clone()
        };
        let source = ModelSource::new(model, device()).with_train_config(self.train_config.clone());
        Ok(methods::by_name(name, options)?.fit_dyn(&source, train)?)
    }

    /// The top-`k` training points (best first) of every test point under
    /// method `name`, cached.
    pub fn top_k(
        &self,
        ctx: &RunContext,
        res: &Resolved,
        k: usize,
    ) -> Result<Vec<Vec<u32>>, ReproError> {
        let Resolved::Ready {
            name,
            options,
            on_head,
            ..
        } = res
        else {
            return Err(ReproError::Failed("top_k of an unavailable method".into()));
        };
        let (name, on_head) = (*name, *on_head);
        let mut key = self.key("sve-topk", name, options).field("k", &k);
        if on_head {
            key = key.field("on_head", &true);
        }
        ctx.cache.get_or_compute_json(&key, || {
            let (train, test) = if on_head {
                let h = self.head_view()?;
                (&h.train, &h.test)
            } else {
                (&self.train, &self.test)
            };
            let fitted = self.fit(name, options, train, on_head)?;
            // Blocks of ≤ 64 MiB of scores.
            let chunk = ((16 << 20) / self.train.len().max(1)).clamp(1, self.test.len());
            let bar = ctx
                .progress
                .bar(self.test.len() as u64, format!("{name} on {}", self.tag));
            let mut out = Vec::with_capacity(self.test.len());
            let mut j0 = 0;
            while j0 < self.test.len() {
                let idx: Vec<usize> = (j0..(j0 + chunk).min(self.test.len())).collect();
                let part = test.select(&idx)?;
                let s = fitted.attribute(&part)?;
                out.extend(
                    s.top_k_all(k)
                        .into_iter()
                        .map(|v| v.into_iter().map(|i| i as u32).collect::<Vec<u32>>()),
                );
                j0 += idx.len();
                bar.set_position(j0 as u64);
            }
            bar.finish_and_clear();
            Ok(out)
        })
    }

    /// Self-influence of the first `n` training points under method `name`
    /// (fitted on those points), cached.
    pub fn self_influence(
        &self,
        ctx: &RunContext,
        res: &Resolved,
        n: usize,
    ) -> Result<Vec<f32>, ReproError> {
        let Resolved::Ready {
            name,
            options,
            on_head,
            ..
        } = res
        else {
            return Err(ReproError::Failed(
                "self-influence of an unavailable method".into(),
            ));
        };
        let (name, on_head) = (*name, *on_head);
        let n = n.min(self.train.len());
        let mut key = self.key("sve-self", name, options).field("n", &n);
        if on_head {
            key = key.field("on_head", &true);
        }
        ctx.cache.get_or_compute_json(&key, || {
            let full = if on_head {
                &self.head_view()?.train
            } else {
                &self.train
            };
            let train = sample::first_n(full, n)?;
            let fitted = self.fit(name, options, &train, on_head)?;
            Ok(fitted.self_attribute()?)
        })
    }

    /// Test points per class (the paper's `r`: 1000 for MNIST's 10 000 test points).
    pub fn per_class(&self) -> usize {
        let c = self.test.n_classes().unwrap_or(1).max(1);
        (self.test.len() / c).max(1)
    }
}

/// Adds each method's setup (or why it was skipped) to the report.
pub(super) fn method_settings(mut report: Report, resolved: &[Resolved]) -> Report {
    for (m, r) in METHODS.iter().zip(resolved) {
        report = match r {
            Resolved::Ready { detail, .. } => {
                report.setting(format!("method.{}", m.label), detail.clone())
            }
            Resolved::Unavailable(why) => report
                .setting(format!("method.{}", m.label), "not yet available")
                .note(format!(
                    "{}: not yet available ({why}); its column is n/a.",
                    m.label
                )),
        };
    }
    report
}

/// How often each training point appears among the first `k` entries of the
/// top-`k` lists (SVE eq. 4's `count(x_i, D_test, I, k)`).
pub(super) fn counts(lists: &[Vec<u32>], k: usize, n_train: usize) -> Vec<usize> {
    let mut c = vec![0usize; n_train];
    for l in lists {
        for &i in l.iter().take(k) {
            c[i as usize] += 1;
        }
    }
    c
}

/// The exemplar set `S_ex^{r,k} = {x_i : count(x_i, D_test, I, k) ≥ r}`
/// (SVE eq. 4), as sorted training indices.
pub(super) fn exemplars(lists: &[Vec<u32>], k: usize, r: usize, n_train: usize) -> Vec<usize> {
    counts(lists, k, n_train)
        .iter()
        .enumerate()
        .filter(|(_, c)| **c >= r)
        .map(|(i, _)| i)
        .collect()
}

/// Names the CPU stand-ins, for the report notes.
pub(super) fn stand_in_note(quick: bool) -> String {
    let mut s = String::from(
        "CPU stand-ins: MNIST with dattri's 784-128-64-10 MLP stands in for the paper's MNIST \
         model, Fashion-MNIST with the same MLP for CIFAR-10 (ResNet), UCI Optdigits with a \
         64-128-64-10 MLP for CIFAR-100 (ResNet; 10 classes instead of 100, so its counts are \
         not on the paper's scale). r scales with the test points per class, as in the paper \
         (r = 1000 for MNIST's 10 000 test points).",
    );
    if quick {
        s.push_str(&format!(
            " Quick mode: first 5000 MNIST training points, 2 epochs, first {QUICK_TEST} test \
             points, Fashion-MNIST skipped; numbers are a smoke test, not the reproduction."
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use wellspring_core::ScoreMatrix;
    use wellspring_eval::ExemplarCount;

    #[test]
    fn counts_match_eval_exemplar_count() {
        // 6 train x 4 test scores with ties broken towards the lower index.
        let s = ScoreMatrix::from_vec(
            6,
            4,
            vec![
                0.1, 0.9, 0.5, 0.0, //
                0.8, 0.8, 0.5, 0.3, //
                0.9, 0.1, 0.4, 0.9, //
                0.0, 0.0, 0.0, 0.8, //
                0.2, 0.7, 0.9, 0.1, //
                0.3, 0.2, 0.1, 0.2,
            ],
        )
        .unwrap();
        let lists: Vec<Vec<u32>> = s
            .top_k_all(3)
            .into_iter()
            .map(|v| v.into_iter().map(|i| i as u32).collect())
            .collect();
        for k in 1..=3 {
            for r in 1..=4 {
                let want = ExemplarCount::new(k, r).count(&s, None).unwrap();
                let mut want_ex = want.exemplars.clone();
                want_ex.sort_unstable();
                assert_eq!(exemplars(&lists, k, r, 6), want_ex, "k={k} r={r}");
            }
        }
        assert_eq!(counts(&lists, 1, 6), vec![1, 0, 2, 0, 1, 0]);
    }

    #[test]
    fn resolve_finds_registered_methods_and_reports_missing_ones() {
        for m in [PAE, EMB, RPS] {
            assert!(
                matches!(resolve(m, 0), Resolved::Ready { .. }),
                "{}",
                m.label
            );
        }
        let fake = MethodSpec::new("X", "no-such-method").head_only();
        match resolve(fake, 0) {
            Resolved::Unavailable(why) => assert!(why.contains("not yet available"), "{why}"),
            Resolved::Ready { .. } => panic!("resolved an unknown method"),
        }
    }
}
