//! Every selector inside a small epoch-based training loop (host softmax
//! regression on Optdigits, 10% budget): the loop computes what `needs()`
//! asks for, calls `select` when `schedule()` says so, trains on the weighted
//! subset, and the model ends up accurate.

use wellspring_select::{
    Budget, Craig, Crest, Glister, GradMatch, GradMatchMode, GradProxies, ProxyKind, RandE, Random,
    Selector, TrainingState, ValidationState,
};

use crate::common::{C, SoftmaxReg, digits};

fn train_with(selector: &dyn Selector, epochs: usize) -> (f64, usize) {
    let dg = digits();
    let mut model = SoftmaxReg::zeros(dg.d);
    let schedule = selector.schedule();
    let needs = selector.needs();
    let mut current: Option<(Vec<usize>, Vec<f32>)> = None;
    let mut selections = 0;
    for epoch in 0..epochs {
        if schedule.due_at_epoch(epoch) || (current.is_none() && !schedule.in_warm_start(epoch)) {
            let probs = model.probs(&dg.x);
            let proxies = needs.proxies.map(|kind| {
                let feats = (kind == ProxyKind::BiasAndWeights).then_some((dg.x.as_slice(), dg.d));
                GradProxies::last_layer(&probs, &dg.y, C, feats).unwrap()
            });
            let vprobs = model.probs(&dg.xv);
            let mut state = TrainingState::new(&dg.y, C).unwrap().at(epoch, 0);
            if needs.probs {
                state = state.with_probs(&probs).unwrap();
            }
            if let Some(g) = &proxies {
                state = state.with_proxies(g).unwrap();
            }
            if needs.val_probs {
                let val = ValidationState::new(&dg.yv)
                    .with_probs(&vprobs)
                    .with_features(&dg.xv, dg.d);
                state = state.with_validation(val).unwrap();
            }
            let sel = selector
                .select(&state, Budget::Fraction(0.1), epoch as u64)
                .unwrap();
            let w = sel
                .subset
                .weights()
                .map_or_else(|| vec![1.0; sel.subset.len()], <[f32]>::to_vec);
            current = Some((sel.subset.indices().to_vec(), w));
            selections += 1;
        }
        match &current {
            Some((idx, w)) => model.train(&dg.x, &dg.y, idx, w, 0.05, 1, epoch as u64),
            None => {
                let all: Vec<usize> = (0..dg.y.len()).collect();
                model.train(
                    &dg.x,
                    &dg.y,
                    &all,
                    &vec![1.0; all.len()],
                    0.05,
                    1,
                    epoch as u64,
                )
            }
        }
    }
    (model.accuracy(&dg.xt, &dg.yt), selections)
}

#[test]
fn every_selector_trains_an_accurate_model_at_ten_percent() {
    let selectors: Vec<Box<dyn Selector>> = vec![
        Box::new(Random::fixed()),
        Box::new(Random::adaptive(2).unwrap()),
        Box::new(RandE::params().every_epochs(2).check().unwrap()),
        Box::new(Craig::params().every_epochs(2).check().unwrap()),
        Box::new(
            Glister::params()
                .eta(1e-3)
                .per_class(true)
                .every_epochs(2)
                .check()
                .unwrap(),
        ),
        Box::new(GradMatch::params().every_epochs(2).check().unwrap()),
        Box::new(
            GradMatch::params()
                .mode(GradMatchMode::PerBatch { batch_size: 8 })
                .every_epochs(2)
                .warm_start_epochs(1)
                .check()
                .unwrap(),
        ),
        Box::new(
            Crest::params()
                .batch_size(32)
                .random_subset_fraction(0.05)
                .check()
                .unwrap(),
        ),
    ];
    let epochs = 6;
    for s in &selectors {
        let (acc, selections) = train_with(s.as_ref(), epochs);
        let expected = match s.schedule().every() {
            wellspring_select::Every::Once => 1,
            wellspring_select::Every::Epochs(e) => {
                (epochs - s.schedule().warm_start_epochs()).div_ceil(e)
            }
            wellspring_select::Every::Steps(_) => 1,
        };
        assert_eq!(selections, expected, "{}", s.name());
        assert!(acc > 0.8, "{}: test accuracy {acc}", s.name());
    }
}
