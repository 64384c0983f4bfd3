//! The writer lock of an IndexedDB storage, exclusive across tabs and workers of an origin.
//!
//! Uses the Web Locks API (`navigator.locks.request(name, {ifAvailable: true}, callback)`):
//! the callback receives `null` when another context holds the lock, and otherwise the lock
//! is held until the promise it returns settles, which the guard's `Drop` resolves. It is
//! called through `js_sys::Reflect` because web-sys only exposes Web Locks behind the
//! `web_sys_unstable_apis` cfg, which every user of this crate would have to set.
//!
//! Where the API is absent (old browsers, some embedded webviews), the lock falls back to a
//! registry in this JavaScript realm: it still stops a second writer in the same page or
//! worker, but **not** one in another tab.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use js_sys::{Function, Object, Promise, Reflect};
use kv_api::{Error, LockGuard, Result};
use tokio::sync::oneshot;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::layout::idb_err;

thread_local! {
    /// Lock names held in this realm when the Web Locks API is absent.
    static HELD: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
    /// Web Locks this realm has let go of, by name: the request's promise, which settles once
    /// the lock manager has actually released the lock.
    static RELEASING: RefCell<HashMap<String, Promise>> = RefCell::new(HashMap::new());
}

/// Releases a Web Lock by resolving the promise its callback returned.
struct WebLock {
    name: String,
    release: Function,
    done: Promise,
}

impl Drop for WebLock {
    fn drop(&mut self) {
        // The lock manager frees the lock only after this promise resolves, a few microtasks
        // later; `acquire` in this realm waits for that instead of failing with `Locked`.
        // Nothing to do if the call fails: the lock is then released when the page goes away.
        let _ = self.release.call0(&JsValue::UNDEFINED);
        let name = std::mem::take(&mut self.name);
        let done = self.done.clone();
        RELEASING.with(|r| r.borrow_mut().insert(name, done));
    }
}

/// Releases a lock of the in-realm registry.
struct RealmLock(String);

impl Drop for RealmLock {
    fn drop(&mut self) {
        HELD.with(|held| held.borrow_mut().remove(&self.0));
    }
}

/// Takes the lock `name` without waiting: [`Error::Locked`] if another holder has it.
pub(super) async fn acquire(name: &str) -> Result<LockGuard> {
    match lock_manager() {
        Some(locks) => {
            let releasing = RELEASING.with(|r| r.borrow_mut().remove(name));
            if let Some(done) = releasing {
                // Settles (resolved or rejected alike) when our own release has completed.
                let _ = JsFuture::from(done).await;
            }
            web_lock(&locks, name).await
        }
        None => realm_lock(name),
    }
}

/// `navigator.locks` of this window or worker, if the API exists.
fn lock_manager() -> Option<Object> {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let locks = Reflect::get(&navigator, &"locks".into()).ok()?;
    let request = Reflect::get(&locks, &"request".into()).ok()?;
    (request.is_function() && locks.is_object()).then(|| locks.unchecked_into())
}

fn realm_lock(name: &str) -> Result<LockGuard> {
    if HELD.with(|held| held.borrow_mut().insert(name.to_string())) {
        Ok(LockGuard::new(RealmLock(name.to_string())))
    } else {
        Err(locked(name))
    }
}

fn locked(name: &str) -> Error {
    Error::Locked(format!(
        "IndexedDB storage {name} is open for writing in this or another tab"
    ))
}

async fn web_lock(locks: &Object, name: &str) -> Result<LockGuard> {
    let err = |e: JsValue| idb_err(format!("lock IndexedDB storage {name}"), format!("{e:?}"));
    // The callback reports `Some(release)` when granted, `None` when the lock is taken.
    let (tx, mut granted) = oneshot::channel::<Option<Function>>();
    let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        if lock.is_null() {
            let _ = tx.send(None);
            return JsValue::UNDEFINED;
        }
        let mut release = None;
        let held = Promise::new(&mut |resolve, _reject| release = Some(resolve));
        let _ = tx.send(release);
        held.into()
    });
    let options = Object::new();
    Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE).map_err(err)?;
    let request: Function = Reflect::get(locks, &"request".into())
        .map_err(err)?
        .dyn_into()
        .map_err(err)?;
    let done: Promise = request
        .call3(locks, &name.into(), &options, &callback)
        .map_err(err)?
        .dyn_into()
        .map_err(err)?;
    // `done` rejects instead of calling back on errors (no secure context, bad name), so wait
    // for whichever comes first.
    let held = done.clone();
    let mut done = JsFuture::from(done);
    let outcome = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = Pin::new(&mut granted).poll(cx) {
            return Poll::Ready(r.map_err(|_| err("lock callback dropped".into())));
        }
        match Pin::new(&mut done).poll(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(err(e))),
            // Settling calls back first, so this means the callback never ran.
            Poll::Ready(Ok(_)) => Poll::Ready(Err(err("lock callback not called".into()))),
            Poll::Pending => Poll::Pending,
        }
    })
    .await?;
    match outcome {
        Some(release) => Ok(LockGuard::new(WebLock {
            name: name.to_string(),
            release,
            done: held,
        })),
        None => Err(locked(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn in_page_fallback_excludes_a_second_writer() {
        let guard = realm_lock("kv-test-fallback");
        assert!(guard.is_ok());
        assert!(matches!(
            realm_lock("kv-test-fallback"),
            Err(Error::Locked(_))
        ));
        assert!(realm_lock("kv-test-fallback-other").is_ok());
        drop(guard);
        assert!(realm_lock("kv-test-fallback").is_ok());
    }
}
