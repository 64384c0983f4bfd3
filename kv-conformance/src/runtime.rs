//! The only runtime-specific code of the suite: running a case, running tasks side by side,
//! yielding, and catching a panic inside a future. Case bodies use these and nothing else, so
//! a `wasm_bindgen_test` runner can be added by giving this module a wasm32 twin.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use kv_api::BoxFuture;

/// A case that runs longer than this fails instead of hanging the test run (a deadlock).
#[cfg(not(target_arch = "wasm32"))]
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

/// Runs `tasks` concurrently on the current task (wasm32 has no threads).
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

/// Lets other tasks run once (interleaves concurrent transactions).
pub async fn yield_now() {
    YieldNow(false).await
}

struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Runs `fut`, turning a panic inside it into `Err(message)`: a panicking engine becomes a
/// failing (and shrinkable) history instead of an aborted test.
pub async fn catch_panic<F: Future>(fut: F) -> Result<F::Output, String> {
    CatchPanic(Box::pin(fut)).await
}

struct CatchPanic<F>(Pin<Box<F>>);

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
