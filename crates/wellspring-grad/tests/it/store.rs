//! Gradient store: round trip, resume after interruption, corruption.

use wellspring_grad::{GradEngine, GradError, GradientStore, ProjectionSpec, StoreParams};

use crate::{cpu, small_mlp, synthetic};

#[test]
fn store_round_trips_resumes_and_detects_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grads");
    let model = small_mlp(8, &[6], 3, 1);
    let data = synthetic(23, &[8], 3, 1);
    let engine = GradEngine::params()
        .batch_size(4)
        .build(&model, &cpu())
        .unwrap();
    let spec = ProjectionSpec::Kronecker { dim: 12, seed: 7 };
    let params = StoreParams::new(spec.clone(), 5);
    let want = engine
        .projected_matrix(&data, 0..23, spec.build(engine.layout()).unwrap().as_ref())
        .unwrap();

    // Interrupted after two of five shards.
    let err = params
        .build(&path, &engine, &data, 0..23, |done, total| {
            assert_eq!(total, 5);
            if done == 2 {
                Err(GradError::Callback("simulated crash".into()))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
    assert!(err.to_string().contains("simulated crash"), "{err}");
    let partial = GradientStore::open(&path).unwrap();
    assert_eq!(partial.manifest().shards.len(), 2);
    assert!(!partial.manifest().is_complete());
    assert!(
        partial
            .read_all()
            .unwrap_err()
            .to_string()
            .contains("incomplete: 2 of 5")
    );

    // Resume: only the three missing shards are computed.
    let mut calls = 0;
    let store = params
        .build(&path, &engine, &data, 0..23, |_, _| {
            calls += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(calls, 3);
    assert!(store.manifest().is_complete());
    assert_eq!(store.read_all().unwrap(), want);
    assert_eq!(store.manifest().dim, 12);
    assert_eq!(store.manifest().projection, spec);
    assert_eq!(store.manifest().shards.last().unwrap().rows, 3);

    // Corrupt one shard: detected on verify and read, recomputed on build.
    let victim = path.join(&store.manifest().shards[1].file);
    let mut bytes = std::fs::read(&victim).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&victim, &bytes).unwrap();
    let reopened = GradientStore::open(&path).unwrap();
    assert_eq!(reopened.verify(), vec![1]);
    assert!(
        reopened
            .read_shard(1)
            .unwrap_err()
            .to_string()
            .contains("checksum mismatch")
    );
    let mut calls = 0;
    let fixed = params
        .build(&path, &engine, &data, 0..23, |_, _| {
            calls += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(calls, 1);
    assert!(fixed.verify().is_empty());
    let mut rows_seen = 0;
    fixed
        .stream(|first, rows, v| {
            assert_eq!(first, rows_seen);
            assert_eq!(v, &want[first * 12..(first + rows) * 12]);
            rows_seen += rows;
            Ok(())
        })
        .unwrap();
    assert_eq!(rows_seen, 23);

    // A store made with other settings is not silently reused.
    let other = StoreParams::new(ProjectionSpec::Kronecker { dim: 12, seed: 8 }, 5);
    let err = other
        .build(&path, &engine, &data, 0..23, |_, _| Ok(()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("different projection"), "{err}");
    let other_model = small_mlp(8, &[6], 3, 2);
    let e2 = GradEngine::params().build(&other_model, &cpu()).unwrap();
    let err = params
        .build(&path, &e2, &data, 0..23, |_, _| Ok(()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("different model_hash"), "{err}");
}

#[test]
fn crafted_manifests_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grads");
    let model = small_mlp(8, &[6], 3, 1);
    let data = synthetic(11, &[8], 3, 1);
    let engine = GradEngine::params()
        .batch_size(4)
        .build(&model, &cpu())
        .unwrap();
    let spec = ProjectionSpec::Kronecker { dim: 4, seed: 7 };
    StoreParams::new(spec, 5)
        .build(&path, &engine, &data, 0..11, |_, _| Ok(()))
        .unwrap();
    let manifest = path.join("manifest.json");
    let good: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: [(&str, Edit); 5] = [
        (
            "overflow",
            Box::new(|m| {
                m["n"] = usize::MAX.into();
                m["dim"] = 3.into();
            }),
        ),
        (
            "listed, but",
            Box::new(|m| m["shards"][2]["index"] = 7.into()),
        ),
        (
            "expected 1",
            Box::new(|m| m["shards"][2]["rows"] = 5.into()),
        ),
        (
            "listed twice",
            Box::new(|m| {
                let first = m["shards"][0].clone();
                m["shards"][1] = first;
            }),
        ),
        ("shard_rows is 0", Box::new(|m| m["shard_rows"] = 0.into())),
    ];
    for (needle, edit) in cases {
        let mut m = good.clone();
        edit(&mut m);
        std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
        let e = GradientStore::open(&path).unwrap_err().to_string();
        assert!(
            e.contains(needle) && e.contains("manifest.json"),
            "{needle}: {e}"
        );
    }
}
