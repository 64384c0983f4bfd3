//! Damage: nothing committed is ever lost and no damage is silent. A missing file is a typed
//! error (never an empty or partial store), a storage holding files the engine did not write
//! is refused when it has no manifest of the engine, and a failed open creates and deletes
//! nothing.
//!
//! Cases here are engine-neutral: they know no file names. Engine-specific damage (a crashed
//! creation, impossible file ids) is tested in each engine's crate; a store of one engine
//! opened by the other in the root crate's `tests/wrong_engine.rs`.

use std::collections::BTreeMap;

use kv_api::{Engine, Storage, StorageFile, Store};

use super::history::env_u64;
use super::prelude::*;
use crate::damage::{Damage, cuts_log_at_a_commit, kind};
use crate::model::{Mismatch, Model, check_store, compare};
use crate::script::{self, Step};
use crate::{CrashMode, FaultyStorage, Ops, Rng, runtime};

/// The name of the file the foreign-file case drops into the storage. Not a name any engine
/// of the workspace writes.
const FOREIGN: &str = "notes.txt";

const KEYS: u16 = 40;

fn universe() -> Vec<(u8, u16)> {
    (0..KEYS + 2).map(|k| (0, k)).collect()
}

async fn check<E: Engine>(store: &Store<E>, model: &Model<u16, String>, after: &str) {
    if let Err(e) = check_store(store, model, &universe(), true).await {
        panic!("{after}: {e}");
    }
}

/// Commits `rounds` overwrites of every key; returns the model.
async fn fill<E: Engine>(store: &Store<E>, model: &mut Model<u16, String>, rounds: u32) {
    for round in 0..rounds {
        let mut txn = store.current();
        let mut writes = Vec::new();
        for k in 0..KEYS {
            let v = format!("{round}:{k}:{}", "v".repeat(24));
            must!(txn.insert(0, &k, &v));
            writes.push(((0u8, k), Some(v)));
        }
        let v = must!(txn.commit().await);
        model.commit(v.seq(), writes);
    }
}

/// Makes `storage` hold exactly `files` (a restore from a backup). Only the files that
/// differ are written: the seeded case restores its store hundreds of times, and on files
/// every write is a sync.
async fn restore<S: Storage>(storage: &S, files: &BTreeMap<String, Vec<u8>>) {
    let current = must!(dump(storage).await);
    for name in current.keys() {
        if current.get(name) != files.get(name) {
            must!(storage.remove(name).await);
        }
    }
    for (name, bytes) in files {
        if current.get(name) == Some(bytes) {
            continue;
        }
        let f = must!(storage.create(name).await);
        if !bytes.is_empty() {
            must!(f.append(bytes).await);
        }
        must!(f.sync().await);
    }
    must!(storage.sync().await);
}

/// Asserts that `storage` still holds exactly `files`.
async fn assert_untouched<S: Storage>(storage: &S, files: &BTreeMap<String, Vec<u8>>, what: &str) {
    let now = must!(dump(storage).await);
    assert!(
        &now == files,
        "{what} changed the files: {:?} -> {:?}",
        dump_summary(files),
        dump_summary(&now)
    );
}

/// Every file of a store, deleted in turn: reopening is either an `Error::Corruption` that
/// created and deleted nothing (read-only too), or the whole store, every committed version
/// included. Never an empty or partial store. The store is merged first, so every committed
/// write is in files the engine's manifest names (a log holding commits not yet in any
/// manifest cannot be missed by an engine without an identity in the log: not checked here).
/// The manifest is among the files, so at least one deletion must be an error.
pub async fn missing_file_is_an_error<E: EngineFamily, F: StorageFactory>() {
    let env = Env::<E, F>::new();
    let options = Options::default().segment_size(1 << 10);
    let store = env.open_with(options.clone()).await;
    let mut model = Model::new();
    fill(&store, &mut model, 6).await;
    must!(store.merge().await);
    model.merge(model.last());
    fill(&store, &mut model, 1).await;
    must!(store.merge().await);
    model.merge(model.last());
    must!(store.close().await);
    drop(store);

    let storage = env.storage().await;
    let full = must!(dump(&storage).await);
    assert!(full.len() >= 2, "{:?}", dump_summary(&full));
    let mut errors = Vec::new();
    for gone in full.keys() {
        restore(&storage, &full).await;
        must!(storage.remove(gone).await);
        must!(storage.sync().await);
        let damaged = must!(dump(&storage).await);
        match env.try_open_with(options.clone()).await {
            Ok(store) => {
                check(&store, &model, &format!("opened without {gone}")).await;
                must!(store.close().await);
            }
            Err(Error::Corruption { .. }) => {
                assert_untouched(&storage, &damaged, &format!("a failed open without {gone}"))
                    .await;
                let ro = env.try_open_with(options.clone().read_only(true)).await;
                assert_matches!(
                    ro.as_ref().map(|_| ()),
                    Err(Error::Corruption { .. }),
                    "read-only open without {gone}"
                );
                drop(ro);
                assert_untouched(
                    &storage,
                    &damaged,
                    &format!("a read-only open without {gone}"),
                )
                .await;
                errors.push(gone.clone());
            }
            Err(e) => panic!("open without {gone}: expected Corruption or the store, got {e:?}"),
        }
    }
    assert!(
        !errors.is_empty(),
        "no file of {:?} was missed: is there no manifest?",
        dump_summary(&full)
    );
}

/// A storage holding a file the engine did not write, and no store: opening it (for writing or
/// read-only) is `Error::Foreign` naming the file, and creates nothing. Once the file is
/// gone a store is created; a foreign file dropped into an existing store is left alone.
pub async fn foreign_files_are_refused<E: EngineFamily, F: StorageFactory>() {
    let env = Env::<E, F>::new();
    let storage = env.storage().await;
    let f = must!(storage.create(FOREIGN).await);
    must!(f.append(b"not a store").await);
    must!(f.sync().await);
    must!(storage.sync().await);
    drop(f);
    let before = must!(dump(&storage).await);

    for options in [Options::default(), Options::default().read_only(true)] {
        let what = if options.read_only {
            "read-only open"
        } else {
            "open"
        };
        match env.try_open_with(options).await {
            Err(Error::Foreign { engine, found }) => {
                assert_eq!(engine, E::Engine::<F::Storage>::NAME, "{what}");
                assert!(found.contains(FOREIGN), "{what}: {found:?}");
            }
            other => panic!("{what}: expected Foreign, got {:?}", other.map(|_| ())),
        }
        assert_untouched(&storage, &before, &format!("a refused {what}")).await;
    }

    // Without it: a new store.
    must!(storage.remove(FOREIGN).await);
    let store = env.open().await;
    let mut model = Model::new();
    fill(&store, &mut model, 2).await;
    must!(store.close().await);
    drop(store);

    // Dropped into the store: ignored and kept, through commits, a merge and reopens.
    restore(
        &storage,
        &must!(dump(&storage).await)
            .into_iter()
            .chain(before.clone())
            .collect(),
    )
    .await;
    let store = env.open().await;
    check(&store, &model, "reopen beside a foreign file").await;
    fill(&store, &mut model, 1).await;
    must!(store.merge().await);
    model.merge(model.last());
    let store = env.reopen(store).await;
    check(&store, &model, "merge and reopen beside a foreign file").await;
    drop(store);
    let ro = must!(Store::<E::Engine<F::Storage>>::open_read_only(env.storage().await).await);
    check(&ro, &model, "read-only open beside a foreign file").await;
    drop(ro);
    let after = must!(dump(&storage).await);
    assert_eq!(
        after.get(FOREIGN),
        before.get(FOREIGN),
        "the foreign file was changed or deleted"
    );
}

/// A crash at every storage mutation of the first open (power loss, process crash, torn
/// writes): what it leaves opens as a new, empty store that takes commits (never an error,
/// never `Foreign`), so the steps of a store's creation are ordered such that no crash can
/// leave a state the stricter open checks refuse (a manifest without its first data file, a
/// data file without the manifest that proves it is garbage).
pub async fn crashed_creation_opens_empty<E: EngineFamily, F: StorageFactory>() {
    let mutations = {
        let env = Env::<E, F>::new();
        let faulty = must!(FaultyStorage::wrap(env.storage().await).await);
        let store =
            must!(script::open_small::<E::Engine<_>>(faulty.restart(), Options::default()).await);
        drop(store);
        faulty.count(Ops::MUTATIONS).await
    };
    assert!(
        mutations >= 2,
        "creating a store made {mutations} mutations"
    );
    for n in 0..mutations {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Random(n + 1),
        ] {
            let env = Env::<E, F>::new();
            let faulty = must!(FaultyStorage::wrap(env.storage().await).await);
            faulty.crash_after(n, Ops::MUTATIONS, mode).await;
            let first =
                script::open_small::<E::Engine<_>>(faulty.restart(), Options::default()).await;
            assert!(
                faulty.disarm().await,
                "no crash at mutation {n} of {mutations}"
            );
            drop(first);
            let what = format!("crash at mutation {n} of creating a store ({mode:?})");
            let store = script::open_small::<E::Engine<_>>(faulty.restart(), Options::default())
                .await
                .unwrap_or_else(|e| panic!("{what}: reopen failed: {e:?}"));
            let mut model = Model::new();
            check(&store, &model, &what).await;
            fill(&store, &mut model, 1).await;
            drop(store);
            let store = must!(
                script::open_small::<E::Engine<_>>(faulty.restart(), Options::default()).await
            );
            check(
                &store,
                &model,
                &format!("{what}, then a commit and a reopen"),
            )
            .await;
        }
    }
}

/// Seeds of [`seeded`] per combination unless `KV_DAMAGE_CASES` says otherwise: fewer on
/// wasm32, where every file written and read is an IndexedDB request.
#[cfg(not(target_arch = "wasm32"))]
pub const DEFAULT_DAMAGE_CASES: u64 = 300;
/// Seeds of [`seeded`] per combination unless `KV_DAMAGE_CASES` says otherwise: fewer on
/// wasm32, where every file written and read is an IndexedDB request.
#[cfg(target_arch = "wasm32")]
pub const DEFAULT_DAMAGE_CASES: u64 = 40;

/// One seed's open and check may take this long before it counts as a hang.
const SEED_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Keys of the seeded store, in two slots.
const SEEDED_KEYS: u64 = 24;

/// Commits of the seeded store; a merge after half of them.
const SEEDED_COMMITS: u64 = 48;

/// Options of the seeded store: 1 KiB log segments (with the engines' small knobs, see
/// [`script::open_small`]), so a few dozen commits span many files of every kind.
fn seeded_options() -> Options {
    Options::default().segment_size(1 << 10)
}

/// What reopening a damaged store gave.
enum Outcome {
    /// Every key and version as committed.
    Correct,
    /// The state as of an earlier commit, and the recovery report says what it left out.
    RolledBack,
    /// An `Err` from the open or from a read (`stage` says which).
    TypedError { stage: &'static str, error: String },
    /// A read returned something that was never committed (or not at that version).
    WrongData(String),
    /// An earlier state, and no recovery report naming a damaged file.
    SilentLoss(String),
    /// The engine panicked.
    Panic(String),
    /// The open and check did not finish within [`SEED_LIMIT`].
    Hang,
    /// The engine asked storage for more bytes than any file holds, sized by damaged bytes:
    /// on a backend that allocates the buffer first, unbounded memory.
    HugeRead { asked: u64, largest_file: u64 },
    /// The open served every commit over bytes changed in place, which stayed changed, and
    /// `Store::verify` did not report them (or failed).
    VerifyMissed(String),
}

impl Outcome {
    /// The outcomes the damage contract allows.
    fn allowed(&self) -> bool {
        matches!(
            self,
            Outcome::Correct | Outcome::RolledBack | Outcome::TypedError { .. }
        )
    }

    /// The name it is counted under.
    fn label(&self) -> String {
        match self {
            Outcome::Correct => "correct".into(),
            Outcome::RolledBack => "rolled back".into(),
            Outcome::TypedError { stage, error } => {
                let variant = error.split([' ', ':', '{', '(']).next().unwrap_or_default();
                format!("error at {stage} ({variant})")
            }
            Outcome::WrongData(_) => "WRONG DATA".into(),
            Outcome::SilentLoss(_) => "SILENT LOSS".into(),
            Outcome::Panic(_) => "PANIC".into(),
            Outcome::Hang => "HANG".into(),
            Outcome::HugeRead { .. } => "HUGE READ".into(),
            Outcome::VerifyMissed(_) => "VERIFY MISSED".into(),
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::TypedError { stage, error } => write!(f, "error at {stage}: {error}"),
            Outcome::WrongData(m)
            | Outcome::SilentLoss(m)
            | Outcome::Panic(m)
            | Outcome::VerifyMissed(m) => {
                write!(f, "{}: {m}", self.label())
            }
            Outcome::HugeRead {
                asked,
                largest_file,
            } => write!(
                f,
                "{}: asked storage for {asked} bytes, the largest file has {largest_file}",
                self.label()
            ),
            other => f.write_str(&other.label()),
        }
    }
}

/// The seeded store: the files of a store of several commits, a merge and more commits, and
/// the model after every commit (`history[seq]`, merges applied).
struct Seeded {
    files: BTreeMap<String, Vec<u8>>,
    history: Vec<Model<u16, String>>,
    universe: Vec<(u8, u16)>,
}

/// Builds the store of [`seeded`]: random overwrites and removals of [`SEEDED_KEYS`] keys
/// in two slots, values of 20 - 200 bytes, range removals, a merge half way, three small
/// commits last.
async fn seeded_store<E: EngineFamily, F: StorageFactory>() -> Seeded {
    let env = Env::<E, F>::new();
    let store = must!(
        script::open_small::<E::Engine<F::Storage>>(env.storage().await, seeded_options()).await
    );
    let mut rng = Rng::new(0x5eed);
    let mut model = Model::new();
    let mut history = vec![model.clone()];
    for i in 0..SEEDED_COMMITS {
        let writes = (0..1 + rng.below(6))
            .map(|_| {
                let (slot, key) = (rng.below(2) as u8, rng.below(SEEDED_KEYS) as u16);
                let value = (rng.below(6) != 0)
                    .then(|| format!("{i}:{key}:{}", "v".repeat(20 + rng.below(400) as usize)));
                (slot, key, value)
            })
            .collect();
        // Some commits remove a range instead (a range tombstone on the LSM: in its log, then
        // in its manifest), before and after the merge.
        let step = if i % 7 == 3 {
            let lo = rng.below(SEEDED_KEYS) as u16;
            Step::RemoveRange(rng.below(2) as u8, lo, lo.saturating_add(5))
        } else {
            Step::Commit(writes)
        };
        let v = must!(script::run_step(&store, &step).await);
        script::apply(&mut model, &step, v);
        if i == SEEDED_COMMITS / 2 {
            must!(store.merge().await);
            model.merge(model.last());
        }
        // One model per version: a range removal that found nothing committed nothing.
        match (v, history.last_mut()) {
            (None, Some(last)) => *last = model.clone(),
            _ => history.push(model.clone()),
        }
    }
    // A few small commits last, so the newest log file holds commits no table or merged
    // segment has.
    for i in 0..3u16 {
        let step = Step::Commit(vec![(1, i, Some(format!("tail {i}")))]);
        let v = must!(script::run_step(&store, &step).await);
        script::apply(&mut model, &step, v);
        history.push(model.clone());
    }
    // Dropped, not closed: a close may flush, and the newest log must keep its commits.
    drop(store);
    let files = must!(dump(&env.storage().await).await);
    let universe = (0..2)
        .flat_map(|slot| (0..=SEEDED_KEYS as u16).map(move |k| (slot, k)))
        .collect();
    Seeded {
        files,
        history,
        universe,
    }
}

type SeededStore<E, F> = StoreOf<E, FaultyStorage<<F as StorageFactory>::Storage>>;

/// Opens the damaged store on `faulty` and compares it with the history. A writable open
/// that kept a state then takes a commit, and a reopen must show that state plus the commit.
/// With `in_place` (bytes of a file changed where they lie), an open that served every commit
/// and left the damaged bytes as they were must be followed by a `verify` that reports them.
async fn examine<E: EngineFamily, F: StorageFactory>(
    faulty: &FaultyStorage<F::Storage>,
    seeded: &Seeded,
    damaged: &[&str],
    read_only: bool,
    in_place: Option<&BTreeMap<String, Vec<u8>>>,
) -> Outcome {
    let options = seeded_options().read_only(read_only);
    let open = async || {
        script::open_small::<E::Engine<FaultyStorage<F::Storage>>>(
            faulty.restart(),
            options.clone(),
        )
        .await
    };
    let store: SeededStore<E, F> = match open().await {
        Ok(store) => store,
        Err(e) => {
            return Outcome::TypedError {
                stage: "open",
                error: format!("{e:?}"),
            };
        }
    };
    let (outcome, mut model) = classify(&store, seeded, damaged).await;
    if let (Outcome::Correct, Some(files)) = (&outcome, in_place)
        && let Some(missed) = verify_misses(&store, faulty, files, damaged).await
    {
        return Outcome::VerifyMissed(missed);
    }
    if read_only || !outcome.allowed() || matches!(outcome, Outcome::TypedError { .. }) {
        return outcome;
    }
    let after = |stage, e: Error| Outcome::TypedError {
        stage,
        error: format!("{e:?}"),
    };
    let step = Step::Commit(vec![(0, SEEDED_KEYS as u16, Some("after damage".into()))]);
    let v = match script::run_step(&store, &step).await {
        Ok(v) => v,
        Err(e) => return after("commit after recovery", e),
    };
    script::apply(&mut model, &step, v);
    drop(store);
    let store = match open().await {
        Ok(store) => store,
        Err(e) => return after("reopen after recovery", e),
    };
    match compare(&store, &model, &seeded.universe, false).await {
        Ok(()) => outcome,
        Err(Mismatch::Read { what, error }) => Outcome::TypedError {
            stage: "read after recovery",
            error: format!("{error:?} ({what})"),
        },
        Err(Mismatch::Differs(m)) => Outcome::WrongData(format!(
            "after recovery ({}), a commit and a reopen: {m}",
            outcome.label()
        )),
    }
}

/// What `verify` missed on `store`, whose files `damaged` hold the damaged bytes of `files`
/// (if the open left them so: a writable open may have cut or replaced them): `None` if it
/// reported damage, or if nothing damaged is left.
async fn verify_misses<E: Engine>(
    store: &Store<E>,
    storage: &impl Storage,
    files: &BTreeMap<String, Vec<u8>>,
    damaged: &[&str],
) -> Option<String> {
    let now = must!(crate::dump(storage).await);
    let left = damaged
        .iter()
        .any(|name| now.get(*name).is_some_and(|b| Some(b) == files.get(*name)));
    if !left {
        return None;
    }
    match store.verify().await {
        Ok(report) if !report.is_clean() => None,
        Ok(report) => Some(format!("verify found nothing: {report:?}")),
        Err(e) => Some(format!("verify failed: {e:?}")),
    }
}

/// Classifies an opened store whose files `damaged` were damaged; returns the outcome and the
/// model it matched (the store's own version of the history). A rollback counts only if the
/// recovery report names a damaged file: one that names only others explains nothing.
async fn classify<E: Engine>(
    store: &Store<E>,
    seeded: &Seeded,
    damaged: &[&str],
) -> (Outcome, Model<u16, String>) {
    let last = seeded.history.len() as u64 - 1;
    let seq = store.snapshot().version().seq();
    let report = store.recovery().dropped;
    let reported = report.iter().any(|d| damaged.contains(&d.file.as_str()));
    let Some(model) = seeded.history.get(seq as usize) else {
        let m = format!("the store is at version {seq}, past the last commit {last}");
        return (Outcome::WrongData(m), Model::new());
    };
    let outcome = match compare(store, model, &seeded.universe, true).await {
        Ok(()) if seq == last => Outcome::Correct,
        Ok(()) if reported => Outcome::RolledBack,
        Ok(()) => Outcome::SilentLoss(format!(
            "the store is at version {seq} of {last}; the recovery report names none of the \
             damaged files {damaged:?}: {report:?}"
        )),
        Err(Mismatch::Read { what, error }) => Outcome::TypedError {
            stage: "read",
            error: format!("{error:?} ({what})"),
        },
        Err(Mismatch::Differs(m)) => Outcome::WrongData(format!(
            "at version {seq} of {last} (recovery report: {report:?}): {m}"
        )),
    };
    (outcome, model.clone())
}

/// Restores the seeded store into `env` with `damage` applied and examines it, catching panics,
/// hangs and reads sized by damaged lengths.
async fn damage_one<E: EngineFamily, F: StorageFactory>(
    env: &Env<E, F>,
    seeded: &Seeded,
    damage: &Damage,
    read_only: bool,
    what: &str,
) -> Outcome {
    let mut files = seeded.files.clone();
    damage.apply(&mut files);
    restore(&env.storage().await, &files).await;
    let faulty = must!(FaultyStorage::wrap(env.storage().await).await);
    let damaged = damage.files();
    // Bytes changed where they lie (not a no-op: zeros over zeros), in files that stay.
    let in_place = matches!(damage.kind(), "flip" | "zero" | "garbage")
        && damaged
            .iter()
            .any(|name| files.get(*name) != seeded.files.get(*name));
    let in_place = in_place.then_some(&files);
    let run = runtime::catch_panic(examine::<E, F>(
        &faulty, seeded, &damaged, read_only, in_place,
    ));
    let outcome = match runtime::within(SEED_LIMIT, what, run).await {
        None => Outcome::Hang,
        Some(Err(panic)) => Outcome::Panic(panic),
        Some(Ok(outcome)) => outcome,
    };
    let largest_file = files.values().map(|d| d.len() as u64).max().unwrap_or(0);
    let asked = faulty.largest_read().await;
    if asked > largest_file && outcome.allowed() {
        return Outcome::HugeRead {
            asked,
            largest_file,
        };
    }
    outcome
}

/// Seeded damage of every kind to a store of many files, then a check of every key and
/// version after reopening (writable, or read-only for a quarter of the seeds).
///
/// The store spans every kind of file its engine writes (log segments, merged segments and
/// hints; WAL files, tables on two levels, the manifest). Each seed restores it into fresh
/// storage and applies one damage: a truncation, 1 - 8 flipped bits, a zeroed range,
/// garbage over a range, a deleted file, a file copied over another, two files swapped, junk
/// appended, a forged frame length. Files are picked by the shape of their names so every
/// kind is hit, and offsets lean towards files' heads and tails.
///
/// Every outcome must be: the store as committed; an earlier state with a recovery report (a
/// rolled-back torn tail); or an `Err` from the open or a read. Never wrong data, an earlier
/// state without a report, a panic, a hang, or a read sized by a damaged length beyond any
/// file. Counts per damage kind and outcome are printed; a failure lists every forbidden
/// outcome with its seed (rerun one with `KV_DAMAGE_SEED`).
///
/// `KV_DAMAGE_CASES` seeds (default [`DEFAULT_DAMAGE_CASES`]): seeds `0..KV_DAMAGE_CASES`.
pub async fn seeded<E: EngineFamily, F: StorageFactory>() {
    let seeded = seeded_store::<E, F>().await;
    let name = format!(
        "{}/{}",
        E::Engine::<F::Storage>::NAME,
        <F as StorageFactory>::NAME
    );
    let kinds: std::collections::BTreeSet<String> = seeded.files.keys().map(|n| kind(n)).collect();
    assert!(
        seeded.files.len() >= 6 && kinds.len() >= 3,
        "{name}: the seeded store has too few files to damage: {:?}",
        dump_summary(&seeded.files)
    );
    let seeds: Vec<u64> = match env_u64("KV_DAMAGE_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("KV_DAMAGE_CASES").unwrap_or(DEFAULT_DAMAGE_CASES)).collect(),
    };
    // One storage for every seed, restored before each: a fresh one per seed would rewrite
    // every file (on IndexedDB, create a database) each time.
    let env = Env::<E, F>::new();
    let mut counts: BTreeMap<(&str, String), u64> = BTreeMap::new();
    let mut hits: BTreeMap<String, u64> = BTreeMap::new();
    let mut forbidden = Vec::new();
    for &seed in &seeds {
        let mut rng = Rng::new(seed);
        let damage = Damage::pick(&mut rng, &seeded.files);
        let read_only = rng.below(4) == 0;
        let what = format!(
            "{name} KV_DAMAGE_SEED={seed}: {damage}{}",
            if read_only { " (read-only open)" } else { "" }
        );
        let outcome = damage_one(&env, &seeded, &damage, read_only, &what).await;
        let undetectable = matches!(outcome, Outcome::SilentLoss(_))
            && cuts_log_at_a_commit(&damage, &seeded.files);
        let label = if undetectable {
            "log cut at a commit (undetectable)".to_string()
        } else {
            outcome.label()
        };
        *counts.entry((damage.kind(), label)).or_default() += 1;
        for file in damage.files() {
            *hits.entry(kind(file)).or_default() += 1;
        }
        if !outcome.allowed() && !undetectable {
            forbidden.push(format!("{what}: {outcome}"));
        }
    }
    let mut table = format!(
        "{name}: {} seeds over {:?}\n",
        seeds.len(),
        dump_summary(&seeded.files)
    );
    table += &format!("  damage per kind of file: {hits:?}\n");
    for ((damage, outcome), n) in &counts {
        table += &format!("  {damage:>12} | {outcome}: {n}\n");
    }
    eprintln!("{table}");
    assert!(
        forbidden.is_empty(),
        "{name}: {} of {} seeds gave forbidden outcomes:\n{}",
        forbidden.len(),
        seeds.len(),
        forbidden.join("\n")
    );
}
