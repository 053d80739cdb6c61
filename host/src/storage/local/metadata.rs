//! The contract's metadata of a file or directory, from either stat call.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{FileType, Statx, StatxFlags};

use crate::storage::{Metadata, NodeKind, Timestamp};

/// The contract's metadata (and so the ETag rule) of a file, from whichever
/// stat call looked at it.
pub(super) fn metadata(stat: impl Into<Stat>) -> Metadata {
    let stat = stat.into();
    let (kind, size) = if stat.dir {
        (NodeKind::Collection, 0)
    } else {
        (NodeKind::File, stat.size)
    };
    let mtime_nanos =
        i128::from(stat.modified.seconds) * 1_000_000_000 + i128::from(stat.modified.nanoseconds);
    Metadata {
        kind,
        size,
        modified: stat.modified,
        created: stat.created,
        etag: etag(stat.ino, size, mtime_nanos),
        content_type: None,
    }
}

/// `INODE-SIZE-MTIME` in hex (a negative mtime as its two's complement,
/// as `{:x}` writes it): written without the fmt machinery, since a
/// listing makes one per member.
pub(super) fn etag(ino: u64, size: u64, mtime_nanos: i128) -> String {
    fn hex(out: &mut String, n: u128) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 32];
        let mut start = buf.len();
        let mut n = n;
        loop {
            start -= 1;
            buf[start] = DIGITS[(n & 15) as usize];
            n >>= 4;
            if n == 0 {
                break;
            }
        }
        // ASCII digits: one copy, no per-character encoding.
        out.push_str(std::str::from_utf8(&buf[start..]).unwrap_or_default());
    }
    let mut out = String::with_capacity(48);
    hex(&mut out, u128::from(ino));
    out.push('-');
    hex(&mut out, u128::from(size));
    out.push('-');
    hex(&mut out, mtime_nanos as u128);
    out
}

/// What [`metadata`] is made of.
pub(super) struct Stat {
    dir: bool,
    size: u64,
    ino: u64,
    modified: Timestamp,
    created: Option<Timestamp>,
}

impl From<&fs::Metadata> for Stat {
    fn from(meta: &fs::Metadata) -> Self {
        Self {
            dir: meta.is_dir(),
            size: meta.len(),
            ino: meta.ino(),
            modified: Timestamp {
                seconds: meta.mtime(),
                nanoseconds: u32::try_from(meta.mtime_nsec()).unwrap_or(0),
            },
            created: meta.created().ok().and_then(timestamp),
        }
    }
}

impl From<&Statx> for Stat {
    fn from(stat: &Statx) -> Self {
        let time = |t: &rustix::fs::StatxTimestamp| Timestamp {
            seconds: t.tv_sec,
            nanoseconds: t.tv_nsec,
        };
        Self {
            dir: FileType::from_raw_mode(stat.stx_mode.into()) == FileType::Directory,
            size: stat.stx_size,
            ino: stat.stx_ino,
            modified: time(&stat.stx_mtime),
            created: StatxFlags::from_bits_retain(stat.stx_mask)
                .contains(StatxFlags::BTIME)
                .then(|| time(&stat.stx_btime)),
        }
    }
}

pub(super) fn timestamp(time: SystemTime) -> Option<Timestamp> {
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    Some(Timestamp {
        seconds: since.as_secs().try_into().ok()?,
        nanoseconds: since.subsec_nanos(),
    })
}
