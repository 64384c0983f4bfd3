//! Scripted histories for the crash cases: steps, their effect on the [`Model`], and the
//! check after a crash that accepts exactly what the durability contract allows.

use kv_api::{Engine, Options, Result, Slot, Store, Tuning, Version};

use crate::harness::must;
use crate::model::{Model, check_store};

/// The model type of scripted histories: `u16` keys, `String` values.
pub type ScriptModel = Model<u16, String>;

/// One step of a scripted history.
#[derive(Debug, Clone)]
pub enum Step {
    /// A transaction writing these keys (`None` removes).
    Commit(Vec<(Slot, u16, Option<String>)>),
    /// A transaction removing the keys `lo..hi` of a slot (`Transaction::remove_range`): a
    /// range tombstone on the LSM.
    RemoveRange(Slot, u16, u16),
    /// A merge.
    Merge,
}

/// Options for crash cases: small log segments (so the history crosses file boundaries).
/// Open with [`open_small`], which adds the engine's own small, inline knobs.
pub fn crash_options() -> Options {
    Options::default().segment_size(4096)
}

/// Opens a store for a crash case: `options` plus the engine's [`Tuning::small`] knobs (small
/// files, no background work, so that operation counts are reproducible).
pub async fn open_small<E: Engine>(storage: E::Storage, options: Options) -> Result<Store<E>> {
    Store::open_tuned(storage, options, E::Tuning::small()).await
}

fn put(slot: Slot, key: u16, value: &str) -> (Slot, u16, Option<String>) {
    (slot, key, Some(value.to_string()))
}

/// The standard crash script: commits (some large, crossing 4 KiB segments), overwrites,
/// removals, range removals (one merged, one not), and a merge in the middle.
pub fn standard() -> Vec<Step> {
    let big = |c: char| c.to_string().repeat(3000);
    vec![
        Step::Commit(vec![put(0, 1, "a1"), put(0, 2, "b1"), put(1, 1, "x1")]),
        Step::Commit(vec![put(0, 1, "a2"), (0, 2, None)]),
        // Transactions of one write: one record each in the log.
        Step::Commit(vec![put(0, 6, "f1")]),
        Step::Commit(vec![put(0, 3, &big('c')), (1, 1, None)]),
        Step::Commit(vec![put(0, 4, &big('d')), put(0, 1, "a3")]),
        Step::RemoveRange(0, 3, 4),
        Step::Merge,
        Step::RemoveRange(0, 0, 5),
        Step::Commit(vec![(0, 1, None), put(0, 5, "e1")]),
        Step::Commit(vec![put(0, 2, "b2"), put(1, 1, &big('x'))]),
        Step::Commit(vec![(0, 6, None)]),
    ]
}

/// Every key a script touches, plus one it never does.
pub fn universe(script: &[Step]) -> Vec<(Slot, u16)> {
    let mut keys: Vec<(Slot, u16)> = script
        .iter()
        .flat_map(|s| match s {
            Step::Commit(w) => w.iter().map(|(s, k, _)| (*s, *k)).collect(),
            Step::RemoveRange(s, lo, hi) => (*lo..*hi).map(|k| (*s, k)).collect(),
            Step::Merge => Vec::new(),
        })
        .chain([(0, 999)])
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Runs a step; a commit returns its version.
pub async fn run_step<E: Engine>(store: &Store<E>, step: &Step) -> Result<Option<Version>> {
    match step {
        Step::Commit(writes) => {
            let mut txn = store.current();
            for (slot, key, value) in writes {
                match value {
                    Some(v) => txn.insert(*slot, key, v)?,
                    None => txn.remove(*slot, key)?,
                }
            }
            txn.commit().await.map(Some)
        }
        Step::RemoveRange(slot, lo, hi) => {
            let mut txn = store.current();
            txn.remove_range(*slot, *lo..*hi).await?;
            // A range that held nothing commits nothing.
            let before = txn.version();
            txn.commit().await.map(|v| (v != before).then_some(v))
        }
        Step::Merge => store.merge().await.map(|()| None),
    }
}

/// Applies a step that succeeded (with the version a commit returned) to the model.
pub fn apply(model: &mut ScriptModel, step: &Step, version: Option<Version>) {
    match step {
        Step::Commit(writes) => {
            let seq = version.map_or(model.last() + 1, |v| v.seq());
            model.commit(seq, writes.iter().map(|(s, k, v)| ((*s, *k), v.clone())));
        }
        Step::RemoveRange(slot, lo, hi) => {
            // One removal per key live at the commit; nothing (no commit) if none is.
            let live: Vec<((Slot, u16), Option<String>)> = model
                .state_at(model.last())
                .into_keys()
                .filter(|(s, k)| s == slot && (*lo..*hi).contains(k))
                .map(|key| (key, None))
                .collect();
            if !live.is_empty() {
                let seq = version.map_or(model.last() + 1, |v| v.seq());
                model.commit(seq, live);
            }
        }
        Step::Merge => model.merge(model.last()),
    }
}

/// Runs `steps`, each of which must succeed, and applies them to `model`.
pub async fn run_steps<E: Engine>(store: &Store<E>, model: &mut ScriptModel, steps: &[Step]) {
    for step in steps {
        let v = must!(run_step(store, step).await);
        apply(model, step, v);
    }
}

/// The model in which a step whose outcome is unknown took effect.
pub fn with_step(model: &ScriptModel, step: &Step) -> ScriptModel {
    let mut m = model.clone();
    apply(&mut m, step, None);
    m
}

/// Checks `store` against each candidate model in turn and returns the index of the first
/// that matches; if none does, every mismatch.
pub async fn check_either<E: Engine>(
    store: &Store<E>,
    candidates: &[ScriptModel],
    universe: &[(Slot, u16)],
    full: bool,
) -> std::result::Result<usize, String> {
    let mut errors = Vec::new();
    for (i, model) in candidates.iter().enumerate() {
        match check_store(store, model, universe, full).await {
            Ok(()) => return Ok(i),
            Err(e) => errors.push(format!("candidate {i}: {e}")),
        }
    }
    Err(errors.join("; "))
}
