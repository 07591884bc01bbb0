#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| llm_proxy::fuzzing::responses_dialect(data));
