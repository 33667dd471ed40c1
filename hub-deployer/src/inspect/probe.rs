//! Small HTTP probes for `status` and `doctor`: a GET that must answer JSON within a timeout
//! (nfsd's `/v1/health`, the hub's `/hub/api`). A probe never hangs and never panics: every
//! failure is a [`ProbeError`] naming the URL and the cause, which callers report rather than
//! propagate.

use std::net::Ipv6Addr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use swarmhub_control_api::Health;
use thiserror::Error;

/// Largest body a probe reads (health answers are a few hundred bytes).
const MAX_BODY: usize = 1 << 20;

/// Why a probe failed.
#[derive(Debug, Error)]
pub enum ProbeError {
    /// The URL cannot be used.
    #[error("{url} is not a valid http:// URL: {cause}")]
    BadUrl {
        /// the URL
        url: String,
        /// why
        cause: String,
    },
    /// No connection (refused, no route, name not resolved, reset).
    #[error("{url} is unreachable: {cause}")]
    Unreachable {
        /// the URL
        url: String,
        /// the error and its causes
        cause: String,
    },
    /// Nothing (or not everything) came back in time.
    #[error("{url} did not answer within {} s", after.as_secs_f32())]
    Timeout {
        /// the URL
        url: String,
        /// the limit
        after: Duration,
    },
    /// An answer that is not a 2xx.
    #[error("{url} answered HTTP {status}: {body}")]
    Status {
        /// the URL
        url: String,
        /// the status code
        status: u16,
        /// the start of the body
        body: String,
    },
    /// A 2xx whose body is not the JSON expected.
    #[error("{url} answered with something other than the expected JSON: {cause}")]
    Body {
        /// the URL
        url: String,
        /// the parse error, with the start of the body
        cause: String,
    },
}

/// GET `url` (plain `http://`) and parse the body as JSON; connecting, sending and reading the
/// whole body together take at most `timeout`.
pub async fn http_get_json(url: &str, timeout: Duration) -> Result<serde_json::Value, ProbeError> {
    let uri: Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| ProbeError::BadUrl {
            url: url.to_string(),
            cause: e.to_string(),
        })?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(ProbeError::BadUrl {
            url: url.to_string(),
            cause: "only http://host[:port]/path is supported".into(),
        });
    }
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(timeout));
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    let req = Request::get(uri)
        .header("accept", "application/json")
        .body(Empty::new())
        .map_err(|e| ProbeError::BadUrl {
            url: url.to_string(),
            cause: e.to_string(),
        })?;
    let exchange = async {
        client
            .request(req)
            .await
            .map_err(|e| ProbeError::Unreachable {
                url: url.to_string(),
                cause: crate::exit::error_text(&e),
            })
    };
    json_within(url, timeout, exchange).await
}

/// The answer `exchange` brings, with its body, as JSON; everything within `timeout`.
async fn json_within(
    url: &str,
    timeout: Duration,
    exchange: impl std::future::Future<
        Output = Result<hyper::Response<hyper::body::Incoming>, ProbeError>,
    >,
) -> Result<serde_json::Value, ProbeError> {
    let whole = async {
        let resp = exchange.await?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| ProbeError::Unreachable {
                url: url.to_string(),
                cause: format!("reading the answer: {e}"),
            })?
            .to_bytes();
        Ok::<_, ProbeError>((status, body))
    };
    let (status, body) =
        tokio::time::timeout(timeout, whole)
            .await
            .map_err(|_| ProbeError::Timeout {
                url: url.to_string(),
                after: timeout,
            })??;
    json_answer(url, status, &body)
}

/// A 2xx answer's body as JSON; anything else is the error naming `url`.
fn json_answer(url: &str, status: u16, body: &[u8]) -> Result<serde_json::Value, ProbeError> {
    if !(200..300).contains(&status) {
        return Err(ProbeError::Status {
            url: url.to_string(),
            status,
            body: excerpt(body),
        });
    }
    serde_json::from_slice(body).map_err(|e| ProbeError::Body {
        url: url.to_string(),
        cause: format!("{e} (body starts: {})", excerpt(body)),
    })
}

/// A TLS client that accepts any certificate but still checks the handshake's signatures: the
/// probes report what a server presents (doctor judges it against the configured certificate)
/// instead of failing before anything can be said about it.
#[derive(Debug)]
struct Recording(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS connection to `addr:port` sending `server_name` (SNI for a DNS name).
async fn tls_connect(
    url: &str,
    addr: &str,
    port: u16,
    server_name: &str,
    timeout: Duration,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, ProbeError> {
    let unreachable = |cause: String| ProbeError::Unreachable {
        url: url.to_string(),
        cause,
    };
    let name = rustls_pki_types::ServerName::try_from(server_name.to_string()).map_err(|e| {
        ProbeError::BadUrl {
            url: url.to_string(),
            cause: format!("{server_name:?} is not a server name: {e}"),
        }
    })?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| unreachable(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(Recording(provider)))
        .with_no_client_auth();
    let connect = async {
        let host = addr.trim_start_matches('[').trim_end_matches(']');
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| unreachable(format!("cannot connect: {e}")))?;
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| unreachable(format!("TLS handshake failed: {e}")))
    };
    tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| ProbeError::Timeout {
            url: url.to_string(),
            after: timeout,
        })?
}

/// The certificate chain (DER, the server's own first) the TLS server at `addr:port`
/// presents for `server_name`. Any chain is accepted: the caller judges it.
pub async fn served_chain(
    addr: &str,
    port: u16,
    server_name: &str,
    timeout: Duration,
) -> Result<Vec<Vec<u8>>, ProbeError> {
    let url = format!("https://{server_name} at {addr}:{port}");
    let tls = tls_connect(&url, addr, port, server_name, timeout).await?;
    Ok(tls
        .get_ref()
        .1
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| c.to_vec())
        .collect())
}

/// GET `path` over HTTPS from `addr:port` with `server_name` as SNI and Host, and parse the
/// answer as JSON, all within `timeout`. The certificate is not judged here (see
/// [`served_chain`]). `url` names the request in errors.
pub async fn https_get_json(
    url: &str,
    addr: &str,
    port: u16,
    server_name: &str,
    path: &str,
    timeout: Duration,
) -> Result<serde_json::Value, ProbeError> {
    let exchange = async {
        let unreachable = |cause: String| ProbeError::Unreachable {
            url: url.to_string(),
            cause,
        };
        let tls = tls_connect(url, addr, port, server_name, timeout).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .map_err(|e| unreachable(e.to_string()))?;
        tokio::spawn(conn);
        let host = format!("{}:{port}", url_host(server_name));
        let req = Request::get(path)
            .header("host", host)
            .header("accept", "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| ProbeError::BadUrl {
                url: url.to_string(),
                cause: e.to_string(),
            })?;
        sender
            .send_request(req)
            .await
            .map_err(|e| unreachable(crate::exit::error_text(&e)))
    };
    json_within(url, timeout, exchange).await
}

/// `http://<addr>:<port>`: the base URL of nfsd's control API on the storage node.
pub fn nfsd_api_base(addr: &str, port: u16) -> String {
    format!("http://{}:{port}", url_host(addr))
}

/// `host` as a URL (or a `Host` header) writes it: an IPv6 address in brackets (the `url`
/// crate's form), anything else (a name, an IPv4 address, one already bracketed) as it is.
pub fn url_host(host: &str) -> String {
    match host.parse::<Ipv6Addr>() {
        Ok(ip) => url::Host::<&str>::Ipv6(ip).to_string(),
        Err(_) => host.to_string(),
    }
}

/// nfsd's `GET /v1/health` (no token needed) at `base` (see [`nfsd_api_base`]).
pub async fn nfsd_health(base: &str, timeout: Duration) -> Result<Health, ProbeError> {
    let url = format!("{base}{}/health", swarmhub_control_api::API_PREFIX);
    let v = http_get_json(&url, timeout).await?;
    serde_json::from_value(v).map_err(|e| ProbeError::Body {
        url,
        cause: format!("not nfsd's health document: {e}"),
    })
}

/// `3h 02m`, `5m 10s`, `42s`: an uptime for people.
pub fn duration_text(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// The first 200 characters of a body, on one line.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let one_line = one_line.trim().to_string();
    if one_line.is_empty() {
        "(empty body)".into()
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-shot HTTP server answering `response` to the first request; returns its base URL.
    async fn serve_once(response: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(response.as_bytes()).await;
            let _ = s.shutdown().await;
        });
        format!("http://{addr}")
    }

    fn reply(status: &str, body: &str) -> &'static str {
        Box::leak(
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_boxed_str(),
        )
    }

    #[tokio::test]
    async fn json_comes_back() {
        let base = serve_once(reply("200 OK", r#"{"version":"5.2.1"}"#)).await;
        let v = http_get_json(&format!("{base}/hub/api"), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(v["version"], "5.2.1");
    }

    #[tokio::test]
    async fn health_is_parsed() {
        let base = serve_once(reply(
            "200 OK",
            r#"{"status":"ok","version":"0.1.0","volumes":3,"nfs_listen":"0.0.0.0:2049","uptime_seconds":61}"#,
        ))
        .await;
        let h = nfsd_health(&base, Duration::from_secs(5)).await.unwrap();
        assert_eq!((h.version.as_str(), h.volumes), ("0.1.0", 3));
    }

    #[tokio::test]
    async fn errors_name_the_url_and_the_cause() {
        let base = serve_once(reply("404 Not Found", "no such page")).await;
        let url = format!("{base}/x");
        let e = http_get_json(&url, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(e, ProbeError::Status { status: 404, .. }), "{e}");
        assert!(
            e.to_string().contains(&url) && e.to_string().contains("no such page"),
            "{e}"
        );

        let base = serve_once(reply("200 OK", "<html>")).await;
        let e = http_get_json(&base, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(e, ProbeError::Body { .. }), "{e}");

        let base = serve_once(reply("200 OK", r#"{"version":"1"}"#)).await;
        let e = nfsd_health(&base, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not nfsd's health document"), "{e}");

        // a port nobody listens on
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let url = format!("http://127.0.0.1:{port}/v1/health");
        let e = http_get_json(&url, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(e, ProbeError::Unreachable { .. }), "{e}");
        assert!(e.to_string().to_lowercase().contains("refused"), "{e}");

        let e = http_get_json("https://example.org/", Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(e, ProbeError::BadUrl { .. }), "{e}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        // accepts (kernel backlog) and never answers
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        let t0 = std::time::Instant::now();
        let e = http_get_json(&url, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(e, ProbeError::Timeout { .. }), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(3));
        drop(l);
    }

    #[test]
    fn bases_and_durations() {
        assert_eq!(nfsd_api_base("10.0.0.5", 8049), "http://10.0.0.5:8049");
        assert_eq!(nfsd_api_base("fd00::5", 8049), "http://[fd00::5]:8049");
        assert_eq!(nfsd_api_base("[fd00::5]", 8049), "http://[fd00::5]:8049");
        assert_eq!(url_host("hub.example.org"), "hub.example.org");
        assert_eq!(url_host("::1"), "[::1]");
        assert_eq!(duration_text(42), "42s");
        assert_eq!(duration_text(310), "5m 10s");
        assert_eq!(duration_text(3 * 3600 + 120), "3h 02m");
        assert_eq!(duration_text(2 * 86_400 + 3600), "2d 1h");
    }
}
