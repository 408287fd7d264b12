//! TLS for `https://` checks (rustls, ring): the server's certificate is
//! verified against the system's roots (`/etc/ssl/certs`, read once), or
//! against the CAs of the check's `ca_file` only (read at every run, so a
//! renewed CA is taken), or not at all with `insecure_skip_verify` (the
//! handshake's signatures are still checked; only the chain and the name
//! are not).

use super::*;
use std::sync::{Arc, OnceLock};
use tokio_rustls::rustls::{
    self,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{ring, CryptoProvider},
    pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime},
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// How an `https://` check trusts the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpTls {
    /// PEM file of the CAs to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (self-signed, expired, another name).
    pub insecure_skip_verify: bool,
}

/// rustls with *ring* (licenses: Apache-2.0 AND ISC; aws-lc-rs would add a
/// C build). rustls 0.23.48 deprecates it for lacking post-quantum key
/// exchange, which a health check on the cluster's own network can do
/// without.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn config(roots: RootCertStore) -> Result<ClientConfig, CheckError> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| CheckError::TlsConfig(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The system's roots, loaded once (rustls-native-certs: `SSL_CERT_FILE`,
/// `SSL_CERT_DIR`, else the distribution's bundle).
fn system_config() -> Result<Arc<ClientConfig>, CheckError> {
    static SYSTEM: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    SYSTEM
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                return Err(format!(
                    "no CA certificates found on this system{why} (install ca-certificates, or give the check a ca_file)"
                ));
            }
            config(roots).map(Arc::new).map_err(|e| e.to_string())
        })
        .clone()
        .map_err(CheckError::TlsConfig)
}

/// The CAs of a PEM file.
pub(super) fn load_ca_file(path: &Path) -> Result<RootCertStore, CheckError> {
    let bad = |reason: String| CheckError::TlsConfig(format!("{}: {reason}", path.display()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(bad("no CA certificate in it".into()));
    }
    Ok(roots)
}

/// The client configuration of one run (blocking: reads files).
fn client_config(tls: &HttpTls) -> Result<Arc<ClientConfig>, CheckError> {
    if tls.insecure_skip_verify {
        let mut c = config(RootCertStore::empty())?;
        c.dangerous()
            .set_certificate_verifier(Arc::new(SkipVerify(provider())));
        return Ok(Arc::new(c));
    }
    match &tls.ca_file {
        Some(path) => Ok(Arc::new(config(load_ca_file(path)?)?)),
        None => system_config(),
    }
}

/// The TLS session over `tcp` with `host` (a name, or an address).
pub(super) async fn connect(
    tcp: TcpStream,
    host: &str,
    tls: &HttpTls,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, CheckError> {
    let t = tls.clone();
    let config = blocking(move || client_config(&t)).await??;
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| CheckError::TlsConfig(format!("{host:?} is not a server name: {e}")))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|source| CheckError::TlsHandshake { source })
}

/// `insecure_skip_verify`: any chain and name, but the handshake's
/// signatures must still be right.
#[derive(Debug)]
struct SkipVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
