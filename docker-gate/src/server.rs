//! The gate's HTTP side: it listens on a unix socket (in the volume the hub shares with it),
//! routes each request ([`crate::route`]), makes the reads it needs to decide (is the service
//! a notebook's?), checks service specs ([`crate::spec`]), and forwards what is allowed to
//! dockerd with the ids it resolved. Refusals are answered 403 in Docker's error shape
//! (`{"message": ...}`, which docker-py raises as `APIError` with that text) and logged.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use bollard::models::{Network, Service, Task};
use tracing::{debug, error, info, warn};

use crate::route::{Call, Refusal, Routed, route};
use crate::rules::GateRules;
use crate::spec::{Checked, check_labels, check_service_spec};
use crate::upstream::{DockerSocket, Lookup, Upstream, UpstreamError, UpstreamRequest, get_json};

/// The largest service spec the gate reads (SwarmSpawner's are a few KiB).
pub const MAX_BODY: usize = 1024 * 1024;

/// The largest `X-Registry-Auth` header passed on.
const MAX_REGISTRY_AUTH: usize = 16 * 1024;

/// What `swarmhub docker-gate` is given.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// The unix socket to create and listen on (in the volume shared with the hub).
    pub listen: PathBuf,
    /// dockerd's socket.
    pub docker: PathBuf,
    /// What is allowed.
    pub rules: GateRules,
}

/// Listen on `opts.listen` and serve until SIGTERM or SIGINT.
pub async fn serve(opts: GateOptions) -> anyhow::Result<()> {
    let listener = bind_unix(&opts.listen)?;
    info!(
        listen = %opts.listen.display(),
        docker = %opts.docker.display(),
        images = ?opts.rules.images,
        network = %opts.rules.network,
        mounts = opts.rules.mounts.len(),
        "swarmhub-docker-gate listening"
    );
    let gate = Arc::new(Gate::new(opts.rules, DockerSocket::new(opts.docker)));
    axum::serve(listener, router(gate))
        .with_graceful_shutdown(shutdown())
        .await
        .context("serving the docker gate")?;
    info!("swarmhub-docker-gate stopped");
    Ok(())
}

/// Bind a unix socket at `path`, replacing a stale socket (a previous gate's) but nothing else;
/// only root may connect (the hub runs as root in its container).
fn bind_unix(path: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the gate's socket directory {}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?,
        Ok(_) => anyhow::bail!(
            "{} exists and is not a socket; remove it (the gate creates its socket there)",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("looking at {}", path.display())),
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("listening on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    Ok(listener)
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                error!(error = %e, "cannot watch for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The gate's router: every request goes to one handler, which decides.
pub fn router<U: Upstream>(gate: Arc<Gate<U>>) -> Router {
    Router::new().fallback(handle::<U>).with_state(gate)
}

/// The rules and the way to dockerd.
#[derive(Debug)]
pub struct Gate<U> {
    rules: GateRules,
    up: U,
}

/// Why a request was not forwarded.
#[derive(Debug, thiserror::Error)]
enum GateError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

async fn handle<U: Upstream>(State(gate): State<Arc<Gate<U>>>, req: Request) -> Response<Body> {
    let method = req.method().clone();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    match gate.answer(req).await {
        Ok(response) => response,
        Err(GateError::Refused(r)) => {
            warn!(%method, target, rule = r.rule, detail = %r.detail, "refused");
            docker_error(StatusCode::FORBIDDEN, &r.to_string())
        }
        Err(GateError::Upstream(e)) => {
            error!(%method, target, error = %e, "dockerd failed");
            docker_error(
                StatusCode::BAD_GATEWAY,
                &format!("swarmhub-docker-gate: {e}"),
            )
        }
    }
}

/// Docker's error shape, which docker-py shows as the `APIError`'s explanation.
fn docker_error(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "message": message }).to_string();
    json_response(status, Bytes::from(body))
}

fn json_response(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A notebook service as dockerd reported it, or the answer to give instead (dockerd's 404).
enum Found {
    Service(Box<Service>, Bytes),
    Answer(Response<Body>),
}

impl<U: Upstream> Gate<U> {
    /// A gate with `rules` in front of `up`.
    pub fn new(rules: GateRules, up: U) -> Gate<U> {
        Gate { rules, up }
    }

    async fn answer(&self, req: Request) -> Result<Response<Body>, GateError> {
        let (parts, body) = req.into_parts();
        // the whole request first (at most MAX_BODY): a refusal is then answered to a client
        // that has finished sending, instead of closing the connection under its write
        let body = read_body(body).await?;
        let routed = route(&parts.method, parts.uri.path(), parts.uri.query())?;
        match &routed.call {
            Call::Ping
            | Call::Version
            | Call::NodeList { .. }
            | Call::NodeInspect { .. }
            | Call::NetworkList { .. }
            | Call::NetworkInspect { .. } => {
                debug!(call = %routed.call, "read");
                let path = routed.upstream_path(None);
                Ok(self
                    .forward(parts.method, path, HeaderMap::new(), Bytes::new())
                    .await?)
            }
            Call::ServiceCreate => {
                let checked = self.check_spec(&routed, &body).await?;
                info!(
                    service = checked.name,
                    user = checked.user,
                    "creating notebook service"
                );
                let headers = pass_headers(&parts.headers)?;
                let path = routed.upstream_path(None);
                Ok(self
                    .forward(Method::POST, path, headers, checked.body.into())
                    .await?)
            }
            Call::ServiceInspect { id, .. } => {
                let path = routed.upstream_path(None);
                Ok(match self.notebook_service(&path, id).await? {
                    Found::Service(_, bytes) => json_response(StatusCode::OK, bytes),
                    Found::Answer(r) => r,
                })
            }
            Call::ServiceUpdate { id, .. } => {
                let (service, _) = match self
                    .notebook_service(&self.inspect_path(&routed, id), id)
                    .await?
                {
                    Found::Service(s, b) => (s, b),
                    Found::Answer(r) => return Ok(r),
                };
                let checked = self.check_spec(&routed, &body).await?;
                let spec = service.spec.as_ref();
                let name = spec.and_then(|s| s.name.as_deref()).unwrap_or_default();
                let user = spec
                    .and_then(|s| s.labels.as_ref())
                    .and_then(|l| l.get(&self.rules.user_label))
                    .map(String::as_str)
                    .unwrap_or_default();
                if checked.name != name || checked.user != user {
                    return Err(Refusal::new(
                        "update",
                        format!(
                            "an update keeps the service's name and user ({name}, {user}), not \
                             ({}, {})",
                            checked.name, checked.user
                        ),
                    )
                    .into());
                }
                info!(service = name, user, "updating notebook service");
                let headers = pass_headers(&parts.headers)?;
                let path = routed.upstream_path(service.id.as_deref());
                Ok(self
                    .forward(Method::POST, path, headers, checked.body.into())
                    .await?)
            }
            Call::ServiceRemove { id } | Call::ServiceLogs { id, .. } => {
                let service = match self
                    .notebook_service(&self.inspect_path(&routed, id), id)
                    .await?
                {
                    Found::Service(s, _) => s,
                    Found::Answer(r) => return Ok(r),
                };
                if matches!(routed.call, Call::ServiceRemove { .. }) {
                    info!(
                        service = service.spec.as_ref().and_then(|s| s.name.as_deref()),
                        "removing notebook service"
                    );
                }
                let path = routed.upstream_path(service.id.as_deref());
                Ok(self
                    .forward(parts.method, path, HeaderMap::new(), Bytes::new())
                    .await?)
            }
            Call::TaskList { filters } => {
                let mut resolved = filters.clone();
                resolved.services.clear();
                for s in &filters.services {
                    match self
                        .notebook_service(&self.inspect_path(&routed, s), s)
                        .await?
                    {
                        Found::Service(svc, _) => {
                            resolved.services.push(svc.id.clone().unwrap_or_default());
                        }
                        Found::Answer(r) => return Ok(r),
                    }
                }
                let path = Routed {
                    version: routed.version.clone(),
                    call: Call::TaskList { filters: resolved },
                }
                .upstream_path(None);
                Ok(self
                    .forward(Method::GET, path, HeaderMap::new(), Bytes::new())
                    .await?)
            }
            Call::TaskInspect { .. } => {
                let (task, bytes) =
                    match get_json::<U, Task>(&self.up, routed.upstream_path(None)).await? {
                        Lookup::Found(t, b) => (t, b),
                        Lookup::Answered(status, b) => return Ok(json_response(status, b)),
                    };
                let service_id = task.service_id.clone().unwrap_or_default();
                let path = self.inspect_path(&routed, &service_id);
                match self.notebook_service(&path, &service_id).await {
                    Ok(Found::Service(..)) => Ok(json_response(StatusCode::OK, bytes)),
                    // the task's service is gone: the task is a notebook's only if it says so
                    Ok(Found::Answer(_)) => {
                        self.task_is_notebook(&task)?;
                        Ok(json_response(StatusCode::OK, bytes))
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// The path of a service inspect with the request's API version.
    fn inspect_path(&self, routed: &Routed, id: &str) -> String {
        Routed {
            version: routed.version.clone(),
            call: Call::ServiceInspect {
                id: id.to_string(),
                insert_defaults: false,
            },
        }
        .upstream_path(None)
    }

    /// Read the service `id` at `path`; a notebook service, dockerd's own non-200 answer, or a
    /// refusal when the service is not a notebook's.
    async fn notebook_service(&self, path: &str, id: &str) -> Result<Found, GateError> {
        match get_json::<U, Service>(&self.up, path.to_string()).await? {
            Lookup::Answered(status, body) => Ok(Found::Answer(json_response(status, body))),
            Lookup::Found(service, bytes) => {
                let spec = service.spec.as_ref();
                let name = spec.and_then(|s| s.name.as_deref()).unwrap_or_default();
                let notebook = check_labels(spec.and_then(|s| s.labels.as_ref()), &self.rules)
                    .map_err(|r| r.detail)
                    .and_then(|_| {
                        name.starts_with(&format!("{}-", self.rules.name_prefix))
                            .then_some(())
                            .ok_or_else(|| format!("its name {name} is not a notebook's"))
                    });
                match notebook {
                    Ok(()) => Ok(Found::Service(Box::new(service), bytes)),
                    Err(why) => Err(Refusal::new(
                        "notebook-service",
                        format!(
                            "the service {id} ({name}) is not a notebook service, and the hub \
                             may only act on notebook services: {why}"
                        ),
                    )
                    .into()),
                }
            }
        }
    }

    /// A task whose service is gone (the spawner watches a stopped notebook's tasks end after it
    /// removed the service) is a notebook's if it runs an approved notebook image: its spec is a
    /// copy of the service's, which only the gate's checks let in.
    fn task_is_notebook(&self, task: &Task) -> Result<(), Refusal> {
        let image = task
            .spec
            .as_ref()
            .and_then(|s| s.container_spec.as_ref())
            .and_then(|c| c.image.as_deref());
        match image {
            Some(i) if self.rules.images.iter().any(|a| a == i) => Ok(()),
            _ => Err(Refusal::new(
                "notebook-service",
                format!(
                    "the task {} is not a notebook's (its service is gone and its image {image:?} \
                     is not a notebook image)",
                    task.id.as_deref().unwrap_or("?")
                ),
            )),
        }
    }

    async fn check_spec(&self, routed: &Routed, body: &[u8]) -> Result<Checked, GateError> {
        match check_service_spec(body, &self.rules, None) {
            Err(r) if r.rule == "network" => {
                // the spec may name the notebook network by id
                let path = format!(
                    "{}/networks/{}",
                    routed.version_prefix(),
                    self.rules.network
                );
                let id = match get_json::<U, Network>(&self.up, path).await? {
                    Lookup::Found(n, _) => n.id,
                    Lookup::Answered(..) => None,
                };
                Ok(check_service_spec(body, &self.rules, id.as_deref())?)
            }
            other => Ok(other?),
        }
    }

    async fn forward(
        &self,
        method: Method,
        path: String,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response<Body>, UpstreamError> {
        self.up
            .send(UpstreamRequest {
                method,
                path,
                headers,
                body,
            })
            .await
    }
}

async fn read_body(body: Body) -> Result<Bytes, Refusal> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
        Refusal::new(
            "body",
            format!("the body could not be read (at most {MAX_BODY} bytes): {e}"),
        )
    })
}

/// The headers a service create or update passes on: JSON, and registry credentials if the hub
/// sends any.
fn pass_headers(from: &HeaderMap) -> Result<HeaderMap, Refusal> {
    let mut out = HeaderMap::new();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(v) = from.get("x-registry-auth") {
        if v.len() > MAX_REGISTRY_AUTH
            || !v
                .as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
        {
            return Err(Refusal::new(
                "body",
                "the X-Registry-Auth header is not base64 of at most 16 KiB",
            ));
        }
        out.insert("x-registry-auth", v.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use axum::http::Request as HttpRequest;
    use http_body_util::BodyExt;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;
    use crate::spec::tests::{rules, spawner_spec};

    /// dockerd as a table of answers by path; every request it gets is recorded.
    #[derive(Default)]
    struct FakeDocker {
        answers: HashMap<String, (StatusCode, Value)>,
        seen: Mutex<Vec<(Method, String, Bytes)>>,
    }

    impl Upstream for Arc<FakeDocker> {
        async fn send(&self, req: UpstreamRequest) -> Result<Response<Body>, UpstreamError> {
            self.seen.lock().unwrap().push((
                req.method.clone(),
                req.path.clone(),
                req.body.clone(),
            ));
            let (status, body) = self
                .answers
                .get(&req.path)
                .cloned()
                .unwrap_or((StatusCode::OK, json!({"forwarded": req.path})));
            Ok(json_response(status, Bytes::from(body.to_string())))
        }
    }

    fn service(id: &str, name: &str, labels: Value) -> (StatusCode, Value) {
        (
            StatusCode::OK,
            json!({"ID": id, "Spec": {"Name": name, "Labels": labels}}),
        )
    }

    fn docker() -> Arc<FakeDocker> {
        let notebook = json!({"swarmhub.component": "notebook", "swarmhub.user": "alice", "swarmhub.role": "student"});
        let mut answers = HashMap::new();
        answers.insert(
            "/v1.41/services/jupyter-alice".to_string(),
            service("aliceid", "jupyter-alice", notebook.clone()),
        );
        answers.insert(
            "/v1.41/services/aliceid".to_string(),
            service("aliceid", "jupyter-alice", notebook),
        );
        answers.insert(
            "/v1.41/services/swarmhub-nfsd".to_string(),
            service(
                "nfsdid",
                "swarmhub-nfsd",
                json!({"swarmhub.managed": "true", "swarmhub.component": "nfsd"}),
            ),
        );
        answers.insert(
            "/v1.41/services/gone".to_string(),
            (
                StatusCode::NOT_FOUND,
                json!({"message": "service gone not found"}),
            ),
        );
        answers.insert(
            "/v1.41/tasks/t-alice".to_string(),
            (
                StatusCode::OK,
                json!({"ID": "t-alice", "ServiceID": "aliceid"}),
            ),
        );
        answers.insert(
            "/v1.41/tasks/t-nfsd".to_string(),
            (
                StatusCode::OK,
                json!({"ID": "t-nfsd", "ServiceID": "nfsdid"}),
            ),
        );
        answers.insert(
            "/v1.41/tasks/t-old".to_string(),
            (
                StatusCode::OK,
                json!({"ID": "t-old", "ServiceID": "gone", "Spec": {"ContainerSpec": {"Image": "swarmhub/notebook-student:0.1.0"}}}),
            ),
        );
        Arc::new(FakeDocker {
            answers,
            ..Default::default()
        })
    }

    async fn call(
        d: &Arc<FakeDocker>,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let gate = Arc::new(Gate::new(rules(), d.clone()));
        let body = body.map(|b| Body::from(b.to_string())).unwrap_or_default();
        let req = HttpRequest::builder()
            .method(method)
            .uri(uri)
            .body(body)
            .unwrap();
        let r = router(gate).oneshot(req).await.unwrap();
        let status = r.status();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn seen(d: &FakeDocker) -> Vec<String> {
        d.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(m, p, _)| format!("{m} {p}"))
            .collect()
    }

    #[tokio::test]
    async fn a_notebook_spec_is_created_with_the_checked_body() {
        let d = docker();
        let (status, _) = call(
            &d,
            Method::POST,
            "/v1.41/services/create",
            Some(spawner_spec("alice")),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let seen = d.seen.lock().unwrap();
        let (m, p, body) = &seen[0];
        assert_eq!((m, p.as_str()), (&Method::POST, "/v1.41/services/create"));
        assert_eq!(
            serde_json::from_slice::<Value>(body).unwrap(),
            spawner_spec("alice")
        );
    }

    #[tokio::test]
    async fn refusals_are_403_in_dockers_shape_and_never_reach_dockerd() {
        let d = docker();
        let mut bind = spawner_spec("alice");
        bind["TaskTemplate"]["ContainerSpec"]["Mounts"] =
            json!([{"Type": "bind", "Source": "/", "Target": "/host"}]);
        for (method, uri, body) in [
            (Method::POST, "/v1.41/services/create", Some(bind)),
            (
                Method::POST,
                "/v1.41/containers/create",
                Some(json!({"Image": "alpine"})),
            ),
            (Method::GET, "/v1.41/secrets", None),
            (Method::POST, "/v1.41/build", None),
        ] {
            let (status, body) = call(&d, method.clone(), uri, body).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}");
            let msg = body["message"].as_str().unwrap();
            assert!(msg.starts_with("swarmhub-docker-gate refused"), "{msg}");
        }
        assert!(seen(&d).is_empty(), "{:?}", seen(&d));
    }

    #[tokio::test]
    async fn service_calls_act_only_on_notebook_services_by_their_resolved_id() {
        let d = docker();
        let (status, body) = call(&d, Method::GET, "/v1.41/services/jupyter-alice", None).await;
        assert_eq!(
            (status, body["ID"].as_str()),
            (StatusCode::OK, Some("aliceid"))
        );
        let (status, _) = call(&d, Method::DELETE, "/v1.41/services/jupyter-alice", None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = call(&d, Method::DELETE, "/v1.41/services/swarmhub-nfsd", None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("notebook-service")
        );
        let (status, _) = call(&d, Method::GET, "/v1.41/services/gone", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = call(
            &d,
            Method::GET,
            "/v1.41/services/swarmhub-nfsd/logs?stdout=1",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            seen(&d),
            [
                "GET /v1.41/services/jupyter-alice",
                "GET /v1.41/services/jupyter-alice",
                "DELETE /v1.41/services/aliceid",
                "GET /v1.41/services/swarmhub-nfsd",
                "GET /v1.41/services/gone",
                "GET /v1.41/services/swarmhub-nfsd",
            ]
        );
    }

    #[tokio::test]
    async fn tasks_are_read_for_notebook_services_only() {
        let d = docker();
        let q = "filters=%7B%22service%22%3A%5B%22jupyter-alice%22%5D%7D";
        let (status, _) = call(&d, Method::GET, &format!("/v1.41/tasks?{q}"), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            seen(&d).last().unwrap(),
            "GET /v1.41/tasks?filters=%7B%22service%22%3A%5B%22aliceid%22%5D%7D"
        );
        let q = "filters=%7B%22service%22%3A%5B%22swarmhub-nfsd%22%5D%7D";
        let (status, _) = call(&d, Method::GET, &format!("/v1.41/tasks?{q}"), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, body) = call(&d, Method::GET, "/v1.41/tasks/t-alice", None).await;
        assert_eq!(
            (status, body["ID"].as_str()),
            (StatusCode::OK, Some("t-alice"))
        );
        let (status, _) = call(&d, Method::GET, "/v1.41/tasks/t-nfsd", None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // a stopped notebook's task outlives its service
        let (status, _) = call(&d, Method::GET, "/v1.41/tasks/t-old", None).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn an_update_keeps_the_name_and_the_user() {
        let d = docker();
        let uri = "/v1.41/services/jupyter-alice/update?version=5";
        let (status, _) = call(&d, Method::POST, uri, Some(spawner_spec("alice"))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            seen(&d).last().unwrap(),
            "POST /v1.41/services/aliceid/update?version=5"
        );
        let (status, body) = call(&d, Method::POST, uri, Some(spawner_spec("bob"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("\"update\""),
            "{body}"
        );
    }

    #[tokio::test]
    async fn a_refused_request_is_answered_after_its_whole_body_arrived() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gate.sock");
        let listener = bind_unix(&path).unwrap();
        let gate = Arc::new(Gate::new(rules(), docker()));
        tokio::spawn(async move { axum::serve(listener, router(gate)).await });
        let mut conn = tokio::net::UnixStream::connect(&path).await.unwrap();
        // what python's http.client does: the headers, then the body in a second write
        let body = vec![b'x'; 200_000];
        let head = format!(
            "POST /v1.41/containers/create HTTP/1.1\r\nHost: gate\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        conn.write_all(&body)
            .await
            .expect("the gate reads the body before it answers");
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        assert!(answer.contains("rule \\\"calls\\\""), "{answer}");
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gate/docker.sock");
        drop(bind_unix(&path).unwrap());
        let again = bind_unix(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        drop(again);
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let e = bind_unix(&file).unwrap_err();
        assert!(e.to_string().contains("not a socket"), "{e}");
    }
}
