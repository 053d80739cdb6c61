//! The network side: listeners and connections (HTTP/1.1 and HTTP/2 with
//! hyper), TLS, and the byte-level traffic rules (bandwidth, slow bodies).
//! No users and no WebDAV here: a request leaves for [`crate::gate`].

pub mod connection;
pub mod sendfile;
pub mod server;
pub mod tls;
pub mod traffic;
pub mod workers;
