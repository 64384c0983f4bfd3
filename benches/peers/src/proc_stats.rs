//! What the kernel counts for this process (Linux `/proc/self`; `None` elsewhere).

/// A field of `/proc/self/status` in KiB (`VmHWM`, `VmRSS`).
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Peak resident set of this process so far (`VmHWM`), KiB.
pub fn peak_rss_kib() -> Option<u64> {
    status_kib("VmHWM")
}

/// Resident set of this process now (`VmRSS`), KiB.
pub fn rss_kib() -> Option<u64> {
    status_kib("VmRSS")
}

/// Bytes this process has written so far (`/proc/self/io`, every thread).
#[derive(Clone, Copy, Debug)]
pub struct Io {
    /// `wchar`: bytes passed to `write`-like calls (whether or not they reached the disk).
    pub wchar: u64,
    /// `write_bytes`: bytes this process caused to be sent to the block layer (page cache
    /// pages dirtied; includes later writeback of them).
    pub write_bytes: u64,
}

pub fn io() -> Option<Io> {
    let text = std::fs::read_to_string("/proc/self/io").ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some(Io {
        wchar: field("wchar")?,
        write_bytes: field("write_bytes")?,
    })
}
