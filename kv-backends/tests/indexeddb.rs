//! `IndexedDbStorage` in a real browser (headless Chromium): `scripts/test-wasm.sh`.
#![cfg(all(target_arch = "wasm32", feature = "indexeddb"))]
#![allow(clippy::unwrap_used)]

use kv_api::{Error, Storage, StorageFile};
use kv_backends::{CHUNK_SIZE, IndexedDbStorage};
use wasm_bindgen_test::wasm_bindgen_test;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const C: usize = CHUNK_SIZE as usize;

/// A database name no other test (or earlier run in the same profile) uses.
fn fresh(test: &str) -> String {
    format!(
        "kv-test-{test}-{}-{}",
        js_sys::Date::now(),
        (js_sys::Math::random() * 1e9) as u64
    )
}

/// Deterministic bytes, different at every offset within a few chunks.
fn pattern(start: usize, len: usize) -> Vec<u8> {
    (start..start + len)
        .map(|i| (i % 251) as u8 ^ (i / 251 % 256) as u8)
        .collect()
}

fn io_kind(r: Result<impl std::fmt::Debug, Error>) -> std::io::ErrorKind {
    match r {
        Err(Error::Io { source, .. }) => source.kind(),
        other => panic!("expected an i/o error, got {other:?}"),
    }
}

async fn sorted_list(s: &IndexedDbStorage) -> Vec<String> {
    let mut names = s.list().await.unwrap();
    names.sort();
    names
}

/// Lets spawned tasks and IndexedDB callbacks run.
async fn yield_now() {
    let p = js_sys::Promise::resolve(&wasm_bindgen::JsValue::UNDEFINED);
    wasm_bindgen_futures::JsFuture::from(p).await.unwrap();
}

#[wasm_bindgen_test]
async fn append_read_len_across_handles() {
    let s = IndexedDbStorage::open(&fresh("handles")).await.unwrap();
    let f = s.create("a").await.unwrap();
    assert_eq!(f.append(b"hello ").await.unwrap(), 0);
    assert_eq!(f.append(b"world").await.unwrap(), 6);
    let g = s.open("a").await.unwrap();
    let h = s.clone().open("a").await.unwrap();
    assert_eq!(g.len().await.unwrap(), 11);
    assert_eq!(g.read_at(3, 6).await.unwrap(), b"lo wor");
    g.append(b"!").await.unwrap();
    assert_eq!(f.read_at(0, 12).await.unwrap(), b"hello world!");
    assert_eq!(h.clone().len().await.unwrap(), 12);
    assert_eq!(f.read_at(12, 0).await.unwrap(), b"");
}

#[wasm_bindgen_test]
async fn synced_data_survives_reopen() {
    let name = fresh("reopen");
    {
        let s = IndexedDbStorage::open(&name).await.unwrap();
        let f = s.create("log").await.unwrap();
        f.append(b"durable").await.unwrap();
        f.sync().await.unwrap();
        s.create("empty").await.unwrap();
        s.sync().await.unwrap();
    }
    let s = IndexedDbStorage::open(&name).await.unwrap();
    assert_eq!(sorted_list(&s).await, ["empty", "log"]);
    let f = s.open("log").await.unwrap();
    assert_eq!(f.len().await.unwrap(), 7);
    assert_eq!(f.read_at(0, 7).await.unwrap(), b"durable");
    assert_eq!(s.open("empty").await.unwrap().len().await.unwrap(), 0);
}

#[wasm_bindgen_test]
async fn unsynced_appends_are_lost_when_the_tab_closes() {
    let name = fresh("closed-tab");
    {
        let s = IndexedDbStorage::open(&name).await.unwrap();
        let f = s.create("log").await.unwrap();
        f.append(&pattern(0, C + 10)).await.unwrap();
        f.sync().await.unwrap();
        f.append(&pattern(C + 10, 2 * C)).await.unwrap();
        // Visible through the same storage while it lives, even from a new handle.
        let g = s.open("log").await.unwrap();
        assert_eq!(g.len().await.unwrap(), 3 * C as u64 + 10);
        // Dropped without sync: a closed tab.
    }
    let s = IndexedDbStorage::open(&name).await.unwrap();
    let f = s.open("log").await.unwrap();
    assert_eq!(f.len().await.unwrap(), C as u64 + 10);
    assert_eq!(f.read_at(0, C + 10).await.unwrap(), pattern(0, C + 10));
}

#[wasm_bindgen_test]
async fn appends_during_a_sync_stay_pending() {
    let name = fresh("group-commit");
    let s = IndexedDbStorage::open(&name).await.unwrap();
    let f = s.create("log").await.unwrap();
    f.append(&pattern(0, 1000)).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let g = f.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let _ = tx.send(g.sync().await);
    });
    yield_now().await; // the sync is now waiting for IndexedDB
    f.append(&pattern(1000, C)).await.unwrap();
    rx.await.unwrap().unwrap();
    assert_eq!(f.read_at(0, C + 1000).await.unwrap(), pattern(0, C + 1000));
    {
        let other = IndexedDbStorage::open(&name).await.unwrap();
        let len = other.open("log").await.unwrap().len().await.unwrap();
        // The sync overlapped the second append and wrote only what came before it.
        assert_eq!(len, 1000);
    }
    f.sync().await.unwrap();
    let other = IndexedDbStorage::open(&name).await.unwrap();
    let o = other.open("log").await.unwrap();
    assert_eq!(o.read_at(0, C + 1000).await.unwrap(), pattern(0, C + 1000));
}

#[wasm_bindgen_test]
async fn truncate_is_durable_at_the_next_sync() {
    let name = fresh("truncate");
    let s = IndexedDbStorage::open(&name).await.unwrap();
    let f = s.create("log").await.unwrap();
    f.append(&pattern(0, 3 * C + 500)).await.unwrap();
    f.sync().await.unwrap();
    // Within the in-memory tail.
    f.truncate(3 * C as u64 + 100).await.unwrap();
    assert_eq!(f.len().await.unwrap(), 3 * C as u64 + 100);
    // Not durable until sync: a fresh handle still sees the old length.
    {
        let other = IndexedDbStorage::open(&name).await.unwrap();
        let len = other.open("log").await.unwrap().len().await.unwrap();
        assert_eq!(len, 3 * C as u64 + 500);
    }
    // Below the tail, into a synced chunk, then append over the cut.
    f.truncate(C as u64 + 7).await.unwrap();
    assert!(f.read_at(C as u64, 8).await.is_err());
    assert_eq!(
        f.read_at(C as u64 - 3, 10).await.unwrap(),
        pattern(C - 3, 10)
    );
    f.append(b"tail").await.unwrap();
    f.sync().await.unwrap();
    let mut want = pattern(0, C + 7);
    want.extend_from_slice(b"tail");
    assert_eq!(f.read_at(0, want.len()).await.unwrap(), want);
    assert!(matches!(
        f.truncate(want.len() as u64 + 1).await,
        Err(Error::InvalidArgument(_))
    ));
    // To a chunk boundary and to zero.
    let other = IndexedDbStorage::open_with_cache(&name, 0).await.unwrap();
    let o = other.open("log").await.unwrap();
    assert_eq!(o.read_at(0, want.len()).await.unwrap(), want);
    o.truncate(C as u64).await.unwrap();
    o.sync().await.unwrap();
    let third = IndexedDbStorage::open(&name).await.unwrap();
    let t = third.open("log").await.unwrap();
    assert_eq!(t.len().await.unwrap(), C as u64);
    t.truncate(0).await.unwrap();
    t.sync().await.unwrap();
    t.append(b"new").await.unwrap();
    t.sync().await.unwrap();
    let fourth = IndexedDbStorage::open(&name).await.unwrap();
    let l = fourth.open("log").await.unwrap();
    assert_eq!(l.len().await.unwrap(), 3);
    assert_eq!(l.read_at(0, 3).await.unwrap(), b"new");
}

#[wasm_bindgen_test]
async fn rename_replaces_the_target_atomically() {
    let name = fresh("rename");
    let s = IndexedDbStorage::open(&name).await.unwrap();
    let old = s.create("MANIFEST").await.unwrap();
    old.append(&pattern(0, 2 * C)).await.unwrap();
    old.sync().await.unwrap();
    let new = s.create("MANIFEST.tmp").await.unwrap();
    new.append(b"next manifest").await.unwrap();
    new.sync().await.unwrap();
    s.rename("MANIFEST.tmp", "MANIFEST").await.unwrap();
    s.sync().await.unwrap();
    assert_eq!(sorted_list(&s).await, ["MANIFEST"]);
    // The moved handle keeps its file; the replaced one is gone.
    assert_eq!(new.read_at(0, 13).await.unwrap(), b"next manifest");
    assert_eq!(io_kind(old.len().await), std::io::ErrorKind::NotFound);
    let m = s.open("MANIFEST").await.unwrap();
    assert_eq!(m.read_at(0, 13).await.unwrap(), b"next manifest");
    assert_eq!(
        io_kind(s.rename("missing", "x").await),
        std::io::ErrorKind::NotFound
    );
    // Appends after the rename land in the renamed file.
    new.append(b"!").await.unwrap();
    new.sync().await.unwrap();
    let other = IndexedDbStorage::open(&name).await.unwrap();
    assert_eq!(sorted_list(&other).await, ["MANIFEST"]);
    let o = other.open("MANIFEST").await.unwrap();
    assert_eq!(o.len().await.unwrap(), 14);
    assert_eq!(o.read_at(0, 14).await.unwrap(), b"next manifest!");
    assert_eq!(
        io_kind(other.open("MANIFEST.tmp").await),
        std::io::ErrorKind::NotFound
    );
}

#[wasm_bindgen_test]
async fn create_replaces_and_remove_deletes() {
    let name = fresh("remove");
    let s = IndexedDbStorage::open(&name).await.unwrap();
    let a = s.create("a").await.unwrap();
    a.append(b"first").await.unwrap();
    a.sync().await.unwrap();
    let a2 = s.create("a").await.unwrap();
    assert_eq!(a2.len().await.unwrap(), 0);
    assert_eq!(io_kind(a.len().await), std::io::ErrorKind::NotFound);
    s.create("b").await.unwrap();
    assert!(s.exists("b").await.unwrap());
    s.remove("b").await.unwrap();
    s.remove("b").await.unwrap(); // missing: not an error
    assert!(!s.exists("b").await.unwrap());
    assert_eq!(io_kind(s.open("b").await), std::io::ErrorKind::NotFound);
    assert_eq!(sorted_list(&s).await, ["a"]);
    let other = IndexedDbStorage::open(&name).await.unwrap();
    assert_eq!(sorted_list(&other).await, ["a"]);
    assert_eq!(other.open("a").await.unwrap().len().await.unwrap(), 0);
}

#[wasm_bindgen_test]
async fn list_and_exists() {
    let s = IndexedDbStorage::open(&fresh("list")).await.unwrap();
    assert!(s.list().await.unwrap().is_empty());
    for n in ["000001.log", "000002.log", "MANIFEST", "x y/z"] {
        s.create(n).await.unwrap();
    }
    assert_eq!(
        sorted_list(&s).await,
        ["000001.log", "000002.log", "MANIFEST", "x y/z"]
    );
    assert!(s.exists("MANIFEST").await.unwrap());
    assert!(!s.exists("manifest").await.unwrap());
}

#[wasm_bindgen_test]
async fn second_writer_is_locked_until_the_guard_drops() {
    let name = fresh("lock");
    // Chromium has Web Locks: this exercises them, not the in-page fallback.
    let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).unwrap();
    assert!(
        js_sys::Reflect::get(&navigator, &"locks".into())
            .unwrap()
            .is_object()
    );
    let a = IndexedDbStorage::open(&name).await.unwrap();
    let b = IndexedDbStorage::open(&name).await.unwrap();
    let guard = a.lock().await.unwrap();
    assert!(matches!(b.lock().await, Err(Error::Locked(_))));
    assert!(matches!(a.lock().await, Err(Error::Locked(_))));
    drop(guard);
    let guard_b = b.lock().await.unwrap();
    assert!(matches!(a.lock().await, Err(Error::Locked(_))));
    drop(guard_b);
    // Another storage's lock is independent.
    let c = IndexedDbStorage::open(&fresh("lock-other")).await.unwrap();
    let _gc = c.lock().await.unwrap();
    let _ga = a.lock().await.unwrap();
}

#[wasm_bindgen_test]
async fn reading_past_the_end_is_an_error() {
    let s = IndexedDbStorage::open(&fresh("eof")).await.unwrap();
    let f = s.create("a").await.unwrap();
    f.append(&pattern(0, C + 5)).await.unwrap();
    assert_eq!(
        io_kind(f.read_at(C as u64, 6).await),
        std::io::ErrorKind::UnexpectedEof
    );
    f.sync().await.unwrap();
    assert_eq!(
        io_kind(f.read_at(0, C + 6).await),
        std::io::ErrorKind::UnexpectedEof
    );
    assert_eq!(
        io_kind(f.read_at(u64::MAX, 1).await),
        std::io::ErrorKind::UnexpectedEof
    );
    assert_eq!(f.read_at(C as u64 + 5, 0).await.unwrap(), b"");
}

#[wasm_bindgen_test]
async fn appends_straddling_chunk_boundaries() {
    let name = fresh("chunks");
    let s = IndexedDbStorage::open(&name).await.unwrap();
    let f = s.create("seg").await.unwrap();
    let mut model = Vec::new();
    // Sizes chosen to end just before, on, and after boundaries, and to span several chunks.
    for (i, size) in [C - 1, 1, 1, C - 2, 3, 2 * C + 17, 5, C]
        .into_iter()
        .enumerate()
    {
        let bytes = pattern(model.len(), size);
        assert_eq!(f.append(&bytes).await.unwrap(), model.len() as u64);
        model.extend_from_slice(&bytes);
        if i % 2 == 1 {
            f.sync().await.unwrap();
        }
        // Reads across every boundary so far, mixing synced chunks and the tail.
        for b in (C..model.len()).step_by(C) {
            let from = b - 2;
            let to = (b + 3).min(model.len());
            let got = f.read_at(from as u64, to - from).await.unwrap();
            assert_eq!(got, model[from..to], "boundary {b} after append {i}");
        }
    }
    assert_eq!(f.read_at(0, model.len()).await.unwrap(), model);
    f.sync().await.unwrap();
    // From IndexedDB alone, with no cache: whole file and boundary-crossing slices.
    let other = IndexedDbStorage::open_with_cache(&name, 0).await.unwrap();
    let o = other.open("seg").await.unwrap();
    assert_eq!(o.len().await.unwrap(), model.len() as u64);
    assert_eq!(o.read_at(0, model.len()).await.unwrap(), model);
    let (from, to) = (C / 2, 3 * C + C / 2);
    assert_eq!(
        o.read_at(from as u64, to - from).await.unwrap(),
        model[from..to]
    );
    // Appending to a reopened file with a partial last chunk.
    o.append(b"more").await.unwrap();
    o.sync().await.unwrap();
    model.extend_from_slice(b"more");
    let third = IndexedDbStorage::open(&name).await.unwrap();
    let t = third.open("seg").await.unwrap();
    assert_eq!(t.read_at(0, model.len()).await.unwrap(), model);
}

#[wasm_bindgen_test]
async fn delete_drops_the_database() {
    let name = fresh("delete");
    {
        let s = IndexedDbStorage::open(&name).await.unwrap();
        let f = s.create("a").await.unwrap();
        f.append(b"x").await.unwrap();
        f.sync().await.unwrap();
    }
    IndexedDbStorage::delete(&name).await.unwrap();
    let s = IndexedDbStorage::open(&name).await.unwrap();
    assert!(s.list().await.unwrap().is_empty());
}
