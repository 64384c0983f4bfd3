//! What a merge keeps of each key: the one rule of both engines' merges (Bitcask's segment
//! merge, the LSM's full compaction), with the retention policies of
//! [`kv_api::Retention`] (issue #18).
//!
//! A version is *old* if it is at or below the merge horizon (no open snapshot is older than
//! the horizon) and, under a policy with an age, committed before the cutoff. Versions that
//! are not old are kept. Of a key's old versions, newest first: if the newest is a removal,
//! it and every older one go (the key was removed); otherwise the newest `keep_last` are kept
//! (1 without a policy: the latest value, the seed's merge).
//!
//! Counting only old versions keeps the rule's answer for a key stable while commits go on
//! (they are all newer than the horizon), so an engine may plan with it and apply it later.

use kv_api::{Options, Slot, retention::policy_of};

/// The rule of one merge: its horizon, the time cutoffs and each slot's policy.
#[derive(Debug, Clone)]
pub struct KeepRule {
    horizon: u64,
    /// Per slot (256 entries): versions kept, and the time at or before which a version is
    /// old (`u64::MAX`: no age limit).
    slots: Vec<(usize, u64)>,
}

impl KeepRule {
    /// The rule of a merge at `horizon`, under the retention of `options`, at time `now_ms`.
    pub fn new(horizon: u64, options: &Options, now_ms: u64) -> Self {
        let slots = (0..=u8::MAX)
            .map(|slot: Slot| match policy_of(options, slot) {
                None => (1, u64::MAX),
                Some(p) => (
                    usize::try_from(p.keep_last()).unwrap_or(usize::MAX).max(1),
                    p.keep_for_ms()
                        .map_or(u64::MAX, |age| now_ms.saturating_sub(age)),
                ),
            })
            .collect();
        KeepRule { horizon, slots }
    }

    /// The merge horizon.
    pub fn horizon(&self) -> u64 {
        self.horizon
    }

    /// The decisions for one key of `slot`, fed its versions newest first.
    pub fn key(&self, slot: Slot) -> KeyKeep {
        let (keep_last, cutoff) = self
            .slots
            .get(usize::from(slot))
            .copied()
            .unwrap_or((1, u64::MAX));
        KeyKeep {
            horizon: self.horizon,
            keep_last,
            cutoff,
            old_seen: 0,
            removed: false,
        }
    }
}

/// The rule applied to one key's versions, newest first: see the module docs.
#[derive(Debug, Clone)]
pub struct KeyKeep {
    horizon: u64,
    keep_last: usize,
    cutoff: u64,
    old_seen: usize,
    removed: bool,
}

impl KeyKeep {
    /// Whether the next version (newer ones were given before) is kept.
    pub fn keep(&mut self, seq: u64, time_ms: u64, is_value: bool) -> bool {
        let old = seq <= self.horizon && time_ms <= self.cutoff;
        if !old {
            return true;
        }
        let rank = self.old_seen;
        self.old_seen = self.old_seen.saturating_add(1);
        if rank == 0 {
            self.removed = !is_value;
        }
        !self.removed && rank < self.keep_last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_api::Retention;
    use std::time::Duration;

    /// (seq, time, is_value) newest first -> kept seqs.
    fn kept(rule: &KeepRule, slot: Slot, versions: &[(u64, u64, bool)]) -> Vec<u64> {
        let mut k = rule.key(slot);
        versions
            .iter()
            .filter(|(s, t, v)| k.keep(*s, *t, *v))
            .map(|(s, _, _)| *s)
            .collect()
    }

    #[test]
    fn without_a_policy_the_latest_value_at_the_horizon() {
        let rule = KeepRule::new(5, &Options::default(), 1_000);
        let vs = [(7, 0, true), (6, 0, false), (4, 0, true), (2, 0, true)];
        assert_eq!(kept(&rule, 0, &vs), vec![7, 6, 4]);
        let removed = [(4, 0, false), (2, 0, true)];
        assert!(kept(&rule, 0, &removed).is_empty());
    }

    #[test]
    fn keep_last_n_per_slot() {
        let options = Options::default()
            .retention(Retention::last(2))
            .slot_retention(9, Retention::last(3));
        let rule = KeepRule::new(10, &options, 0);
        let vs = [(9, 0, true), (8, 0, false), (5, 0, true), (1, 0, true)];
        assert_eq!(kept(&rule, 0, &vs), vec![9, 8]);
        assert_eq!(kept(&rule, 9, &vs), vec![9, 8, 5]);
        // A removal as the newest old version drops the key's old versions.
        let removed = [(9, 0, false), (5, 0, true)];
        assert!(kept(&rule, 9, &removed).is_empty());
    }

    #[test]
    fn keep_younger_than() {
        let options =
            Options::default().retention(Retention::younger_than(Duration::from_millis(100)));
        let rule = KeepRule::new(10, &options, 1_000);
        // Cutoff 900: 950 and 920 are young; 880 is the newest old one; 500 goes.
        let vs = [
            (9, 950, true),
            (8, 920, true),
            (5, 880, true),
            (1, 500, true),
        ];
        assert_eq!(kept(&rule, 0, &vs), vec![9, 8, 5]);
    }
}
