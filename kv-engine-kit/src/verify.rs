//! What the engines' integrity checks (`Engine::verify`) share: reading a file that a
//! concurrent writer may have deleted, sorting a log's replay into damage and a torn tail,
//! and counting progress in bytes.

use kv_api::{Dropped, Progress, ProgressFn, Result, Storage, VerifyReport};

use crate::files::read_all;
use crate::frame;
use crate::header::StoreId;
use crate::identity::{self, Found, IDENTITY};

/// Counts the progress of a long operation in one unit (`stage`: the bytes a check reads,
/// the bytes or entries a merge rewrites) and reports each step.
pub struct Meter<'p, 'f> {
    progress: &'p ProgressFn<'f>,
    stage: &'static str,
    done: u64,
    total: u64,
}

impl<'p, 'f> Meter<'p, 'f> {
    /// A meter expecting `total` units of `stage`; reports 0 done at once.
    pub fn new(progress: &'p ProgressFn<'f>, stage: &'static str, total: u64) -> Self {
        let meter = Meter {
            progress,
            stage,
            done: 0,
            total,
        };
        meter.report();
        meter
    }

    fn report(&self) {
        (self.progress)(Progress {
            stage: self.stage,
            done: self.done,
            total: self.total,
        });
    }

    /// Counts `n` more units done, and reports.
    pub fn add(&mut self, n: u64) {
        self.done = self.done.saturating_add(n);
        self.report();
    }

    /// Reports the operation complete: `done` raised to `total` (a merge rewrites less than
    /// it reads).
    pub fn finish(&mut self) {
        let rest = self.total.saturating_sub(self.done);
        self.add(rest);
    }
}

/// The sum of the lengths of `names` (a progress estimate: a file that vanished since it was
/// listed counts 0).
async fn total_len<S: Storage>(storage: &S, names: &[String]) -> Result<u64> {
    let mut total = 0u64;
    for name in names {
        if let Ok(file) = storage.open(name).await {
            total = total.saturating_add(kv_api::StorageFile::len(&file).await.unwrap_or(0));
        }
    }
    Ok(total)
}

/// How a check starts, the same for every engine: the storage's files listed, progress set
/// to the bytes of the engine's own, and `IDENTITY` checked as an open of `engine` does
/// ([`identity::check`], with the engine's `is_own` names and `manifest`), naming `store`, the
/// store that was opened.
pub struct Begun<'p, 'f> {
    /// The report, holding what the identity check found.
    pub report: VerifyReport,
    /// Progress in bytes of the engine's files.
    pub meter: Meter<'p, 'f>,
    /// Every file of the storage.
    pub names: Vec<String>,
    /// False if the storage holds no store yet: nothing more to check.
    pub found: bool,
}

/// See [`Begun`].
pub async fn begin<'p, 'f, S: Storage>(
    storage: &S,
    progress: &'p ProgressFn<'f>,
    (engine, manifest): (&'static str, &str),
    is_own: impl Fn(&str) -> bool,
    store: StoreId,
) -> Result<Begun<'p, 'f>> {
    let mut report = VerifyReport::new(engine);
    let names = storage.list().await?;
    let ours: Vec<String> = names.iter().filter(|n| is_own(n)).cloned().collect();
    let meter = Meter::new(progress, "bytes", total_len(storage, &ours).await?);
    let checked = identity::check(storage, engine, &names, is_own, manifest).await;
    let found = match report.check(checked)? {
        Some(Found::Store(id)) => {
            report.files = report.files.saturating_add(1);
            if id.store != store {
                report.damaged(
                    IDENTITY,
                    Some(0),
                    format!("names store {}, the store opened is {store}", id.store),
                );
            }
            true
        }
        Some(Found::Empty) => {
            report.note("no store in this storage yet: nothing to check");
            false
        }
        None => true,
    };
    Ok(Begun {
        report,
        meter,
        names,
        found,
    })
}

/// What [`read_file`] found.
pub enum Read {
    /// The file's bytes.
    Bytes(Vec<u8>),
    /// No such file (any more: a concurrent writer may have merged or compacted it away),
    /// which the caller judges.
    Missing,
    /// The file could not be read as a whole; the damage is in the report.
    Damaged,
}

/// The whole contents of file `name`, counted in `report` and `meter`.
pub async fn read_file<S: Storage>(
    storage: &S,
    name: &str,
    report: &mut VerifyReport,
    meter: &mut Meter<'_, '_>,
) -> Result<Read> {
    let read = async { read_all(&storage.open(name).await?, name).await }.await;
    let buf = match read {
        Ok(buf) => buf,
        Err(_) if !storage.exists(name).await? => return Ok(Read::Missing),
        // Damage (a length that does not fit in memory) is reported; I/O is verify's failure.
        Err(e) => {
            report.check::<()>(Err(e))?;
            return Ok(Read::Damaged);
        }
    };
    let len = buf.len() as u64;
    report.files = report.files.saturating_add(1);
    report.bytes = report.bytes.saturating_add(len);
    meter.add(len);
    Ok(Read::Bytes(buf))
}

/// Sorts what a replay of the newest log file `name` (held in `buf`) left out: a whole frame
/// with a wrong CRC in it is damage (a crash cuts an append, it does not garble one);
/// otherwise it is a torn tail, which the next writable open drops, and a note.
pub fn torn_tail(report: &mut VerifyReport, buf: &[u8], name: &str, dropped: Option<&Dropped>) {
    let Some(d) = dropped else {
        return;
    };
    let from = usize::try_from(d.offset).unwrap_or(usize::MAX);
    match frame::first_bad_crc(buf, from) {
        Some(at) => report.damaged(
            name,
            Some(at as u64),
            "CRC mismatch in a whole frame of the newest log",
        ),
        None => report.note(format!(
            "{name}: offset {}: {} bytes of a torn last transaction ({}), as a crash leaves \
             them; the next writable open drops them",
            d.offset, d.bytes, d.reason
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txlog;

    #[test]
    fn a_cut_is_a_note_and_a_bad_crc_is_damage() {
        let mut buf = Vec::new();
        txlog::encode_write(&mut buf, 1, 0, b"k", Some(b"v"));
        txlog::encode_commit(&mut buf, 1, 5, 1, b"");
        let whole = buf.len();
        txlog::encode_write(&mut buf, 2, 0, b"k", Some(b"w"));
        txlog::encode_commit(&mut buf, 2, 6, 1, b"");
        let replay = |buf: &[u8]| {
            txlog::replay(buf, 0, "wal", true, txlog::Follows::Commit(0), |_| Ok(()))
                .expect("a torn tail")
        };

        let cut = &buf[..buf.len() - 3];
        let mut report = VerifyReport::new("x");
        torn_tail(&mut report, cut, "wal", replay(cut).dropped.as_ref());
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.notes.len(), 1);
        assert!(report.notes[0].starts_with(&format!("wal: offset {whole}: ")));

        let mut flipped = buf.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let mut report = VerifyReport::new("x");
        torn_tail(
            &mut report,
            &flipped,
            "wal",
            replay(&flipped).dropped.as_ref(),
        );
        assert_eq!(report.damage.len(), 1, "{report:?}");
        assert_eq!(report.damage[0].file, "wal");
        assert!(report.damage[0].offset.is_some_and(|o| o > whole as u64));

        let mut report = VerifyReport::new("x");
        torn_tail(&mut report, &buf, "wal", replay(&buf).dropped.as_ref());
        assert!(report.is_clean() && report.notes.is_empty());
    }
}
