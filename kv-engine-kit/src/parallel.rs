//! CPU work of an open split over two threads where the target has them.
//!
//! Rebuilding in-memory state at open (Bitcask's keydir from hint files) is CPU and memory
//! bound work that splits in two naturally; a second core shortens its wall time. On wasm32
//! (the browser, WASI) and wherever no thread can be spawned, the work runs on the calling
//! thread, with the same result.

#[cfg(not(target_arch = "wasm32"))]
use parking_lot::Mutex;

/// Runs `a` and `b`, `a` on a second thread if one can be spawned, and returns both results.
/// A panic in either is resumed on the caller's thread, as if both had run there.
///
/// ```
/// let (a, b) = kv_engine_kit::parallel::join(|| 2 + 2, || "four");
/// assert_eq!((a, b), (4, "four"));
/// ```
#[cfg(not(target_arch = "wasm32"))]
pub fn join<A: Send, B>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B) -> (A, B) {
    // Whoever runs `a` takes it from here: the thread, or the caller if there is none.
    let task = Mutex::new(Some(a));
    let run = || task.lock().take().map(|f| f());
    let (from_thread, b) = std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("kv-open".into())
            .spawn_scoped(scope, run)
            .ok();
        let b = b();
        let a = handle.and_then(|h| match h.join() {
            Ok(a) => a,
            Err(panic) => std::panic::resume_unwind(panic),
        });
        (a, b)
    });
    let a = from_thread
        .or_else(run)
        .expect("`a` ran on the thread or, without one, here");
    (a, b)
}

/// [`join`] on wasm32 (the browser, WASI preview 1): no threads, so both run here, in
/// order. (Std's thread spawning would also link pthread functions that WASI's libc may
/// lack.)
#[cfg(target_arch = "wasm32")]
pub fn join<A: Send, B>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B) -> (A, B) {
    (a(), b())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_run_and_panics_come_back() {
        let data: Vec<u64> = (0..1000).collect();
        let (sum, max) = join(|| data.iter().sum::<u64>(), || data.iter().max().copied());
        assert_eq!((sum, max), (499_500, Some(999)));
        let caught = std::panic::catch_unwind(|| join(|| panic!("boom"), || 1));
        assert!(caught.is_err());
    }
}
