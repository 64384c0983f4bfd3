//! The kv store in a web page: a Bitcask store on IndexedDB behind a key, a value input and
//! two buttons. The page shows the key's value and every version of it (sequence number,
//! commit time, value or removal), and finds them again after a reload.
//!
//! wasm32 only: natively this library is empty. Build it with `build.sh`, serve it with
//! `serve.sh`, and see `README.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod dom;
