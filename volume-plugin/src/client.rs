//! A client of the plugin's own socket that speaks like dockerd: `POST /<Endpoint>` with a JSON
//! body, the `Accept: application/vnd.docker.plugins.v1.2+json` header and no `Content-Type`
//! (what moby's `pkg/plugins` client sends). Behind the hidden `call` subcommand, so a shell
//! without Docker (the qemu guest of the kernel-backend restart test) can drive the plugin the way
//! dockerd does. An answer whose `Err` is non-empty is an error, as it is for dockerd.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyperlocal::{UnixClientExt, UnixConnector};

/// The media type dockerd accepts from volume plugins.
pub const ACCEPT: &str = "application/vnd.docker.plugins.v1.2+json";

/// How long `call` waits by default: dockerd gives Create and Mount 2 minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a call got no successful answer. Each names the socket or endpoint and the cause.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// the body given is not JSON (nothing was sent)
    #[error("the request body for {endpoint} is not JSON: {source}")]
    BadBody {
        endpoint: String,
        source: serde_json::Error,
    },
    /// no connection to the socket, or the request broke off
    #[error(
        "calling {endpoint} on {}: {cause}; check that the plugin runs and listens on that socket",
        socket.display()
    )]
    Transport {
        socket: PathBuf,
        endpoint: String,
        cause: String,
    },
    /// no answer in time
    #[error("{endpoint} on {} did not answer within {after:?}", socket.display())]
    Timeout {
        socket: PathBuf,
        endpoint: String,
        after: Duration,
    },
    /// an HTTP status other than 200 (dockerd treats that as a failed call)
    #[error("{endpoint} answered HTTP {status}: {body}")]
    Status {
        endpoint: String,
        status: u16,
        body: String,
    },
    /// the answer is not a JSON object
    #[error("{endpoint} answered something that is not a JSON object: {body:?}")]
    NotJson { endpoint: String, body: String },
    /// the plugin answered with a non-empty `Err`, as users would see it in `docker`
    #[error("{endpoint}: {err}")]
    Refused {
        endpoint: String,
        err: String,
        /// the whole answer
        answer: serde_json::Value,
    },
}

impl CallError {
    /// The plugin's whole answer, when there was one.
    pub fn answer(&self) -> Option<&serde_json::Value> {
        match self {
            CallError::Refused { answer, .. } => Some(answer),
            _ => None,
        }
    }
}

/// `/VolumeDriver.Mount` for `VolumeDriver.Mount` or `/VolumeDriver.Mount`.
pub fn endpoint_path(endpoint: &str) -> String {
    format!("/{}", endpoint.trim_start_matches('/'))
}

/// The error and its sources, `a: b: c` (hyper's top-level messages alone say little).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        let t = c.to_string();
        if !s.ends_with(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        next = c.source();
    }
    s
}

/// POSTs `body` (JSON; empty means `{}`) to `endpoint` on the plugin socket `socket` and
/// returns the JSON answer; an answer with a non-empty `Err` is [`CallError::Refused`].
pub async fn call(
    socket: &Path,
    endpoint: &str,
    body: &str,
    timeout: Duration,
) -> Result<serde_json::Value, CallError> {
    let endpoint = endpoint_path(endpoint);
    let body = if body.trim().is_empty() { "{}" } else { body };
    // checked here so that a typo in a script is named as such, not as the plugin's refusal
    serde_json::from_str::<serde_json::Value>(body).map_err(|source| CallError::BadBody {
        endpoint: endpoint.clone(),
        source,
    })?;
    let client: Client<UnixConnector, Full<Bytes>> = Client::unix();
    let uri: hyper::Uri = hyperlocal::Uri::new(socket, &endpoint).into();
    let req = hyper::Request::post(uri)
        .header(hyper::header::ACCEPT, ACCEPT)
        .body(Full::new(Bytes::from(body.to_owned())))
        .map_err(|e| CallError::Transport {
            socket: socket.to_path_buf(),
            endpoint: endpoint.clone(),
            cause: chain(&e),
        })?;
    let transport = |cause: String| CallError::Transport {
        socket: socket.to_path_buf(),
        endpoint: endpoint.clone(),
        cause,
    };
    let exchange = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| transport(chain(&e)))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| transport(chain(&e)))?
            .to_bytes();
        Ok::<_, CallError>((status, bytes))
    };
    let (status, bytes) = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| CallError::Timeout {
            socket: socket.to_path_buf(),
            endpoint: endpoint.clone(),
            after: timeout,
        })??;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if status != hyper::StatusCode::OK {
        return Err(CallError::Status {
            endpoint,
            status: status.as_u16(),
            body: text,
        });
    }
    let answer: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => {
            return Err(CallError::NotJson {
                endpoint,
                body: text,
            });
        }
    };
    match answer.get("Err").and_then(|e| e.as_str()) {
        Some(err) if !err.is_empty() => Err(CallError::Refused {
            endpoint,
            err: err.to_owned(),
            answer,
        }),
        _ => Ok(answer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_paths() {
        assert_eq!(endpoint_path("VolumeDriver.Get"), "/VolumeDriver.Get");
        assert_eq!(endpoint_path("/VolumeDriver.Get"), "/VolumeDriver.Get");
    }

    #[tokio::test]
    async fn a_missing_socket_is_a_transport_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("nobody.sock");
        let e = call(&sock, "Plugin.Activate", "", Duration::from_secs(5))
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, CallError::Transport { .. }), "{msg}");
        assert!(
            msg.contains("/Plugin.Activate") && msg.contains("nobody.sock"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn a_body_that_is_not_json_is_refused_before_sending() {
        let e = call(
            Path::new("/nonexistent.sock"),
            "/VolumeDriver.Get",
            "{Name: v}",
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, CallError::BadBody { .. }), "{e}");
        assert!(e.to_string().contains("/VolumeDriver.Get"), "{e}");
    }
}
