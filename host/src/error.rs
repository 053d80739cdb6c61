//! The host's error: why a setting, a file or a store cannot be used when
//! the host starts, checks or reloads its configuration. One type for all
//! of them (instead of strings), shown to the operator once: by
//! `check-config`, at start-up, or in the log when a reload is refused.
//! (Requests have their own error: the contract's `storage::Error`, mapped
//! once to an HTTP status by the handler.)

use std::fmt;

use crate::config::ConfigError;

#[derive(Debug)]
pub enum Error {
    /// In the configuration file: where, and why.
    Config(ConfigError),
    /// A value, a file or a store that cannot be used, and why (the
    /// setting it came from is named where it is reported).
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An [`Error::Invalid`], with `format!` arguments.
macro_rules! invalid {
    ($($arg:tt)*) => {
        $crate::error::Error::Invalid(format!($($arg)*))
    };
}
pub(crate) use invalid;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => e.fmt(f),
            Error::Invalid(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for Error {}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

impl From<String> for Error {
    fn from(reason: String) -> Self {
        Error::Invalid(reason)
    }
}

impl From<&str> for Error {
    fn from(reason: &str) -> Self {
        Error::Invalid(reason.to_owned())
    }
}
