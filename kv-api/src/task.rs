//! Cooperation with the executor.

/// Lets other tasks run once: natively, wakes itself and returns `Pending` once (any
/// executor, WASI included); in the browser, gives the event loop a turn.
///
/// Engines call it in long loops (a flush, a compaction) so that one task never holds an
/// executor thread for milliseconds; [`crate::Store::transact`] calls it between retries.
///
/// ```
/// # async fn demo() {
/// kv_api::yield_now().await;
/// # }
/// ```
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub async fn yield_now() {
    YieldNow(false).await
}

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
struct YieldNow(bool);

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
impl std::future::Future for YieldNow {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        use std::task::Poll;
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Drops `value` on another thread when there is one to spare: natively, inside a tokio
/// runtime, on its blocking pool; elsewhere (no runtime, WASI, the browser) right here.
///
/// For values whose drop frees many megabytes at once (a sealed segment's sorted entries, a
/// hint file's bytes, a replaced table). The allocator hands blocks that large back to the
/// OS (`munmap`), and unmapping tens of MiB takes milliseconds: on an executor thread, that
/// is a stall of every task it runs (#12, measured in tests/executor_stall.rs). A small
/// value is cheaper to drop in place.
///
/// ```
/// # fn main() {
/// let big = vec![0u8; 64 << 20];
/// kv_api::drop_off_executor(big); // freed on the blocking pool inside a runtime
/// # }
/// ```
pub fn drop_off_executor<T: Send + 'static>(value: T) {
    #[cfg(not(target_arch = "wasm32"))]
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        // The handle is not awaited: nothing waits for the memory. A runtime shutting down
        // drops the closure, and so the value, at once.
        drop(runtime.spawn_blocking(move || drop(value)));
        return;
    }
    drop(value);
}

/// Lets other tasks run once, and the browser deliver its pending events. It must give the
/// event loop a turn (`setTimeout(0)`: a task, not a microtask): a transaction that lost a
/// conflict and retries at once, in microtasks only, would never let the winner's IndexedDB
/// write report back, and retry forever. Not `scheduler.yield()`, whose continuations run
/// before other tasks (the IndexedDB events) and so starve them the same way.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub async fn yield_now() {
    use js_sys::{Function, Promise, Reflect};
    use wasm_bindgen::{JsCast, JsValue};

    let promise = Promise::new(&mut |resolve, _reject| {
        let global = js_sys::global();
        let set_timeout = Reflect::get(&global, &"setTimeout".into())
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok());
        let scheduled = set_timeout.is_some_and(|f| f.call2(&global, &resolve, &0.into()).is_ok());
        if !scheduled {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    });
    // Resolves (never rejects) once the event loop has had its turn.
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
