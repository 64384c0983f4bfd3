//! The keydir entries of the active segment, kept for its hint file: a list that grows in
//! fixed chunks, so that an append never moves what is already there.
//!
//! A plain `Vec` doubled and copied itself inside the commit that filled it: 16 MiB at 262k
//! entries, a pause of several milliseconds for that commit and every task behind the keydir
//! lock (#12). Chunks cost one small allocation per [`CHUNK`] entries instead.

use crate::key::Key;
use crate::keydir::Loc;

/// Entries per chunk: 4096 of about 60 bytes, a quarter of a MiB.
const CHUNK: usize = 4096;

/// See the module docs.
#[derive(Default)]
pub(crate) struct PendingEntries {
    chunks: Vec<Vec<(Key, Loc)>>,
}

impl PendingEntries {
    /// Adds entries at the end.
    pub fn extend(&mut self, entries: impl IntoIterator<Item = (Key, Loc)>) {
        for entry in entries {
            match self.chunks.last_mut() {
                Some(last) if last.len() < CHUNK => last.push(entry),
                _ => {
                    let mut chunk = Vec::with_capacity(CHUNK);
                    chunk.push(entry);
                    self.chunks.push(chunk);
                }
            }
        }
    }

    /// Every entry, sorted by key (stable: a key's versions stay in commit order), for the
    /// hint file of the sealed segment.
    pub fn into_sorted(self) -> Vec<(Key, Loc)> {
        let mut all: Vec<(Key, Loc)> = self.chunks.into_iter().flatten().collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

impl From<Vec<(Key, Loc)>> for PendingEntries {
    fn from(entries: Vec<(Key, Loc)>) -> Self {
        let mut pending = PendingEntries::default();
        pending.extend(entries);
        pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_every_entry_and_sorts_stably() {
        let mut pending = PendingEntries::default();
        let n = 3 * CHUNK as u64 + 17;
        pending.extend((0..n).map(|i| {
            let key = Key::new(0, &(i % 1000).to_be_bytes());
            (key, Loc::new(i + 1, 0, 1, i * 10, 10, false))
        }));
        assert_eq!(pending.chunks.len(), 4);
        assert!(pending.chunks.iter().all(|c| c.capacity() == CHUNK));
        let sorted = pending.into_sorted();
        assert_eq!(sorted.len() as u64, n);
        assert!(
            sorted
                .windows(2)
                .all(|w| { w[0].0 < w[1].0 || w[0].0 == w[1].0 && w[0].1.seq < w[1].1.seq })
        );
    }
}
