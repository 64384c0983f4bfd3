//! MVCC visibility: [`Visible`] reduces the merged stream of every version to what a read at
//! one version sees, one entry per user key.

use kv_api::{Result, Storage};

use super::merge::Merger;
use crate::key::EntryRef;

/// Reduces a merged stream to what a read at `at` sees: per user key, the newest version with
/// `seq <= at`, removals included (callers skip them as needed). Shadowed versions are passed
/// over without being copied; in reverse, where a key's newest version comes last, the
/// candidate is copied into reused buffers.
pub(crate) struct Visible<S: Storage> {
    merger: Merger<S>,
    at: u64,
    /// False for a key-only read: reverse candidates copy no value (entries then show
    /// values as empty).
    values: bool,
    /// The key being reduced.
    key: Vec<u8>,
    has_key: bool,
    /// Forward: the key's visible version was found (its older ones are skipped).
    decided: bool,
    /// Forward: the merger's current entry is the one last returned.
    returned: bool,
    /// Reverse: the candidate of `key`, then the entry returned.
    rev: Candidate,
}

/// A version copied out of the merged stream.
#[derive(Default)]
struct Copied {
    key: Vec<u8>,
    seq: u64,
    time_ms: u64,
    is_value: bool,
    blob: bool,
    value: Vec<u8>,
}

impl Copied {
    fn entry(&self) -> EntryRef<'_> {
        EntryRef {
            ukey: &self.key,
            seq: self.seq,
            time_ms: self.time_ms,
            value: self.is_value.then_some(self.value.as_slice()),
            blob: self.blob,
        }
    }
}

/// Reverse reduction state.
#[derive(Default)]
struct Candidate {
    /// The newest version `<= at` seen so far of the current key (its `key` is unused).
    cand: Copied,
    has_cand: bool,
    /// The entry returned last.
    out: Copied,
    has_out: bool,
}

impl Candidate {
    /// Makes the candidate of `key` the entry returned; false if there is none.
    fn emit(&mut self, key: &mut Vec<u8>, has_key: &mut bool) -> bool {
        if !std::mem::take(&mut self.has_cand) {
            return false;
        }
        std::mem::swap(&mut self.out, &mut self.cand);
        std::mem::swap(&mut self.out.key, key);
        self.has_out = true;
        // `key` now holds an old buffer: the next entry starts a new key.
        *has_key = false;
        true
    }
}

impl<S: Storage> Visible<S> {
    /// Reads at `at` from `merger`.
    pub fn new(merger: Merger<S>, at: u64) -> Self {
        Visible {
            merger,
            at,
            values: true,
            key: Vec::new(),
            has_key: false,
            decided: false,
            returned: false,
            rev: Candidate::default(),
        }
    }

    /// A key-only read: values are never copied, and [`Visible::entry`] may show a value as
    /// empty (removals stay `None`).
    pub fn without_values(mut self) -> Self {
        self.values = false;
        self
    }

    /// Moves to the next key's visible version; false at the end. See [`Visible::entry`].
    pub async fn next(&mut self) -> Result<bool> {
        if self.merger.is_reverse() {
            self.next_reverse().await
        } else {
            self.next_forward().await
        }
    }

    /// The version [`Visible::next`] moved to.
    #[inline]
    pub fn entry(&self) -> Option<EntryRef<'_>> {
        if self.merger.is_reverse() {
            self.rev.has_out.then(|| self.rev.out.entry())
        } else {
            self.merger.current()
        }
    }

    async fn next_forward(&mut self) -> Result<bool> {
        if std::mem::take(&mut self.returned) {
            self.merger.next().await?;
        }
        loop {
            let Some(e) = self.merger.current() else {
                return Ok(false);
            };
            let same = self.has_key && e.ukey == self.key.as_slice();
            if !(same && self.decided) {
                if !same {
                    self.key.clear();
                    self.key.extend_from_slice(e.ukey);
                    self.has_key = true;
                    self.decided = false;
                }
                if e.seq <= self.at {
                    self.decided = true;
                    self.returned = true;
                    return Ok(true);
                }
            }
            self.merger.next().await?;
        }
    }

    async fn next_reverse(&mut self) -> Result<bool> {
        self.rev.has_out = false;
        loop {
            let Some(e) = self.merger.current() else {
                return Ok(self.rev.emit(&mut self.key, &mut self.has_key));
            };
            let same = self.has_key && e.ukey == self.key.as_slice();
            if !same {
                if self.rev.emit(&mut self.key, &mut self.has_key) {
                    // `e` starts the next key: the next call handles it.
                    return Ok(true);
                }
                self.key.clear();
                self.key.extend_from_slice(e.ukey);
                self.has_key = true;
            }
            // A key's versions come oldest first: the last one `<= at` wins.
            if e.seq <= self.at {
                let c = &mut self.rev.cand;
                (c.seq, c.time_ms, c.is_value, c.blob) =
                    (e.seq, e.time_ms, e.value.is_some(), e.blob);
                c.value.clear();
                if self.values {
                    c.value.extend_from_slice(e.value.unwrap_or_default());
                }
                self.rev.has_cand = true;
            }
            self.merger.next().await?;
        }
    }
}
