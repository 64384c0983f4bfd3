//! The only runtime-specific code of the suite: running a case, running tasks side by side,
//! yielding, and catching a panic inside a future. Case bodies use these and nothing else.
//!
//! Natively a case runs on a fresh multi-thread tokio runtime ([`block_on`]); on WASI (one
//! thread, `wasm32-wasip1`) on a current-thread tokio runtime, with tasks interleaved on the
//! case's task as in the browser, and panics not caught (WASI aborts on panic too). In the
//! browser there is no `block_on` (the browser's event loop cannot be blocked): [`crate::suite!`] writes
//! `async` `wasm_bindgen_test`s that await the case, tasks run interleaved on the test's own
//! task, and panics are not caught (wasm32 aborts on panic).

use std::future::Future;
#[cfg(not(target_arch = "wasm32"))]
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use kv_api::BoxFuture;

/// A case that runs longer than this fails instead of hanging the test run (a deadlock).
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
const CASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Runs a case to completion on a fresh multi-thread tokio runtime (two workers, so the
/// concurrency cases really run in parallel). Panics if the case panics or exceeds 10 minutes.
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: Future>(case: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("cannot build a tokio runtime");
    runtime.block_on(async {
        match tokio::time::timeout(CASE_TIMEOUT, case).await {
            Ok(out) => out,
            Err(_) => panic!("case did not finish within {CASE_TIMEOUT:?}: deadlock?"),
        }
    })
}

/// Runs a case to completion on a fresh current-thread tokio runtime (WASI has one thread).
/// Panics if the case exceeds 10 minutes and waits (a case that spins is not stopped).
#[cfg(target_os = "wasi")]
pub fn block_on<F: Future>(case: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("cannot build a tokio runtime");
    runtime.block_on(async {
        match tokio::time::timeout(CASE_TIMEOUT, case).await {
            Ok(out) => out,
            Err(_) => panic!("case did not finish within {CASE_TIMEOUT:?}: deadlock?"),
        }
    })
}

/// Runs `tasks` concurrently (natively: spawned on the runtime, so in parallel) and returns
/// their outputs in order. A panicking task panics the caller with the task's message.
#[cfg(not(target_arch = "wasm32"))]
pub async fn join_all<T: Send + 'static>(tasks: Vec<BoxFuture<'static, T>>) -> Vec<T> {
    let handles: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        match h.await {
            Ok(v) => out.push(v),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("task failed: {e}"),
        }
    }
    out
}

/// Runs `tasks` concurrently on the current task (wasm32 has no threads): each is polled in
/// turn whenever the joint future is woken, so they interleave at every `await` that waits.
#[cfg(target_arch = "wasm32")]
pub async fn join_all<T: 'static>(tasks: Vec<BoxFuture<'static, T>>) -> Vec<T> {
    JoinAll {
        tasks: tasks.into_iter().map(Some).collect(),
        out: Vec::new(),
    }
    .await
}

#[cfg(target_arch = "wasm32")]
struct JoinAll<T> {
    tasks: Vec<Option<BoxFuture<'static, T>>>,
    out: Vec<Option<T>>,
}

// Nothing is pinned structurally: the tasks are boxed and outputs are only moved out.
#[cfg(target_arch = "wasm32")]
impl<T> Unpin for JoinAll<T> {}

#[cfg(target_arch = "wasm32")]
impl<T> Future for JoinAll<T> {
    type Output = Vec<T>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<T>> {
        let this = &mut *self;
        if this.out.is_empty() {
            this.out = this.tasks.iter().map(|_| None).collect();
        }
        let mut pending = false;
        for (task, out) in this.tasks.iter_mut().zip(this.out.iter_mut()) {
            if let Some(f) = task {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *out = Some(v);
                        *task = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(this.out.iter_mut().filter_map(Option::take).collect())
        }
    }
}

/// Lets other tasks run once (interleaves concurrent transactions): [`kv_api::yield_now`].
pub use kv_api::yield_now;

/// Waits `ms` milliseconds without blocking other tasks (a slow device in a storage wrapper).
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub async fn sleep_ms(ms: u64) {
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await
}

/// Gives the browser's event loop one turn ([`yield_now`]), the closest a case gets to a
/// sleep there: enough for the other interleaved tasks to run while this one waits.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub async fn sleep_ms(_ms: u64) {
    yield_now().await
}

/// Runs `fut` for at most `limit`: `None` if it has not finished by then (a hang). Natively a
/// tokio timer stops a future that waits; one that spins without ever returning from a poll
/// cannot be stopped, so a watchdog thread prints `what` after twice `limit` and aborts the
/// process (a hang must fail the run, naming its case, not stall it). On wasm32, where
/// nothing can preempt the case's task, `fut` is simply awaited.
#[cfg(not(target_arch = "wasm32"))]
pub async fn within<F: Future>(
    limit: std::time::Duration,
    what: &str,
    fut: F,
) -> Option<F::Output> {
    use std::sync::mpsc;
    let (done, wait) = mpsc::channel::<()>();
    let what = what.to_string();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(limit * 2) {
            eprintln!(
                "{what}: still running after {:?}: hung; aborting",
                limit * 2
            );
            std::process::abort();
        }
    });
    let out = tokio::time::timeout(limit, fut).await.ok();
    drop(done);
    // The watchdog returns as soon as `done` is dropped.
    let _ = watchdog.join();
    out
}

/// Runs `fut` for at most `limit` (WASI: a tokio timer; no watchdog, as there are no
/// threads, so a future that spins without returning from a poll is not stopped).
#[cfg(target_os = "wasi")]
pub async fn within<F: Future>(
    limit: std::time::Duration,
    _what: &str,
    fut: F,
) -> Option<F::Output> {
    tokio::time::timeout(limit, fut).await.ok()
}

/// Runs `fut` (browser: nothing can preempt the case's task, so no limit is enforced).
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub async fn within<F: Future>(
    _limit: std::time::Duration,
    _what: &str,
    fut: F,
) -> Option<F::Output> {
    Some(fut.await)
}

/// Runs `fut`, turning a panic inside it into `Err(message)`: a panicking engine becomes a
/// failing (and shrinkable) history instead of an aborted test.
#[cfg(not(target_arch = "wasm32"))]
pub async fn catch_panic<F: Future>(fut: F) -> Result<F::Output, String> {
    CatchPanic(Box::pin(fut)).await
}

/// Runs `fut`. wasm32 aborts on panic, so there is nothing to catch: a panicking history
/// fails the test unshrunk (the histories are the same natively, from the same seed: shrink
/// it there).
#[cfg(target_arch = "wasm32")]
pub async fn catch_panic<F: Future>(fut: F) -> Result<F::Output, String> {
    Ok(fut.await)
}

#[cfg(not(target_arch = "wasm32"))]
struct CatchPanic<F>(Pin<Box<F>>);

#[cfg(not(target_arch = "wasm32"))]
impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
                    .unwrap_or_else(|| "non-string panic".to_string());
                Poll::Ready(Err(format!("panicked: {msg}")))
            }
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::time::Duration;

    use super::*;

    /// [`within`] gives up on a future that waits past its limit (and its watchdog lets the
    /// process live), and returns what a quick one gives.
    #[test]
    fn within_stops_a_waiting_future() {
        block_on(async {
            let slow = within(Duration::from_millis(20), "slow", sleep_ms(5_000)).await;
            assert!(slow.is_none());
            let quick = within(Duration::from_secs(5), "quick", async { 7 }).await;
            assert_eq!(quick, Some(7));
        });
    }

    /// [`catch_panic`] turns a panic inside the future into its message.
    #[test]
    fn catch_panic_reports_the_message() {
        block_on(async {
            let caught = catch_panic(async {
                yield_now().await;
                panic!("decoder fell over");
            })
            .await;
            let message: Result<(), String> = caught;
            assert!(message.is_err_and(|m| m.contains("decoder fell over")));
        });
    }
}
