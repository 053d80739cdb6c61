//! TLS for bindings: rustls (with the `ring` provider) and certificates that
//! can be replaced while the server runs.
//!
//! Each TLS binding's `ServerConfig` resolves its certificate through a
//! [`ReloadableCert`]; SIGHUP loads the files again and swaps the key in
//! one atomic store. Handshakes after the swap get the new certificate;
//! established connections are not touched, so a reload drops nothing. A
//! reload whose files do not parse keeps the old certificate.
//!
//! ALPN offers `h2` (when the binding allows HTTP/2) and `http/1.1`.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;

/// Reads a certificate chain and its key, and checks that they match.
pub fn load_certified_key(config: &TlsConfig) -> crate::error::Result<Arc<CertifiedKey>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&config.cert_file)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| {
            format!(
                "reading certificates from {}: {e}",
                config.cert_file.display()
            )
        })?;
    if certs.is_empty() {
        return Err(crate::error::invalid!(
            "{} holds no PEM certificate",
            config.cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&config.key_file).map_err(|e| {
        format!(
            "reading the private key from {}: {e}",
            config.key_file.display()
        )
    })?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| {
        format!(
            "unsupported private key in {}: {e}",
            config.key_file.display()
        )
    })?;
    let certified = CertifiedKey::new(certs, signing);
    certified.keys_match().map_err(|e| {
        format!(
            "the key in {} does not match the certificate in {}: {e}",
            config.key_file.display(),
            config.cert_file.display()
        )
    })?;
    Ok(Arc::new(certified))
}

/// The certificate of a binding, replaceable at run time.
pub struct ReloadableCert {
    current: ArcSwap<CertifiedKey>,
}

impl fmt::Debug for ReloadableCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReloadableCert")
    }
}

impl ReloadableCert {
    pub fn load(config: &TlsConfig) -> crate::error::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            current: ArcSwap::new(load_certified_key(config)?),
        }))
    }

    /// Replaces the certificate: handshakes from now on use `key`.
    pub fn set(&self, key: Arc<CertifiedKey>) {
        self.current.store(key);
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// A rustls server configuration using `cert`.
pub fn server_config(
    cert: Arc<ReloadableCert>,
    http2: bool,
) -> crate::error::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}
