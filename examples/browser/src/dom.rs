//! The few DOM helpers the page needs, with errors as strings for the status line.

use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::JsValue;
use web_sys::{Document, Element, HtmlInputElement};

/// Errors shown to the user: the page only ever displays them.
pub type UiResult<T> = Result<T, String>;

/// A JavaScript exception as text.
pub fn js_err(e: JsValue) -> String {
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// The page's document.
pub fn document() -> UiResult<Document> {
    web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| "no document: not running in a page".to_string())
}

/// The element with `id`; an error naming it if the page lacks it.
pub fn element(doc: &Document, id: &str) -> UiResult<Element> {
    doc.get_element_by_id(id)
        .ok_or_else(|| format!("the page has no element #{id}"))
}

/// The text typed into the input `id`.
pub fn input_value(doc: &Document, id: &str) -> UiResult<String> {
    let input = element(doc, id)?
        .dyn_into::<HtmlInputElement>()
        .map_err(|_| format!("#{id} is not an input"))?;
    Ok(input.value())
}

/// Replaces the text of element `id`; nothing if the page lacks it.
pub fn set_text(doc: &Document, id: &str, text: &str) {
    if let Some(e) = doc.get_element_by_id(id) {
        e.set_text_content(Some(text));
    }
}

/// Replaces the children of the list `id` by one `<li>` per line.
pub fn set_list(doc: &Document, id: &str, lines: &[String]) -> UiResult<()> {
    let list = element(doc, id)?;
    list.set_text_content(None);
    for line in lines {
        let item = doc.create_element("li").map_err(js_err)?;
        item.set_text_content(Some(line));
        list.append_child(&item).map_err(js_err)?;
    }
    Ok(())
}

/// Calls `f` on every `event` of element `id`, for the life of the page.
pub fn on(
    doc: &Document,
    id: &str,
    event: &str,
    f: impl FnMut(web_sys::Event) + 'static,
) -> UiResult<()> {
    let handler = Closure::<dyn FnMut(web_sys::Event)>::new(f);
    element(doc, id)?
        .add_event_listener_with_callback(event, handler.as_ref().unchecked_ref())
        .map_err(js_err)?;
    // The listener lives as long as the page: hand its closure over to JavaScript.
    handler.forget();
    Ok(())
}

/// Resolves after `ms` milliseconds (a `setTimeout` as a future).
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        let scheduled = web_sys::window().and_then(|w| {
            w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms)
                .ok()
        });
        if scheduled.is_none() {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
