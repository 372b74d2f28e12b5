//! Policy files: any text parses or fails with a one-line message; a parsed policy renders to a file
//! that parses back to the same policy.
#![no_main]
use libfuzzer_sys::fuzz_target;

// The host's policy module, compiled here without the rest of the host (no wasmtime).
use claribi_fuzz::policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match policy::Policy::parse(text) {
        Ok(p) => {
            let again = policy::Policy::parse(&p.to_toml()).expect("a rendered policy parses");
            assert_eq!(again, p);
        }
        Err(e) => {
            assert!(!e.message.contains('\n'), "one-line errors: {:?}", e.message);
            if let Some(line) = e.line {
                assert!(line >= 1 && line <= text.lines().count().max(1) + 1, "line {line} exists");
            }
        }
    }
});
