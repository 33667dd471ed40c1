//! The Docker gate's cost on a spawn (issue 16): the Docker calls SwarmSpawner makes for one
//! notebook (create the service, list its tasks, inspect it, remove it) timed straight to a real
//! dockerd and through `swarmhub-docker-gate` in front of the same dockerd, interleaved round by
//! round. The gate runs in this process (the library the `swarmhub docker-gate` service runs);
//! dockerd is node 1 of the test harness's swarm (`swarmhub_tests::swarm`), so nothing on the
//! machine's own dockerd is touched.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use hyperlocal::{UnixConnector, Uri};
use serde_json::{Value, json};
use swarmhub_docker_gate::{GateOptions, GateRules};

/// The calls of one spawn and stop, in order.
pub const CALLS: [&str; 4] = ["create", "tasks", "inspect", "remove"];

/// The rules `swarmhub run` gives the gate for a default `swarmhub.toml` (derived by the same
/// function).
pub fn rules() -> anyhow::Result<GateRules> {
    let settings = hub_deployer::settings::Config::default()
        .hub_settings()
        .context("the default settings")?;
    Ok(hub_deployer::plan::docker_gate_rules(&settings))
}

/// The spec SwarmSpawner sends for `user` under `rules` (dockerspawner 14, docker-py 7,
/// swarmhub's hook): the first approved image, the user's volumes with their options.
pub fn spec(rules: &GateRules, user: &str) -> Value {
    let mounts: Vec<Value> = rules
        .mounts
        .iter()
        .map(|m| {
            json!({
                "Target": m.target, "Source": m.source_for(user), "Type": "volume",
                "ReadOnly": false,
                "VolumeOptions": {"NoCopy": true, "DriverConfig": {
                    "Name": m.driver, "Options": m.options_for(user)
                }}
            })
        })
        .collect();
    json!({
        "Name": format!("{}-{user}", rules.name_prefix),
        "Labels": {"swarmhub.component": "notebook", "swarmhub.user": user, "swarmhub.role": "student"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": rules.images[0],
                "Args": ["swarmhub-notebook-start", "jupyterhub-singleuser"],
                "Env": [format!("JUPYTERHUB_USER={user}"), "JUPYTERHUB_API_TOKEN=0123456789abcdef"],
                "Mounts": mounts
            },
            "Networks": [{"Target": rules.network}]
        },
        "EndpointSpec": {"Mode": "dnsrr"}
    })
}

/// A Docker API client on a unix socket.
pub struct Api {
    socket: PathBuf,
    client: Client<UnixConnector, Full<Bytes>>,
}

impl Api {
    /// A client of the socket at `socket`.
    pub fn new(socket: &Path) -> Api {
        Api {
            socket: socket.to_path_buf(),
            client: Client::builder(TokioExecutor::new()).build(UnixConnector),
        }
    }

    /// One call; the status and the body as JSON (`Null` if none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let req = Request::builder()
            .method(method.clone())
            .uri(Uri::new(&self.socket, path))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(bytes)))?;
        let r = self
            .client
            .request(req)
            .await
            .with_context(|| format!("{method} {path} on {}", self.socket.display()))?;
        let status = r.status().as_u16();
        let body = r.into_body().collect().await?.to_bytes();
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }
}

/// One spawn-and-stop's calls through `api`, each timed; fails on any unexpected status.
pub async fn spawn_and_stop(
    api: &Api,
    rules: &GateRules,
    user: &str,
) -> anyhow::Result<[Duration; 4]> {
    let v = "/v1.41";
    let t = Instant::now();
    let (status, body) = api
        .call(
            Method::POST,
            &format!("{v}/services/create"),
            Some(&spec(rules, user)),
        )
        .await?;
    let create = t.elapsed();
    ensure!(status == 201, "create {user}: {status} {body}");
    let id = body["ID"].as_str().unwrap_or_default().to_string();
    let filters = percent_encoding::utf8_percent_encode(
        &json!({"service": [format!("{}-{user}", rules.name_prefix)]}).to_string(),
        percent_encoding::NON_ALPHANUMERIC,
    )
    .to_string();
    let t = Instant::now();
    let (status, body) = api
        .call(Method::GET, &format!("{v}/tasks?filters={filters}"), None)
        .await?;
    let tasks = t.elapsed();
    ensure!(status == 200, "tasks of {user}: {status} {body}");
    let t = Instant::now();
    let (status, body) = api
        .call(
            Method::GET,
            &format!("{v}/services/{}-{user}", rules.name_prefix),
            None,
        )
        .await?;
    let inspect = t.elapsed();
    ensure!(status == 200, "inspect {user}: {status} {body}");
    let t = Instant::now();
    let (status, body) = api
        .call(Method::DELETE, &format!("{v}/services/{id}"), None)
        .await?;
    let remove = t.elapsed();
    ensure!(status == 200, "remove {user}: {status} {body}");
    Ok([create, tasks, inspect, remove])
}

/// Start the gate in this process on `listen`, in front of dockerd at `docker`; waits until
/// its socket answers.
pub async fn start_gate(listen: &Path, docker: &Path, rules: GateRules) -> anyhow::Result<()> {
    let opts = GateOptions {
        listen: listen.to_path_buf(),
        docker: docker.to_path_buf(),
        rules,
    };
    tokio::spawn(async move {
        if let Err(e) = swarmhub_docker_gate::serve(opts).await {
            eprintln!("the gate stopped: {e:#}");
        }
    });
    let api = Api::new(listen);
    for _ in 0..100 {
        if let Ok((200, _)) = api.call(Method::GET, "/version", None).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the gate at {} did not answer", listen.display())
}

/// Median and 95th percentile of `d` in milliseconds.
pub fn median_p95(d: &mut [Duration]) -> (f64, f64) {
    d.sort();
    if d.is_empty() {
        return (0.0, 0.0);
    }
    // the sample at the nearest index to `percent` of the sorted samples
    let at = |percent: usize| {
        let n = d.len() - 1;
        d[((n * percent + 50) / 100).min(n)].as_secs_f64() * 1000.0
    };
    (at(50), at(95))
}
