//! `Range: bytes=…` (RFC 9110 §14.2).

/// A satisfiable byte range: first byte and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub length: u64,
}

impl ByteRange {
    pub fn content_range(&self, total: u64) -> String {
        format!(
            "bytes {}-{}/{total}",
            self.start,
            self.start + self.length - 1
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable Range header (absent, another unit or malformed): send all.
    Full,
    Partial(Vec<ByteRange>),
    /// Well-formed but no range overlaps the representation: 416.
    Unsatisfiable,
}

/// Most ranges served in one multipart response; more looks like abuse.
const MAX_RANGES: usize = 16;

pub fn parse(header: Option<&str>, total: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    let mut ranges = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((first, last)) = part.split_once('-') else {
            return RangeRequest::Full;
        };
        let (first, last) = (first.trim(), last.trim());
        let range = if first.is_empty() {
            let Ok(suffix) = last.parse::<u64>() else {
                return RangeRequest::Full;
            };
            (suffix > 0 && total > 0).then(|| {
                let length = suffix.min(total);
                ByteRange {
                    start: total - length,
                    length,
                }
            })
        } else {
            let Ok(start) = first.parse::<u64>() else {
                return RangeRequest::Full;
            };
            let end = if last.is_empty() {
                total.saturating_sub(1)
            } else {
                match last.parse::<u64>() {
                    Ok(end) if end >= start => end.min(total.saturating_sub(1)),
                    _ => return RangeRequest::Full,
                }
            };
            (start < total).then(|| ByteRange {
                start,
                length: end - start + 1,
            })
        };
        ranges.extend(range);
    }
    if ranges.is_empty() {
        return RangeRequest::Unsatisfiable;
    }
    if ranges.len() > MAX_RANGES {
        return RangeRequest::Full;
    }
    RangeRequest::Partial(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, length: u64) -> ByteRange {
        ByteRange { start, length }
    }

    #[test]
    fn single_ranges() {
        assert_eq!(
            parse(Some("bytes=0-4"), 10),
            RangeRequest::Partial(vec![r(0, 5)])
        );
        assert_eq!(
            parse(Some("bytes=5-"), 10),
            RangeRequest::Partial(vec![r(5, 5)])
        );
        assert_eq!(
            parse(Some("bytes=-3"), 10),
            RangeRequest::Partial(vec![r(7, 3)])
        );
        assert_eq!(
            parse(Some("bytes=-30"), 10),
            RangeRequest::Partial(vec![r(0, 10)])
        );
        assert_eq!(
            parse(Some("bytes=8-100"), 10),
            RangeRequest::Partial(vec![r(8, 2)])
        );
        assert_eq!(r(8, 2).content_range(10), "bytes 8-9/10");
    }

    #[test]
    fn multiple_and_invalid() {
        assert_eq!(
            parse(Some("bytes=0-0, 5-6"), 10),
            RangeRequest::Partial(vec![r(0, 1), r(5, 2)])
        );
        assert_eq!(parse(Some("bytes=10-"), 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-1"), 0), RangeRequest::Unsatisfiable);
        assert_eq!(parse(Some("bytes=5-2"), 10), RangeRequest::Full);
        assert_eq!(parse(Some("items=0-1"), 10), RangeRequest::Full);
        assert_eq!(parse(Some("bytes=x-1"), 10), RangeRequest::Full);
        assert_eq!(parse(None, 10), RangeRequest::Full);
    }
}
