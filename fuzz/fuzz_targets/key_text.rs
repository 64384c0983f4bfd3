#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kv_fuzz::key_text(data));
