//! Where flushes and compactions run, and backpressure on writers.
//!
//! Natively, with `Options::background` (the default) and a tokio runtime current, flushes and
//! compactions run in tasks spawned on that runtime: one flush task and one compaction task at
//! most, each holding only a `Weak` reference to the engine and stopping when it is closed or
//! dropped. Readers and writers never wait for them, except that writers wait when frozen
//! memtables or level-0 tables pile up past [`MAX_IMMUTABLES`] / [`L0_STOP`] (backpressure,
//! instead of growing without bound). Without a runtime, with `background: false`, and on
//! wasm32, the work runs inline in the committing task right after its commit.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use kv_api::{Result, Storage};

use crate::engine::Inner;

/// Frozen memtables allowed before writers wait for a flush.
pub(crate) const MAX_IMMUTABLES: usize = 4;
/// Level-0 tables at which writers wait for a compaction.
pub(crate) const L0_STOP: usize = 12;

impl<S: Storage> Inner<S> {
    /// Flushes and compactions that are due: spawned, or run inline (errors poison the store:
    /// the commit that triggered them is already durable in the WAL).
    pub async fn maintain(self: &Arc<Self>) {
        if self.spawn_work() {
            return;
        }
        if let Err(e) = self.run_inline().await {
            self.pipeline.poison(e);
        }
    }

    /// Runs every due flush and compaction in the calling task.
    async fn run_inline(&self) -> Result<()> {
        self.flush_all().await?;
        while self.compact_one().await? {}
        self.gc().await
    }

    // Only the native background tasks ask (wasm32 works inline).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    fn has_immutables(&self) -> bool {
        !self.read_state().immutables.is_empty()
    }

    /// True if writers must wait for background work.
    fn stalled(&self) -> bool {
        let st = self.read_state();
        st.immutables.len() > MAX_IMMUTABLES || st.levels.level(0).len() >= L0_STOP
    }

    /// Waits (or works inline) while the tree is too far behind; called before each commit.
    pub async fn throttle(self: &Arc<Self>) -> Result<()> {
        loop {
            self.pipeline.check_writable("commit")?;
            if !self.stalled() {
                return Ok(());
            }
            let notified = self.work_done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.spawn_work() {
                self.run_inline()
                    .await
                    .map_err(|e| self.pipeline.poison(e))?;
                continue;
            }
            if self.closing.load(Ordering::Acquire) || !self.stalled() {
                continue;
            }
            notified.await;
        }
    }

    /// Spawns the flush and compaction tasks if work is due and they are not running. False if
    /// background work is off or impossible here (the caller works inline).
    #[cfg(not(target_arch = "wasm32"))]
    fn spawn_work(self: &Arc<Self>) -> bool {
        if !self.tuning.background {
            return false;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        if self.has_immutables() && !self.flush_running.swap(true, Ordering::AcqRel) {
            let weak = Arc::downgrade(self);
            handle.spawn(async move {
                loop {
                    let Some(inner) = weak.upgrade() else { return };
                    let outcome = if inner.closing.load(Ordering::Acquire) {
                        Ok(false)
                    } else {
                        inner.flush_one().await
                    };
                    match outcome {
                        Ok(true) => {
                            inner.spawn_work();
                            continue;
                        }
                        Ok(false) => {}
                        Err(e) => {
                            inner.pipeline.poison(e);
                        }
                    }
                    inner.flush_running.store(false, Ordering::Release);
                    inner.work_done.notify_waiters();
                    // A memtable frozen between the last check and the flag reset.
                    let again = !inner.closing.load(Ordering::Acquire)
                        && inner.pipeline.check_writable("flush").is_ok()
                        && inner.has_immutables()
                        && !inner.flush_running.swap(true, Ordering::AcqRel);
                    if !again {
                        return;
                    }
                }
            });
        }
        if self.needs_compaction() && !self.compaction_running.swap(true, Ordering::AcqRel) {
            let weak = Arc::downgrade(self);
            handle.spawn(async move {
                loop {
                    let Some(inner) = weak.upgrade() else { return };
                    let outcome = if inner.closing.load(Ordering::Acquire) {
                        Ok(false)
                    } else {
                        inner.compact_one().await
                    };
                    match outcome {
                        Ok(true) => continue,
                        Ok(false) => {}
                        // Closing interrupts a compaction: its outputs were removed, nothing lost.
                        Err(kv_api::Error::Closed) => {}
                        Err(e) => {
                            inner.pipeline.poison(e);
                        }
                    }
                    inner.compaction_running.store(false, Ordering::Release);
                    inner.work_done.notify_waiters();
                    let again = !inner.closing.load(Ordering::Acquire)
                        && inner.pipeline.check_writable("compaction").is_ok()
                        && inner.needs_compaction()
                        && !inner.compaction_running.swap(true, Ordering::AcqRel);
                    if !again {
                        return;
                    }
                }
            });
        }
        true
    }

    #[cfg(target_arch = "wasm32")]
    fn spawn_work(self: &Arc<Self>) -> bool {
        false
    }
}
