//! How [`crate::Store::transact`] retries a transaction that lost a conflict.

use std::hash::{BuildHasher, Hasher};

use crate::yield_now;

/// How many times [`crate::Store::transact_with`] runs a transaction that keeps conflicting,
/// and how it backs off between attempts.
///
/// Between attempts it lets other tasks run: it yields to the executor a random number of
/// times (jitter, so that two transactions that conflicted do not retry in lockstep) that
/// doubles with each attempt, up to 64. Yielding needs no timer, so it works on any runtime
/// (tokio, async-std, a browser's event loop, where each yield is a turn of the event loop so
/// that the winner's IndexedDB writes can finish); it is a backoff in scheduling turns, not in
/// wall-clock time.
///
/// ```
/// use kv_api::Retry;
/// assert_eq!(Retry::default().max_attempts(), 10);
/// assert_eq!(Retry::attempts(3).max_attempts(), 3);
/// assert_eq!(Retry::attempts(0).max_attempts(), 1); // a transaction runs at least once
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    attempts: u32,
}

impl Retry {
    /// Runs a transaction at most `n` times (at least once).
    ///
    /// ```
    /// let once = kv_api::Retry::attempts(1); // no retry: a conflict is returned at once
    /// # let _ = once;
    /// ```
    pub const fn attempts(n: u32) -> Self {
        Retry {
            attempts: if n == 0 { 1 } else { n },
        }
    }

    /// The most times a transaction runs.
    ///
    /// ```
    /// assert_eq!(kv_api::Retry::attempts(5).max_attempts(), 5);
    /// ```
    pub const fn max_attempts(&self) -> u32 {
        self.attempts
    }
}

impl Default for Retry {
    /// 10 attempts.
    fn default() -> Self {
        Retry::attempts(10)
    }
}

/// The most yields of one backoff.
const MAX_YIELDS: u64 = 64;

/// How many times to yield after failed attempt `attempt` (1, 2, ...): a random number in
/// `1..=min(2^attempt, 64)`.
pub(crate) fn yields_after(attempt: u32) -> u64 {
    let ceiling = 1u64
        .checked_shl(attempt)
        .unwrap_or(MAX_YIELDS)
        .min(MAX_YIELDS);
    // Fresh keys per call (random ones natively): enough jitter, and no dependency.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    h.finish()
        .checked_rem(ceiling)
        .unwrap_or(0)
        .saturating_add(1)
}

/// Lets other tasks run `yields_after(attempt)` times.
pub(crate) async fn backoff(attempt: u32) {
    for _ in 0..yields_after(attempt) {
        yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_bounded() {
        for attempt in [1u32, 2, 3, 6, 7, 40, u32::MAX] {
            let ceiling = 1u64.checked_shl(attempt).unwrap_or(64).min(64);
            for _ in 0..50 {
                let n = yields_after(attempt);
                assert!((1..=ceiling).contains(&n), "attempt {attempt}: {n}");
            }
        }
        // Jittered: not always the same number.
        let seen: std::collections::BTreeSet<u64> = (0..100).map(|_| yields_after(6)).collect();
        assert!(seen.len() > 1);
    }

    #[tokio::test]
    async fn backoff_returns() {
        backoff(3).await;
    }
}
