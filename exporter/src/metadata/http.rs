//! A minimal HTTP/1.1 GET client (hyper) over a unix socket (Docker) or TCP
//! with optional TLS (Kubernetes API). One connection per request: lookups
//! are rare (once per container) and the watch is one long request.

use super::LookupError;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// Where requests go.
#[derive(Debug, Clone)]
pub enum Target {
    /// A unix socket (the `Host` header says `localhost`).
    Unix(PathBuf),
    /// `host:port`, plain or TLS.
    Tcp {
        /// host name or IP address
        host: String,
        /// port
        port: u16,
        /// TLS settings (`None`: plain HTTP)
        tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    },
}

async fn send<IO>(io: IO, req: Request<Empty<Bytes>>) -> Result<Response<Incoming>, LookupError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| LookupError::Io(format!("handshake: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(req).await.map_err(|e| LookupError::Io(format!("request: {e}")))
}

/// `GET path` on `target`, with an optional bearer token. Returns the
/// response head and its streaming body, whatever the status.
pub async fn get(target: &Target, path: &str, bearer: Option<&str>) -> Result<Response<Incoming>, LookupError> {
    let host = match target {
        Target::Unix(_) => "localhost".to_owned(),
        Target::Tcp { host, port, .. } => format!("{host}:{port}"),
    };
    let mut req = Request::get(path).header(hyper::header::HOST, host).header(hyper::header::ACCEPT, "application/json");
    if let Some(token) = bearer {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let req = req.body(Empty::<Bytes>::new()).map_err(|e| LookupError::Io(format!("building the request: {e}")))?;
    match target {
        Target::Unix(path) => {
            let io = tokio::net::UnixStream::connect(path).await.map_err(|e| LookupError::from_io(&e))?;
            send(io, req).await
        }
        Target::Tcp { host, port, tls } => {
            let io = tokio::net::TcpStream::connect((host.as_str(), *port)).await.map_err(|e| LookupError::from_io(&e))?;
            match tls {
                None => send(io, req).await,
                Some(cfg) => {
                    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.clone())
                        .map_err(|e| LookupError::Tls(format!("server name {host}: {e}")))?;
                    let io = tokio_rustls::TlsConnector::from(cfg.clone())
                        .connect(name, io)
                        .await
                        .map_err(|e| LookupError::Tls(e.to_string()))?;
                    send(io, req).await
                }
            }
        }
    }
}

/// Read a whole body, refusing more than `max` bytes.
pub async fn body(resp: Response<Incoming>, max: usize) -> Result<Bytes, LookupError> {
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| LookupError::Io(format!("reading the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > max {
                return Err(LookupError::Decode(format!("body over {max} bytes")));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.into())
}

/// TLS settings trusting only the CA certificates in the PEM file `ca`.
pub fn tls_config(ca: &std::path::Path) -> Result<Arc<tokio_rustls::rustls::ClientConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots.add(cert).map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no certificate", ca.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}
