//! Chunk arithmetic for content stored as fixed-size rows: chunk `k` of a
//! file holds its bytes `[k * CHUNK, (k + 1) * CHUNK)`. Plain functions over
//! callbacks, so the logic that applies a partial update is tested natively.

/// Bytes per stored chunk: small enough for any SQLite value and query
/// result limit, big enough that a 10 MB piece is 40 rows.
pub const CHUNK: u64 = 256 * 1024;

/// Where a chunk-sized read starting at `pos` lands: (chunk index, offset
/// within the chunk, bytes readable in that chunk before `end`).
pub fn locate(pos: u64, end: u64, chunk: u64) -> (u64, u64, u64) {
    let index = pos / chunk;
    let within = pos % chunk;
    (index, within, (chunk - within).min(end.saturating_sub(pos)))
}

/// Applies a staged piece of `len` bytes to a file at `offset`.
///
/// The piece is staged in chunks of `chunk` bytes of its own (chunk `j`
/// holds piece bytes `[j * chunk, (j + 1) * chunk)`), read with
/// `staged(j)`; `current(k)` reads chunk `k` of the file (`None` past its
/// end) and `store(k, bytes)` replaces it. Every target chunk the piece
/// touches is read, overlaid and stored once. Returns the new file size,
/// given the old one.
pub fn apply_piece<E>(
    offset: u64,
    len: u64,
    old_size: u64,
    chunk: u64,
    mut staged: impl FnMut(u64) -> Result<Vec<u8>, E>,
    mut current: impl FnMut(u64) -> Result<Option<Vec<u8>>, E>,
    mut store: impl FnMut(u64, Vec<u8>) -> Result<(), E>,
) -> Result<u64, E> {
    if len == 0 {
        return Ok(old_size);
    }
    let end = offset + len;
    // The staged chunk read last, kept for the next target chunk.
    let mut cached: Option<(u64, Vec<u8>)> = None;
    for k in offset / chunk..=(end - 1) / chunk {
        let (lo, hi) = ((k * chunk).max(offset), ((k + 1) * chunk).min(end));
        let mut bytes = current(k)?.unwrap_or_default();
        let needed = (hi - k * chunk) as usize;
        if bytes.len() < needed {
            bytes.resize(needed, 0);
        }
        // Copy piece bytes [lo - offset, hi - offset) from the staged chunks.
        let mut at = lo - offset;
        while at < hi - offset {
            let j = at / chunk;
            if cached.as_ref().is_none_or(|(index, _)| *index != j) {
                cached = Some((j, staged(j)?));
            }
            let data = &cached.as_ref().expect("just cached").1;
            let from = (at - j * chunk) as usize;
            let take = ((hi - offset - at) as usize).min(data.len().saturating_sub(from));
            assert!(take > 0, "staged chunk {j} is shorter than the piece");
            let dest = (offset + at - k * chunk) as usize;
            bytes[dest..dest + take].copy_from_slice(&data[from..from + take]);
            at += take as u64;
        }
        store(k, bytes)?;
    }
    Ok(old_size.max(end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn split(data: &[u8], chunk: u64) -> BTreeMap<u64, Vec<u8>> {
        data.chunks(chunk as usize)
            .enumerate()
            .map(|(i, c)| (i as u64, c.to_vec()))
            .collect()
    }

    fn join(chunks: &BTreeMap<u64, Vec<u8>>) -> Vec<u8> {
        chunks.values().flatten().copied().collect()
    }

    /// Applies a piece through `apply_piece` and checks against a plain splice.
    fn check(old: &[u8], offset: usize, piece: &[u8], chunk: u64) {
        let file = std::cell::RefCell::new(split(old, chunk));
        let staged = split(piece, chunk);
        let mut stores = 0;
        let size = apply_piece::<()>(
            offset as u64,
            piece.len() as u64,
            old.len() as u64,
            chunk,
            |j| Ok(staged[&j].clone()),
            |k| Ok(file.borrow().get(&k).cloned()),
            |k, bytes| {
                stores += 1;
                file.borrow_mut().insert(k, bytes);
                Ok(())
            },
        )
        .unwrap();
        let file = file.into_inner();
        let mut expected = old.to_vec();
        let end = offset + piece.len();
        if expected.len() < end {
            expected.resize(end, 0);
        }
        expected[offset..end].copy_from_slice(piece);
        assert_eq!(size as usize, expected.len());
        assert_eq!(
            join(&file),
            expected,
            "offset {offset}, piece {}, chunk {chunk}",
            piece.len()
        );
        // Every chunk but the last is full.
        let full = file.values().rev().skip(1).all(|c| c.len() as u64 == chunk);
        assert!(full, "a chunk before the last is not full");
        let touched = if piece.is_empty() {
            0
        } else {
            (end - 1) / chunk as usize - offset / chunk as usize + 1
        };
        assert_eq!(stores, touched);
    }

    #[test]
    fn pieces_land_where_they_belong() {
        let old: Vec<u8> = (0..100u8).collect();
        let piece: Vec<u8> = (200..=255u8).collect();
        for chunk in [1, 3, 7, 16, 64, 128] {
            for offset in [0, 1, 5, 15, 16, 50, 99, 100] {
                for len in [0, 1, 2, 16, 17, 56] {
                    check(&old, offset, &piece[..len], chunk);
                }
            }
        }
    }

    #[test]
    fn appends_to_an_empty_file() {
        check(&[], 0, b"hello", 2);
        check(b"ab", 2, b"cdefg", 4);
    }

    #[test]
    fn locate_reads() {
        assert_eq!(locate(0, 10, 4), (0, 0, 4));
        assert_eq!(locate(5, 10, 4), (1, 1, 3));
        assert_eq!(locate(9, 10, 4), (2, 1, 1));
        assert_eq!(locate(10, 10, 4), (2, 2, 0));
    }
}
