//! The WebDAV `If` header: a parsed header is non-empty, evaluates without
//! panicking, and written back out parses to the same lists.
#![no_main]

use edgedav_handler::conditions::{Check, IfHeader, ResourceState};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(header) = IfHeader::parse(value) else {
        return;
    };
    assert!(!header.lists.is_empty());
    let mut text = String::new();
    for list in &header.lists {
        assert!(!list.conditions.is_empty());
        if let Some(tag) = &list.tag {
            text.push_str(&format!("<{tag}> "));
        }
        text.push('(');
        for c in &list.conditions {
            if c.not {
                text.push_str("Not ");
            }
            match &c.check {
                Check::Token(t) => text.push_str(&format!("<{t}> ")),
                Check::ETag(e) => text.push_str(&format!("[{e}] ")),
            }
        }
        text.push_str(") ");
    }
    assert_eq!(IfHeader::parse(&text).as_ref(), Ok(&header), "{text:?}");
    let state = ResourceState {
        etag: Some("\"e\"".into()),
        lock_tokens: header.tokens().map(str::to_owned).collect(),
    };
    let _ = header.evaluate(|_| Ok::<_, ()>(state.clone()));
});
