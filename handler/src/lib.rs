//! edgedav's WebDAV protocol logic (RFC 4918 classes 1 and 2).
//!
//! Everything here is plain Rust over the [`backend`] traits: [`handle`]
//! turns a [`http::Request`] into a [`http::Response`]. Compiled to
//! `wasm32-wasip2`, `component.rs` binds those traits to the component's
//! `edgedav:dav` imports and serves `wasi:http/incoming-handler`; natively,
//! the tests run it against the in-memory backend.

pub mod backend;
pub mod conditions;
pub mod date;
pub mod error;
pub mod http;
pub mod methods;
pub mod multistatus;
pub mod path;
pub mod props;
pub mod range;
mod webui;
pub mod xml;

#[cfg(test)]
mod instructions;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
#[cfg(test)]
mod memory_conformance;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(target_arch = "wasm32")]
mod component;

pub use methods::handle;
