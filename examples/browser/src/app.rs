//! The page's logic: open the store, show the key's value and versions, write on click.

use kv_db::backends::IndexedDbStorage;
use kv_db::{Bitcask, Error, Slot, Store, Version};
use wasm_bindgen::prelude::wasm_bindgen;
use web_sys::Document;

use crate::dom::{UiResult, document, input_value, on, set_list, set_text, sleep};

/// The store of the page: Bitcask on IndexedDB.
type PageStore = Store<Bitcask<IndexedDbStorage>>;

/// The IndexedDB database holding the store.
const DATABASE: &str = "kv-browser-example";
/// Everything the page writes lives in this slot.
const SLOT: Slot = 0;
/// How long opening waits for the writer lock (another tab, or this tab before a reload).
const LOCK_WAIT_MS: i32 = 5_000;
const LOCK_RETRY_MS: i32 = 100;

/// Entry point, run by wasm-bindgen's `init()`: starts the page's task.
#[wasm_bindgen(start)]
pub fn start() {
    wasm_bindgen_futures::spawn_local(async {
        let doc = match document() {
            Ok(doc) => doc,
            Err(e) => return web_sys::console::error_1(&e.into()),
        };
        if let Err(e) = run(&doc).await {
            set_text(&doc, "status", &format!("error: {e}"));
        }
    });
}

/// Opens the store, shows what is stored, then wires the buttons.
async fn run(doc: &Document) -> UiResult<()> {
    set_text(doc, "status", "opening the store…");
    let store = open().await?;
    show(doc, &store).await?;
    handle(doc, "write", "submit", &store, |doc, store| async move {
        let value = input_value(&doc, "value-input")?;
        write(&doc, &store, Some(value)).await
    })?;
    handle(doc, "remove", "click", &store, |doc, store| async move {
        write(&doc, &store, None).await
    })?;
    handle(doc, "key", "change", &store, |doc, store| async move {
        show(&doc, &store).await
    })?;
    set_text(doc, "status", "ready");
    Ok(())
}

/// Opens the store. A tab holding the store keeps its writer lock (a Web Lock) until it
/// closes; after a reload the previous page may still hold it for a moment, hence the retries.
async fn open() -> UiResult<PageStore> {
    let mut waited = 0;
    loop {
        let storage = IndexedDbStorage::open(DATABASE)
            .await
            .map_err(|e| e.to_string())?;
        match PageStore::open(storage).await {
            Err(Error::Locked(_)) if waited < LOCK_WAIT_MS => {
                sleep(LOCK_RETRY_MS).await;
                waited += LOCK_RETRY_MS;
            }
            Err(Error::Locked(_)) => {
                return Err("the store is open in another tab; close it and reload".into());
            }
            other => return other.map_err(|e| e.to_string()),
        }
    }
}

/// Runs `action` on every `event` of element `id`, then reports "ready" or the error.
fn handle<F, Fut>(
    doc: &Document,
    id: &str,
    event: &str,
    store: &PageStore,
    action: F,
) -> UiResult<()>
where
    F: Fn(Document, PageStore) -> Fut + 'static,
    Fut: std::future::Future<Output = UiResult<()>> + 'static,
{
    let target = doc.clone();
    let (doc, store) = (doc.clone(), store.clone());
    on(&target, id, event, move |event| {
        // No form submission (page reload) or other default action: the store does the work.
        event.prevent_default();
        set_text(&doc, "status", "working…");
        let (doc, done) = (doc.clone(), action(doc.clone(), store.clone()));
        wasm_bindgen_futures::spawn_local(async move {
            let status = match done.await {
                Ok(()) => "ready".to_string(),
                Err(e) => format!("error: {e}"),
            };
            set_text(&doc, "status", &status);
        });
    })
}

/// The key typed into the page; an error if empty.
fn key(doc: &Document) -> UiResult<String> {
    let key = input_value(doc, "key")?;
    if key.is_empty() {
        return Err("type a key first".into());
    }
    Ok(key)
}

/// Commits `value` (or a removal) under the key, durably, then shows the result.
async fn write(doc: &Document, store: &PageStore, value: Option<String>) -> UiResult<()> {
    let key = key(doc)?;
    // A click racing another click's commit of the same key conflicts: just retry.
    let committed = loop {
        let mut txn = store.current();
        match &value {
            Some(v) => txn.insert(SLOT, key.as_str(), v),
            None => txn.remove(SLOT, key.as_str()),
        }
        .map_err(|e| e.to_string())?;
        match txn.commit().await {
            Err(e) if e.is_conflict() => {}
            other => break other,
        }
    };
    committed.map_err(|e| e.to_string())?;
    show(doc, store).await
}

/// Shows the key's current value and every version of it, newest first.
async fn show(doc: &Document, store: &PageStore) -> UiResult<()> {
    let key = key(doc)?;
    let txn = store.snapshot();
    let current: Option<String> = txn
        .get(SLOT, key.as_str())
        .await
        .map_err(|e| e.to_string())?;
    let versions = txn
        .versions(SLOT, key.as_str())
        .await
        .map_err(|e| e.to_string())?;
    let mut lines = Vec::with_capacity(versions.len());
    for v in versions.iter().rev() {
        let value: Option<String> = txn
            .get_version(SLOT, key.as_str(), *v)
            .await
            .map_err(|e| e.to_string())?;
        lines.push(describe(*v, value));
    }
    set_text(doc, "value", current.as_deref().unwrap_or("(none)"));
    let count = match versions.len() {
        1 => "1 version".to_string(),
        n => format!("{n} versions"),
    };
    set_text(doc, "count", &count);
    set_list(doc, "versions", &lines)
}

/// One line of the version list: `#seq  time  value` or `#seq  time  removed`.
fn describe(v: Version, value: Option<String>) -> String {
    let time = js_sys::Date::new(&(v.time_ms() as f64).into()).to_iso_string();
    let what = match value {
        Some(value) if !v.is_removal() => format!("= {value:?}"),
        _ => "removed".to_string(),
    };
    format!("#{}  {}  {what}", v.seq(), String::from(time))
}
