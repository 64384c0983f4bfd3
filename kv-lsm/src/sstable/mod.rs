//! Sorted string tables: immutable files of internal entries, written by flushes and
//! compactions and read by point lookups and merging iterators.
//!
//! * [`block`]: data and index blocks (prefix-compressed keys, restart points, CRC).
//! * [`bloom`]: the per-table bloom filter over user keys.
//! * [`footer`]: the fixed footer (filter and index locations, format version, magic).
//! * [`table`]: the writer, the reader and the lazily opened [`Table`].
//! * [`varint`]: LEB128 varints and zigzag deltas.

pub(crate) mod block;
pub(crate) mod bloom;
pub(crate) mod footer;
pub(crate) mod table;
pub(crate) mod varint;

pub(crate) use table::{Table, TableWriter};

/// What the manifest records about a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableMeta {
    /// File id: the file is [`table_name`]`(id)`.
    pub id: u64,
    /// Bytes of the file.
    pub size: u64,
    /// Entries (versions) it holds.
    pub entries: u64,
    /// Its first internal key (user key, seq).
    pub smallest: (Vec<u8>, u64),
    /// Its last internal key.
    pub largest: (Vec<u8>, u64),
    /// Smallest sequence number held.
    pub min_seq: u64,
    /// Largest sequence number held.
    pub max_seq: u64,
}

/// The file name of table `id`.
pub(crate) fn table_name(id: u64) -> String {
    format!("{id:08}.sst")
}

/// The id of a table file name: only a name [`table_name`] writes (so `42.sst` is not one,
/// and is never taken for `00000042.sst`).
pub(crate) fn parse_table_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".sst")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id = digits.parse().ok()?;
    (table_name(id) == name).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(table_name(42), "00000042.sst");
        assert_eq!(parse_table_name("00000042.sst"), Some(42));
        assert_eq!(parse_table_name("x.sst"), None);
        assert_eq!(parse_table_name("00000042.log"), None);
        assert_eq!(parse_table_name("42.sst"), None);
        assert_eq!(parse_table_name("000000042.sst"), None);
        assert_eq!(parse_table_name("123456789.sst"), Some(123_456_789));
        assert_eq!(parse_table_name("99999999999999999999.sst"), None);
    }
}
