//! TLS on the gRPC ports (rustls): each service's `tls` table (`[ai_job.tls]`, …) names the
//! certificate and key its listeners serve, and the CA that signed the services it calls over
//! `https://` URLs. Without a certificate a listener speaks plain HTTP/2 (a private network);
//! without a CA, `https://` peers are checked against the public roots (webpki).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig};

use crate::settings::SettingsError;

/// A service's `tls` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// PEM certificate chain of this service's gRPC listeners; with `key_file`, they accept TLS
    /// only. Default none (plain HTTP/2).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// PEM certificate of the CA that signed the services this one calls over `https://`.
    /// Default none (the public roots).
    pub ca_file: Option<PathBuf>,
}

/// Makes ring rustls's process-wide crypto provider, once (later calls do nothing). The
/// workspace links rustls with both ring (tonic, sqlx, lapin) and aws-lc-rs (the AWS SDK), and
/// rustls then picks neither on its own: the first TLS configuration built without an explicit
/// provider would panic.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn read(key: String, path: &Path) -> Result<Vec<u8>, SettingsError> {
    std::fs::read(path).map_err(|e| {
        SettingsError::invalid(
            key,
            format!("{}: {e}; name a readable PEM file", path.display()),
        )
    })
}

impl TlsSettings {
    /// A gRPC server builder for section `section`'s listeners: TLS when `cert_file` and
    /// `key_file` are set.
    ///
    /// Errors: only one of the two set, a file that cannot be read, or PEM that rustls refuses,
    /// naming the key.
    pub fn server(&self, section: &str) -> Result<Server, SettingsError> {
        install_crypto_provider();
        let identity = match (&self.cert_file, &self.key_file) {
            (None, None) => return Ok(Server::builder()),
            (Some(cert), Some(key)) => Identity::from_pem(
                read(format!("{section}.tls.cert_file"), cert)?,
                read(format!("{section}.tls.key_file"), key)?,
            ),
            _ => {
                return Err(SettingsError::invalid(
                    format!("{section}.tls"),
                    "set both cert_file and key_file, or neither",
                ))
            }
        };
        Server::builder()
            .tls_config(ServerTlsConfig::new().identity(identity))
            .map_err(|e| SettingsError::invalid(format!("{section}.tls.cert_file"), e.to_string()))
    }

    /// The endpoint of `url` (the setting `url_key`): an `https://` URL is TLS, its certificate
    /// checked against `ca_file` or the public roots.
    ///
    /// Errors: `url` is not a URI, `ca_file` cannot be read, or the TLS settings are refused,
    /// naming the key.
    pub fn endpoint(
        &self,
        section: &str,
        url_key: &str,
        url: &str,
    ) -> Result<Endpoint, SettingsError> {
        install_crypto_provider();
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| SettingsError::invalid(url_key, format!("{url:?} is not a URL: {e}")))?;
        if !url.starts_with("https://") {
            return Ok(endpoint);
        }
        let config = match &self.ca_file {
            Some(ca) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(
                format!("{section}.tls.ca_file"),
                ca,
            )?)),
            None => ClientTlsConfig::new().with_webpki_roots(),
        };
        endpoint
            .tls_config(config)
            .map_err(|e| SettingsError::invalid(format!("{section}.tls"), e.to_string()))
    }
}
