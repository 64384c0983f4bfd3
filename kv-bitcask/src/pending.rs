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

/// Entries from which two runs' buffers are freed off the executor (about 1 MiB): see
/// [`merge`].
const LARGE_RUN: usize = 4 * CHUNK;

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
    ///
    /// A merge sort that lets other tasks run after every [`CHUNK`] entries it sorts or
    /// moves: it runs inside the commit that seals the segment, on an executor thread, and a
    /// million entries sorted at once held that thread for tens of milliseconds (#12). Each
    /// chunk is sorted on its own, then neighbouring runs are merged pass by pass.
    pub async fn into_sorted(self) -> Vec<(Key, Loc)> {
        let mut runs = self.chunks;
        for run in &mut runs {
            run.sort_by(|a, b| a.0.cmp(&b.0));
            kv_api::yield_now().await;
        }
        while runs.len() > 1 {
            let mut merged = Vec::with_capacity(runs.len().div_ceil(2));
            let mut pairs = runs.into_iter();
            while let Some(older) = pairs.next() {
                merged.push(match pairs.next() {
                    Some(newer) => merge(older, newer).await,
                    None => older,
                });
            }
            runs = merged;
        }
        runs.pop().unwrap_or_default()
    }
}

/// Merges two sorted runs, `older`'s entries first among equal keys (so the merge sort is
/// stable), yielding after every [`CHUNK`] entries.
///
/// The two runs' buffers are freed off the executor when they are large: the last passes of a
/// full segment's sort free two runs of several MiB each, which the allocator unmaps, and that
/// held the committing thread for 1 - 3 ms (#12).
async fn merge(older: Vec<(Key, Loc)>, newer: Vec<(Key, Loc)>) -> Vec<(Key, Loc)> {
    let total = older.len().saturating_add(newer.len());
    let mut out = Vec::with_capacity(total);
    let (mut older, mut newer) = (older.into_iter().peekable(), newer.into_iter().peekable());
    loop {
        for _ in 0..CHUNK {
            let from_older = match (older.peek(), newer.peek()) {
                (Some(a), Some(b)) => a.0 <= b.0,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => {
                    if total >= LARGE_RUN {
                        kv_api::drop_off_executor((older, newer));
                    }
                    return out;
                }
            };
            out.extend(if from_older {
                older.next()
            } else {
                newer.next()
            });
        }
        kv_api::yield_now().await;
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

    #[tokio::test]
    async fn keeps_every_entry_and_sorts_stably() {
        let mut pending = PendingEntries::default();
        // Five runs: the merge passes also carry an odd run over.
        let n = 4 * CHUNK as u64 + 17;
        pending.extend((0..n).map(|i| {
            let key = Key::new(0, &(i % 1000).to_be_bytes());
            (key, Loc::new(i + 1, 0, 1, i * 10, 10, false))
        }));
        assert_eq!(pending.chunks.len(), 5);
        assert!(pending.chunks.iter().all(|c| c.capacity() == CHUNK));
        let sorted = pending.into_sorted().await;
        assert_eq!(sorted.len() as u64, n);
        assert!(
            sorted
                .windows(2)
                .all(|w| { w[0].0 < w[1].0 || w[0].0 == w[1].0 && w[0].1.seq < w[1].1.seq })
        );
    }
}
