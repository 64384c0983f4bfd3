//! What says whose a file is: the header every file begins with, and the store's `IDENTITY`.

use kv_api::{Error, Storage, StorageFile};
use kv_backends::MemoryStorage;
use kv_engine_kit::header::{BadHeader, FORMAT, FileHeader, LEN, StoreId};
use kv_engine_kit::identity::{self, Found, IDENTITY, IDENTITY_TMP, Identity};

use crate::util::{FIXED_STORE, block_on, both, fix_frames};

/// `FileHeader::decode` of the input as the start of a file: a header re-encodes to its 43
/// bytes, `check` accepts the file for exactly that header (not for another kind, store or
/// file id), and a file without a valid header for none. `check_file` (one read of the first
/// bytes of a stored file) agrees with `check`.
pub fn file_header(data: &[u8]) {
    both(data, fix_frames(data), |buf| {
        let decoded = FileHeader::decode(buf);
        let expected = match decoded {
            Ok(h) => {
                assert_eq!(h.to_bytes(), buf[..LEN], "re-encoded header");
                assert!(h.check(buf, "f").is_ok(), "{h:?} rejected its own file");
                let mut store = h.store.bytes();
                store[0] ^= 1;
                for other in [
                    FileHeader { kind: !h.kind, ..h },
                    FileHeader {
                        store: StoreId::from_bytes(store),
                        ..h
                    },
                    FileHeader {
                        file_id: !h.file_id,
                        ..h
                    },
                ] {
                    assert!(other.check(buf, "f").is_err(), "{other:?} accepted {h:?}");
                }
                h
            }
            Err(bad) => {
                match bad {
                    BadHeader::Short => assert!(buf.len() < LEN, "short at {}", buf.len()),
                    BadHeader::Format(f) => assert_ne!(f, FORMAT),
                    BadHeader::Damaged => {}
                }
                let h = FileHeader {
                    kind: buf.first().copied().unwrap_or(0),
                    store: FIXED_STORE,
                    file_id: 1,
                };
                assert!(h.check(buf, "f").is_err(), "no header, but accepted");
                h
            }
        };
        let checked = expected.check(buf, "f").map_err(|e| e.to_string());
        let stored = block_on(async {
            let storage = MemoryStorage::new();
            let file = storage.create("f").await.expect("create in memory");
            file.append(buf).await.expect("append in memory");
            expected.check_file(&file, "f").await
        });
        assert_eq!(stored.map_err(|e| e.to_string()), checked, "check_file");
    });
}

/// `Identity::decode` of the input as an `IDENTITY` file: an identity re-encodes to the same
/// bytes. Then `identity::check` of an open by each engine, on a storage holding the input as
/// `IDENTITY` (it must find that store, or refuse it as another engine's or format's, or as
/// damaged), and on one without `IDENTITY` whose files the input's first byte picks (the input
/// as the manifest): a new store, foreign files, a format-1 store, or a lost `IDENTITY`.
pub fn identity(data: &[u8]) {
    both(data, fix_frames(data), |buf| {
        let decoded = Identity::decode(buf);
        if let Ok(id) = &decoded {
            assert_eq!(id.encode(), buf, "re-encoded identity");
        }
        for (engine, manifest) in [("bitcask", "META"), ("lsm", "MANIFEST")] {
            with_identity(buf, &decoded, engine, manifest);
            without_identity(buf, engine, manifest);
        }
    });
}

/// A file of the engine's own in [`check`]: its manifest and one data file.
const OWN_FILE: &str = "00000001.log";

fn check(storage: &MemoryStorage, engine: &'static str, manifest: &str) -> kv_api::Result<Found> {
    block_on(async {
        let mut names = storage.list().await.expect("list in memory");
        names.sort();
        let is_own = |n: &str| n == manifest || n == OWN_FILE;
        identity::check(storage, engine, &names, is_own, manifest).await
    })
}

fn storage_with(files: &[(&str, &[u8])]) -> MemoryStorage {
    let storage = MemoryStorage::new();
    block_on(async {
        for (name, bytes) in files {
            let file = storage.create(name).await.expect("create in memory");
            file.append(bytes).await.expect("append in memory");
        }
    });
    storage
}

fn with_identity(
    buf: &[u8],
    decoded: &kv_api::Result<Identity>,
    engine: &'static str,
    manifest: &str,
) {
    let storage = storage_with(&[(IDENTITY, buf), (manifest, b"")]);
    let found = check(&storage, engine, manifest);
    match (decoded, found) {
        (Ok(id), Ok(Found::Store(found))) => {
            assert_eq!(&found, id);
            assert!(id.format == FORMAT && id.engine == engine, "{id:?} let in");
        }
        (Ok(id), Err(Error::Incompatible { .. })) => {
            assert!(id.format > FORMAT || (id.format == FORMAT && id.engine != engine));
        }
        (Ok(id), Err(Error::Corruption { .. })) => assert!(id.format < FORMAT),
        (Err(_), Err(Error::Corruption { .. })) => {}
        (decoded, found) => panic!("{decoded:?}: an open by {engine} found {found:?}"),
    }
}

fn without_identity(buf: &[u8], engine: &'static str, manifest: &str) {
    let pick = buf.first().copied().unwrap_or(0);
    let mut files: Vec<(&str, &[u8])> = Vec::new();
    let candidates: [(&str, &[u8]); 4] = [
        (IDENTITY_TMP, buf),
        (manifest, buf),
        (OWN_FILE, buf),
        ("notes.txt", b"x"),
    ];
    for (bit, file) in candidates.into_iter().enumerate() {
        if pick & (1 << bit) != 0 {
            files.push(file);
        }
    }
    let has = |name: &str| files.iter().any(|(n, _)| *n == name);
    let found = check(&storage_with(&files), engine, manifest);
    let with_header = !matches!(
        FileHeader::decode(buf),
        Err(BadHeader::Short | BadHeader::Damaged)
    );
    let ok = match &found {
        Ok(Found::Empty) => files.iter().all(|(n, _)| identity::is_identity_file(n)),
        Err(Error::Foreign { .. }) => has("notes.txt"),
        Err(Error::Incompatible { .. }) => !has("notes.txt") && has(manifest) && !with_header,
        Err(Error::Corruption { .. }) => {
            !has("notes.txt") && (has(manifest) || has(OWN_FILE)) && (with_header || !has(manifest))
        }
        _ => false,
    };
    assert!(ok, "{engine} without IDENTITY, files {pick:#x}: {found:?}");
}
