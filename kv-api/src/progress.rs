//! Progress of long operations (`verify`, `backup_to`, `export`, `import`, `merge`), reported
//! through a callback so that a command-line tool can draw a bar and a server can log.

/// How far a long operation has come. `total` is an estimate known at the start (bytes on
/// storage, keys to copy) and may be 0 when unknown; `done` never decreases and may end below
/// or above `total` when the estimate was off.
///
/// ```
/// use kv_api::Progress;
/// let p = Progress { stage: "tables", done: 50, total: 200 };
/// assert_eq!(p.fraction(), Some(0.25));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// What is being done now, for display (`"segments"`, `"tables"`, `"keys"` ...).
    pub stage: &'static str,
    /// Units done so far.
    pub done: u64,
    /// Units expected in all, 0 if unknown.
    pub total: u64,
}

impl Progress {
    /// `done / total` clamped to 1.0, or `None` when the total is unknown.
    pub fn fraction(&self) -> Option<f64> {
        (self.total > 0).then(|| (self.done as f64 / self.total as f64).min(1.0))
    }
}

/// The callback a long operation reports [`Progress`] to: `Send + Sync` natively, like the
/// futures that call it. Pass `&|_| {}` to ignore progress.
#[cfg(not(target_arch = "wasm32"))]
pub type ProgressFn<'f> = dyn Fn(Progress) + Send + Sync + 'f;
/// The callback a long operation reports [`Progress`] to.
#[cfg(target_arch = "wasm32")]
pub type ProgressFn<'f> = dyn Fn(Progress) + 'f;
