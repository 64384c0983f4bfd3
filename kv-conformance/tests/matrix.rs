//! The whole suite on every engine x backend of the workspace, and a check that no exported
//! engine or backend is missing from this list.
//! (Native; the browser matrix is `tests/browser.rs`.)
#![cfg(not(target_arch = "wasm32"))]

kv_conformance::matrix! {
    bitcask_memory: engine = kv_bitcask::Bitcask, factory = kv_conformance::MemoryFactory;
    bitcask_file: engine = kv_bitcask::Bitcask, factory = kv_conformance::TempFileFactory;
    lsm_memory: engine = kv_lsm::Lsm, factory = kv_conformance::MemoryFactory;
    lsm_file: engine = kv_lsm::Lsm, factory = kv_conformance::TempFileFactory;
}

/// Engines of the workspace: every member crate `kv-NAME` that is not one of the
/// infrastructure crates is an engine named `NAME` (its `Engine::NAME`).
fn workspace_engines() -> Vec<String> {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("read the workspace Cargo.toml");
    let members = text
        .split("members")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("workspace members list");
    members
        .split('"')
        .filter_map(|m| m.strip_prefix("kv-"))
        .filter(|m| !["api", "engine-kit", "backends", "conformance"].contains(m))
        .map(str::to_string)
        .collect()
}

#[test]
fn matrix_covers_every_engine_and_backend() {
    let registered = registered();
    let engines = workspace_engines();
    assert!(engines.len() >= 2, "found engines {engines:?}");
    for engine in &engines {
        for backend in kv_backends::BACKENDS {
            assert!(
                registered.iter().any(|(e, b)| e == engine && b == backend),
                "the conformance matrix misses engine {engine} on backend {backend}; registered: {registered:?}"
            );
        }
    }
}

#[test]
fn every_combination_runs_every_case() {
    for cases in [
        bitcask_memory::CASES,
        bitcask_file::CASES,
        lsm_memory::CASES,
        lsm_file::CASES,
    ] {
        assert_eq!(cases, bitcask_memory::CASES);
    }
    assert!(bitcask_memory::CASES.len() >= 70);
}
