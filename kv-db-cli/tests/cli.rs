//! End to end: the `kv` binary run on real stores of both engines, written here with the
//! library: every subcommand, damage found by `verify`, reads beside a writer, conversions
//! that keep every version, and usage errors.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use kv_db::backends::FileStorage;
use kv_db::{Bitcask, Engine, Lsm, LsmOptions, Options, SlotDef, Store, Tuning};
use predicates::prelude::*;
use predicates::str::contains;

const USERS: SlotDef<(String, u32), String> = SlotDef::new(1, "users");
const VISITS: SlotDef<String, u64> = SlotDef::new(2, "visits");

/// Users written: `("org1", 0..USERS_PER_ORG)` and `("org2", 0..3)`.
const USERS_PER_ORG: u32 = 60;

fn kv() -> Command {
    Command::cargo_bin("kv").unwrap()
}

fn run(args: &[&dyn AsRef<std::ffi::OsStr>]) -> assert_cmd::assert::Assert {
    kv().args(args.iter().map(|a| a.as_ref())).assert()
}

fn user(i: u32, round: u32) -> String {
    format!("user {i} round {round} {}", "x".repeat(80))
}

/// Three rounds of every user (so each has three versions), a removal, two visits counters,
/// in commits of ten writes: with small files, several segments or tables.
async fn fill<E: Engine>(store: &Store<E>) {
    for round in 0..3 {
        for chunk in 0..USERS_PER_ORG / 10 {
            let mut txn = store.current();
            let mut users = txn.slot_mut(&USERS).unwrap();
            for i in chunk * 10..(chunk + 1) * 10 {
                users.insert(&("org1", i), &user(i, round)).unwrap();
            }
            txn.commit().await.unwrap();
        }
    }
    let mut txn = store.current();
    let mut users = txn.slot_mut(&USERS).unwrap();
    users.remove(&("org1", 5)).unwrap();
    for i in 0..3 {
        users.insert(&("org2", i), &user(i, 0)).unwrap();
    }
    txn.commit().await.unwrap();
    for n in 1..=2u64 {
        let mut txn = store.current();
        txn.slot_mut(&VISITS).unwrap().insert("/home", &n).unwrap();
        txn.commit().await.unwrap();
    }
}

/// A Bitcask store in `dir` with 4 KiB segments (several sealed ones), filled.
async fn bitcask(dir: &Path) -> Store<Bitcask<FileStorage>> {
    let options = Options::default().segment_size(4096);
    let store = Store::open_with(FileStorage::open(dir).await.unwrap(), options)
        .await
        .unwrap();
    fill(&store).await;
    store
}

/// An LSM store in `dir` with 4 KiB memtables (several tables), filled and flushed.
async fn lsm(dir: &Path) -> Store<Lsm<FileStorage>> {
    let store = Store::open_tuned(
        FileStorage::open(dir).await.unwrap(),
        Options::default(),
        LsmOptions::small(),
    )
    .await
    .unwrap();
    fill(&store).await;
    store.flush().await.unwrap();
    store
}

/// Every key written, with every version: (seq, time, removal, value).
type History = Vec<(String, Vec<(u64, u64, bool, Option<String>)>)>;

async fn history<E: Engine<Storage = FileStorage>>(dir: &Path) -> History {
    let store = Store::<E>::open_read_only(FileStorage::open_read_only(dir).await.unwrap())
        .await
        .unwrap();
    let snap = store.snapshot();
    let users = snap.slot(&USERS).unwrap();
    let mut out = Vec::new();
    let keys = (0..USERS_PER_ORG)
        .map(|i| ("org1", i))
        .chain((0..3).map(|i| ("org2", i)));
    for key in keys {
        let mut versions = Vec::new();
        for v in users.versions(&key).await.unwrap() {
            let value = users.get_version(&key, v).await.unwrap();
            versions.push((v.seq(), v.time_ms(), v.is_removal(), value));
        }
        out.push((format!("{key:?}"), versions));
    }
    let visits = snap.slot(&VISITS).unwrap();
    let mut versions = Vec::new();
    for v in visits.versions("/home").await.unwrap() {
        let value = visits.get_version("/home", v).await.unwrap();
        versions.push((
            v.seq(),
            v.time_ms(),
            v.is_removal(),
            value.map(|n| n.to_string()),
        ));
    }
    out.push(("/home".into(), versions));
    out
}

fn files_ending(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

fn flip(file: &Path, offset: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[offset] ^= 0x10;
    std::fs::write(file, bytes).unwrap();
}

fn stdout_of(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stdout).into_owned()
}

/// The read commands on a store of `engine` in `dir`.
fn read_commands(dir: &Path, engine: &str) {
    run(&[&"info", &dir])
        .success()
        .stdout(contains(format!("engine        {engine}")))
        .stdout(contains("last commit   21 at 20"))
        .stdout(contains("typed slots   2"));
    run(&[&"slots", &dir])
        .success()
        .stdout(contains(
            "1\tusers\t62\t(alloc::string::String, u32) -> alloc::string::String",
        ))
        .stdout(contains("2\tvisits\t1\talloc::string::String -> u64"));

    let all = run(&[&"keys", &dir, &"users"]).success();
    let keys = stdout_of(&all);
    assert_eq!(keys.lines().count(), 62, "{keys}");
    assert!(
        keys.starts_with("(\"org1\", 0u32)\n(\"org1\", 1u32)\n"),
        "{keys}"
    );
    assert!(!keys.contains("(\"org1\", 5u32)"), "removed key listed");
    run(&[&"keys", &dir, &"1", &"--prefix", &"(\"org2\",)"])
        .success()
        .stdout("(\"org2\", 0u32)\n(\"org2\", 1u32)\n(\"org2\", 2u32)\n");
    run(&[
        &"keys",
        &dir,
        &"users",
        &"--prefix",
        &"(\"org\",)",
        &"--partial",
        &"--limit",
        &"2",
    ])
    .success()
    .stdout("(\"org1\", 0u32)\n(\"org1\", 1u32)\n");
    run(&[&"keys", &dir, &"visits", &"--values"])
        .success()
        .stdout("\"/home\"\t2\n");

    // Values: JSON by the catalog's type, hex on request, JSON by a named type.
    run(&[&"get", &dir, &"users", &"(\"org1\", 7u32)"])
        .success()
        .stdout(format!("{:?}\n", user(7, 2)));
    run(&[&"get", &dir, &"visits", &"\"/home\"", &"--format", &"hex"])
        .success()
        .stdout("02\n");
    run(&[
        &"get",
        &dir,
        &"2",
        &"\"/home\"",
        &"--type",
        &"u64",
        &"--at",
        &"20",
    ])
    .success()
    .stdout("1\n");
    run(&[&"get", &dir, &"users", &"(\"org1\", 5u32)"])
        .code(4)
        .stderr(contains("no key (\"org1\", 5u32)"));

    let versions = run(&[
        &"versions",
        &dir,
        &"users",
        &"(\"org1\", 5u32)",
        &"--values",
    ])
    .success();
    let versions = stdout_of(&versions);
    let lines: Vec<&str> = versions.lines().collect();
    assert_eq!(lines.len(), 5, "{versions}");
    assert!(lines[1].starts_with("1\t20"), "{versions}");
    assert!(
        lines[1].ends_with(&format!("\tput\t{:?}", user(5, 0))),
        "{versions}"
    );
    assert!(
        lines[4].starts_with("19\t") && lines[4].ends_with("\tremoved"),
        "{versions}"
    );

    run(&[&"verify", &dir])
        .success()
        .stdout(contains(format!("{engine}:")).and(contains("no damage")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_commands_on_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    bitcask(dir.path()).await.close().await.unwrap();
    read_commands(dir.path(), "bitcask");

    let dir = tempfile::tempdir().unwrap();
    lsm(dir.path()).await.close().await.unwrap();
    read_commands(dir.path(), "lsm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_commands_work_beside_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = bitcask(dir.path()).await;
    read_commands(dir.path(), "bitcask");
    // The writer goes on; the next read sees its commit.
    let mut txn = store.current();
    txn.slot_mut(&VISITS).unwrap().insert("/home", &3).unwrap();
    txn.commit().await.unwrap();
    run(&[&"get", &dir.path(), &"visits", &"\"/home\""])
        .success()
        .stdout("3\n");
    // Merge needs the writer lock: refused, not waited for.
    run(&[&"merge", &dir.path()])
        .code(3)
        .stderr(contains("lock"));
    drop(store);

    let dir = tempfile::tempdir().unwrap();
    let store = lsm(dir.path()).await;
    read_commands(dir.path(), "lsm");
    drop(store);
}

/// `verify` passes on the store in `dir`, then, after `damage` flips a byte in one of the
/// files ending in `ext` (and returns it), exits 1 naming that file and an offset.
fn verify_finds(dir: &Path, ext: &str, damage: impl FnOnce(&[PathBuf]) -> PathBuf) {
    run(&[&"verify", &dir])
        .success()
        .stdout(contains("no damage"));
    let files = files_ending(dir, ext);
    let damaged = damage(&files);
    let name = damaged.file_name().unwrap().to_str().unwrap();
    run(&[&"verify", &dir])
        .code(1)
        .stdout(contains(format!("damage: {name}: offset ")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_a_flipped_byte_in_a_sealed_bitcask_segment() {
    let dir = tempfile::tempdir().unwrap();
    bitcask(dir.path()).await.close().await.unwrap();
    verify_finds(dir.path(), "log", |segments| {
        assert!(segments.len() > 2, "{segments:?}");
        // The first segment is sealed (the active one is the last); its middle is in a value.
        let sealed = segments[0].clone();
        let len = std::fs::metadata(&sealed).unwrap().len() as usize;
        flip(&sealed, len / 2);
        sealed
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_a_flipped_byte_in_an_lsm_table_block() {
    let dir = tempfile::tempdir().unwrap();
    lsm(dir.path()).await.close().await.unwrap();
    verify_finds(dir.path(), "sst", |tables| {
        assert!(!tables.is_empty());
        // Just past the 43-byte file header: the first data block.
        flip(&tables[0], 60);
        tables[0].clone()
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convert_bitcask_to_lsm_to_bitcask_keeps_every_version() {
    let root = tempfile::tempdir().unwrap();
    let source = root.path().join("bitcask");
    bitcask(&source).await.close().await.unwrap();
    let original = history::<Bitcask<FileStorage>>(&source).await;
    assert_eq!(original[5].1.len(), 4, "three puts and a removal");

    let via_lsm = root.path().join("lsm");
    run(&[&"convert", &source, &via_lsm, &"--to", &"lsm"])
        .success()
        .stderr(contains("converted bitcask -> lsm"));
    run(&[&"info", &via_lsm])
        .success()
        .stdout(contains("engine        lsm"));
    assert_eq!(history::<Lsm<FileStorage>>(&via_lsm).await, original);

    let back = root.path().join("back");
    run(&[&"convert", &via_lsm, &back, &"--to", &"bitcask"]).success();
    assert_eq!(history::<Bitcask<FileStorage>>(&back).await, original);
    read_commands(&back, "bitcask");

    // Into a store that holds files: refused.
    run(&[&"convert", &source, &back, &"--to", &"lsm"])
        .code(2)
        .stderr(contains("not empty"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_import_backup_and_merge() {
    let root = tempfile::tempdir().unwrap();
    let source = root.path().join("lsm");
    lsm(&source).await.close().await.unwrap();
    let original = history::<Lsm<FileStorage>>(&source).await;

    // Through a file: the new store takes the stream's engine.
    let stream = root.path().join("stream");
    run(&[&"export", &source, &stream])
        .success()
        .stderr(contains("exported: 21 commits"));
    let imported = root.path().join("imported");
    run(&[&"import", &imported, &stream]).success();
    assert_eq!(history::<Lsm<FileStorage>>(&imported).await, original);

    // Through a pipe, into the other engine.
    let piped = root.path().join("piped");
    let out = kv().arg("export").arg(&source).arg("-").output().unwrap();
    assert!(out.status.success());
    kv().arg("import")
        .arg(&piped)
        .arg("-")
        .args(["--engine", "bitcask"])
        .write_stdin(out.stdout)
        .assert()
        .success();
    assert_eq!(history::<Bitcask<FileStorage>>(&piped).await, original);
    // Into a store that has those commits already, or as the wrong engine: refused.
    run(&[&"import", &piped, &stream])
        .code(3)
        .stderr(contains("new store"));
    run(&[&"import", &piped, &stream, &"--engine", &"lsm"])
        .code(2)
        .stderr(contains("a bitcask store"));

    let backup = root.path().join("backup");
    run(&[&"backup", &source, &backup]).success();
    assert_eq!(history::<Lsm<FileStorage>>(&backup).await, original);
    run(&[&"verify", &backup]).success();

    // Merge keeps each key's latest value only.
    run(&[&"merge", &backup])
        .success()
        .stdout(contains("merged:"));
    run(&[&"versions", &backup, &"users", &"(\"org1\", 7u32)"])
        .success()
        .stdout(predicate::function(|s: &str| s.lines().count() == 2));
    run(&[&"get", &backup, &"users", &"(\"org1\", 7u32)"])
        .success()
        .stdout(format!("{:?}\n", user(7, 2)));
}

#[test]
fn bad_usage_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    kv().assert().code(2);
    run(&[&"frobnicate"]).code(2);
    run(&[&"keys"]).code(2);
    run(&[&"convert", &dir.path(), &dir.path()]).code(2);
    run(&[&"get", &dir.path(), &"1", &"k", &"--format", &"yaml"]).code(2);
    kv().arg("--help")
        .assert()
        .success()
        .stdout(contains("Exit codes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_slots_and_types_exit_2_missing_stores_3() {
    let dir = tempfile::tempdir().unwrap();
    bitcask(dir.path()).await.close().await.unwrap();
    let d = dir.path();
    // The catalog knows the key type: numbers may leave out their suffix.
    run(&[&"get", &d, &"users", &"(\"org1\", 3)"])
        .success()
        .stdout(format!("{:?}\n", user(3, 2)));
    run(&[&"get", &d, &"users", &"(\"org1\", -3)"])
        .code(2)
        .stderr(contains("suffixed number"))
        .stderr(contains(
            "key type of slot users: (alloc::string::String, u32)",
        ));
    run(&[&"get", &d, &"3", &"3"])
        .code(2)
        .stderr(contains("suffixed number"));
    run(&[&"get", &d, &"nope", &"1u8"])
        .code(2)
        .stderr(contains("users, visits"));
    run(&[&"get", &d, &"255", &"1u8"]).code(2);
    run(&[
        &"get",
        &d,
        &"users",
        &"(\"org1\", 3u32)",
        &"--type",
        &"HashMap<u8, u8>",
    ])
    .code(2);
    run(&[&"keys", &d, &"3", &"--format", &"json"])
        .code(2)
        .stderr(contains("--type"));
    run(&[&"get", &d, &"users", &"(\"org1\", 3u32)", &"--at", &"999"]).code(4);
    run(&[&"info", &d.join("missing")])
        .code(3)
        .stderr(contains("not a kv store"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_the_tags_cannot_delimit_show_and_read_as_raw_hex() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::<Bitcask<FileStorage>>::open(FileStorage::open(dir.path()).await.unwrap())
        .await
        .unwrap();
    // A tuple as a map key runs into its value: no literal for it, so raw hex.
    let key = std::collections::BTreeMap::from([((1u8, 2u8), 3u8)]);
    let mut txn = store.current();
    txn.insert(3, &key, 5u8).unwrap();
    txn.commit().await.unwrap();
    store.close().await.unwrap();

    let listed = run(&[&"keys", &dir.path(), &"3"]).success();
    let raw = stdout_of(&listed).trim().to_string();
    assert!(raw.starts_with("raw:39"), "{raw}");
    run(&[&"get", &dir.path(), &"3", &raw, &"--type", &"u8"])
        .success()
        .stdout("5\n");
    run(&[&"slots", &dir.path()])
        .success()
        .stdout(contains("3\t-\t1\t(not in the catalog)"));
}
