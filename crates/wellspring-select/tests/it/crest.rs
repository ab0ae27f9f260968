//! CREST driven step by step by a real (host) training loop.

use wellspring_select::{
    CrestAction, CrestDriver, CrestParams, GradProxies, QuadraticModel, SelectError,
    hutchinson_diagonal, rademacher,
};

use crate::common::{C, SoftmaxReg, digits};

/// Mini-batch size of the loop in [`run`].
const B: usize = 32;

struct Run {
    model: SoftmaxReg,
    actions: Vec<(usize, &'static str)>,
    driver: CrestDriver,
}

fn run(params: CrestParams, steps: usize, steps_per_epoch: usize, lr: f32) -> Run {
    let dg = digits();
    let n = dg.y.len();
    let mut model = SoftmaxReg::zeros(dg.d);
    let mut driver = CrestDriver::new(params, &dg.y, C, steps_per_epoch, 42).unwrap();
    let mut qm: Option<QuadraticModel> = None;
    let mut delta = vec![0.0f32; model.n_params()];
    let mut actions = Vec::new();
    for t in 0..steps {
        loop {
            match driver.next_action(t).unwrap() {
                CrestAction::TrainFull => {
                    actions.push((t, "full"));
                    let idx: Vec<usize> = (0..32).map(|i| (t * 32 + i) * 97 % n).collect();
                    model.sgd_step(&dg.x, &dg.y, &idx, &[1.0; 32], lr);
                    break;
                }
                CrestAction::Select { candidates } => {
                    actions.push((t, "select"));
                    let rows: Vec<f32> = candidates
                        .iter()
                        .flat_map(|&i| dg.x[i * dg.d..(i + 1) * dg.d].to_vec())
                        .collect();
                    let probs = model.probs(&rows);
                    let labels: Vec<usize> = candidates.iter().map(|&i| dg.y[i]).collect();
                    let proxies = GradProxies::last_layer(&probs, &labels, C, None).unwrap();
                    let round = driver.select(&proxies).unwrap();
                    assert_eq!(round.coresets.len(), round.random_sets.len());
                    for (cs, rs) in round.coresets.iter().zip(&round.random_sets) {
                        assert!(
                            cs.iter().all(|i| rs.contains(i)),
                            "coreset outside its random subset"
                        );
                        assert_eq!(cs.len(), B.min(rs.len()));
                    }
                }
                CrestAction::FitQuadratic { coreset } => {
                    actions.push((t, "fit"));
                    let idx = coreset.indices();
                    let w = coreset.weights().unwrap();
                    let (l0, g) = model.loss_grad(&dg.x, &dg.y, idx, w);
                    let probes: Vec<(Vec<f32>, Vec<f32>)> = (0..4)
                        .map(|s| {
                            let z = rademacher(model.n_params(), 1000 * t as u64 + s);
                            let hz = model.hvp(&dg.x, idx, w, &z);
                            (z, hz)
                        })
                        .collect();
                    let refs: Vec<(&[f32], &[f32])> = probes
                        .iter()
                        .map(|(z, hz)| (z.as_slice(), hz.as_slice()))
                        .collect();
                    let h = hutchinson_diagonal(&refs).unwrap();
                    let q = QuadraticModel::new(l0, g, h).unwrap();
                    driver.set_quadratic(q.curvature_norm()).unwrap();
                    qm = Some(q);
                    delta.iter_mut().for_each(|d| *d = 0.0);
                }
                CrestAction::Check { points } => {
                    actions.push((t, "check"));
                    let (l, _) = model.loss_grad(&dg.x, &dg.y, &points, &vec![1.0; points.len()]);
                    let lhat = qm.as_ref().unwrap().predict(&delta).unwrap();
                    let out = driver.check(l, lhat).unwrap();
                    assert_eq!(out.reselect, (l - lhat).abs() > 0.1 * l);
                    assert_eq!(out.step, t);
                }
                CrestAction::Train => {
                    actions.push((t, "train"));
                    let b = driver.next_batch().unwrap();
                    assert!(!b.indices.is_empty() && b.indices.len() <= B);
                    let g = model.sgd_step(&dg.x, &dg.y, &b.indices, &b.weights, lr);
                    for (d, gi) in delta.iter_mut().zip(&g) {
                        *d -= lr * gi;
                    }
                    break;
                }
            }
        }
    }
    Run {
        model,
        actions,
        driver,
    }
}

#[test]
fn crest_loop_trains_a_real_model_and_reselects_when_the_model_is_off() {
    let dg = digits();
    let params = CrestParams::default()
        .batch_size(B)
        .random_subset_fraction(0.05)
        .n_minibatches(3);
    let r = run(params, 200, 10, 0.05);
    // Warm-up for one epoch (10 steps), then a selection at step 10.
    assert!(r.actions[..10].iter().all(|&(_, a)| a == "full"));
    assert_eq!(r.actions[10], (10, "select"));
    assert_eq!(r.actions[11], (10, "fit"));
    assert_eq!(r.actions[12], (10, "train"));
    // Each step ends in exactly one training action.
    let trains = r
        .actions
        .iter()
        .filter(|(_, a)| *a == "train" || *a == "full")
        .count();
    assert_eq!(trains, 200);
    // A check that fails is followed by a selection at the same step.
    for w in r.actions.windows(2) {
        if w[1].1 == "select" && w[1].0 > 10 {
            assert_eq!(
                w[0],
                (w[1].0, "check"),
                "reselection not triggered by a check"
            );
        }
    }
    let checks = r.driver.checks();
    assert!(!checks.is_empty());
    let fails = checks.iter().filter(|c| c.reselect).count();
    assert_eq!(r.driver.selections(), 1 + fails);
    assert!(
        r.driver.selections() >= 2,
        "the quadratic model never went off"
    );
    let acc = r.model.accuracy(&dg.xt, &dg.yt);
    assert!(acc > 0.85, "test accuracy {acc}");
}

#[test]
fn driver_rejects_out_of_order_calls() {
    let dg = digits();
    let params = CrestParams::default().batch_size(8).first_selection_step(0);
    let mut d = CrestDriver::new(params, &dg.y, C, 5, 0).unwrap();
    let e = d.next_batch().unwrap_err();
    assert!(
        matches!(
            e,
            SelectError::OutOfOrder {
                call: "next_batch",
                ..
            }
        ),
        "{e}"
    );
    let CrestAction::Select { candidates } = d.next_action(0).unwrap() else {
        panic!("first action selects")
    };
    assert!(matches!(
        d.set_quadratic(1.0),
        Err(SelectError::OutOfOrder { .. })
    ));
    assert!(matches!(
        d.check(1.0, 1.0),
        Err(SelectError::OutOfOrder { .. })
    ));
    let wrong = GradProxies::last_layer(&[0.1; 10], &[0], C, None).unwrap();
    let e = d.select(&wrong).unwrap_err().to_string();
    assert!(e.contains(&format!("{} rows", candidates.len())), "{e}");
    // The failed call leaves the driver waiting for the same selection.
    assert_eq!(
        d.next_action(0).unwrap(),
        CrestAction::Select {
            candidates: candidates.clone()
        }
    );
    let probs = vec![0.1f32; candidates.len() * C];
    let labels: Vec<usize> = candidates.iter().map(|&i| dg.y[i]).collect();
    d.select(&GradProxies::last_layer(&probs, &labels, C, None).unwrap())
        .unwrap();
    assert!(matches!(
        d.next_action(0).unwrap(),
        CrestAction::FitQuadratic { .. }
    ));
    d.set_quadratic(2.0).unwrap();
    assert_eq!(d.next_action(0).unwrap(), CrestAction::Train);
    assert_eq!(d.next_batch().unwrap().indices.len(), 8);
    assert!(d.next_action(1).is_ok());
    let e = d.next_action(0).unwrap_err().to_string();
    assert!(e.contains("step 0 comes after step 1"), "{e}");
    assert!(CrestDriver::new(CrestParams::default().tau(0.0), &dg.y, C, 5, 0).is_err());
    assert!(QuadraticModel::new(0.0, vec![1.0], vec![]).is_err());
    let q = QuadraticModel::new(1.0, vec![2.0, 0.0], vec![4.0, 2.0]).unwrap();
    assert_eq!(q.predict(&[1.0, 1.0]).unwrap(), 1.0 + 2.0 + 0.5 * 6.0);
    assert!(q.predict(&[1.0]).is_err());
}
