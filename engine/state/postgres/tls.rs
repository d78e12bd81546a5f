//! TLS to the database with rustls (the aws-lc-rs provider reqwest already builds), with
//! libpq's meanings: `prefer` and `require` encrypt without checking the certificate (managed
//! databases often present one of their own CA), `verify-ca` checks its chain against the root
//! certificates (`sslrootcert=FILE|system`, default `~/.postgresql/root.crt`, else the
//! system's), and `verify-full` checks the host name as well.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::error::PgError;
use super::target::{Roots, Target, Verify};

/// The TLS connector for a database.
pub fn connector(target: &Target) -> Result<MakeRustlsConnect, PgError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = |source| PgError::Tls {
        store: target.display.clone(),
        source,
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(tls)?;
    let config = match target.verify {
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
        Verify::Chain | Verify::Full => {
            let roots = Arc::new(roots(&target.roots)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| tls(rustls::Error::General(e.to_string())))?;
            if target.verify == Verify::Full {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyName { webpki }))
                    .with_no_client_auth()
            }
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

/// The trusted root certificates.
fn roots(source: &Roots) -> Result<RootCertStore, PgError> {
    let mut store = RootCertStore::empty();
    match source {
        Roots::File(path) => {
            let unreadable = |source| PgError::RootCert {
                path: path.clone(),
                source,
            };
            let pem = std::fs::read(path).map_err(unreadable)?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| {
                    unreadable(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
                })?;
                store.add(cert).map_err(|e| {
                    unreadable(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
                })?;
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
        }
    }
    if store.is_empty() {
        return Err(PgError::RootCert {
            path: match source {
                Roots::File(path) => path.clone(),
                Roots::System => PathBuf::from("the system's certificate store"),
            },
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no certificate found; name one with sslrootcert=FILE",
            ),
        });
    }
    Ok(store)
}

/// `prefer` and `require`: any certificate, but the handshake's signatures are still checked
/// (the session is encrypted with the key of the certificate the server presented).
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain is checked, the host name is not.
#[derive(Debug)]
struct AnyName {
    webpki: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_root_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let target = |file: &std::path::Path| {
            Target::parse(&format!(
                "postgres://h/db?sslmode=verify-full&sslrootcert={}",
                file.display()
            ))
            .unwrap()
        };
        let Err(err) = connector(&target(&missing)) else {
            panic!("a missing root file is refused");
        };
        assert!(
            matches!(&err, PgError::RootCert { path, .. } if path == &missing),
            "{err:?}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let Err(err) = connector(&target(&empty)) else {
            panic!("an empty root file is refused");
        };
        assert!(
            matches!(&err, PgError::RootCert { path, .. } if path == &empty),
            "{err:?}"
        );
    }

    #[test]
    fn require_builds_without_root_certificates() {
        let target = Target::parse("postgres://h/db?sslmode=require").unwrap();
        assert!(connector(&target).is_ok());
    }
}
