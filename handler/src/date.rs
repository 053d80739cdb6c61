//! The two date formats WebDAV writes: RFC 1123 for `getlastmodified` and
//! `Last-Modified`, RFC 3339 for `creationdate`.
//!
//! Written digit by digit into fixed buffers: a PROPFIND writes two dates
//! per member, and the fmt machinery cost more than the rest of a member's
//! XML. Both formats have four-digit years, so a timestamp outside the
//! years they can show is clamped to the nearest one they can.

use crate::backend::Timestamp;

/// 9999-12-31T23:59:59Z, the last second a four-digit year can show.
const LAST: i64 = 253_402_300_799;
/// 0000-01-01T00:00:00Z.
const FIRST: i64 = -62_167_219_200;

const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// RFC 1123, e.g. `Sun, 09 Sep 2001 01:46:40 GMT`. Times before 1970 show
/// as 1970 (HTTP dates have no earlier use here).
pub fn http_date_bytes(t: Timestamp) -> [u8; 29] {
    let seconds = t.seconds.clamp(0, LAST);
    let c = Civil::new(seconds);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[seconds.div_euclid(86_400).rem_euclid(7) as usize]);
    two(&mut out[5..7], c.day);
    out[8..11].copy_from_slice(MONTHS[c.month as usize - 1]);
    four(&mut out[12..16], c.year);
    c.time(&mut out[17..25]);
    out
}

/// RFC 3339 in UTC, e.g. `2001-09-09T01:46:40Z`.
pub fn rfc3339_bytes(t: Timestamp) -> [u8; 20] {
    let c = Civil::new(t.seconds.clamp(FIRST, LAST));
    let mut out = *b"0000-00-00T00:00:00Z";
    four(&mut out[..4], c.year);
    two(&mut out[5..7], c.month);
    two(&mut out[8..10], c.day);
    c.time(&mut out[11..19]);
    out
}

pub fn http_date(t: Timestamp) -> String {
    ascii(&http_date_bytes(t))
}

pub fn rfc3339(t: Timestamp) -> String {
    ascii(&rfc3339_bytes(t))
}

fn ascii(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// The calendar fields of a second in the years 0000–9999.
struct Civil {
    year: u32,
    month: u32,
    day: u32,
    /// Seconds into the day.
    second: u32,
}

impl Civil {
    fn new(seconds: i64) -> Self {
        let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
        Self {
            year: year as u32,
            month,
            day,
            second: seconds.rem_euclid(86_400) as u32,
        }
    }

    /// `HH:MM:SS` into 8 bytes.
    fn time(&self, out: &mut [u8]) {
        two(&mut out[0..2], self.second / 3600);
        out[2] = b':';
        two(&mut out[3..5], self.second % 3600 / 60);
        out[5] = b':';
        two(&mut out[6..8], self.second % 60);
    }
}

fn two(out: &mut [u8], n: u32) {
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

fn four(out: &mut [u8], n: u32) {
    two(&mut out[0..2], n / 100);
    two(&mut out[2..4], n % 100);
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp {
            seconds,
            nanoseconds: 0,
        }
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(at(1_000_000_000)), "2001-09-09T01:46:40Z");
        assert_eq!(
            http_date(at(1_000_000_000)),
            "Sun, 09 Sep 2001 01:46:40 GMT"
        );
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(http_date(at(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(at(-1)), "1969-12-31T23:59:59Z");
    }

    /// Every day of four centuries (leap rules, weekdays) against the
    /// `httpdate` crate, which parses what we write.
    #[test]
    fn http_dates_agree_with_httpdate() {
        for day in (0..146_097 * 2).step_by(7).chain(0..3000) {
            let seconds = day * 86_400 + day % 86_400;
            let written = http_date(at(seconds));
            let parsed = httpdate::parse_http_date(&written).unwrap();
            let back = parsed.duration_since(std::time::UNIX_EPOCH).unwrap();
            assert_eq!(back.as_secs() as i64, seconds, "{written}");
        }
    }

    /// Beyond four-digit years, both formats clamp instead of writing a
    /// malformed date (or panicking, as `httpdate` does after 9999).
    #[test]
    fn out_of_range_times_are_clamped() {
        assert_eq!(http_date(at(i64::MAX)), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(rfc3339(at(i64::MAX)), "9999-12-31T23:59:59Z");
        assert_eq!(http_date(at(i64::MIN)), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(rfc3339(at(i64::MIN)), "0000-01-01T00:00:00Z");
    }
}
