//! `kv`: the command-line tool of the kv store. It opens a store directory, finds its engine
//! in the store's `IDENTITY`, and inspects (read-only, without the writer lock, so beside a
//! running writer), verifies, exports, imports, backs up, merges or converts it.
//!
//! Exit codes: see [`Failure`] and `kv --help`.
#![forbid(unsafe_code)]
// Bad input (store bytes, key text, type names) is an error with an exit code, never a panic.
#![deny(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used
)]

mod cli;
mod commands;
mod keys;
mod open;
mod port;
mod progress;
mod values;

use std::process::ExitCode;

use clap::Parser;

/// How a command ended, beside success: each is an exit code, listed in `kv --help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 1: damage found (`verify`), or the store reported corruption.
    Damage,
    /// 2: bad arguments (clap's own code for usage errors).
    Usage,
    /// 3: the store could not be opened or read (I/O, not a store, locked, incompatible).
    Other,
    /// 4: the key or version asked for does not exist.
    NotFound,
}

impl Failure {
    fn code(self) -> u8 {
        match self {
            Failure::Damage => 1,
            Failure::Usage => 2,
            Failure::Other => 3,
            Failure::NotFound => 4,
        }
    }
}

/// An error that carries its exit code (bad key text, unknown slot, key not found); any other
/// error is classified by the `kv_db::Error` in its chain.
#[derive(Debug)]
pub struct Coded(pub Failure, pub String);

impl std::fmt::Display for Coded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for Coded {}

/// A usage error (exit code 2).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Coded(Failure::Usage, message.into()).into()
}

/// Stdout was closed by its reader (`kv keys .. | head`): the command stops, successfully.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Writes one line to stdout; a closed stdout is [`StdoutClosed`], other failures an error
/// (`println!` would panic on both).
pub fn write_line(line: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    use std::io::Write as _;
    match writeln!(std::io::stdout(), "{line}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        result => Ok(result?),
    }
}

/// `println!` that returns an error instead of panicking: see [`write_line`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::write_line(format_args!($($arg)*))?
    };
}

fn classify(err: &anyhow::Error) -> Failure {
    for cause in err.chain() {
        if let Some(Coded(failure, _)) = cause.downcast_ref::<Coded>() {
            return *failure;
        }
        if let Some(kv_db::Error::Corruption { .. }) = cause.downcast_ref::<kv_db::Error>() {
            return Failure::Damage;
        }
    }
    Failure::Other
}

fn main() -> ExitCode {
    // Usage errors exit with 2 here, `--help` with 0.
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("kv: cannot start the async runtime: {e}");
            return ExitCode::from(Failure::Other.code());
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(failure)) => ExitCode::from(failure.code()),
        Err(err) if err.downcast_ref::<StdoutClosed>().is_some() => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kv: {err:#}");
            ExitCode::from(classify(&err).code())
        }
    }
}
