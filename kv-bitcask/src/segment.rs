//! File names of a Bitcask store.
//!
//! * `NNNNNNNN.log`: a segment (8-digit id): a transaction log ([`kv_engine_kit::txlog`] records), or
//!   a merged segment of committed records (kinds 4 and 5), as `META` says.
//! * `NNNNNNNN.hint`: the hint file of a sealed segment (see [`crate::hint`]).
//! * `META`, `META.tmp`: the manifest and its replacement in progress (see [`crate::meta`]).
//! * `IDENTITY`, `IDENTITY.tmp`: the store's identity ([`kv_engine_kit::identity`]), common to
//!   every engine and not parsed here.
//!
//! Every file but `IDENTITY` begins with a header ([`kv_engine_kit::header`]) naming the store,
//! the file's id (its segment's, 0 for `META`) and its kind (`KIND_*`).

use kv_engine_kit::header::{FileHeader, StoreId};

/// The kind of a log segment in its file header ([`kv_engine_kit::header`]).
pub(crate) const KIND_LOG: u8 = 0x11;
/// The kind of a merged segment.
pub(crate) const KIND_MERGED: u8 = 0x12;
/// The kind of a hint file.
pub(crate) const KIND_HINT: u8 = 0x13;
/// The kind of `META`.
pub(crate) const KIND_META: u8 = 0x14;

/// The header of this engine's file of `kind` and id `id` in store `store`.
pub(crate) fn header(store: StoreId, kind: u8, id: u32) -> FileHeader {
    FileHeader {
        kind,
        store,
        file_id: u64::from(id),
    }
}

/// The header of segment `id`, a merged one or a log segment.
pub(crate) fn segment_header(store: StoreId, id: u32, merged: bool) -> FileHeader {
    header(store, if merged { KIND_MERGED } else { KIND_LOG }, id)
}

/// What a file name is, for files this engine writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// A segment.
    Segment(u32),
    /// A hint file.
    Hint(u32),
    /// The manifest.
    Meta,
    /// A manifest being written.
    MetaTmp,
}

/// The manifest's name.
pub(crate) const META: &str = "META";
/// The name a new manifest is written under before it is renamed to [`META`].
pub(crate) const META_TMP: &str = "META.tmp";

/// The name of segment `id`.
pub(crate) fn segment_name(id: u32) -> String {
    format!("{id:08}.log")
}

/// The name of the hint file of segment `id`.
pub(crate) fn hint_name(id: u32) -> String {
    format!("{id:08}.hint")
}

/// Parses a name this engine may have written; `None` for anything else (left alone in a
/// store, refused in a storage without `META`: see `recovery::check_without_meta`).
pub(crate) fn parse_name(name: &str) -> Option<FileKind> {
    match name {
        META => return Some(FileKind::Meta),
        META_TMP => return Some(FileKind::MetaTmp),
        _ => {}
    }
    let (stem, ext) = name.split_once('.')?;
    if stem.len() < 8 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id: u32 = stem.parse().ok()?;
    // Only the names this engine writes: 8 digits, more without leading zeros.
    if format!("{id:08}") != stem {
        return None;
    }
    match ext {
        "log" => Some(FileKind::Segment(id)),
        "hint" => Some(FileKind::Hint(id)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_name(12), "00000012.log");
        assert_eq!(parse_name("00000012.log"), Some(FileKind::Segment(12)));
        assert_eq!(parse_name(&hint_name(7)), Some(FileKind::Hint(7)));
        assert_eq!(parse_name("META"), Some(FileKind::Meta));
        assert_eq!(parse_name("META.tmp"), Some(FileKind::MetaTmp));
        assert_eq!(segment_name(123_456_789), "123456789.log");
        assert_eq!(
            parse_name("123456789.log"),
            Some(FileKind::Segment(123_456_789))
        );
        for other in [
            "LOCK",
            "0000012.log",
            "00000012.txt",
            "0000001a.log",
            "000000012.log",
            "99999999999.log",
            "00000012.log.bak",
            "x.log",
            "",
        ] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }
}
