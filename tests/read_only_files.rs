//! `open_read_only` on a store whose files and directory the user may read but not write:
//! everything reads back, and every file is opened without write access.
//!
//! Tests often run as root, whom permission bits do not stop. So the test checks the open
//! descriptors themselves on Linux (`/proc/self/fdinfo`: the access mode of each descriptor
//! of a file in the store's directory must be read-only), which holds for root too; and it
//! checks that a writable open fails only where the permissions are enforced (it probes by
//! trying to create a file in the read-only directory), saying so when they are not.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kv_db::{Error, KvStore, Result, SlotDef, backends::FileStorage};

const ITEMS: SlotDef<u32, String> = SlotDef::new(1, "items");

fn io(op: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(op, e)
}

fn set_mode(dir: &Path, file_mode: u32, dir_mode: u32) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(io("read_dir"))? {
        let path = entry.map_err(io("read_dir"))?.path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file_mode))
            .map_err(io("chmod"))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(dir_mode)).map_err(io("chmod"))
}

/// The access modes (`O_ACCMODE` of `flags`) of this process's descriptors on files in `dir`.
#[cfg(target_os = "linux")]
fn access_modes_in(dir: &Path) -> Result<Vec<(String, u32)>> {
    let dir = std::fs::canonicalize(dir).map_err(io("canonicalize"))?;
    let mut modes = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").map_err(io("/proc/self/fd"))? {
        let entry = entry.map_err(io("/proc/self/fd"))?;
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue; // closed meanwhile (read_dir's own descriptor)
        };
        if target.parent() != Some(dir.as_path()) {
            continue;
        }
        let fd = entry.file_name();
        let info = std::fs::read_to_string(Path::new("/proc/self/fdinfo").join(&fd))
            .map_err(io("fdinfo"))?;
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
            .ok_or_else(|| Error::InvalidArgument(format!("no flags in fdinfo: {info}")))?;
        modes.push((target.display().to_string(), flags & 0o3));
    }
    Ok(modes)
}

#[tokio::test]
async fn open_read_only_on_read_only_files() -> Result<()> {
    let tmp = tempfile::tempdir().map_err(io("tempdir"))?;
    let dir = tmp.path().join("store");
    {
        let store = KvStore::open(FileStorage::open(&dir).await?).await?;
        let mut txn = store.current();
        let mut items = txn.slot_mut(&ITEMS)?;
        for i in 0..100u32 {
            items.insert(&i, &format!("item {i}"))?;
        }
        txn.commit().await?;
        store.close().await?;
    }
    set_mode(&dir, 0o444, 0o555)?;
    let enforced = std::fs::File::create(dir.join("probe")).is_err();
    let _ = std::fs::remove_file(dir.join("probe"));

    let outcome = async {
        let ro = KvStore::open_read_only(FileStorage::open(&dir).await?).await?;
        let snap = ro.snapshot();
        let items = snap.slot(&ITEMS)?;
        for i in 0..100u32 {
            assert_eq!(items.get(&i).await?, Some(format!("item {i}")));
        }
        assert!(matches!(ro.merge().await, Err(Error::ReadOnly(_))));
        #[cfg(target_os = "linux")]
        {
            let modes = access_modes_in(&dir)?;
            assert!(!modes.is_empty(), "the store holds no file open");
            for (file, mode) in &modes {
                assert_eq!(*mode, 0, "{file} is open with write access");
            }
        }
        drop(ro);
        // The same through the read-only constructor, which creates nothing.
        let ro = KvStore::open_read_only(FileStorage::open_read_only(&dir).await?).await?;
        assert_eq!(ro.snapshot().slot(&ITEMS)?.keys().await?.len(), 100);
        drop(ro);
        if enforced {
            assert!(KvStore::open(FileStorage::open(&dir).await?).await.is_err());
        } else {
            eprintln!(
                "permission bits are not enforced for this user (root?): checked the \
                 descriptors' access modes instead of a refused writable open"
            );
        }
        Ok::<(), Error>(())
    }
    .await;
    set_mode(&dir, 0o644, 0o755)?; // so that the temporary directory can be removed
    outcome
}
