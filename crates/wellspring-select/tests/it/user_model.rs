//! Selection from a model defined outside the zoo: the selector inputs
//! (probabilities, last-layer gradient proxies, validation quantities) come
//! from any attributable classifier.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use wellspring_data::{DatasetName, LoadOptions, load};
use wellspring_models::burn_types::Device;
use wellspring_models::init::reinit_seeded;
use wellspring_models::{
    AnyModel, Attributable, Input, ModelOutput, Optimizer, Tracker, TrainConfig, fit_attributable,
};
use wellspring_select::{Budget, GradMatch, RandE, Selector, select_with_model};

#[derive(Module, Debug)]
struct Mlp {
    fc: Linear,
    head: Linear,
}

impl Attributable for Mlp {
    fn forward_tracked(
        &self,
        input: &Input,
        t: &mut Tracker<'_>,
    ) -> wellspring_models::Result<ModelOutput> {
        let h = relu(t.linear(&self.fc, input.flat_tensor("Mlp")?));
        Ok(ModelOutput::flat(t.linear(&self.head, h.clone())).with_features(h))
    }
}

#[test]
fn selectors_run_on_a_user_model() {
    let dev = Device::flex();
    let split = load(DatasetName::Optdigits, &LoadOptions::new()).expect("embedded optdigits");
    let train = &split.train;
    let model = reinit_seeded(
        Mlp {
            fc: LinearConfig::new(64, 16).init(&dev),
            head: LinearConfig::new(16, 10).init(&dev),
        },
        3,
    );
    let cfg = TrainConfig::params()
        .epochs(2)
        .batch_size(64)
        .optimizer(Optimizer::adam())
        .lr(0.01)
        .check()
        .unwrap();
    let (model, history) = fit_attributable(model, train, None, &cfg, &dev).unwrap();
    assert!(history[1].train_loss < history[0].train_loss, "{history:?}");
    let model = AnyModel::new(model);
    let budget = Budget::Fraction(0.1);
    let rande = RandE::params().check().unwrap();
    let gradmatch = GradMatch::params().check().unwrap();
    for selector in [&rande as &dyn Selector, &gradmatch] {
        let (sel, _) =
            select_with_model(&model, train, None, selector, budget, &dev, 5, (0, 0)).unwrap();
        let want = (train.len() as f64 * 0.1).round() as usize;
        assert!(
            sel.subset.len().abs_diff(want) <= 10,
            "{}: {} of {want}",
            selector.name(),
            sel.subset.len()
        );
        sel.subset.check(train.len()).unwrap();
    }
}
