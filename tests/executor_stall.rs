//! The file backend never stalls the async executor: a ticker task's worst scheduling delay
//! while 64 tasks commit durably (each commit waits for `fdatasync`) on a two-worker runtime.
//!
//! Ignored by default (it measures, and a loaded machine can delay any thread): run it with
//! `cargo test --release --test executor_stall -- --ignored --nocapture`. It prints the
//! ticker's worst and 99.9th-percentile delay and the commit rate, and fails if the worst
//! delay reaches `KV_STALL_LIMIT_US` (default 1000 µs).
//!
//! The delay is measured without tokio's timer (whose wheel has 1 ms steps): a thread stamps
//! each tick as it sends it, and the ticker task reads the clock when it receives it. Beside
//! it the test prints the committer tasks' longest poll, with and without the time their
//! thread waited for a CPU (on Linux), so that a stall of our code can be told apart from the
//! OS running other threads: on a loaded machine the control on memory, which does no I/O,
//! shows what the OS alone costs (docs/benchmarks.md).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use kv_db::{Engine, Result, Store, backends::FileStorage, backends::MemoryStorage};

const COMMITTERS: usize = 64;
const RUN: Duration = Duration::from_secs(3);
const TICK: Duration = Duration::from_micros(200);

#[test]
#[ignore = "a measurement; run with --ignored --nocapture"]
fn ticker_is_never_stalled_by_durable_commits() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| kv_db::Error::io("tempdir", e))?;
    let path = dir.path().to_path_buf();
    measure::<kv_db::Bitcask<FileStorage>>("file", async move || FileStorage::open(path).await)
}

/// The same on the LSM engine (its WAL sync and memtable instead of the log and keydir).
#[cfg(feature = "lsm")]
#[test]
#[ignore = "a measurement; run with --ignored --nocapture"]
fn lsm_ticker_is_never_stalled_by_durable_commits() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| kv_db::Error::io("tempdir", e))?;
    let path = dir.path().to_path_buf();
    measure::<kv_db::Lsm<FileStorage>>("file, lsm", async move || FileStorage::open(path).await)
}

/// The control: the same load without I/O, on memory. What it measures is the delay that
/// CPU contention alone causes (64 busy tasks on two workers, other processes).
#[test]
#[ignore = "a measurement; run with --ignored --nocapture"]
fn control_ticker_on_memory() -> Result<()> {
    measure::<kv_db::Bitcask<MemoryStorage>>("memory", async || Ok(MemoryStorage::new()))
}

/// The polls of the committer tasks: how long our code holds a worker thread. A poll's wall
/// time also counts the time its thread waited for a CPU while the OS ran other threads (this
/// machine's other processes, the blocking pool): that wait is measured apart (Linux), and
/// the rest, "own" time, is our code running or blocked in a system call or on a lock.
struct Polls {
    start: Instant,
    longest_ns: AtomicU64,
    longest_own_ns: AtomicU64,
    /// Polls of 500 µs or more (wall): when they ended (since the start), their wall time,
    /// their own time, and how often their thread got a CPU back during the poll (0: it ran
    /// through; else it was preempted, or slept in a system call or on a lock).
    long: Mutex<Vec<(Duration, Duration, Duration, u64)>>,
}

impl Polls {
    const LONG: Duration = Duration::from_micros(500);

    fn new() -> Self {
        Polls {
            start: Instant::now(),
            longest_ns: AtomicU64::new(0),
            longest_own_ns: AtomicU64::new(0),
            long: Mutex::new(Vec::new()),
        }
    }
}

/// How long this thread has waited for a CPU while runnable (ns), and how many times it got
/// one: the second and third fields of `/proc/thread-self/schedstat`, which the scheduler
/// updates when the thread gets a CPU back (so a poll that was preempted and resumed sees its
/// wait). `None` elsewhere than Linux.
fn run_delay_ns() -> Option<(u64, u64)> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::FileExt;
        thread_local! {
            static STAT: Option<std::fs::File> =
                std::fs::File::open("/proc/thread-self/schedstat").ok();
        }
        STAT.with(|f| {
            let mut buf = [0u8; 96];
            let n = f.as_ref()?.read_at(&mut buf, 0).ok()?;
            let text = std::str::from_utf8(buf.get(..n)?).ok()?;
            let mut fields = text.split_whitespace().skip(1);
            Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
        })
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// Polls `fut`, timing every poll into `polls`.
struct Timed<F> {
    fut: Pin<Box<F>>,
    polls: Arc<Polls>,
}

impl<F: Future> Future for Timed<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let waited = run_delay_ns();
        let t = Instant::now();
        let out = self.fut.as_mut().poll(cx);
        let took = t.elapsed();
        let (waited, switches) = match (waited, run_delay_ns()) {
            (Some(a), Some(b)) => (
                Duration::from_nanos(b.0.saturating_sub(a.0)),
                b.1.saturating_sub(a.1),
            ),
            _ => (Duration::ZERO, 0),
        };
        let own = took.saturating_sub(waited);
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.polls.longest_ns.fetch_max(ns(took), Ordering::Relaxed);
        self.polls
            .longest_own_ns
            .fetch_max(ns(own), Ordering::Relaxed);
        if took >= Polls::LONG
            && let Ok(mut long) = self.polls.long.lock()
        {
            long.push((self.polls.start.elapsed(), took, own, switches));
        }
        out
    }
}

fn measure<E: Engine>(
    backend: &str,
    storage: impl AsyncFnOnce() -> Result<E::Storage>,
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .map_err(|e| kv_db::Error::io("runtime", e))?;
    let (delays, commits, polls) = rt.block_on(async {
        let store = Store::<E>::open(storage().await?).await?;
        let stop = Arc::new(AtomicBool::new(false));
        // A thread stamps each tick with the time it is sent; the ticker task records how
        // late it sees it: the time the executor took to run a ready task.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
        let ticking = stop.clone();
        let sender = std::thread::spawn(move || {
            while !ticking.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                if tx.send(Instant::now()).is_err() {
                    break;
                }
            }
        });
        let polls = Arc::new(Polls::new());
        let start = polls.start;
        // The clock's raw value, to find the times printed below in a `perf record -k
        // CLOCK_MONOTONIC` trace.
        println!("  start: {start:?}");
        let ticker = tokio::spawn(async move {
            let mut delays = Vec::new();
            while let Some(sent) = rx.recv().await {
                let delay = sent.elapsed();
                // When the worst stalls happen tells what causes them (a table that doubles
                // stalls at doubling times; #12 found the newest-version table that way).
                if delay >= Duration::from_millis(2) {
                    println!("  stall of {delay:?} at {:?}", sent.duration_since(start));
                }
                delays.push(delay);
            }
            delays
        });
        let mut committers = Vec::new();
        for c in 0..COMMITTERS {
            let (store, stop) = (store.clone(), stop.clone());
            let polls = polls.clone();
            committers.push(tokio::spawn(Timed {
                polls,
                fut: Box::pin(async move {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let mut txn = store.current();
                        txn.insert(0, &(c as u64, n), vec![7u8; 100])?;
                        txn.commit().await?;
                        n += 1;
                    }
                    Ok::<u64, kv_db::Error>(n)
                }),
            }));
        }
        std::thread::sleep(RUN);
        stop.store(true, Ordering::Relaxed);
        let mut commits = 0;
        for c in committers {
            commits += c
                .await
                .map_err(|e| kv_db::Error::io("join", std::io::Error::other(e)))??;
        }
        let _ = sender.join();
        let delays = ticker
            .await
            .map_err(|e| kv_db::Error::io("join", std::io::Error::other(e)))?;
        store.close().await?;
        Ok::<_, kv_db::Error>((delays, commits, polls))
    })?;
    let mut sorted = delays.clone();
    sorted.sort();
    let worst = sorted.last().copied().unwrap_or_default();
    let p999 = sorted
        .get(sorted.len().saturating_sub(1) * 999 / 1000)
        .copied()
        .unwrap_or_default();
    let over = sorted
        .iter()
        .filter(|d| **d >= Duration::from_millis(1))
        .count();
    println!(
        "ticker ({backend}): {} ticks, worst delay {worst:?}, p99.9 {p999:?}, {over} ticks >= 1 ms; \
         {commits} durable commits by {COMMITTERS} tasks in {RUN:?} ({:.0}/s)",
        sorted.len(),
        commits as f64 / RUN.as_secs_f64()
    );
    let mut long = polls.long.lock().map(|l| l.clone()).unwrap_or_default();
    // Ours first: the polls that held their thread longest without waiting for a CPU.
    long.sort_by_key(|&(_, _, own, _)| std::cmp::Reverse(own));
    let ms = |ns: &AtomicU64| Duration::from_nanos(ns.load(Ordering::Relaxed));
    println!(
        "  committer polls ({backend}): longest {:?} wall, {:?} own (without waits for a CPU); \
         {} polls >= {:?} wall{}",
        ms(&polls.longest_ns),
        ms(&polls.longest_own_ns),
        long.len(),
        Polls::LONG,
        if long.is_empty() {
            ""
        } else {
            "; the longest own (ended at: wall, own, CPU regained):"
        }
    );
    for (at, took, own, switches) in long.iter().take(4) {
        println!("    {at:?}: {took:?}, {own:?}, {switches}x");
    }
    // Polls that lost their CPU over and over: a wake-up storm (each wake preempting the
    // waker), rather than one long piece of our code.
    let stormy = long.iter().filter(|l| l.3 >= 16).count();
    println!("  long polls that got a CPU back 16 times or more: {stormy}");
    let limit = std::env::var("KV_STALL_LIMIT_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    assert!(
        worst < Duration::from_micros(limit),
        "the executor stalled for {worst:?} (limit {limit} µs)"
    );
    Ok(())
}

/// Bitcask seals its active segment when it reaches `segment_size` (64 MiB): the commit that
/// crosses it sorts the segment's entries, writes the hint and starts a new segment. The
/// polls of that commit must stay short too; without fsyncs (buffered commits) the roll comes
/// within seconds even on a busy machine. Prints the longest polls, own time first.
#[test]
#[ignore = "a measurement; run with --ignored --nocapture"]
fn bitcask_roll_polls() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| kv_db::Error::io("tempdir", e))?;
    let path = dir.path().to_path_buf();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .map_err(|e| kv_db::Error::io("runtime", e))?;
    let options = kv_db::Options::default().durability(kv_db::Durability::Buffered);
    // Enough 170-byte commits to cross 64 MiB once.
    const PER_TASK: u64 = 110_000;
    const TASKS: u64 = 4;
    let polls = rt.block_on(async {
        let store = Store::<kv_db::Bitcask<FileStorage>>::open_with(
            FileStorage::open(path).await?,
            options,
        )
        .await?;
        let polls = Arc::new(Polls::new());
        println!("  start: {:?}", polls.start);
        let mut tasks = Vec::new();
        for c in 0..TASKS {
            let store = store.clone();
            tasks.push(tokio::spawn(Timed {
                polls: polls.clone(),
                fut: Box::pin(async move {
                    for n in 0..PER_TASK {
                        let mut txn = store.current();
                        txn.insert(0, &(c, n), vec![7u8; 100])?;
                        txn.commit().await?;
                        // A buffered commit seldom waits: without this, a poll would run
                        // commits until tokio's budget ran out, and time many, not one.
                        tokio::task::yield_now().await;
                    }
                    Ok::<(), kv_db::Error>(())
                }),
            }));
        }
        for t in tasks {
            t.await
                .map_err(|e| kv_db::Error::io("join", std::io::Error::other(e)))??;
        }
        store.close().await?;
        Ok::<_, kv_db::Error>(polls)
    })?;
    let mut long = polls.long.lock().map(|l| l.clone()).unwrap_or_default();
    long.sort_by_key(|&(_, _, own, _)| std::cmp::Reverse(own));
    println!(
        "bitcask roll: longest poll {:?} wall, {:?} own; {} polls >= {:?} wall; the longest own \
         (ended at: wall, own, CPU regained):",
        Duration::from_nanos(polls.longest_ns.load(Ordering::Relaxed)),
        Duration::from_nanos(polls.longest_own_ns.load(Ordering::Relaxed)),
        long.len(),
        Polls::LONG,
    );
    for (at, took, own, switches) in long.iter().take(8) {
        println!("    {at:?}: {took:?}, {own:?}, {switches}x");
    }
    Ok(())
}
