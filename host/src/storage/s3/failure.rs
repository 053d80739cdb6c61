//! S3 failures, told apart for the callers and mapped to the contract's
//! errors.

use super::*;

/// An S3 failure with what the callers need to tell cases apart.
pub(super) struct Failure {
    pub(super) status: Option<u16>,
    pub(super) code: Option<String>,
    pub(super) text: String,
}

pub(super) fn failure<E>(operation: &str, error: SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    Failure {
        status: error.raw_response().map(|r| r.status().as_u16()),
        code: error.code().map(str::to_owned),
        text: format!("S3 {operation}: {}", DisplayErrorContext(&error)),
    }
}

impl Failure {
    pub(super) fn is_not_found(&self) -> bool {
        matches!(self.code.as_deref(), Some("NoSuchKey" | "NotFound"))
            || (self.status == Some(404) && self.code.as_deref() != Some("NoSuchBucket"))
    }

    pub(super) fn into_error(self) -> Error {
        if self.is_not_found() {
            return Error::NotFound;
        }
        match (self.status, self.code.as_deref()) {
            (_, Some("EntityTooLarge")) | (Some(413), _) => Error::TooLarge,
            (_, Some("QuotaExceeded")) | (Some(507), _) => Error::NoSpace,
            (_, Some("AccessDenied")) | (Some(403), _) => Error::Forbidden(self.text),
            (Some(412), _) => Error::Conflict(self.text),
            _ => Error::Io(self.text),
        }
    }

    /// For reads and copies made against an ETag: a failed precondition
    /// means the object changed since.
    pub(super) fn changed_meanwhile(self) -> Error {
        if self.status == Some(412) || self.code.as_deref() == Some("PreconditionFailed") {
            Error::Conflict("the file changed during the update".into())
        } else {
            self.into_error()
        }
    }
}
