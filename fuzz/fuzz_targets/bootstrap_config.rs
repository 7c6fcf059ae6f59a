//! `selfhosted_bootstrap` values as Terraform sends them (see `selfhosted_fuzz::check`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| selfhosted_fuzz::check("selfhosted_bootstrap", data));
