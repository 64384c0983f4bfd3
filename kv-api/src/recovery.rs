//! What opening a store had to leave out: the recovery report.

/// Bytes that recovery left out of a file when the store was opened, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The file (backend name).
    pub file: String,
    /// Where the left-out bytes start: the end of the last whole transaction.
    pub offset: u64,
    /// How many bytes were left out (and cut off, on a writable open).
    pub bytes: u64,
    /// Why: a torn or damaged last transaction, writes whose commit record never came.
    pub reason: String,
}

/// What an open had to repair. After a crash, the transaction being written when the process
/// or the machine stopped may be torn: its commit never returned, so leaving it out loses
/// nothing that was acknowledged. The report says what was left out, so that an operator
/// learns of it (it is also logged through the `log` facade, target `kv`).
///
/// ```
/// use kv_api::RecoveryReport;
/// let report = RecoveryReport::default();
/// assert!(report.is_clean());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Every stretch of bytes left out, in the order recovery met them.
    pub dropped: Vec<Dropped>,
}

impl RecoveryReport {
    /// True if recovery left nothing out.
    pub fn is_clean(&self) -> bool {
        self.dropped.is_empty()
    }

    /// Total bytes left out.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped.iter().map(|d| d.bytes).sum()
    }
}
