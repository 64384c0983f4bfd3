//! The command line: subcommands and their arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Keys are written as Rust-like literals with typed integers, as the key encoding is typed:
  '(\"org1\", 3u32)'  '\"home\"'  '42u64'  '[1u8, 2u8]'  'Some(-1i32)'  'b\"\\x00raw\"'
  (a one-field tuple needs its comma: '(\"org1\",)'); a key shown as raw:HEX is taken as such.
Where the catalog records a key type the tool knows, numbers may leave out their suffix:
  '(\"org1\", 3)' for a (String, u32) key.
Slots are numbers (0-254) or names from the store's catalog (`kv slots DIR`).

Read-only commands (info, verify, slots, keys, get, versions, export, backup, convert's source)
take no lock: they work while another process writes the store.

Exit codes:
  0  success
  1  damage found (verify), or the store reported corruption
  2  usage: bad arguments, key text, slot or type
  3  the store could not be opened or read (not a store, I/O error, locked, incompatible)
  4  the key, or the commit of --at, does not exist (get, versions)";

/// Inspect, verify, export, import, back up, merge and convert kv stores.
#[derive(Debug, Parser)]
#[command(name = "kv", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Engine, format, identity, counters, last commit and its time.
    Info {
        /// The store directory.
        dir: PathBuf,
    },
    /// Check every file's CRCs and records and the engine's invariants; exit 1 on damage,
    /// naming each damaged file and offset.
    Verify {
        /// The store directory.
        dir: PathBuf,
    },
    /// The catalog's slots (name, key and value types) and every slot holding keys.
    Slots {
        /// The store directory.
        dir: PathBuf,
    },
    /// Keys of a slot, in key order.
    Keys {
        /// The store directory.
        dir: PathBuf,
        /// Slot number or catalog name.
        slot: String,
        /// Only keys whose leading fields are this key (`'("org1",)'` for every `("org1", _)`).
        #[arg(long)]
        prefix: Option<String>,
        /// With `--prefix`, match a final string partially (`'("or",)'` matches `("org1", _)`).
        #[arg(long, requires = "prefix")]
        partial: bool,
        /// At most this many keys.
        #[arg(long)]
        limit: Option<usize>,
        /// Print each key's value too, after a tab.
        #[arg(long)]
        values: bool,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// The value of one key.
    Get {
        /// The store directory.
        dir: PathBuf,
        /// Slot number or catalog name.
        slot: String,
        /// The key (see below).
        key: String,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Every version of one key with its commit time, removals included.
    Versions {
        /// The store directory.
        dir: PathBuf,
        /// Slot number or catalog name.
        slot: String,
        /// The key (see below).
        key: String,
        /// Print each version's value too.
        #[arg(long)]
        values: bool,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Write the store (every version, or `--latest`) as an export stream.
    Export {
        /// The store directory.
        dir: PathBuf,
        /// The stream file, `-` for stdout.
        file: PathBuf,
        /// Only each key's latest value, not every version.
        #[arg(long)]
        latest: bool,
    },
    /// Apply an export stream to a new store (opens it for writing; created if missing).
    Import {
        /// The store directory: missing, empty, or a store the stream continues.
        dir: PathBuf,
        /// The stream file, `-` for stdin.
        file: PathBuf,
        /// The engine of a new store (default: the stream's engine, for a file).
        #[arg(long, value_enum)]
        engine: Option<EngineName>,
    },
    /// Copy every version into a new store in DEST, which must be missing or empty.
    Backup {
        /// The store directory.
        dir: PathBuf,
        /// Where the copy goes.
        dest: PathBuf,
    },
    /// Copy the store into a new store of another engine, every version at its commit.
    Convert {
        /// The store directory.
        dir: PathBuf,
        /// Where the new store goes (missing or empty).
        dest: PathBuf,
        /// The new store's engine.
        #[arg(long, value_enum)]
        to: EngineName,
        /// Only each key's latest value, not every version.
        #[arg(long)]
        latest: bool,
    },
    /// Drop old versions and removals, compact storage (opens the store for writing).
    Merge {
        /// The store directory.
        dir: PathBuf,
    },
}

/// How values are read and printed.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Read the store as it was after this commit (sequence number) instead of the latest.
    #[arg(long)]
    pub at: Option<u64>,
    /// How values are printed: `auto` is JSON when the value type is known (`--type`, or the
    /// catalog's type for the slot), hex otherwise.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    pub format: Format,
    /// The value type, for JSON (the types the tool knows are listed in `--help`).
    #[arg(
        long = "type",
        value_name = "TYPE",
        help = "The value type, for JSON: bool, u8..u128, i8..i128, f32, f64, char, String, (), \
                Vec<T>, Option<T>, [T; N], tuples of these"
    )]
    pub value_type: Option<String>,
}

/// Value output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// JSON if the type is known, else hex.
    Auto,
    /// The value's bytes (postcard) in hex.
    Hex,
    /// JSON, decoded by `--type` or the catalog's type.
    Json,
}

/// An engine, by the name in its stores' `IDENTITY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineName {
    /// Bitcask: all keys in memory, fastest point reads.
    Bitcask,
    /// LSM: keys need not fit in memory, fast ordered scans.
    Lsm,
}

impl EngineName {
    /// The engine of this name ([`kv_db::Engine::NAME`]).
    pub fn named(name: &str) -> anyhow::Result<EngineName> {
        use kv_db::Engine as _;
        use kv_db::backends::FileStorage;
        if name == kv_db::Bitcask::<FileStorage>::NAME {
            Ok(EngineName::Bitcask)
        } else if name == kv_db::Lsm::<FileStorage>::NAME {
            Ok(EngineName::Lsm)
        } else {
            Err(anyhow::anyhow!(
                "engine {name:?}, which this tool does not know"
            ))
        }
    }
}
