//! Runs many cached training jobs on worker threads with a progress bar.
//!
//! Each job's (small) result is looked up in the [`Cache`] by its key and, if
//! missing, computed and written atomically as soon as it finishes, so a
//! killed run loses at most the models in flight. Jobs with the same key run
//! once. Workers are plain OS threads pulling job indices from a shared
//! counter; the tensor ops they call use burn's (rayon) pool exactly as a
//! sequential run does, so results do not depend on the number of workers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use wellspring_report::{Cache, CacheKey, Progress};

use crate::error::Result;

/// Where and how a batch of jobs runs.
pub(crate) struct RunSettings<'a> {
    pub cache: Option<&'a Cache>,
    pub parallelism: usize,
    pub progress: &'a Progress,
    pub label: &'a str,
}

/// Runs `compute(i)` for every job `i` in `0..keys.len()` (cached under
/// `keys[i]` when a cache is set) and returns the results in job order.
/// On an error, no new jobs start; finished jobs stay cached.
pub(crate) fn run_cached<T, F>(
    keys: &[CacheKey],
    settings: &RunSettings<'_>,
    compute: F,
) -> Result<Vec<T>>
where
    T: Serialize + DeserializeOwned + Clone + Send,
    F: Fn(usize) -> Result<T> + Sync,
{
    let n = keys.len();
    // Jobs with equal keys (the same model asked for twice) run once.
    let mut first_of: HashMap<String, usize> = HashMap::new();
    let mut rep = Vec::with_capacity(n);
    for (i, k) in keys.iter().enumerate() {
        let d = k.digest()?;
        rep.push(*first_of.entry(d).or_insert(i));
    }
    let unique: Vec<usize> = (0..n).filter(|&i| rep[i] == i).collect();
    let mut results: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let mut todo = Vec::new();
    if let Some(cache) = settings.cache {
        for &i in &unique {
            if cache.contains(&keys[i], "json")? {
                // present and verified: the closure only runs if it vanished since
                results[i] = Some(cache.get_or_compute_json(&keys[i], || compute(i))?);
            } else {
                todo.push(i);
            }
        }
    } else {
        todo = unique.clone();
    }
    let bar = settings
        .progress
        .bar(unique.len() as u64, settings.label.to_string());
    bar.set_position((unique.len() - todo.len()) as u64);
    bar.reset_eta();

    let run_one = |i: usize| -> Result<T> {
        match settings.cache {
            Some(cache) => cache.get_or_compute_json(&keys[i], || compute(i)),
            None => compute(i),
        }
    };
    let workers = settings.parallelism.max(1).min(todo.len());
    if workers <= 1 {
        for &i in &todo {
            results[i] = Some(run_one(i)?);
            bar.inc(1);
        }
    } else {
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let done: Mutex<Vec<(usize, Result<T>)>> = Mutex::new(Vec::with_capacity(todo.len()));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = todo.get(k) else { break };
                        let r = run_one(i);
                        if r.is_err() {
                            stop.store(true, Ordering::Relaxed);
                        }
                        done.lock()
                            .expect("no worker panics holding the lock")
                            .push((i, r));
                        bar.inc(1);
                    }
                });
            }
        });
        let mut done = done.into_inner().expect("workers finished");
        // report the error of the earliest failed job, deterministically
        done.sort_by_key(|(i, _)| *i);
        for (i, r) in done {
            results[i] = Some(r?);
        }
    }
    bar.finish_and_clear();
    (0..n)
        .map(|i| {
            Ok(results[rep[i]]
                .clone()
                .expect("every unique job ran or came from the cache"))
        })
        .collect()
}
