//! Crash recovery on a [`FaultyStorage`]: power loss, process crashes and torn writes at
//! every write boundary, failing I/O, tampered log tails (the last transaction damaged, then more commits).
//!
//! After every crash the reopened store must show exactly the transactions whose `commit`
//! returned `Ok` (durability `Sync`), in order, with every version; a commit that returned an
//! error may be present or absent, never partial. Recovery must then accept new commits.
//!
//! The scripts' values straddle the LSM's large-value threshold under `Tuning::small()` (256
//! bytes): their 700- and 3000-byte values go to blob files, so the sweeps cross every write
//! of a blob file by a flush and every blob file a merge rewrites.

use kv_api::Result;

use super::prelude::*;
use crate::script::{self, ScriptModel, Step, check_either, crash_options, run_step};
use crate::{CrashMode, FaultyStorage, Model, Ops, Rng, check_store};

type Faulty<F> = FaultyStorage<<F as StorageFactory>::Storage>;
type FStore<E, F> = StoreOf<E, Faulty<F>>;

async fn faulty<E: EngineFamily, F: StorageFactory>(env: &Env<E, F>) -> Faulty<F> {
    must!(FaultyStorage::wrap(env.storage().await).await)
}

/// Opens a store as a new process on `faulty`.
async fn open<E: EngineFamily, F: StorageFactory>(
    faulty: &Faulty<F>,
    options: &Options,
) -> Result<FStore<E, F>> {
    script::open_small(faulty.restart(), options.clone()).await
}

/// Reopens after a crash and checks the store against the candidates (first match wins);
/// then commits once more, reopens and checks again: recovery must leave a log that accepts
/// appends. Returns the final model.
async fn recover_and_check<E: EngineFamily, F: StorageFactory>(
    faulty: &Faulty<F>,
    candidates: &[ScriptModel],
    universe: &[(u8, u16)],
) -> std::result::Result<ScriptModel, String> {
    recover_and_check_with::<E, F>(faulty, candidates, universe, false).await
}

/// [`recover_and_check`], with a power loss right after the first recovery when
/// `power_loss_after_recovery`: what a recovered store showed must survive it.
async fn recover_and_check_with<E: EngineFamily, F: StorageFactory>(
    faulty: &Faulty<F>,
    candidates: &[ScriptModel],
    universe: &[(u8, u16)],
    power_loss_after_recovery: bool,
) -> std::result::Result<ScriptModel, String> {
    let options = crash_options();
    let store = open::<E, F>(faulty, &options)
        .await
        .map_err(|e| format!("reopen after the crash: {e}"))?;
    let i = check_either(&store, candidates, universe, true)
        .await
        .map_err(|e| format!("after recovery: {e}"))?;
    let mut model = candidates[i].clone();
    let store =
        if power_loss_after_recovery {
            drop(store);
            must!(faulty.crash(CrashMode::LoseUnsynced).await);
            let store = open::<E, F>(faulty, &options)
                .await
                .map_err(|e| format!("reopen after recovery and a power loss: {e}"))?;
            check_store(&store, &model, universe, true).await.map_err(|e| {
            format!("a power loss right after recovery lost what the recovered store showed: {e}")
        })?;
            store
        } else {
            store
        };
    let step = Step::Commit(vec![
        (0, 1, Some("after recovery".into())),
        (0, 999, Some("new".into())),
    ]);
    let v = run_step(&store, &step)
        .await
        .map_err(|e| format!("first commit after recovery: {e}"))?;
    script::apply(&mut model, &step, v);
    drop(store);
    let store = open::<E, F>(faulty, &options)
        .await
        .map_err(|e| format!("second reopen: {e}"))?;
    check_store(&store, &model, universe, true)
        .await
        .map_err(|e| format!("after a commit following recovery and a reopen: {e}"))?;
    Ok(model)
}

/// Runs the script with a crash armed after `boundary` storage mutations, crashes at the end
/// if it did not strike, and checks recovery.
async fn crash_run<E: EngineFamily, F: StorageFactory>(
    script: &[Step],
    boundary: u64,
    mode: CrashMode,
    power_loss_after_recovery: bool,
) -> std::result::Result<(), String> {
    let env = Env::<E, F>::new();
    let faulty = faulty(&env).await;
    faulty.crash_after(boundary, Ops::MUTATIONS, mode).await;
    let mut model = Model::new();
    let mut pending = None;
    if let Ok(store) = open::<E, F>(&faulty, &crash_options()).await {
        for (i, step) in script.iter().enumerate() {
            match run_step(&store, step).await {
                Ok(v) => script::apply(&mut model, step, v),
                Err(e) => {
                    if faulty.crashes().await == 0 {
                        return Err(format!(
                            "step {i} ({}) failed before any fault: {e}",
                            describe(step)
                        ));
                    }
                    pending = Some(step);
                    break;
                }
            }
        }
    } else if faulty.crashes().await == 0 {
        return Err("open failed before any fault".into());
    }
    if !faulty.disarm().await {
        must!(faulty.crash(mode).await);
    }
    let candidates = match pending {
        Some(step) => vec![model.clone(), script::with_step(&model, step)],
        None => vec![model],
    };
    let universe = script::universe(script);
    recover_and_check_with::<E, F>(&faulty, &candidates, &universe, power_loss_after_recovery)
        .await?;
    Ok(())
}

fn describe(step: &Step) -> String {
    match step {
        Step::Commit(w) => format!("commit of {} writes", w.len()),
        Step::RemoveRange(slot, lo, hi) => format!("removal of {slot}:{lo}..{hi}"),
        Step::Merge => "merge".into(),
    }
}

/// Storage mutations (writes and syncs) of opening a store and running `script`.
async fn count_mutations<E: EngineFamily, F: StorageFactory>(script: &[Step]) -> u64 {
    let env = Env::<E, F>::new();
    let faulty = faulty(&env).await;
    let store = must!(open::<E, F>(&faulty, &crash_options()).await);
    script::run_steps(&store, &mut Model::new(), script).await;
    drop(store);
    faulty.count(Ops::MUTATIONS).await
}

fn report(failures: &[String], runs: u64) {
    assert!(
        failures.is_empty(),
        "{} of {runs} crash runs failed; first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

async fn sweep<E: EngineFamily, F: StorageFactory>(
    mode: impl Fn(u64) -> CrashMode,
    power_loss_after_recovery: bool,
) {
    let script = script::standard();
    let total = count_mutations::<E, F>(&script).await;
    assert!(
        total >= 10,
        "the script made only {total} storage mutations: is the store writing?"
    );
    eprintln!("crash sweep over {} points", total + 1);
    let mut failures = Vec::new();
    for b in 0..=total {
        if let Err(e) = crash_run::<E, F>(&script, b, mode(b), power_loss_after_recovery).await {
            failures.push(format!("crash before mutation {b} ({:?}): {e}", mode(b)));
        }
    }
    report(&failures, total + 1);
}

/// Acknowledged commits and merges survive a power loss right after them.
pub async fn power_loss_keeps_acknowledged<E: EngineFamily, F: StorageFactory>() {
    let script = script::standard();
    let mut failures = Vec::new();
    for mode in [
        CrashMode::LoseUnsynced,
        CrashMode::KeepUnsynced,
        CrashMode::Random(1),
        CrashMode::Random(2),
    ] {
        let env = Env::<E, F>::new();
        let faulty = faulty(&env).await;
        let store = must!(open::<E, F>(&faulty, &crash_options()).await);
        let mut model = Model::new();
        script::run_steps(&store, &mut model, &script).await;
        must!(faulty.crash(mode).await);
        drop(store);
        if let Err(e) =
            recover_and_check::<E, F>(&faulty, &[model], &script::universe(&script)).await
        {
            failures.push(format!("{mode:?}: {e}"));
        }
    }
    report(&failures, 4);
}

/// A power loss (unsynced data and namespace operations lost) before every storage mutation
/// of the script, including inside commits, segment roll-overs and the merge.
pub async fn every_boundary_power_loss<E: EngineFamily, F: StorageFactory>() {
    sweep::<E, F>(|_| CrashMode::LoseUnsynced, false).await;
}

/// A process crash (everything written is kept) before every storage mutation.
pub async fn every_boundary_process<E: EngineFamily, F: StorageFactory>() {
    sweep::<E, F>(|_| CrashMode::KeepUnsynced, false).await;
}

/// A power loss keeping a random prefix of unsynced writes, torn at a random byte, before
/// every storage mutation (two seeds per point).
pub async fn every_boundary_torn<E: EngineFamily, F: StorageFactory>() {
    sweep::<E, F>(|b| CrashMode::Random(b * 2 + 1), false).await;
    sweep::<E, F>(|b| CrashMode::Random(b * 2 + 1_000_003), false).await;
}

/// A process crash before every storage mutation, then a power loss right after the first
/// recovery: what the recovered store showed (for example a commit whose sync never ran,
/// still in the operating system's cache) must survive, so recovery must make the log tail
/// it accepts durable before serving it.
pub async fn recovery_is_durable<E: EngineFamily, F: StorageFactory>() {
    sweep::<E, F>(|_| CrashMode::KeepUnsynced, true).await;
}

/// Crashes at every storage mutation of a merge (of a store with much garbage): afterwards
/// the store is either merged or not, never damaged.
pub async fn during_merge<E: EngineFamily, F: StorageFactory>() {
    let setup: Vec<Step> = (0..12u16)
        .map(|i| {
            Step::Commit(vec![
                (0, i % 4, Some(format!("{i}:{}", "m".repeat(700)))),
                (1, i % 3, (i % 5 != 0).then(|| i.to_string())),
            ])
        })
        .collect();
    let universe = script::universe(&setup);
    // Count the merge's own mutations.
    let merge_ops = {
        let env = Env::<E, F>::new();
        let faulty = faulty(&env).await;
        let store = must!(open::<E, F>(&faulty, &crash_options()).await);
        script::run_steps(&store, &mut Model::new(), &setup).await;
        let before = faulty.count(Ops::MUTATIONS).await;
        must!(store.merge().await);
        faulty.count(Ops::MUTATIONS).await - before
    };
    eprintln!("merge crash sweep over {} points", merge_ops + 1);
    let mut failures = Vec::new();
    for b in 0..=merge_ops {
        for mode in [CrashMode::LoseUnsynced, CrashMode::Random(b + 77)] {
            let env = Env::<E, F>::new();
            let faulty = faulty(&env).await;
            let store = must!(open::<E, F>(&faulty, &crash_options()).await);
            let mut model = Model::new();
            script::run_steps(&store, &mut model, &setup).await;
            faulty.crash_after(b, Ops::MUTATIONS, mode).await;
            let merged = store.merge().await;
            if !faulty.disarm().await {
                must!(faulty.crash(mode).await);
            }
            drop(store);
            let candidates = match merged {
                Ok(()) => vec![script::with_step(&model, &Step::Merge)],
                Err(_) => vec![model.clone(), script::with_step(&model, &Step::Merge)],
            };
            if let Err(e) = recover_and_check::<E, F>(&faulty, &candidates, &universe).await {
                failures.push(format!("crash before merge mutation {b} ({mode:?}): {e}"));
            }
        }
    }
    report(&failures, 2 * (merge_ops + 1));
}

/// The N-th storage mutation fails (for every N of the script): the failing call returns an
/// error, later calls succeed or return `Error::Poisoned` whose source chain leads to the
/// injected I/O error, reads never show a partial transaction, and a reopen recovers a
/// consistent store.
pub async fn fail_each_write<E: EngineFamily, F: StorageFactory>() {
    let script = script::standard();
    let universe = script::universe(&script);
    let total = count_mutations::<E, F>(&script).await;
    let mut failures = Vec::new();
    for b in 0..total {
        if let Err(e) = fail_run::<E, F>(&script, &universe, b).await {
            failures.push(format!("failure of mutation {b}: {e}"));
        }
    }
    report(&failures, total);
}

/// True if the `source()` chain of `e` reaches the `std::io::Error` that [`FaultyStorage`]
/// injects.
fn caused_by_injected_fault(e: &Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.to_string() == crate::faulty::INJECTED_FAULT)
        {
            return true;
        }
        next = err.source();
    }
    false
}

async fn fail_run<E: EngineFamily, F: StorageFactory>(
    script: &[Step],
    universe: &[(u8, u16)],
    b: u64,
) -> std::result::Result<(), String> {
    let env = Env::<E, F>::new();
    let faulty = faulty(&env).await;
    faulty.fail_after(b, Ops::MUTATIONS).await;
    let options = crash_options();
    let store = match open::<E, F>(&faulty, &options).await {
        Ok(s) => s,
        // The fault struck during open; it is spent, so the next open must work.
        Err(_) => open::<E, F>(&faulty, &options)
            .await
            .map_err(|e| format!("open after a failed open: {e}"))?,
    };
    let mut model: ScriptModel = Model::new();
    let mut alternative: Option<ScriptModel> = None;
    let mut failed = false;
    let mut failed_step: Option<&Step> = None;
    for (i, step) in script.iter().enumerate() {
        match run_step(&store, step).await {
            Ok(v) => {
                script::apply(&mut model, step, v);
                // A later commit's version tells whether a failed commit took effect; a
                // failed merge may still have completed on storage, whatever followed.
                alternative = match alternative {
                    // A range removal that found nothing to remove committed nothing: it
                    // tells nothing either.
                    Some(alt) if v.is_none() && matches!(step, Step::RemoveRange(..)) => Some(alt),
                    Some(mut alt)
                        if matches!(failed_step, Some(Step::Merge))
                            || matches!(step, Step::Merge) =>
                    {
                        script::apply(&mut alt, step, v);
                        Some(alt)
                    }
                    _ => None,
                };
            }
            Err(e @ Error::Poisoned { .. }) if failed => {
                if !caused_by_injected_fault(&e) {
                    return Err(format!(
                        "step {i} after the failure returned {e:?}, whose source() chain does \
                         not reach the injected std::io::Error"
                    ));
                }
            }
            Err(e) if failed => {
                return Err(format!(
                    "step {i} after the failure returned {e:?}, not Ok or Poisoned"
                ));
            }
            Err(e) => {
                if !faulty.disarm().await {
                    return Err(format!(
                        "step {i} ({}) failed without a fault: {e}",
                        describe(step)
                    ));
                }
                failed = true;
                failed_step = Some(step);
                let candidates = [model.clone(), script::with_step(&model, step)];
                let seen = check_either(&store, &candidates, universe, false)
                    .await
                    .map_err(|e| format!("live store after the failed step {i}: {e}"))?;
                alternative = Some(candidates[1 - seen].clone());
                model = candidates[seen].clone();
            }
        }
        check_store(&store, &model, universe, false)
            .await
            .map_err(|e| format!("live store after step {i}: {e}"))?;
    }
    faulty.disarm().await;
    drop(store);
    let candidates: Vec<ScriptModel> = std::iter::once(model).chain(alternative).collect();
    recover_and_check::<E, F>(&faulty, &candidates, universe).await?;
    Ok(())
}

/// Failing reads return errors (never wrong data), do not poison the store, and are not
/// remembered: the same reads succeed afterwards and commits still work.
pub async fn fail_reads<E: EngineFamily, F: StorageFactory>() {
    let script = script::standard();
    let universe = script::universe(&script);
    let env = Env::<E, F>::new();
    let faulty = faulty(&env).await;
    let store = must!(open::<E, F>(&faulty, &crash_options()).await);
    let mut model = Model::new();
    script::run_steps(&store, &mut model, &script).await;
    for b in 0..40 {
        faulty.fail_after(b, Ops::READS).await;
        // Any outcome but wrong data is fine while the fault is armed.
        if let Err(e) = check_store(&store, &model, &universe, false).await {
            assert!(
                e.contains("i/o error") || e.contains("injected"),
                "a failed read gave wrong data: {e}"
            );
        }
        faulty.disarm().await;
        if let Err(e) = check_store(&store, &model, &universe, false).await {
            panic!("reads after a failed read (fault at read {b}): {e}");
        }
    }
    let step = Step::Commit(vec![(0, 7, Some("after failed reads".into()))]);
    script::run_steps(&store, &mut model, &[step]).await;
    drop(store);
    let store = must!(open::<E, F>(&faulty, &crash_options()).await);
    if let Err(e) = check_store(&store, &model, &universe, true).await {
        panic!("after reopen: {e}");
    }
}

/// After a crash the old store (still alive) cannot write, the lock is free for the new
/// process, and dropping the old store later does not disturb the new one.
pub async fn dead_process_cannot_write<E: EngineFamily, F: StorageFactory>() {
    let env = Env::<E, F>::new();
    let faulty = faulty(&env).await;
    let options = crash_options();
    let old = must!(open::<E, F>(&faulty, &options).await);
    let mut txn = old.current();
    must!(txn.insert(0, &1u16, &"x".to_string()));
    must!(txn.commit().await);
    must!(faulty.crash(CrashMode::KeepUnsynced).await);
    let mut txn = old.current();
    must!(txn.insert(0, &2u16, &"from the dead".to_string()));
    assert!(txn.commit().await.is_err(), "a crashed process committed");
    let new = must!(open::<E, F>(&faulty, &options).await);
    let mut txn = new.current();
    assert_eq!(
        must!(txn.get::<_, String>(0, &1u16).await).as_deref(),
        Some("x")
    );
    assert_eq!(must!(txn.get::<_, String>(0, &2u16).await), None);
    must!(txn.insert(0, &3u16, &"y".to_string()));
    must!(txn.commit().await);
    let _ = old.merge().await;
    let _ = old.flush().await;
    drop(old);
    drop(new);
    let store = must!(open::<E, F>(&faulty, &options).await);
    let txn = store.current();
    assert_eq!(
        must!(txn.get::<_, String>(0, &1u16).await).as_deref(),
        Some("x")
    );
    assert_eq!(must!(txn.get::<_, String>(0, &2u16).await), None);
    assert_eq!(
        must!(txn.get::<_, String>(0, &3u16).await).as_deref(),
        Some("y")
    );
}

/// `Durability::Buffered` commits: a crash keeps a prefix of them (whole transactions, in
/// order); after `flush` all of them survive a power loss.
pub async fn buffered_commits_prefix<E: EngineFamily, F: StorageFactory>() {
    let options = crash_options().durability(kv_api::Durability::Buffered);
    let universe: Vec<(u8, u16)> = (0..10).map(|k| (0, k)).chain([(1, 0)]).collect();
    let mut failures = Vec::new();
    for (i, mode) in [
        CrashMode::LoseUnsynced,
        CrashMode::KeepUnsynced,
        CrashMode::Random(5),
        CrashMode::Random(6),
    ]
    .into_iter()
    .enumerate()
    {
        for flush in [false, true] {
            let env = Env::<E, F>::new();
            let faulty = faulty(&env).await;
            let store = must!(open::<E, F>(&faulty, &options).await);
            let mut models = vec![Model::new()];
            for k in 0..10u16 {
                let step = Step::Commit(vec![
                    (0, k, Some(format!("{k}"))),
                    (1, 0, Some(format!("count {k}"))),
                ]);
                let v = must!(run_step(&store, &step).await);
                let mut m = models[models.len() - 1].clone();
                script::apply(&mut m, &step, v);
                models.push(m);
            }
            if flush {
                must!(store.flush().await);
                models.drain(..models.len() - 1);
            }
            must!(faulty.crash(mode).await);
            drop(store);
            // Any prefix of the commits, so try the candidates newest first.
            models.reverse();
            if let Err(e) = recover_and_check::<E, F>(&faulty, &models, &universe).await {
                failures.push(format!("run {i} {mode:?} flush={flush}: {e}"));
            }
        }
    }
    report(&failures, 8);
}

/// Where the second transaction (B) of a damaged-last-transaction history landed: the file that grew the most.
struct Region {
    file: String,
    start: u64,
    end: u64,
}

/// Picks an offset in B's region.
type Offset = Box<dyn Fn(&Region) -> u64>;

enum Tamper {
    Cut(u64),
    Flip(u64),
}

/// The damaged-last-transaction history (the data loss of this store's predecessor): commit A; commit B; damage B's bytes; reopen (B rolled back);
/// commit C; reopen; reopen again: A and C present, B absent, and the last reopen changes no
/// file.
async fn damaged_last_txn<E: EngineFamily, F: StorageFactory>(
    tamper: impl Fn(&Region) -> Tamper,
) -> std::result::Result<(), String> {
    damaged_last_txn_of::<E, F>(false, tamper).await
}

/// [`damaged_last_txn`], with A and B transactions of one write each if `single` (each one
/// record in the log, its write and commit together, with a removal for A).
async fn damaged_last_txn_of<E: EngineFamily, F: StorageFactory>(
    single: bool,
    tamper: impl Fn(&Region) -> Tamper,
) -> std::result::Result<(), String> {
    let env = Env::<E, F>::new();
    let faulty = faulty(&env).await;
    let options = crash_options();
    let universe = [(0u8, 1u16), (0, 2), (0, 3), (0, 4)];
    let store = must!(open::<E, F>(&faulty, &options).await);
    let mut model = Model::new();
    if single {
        // A key for A's removal to remove.
        let first = Step::Commit(vec![(0, 2, Some("A2".into()))]);
        let v = must!(run_step(&store, &first).await);
        script::apply(&mut model, &first, v);
    }
    let a = if single {
        Step::Commit(vec![(0, 2, None)])
    } else {
        Step::Commit(vec![(0, 1, Some("A".into())), (0, 2, Some("A2".into()))])
    };
    let v = must!(run_step(&store, &a).await);
    script::apply(&mut model, &a, v);
    let before = must!(dump(&faulty.restart()).await);
    let b = if single {
        Step::Commit(vec![(0, 3, Some("B3".into()))])
    } else {
        Step::Commit(vec![(0, 1, Some("B".into())), (0, 3, Some("B3".into()))])
    };
    must!(run_step(&store, &b).await);
    drop(store);
    // A power loss that keeps everything: the files are quiescent for tampering.
    must!(faulty.crash(CrashMode::CutTail(0)).await);
    let after = must!(dump(&faulty.restart()).await);
    let region = after
        .iter()
        .map(|(name, data)| {
            let start = before.get(name).map_or(0, |d| d.len() as u64);
            Region {
                file: name.clone(),
                start: start.min(data.len() as u64),
                end: data.len() as u64,
            }
        })
        .max_by_key(|r| r.end - r.start)
        .filter(|r| r.end > r.start)
        .ok_or("commit B wrote nothing")?;
    let damaged_len = match tamper(&region) {
        Tamper::Cut(at) => {
            must!(faulty.set_len(&region.file, at).await);
            at
        }
        Tamper::Flip(at) => {
            must!(faulty.flip_byte(&region.file, at).await);
            region.end
        }
    };
    let store = match open::<E, F>(&faulty, &options).await {
        Ok(s) => s,
        Err(e) => return Err(format!("reopen after damaging B: {e}")),
    };
    check_store(&store, &model, &universe, true)
        .await
        .map_err(|e| format!("B not rolled back: {e}"))?;
    // The rollback is reported: B's bytes, from the end of A to the end of the file (nothing,
    // if the cut left nothing of B).
    let report = store.recovery();
    let expected = (damaged_len > region.start).then(|| {
        (
            region.file.clone(),
            region.start,
            damaged_len - region.start,
        )
    });
    let got: Vec<_> = report
        .dropped
        .iter()
        .map(|d| (d.file.clone(), d.offset, d.bytes))
        .collect();
    if got != expected.into_iter().collect::<Vec<_>>() {
        return Err(format!(
            "expected a report of {} bytes of {} at {}, got {:?}",
            damaged_len - region.start,
            region.file,
            region.start,
            report.dropped
        ));
    }
    let c = Step::Commit(vec![(0, 4, Some("C".into())), (0, 2, None)]);
    let v = run_step(&store, &c)
        .await
        .map_err(|e| format!("commit C: {e}"))?;
    script::apply(&mut model, &c, v);
    drop(store);
    reopen_and_check::<E, F>(&faulty, &options, &model, &universe, "reopen after C").await?;
    let first = must!(dump(&faulty.restart()).await);
    let what = "second reopen after C";
    reopen_and_check::<E, F>(&faulty, &options, &model, &universe, what).await?;
    let second = must!(dump(&faulty.restart()).await);
    if first != second {
        return Err(format!(
            "the second reopen changed the files: {:?} -> {:?}",
            dump_summary(&first),
            dump_summary(&second)
        ));
    }
    Ok(())
}

/// Opens the store on `faulty` as a new process after a clean close, checks it against
/// `model` and that recovery reports nothing left out, and closes it again; errors name `what`.
async fn reopen_and_check<E: EngineFamily, F: StorageFactory>(
    faulty: &Faulty<F>,
    options: &Options,
    model: &ScriptModel,
    universe: &[(u8, u16)],
    what: &str,
) -> std::result::Result<(), String> {
    let store = open::<E, F>(faulty, options)
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    if !store.recovery().is_clean() {
        return Err(format!(
            "{what}: a clean reopen reports {:?}",
            store.recovery().dropped
        ));
    }
    check_store(&store, model, universe, true)
        .await
        .map_err(|e| format!("{what}: {e}"))
}

fn commit_record_len() -> u64 {
    let mut buf = Vec::new();
    kv_engine_kit::txlog::encode_commit(&mut buf, 1, 0, 0, &[]);
    buf.len() as u64
}

/// The damaged-last-transaction history with B's tail torn at several offsets (from one byte into B to its last byte).
pub async fn last_txn_torn_tail<E: EngineFamily, F: StorageFactory>() {
    let mut failures = Vec::new();
    let mut rng = Rng::new(7);
    let picks: Vec<u64> = (0..6).map(|_| rng.next_u64()).collect();
    let cuts: Vec<Offset> = vec![
        Box::new(|r| r.start + 1),
        Box::new(|r| r.start + (r.end - r.start) / 2),
        Box::new(|r| r.end - 1),
    ];
    for (i, cut) in cuts.iter().enumerate() {
        if let Err(e) = damaged_last_txn::<E, F>(|r| Tamper::Cut(cut(r))).await {
            failures.push(format!("fixed cut {i}: {e}"));
        }
    }
    for p in picks {
        let f = |r: &Region| Tamper::Cut(r.start + 1 + p % (r.end - r.start - 1).max(1));
        if let Err(e) = damaged_last_txn::<E, F>(f).await {
            failures.push(format!("random cut {p}: {e}"));
        }
    }
    report(&failures, 9);
}

/// The damaged-last-transaction history with a byte of B flipped, in its commit record or in an earlier record of B
/// (damage followed by B's own intact commit): B, the last transaction, is rolled back like a
/// torn tail; A is never lost.
pub async fn last_txn_flipped_byte<E: EngineFamily, F: StorageFactory>() {
    let n = commit_record_len();
    let mut failures = Vec::new();
    let last: [(&str, Offset); 3] = [
        ("last byte", Box::new(|r| r.end - 1)),
        (
            "commit crc",
            Box::new(move |r| r.end.saturating_sub(n).max(r.start)),
        ),
        (
            "commit length",
            Box::new(move |r| (r.end.saturating_sub(n) + 5).clamp(r.start, r.end - 1)),
        ),
    ];
    for (what, at) in &last {
        if let Err(e) = damaged_last_txn::<E, F>(|r| Tamper::Flip(at(r))).await {
            failures.push(format!("flip of B's {what}: {e}"));
        }
    }
    let earlier: [(&str, Offset); 2] = [
        ("first byte", Box::new(|r| r.start)),
        (
            "middle",
            Box::new(move |r| r.start + r.end.saturating_sub(n).saturating_sub(r.start) / 2),
        ),
    ];
    for (what, at) in &earlier {
        if let Err(e) = damaged_last_txn::<E, F>(|r| Tamper::Flip(at(r))).await {
            failures.push(format!("flip of B's {what}: {e}"));
        }
    }
    report(&failures, 5);
}

/// The damaged-last-transaction history with a crash before B's commit record reached storage (B's writes are
/// there), and with none of B written.
pub async fn last_txn_cut_before_commit_record<E: EngineFamily, F: StorageFactory>() {
    let n = commit_record_len();
    let mut failures = Vec::new();
    if let Err(e) =
        damaged_last_txn::<E, F>(|r| Tamper::Cut(r.end.saturating_sub(n).max(r.start))).await
    {
        failures.push(format!("cut before B's commit record: {e}"));
    }
    if let Err(e) = damaged_last_txn::<E, F>(|r| Tamper::Cut(r.start)).await {
        failures.push(format!("cut before B: {e}"));
    }
    report(&failures, 2);
}

/// The damaged-last-transaction history with transactions of one write (one record each):
/// B torn at every byte, and each byte of B flipped. B is rolled back, A never lost.
pub async fn last_single_txn_torn_or_flipped<E: EngineFamily, F: StorageFactory>() {
    let mut failures = Vec::new();
    // The first run (a cut at B's start) learns B's length.
    let len = std::cell::Cell::new(0u64);
    let learn = |r: &Region| {
        len.set(r.end - r.start);
        Tamper::Cut(r.start)
    };
    if let Err(e) = damaged_last_txn_of::<E, F>(true, learn).await {
        failures.push(format!("cut before B: {e}"));
    }
    let len = len.get();
    // The long form's framing alone is 55 bytes: B must be one single record.
    assert!(
        len > 0 && len < 48,
        "a one-write commit of a short key and value took {len} bytes"
    );
    for i in 0..len {
        if i > 0
            && let Err(e) = damaged_last_txn_of::<E, F>(true, |r| Tamper::Cut(r.start + i)).await
        {
            failures.push(format!("cut {i} bytes into B: {e}"));
        }
        if let Err(e) = damaged_last_txn_of::<E, F>(true, |r| Tamper::Flip(r.start + i)).await {
            failures.push(format!("flip of B's byte {i}: {e}"));
        }
    }
    report(&failures, 2 * len);
}
