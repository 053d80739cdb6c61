//! What copy and rename refuse, checked before anything is touched (the
//! contract's overlap rule): the destination may be neither the source,
//! nor below it (a collection into itself), nor above it (replacing an
//! ancestor would delete the source first), and never the root. A refused
//! transfer changes nothing; every binding answers it with `forbidden`
//! (403, as Apache mod_dav answers an overlapping COPY or MOVE).

/// Why a transfer is refused; its text is the `forbidden` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    RootReplaced,
    SamePath,
    IntoItself,
    OntoAncestor,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Self::RootReplaced => "the root collection cannot be replaced",
            Self::SamePath => "source and destination are the same",
            Self::IntoItself => "a collection cannot be copied or moved into itself",
            Self::OntoAncestor => "the destination contains the source",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

/// Checks a copy or rename of `source` to `destination` (contract paths).
pub fn check(source: &str, destination: &str) -> Result<(), Refusal> {
    use crate::path::{is_ancestor, is_root};
    if is_root(destination) {
        Err(Refusal::RootReplaced)
    } else if source == destination {
        Err(Refusal::SamePath)
    } else if is_ancestor(source, destination) {
        Err(Refusal::IntoItself)
    } else if is_ancestor(destination, source) {
        Err(Refusal::OntoAncestor)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_transfers_are_refused() {
        assert_eq!(check("/a", "/a"), Err(Refusal::SamePath));
        assert_eq!(check("/a", "/a/b"), Err(Refusal::IntoItself));
        assert_eq!(check("/a/b", "/a"), Err(Refusal::OntoAncestor));
        assert_eq!(check("/a", "/"), Err(Refusal::RootReplaced));
        assert_eq!(check("/", "/x"), Err(Refusal::IntoItself));
        assert_eq!(check("/a", "/ab"), Ok(()));
        assert_eq!(check("/a/b", "/a/c"), Ok(()));
    }
}
