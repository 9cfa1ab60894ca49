//! HTTPS for the receiver: a rustls server configuration from PEM files.

use std::io;
use std::path::Path;
use std::sync::Arc;

/// The rustls crate the receiver's TLS is built on, for
/// [`Receiver::tls`](super::Receiver::tls) callers who configure it themselves.
pub use tokio_rustls::rustls;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A rustls server configuration (ring provider, TLS 1.2 and 1.3, ALPN
/// `http/1.1`) from a PEM certificate chain (leaf first) and a PEM private
/// key (PKCS#8, PKCS#1 or SEC1).
///
/// Errors name the file and what was wrong with it: unreadable, no
/// certificate, no key, or a key that does not match the certificate.
///
/// ```
/// use ossa_events::receiver::tls_config_from_pem;
/// let err = tls_config_from_pem("/no/such/cert.pem".as_ref(), "/no/such/key.pem".as_ref())
///     .unwrap_err();
/// assert!(err.to_string().contains("/no/such/cert.pem"), "{err}");
/// ```
pub fn tls_config_from_pem(cert: &Path, key: &Path) -> io::Result<Arc<rustls::ServerConfig>> {
    let named = |path: &Path, what: String| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: {what}", path.display()),
        )
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| named(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| named(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(named(cert, "no PEM certificate in the file".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| named(key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::other(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| named(key, format!("does not fit the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
