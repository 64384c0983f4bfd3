//! The integrity check ([`crate::Store::verify`]): what it found, and the logical check that
//! [`Engine::verify`] falls back on for engines without one of their own.

use std::fmt;

use crate::{Engine, Error, KeyRange, Progress, ProgressFn, Result};

/// One damaged place found by [`crate::Store::verify`].
///
/// ```
/// use kv_api::Damage;
/// let d = Damage::new("00000003.log", Some(4711), "CRC mismatch in a commit frame");
/// assert_eq!(d.to_string(), "00000003.log: offset 4711: CRC mismatch in a commit frame");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The file (backend name), or a logical place (`"slot 3"`) where no file is known.
    pub file: String,
    /// The byte offset in the file, where one is known.
    pub offset: Option<u64>,
    /// What is wrong.
    pub what: String,
}

impl Damage {
    /// Damage in `file` at `offset`.
    pub fn new(file: impl fmt::Display, offset: Option<u64>, what: impl fmt::Display) -> Self {
        Damage {
            file: file.to_string(),
            offset,
            what: what.to_string(),
        }
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(offset) => write!(f, "{}: offset {offset}: {}", self.file, self.what),
            None => write!(f, "{}: {}", self.file, self.what),
        }
    }
}

/// What [`crate::Store::verify`] checked and found. Damage is reported here, not as an
/// error: verify goes on past each damaged file, so one run lists all of them.
///
/// ```
/// use kv_api::VerifyReport;
/// let report = VerifyReport::new("bitcask");
/// assert!(report.is_clean());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// The engine that checked ([`Engine::NAME`]).
    pub engine: &'static str,
    /// Files read.
    pub files: u64,
    /// Records checked (log records, table entries, hint entries, versions).
    pub records: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Every damaged place, in the order found. Empty for a sound store.
    pub damage: Vec<Damage>,
    /// Findings that are not damage: a torn tail of the newest log (what a crash leaves,
    /// dropped by the next writable open), leftover files no manifest names.
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// An empty report of `engine`.
    pub fn new(engine: &'static str) -> Self {
        VerifyReport {
            engine,
            ..VerifyReport::default()
        }
    }

    /// True if no damage was found (notes do not count).
    pub fn is_clean(&self) -> bool {
        self.damage.is_empty()
    }

    /// Records damage in `file` at `offset`.
    pub fn damaged(
        &mut self,
        file: impl fmt::Display,
        offset: Option<u64>,
        what: impl fmt::Display,
    ) {
        self.damage.push(Damage::new(file, offset, what));
    }

    /// Records a note.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Sorts the outcome of a check: `Ok` passes through; [`Error::Corruption`] and
    /// [`Error::Decode`] become damage (`None` back, so the caller skips what depended on
    /// it); any other error (I/O, a closed store) is returned, as verify's own failure.
    ///
    /// ```
    /// use kv_api::{Error, VerifyReport};
    /// let mut report = VerifyReport::new("lsm");
    /// let found = report.check::<()>(Err(Error::corruption("MANIFEST", 43, "bad CRC")));
    /// assert_eq!(found.unwrap(), None);
    /// assert_eq!(report.damage[0].to_string(), "MANIFEST: offset 43: bad CRC");
    /// assert!(report.check::<()>(Err(Error::Closed)).is_err());
    /// ```
    pub fn check<T>(&mut self, outcome: Result<T>) -> Result<Option<T>> {
        match outcome {
            Ok(value) => Ok(Some(value)),
            Err(Error::Corruption {
                file,
                offset,
                reason,
            }) => {
                self.damage.push(Damage {
                    file,
                    offset: Some(offset),
                    what: reason,
                });
                Ok(None)
            }
            Err(e @ Error::Decode { .. }) => {
                self.damaged("(value)", None, e);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// Keys read per scan call of the logical check.
const PAGE: usize = 256;

/// The logical check behind the default [`Engine::verify`]: reads every version of every
/// live key of every slot through the trait (scans, `versions`, `get_version`) at the latest
/// commit, and reports every read that finds damage. It cannot see what the engine's reads
/// never touch (versions of removed keys, bytes no index points at). Progress counts slots
/// (256).
pub async fn logical_verify<E: Engine>(
    engine: &E,
    progress: &ProgressFn<'_>,
) -> Result<VerifyReport> {
    let mut report = VerifyReport::new(E::NAME);
    let at = engine.snapshot()?.seq();
    for slot in 0..=u8::MAX {
        progress(Progress {
            stage: "slots",
            done: u64::from(slot),
            total: 256,
        });
        let mut range = KeyRange::all();
        loop {
            let Some(page) = report.check(engine.scan(slot, &range, at, false, PAGE).await)? else {
                report.note(format!("slot {slot}: the rest of its keys was not read"));
                break;
            };
            for entry in &page {
                report.records = report.records.saturating_add(1);
                report.bytes = report.bytes.saturating_add(entry.value.len() as u64);
                let Some(versions) = report.check(engine.versions(slot, &entry.key, at).await)?
                else {
                    continue;
                };
                for version in versions {
                    match engine.get_version(slot, &entry.key, version).await {
                        // Merged away by a concurrent merge: not damage.
                        Err(Error::VersionNotFound { .. }) => {}
                        other => {
                            report.check(other)?;
                        }
                    }
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE => {
                    range.start = std::ops::Bound::Excluded(last.key.clone());
                }
                _ => break,
            }
        }
    }
    progress(Progress {
        stage: "slots",
        done: 256,
        total: 256,
    });
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_displays_file_offset_and_what() {
        let d = Damage::new("log-000003", Some(4711), "CRC mismatch in a commit frame");
        assert_eq!(
            d.to_string(),
            "log-000003: offset 4711: CRC mismatch in a commit frame"
        );
        assert_eq!(
            Damage::new("MANIFEST", None, "missing").to_string(),
            "MANIFEST: missing"
        );
    }

    #[test]
    fn check_sorts_damage_from_failures() {
        let mut r = VerifyReport::new("x");
        assert_eq!(r.check(Ok(3)).unwrap(), Some(3));
        assert!(r.is_clean());
        assert_eq!(
            r.check::<()>(Err(Error::corruption("a", 1, "b"))).unwrap(),
            None
        );
        assert_eq!(r.damage, vec![Damage::new("a", Some(1), "b")]);
        assert!(matches!(
            r.check::<()>(Err(Error::Closed)),
            Err(Error::Closed)
        ));
        assert!(
            r.check::<()>(Err(Error::io("read", std::io::Error::other("x"))))
                .is_err()
        );
        assert_eq!(r.damage.len(), 1);
    }
}
