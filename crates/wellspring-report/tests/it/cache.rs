use std::sync::{Arc, Mutex};

use wellspring_report::{Cache, CacheKey, CacheWarning, ReportError};

/// A cache in a fresh temp dir whose warnings are collected.
fn cache() -> (tempfile::TempDir, Cache, Arc<Mutex<Vec<CacheWarning>>>) {
    let dir = tempfile::tempdir().unwrap();
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let w = warnings.clone();
    let cache = Cache::open(dir.path().join("cache"))
        .unwrap()
        .with_warn_hook(move |x| w.lock().unwrap().push(x.clone()));
    (dir, cache, warnings)
}

fn key() -> CacheKey {
    CacheKey::new("grads")
        .field("dataset", "mnist")
        .field("seed", &3u64)
        .field("lr", &0.05)
        .field("layers", &[64usize, 32])
}

/// Computes through the cache, counting how often the closure ran.
fn bytes(cache: &Cache, calls: &mut usize) -> Vec<u8> {
    cache
        .get_or_compute_bytes(&key(), || -> Result<Vec<u8>, ReportError> {
            *calls += 1;
            Ok((0..=255u8).collect())
        })
        .unwrap()
}

#[test]
fn second_call_is_served_from_cache() {
    let (_d, cache, warnings) = cache();
    let mut calls = 0;
    let a = bytes(&cache, &mut calls);
    let b = bytes(&cache, &mut calls);
    assert_eq!(a, b);
    assert_eq!(calls, 1);
    assert!(cache.contains(&key(), "bin").unwrap());
    assert!(warnings.lock().unwrap().is_empty());
    let path = cache.entry_path(&key(), "bin").unwrap();
    assert!(path.starts_with(cache.root().join("grads")));
    let meta = std::fs::read_to_string(format!("{}.meta.json", path.display())).unwrap();
    assert!(
        meta.contains("\"len\": 256") && meta.contains("mnist"),
        "{meta}"
    );
}

#[test]
fn corrupted_byte_is_detected_and_recomputed() {
    let (_d, cache, warnings) = cache();
    let mut calls = 0;
    let good = bytes(&cache, &mut calls);
    let path = cache.entry_path(&key(), "bin").unwrap();
    let mut raw = std::fs::read(&path).unwrap();
    raw[100] ^= 0xFF;
    std::fs::write(&path, &raw).unwrap();
    assert_eq!(bytes(&cache, &mut calls), good);
    assert_eq!(calls, 2);
    let w = warnings.lock().unwrap();
    assert_eq!(w.len(), 1);
    assert!(w[0].reason.contains("checksum mismatch"), "{}", w[0]);
    assert_eq!(w[0].path, path);
}

#[test]
fn truncated_entry_is_detected_and_recomputed() {
    let (_d, cache, warnings) = cache();
    let mut calls = 0;
    let good = bytes(&cache, &mut calls);
    let path = cache.entry_path(&key(), "bin").unwrap();
    std::fs::write(&path, &good[..10]).unwrap();
    assert_eq!(bytes(&cache, &mut calls), good);
    assert_eq!(calls, 2);
    let w = warnings.lock().unwrap();
    assert!(w[0].reason.contains("truncated"), "{}", w[0]);
    // Recomputed entry is valid again: no further warning, no further call.
    drop(w);
    bytes(&cache, &mut calls);
    assert_eq!(calls, 2);
    assert_eq!(warnings.lock().unwrap().len(), 1);
}

#[test]
fn missing_sidecar_or_garbage_sidecar_means_recompute() {
    let (_d, cache, warnings) = cache();
    let mut calls = 0;
    bytes(&cache, &mut calls);
    let path = cache.entry_path(&key(), "bin").unwrap();
    let meta = format!("{}.meta.json", path.display());
    std::fs::remove_file(&meta).unwrap();
    bytes(&cache, &mut calls);
    assert_eq!(calls, 2);
    std::fs::write(&meta, "{ not json").unwrap();
    bytes(&cache, &mut calls);
    assert_eq!(calls, 3);
    std::fs::remove_file(&path).unwrap();
    bytes(&cache, &mut calls);
    assert_eq!(calls, 4);
    let w = warnings.lock().unwrap();
    let reasons: Vec<&str> = w.iter().map(|w| w.reason.as_str()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].contains("sidecar missing"), "{reasons:?}");
    assert!(reasons[1].contains("not valid"), "{reasons:?}");
    assert!(reasons[2].contains("data file missing"), "{reasons:?}");
}

#[test]
fn key_digest_is_stable_and_sensitive() {
    let a = key().digest().unwrap();
    assert_eq!(a.len(), 64);
    assert_eq!(a, key().digest().unwrap());
    let reordered = CacheKey::new("grads")
        .field("layers", &[64usize, 32])
        .field("lr", &0.05)
        .field("seed", &3u64)
        .field("dataset", "mnist");
    assert_eq!(a, reordered.digest().unwrap());
    let variants = [
        key().field("extra", &true),
        CacheKey::new("models")
            .field("dataset", "mnist")
            .field("seed", &3u64)
            .field("lr", &0.05)
            .field("layers", &[64usize, 32]),
        CacheKey::new("grads")
            .field("dataset", "mnist")
            .field("seed", &4u64)
            .field("lr", &0.05)
            .field("layers", &[64usize, 32]),
        CacheKey::new("grads")
            .field("dataset", "mnist")
            .field("seed", &3u64)
            .field("lr", &0.050001)
            .field("layers", &[64usize, 32]),
        CacheKey::new("grads")
            .field("dataset", "mnist")
            .field("seed", &3u64)
            .field("lr", &0.05)
            .field("layers", &[32usize, 64]),
    ];
    let mut all: Vec<String> = variants.iter().map(|k| k.digest().unwrap()).collect();
    all.push(a);
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "every change must give a new digest");
    // Nested maps are canonicalised too.
    let m1: std::collections::HashMap<&str, u32> = [("a", 1), ("b", 2), ("c", 3)].into();
    let m2: std::collections::HashMap<&str, u32> = [("c", 3), ("a", 1), ("b", 2)].into();
    assert_eq!(
        CacheKey::new("x").field("m", &m1).digest().unwrap(),
        CacheKey::new("x").field("m", &m2).digest().unwrap()
    );
}

#[test]
fn bad_keys_are_errors_naming_the_problem() {
    let e = CacheKey::new("a/b").digest().unwrap_err().to_string();
    assert!(e.contains("a/b"), "{e}");
    let e = key().field("seed", &9u64).digest().unwrap_err().to_string();
    assert!(e.contains("\"seed\" given twice"), "{e}");
    let bad: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
    let e = CacheKey::new("x")
        .field("pairs", &bad)
        .digest()
        .unwrap_err()
        .to_string();
    assert!(e.contains("pairs"), "{e}");
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Scores {
    name: String,
    values: Vec<f32>,
}

#[test]
fn json_entries_roundtrip_and_type_changes_recompute() {
    let (_d, cache, warnings) = cache();
    let k = CacheKey::new("scores").field("method", "tracin");
    let make = || Scores {
        name: "s".into(),
        values: vec![0.5, -1.25],
    };
    let mut calls = 0;
    for _ in 0..2 {
        let got: Scores = cache
            .get_or_compute_json(&k, || -> Result<_, ReportError> {
                calls += 1;
                Ok(make())
            })
            .unwrap();
        assert_eq!(got, make());
    }
    assert_eq!(calls, 1);
    // Same key read as another type: decoded as damaged, recomputed.
    let v: Vec<u32> = cache
        .get_or_compute_json(&k, || -> Result<_, ReportError> { Ok(vec![1, 2]) })
        .unwrap();
    assert_eq!(v, vec![1, 2]);
    assert!(warnings.lock().unwrap()[0].reason.contains("expected type"));
}

#[test]
fn file_entries_are_checksummed_and_renamed_into_place() {
    let (_d, cache, warnings) = cache();
    let k = CacheKey::new("models").field("arch", "mlp");
    let mut calls = 0;
    let make = |calls: &mut usize| {
        cache
            .get_or_create_file(&k, "mpk", |tmp| -> Result<(), ReportError> {
                *calls += 1;
                assert_eq!(tmp.extension().unwrap(), "mpk");
                std::fs::write(tmp, vec![7u8; 5000]).map_err(|e| ReportError::io(tmp, e))
            })
            .unwrap()
    };
    let p = make(&mut calls);
    assert_eq!(p, make(&mut calls));
    assert_eq!(calls, 1);
    assert_eq!(std::fs::read(&p).unwrap(), vec![7u8; 5000]);
    std::fs::write(&p, vec![7u8; 4999]).unwrap();
    make(&mut calls);
    assert_eq!(calls, 2);
    assert_eq!(warnings.lock().unwrap().len(), 1);
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(p.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn failing_or_lazy_closures_leave_no_entry() {
    let (_d, cache, _w) = cache();
    let k = CacheKey::new("models").field("arch", "cnn");
    let e = cache
        .get_or_create_file(&k, "bin", |_| -> Result<(), ReportError> { Ok(()) })
        .unwrap_err()
        .to_string();
    assert!(e.contains("did not write"), "{e}");
    let e = cache
        .get_or_create_file(&k, "bin", |tmp| -> Result<(), ReportError> {
            std::fs::write(tmp, b"partial").unwrap();
            Err(ReportError::CacheEntry {
                path: tmp.to_path_buf(),
                reason: "training diverged".into(),
            })
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("training diverged"), "{e}");
    assert!(!cache.contains(&k, "bin").unwrap());
    let dir = cache.root().join("models");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    cache.remove(&k, "bin").unwrap();
    assert!(cache.entry_path(&k, "../x").is_err());
}

#[test]
fn default_dir_ends_in_wellspring_cache() {
    if std::env::var_os(wellspring_report::CACHE_ENV).is_none() {
        assert!(wellspring_report::default_cache_dir().ends_with("wellspring-cache"));
    }
}

#[test]
fn nan_inf_and_missing_fields_give_different_digests() {
    let d = |v: Option<f64>| CacheKey::new("x").field("lr", &v).digest().unwrap();
    let all = [
        d(None),
        d(Some(f64::NAN)),
        d(Some(f64::INFINITY)),
        d(Some(f64::NEG_INFINITY)),
        d(Some(0.0)),
    ];
    let mut u = all.to_vec();
    u.sort();
    u.dedup();
    assert_eq!(u.len(), all.len(), "{all:?}");
    // The position of a non-finite value counts, not just its presence.
    let a = CacheKey::new("x").field("p", &(f64::NAN, None::<f64>));
    let b = CacheKey::new("x").field("p", &(None::<f64>, f64::NAN));
    assert_ne!(a.digest().unwrap(), b.digest().unwrap());
    assert_eq!(d(Some(f64::NAN)), d(Some(f64::NAN)));
}

#[test]
fn a_hit_whose_sidecar_holds_another_key_is_recomputed() {
    let (_d, cache, warnings) = cache();
    let mut calls = 0;
    bytes(&cache, &mut calls);
    // Plant the entry of `key()` (data and sidecar) under another key's path,
    // as a digest collision or a hand-copied cache would.
    let other = key().field("extra", &1u8);
    let (src, dst) = (
        cache.entry_path(&key(), "bin").unwrap(),
        cache.entry_path(&other, "bin").unwrap(),
    );
    std::fs::copy(&src, &dst).unwrap();
    std::fs::copy(
        format!("{}.meta.json", src.display()),
        format!("{}.meta.json", dst.display()),
    )
    .unwrap();
    let got = cache
        .get_or_compute_bytes(&other, || -> Result<Vec<u8>, ReportError> {
            Ok(b"fresh".to_vec())
        })
        .unwrap();
    assert_eq!(got, b"fresh");
    let w = warnings.lock().unwrap();
    assert_eq!(w.len(), 1);
    assert!(w[0].reason.contains("\"extra\""), "{}", w[0].reason);
    drop(w);
    // File entries are checked the same way.
    std::fs::copy(&src, &dst).unwrap();
    std::fs::copy(
        format!("{}.meta.json", src.display()),
        format!("{}.meta.json", dst.display()),
    )
    .unwrap();
    assert!(!cache.contains(&other, "bin").unwrap());
    assert!(cache.contains(&key(), "bin").unwrap());
}

#[test]
fn score_matrices_are_cached_and_resumed() {
    let (_d, cache, warnings) = cache();
    let key = CacheKey::new("scores").field("method", "grad-dot");
    let m =
        wellspring_core::ScoreMatrix::from_vec(3, 2, vec![1.0, -2.0, 0.5, 4.0, 3.0, -1.0]).unwrap();
    let mut calls = 0;
    for _ in 0..2 {
        let got = cache
            .get_or_compute_scores(&key, || -> Result<_, ReportError> {
                calls += 1;
                Ok(m.clone())
            })
            .unwrap();
        assert_eq!(got, m);
    }
    assert_eq!(calls, 1, "the second call is a cache hit");
    // Another key (say, other data) is computed afresh.
    let other = key.clone().field("data", "changed");
    let got = cache
        .get_or_compute_scores(&other, || -> Result<_, ReportError> {
            Ok(wellspring_core::ScoreMatrix::zeros(3, 2))
        })
        .unwrap();
    assert_eq!(got, wellspring_core::ScoreMatrix::zeros(3, 2));
    assert!(warnings.lock().unwrap().is_empty());
}
