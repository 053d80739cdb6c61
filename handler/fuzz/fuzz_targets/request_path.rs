//! The request target as the client sent it: either a clean path or a 400
//! (bad syntax) / 414 (segment too long), never a panic.
#![no_main]

use edgedav_handler::path::DavPath;
use edgedav_handler_fuzz::check_path;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    match DavPath::from_target(target) {
        Ok(p) => check_path(&p),
        Err(e) => assert!(matches!(e.status, 400 | 414), "{e}"),
    }
});
