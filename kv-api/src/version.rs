//! Versions: the identity of a commit, with the metadata users read from `versions()`.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

/// One committed transaction as seen from a key: its commit sequence number, its wall-clock
/// commit time and whether it removed the key.
///
/// Every write of one transaction shares one `Version` (same `seq`, same time). Sequence
/// numbers start at 1 and grow by one per commit; [`Version::ZERO`] is the empty store.
/// Commit times never decrease from one commit to the next, even if the system clock goes back.
///
/// Two `Version`s are equal (and ordered) by their sequence number alone: `is_removal` is a
/// property of one key's write in that commit, and the time is fixed by the commit.
///
/// ```
/// use kv_api::Version;
/// let v = Version::new(7, 1_700_000_000_000);
/// assert_eq!(v.seq(), 7);
/// assert!(!v.is_removal());
/// assert_eq!(v, Version::new(7, 0).with_removal(true));
/// ```
#[derive(Clone, Copy, Debug, Serialize, Deserialize, Default)]
pub struct Version {
    seq: u64,
    time_ms: u64,
    removal: bool,
    /// When the value written in this commit expires (`Transaction::insert_with_ttl`), in a
    /// key's version list. Not serialized: the expiry lives with the key (see
    /// `docs/architecture.md`, "Expiry").
    #[serde(skip)]
    expires_ms: Option<u64>,
}

impl Version {
    /// The version of the empty store: no commit yet.
    pub const ZERO: Version = Version {
        seq: 0,
        time_ms: 0,
        removal: false,
        expires_ms: None,
    };

    /// A commit's version.
    pub const fn new(seq: u64, time_ms: u64) -> Self {
        Version {
            seq,
            time_ms,
            removal: false,
            expires_ms: None,
        }
    }

    /// The same commit, marked as a removal (or not) of the key it is listed for.
    pub const fn with_removal(self, removal: bool) -> Self {
        Version { removal, ..self }
    }

    /// The commit sequence number (1 for the first commit).
    pub const fn seq(&self) -> u64 {
        self.seq
    }

    /// The commit's wall-clock time, milliseconds since the Unix epoch.
    pub const fn time_ms(&self) -> u64 {
        self.time_ms
    }

    /// The commit's wall-clock time as a [`std::time::SystemTime`], or `None` if the platform's
    /// `SystemTime` cannot hold it (a time from damaged storage: Windows' ends in 30828).
    pub fn time(&self) -> Option<std::time::SystemTime> {
        std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_millis(self.time_ms))
    }

    /// True if, in the listing of one key's versions, this commit removed the key.
    pub const fn is_removal(&self) -> bool {
        self.removal
    }

    /// The same commit, with the expiry of the value it wrote for the key it is listed for.
    pub const fn with_expiry(self, expires_ms: Option<u64>) -> Self {
        Version { expires_ms, ..self }
    }

    /// In the listing of one key's versions ([`crate::Transaction::versions`]): when the
    /// value this commit wrote expires, ms since the Unix epoch, if it was written with a
    /// time to live ([`crate::Transaction::insert_with_ttl`]); from then on it reads as absent.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// let mut txn = store.current();
    /// txn.insert_with_ttl(0, &"session", 7u32, std::time::Duration::from_secs(60))?;
    /// txn.commit().await?;
    /// let versions = store.snapshot().versions(0, &"session").await?;
    /// let expires = versions[0].expires_ms().unwrap_or_default();
    /// assert!(expires >= versions[0].time_ms() + 59_000);
    /// # Ok(())
    /// # }
    /// ```
    pub const fn expires_ms(&self) -> Option<u64> {
        self.expires_ms
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.seq.cmp(&other.seq)
    }
}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.seq.hash(state);
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}", self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::Version;

    #[test]
    fn time_of_any_stored_millis_does_not_panic() {
        assert_eq!(Version::new(1, 0).time(), Some(std::time::UNIX_EPOCH));
        assert_eq!(
            Version::new(1, 1_000).time(),
            Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1))
        );
        // A damaged commit record can carry any time; before, this could panic (Windows'
        // `SystemTime` overflows). Unix's holds it.
        let far = Version::new(1, u64::MAX).time();
        assert!(cfg!(windows) || far.is_some());
    }
}
