//! The contract's error variants (`wit/dav.wit`'s `error`), which each
//! binding converts into its generated type at its edge.

use std::io::{self, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    NotFound,
    AlreadyExists,
    ParentNotFound,
    NotACollection,
    IsACollection,
    Conflict(String),
    NoSpace,
    TooLarge,
    Forbidden(String),
    Unavailable(String),
    Io(String),
    /// A name longer than the filesystem holds: the contract's
    /// `conflict("name too long")` when creating, `not-found` when looking
    /// up (see [`Error::looked_up`]).
    NameTooLong,
}

impl Error {
    pub fn forbidden(reason: &str) -> Self {
        Error::Forbidden(reason.to_owned())
    }

    /// The error as the answer of a lookup: a name too long to exist is not
    /// found (no such resource can exist).
    pub fn looked_up(self) -> Self {
        match self {
            Error::NameTooLong => Error::NotFound,
            e => e,
        }
    }
}

/// A member of a tree operation that failed, named by its contract path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberError {
    pub path: String,
    pub error: Error,
}

impl From<io::Error> for Error {
    /// Out of file descriptors and a read-only filesystem are `unavailable`
    /// (503, transient server conditions, not permissions).
    fn from(e: io::Error) -> Self {
        // EMFILE and ENFILE have no `ErrorKind` of their own (Linux numbers).
        #[cfg(target_os = "linux")]
        if matches!(e.raw_os_error(), Some(23 | 24)) {
            return Error::Unavailable(format!("out of file descriptors: {e}"));
        }
        match e.kind() {
            ErrorKind::NotFound => Error::NotFound,
            ErrorKind::AlreadyExists => Error::AlreadyExists,
            ErrorKind::NotADirectory => Error::NotACollection,
            ErrorKind::IsADirectory => Error::IsACollection,
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded => Error::NoSpace,
            ErrorKind::FileTooLarge => Error::TooLarge,
            ErrorKind::InvalidFilename => Error::NameTooLong,
            ErrorKind::ReadOnlyFilesystem => {
                Error::Unavailable(format!("the store is read-only: {e}"))
            }
            ErrorKind::PermissionDenied => Error::Forbidden(e.to_string()),
            _ => Error::Io(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_become_contract_errors() {
        let of = |kind: ErrorKind| Error::from(io::Error::from(kind));
        assert_eq!(of(ErrorKind::NotFound), Error::NotFound);
        assert_eq!(of(ErrorKind::InvalidFilename), Error::NameTooLong);
        assert_eq!(of(ErrorKind::InvalidFilename).looked_up(), Error::NotFound);
        assert!(matches!(
            of(ErrorKind::ReadOnlyFilesystem),
            Error::Unavailable(_)
        ));
        #[cfg(target_os = "linux")]
        assert!(matches!(
            Error::from(io::Error::from_raw_os_error(24)),
            Error::Unavailable(_)
        ));
    }
}
