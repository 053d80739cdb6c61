//! `Range` against a representation size: input is 8 bytes of size
//! (little-endian) then the header. Every range served lies inside the
//! representation, and writing the ranges back out parses to the same.
#![no_main]

use edgedav_handler::range::{RangeRequest, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((size, header)) = data.split_first_chunk::<8>() else {
        return;
    };
    let total = u64::from_le_bytes(*size);
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    let RangeRequest::Partial(ranges) = parse(Some(header), total) else {
        return;
    };
    assert!(!ranges.is_empty() && ranges.len() <= 16);
    let mut spec = Vec::new();
    for r in &ranges {
        assert!(r.length > 0);
        let end = r.start.checked_add(r.length - 1).expect("no overflow");
        assert!(end < total, "{r:?} outside {total}");
        assert_eq!(
            r.content_range(total),
            format!("bytes {}-{end}/{total}", r.start)
        );
        spec.push(format!("{}-{end}", r.start));
    }
    let again = parse(Some(&format!("bytes={}", spec.join(","))), total);
    assert_eq!(again, RangeRequest::Partial(ranges));
});
