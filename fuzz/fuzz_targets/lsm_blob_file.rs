#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kv_fuzz::lsm_blob_file(data));
