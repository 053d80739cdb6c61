//! The rules of edgedav's storage contract (`wit/dav.wit`), written once.
//!
//! Every implementation of the contract uses this crate instead of its own
//! copy: the native host's local-disk and S3 backends and its lock table,
//! the handler's in-memory test store, and the two guest adapters
//! (`examples/fs-adapter`, `examples/spin-adapter`). A client therefore
//! sees the same WebDAV behaviour whichever binding serves it.
//!
//! Binding-free on purpose (no wit-bindgen, no tokio): each binding converts
//! its generated types at its edge, and the rules are unit-tested natively.
//!
//! * [`path`]: contract paths: segments, ancestry, parents, rebasing.
//! * [`transfer`]: what copy and move refuse before touching anything.
//! * [`locks`]: lock conflicts, coverage and the timeout cap.
//! * [`props`]: dead properties and PROPPATCH application; with the
//!   `sidecar` feature, their stored JSON form and sidecar file name.

pub mod locks;
pub mod path;
pub mod props;
pub mod transfer;

/// Lowercase hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(super::hex(&[]), "");
    }
}
