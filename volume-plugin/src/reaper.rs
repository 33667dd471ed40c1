//! Reaps references that dockerd will never release: with live-restore, containers that survive
//! a dockerd restart never get an Unmount. When the plugin can reach the Docker socket, it asks
//! which running containers use each referenced volume; a volume no running container has used
//! for a grace period is unmounted and its references dropped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyperlocal::{UnixClientExt, UnixConnector};
use tokio_util::sync::CancellationToken;

use crate::driver::{Driver, Provisioner};

/// How long dockerd may take to list containers.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why dockerd could not say which running containers use a volume (the reaper then waits for
/// its next round; nothing is reaped on a guess).
#[derive(Debug, thiserror::Error)]
pub enum DockerQueryError {
    /// dockerd did not answer in time
    #[error("dockerd at {} did not answer within {after:?}", socket.display())]
    Timeout { socket: PathBuf, after: Duration },
    /// no connection to dockerd's socket, or the request failed
    #[error("asking dockerd at {}: {source}", socket.display())]
    Request {
        socket: PathBuf,
        source: hyper_util::client::legacy::Error,
    },
    /// the answer broke off
    #[error("reading dockerd's answer at {}: {source}", socket.display())]
    Body {
        socket: PathBuf,
        source: hyper::Error,
    },
    /// dockerd refused the query
    #[error("dockerd answered {status}: {body}")]
    Status {
        status: hyper::StatusCode,
        body: String,
    },
    /// the answer is not a container list
    #[error("dockerd's container list: {0}")]
    List(#[source] serde_json::Error),
}

/// Asks dockerd which running containers use a volume.
pub struct DockerQuery {
    socket: PathBuf,
    client: Client<UnixConnector, Full<Bytes>>,
}

impl DockerQuery {
    pub fn new(socket: PathBuf) -> Self {
        Self {
            socket,
            client: Client::unix(),
        }
    }

    /// Number of running containers that mount `volume`.
    pub async fn users_of(&self, volume: &str) -> Result<usize, DockerQueryError> {
        let filters = serde_json::json!({ "volume": [volume] }).to_string();
        let path = format!("/containers/json?filters={}", urlencode(&filters));
        let uri: hyper::Uri = hyperlocal::Uri::new(&self.socket, &path).into();
        let resp = tokio::time::timeout(DOCKER_TIMEOUT, self.client.get(uri))
            .await
            .map_err(|_| DockerQueryError::Timeout {
                socket: self.socket.clone(),
                after: DOCKER_TIMEOUT,
            })?
            .map_err(|source| DockerQueryError::Request {
                socket: self.socket.clone(),
                source,
            })?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|source| DockerQueryError::Body {
                socket: self.socket.clone(),
                source,
            })?
            .to_bytes();
        if !status.is_success() {
            return Err(DockerQueryError::Status {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        let list: Vec<serde_json::Value> =
            serde_json::from_slice(&body).map_err(DockerQueryError::List)?;
        Ok(list.len())
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters (A-Z a-z 0-9 - _ . ~).
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// Runs until `stop` fires: every `grace / 4` (at least 5 s), checks referenced volumes.
pub async fn run<P: Provisioner>(
    driver: Arc<Driver<P>>,
    docker: DockerQuery,
    grace: Duration,
    stop: CancellationToken,
) {
    let mut unused_since: HashMap<String, Instant> = HashMap::new();
    let period = (grace / 4).max(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let referenced = driver.referenced();
        unused_since.retain(|n, _| referenced.contains(n));
        for name in referenced {
            match docker.users_of(&name).await {
                Ok(0) => {
                    let since = *unused_since
                        .entry(name.clone())
                        .or_insert_with(Instant::now);
                    if since.elapsed() >= grace {
                        if let Err(e) = driver.reap(&name).await {
                            tracing::warn!(volume = %name, "reaping failed: {e}");
                        }
                        unused_since.remove(&name);
                    }
                }
                Ok(_) => {
                    unused_since.remove(&name);
                }
                Err(e) => {
                    tracing::warn!("reaper cannot ask dockerd: {e}");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_filters() {
        assert_eq!(
            super::urlencode(r#"{"volume":["a"]}"#),
            "%7B%22volume%22%3A%5B%22a%22%5D%7D"
        );
    }
}
