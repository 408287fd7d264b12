#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hbd::fuzzing::haresources(data));
