//! TLS and mutual TLS to the collector (rustls with the *ring* provider).
//!
//! An `https://` endpoint is verified against `export.tls.ca_file` when set,
//! else the system's trust store. `cert_file` + `key_file` present a client
//! certificate (mTLS). `server_name` replaces the endpoint's host name in
//! SNI and in certificate verification (a collector reached by IP address or
//! through a tunnel). The files are read and parsed when the configuration
//! is loaded ([`check_files`]), so a missing or unreadable file is a
//! configuration error naming its key.

use super::ExportError;
use crate::config::TlsConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

/// PEM certificates of `path`; at least one.
fn certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&bytes).collect::<Result<Vec<_>, _>>().map_err(|e| format!("{path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{path} holds no PEM certificate"));
    }
    Ok(certs)
}

/// The PEM private key of `path` (PKCS#8, PKCS#1 or SEC1).
fn key(path: &str) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| format!("{path} holds no usable PEM private key: {e}"))
}

/// Check the files the TLS settings name: `Err((key, message))` for the
/// first one that is missing, unreadable or not PEM of the right kind.
pub fn check_files(t: &TlsConfig) -> Result<(), (&'static str, String)> {
    if !t.ca_file.is_empty() {
        let certs = certs(&t.ca_file).map_err(|e| ("export.tls.ca_file", e))?;
        let mut roots = rustls::RootCertStore::empty();
        let (ok, _) = roots.add_parsable_certificates(certs);
        if ok == 0 {
            return Err(("export.tls.ca_file", format!("{} holds no usable CA certificate", t.ca_file)));
        }
    }
    match (t.cert_file.is_empty(), t.key_file.is_empty()) {
        (true, true) => {}
        (false, true) => return Err(("export.tls.key_file", "a client certificate (cert_file) needs its key (key_file)".into())),
        (true, false) => return Err(("export.tls.cert_file", "a client key (key_file) needs its certificate (cert_file)".into())),
        (false, false) => {
            certs(&t.cert_file).map_err(|e| ("export.tls.cert_file", e))?;
            key(&t.key_file).map_err(|e| ("export.tls.key_file", e))?;
        }
    }
    if !t.server_name.is_empty() && ServerName::try_from(t.server_name.as_str()).is_err() {
        return Err(("export.tls.server_name", format!("`{}` is not a DNS name or IP address", t.server_name)));
    }
    Ok(())
}

/// Make *ring* the process's default rustls provider (reqwest clients,
/// ours and the metrics exporter's, need one). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn permanent(e: impl std::fmt::Display) -> ExportError {
    ExportError::Permanent(format!("TLS: {e}"))
}

/// tonic's TLS settings for an `https://` gRPC endpoint.
pub fn grpc_config(t: &TlsConfig) -> Result<tonic::transport::ClientTlsConfig, ExportError> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let mut c = ClientTlsConfig::new();
    if t.ca_file.is_empty() {
        // tonic has no rustls-native-certs hook without its feature: hand
        // it the system roots ourselves.
        for cert in native_roots()? {
            c = c.ca_certificate(Certificate::from_pem(pem("CERTIFICATE", &cert)));
        }
    } else {
        c = c.ca_certificate(Certificate::from_pem(std::fs::read(&t.ca_file).map_err(|e| permanent(format!("{}: {e}", t.ca_file)))?));
    }
    if !t.cert_file.is_empty() {
        let cert = std::fs::read(&t.cert_file).map_err(|e| permanent(format!("{}: {e}", t.cert_file)))?;
        let key = std::fs::read(&t.key_file).map_err(|e| permanent(format!("{}: {e}", t.key_file)))?;
        c = c.identity(Identity::from_pem(cert, key));
    }
    if !t.server_name.is_empty() {
        c = c.domain_name(t.server_name.clone());
    }
    Ok(c)
}

/// A DER certificate as PEM text.
fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = Vec::with_capacity(der.len() * 4 / 3 + 4);
    for chunk in der.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(B64[((n >> (18 - 6 * i)) & 63) as usize]);
            } else {
                b64.push(b'=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n").into_bytes();
    for line in b64.chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(format!("-----END {label}-----\n").as_bytes());
    out
}

fn native_roots() -> Result<Vec<CertificateDer<'static>>, ExportError> {
    let found = rustls_native_certs::load_native_certs();
    if found.certs.is_empty() {
        return Err(permanent(format!(
            "no CA certificates in the system trust store ({:?}); set export.tls.ca_file",
            found.errors.first().map(ToString::to_string)
        )));
    }
    Ok(found.certs)
}

/// The rustls client configuration for an `https://` OTLP/HTTP endpoint.
pub fn http_config(t: &TlsConfig) -> Result<rustls::ClientConfig, ExportError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let list = if t.ca_file.is_empty() { native_roots()? } else { certs(&t.ca_file).map_err(permanent)? };
    roots.add_parsable_certificates(list);
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().map_err(permanent)?;
    let builder = if t.server_name.is_empty() {
        builder.with_root_certificates(roots)
    } else {
        let name = ServerName::try_from(t.server_name.clone()).map_err(permanent)?;
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build().map_err(permanent)?;
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NameOverride { inner, name }))
    };
    let mut config = if t.cert_file.is_empty() {
        builder.with_no_client_auth()
    } else {
        builder.with_client_auth_cert(certs(&t.cert_file).map_err(permanent)?, key(&t.key_file).map_err(permanent)?).map_err(permanent)?
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Verifies the server's certificate as WebPKI does, for `name` instead of
/// the host name of the URL.
#[derive(Debug)]
struct NameOverride {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NameOverride {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips_through_the_parser() {
        for len in [0usize, 1, 2, 3, 47, 48, 49, 200] {
            let der: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let text = pem("CERTIFICATE", &der);
            let back = CertificateDer::from_pem_slice(&text).map(|c| c.to_vec());
            if len == 0 {
                continue; // an empty body is no certificate
            }
            assert_eq!(back.as_deref().ok(), Some(der.as_slice()), "{len}");
        }
    }

    #[test]
    fn files_are_checked_and_named_by_key() {
        let dir = std::env::temp_dir().join(format!("vigil-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let ca_path = dir.join("ca.pem");
        let key_path = dir.join("key.pem");
        let junk = dir.join("junk.pem");
        std::fs::write(&ca_path, ca.cert.pem()).expect("write");
        std::fs::write(&key_path, ca.signing_key.serialize_pem()).expect("write");
        std::fs::write(&junk, "not pem").expect("write");
        let s = |p: &std::path::Path| p.to_string_lossy().into_owned();
        let ok = TlsConfig { ca_file: s(&ca_path), cert_file: s(&ca_path), key_file: s(&key_path), ..TlsConfig::default() };
        assert_eq!(check_files(&ok), Ok(()));
        assert!(http_config(&ok).is_ok());
        let key_of = |t: TlsConfig| check_files(&t).expect_err("fails").0;
        assert_eq!(key_of(TlsConfig { ca_file: "/nonexistent/ca.pem".into(), ..ok.clone() }), "export.tls.ca_file");
        assert_eq!(key_of(TlsConfig { ca_file: s(&junk), ..ok.clone() }), "export.tls.ca_file");
        assert_eq!(key_of(TlsConfig { cert_file: s(&junk), ..ok.clone() }), "export.tls.cert_file");
        assert_eq!(key_of(TlsConfig { key_file: s(&junk), ..ok.clone() }), "export.tls.key_file");
        assert_eq!(key_of(TlsConfig { key_file: String::new(), ..ok.clone() }), "export.tls.key_file");
        assert_eq!(key_of(TlsConfig { cert_file: String::new(), ..ok.clone() }), "export.tls.cert_file");
        assert_eq!(key_of(TlsConfig { server_name: "not a name!".into(), ..ok.clone() }), "export.tls.server_name");
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}
