//! Reaching dockerd: the address (`DOCKER_HOST` or the local socket), the client with the
//! configured timeout, and the API version both sides speak (docker 20.10 speaks 1.41, older
//! than bollard's default). Only connection logic lives here; what the CLI does with the client
//! belongs to the apply layer. [`engine::Engine`] is what the apply and lifecycle layers ask of
//! dockerd; bollard is reached only from here.

pub mod cluster;
pub mod engine;
#[cfg(test)]
pub mod fake;
mod real;
pub mod stream;

use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, Docker};

use crate::exit::CliError;
use crate::settings::TimeoutsConfig;

/// Where dockerd listens when `DOCKER_HOST` is not set.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// The address the CLI uses: `DOCKER_HOST` if set and not empty, else [`DEFAULT_HOST`].
pub fn docker_host(docker_host_env: Option<&str>) -> String {
    match docker_host_env {
        Some(h) if !h.trim().is_empty() => h.trim().to_string(),
        _ => DEFAULT_HOST.to_string(),
    }
}

/// Connect to dockerd at `host` (`unix://PATH`, `tcp://HOST:PORT`, `http://...`), ask its
/// version within `timeouts.docker_seconds`, and use the lower of its API version and ours.
pub async fn connect_to(host: &str, timeouts: &TimeoutsConfig) -> Result<Docker, CliError> {
    let seconds = timeouts.docker_seconds;
    let unreachable = |reason: String| CliError::DockerUnreachable {
        host: host.to_string(),
        hint: hint(host, &reason),
        reason,
    };
    let docker = if let Some(path) = host.strip_prefix("unix://") {
        // bollard checks the path exists; say so in our words, with the path
        if !std::path::Path::new(path).exists() {
            return Err(unreachable(format!("no socket at {path}")));
        }
        Docker::connect_with_unix(host, seconds, API_DEFAULT_VERSION)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, seconds, API_DEFAULT_VERSION)
    } else {
        return Err(CliError::Usage(format!(
            "DOCKER_HOST={host} is not supported: use unix:///path/to/docker.sock or tcp://host:port"
        )));
    }
    .map_err(|e| unreachable(e.to_string()))?;
    match tokio::time::timeout(Duration::from_secs(seconds), docker.negotiate_version()).await {
        Ok(Ok(docker)) => Ok(docker),
        Ok(Err(e)) => Err(unreachable(crate::exit::error_text(&e))),
        Err(_) => Err(unreachable(format!(
            "no answer within {seconds} s (timeouts.docker_seconds)"
        ))),
    }
}

/// What the admin can do about an unreachable dockerd.
fn hint(host: &str, reason: &str) -> String {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("permission denied") {
        return "run swarmhub as root or as a member of the docker group".into();
    }
    match host.strip_prefix("unix://") {
        Some(path) => format!(
            "is dockerd running? start it (systemctl start docker), or set DOCKER_HOST to the socket it listens on (now {path})"
        ),
        None => format!("is dockerd listening at {host}? check DOCKER_HOST and the network"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_comes_from_docker_host_or_the_default() {
        assert_eq!(docker_host(None), "unix:///var/run/docker.sock");
        assert_eq!(docker_host(Some("")), "unix:///var/run/docker.sock");
        assert_eq!(
            docker_host(Some("tcp://10.0.0.1:2375")),
            "tcp://10.0.0.1:2375"
        );
    }

    #[tokio::test]
    async fn a_missing_socket_is_exit_code_3_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let host = format!("unix://{}", path.display());
        let e = connect_to(&host, &TimeoutsConfig::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), 3);
        let m = e.to_string();
        assert!(
            m.contains(&format!("no socket at {}", path.display())),
            "{m}"
        );
        assert!(m.contains("systemctl start docker"), "{m}");
        assert!(m.contains("DOCKER_HOST"), "{m}");
    }

    #[tokio::test]
    async fn a_socket_nobody_listens_on_is_exit_code_3() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        // bound, then closed: the file stays, connecting is refused
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let host = format!("unix://{}", path.display());
        let e = connect_to(&host, &TimeoutsConfig::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), 3, "{e}");
        assert!(e.to_string().contains(&host), "{e}");
    }

    #[tokio::test]
    async fn a_silent_daemon_times_out_as_unreachable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        // accepts connections (kernel backlog) and never answers
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let host = format!("unix://{}", path.display());
        let t = TimeoutsConfig {
            docker_seconds: 1,
            ..TimeoutsConfig::default()
        };
        let e = connect_to(&host, &t).await.unwrap_err();
        assert_eq!(e.code(), 3, "{e}");
    }

    #[tokio::test]
    async fn unsupported_schemes_are_usage_errors() {
        let e = connect_to("ssh://host", &TimeoutsConfig::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), 2, "{e}");
    }
}
