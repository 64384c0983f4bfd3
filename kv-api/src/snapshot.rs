//! Snapshots: read views pinned at a version, and the registry that tells `merge` and the
//! conflict tracker which versions open views still need.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::Version;

type Pins = Arc<Mutex<BTreeMap<u64, usize>>>;

/// The registry of open snapshots of one engine.
#[derive(Clone, Default)]
pub struct Snapshots {
    pins: Pins,
}

impl Snapshots {
    /// Pins `version` until the returned snapshot (and all its clones) drop.
    pub fn pin(&self, version: Version) -> Snapshot {
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "one count per live `Pin`, each its own allocation: fewer than usize::MAX"
        )]
        {
            *self.pins.lock().entry(version.seq()).or_insert(0) += 1;
        }
        Snapshot {
            version,
            pin: Some(Arc::new(Pin {
                seq: version.seq(),
                pins: self.pins.clone(),
            })),
        }
    }

    /// The oldest pinned sequence number, if any snapshot is open.
    pub fn oldest(&self) -> Option<u64> {
        self.pins.lock().keys().next().copied()
    }

    /// How many snapshots are pinned strictly below `seq`.
    pub fn pinned_below(&self, seq: u64) -> usize {
        self.pins.lock().range(..seq).map(|(_, n)| n).sum()
    }
}

struct Pin {
    seq: u64,
    pins: Pins,
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut pins = self.pins.lock();
        if let Some(n) = pins.get_mut(&self.seq) {
            match n.checked_sub(1) {
                Some(rest) if rest > 0 => *n = rest,
                _ => {
                    pins.remove(&self.seq);
                }
            }
        }
    }
}

/// A consistent read view at one version. Cheap to clone; while any clone lives, `merge`
/// keeps every version the view can see.
#[derive(Clone)]
pub struct Snapshot {
    version: Version,
    pin: Option<Arc<Pin>>,
}

impl Snapshot {
    /// A view that pins nothing (for engines' internal reads).
    pub fn unpinned(version: Version) -> Self {
        Snapshot { version, pin: None }
    }

    /// The commit this view shows: every commit up to and including it.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Shorthand for `self.version().seq()`.
    pub fn seq(&self) -> u64 {
        self.version.seq()
    }

    /// True if this view is registered (counts for `merge` and conflict tracking).
    pub fn is_pinned(&self) -> bool {
        self.pin.is_some()
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("version", &self.version)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_follow_clones() {
        let reg = Snapshots::default();
        let a = reg.pin(Version::new(3, 0));
        let b = a.clone();
        let c = reg.pin(Version::new(5, 0));
        assert_eq!(reg.oldest(), Some(3));
        assert_eq!(reg.pinned_below(5), 1);
        assert_eq!(reg.pinned_below(6), 2);
        drop(a);
        assert_eq!(reg.oldest(), Some(3));
        drop(b);
        assert_eq!(reg.oldest(), Some(5));
        drop(c);
        assert_eq!(reg.oldest(), None);
    }
}
