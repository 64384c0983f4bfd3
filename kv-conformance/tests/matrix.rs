//! The whole suite on every engine x backend of the workspace, and checks against lists kept
//! elsewhere: every engine of the workspace on every backend of `kv_backends::BACKENDS` is in
//! the matrix, and every case function of `src/cases/` is a test of every combination.
//! (Native; the browser matrix is `tests/browser.rs`.)
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeSet;
use std::path::Path;

use kv_conformance::kv_api::Engine;

kv_conformance::matrix! {
    bitcask_memory: engine = kv_bitcask::Bitcask, factory = kv_conformance::MemoryFactory;
    bitcask_file: engine = kv_bitcask::Bitcask, factory = kv_conformance::TempFileFactory;
    lsm_memory: engine = kv_lsm::Lsm, factory = kv_conformance::MemoryFactory;
    lsm_file: engine = kv_lsm::Lsm, factory = kv_conformance::TempFileFactory;
}

/// Member crates `kv-NAME` of the workspace that are not engines.
const NOT_ENGINES: &[&str] = &[
    "api",
    "engine-kit",
    "backends",
    "conformance",
    "fuzz",
    "db-cli",
];

/// Member crates `kv-NAME` that are engines over a remote store, not over a `Storage`
/// backend: they run the cases that apply to them on their own places (kv-etcd:
/// `kv-etcd/tests/conformance.rs`, on the etcd test cluster), not in this matrix.
const REMOTE_ENGINES: &[&str] = &["etcd"];

/// The `kv-NAME` members of the workspace, as `NAME`s.
fn workspace_members() -> Vec<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("read the workspace Cargo.toml");
    let members = text
        .split("members")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("workspace members list");
    members
        .split('"')
        .filter_map(|m| m.strip_prefix("kv-"))
        .map(str::to_string)
        .collect()
}

/// Engines of the workspace: every member crate `kv-NAME` that is not in [`NOT_ENGINES`] is
/// an engine named `NAME` (its `Engine::NAME`).
fn workspace_engines() -> BTreeSet<String> {
    let members = workspace_members();
    for infra in NOT_ENGINES.iter().chain(REMOTE_ENGINES) {
        assert!(
            members.iter().any(|m| m == infra),
            "NOT_ENGINES names kv-{infra}, which is no member of the workspace ({members:?})"
        );
    }
    members
        .into_iter()
        .filter(|m| !NOT_ENGINES.contains(&m.as_str()) && !REMOTE_ENGINES.contains(&m.as_str()))
        .collect()
}

/// Every engine of the workspace (by its crate) on every backend `kv_backends` has on this
/// target is registered, nothing else is, and nothing twice.
#[test]
fn matrix_covers_every_engine_and_backend() {
    let registered = registered();
    let engines = workspace_engines();
    let compiled: BTreeSet<String> = [
        <kv_bitcask::Bitcask<kv_backends::MemoryStorage> as Engine>::NAME,
        <kv_lsm::Lsm<kv_backends::MemoryStorage> as Engine>::NAME,
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    assert_eq!(
        engines, compiled,
        "the engine crates of the workspace are not the engines this test is built with"
    );
    let mut want = BTreeSet::new();
    for engine in &engines {
        for backend in kv_backends::BACKENDS {
            assert!(
                registered.iter().any(|(e, b)| e == engine && b == backend),
                "the conformance matrix misses engine {engine} on backend {backend}; registered: {registered:?}"
            );
            want.insert((engine.clone(), backend.to_string()));
        }
    }
    let got: BTreeSet<(String, String)> = registered
        .iter()
        .map(|(e, b)| (e.to_string(), b.to_string()))
        .collect();
    assert_eq!(
        got.len(),
        registered.len(),
        "a combination is registered twice: {registered:?}"
    );
    assert_eq!(
        got, want,
        "the matrix registers combinations that do not exist"
    );
}

/// The case functions written in `src/cases/*.rs` (each `pub async fn NAME<E:
/// EngineFamily, F: StorageFactory>` or `NAME<E: Runs<F>, F: Place>` of group `GROUP`), as the test names `GROUP_NAME` that
/// `__suite_cases!` gives them. `indexeddb.rs` is left out: it exists only in the browser,
/// where `tests/browser.rs` runs it.
fn case_functions() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cases");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("read src/cases") {
        let path = entry.expect("directory entry").path();
        let Some(group) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().is_none_or(|e| e != "rs") || ["mod", "indexeddb"].contains(&group) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read a case file");
        for after in text.split("pub async fn ").skip(1) {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let generics = after.split('(').next().unwrap_or_default();
            let on_storage =
                generics.contains("EngineFamily") && generics.contains("StorageFactory");
            let on_any_place = generics.contains("Runs<F>") && generics.contains("Place");
            if on_storage || on_any_place {
                out.insert(format!("{group}_{name}"));
            }
        }
    }
    out
}

/// Every case function is a test of every combination, and every test is a case function:
/// a case written but not listed in `__suite_cases!` would never run.
#[test]
fn every_case_function_runs_on_every_combination() {
    let functions = case_functions();
    assert!(
        functions.len() >= 70,
        "found only {} case functions in src/cases: {functions:?}",
        functions.len()
    );
    for (module, cases) in [
        ("bitcask_memory", bitcask_memory::CASES),
        ("bitcask_file", bitcask_file::CASES),
        ("lsm_memory", lsm_memory::CASES),
        ("lsm_file", lsm_file::CASES),
    ] {
        let tests: BTreeSet<String> = cases.iter().map(|c| c.to_string()).collect();
        assert_eq!(tests.len(), cases.len(), "{module} lists a test twice");
        let unlisted: Vec<_> = functions.difference(&tests).collect();
        assert!(
            unlisted.is_empty(),
            "{module} does not run the case functions {unlisted:?}: list them in \
             __suite_cases! (src/lib.rs) as GROUP_NAME => GROUP::NAME"
        );
        let unknown: Vec<_> = tests.difference(&functions).collect();
        assert!(
            unknown.is_empty(),
            "{module} runs tests {unknown:?} that are not named GROUP_NAME after a case \
             function NAME of src/cases/GROUP.rs"
        );
    }
}
