//! The `Destination` header: input is `authority\nvalue`. A clean path, a
//! 400, or a 502 for another server; never a panic or a 414 (that is only
//! for the request URI).
#![no_main]

use edgedav_handler::path::parse_destination;
use edgedav_handler_fuzz::check_path;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (authority, value) = input.split_once('\n').unwrap_or(("localhost", input));
    for authority in [Some(authority), None] {
        match parse_destination(value, authority) {
            Ok(p) => check_path(&p),
            Err(e) => assert!(matches!(e.status, 400 | 502), "{e}"),
        }
    }
});
