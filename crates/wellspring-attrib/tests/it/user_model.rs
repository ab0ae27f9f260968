//! Attributing models defined outside the zoo: K-FAC / EK-FAC with per-token
//! factors against their formulas computed directly on the host, every
//! gradient method and TRAK's ensemble on a user transformer, and LDS through
//! a user-supplied train-on-subset closure.

// index loops mirror the formulas being checked
#![allow(clippy::needless_range_loop)]

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use nalgebra::{DMatrix, DVector, SymmetricEigen};
use wellspring_attrib::methods::kfac_family::KfacInfluenceParams;
use wellspring_attrib::methods::trak::{EnsembleParams, TrakParams, train_ensemble};
use wellspring_attrib::{Attributor, FittedAttributor, MethodOptions, ModelSource, by_name};
use wellspring_core::{Dataset, Features, Subset, Targets};
use wellspring_eval::{EvalContext, Lds, Metric, SubsetRetrainer};
use wellspring_grad::{KfacLabels, KfacParams};
use wellspring_models::init::reinit_seeded;
use wellspring_models::zoo::{TransformerClassifier, TransformerConfig};
use wellspring_models::{
    AnyModel, Attributable, Input, Loss, ModelOutput, Optimizer, Tracker, TrainConfig,
    fit_attributable,
};

use super::cpu;

/// Token embeddings, a per-token Linear, then the mean over tokens:
/// `z_i = (1/T_i) Σ_t (E[id_it] W + b)`.
#[derive(Module, Debug)]
struct MeanLinear {
    emb: Embedding,
    fc: Linear,
}

impl Attributable for MeanLinear {
    fn forward_tracked(
        &self,
        input: &Input,
        t: &mut Tracker<'_>,
    ) -> wellspring_models::Result<ModelOutput> {
        let (ids, mask) = input.token_tensors("MeanLinear")?;
        let [b, len] = ids.dims();
        let e = t.embedding(&self.emb, ids);
        let z = t.linear(&self.fc, e);
        let c = z.dims()[2];
        let count = mask.clone().sum_dim(1).clamp_min(1.0);
        let pooled = (z * mask.reshape([b, len, 1])).sum_dim(1).reshape([b, c]) / count;
        Ok(ModelOutput::flat(pooled))
    }
}

const V: usize = 7;
const D: usize = 3;
const C: usize = 3;

fn token_data(n: usize, salt: usize) -> Dataset {
    let mut ids = Vec::new();
    let mut offsets = vec![0];
    for i in 0..n {
        for t in 0..(1 + (i + salt) % 4) {
            ids.push(((i * 5 + t * 3 + salt) % V) as u32);
        }
        offsets.push(ids.len());
    }
    Dataset::new(
        format!("tokens-{salt}"),
        Features::Tokens {
            ids,
            offsets,
            vocab_size: V,
        },
        Targets::Classes {
            labels: (0..n).map(|i| (i + salt) % C).collect(),
            n_classes: C,
        },
    )
    .unwrap()
}

fn mean_linear() -> AnyModel {
    let dev = cpu();
    AnyModel::new(reinit_seeded(
        MeanLinear {
            emb: EmbeddingConfig::new(V, D).init(&dev),
            fc: LinearConfig::new(D, C).init(&dev),
        },
        11,
    ))
}

/// Host copies of `E` (`V × D`), `W` (`D × C`, burn layout) and `b`.
fn weights(model: &AnyModel) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let flat: Vec<f64> = model.params_flat().iter().map(|&v| v as f64).collect();
    let e = flat[..V * D].to_vec();
    let w = flat[V * D..V * D + D * C].to_vec();
    let b = flat[V * D + D * C..].to_vec();
    (e, w, b)
}

/// Per token of every example: `(example, ā = [E[id]; 1])`.
type TokenInputs = Vec<(usize, Vec<f64>)>;

/// The token inputs and, per example, its softmax `p`.
fn forward_host(model: &AnyModel, data: &Dataset) -> (TokenInputs, Vec<Vec<f64>>) {
    let (e, w, b) = weights(model);
    let mut tokens = Vec::new();
    let mut probs = Vec::new();
    for i in 0..data.len() {
        let row = data.features().token_row(i);
        let mut z = b.clone();
        for &id in row {
            let a = &e[id as usize * D..(id as usize + 1) * D];
            for c in 0..C {
                z[c] += (0..D).map(|k| a[k] * w[k * C + c]).sum::<f64>() / row.len() as f64;
            }
            let mut abar = a.to_vec();
            abar.push(1.0);
            tokens.push((i, abar));
        }
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let ex: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = ex.iter().sum();
        probs.push(ex.iter().map(|v| v / s).collect());
    }
    (tokens, probs)
}

/// Per-example loss gradients of the Linear layer (`vec` of the `(D+1) × C`
/// matrix `Σ_t ā_t δ_tᵀ`, `δ_t = (p − e_y)/T`), rows of the result.
fn linear_grads(model: &AnyModel, data: &Dataset, labels: &[usize]) -> DMatrix<f64> {
    let (tokens, probs) = forward_host(model, data);
    let k = (D + 1) * C;
    let mut g = DMatrix::<f64>::zeros(data.len(), k);
    for (i, abar) in &tokens {
        let t = data.features().token_row(*i).len() as f64;
        for r in 0..=D {
            for c in 0..C {
                let delta = (probs[*i][c] - if c == labels[*i] { 1.0 } else { 0.0 }) / t;
                g[(*i, r * C + c)] += abar[r] * delta;
            }
        }
    }
    g
}

#[test]
fn kfac_and_ekfac_with_per_token_factors_match_their_formulas_on_a_user_model() {
    let model = mean_linear();
    let (train, test) = (token_data(24, 0), token_data(6, 1));
    let seed = 3;
    // the factors the library fits, with the labels it samples
    let kfac = KfacParams::new()
        .labels(KfacLabels::Sampled { seed })
        .fit(&model, &train, 0..train.len(), &cpu())
        .unwrap();
    assert_eq!(
        kfac.skipped,
        ["emb"],
        "the embedding has no Kronecker factors"
    );
    let f = &kfac.factors[0];
    let sampled = kfac.sampled.clone().unwrap();
    // A = (1/N) Σ_i Σ_t ā ā ᵀ, S = (1/#tokens) Σ_i Σ_t δ δᵀ with sampled labels
    let (tokens, probs) = forward_host(&model, &train);
    let mut a = DMatrix::<f64>::zeros(D + 1, D + 1);
    let mut s = DMatrix::<f64>::zeros(C, C);
    for (i, abar) in &tokens {
        let av = DVector::from_column_slice(abar);
        a += &av * av.transpose();
        let t = train.features().token_row(*i).len() as f64;
        let d = DVector::from_fn(C, |c, _| {
            (probs[*i][c] - if c == sampled[*i] { 1.0 } else { 0.0 }) / t
        });
        s += &d * d.transpose();
    }
    a /= train.len() as f64;
    s /= tokens.len() as f64;
    assert!((&f.a - &a).abs().max() < 1e-5, "A factor");
    assert!((&f.s - &s).abs().max() < 1e-6, "S factor");

    let source = ModelSource::new(model.clone(), cpu());
    let gtr = linear_grads(&model, &train, train.labels().unwrap());
    let gte = linear_grads(&model, &test, test.labels().unwrap());
    let close = |got: &wellspring_core::ScoreMatrix, want: &DMatrix<f64>, what: &str| {
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(scale > 0.0, "{what}: nonzero scores");
        for i in 0..got.n_train() {
            for j in 0..got.n_test() {
                let (x, y) = (got.get(i, j) as f64, want[(j, i)]);
                assert!(
                    (x - y).abs() <= 2e-3 * scale,
                    "{what} ({i}, {j}): {x} vs {y}"
                );
            }
        }
    };
    // K-FAC: g_testᵀ (A ⊗ S + λI)⁻¹ g_train, basis-free.
    let kf = KfacInfluenceParams::new(false)
        .seed(seed)
        .fit(&source, &train)
        .unwrap();
    let mut m = a.kronecker(&s);
    for d in 0..m.nrows() {
        m[(d, d)] += kf.lambda();
    }
    let want = &gte * m.try_inverse().unwrap() * gtr.transpose();
    close(&kf.attribute(&test).unwrap(), &want, "kfac");
    // EK-FAC: eigenbasis of A ⊗ S, eigenvalues = mean squared rotated
    // sampled-label gradients.
    let ek = KfacInfluenceParams::new(true)
        .seed(seed)
        .fit(&source, &train)
        .unwrap();
    let q = SymmetricEigen::new(a.clone())
        .eigenvectors
        .kronecker(&SymmetricEigen::new(s.clone()).eigenvectors);
    let rs = linear_grads(&model, &train, &sampled) * &q;
    let lam: Vec<f64> = (0..rs.ncols())
        .map(|j| rs.column(j).norm_squared() / rs.nrows() as f64)
        .collect();
    let inv = DMatrix::from_diagonal(&DVector::from_iterator(
        lam.len(),
        lam.iter().map(|l| 1.0 / (l + ek.lambda())),
    ));
    let want = (&gte * &q) * inv * (&gtr * &q).transpose();
    close(&ek.attribute(&test).unwrap(), &want, "ekfac");
}

fn tiny_transformer() -> TransformerConfig {
    TransformerConfig {
        vocab: V,
        max_len: 6,
        d_model: 8,
        n_heads: 2,
        d_ff: 8,
        n_layers: 1,
    }
}

fn train_cfg() -> TrainConfig {
    TrainConfig::params()
        .epochs(3)
        .batch_size(8)
        .optimizer(Optimizer::adam())
        .lr(0.01)
        .loss(Loss::CrossEntropy)
        .check()
        .unwrap()
}

/// Trains a fresh tiny transformer classifier on a subset (the user's closure).
fn trainer(train: &Dataset, subset: &Subset, seed: u64) -> wellspring_models::Result<AnyModel> {
    let dev = cpu();
    let model = TransformerClassifier::new(&tiny_transformer(), C, seed, &dev)?;
    let mut cfg = train_cfg();
    cfg.seed = seed;
    let (m, _) = fit_attributable(model, train, Some(subset), &cfg, &dev)?;
    Ok(AnyModel::new(m))
}

#[test]
fn every_gradient_method_attributes_a_user_transformer() {
    let (train, test) = (token_data(30, 0), token_data(5, 1));
    let model = trainer(&train, &Subset::all(train.len()), 1).unwrap();
    let source = ModelSource::new(model, cpu()).with_trainer(trainer);
    for name in [
        "grad-dot",
        "grad-cos",
        "tracin",
        "if-cg",
        "if-lissa",
        "if-explicit",
        "kfac",
        "ekfac",
        "datainf",
        "trak",
    ] {
        let opts = MethodOptions::default();
        let method = by_name(name, &opts).unwrap();
        let fitted = method
            .fit_dyn(&source, &train)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let s = fitted.attribute(&test).unwrap();
        assert_eq!(s.shape(), (train.len(), test.len()), "{name}");
        assert!(s.check_finite().is_ok(), "{name}: finite");
        assert!(
            s.as_slice().iter().any(|v| *v != 0.0),
            "{name}: not all zero"
        );
    }
    // TRAK's ensemble of user models comes from the trainer closure.
    let models = train_ensemble(&source, &train, &EnsembleParams::new(2).seed(4), None).unwrap();
    let source = source.with_ensemble(models);
    let trak = TrakParams::new().models(2).fit(&source, &train).unwrap();
    assert!(trak.attribute(&test).unwrap().check_finite().is_ok());
}

#[test]
fn lds_of_a_user_model_retrains_through_its_closure() {
    let (train, test) = (token_data(24, 0), token_data(4, 1));
    let model = trainer(&train, &Subset::all(train.len()), 1).unwrap();
    let source = ModelSource::new(model, cpu());
    let opts = MethodOptions::default();
    let scores = by_name("grad-dot", &opts)
        .unwrap()
        .fit_dyn(&source, &train)
        .unwrap()
        .attribute(&test)
        .unwrap();
    let retrainer = SubsetRetrainer::new(&train, &test, trainer, Loss::CrossEntropy, &cpu())
        .unwrap()
        .with_progress(wellspring_report::Progress::hidden());
    let ctx = EvalContext::new().with_retrainer(&retrainer);
    let lds = Lds::params().m(4).seed(2);
    let r = lds.evaluate(&scores, &ctx).unwrap();
    assert_eq!(r.per_test.len(), test.len());
    let mean = r.summary.mean;
    assert!(mean.is_finite() && (-1.0..=1.0).contains(&mean), "{r:?}");
}
