//! Model-based random histories (`proptest`): inserts, removals, commits, aborts, merges,
//! scans, reopens and crashes over a few slots and keys, checked after every step against a
//! [`Model`] of committed state and per-key versions. Failures shrink to a short history.

use std::collections::BTreeMap;
use std::future::Future;

use kv_api::{Storage, Transaction};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::prelude::*;
use crate::runtime::catch_panic;
use crate::script::{crash_options, open_small};
use crate::{CrashMode, DEFAULT_PROPTEST_CASES, FaultyStorage, Model, Ops, check_store};

/// How a history's crash goes.
#[derive(Clone, Copy, Debug)]
pub enum Crash {
    /// Unsynced data lost.
    PowerLoss,
    /// Everything written kept.
    Process,
    /// A random prefix of unsynced data kept, torn (seeded).
    Torn(u8),
}

impl Crash {
    fn mode(self) -> CrashMode {
        match self {
            Crash::PowerLoss => CrashMode::LoseUnsynced,
            Crash::Process => CrashMode::KeepUnsynced,
            Crash::Torn(seed) => CrashMode::Random(u64::from(seed)),
        }
    }
}

/// One operation of a random history.
#[derive(Clone, Debug)]
pub enum Op {
    /// Insert into the open transaction (a value `"{value}:"` padded by `pad * 8` bytes).
    Insert {
        /// Slot.
        slot: u8,
        /// Key.
        key: u8,
        /// Value.
        value: u16,
        /// Padding, in units of 8 bytes.
        pad: u8,
    },
    /// Remove in the open transaction.
    Remove {
        /// Slot.
        slot: u8,
        /// Key.
        key: u8,
    },
    /// Scan `from..to` (bounds sorted) in the open transaction.
    Scan {
        /// Slot.
        slot: u8,
        /// One bound.
        from: u8,
        /// The other bound.
        to: u8,
        /// Descending.
        reverse: bool,
    },
    /// Commit the open transaction.
    Commit,
    /// Abort the open transaction.
    Abort,
    /// Merge the store.
    Merge,
    /// Take a snapshot and keep it open (checked after every later step).
    Pin,
    /// Drop one of the open snapshots.
    Unpin {
        /// Which one (modulo the number open).
        which: u8,
    },
    /// Drop the store and open it again.
    Reopen,
    /// Crash and reopen.
    Crash(Crash),
    /// Commit with a crash armed after `after` storage mutations, then reopen.
    CommitCrash {
        /// Mutations before the crash.
        after: u8,
        /// The crash.
        crash: Crash,
    },
    /// Merge with a crash armed after `after` storage mutations, then reopen.
    MergeCrash {
        /// Mutations before the crash.
        after: u8,
        /// The crash.
        crash: Crash,
    },
    /// Commit with the mutation after `after` ones failing, then reopen.
    CommitFail {
        /// Mutations before the failing one.
        after: u8,
    },
}

const SLOTS: u8 = 3;
const KEYS: u8 = 8;

fn value_of(value: u16, pad: u8) -> String {
    format!("{value}:{}", "~".repeat(usize::from(pad) * 8))
}

fn crash() -> impl Strategy<Value = Crash> {
    prop_oneof![
        Just(Crash::PowerLoss),
        Just(Crash::Process),
        any::<u8>().prop_map(Crash::Torn)
    ]
}

/// Histories of 1 to 47 operations; crash operations only if `crashes`.
pub fn histories(crashes: bool) -> impl Strategy<Value = Vec<Op>> {
    let insert =
        (0..SLOTS, 0..KEYS, any::<u16>(), 0u8..64).prop_map(|(slot, key, value, pad)| Op::Insert {
            slot,
            key,
            value,
            pad,
        });
    let remove = (0..SLOTS, 0..KEYS).prop_map(|(slot, key)| Op::Remove { slot, key });
    let scan =
        (0..SLOTS, 0..=KEYS, 0..=KEYS, any::<bool>()).prop_map(|(slot, from, to, reverse)| {
            Op::Scan {
                slot,
                from,
                to,
                reverse,
            }
        });
    // Weighted like `prop_oneof!` (which picks the same way), crash operations only if asked.
    let mut ops: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (8, insert.boxed()),
        (3, remove.boxed()),
        (4, Just(Op::Commit).boxed()),
        (1, Just(Op::Abort).boxed()),
        (1, Just(Op::Merge).boxed()),
        (1, Just(Op::Pin).boxed()),
        (1, any::<u8>().prop_map(|which| Op::Unpin { which }).boxed()),
        (1, Just(Op::Reopen).boxed()),
        (2, scan.boxed()),
    ];
    if crashes {
        ops.extend([
            (1, crash().prop_map(Op::Crash).boxed()),
            (
                2,
                (0u8..12, crash())
                    .prop_map(|(after, crash)| Op::CommitCrash { after, crash })
                    .boxed(),
            ),
            (
                1,
                (0u8..24, crash())
                    .prop_map(|(after, crash)| Op::MergeCrash { after, crash })
                    .boxed(),
            ),
            (
                1,
                (0u8..12).prop_map(|after| Op::CommitFail { after }).boxed(),
            ),
        ]);
    }
    let op = proptest::strategy::Union::new_weighted(ops);
    proptest::collection::vec(op, 1..48)
}

type HistModel = Model<u8, String>;

/// A transaction of family `E` on a faulty `S`.
type Txn<E, S> = Transaction<<E as EngineFamily>::Engine<FaultyStorage<S>>>;

/// A history being run: the store, its open transaction and the model.
struct Run<E: EngineFamily, S: Storage> {
    faulty: FaultyStorage<S>,
    store: Option<StoreOf<E, FaultyStorage<S>>>,
    txn: Option<Txn<E, S>>,
    pending: BTreeMap<(u8, u8), Option<String>>,
    model: HistModel,
    universe: Vec<(u8, u8)>,
    /// Open snapshots and the version each shows.
    pins: Vec<(Txn<E, S>, u64)>,
}

impl<E: EngineFamily, S: Storage> Run<E, S> {
    fn store(&self) -> Result<&StoreOf<E, FaultyStorage<S>>, String> {
        self.store
            .as_ref()
            .ok_or_else(|| "no open store".to_string())
    }

    async fn txn(&mut self) -> Result<&mut Txn<E, S>, String> {
        if self.txn.is_none() {
            self.txn = Some(self.store()?.current());
        }
        self.txn
            .as_mut()
            .ok_or_else(|| "no transaction".to_string())
    }

    fn with_pending(&self) -> HistModel {
        let mut m = self.model.clone();
        m.commit(self.model.last() + 1, self.pending.clone());
        m
    }

    /// Drops the store (and transaction) and opens a new one, which must match one of
    /// `candidates` in full (every version, every snapshot).
    /// What a merge now must keep: the state at the oldest open snapshot and after.
    fn merge_horizon(&self) -> u64 {
        self.pins
            .iter()
            .map(|(_, seq)| *seq)
            .chain([self.model.last()])
            .min()
            .unwrap_or(0)
    }

    /// Every open snapshot still shows the state of its version.
    async fn check_pins(&self) -> Result<(), String> {
        for (snap, seq) in &self.pins {
            let state = self.model.state_at(*seq);
            for slot in 0..SLOTS {
                let got = snap
                    .range::<u8, String>(slot, ..)
                    .await
                    .map_err(|e| format!("pinned scan: {e}"))?;
                let want: Vec<(u8, String)> = state
                    .iter()
                    .filter(|((s, _), _)| *s == slot)
                    .map(|((_, k), v)| (*k, v.clone()))
                    .collect();
                if got != want {
                    return Err(format!(
                        "snapshot at {seq}, slot {slot} = {got:?}, model says {want:?}"
                    ));
                }
            }
        }
        Ok(())
    }

    async fn reopen(&mut self, candidates: Vec<HistModel>) -> Result<(), String> {
        self.pins.clear();
        self.txn = None;
        self.pending.clear();
        self.store = None;
        let store = open_small(self.faulty.restart(), crash_options())
            .await
            .map_err(|e| format!("reopen: {e}"))?;
        let mut errors = Vec::new();
        for model in candidates {
            match check_store(&store, &model, &self.universe, true).await {
                Ok(()) => {
                    self.model = model;
                    self.store = Some(store);
                    return Ok(());
                }
                Err(e) => errors.push(e),
            }
        }
        Err(format!("after reopen: {}", errors.join("; or ")))
    }

    async fn step(&mut self, op: &Op) -> Result<(), String> {
        match *op {
            Op::Insert {
                slot,
                key,
                value,
                pad,
            } => {
                let value = value_of(value, pad);
                let txn = self.txn().await?;
                txn.insert(slot, &key, &value)
                    .map_err(|e| format!("insert: {e}"))?;
                let got: Option<String> = txn
                    .get(slot, &key)
                    .await
                    .map_err(|e| format!("get own write: {e}"))?;
                if got.as_ref() != Some(&value) {
                    return Err(format!("own insert reads back as {got:?}"));
                }
                self.pending.insert((slot, key), Some(value));
            }
            Op::Remove { slot, key } => {
                let txn = self.txn().await?;
                txn.remove(slot, &key).map_err(|e| format!("remove: {e}"))?;
                let got: Option<String> = txn
                    .get(slot, &key)
                    .await
                    .map_err(|e| format!("get own removal: {e}"))?;
                if got.is_some() {
                    return Err(format!("own removal reads back as {got:?}"));
                }
                self.pending.insert((slot, key), None);
            }
            Op::Scan {
                slot,
                from,
                to,
                reverse,
            } => {
                let (lo, hi) = (from.min(to), from.max(to));
                let mut want: Vec<(u8, String)> = self
                    .with_pending()
                    .state_at(u64::MAX)
                    .into_iter()
                    .filter(|((s, k), _)| *s == slot && (lo..hi).contains(k))
                    .map(|((_, k), v)| (k, v))
                    .collect();
                let txn = self.txn().await?;
                let query = txn.range::<u8, String>(slot, lo..hi);
                let got = if reverse {
                    query.reverse().await
                } else {
                    query.await
                };
                let got = got.map_err(|e| format!("scan: {e}"))?;
                if reverse {
                    want.reverse();
                }
                if got != want {
                    return Err(format!("scan = {got:?}, model says {want:?}"));
                }
            }
            Op::Commit => {
                if let Some(txn) = self.txn.take() {
                    let v = txn.commit().await.map_err(|e| format!("commit: {e}"))?;
                    let want = self.model.last() + u64::from(!self.pending.is_empty());
                    if v.seq() != want {
                        return Err(format!(
                            "commit returned version {}, expected {want}",
                            v.seq()
                        ));
                    }
                    self.model
                        .commit(v.seq(), std::mem::take(&mut self.pending));
                }
            }
            Op::Abort => {
                if let Some(txn) = self.txn.take() {
                    txn.abort();
                }
                self.pending.clear();
            }
            Op::Merge => {
                self.store()?
                    .merge()
                    .await
                    .map_err(|e| format!("merge: {e}"))?;
                let horizon = self.merge_horizon();
                self.model.merge(horizon);
            }
            Op::Pin => {
                if self.pins.len() < 3 {
                    let snap = self.store()?.snapshot();
                    let seq = snap.version().seq();
                    if seq != self.model.last() {
                        return Err(format!("snapshot at {seq}, model at {}", self.model.last()));
                    }
                    self.pins.push((snap, seq));
                }
            }
            Op::Unpin { which } => {
                if !self.pins.is_empty() {
                    let i = usize::from(which) % self.pins.len();
                    self.pins.remove(i);
                }
            }
            Op::Reopen => {
                let m = self.model.clone();
                self.reopen(vec![m]).await?;
            }
            Op::Crash(c) => {
                self.txn = None;
                self.faulty
                    .crash(c.mode())
                    .await
                    .map_err(|e| format!("crash: {e}"))?;
                let m = self.model.clone();
                self.reopen(vec![m]).await?;
            }
            Op::CommitCrash { after, crash } => {
                let candidates = match self.txn.take() {
                    Some(txn) if !self.pending.is_empty() => {
                        self.faulty
                            .crash_after(u64::from(after), Ops::MUTATIONS, crash.mode())
                            .await;
                        match txn.commit().await {
                            Ok(v) => {
                                let mut m = self.model.clone();
                                m.commit(v.seq(), self.pending.clone());
                                vec![m]
                            }
                            Err(_) => vec![self.model.clone(), self.with_pending()],
                        }
                    }
                    _ => vec![self.model.clone()],
                };
                if !self.faulty.disarm().await {
                    self.faulty
                        .crash(crash.mode())
                        .await
                        .map_err(|e| format!("crash: {e}"))?;
                }
                self.reopen(candidates).await?;
            }
            Op::MergeCrash { after, crash } => {
                self.txn = None;
                self.pending.clear();
                self.faulty
                    .crash_after(u64::from(after), Ops::MUTATIONS, crash.mode())
                    .await;
                let merged = self.store()?.merge().await;
                if !self.faulty.disarm().await {
                    self.faulty
                        .crash(crash.mode())
                        .await
                        .map_err(|e| format!("crash: {e}"))?;
                }
                let mut m = self.model.clone();
                m.merge(self.merge_horizon());
                let candidates = match merged {
                    Ok(()) => vec![m],
                    Err(_) => vec![self.model.clone(), m],
                };
                self.reopen(candidates).await?;
            }
            Op::CommitFail { after } => {
                if let Some(txn) = self.txn.take()
                    && !self.pending.is_empty()
                {
                    self.faulty
                        .fail_after(u64::from(after), Ops::MUTATIONS)
                        .await;
                    let result = txn.commit().await;
                    let fired = self.faulty.disarm().await;
                    let candidates = match result {
                        Ok(v) => {
                            let mut m = self.model.clone();
                            m.commit(v.seq(), self.pending.clone());
                            vec![m]
                        }
                        Err(e) if !fired => {
                            return Err(format!("commit failed without a fault: {e}"));
                        }
                        Err(_) => vec![self.model.clone(), self.with_pending()],
                    };
                    self.reopen(candidates).await?;
                }
            }
        }
        let store = self.store()?;
        check_store(store, &self.model, &self.universe, false).await?;
        self.check_pins().await
    }
}

async fn run_history<E: EngineFamily, F: StorageFactory>(ops: Vec<Op>) -> Result<(), String> {
    let env = Env::<E, F>::new();
    let faulty = FaultyStorage::wrap(env.storage().await)
        .await
        .map_err(|e| format!("wrap: {e}"))?;
    let store = open_small(faulty.restart(), crash_options())
        .await
        .map_err(|e| format!("open: {e}"))?;
    let mut run = Run::<E, F::Storage> {
        faulty,
        store: Some(store),
        txn: None,
        pending: BTreeMap::new(),
        pins: Vec::new(),
        model: Model::new(),
        universe: (0..SLOTS)
            .flat_map(|s| (0..KEYS).map(move |k| (s, k)))
            .collect(),
    };
    for (i, op) in ops.iter().enumerate() {
        run.step(op)
            .await
            .map_err(|e| format!("step {i} ({op:?}): {e}"))?;
    }
    let m = run.model.clone();
    run.reopen(vec![m])
        .await
        .map_err(|e| format!("final reopen: {e}"))
}

/// Random histories without crashes: the model after every step, every version at the end.
pub async fn model<E: EngineFamily, F: StorageFactory>() {
    check_property(
        "history_model",
        histories(false),
        |h: &Vec<Op>| listing(h),
        run_history::<E, F>,
    )
    .await;
}

/// Random histories with crashes (between steps, inside commits and merges) and failing
/// commits: after each, exactly the acknowledged commits, whole.
pub async fn model_with_crashes<E: EngineFamily, F: StorageFactory>() {
    check_property(
        "history_model_with_crashes",
        histories(true),
        |h: &Vec<Op>| listing(h),
        run_history::<E, F>,
    )
    .await;
}

/// A history as numbered lines, for failure messages.
fn listing(ops: &[Op]) -> String {
    ops.iter()
        .enumerate()
        .map(|(i, op)| format!("{i:>3}: {op:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Most shrinking steps tried after a failure.
const MAX_SHRINK_STEPS: u32 = 2_000;

/// The number in environment variable `name`, if it is set and parses.
pub(crate) fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

/// Runs `test` on `KV_PROPTEST_CASES` values of `strategy` (seeded by `KV_PROPTEST_SEED`),
/// and on failure shrinks the value and panics with it. Async, unlike `proptest!`, so the
/// test runs on the case's runtime (and on wasm32).
pub async fn check_property<T, S, Fut>(
    name: &str,
    strategy: S,
    describe: impl Fn(&T) -> String,
    test: impl Fn(T) -> Fut,
) where
    T: Clone,
    S: Strategy<Value = T>,
    Fut: Future<Output = Result<(), String>>,
{
    let cases = env_u64("KV_PROPTEST_CASES").map_or(DEFAULT_PROPTEST_CASES, |n| n as u32);
    let seed = env_u64("KV_PROPTEST_SEED").unwrap_or(0x006b_762d_636f_6e66);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::with_cases(cases),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let run = |value: T| {
        let fut = test(value);
        async move { catch_panic(fut).await.and_then(|r| r) }
    };
    for case in 0..cases {
        let mut tree = match strategy.new_tree(&mut runner) {
            Ok(t) => t,
            Err(e) => panic!("{name}: cannot generate a history: {e}"),
        };
        let Err(error) = run(tree.current()).await else {
            continue;
        };
        let mut best = (tree.current(), error);
        let mut steps = 0;
        if tree.simplify() {
            while steps < MAX_SHRINK_STEPS {
                steps += 1;
                let value = tree.current();
                match run(value.clone()).await {
                    Err(e) => {
                        best = (value, e);
                        if !tree.simplify() {
                            break;
                        }
                    }
                    Ok(()) => {
                        if !tree.complicate() {
                            break;
                        }
                    }
                }
            }
        }
        panic!(
            "{name}: random history {case} of {cases} failed (KV_PROPTEST_SEED={seed}); \
             shrunk in {steps} steps to:\n{}\nerror: {}",
            describe(&best.0),
            best.1
        );
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn failures_shrink_to_a_minimal_value() {
        let result = std::panic::catch_unwind(|| {
            crate::block_on(check_property(
                "demo",
                proptest::collection::vec(0u32..1000, 1..50),
                |v: &Vec<u32>| format!("{v:?}"),
                |v: Vec<u32>| async move {
                    if v.iter().any(|x| *x >= 500) {
                        Err("too big".to_string())
                    } else {
                        Ok(())
                    }
                },
            ))
        });
        let message = result
            .expect_err("the property fails")
            .downcast::<String>()
            .expect("message");
        assert!(message.contains("[500]"), "not shrunk: {message}");
    }

    #[test]
    fn panics_in_a_history_are_failures() {
        let result = std::panic::catch_unwind(|| {
            crate::block_on(check_property(
                "demo",
                0u32..10,
                |v: &u32| v.to_string(),
                |v: u32| async move {
                    assert!(v < 3, "boom");
                    Ok(())
                },
            ))
        });
        let message = result
            .expect_err("the property fails")
            .downcast::<String>()
            .expect("message");
        assert!(
            message.contains("shrunk") && message.contains("boom"),
            "{message}"
        );
    }
}
