//! The handler's one error type, mapped to an HTTP response in one place.

use crate::backend::{LockError, StorageError};
use crate::http::Response;
use crate::xml::{self, XmlWriter};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DavError {
    pub status: u16,
    /// A plain-text explanation for the client.
    pub message: String,
    /// An RFC 4918 precondition or postcondition element (local name in the
    /// DAV: namespace) with the hrefs it names, sent as a `DAV:error` body.
    pub condition: Option<(&'static str, Vec<String>)>,
    /// Headers the error response carries (`Allow`, `Content-Range`, ...).
    pub headers: Vec<(String, String)>,
}

impl DavError {
    pub fn status(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            condition: None,
            headers: Vec::new(),
        }
    }

    pub fn condition(status: u16, condition: &'static str, hrefs: Vec<String>) -> Self {
        Self {
            status,
            message: condition.to_owned(),
            condition: Some((condition, hrefs)),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::status(400, message)
    }

    /// 423 naming the locked resources whose tokens were not submitted.
    pub fn locked(hrefs: Vec<String>) -> Self {
        Self::condition(423, "lock-token-submitted", hrefs)
    }

    pub fn into_response(self) -> Response<'static> {
        let mut response = Response::new(self.status);
        response.headers = self.headers;
        match self.condition {
            Some((name, hrefs)) => {
                let mut w = XmlWriter::new();
                w.open_dav("error");
                if hrefs.is_empty() {
                    w.empty_dav(name);
                } else {
                    w.open_dav(name);
                    for href in &hrefs {
                        w.text_element_dav("href", href);
                    }
                    w.close_dav(name);
                }
                w.close_dav("error");
                response.xml(w.finish())
            }
            None if self.status >= 400 => response.bytes(
                "text/plain; charset=utf-8",
                format!("{}\n", self.message).into_bytes(),
            ),
            None => response,
        }
    }
}

/// Seconds a client is asked to wait after a transient failure (503).
pub const RETRY_AFTER_SECS: u32 = 5;

impl From<StorageError> for DavError {
    fn from(e: StorageError) -> Self {
        let status = storage_status(&e);
        let error = Self::status(status, e.to_string());
        match e {
            StorageError::Unavailable(_) => {
                error.with_header("Retry-After", RETRY_AFTER_SECS.to_string())
            }
            _ => error,
        }
    }
}

impl From<xml::XmlError> for DavError {
    fn from(e: xml::XmlError) -> Self {
        Self::bad_request(format!("malformed XML: {}", e.0))
    }
}

impl From<LockError> for DavError {
    fn from(e: LockError) -> Self {
        match e {
            LockError::Conflict(_) => Self::condition(423, "no-conflicting-lock", Vec::new()),
            LockError::NoSuchLock => {
                Self::condition(412, "lock-token-matches-request-uri", Vec::new())
            }
            LockError::Forbidden => Self::status(403, "lock belongs to another user"),
            LockError::Io(m) => Self::status(500, m),
        }
    }
}

/// The status a storage error means, for a whole request or for one member
/// in a multistatus.
pub fn storage_status(e: &StorageError) -> u16 {
    match e {
        StorageError::NotFound => 404,
        StorageError::AlreadyExists => 412,
        StorageError::ParentNotFound | StorageError::NotACollection | StorageError::Conflict(_) => {
            409
        }
        StorageError::IsACollection => 405,
        StorageError::NoSpace => 507,
        StorageError::TooLarge => 413,
        StorageError::Forbidden(_) => 403,
        StorageError::Unsupported(_) => 501,
        StorageError::Unavailable(_) => 503,
        StorageError::Io(_) => 500,
    }
}

pub type DavResult<T> = Result<T, DavError>;

impl std::fmt::Display for DavError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_is_503_with_retry_after() {
        let e = DavError::from(StorageError::Unavailable("out of file descriptors".into()));
        assert_eq!(e.status, 503);
        assert!(
            e.headers
                .iter()
                .any(|(n, v)| n == "Retry-After" && v == "5")
        );
        assert!(e.message.contains("out of file descriptors"));
        assert_eq!(
            DavError::from(StorageError::Forbidden("x".into())).headers,
            Vec::new()
        );
    }
}
