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
    pub async fn users_of(&self, volume: &str) -> Result<usize, String> {
        let filters = serde_json::json!({ "volume": [volume] }).to_string();
        let path = format!("/containers/json?filters={}", urlencode(&filters));
        let uri: hyper::Uri = hyperlocal::Uri::new(&self.socket, &path).into();
        let resp = tokio::time::timeout(Duration::from_secs(10), self.client.get(uri))
            .await
            .map_err(|_| {
                format!(
                    "dockerd at {} did not answer within 10 s",
                    self.socket.display()
                )
            })?
            .map_err(|e| format!("asking dockerd at {}: {e}", self.socket.display()))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            return Err(format!(
                "dockerd answered {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        let list: Vec<serde_json::Value> =
            serde_json::from_slice(&body).map_err(|e| format!("dockerd's container list: {e}"))?;
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
