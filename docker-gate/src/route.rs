//! Which Docker Engine API call a request is, decided from its method, path and query alone,
//! before anything reaches dockerd: one of the few calls SwarmSpawner and the idle culler make,
//! or a [`Refusal`] naming the rule.
//!
//! Nothing of the client's path is forwarded as it came: [`Call::upstream_path`] writes the
//! path and query again from the parsed parts (ids checked against Docker's own alphabet,
//! query parameters one by one), so a path that dockerd would read differently from the gate
//! (`..`, `//`, `%2F`, a second `?`) is refused here instead of being interpreted there.

use std::collections::BTreeMap;
use std::fmt;

use axum::http::Method;

/// Why the gate refuses a request: the rule and what in the request broke it. Answered as HTTP
/// 403 with Docker's error body, so docker-py raises it with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("swarmhub-docker-gate refused this call by rule \"{rule}\": {detail}")]
pub struct Refusal {
    /// Short name of the rule (`calls`, `mounts`, `image`, ...).
    pub rule: &'static str,
    /// What in the request broke it, and what would be allowed.
    pub detail: String,
}

impl Refusal {
    /// A refusal by `rule` with `detail`.
    pub fn new(rule: &'static str, detail: impl Into<String>) -> Refusal {
        Refusal {
            rule,
            detail: detail.into(),
        }
    }
}

/// The calls the gate knows. Ids are as the client gave them (checked to be names or ids, not
/// paths); the server resolves service ids before it acts on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `GET|HEAD /_ping`
    Ping,
    /// `GET /version` (docker-py's `version="auto"`)
    Version,
    /// `GET /nodes`
    NodeList { filters: Option<String> },
    /// `GET /nodes/{id}`
    NodeInspect { id: String },
    /// `GET /networks`
    NetworkList { filters: Option<String> },
    /// `GET /networks/{id}`
    NetworkInspect { id: String },
    /// `POST /services/create` (body: a service spec)
    ServiceCreate,
    /// `GET /services/{id}`
    ServiceInspect { id: String, insert_defaults: bool },
    /// `POST /services/{id}/update?version=N` (body: a service spec)
    ServiceUpdate { id: String, version: u64 },
    /// `DELETE /services/{id}`
    ServiceRemove { id: String },
    /// `GET /services/{id}/logs`
    ServiceLogs {
        id: String,
        params: BTreeMap<&'static str, String>,
    },
    /// `GET /tasks?filters=...` with a `service` filter
    TaskList { filters: TaskFilters },
    /// `GET /tasks/{id}`
    TaskInspect { id: String },
}

/// The filters of a task list: the services (required) and the others Docker offers that only
/// narrow a list of the same services' tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilters {
    /// `service`: names or ids, at least one.
    pub services: Vec<String>,
    /// `desired-state`, `id`, `node`, `name`: passed on as given.
    pub others: BTreeMap<String, Vec<String>>,
}

/// Task filters other than `service` that a list may carry.
const TASK_FILTERS: &[&str] = &["desired-state", "id", "node", "name"];

/// Query parameters of a service's logs (Docker's names).
const LOG_PARAMS: &[&str] = &[
    "details",
    "follow",
    "stdout",
    "stderr",
    "since",
    "timestamps",
    "tail",
];

/// The longest id or name in a path segment.
const MAX_ID: usize = 128;

/// A request as routed: the API version prefix it used (`v1.41`), kept so dockerd answers in
/// the version the client negotiated, and the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// `1.41` from `/v1.41/...`; `None`: an unversioned path.
    pub version: Option<String>,
    /// What is asked.
    pub call: Call,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Call::Ping => "ping",
            Call::Version => "version",
            Call::NodeList { .. } => "node list",
            Call::NodeInspect { .. } => "node inspect",
            Call::NetworkList { .. } => "network list",
            Call::NetworkInspect { .. } => "network inspect",
            Call::ServiceCreate => "service create",
            Call::ServiceInspect { .. } => "service inspect",
            Call::ServiceUpdate { .. } => "service update",
            Call::ServiceRemove { .. } => "service remove",
            Call::ServiceLogs { .. } => "service logs",
            Call::TaskList { .. } => "task list",
            Call::TaskInspect { .. } => "task inspect",
        };
        f.write_str(s)
    }
}

/// Route one request. `path` is the request's path as sent (percent-encoded), `query` its query
/// string without the `?`.
pub fn route(method: &Method, path: &str, query: Option<&str>) -> Result<Routed, Refusal> {
    let (version, rest) = split_version(path)?;
    let segments: Vec<&str> = rest.split('/').skip(1).collect();
    let params = parse_query(query)?;
    let call = match (method.as_str(), segments.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => no_params(Call::Ping, &params)?,
        ("GET", ["version"]) => no_params(Call::Version, &params)?,
        ("GET", ["nodes"]) => Call::NodeList {
            filters: only_filters(&params)?,
        },
        ("GET", ["nodes", id]) => no_params(Call::NodeInspect { id: id_of(id)? }, &params)?,
        ("GET", ["networks"]) => Call::NetworkList {
            filters: only_filters(&params)?,
        },
        ("GET", ["networks", id]) => {
            // docker-py may ask for verbose/scope; neither reveals more than the list
            allowed_params(&params, &["verbose", "scope"])?;
            Call::NetworkInspect { id: id_of(id)? }
        }
        ("POST", ["services", "create"]) => no_params(Call::ServiceCreate, &params)?,
        ("GET", ["services", id]) => {
            allowed_params(&params, &["insertDefaults"])?;
            Call::ServiceInspect {
                id: id_of(id)?,
                insert_defaults: params.get("insertDefaults").is_some_and(|v| truthy(v)),
            }
        }
        ("POST", ["services", id, "update"]) => {
            allowed_params(&params, &["version"])?;
            let version = params
                .get("version")
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| {
                    Refusal::new(
                        "query",
                        "a service update needs version=<the service's Version.Index>",
                    )
                })?;
            Call::ServiceUpdate {
                id: id_of(id)?,
                version,
            }
        }
        ("DELETE", ["services", id]) => no_params(Call::ServiceRemove { id: id_of(id)? }, &params)?,
        ("GET", ["services", id, "logs"]) => {
            allowed_params(&params, LOG_PARAMS)?;
            Call::ServiceLogs {
                id: id_of(id)?,
                params: LOG_PARAMS
                    .iter()
                    .filter_map(|k| params.get(*k).map(|v| (*k, v.clone())))
                    .collect(),
            }
        }
        ("GET", ["tasks"]) => {
            allowed_params(&params, &["filters"])?;
            Call::TaskList {
                filters: task_filters(params.get("filters").map(String::as_str))?,
            }
        }
        ("GET", ["tasks", id]) => no_params(Call::TaskInspect { id: id_of(id)? }, &params)?,
        _ => {
            return Err(Refusal::new(
                "calls",
                format!(
                    "{method} {rest} is not one of the calls the hub may make (it may create, \
                     read, update and remove notebook services, read their tasks and logs, \
                     and read nodes, networks and the Docker version)"
                ),
            ));
        }
    };
    Ok(Routed { version, call })
}

impl Routed {
    /// `/v1.41` for a versioned request, empty for an unversioned one.
    pub fn version_prefix(&self) -> String {
        self.version
            .as_ref()
            .map(|v| format!("/v{v}"))
            .unwrap_or_default()
    }

    /// The path and query this call is forwarded with, written from the parsed parts. `id` is
    /// the resolved id to use for the call's object (a service's or task's full id), if any.
    pub fn upstream_path(&self, id: Option<&str>) -> String {
        let prefix = self.version_prefix();
        let id_or = |given: &str| id.unwrap_or(given).to_string();
        let (path, query): (String, Vec<(String, String)>) = match &self.call {
            Call::Ping => ("/_ping".into(), vec![]),
            Call::Version => ("/version".into(), vec![]),
            Call::NodeList { filters } => ("/nodes".into(), filters_param(filters)),
            Call::NodeInspect { id: given } => (format!("/nodes/{}", id_or(given)), vec![]),
            Call::NetworkList { filters } => ("/networks".into(), filters_param(filters)),
            Call::NetworkInspect { id: given } => (format!("/networks/{}", id_or(given)), vec![]),
            Call::ServiceCreate => ("/services/create".into(), vec![]),
            Call::ServiceInspect {
                id: given,
                insert_defaults,
            } => (
                format!("/services/{}", id_or(given)),
                if *insert_defaults {
                    vec![("insertDefaults".into(), "true".into())]
                } else {
                    vec![]
                },
            ),
            Call::ServiceUpdate { id: given, version } => (
                format!("/services/{}/update", id_or(given)),
                vec![("version".into(), version.to_string())],
            ),
            Call::ServiceRemove { id: given } => (format!("/services/{}", id_or(given)), vec![]),
            Call::ServiceLogs { id: given, params } => (
                format!("/services/{}/logs", id_or(given)),
                params
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), v.clone()))
                    .collect(),
            ),
            Call::TaskList { filters } => {
                ("/tasks".into(), vec![("filters".into(), filters.to_json())])
            }
            Call::TaskInspect { id: given } => (format!("/tasks/{}", id_or(given)), vec![]),
        };
        let mut out = format!("{prefix}{path}");
        if !query.is_empty() {
            out.push('?');
            out.push_str(
                &form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(query)
                    .finish(),
            );
        }
        out
    }
}

impl TaskFilters {
    /// The filters as Docker's JSON (`{"service":["..."],...}`).
    pub fn to_json(&self) -> String {
        let mut all: BTreeMap<&str, &Vec<String>> =
            self.others.iter().map(|(k, v)| (k.as_str(), v)).collect();
        all.insert("service", &self.services);
        serde_json::to_string(&all).unwrap_or_default()
    }
}

fn filters_param(filters: &Option<String>) -> Vec<(String, String)> {
    filters
        .as_ref()
        .map(|f| vec![("filters".to_string(), f.clone())])
        .unwrap_or_default()
}

/// `/v1.41/services` → (`1.41`, `/services`); `/services` → (None, `/services`).
fn split_version(path: &str) -> Result<(Option<String>, &str), Refusal> {
    if !path.starts_with('/') || path.contains("//") || path.contains('%') {
        return Err(Refusal::new(
            "calls",
            format!("the path {path:?} is not a plain Docker API path"),
        ));
    }
    let first = path[1..].split('/').next().unwrap_or_default();
    if let Some(v) = first.strip_prefix('v')
        && let Some((major, minor)) = v.split_once('.')
        && !major.is_empty()
        && !minor.is_empty()
        && major.len() <= 3
        && minor.len() <= 3
        && major
            .bytes()
            .chain(minor.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Ok((Some(v.to_string()), &path[1 + first.len()..]));
    }
    Ok((None, path))
}

/// A path segment that is an id or a name (Docker's alphabet), never `.`/`..`.
fn id_of(seg: &str) -> Result<String, Refusal> {
    let ok = !seg.is_empty()
        && seg.len() <= MAX_ID
        && seg.as_bytes()[0].is_ascii_alphanumeric()
        && seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(seg.to_string())
    } else {
        Err(Refusal::new(
            "calls",
            format!("{seg:?} is not a Docker id or name"),
        ))
    }
}

fn parse_query(query: Option<&str>) -> Result<BTreeMap<String, String>, Refusal> {
    let mut out = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(Refusal::new(
                "query",
                format!("the query parameter {k:?} is given twice"),
            ));
        }
    }
    Ok(out)
}

fn allowed_params(params: &BTreeMap<String, String>, allowed: &[&str]) -> Result<(), Refusal> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(Refusal::new(
            "query",
            format!(
                "the query parameter {k:?} is not allowed here (allowed: {})",
                if allowed.is_empty() {
                    "none".to_string()
                } else {
                    allowed.join(", ")
                }
            ),
        )),
    }
}

fn no_params(call: Call, params: &BTreeMap<String, String>) -> Result<Call, Refusal> {
    allowed_params(params, &[])?;
    Ok(call)
}

fn only_filters(params: &BTreeMap<String, String>) -> Result<Option<String>, Refusal> {
    allowed_params(params, &["filters"])?;
    Ok(params.get("filters").cloned())
}

fn truthy(v: &str) -> bool {
    matches!(v, "1" | "true" | "True")
}

/// Docker's filters JSON in either form it accepts (`{"k":["v"]}` or `{"k":{"v":true}}`).
fn task_filters(raw: Option<&str>) -> Result<TaskFilters, Refusal> {
    let need = || {
        Refusal::new(
            "tasks",
            "a task list must be filtered by notebook service (filters={\"service\":[...]})",
        )
    };
    let raw = raw.ok_or_else(need)?;
    let value: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| Refusal::new("tasks", format!("the filters are not JSON: {e}")))?;
    let map = value
        .as_object()
        .ok_or_else(|| Refusal::new("tasks", "the filters are not a JSON object"))?;
    let mut out = TaskFilters::default();
    for (key, v) in map {
        let values: Vec<String> = match v {
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<_>>(),
            serde_json::Value::Object(o) => o
                .iter()
                .map(|(k, on)| (on.as_bool() == Some(true)).then(|| k.clone()))
                .collect::<Option<_>>(),
            _ => None,
        }
        .ok_or_else(|| {
            Refusal::new(
                "tasks",
                format!("the filter {key:?} is not a list of strings"),
            )
        })?;
        if key == "service" {
            out.services = values;
        } else if TASK_FILTERS.contains(&key.as_str()) {
            out.others.insert(key.clone(), values);
        } else {
            return Err(Refusal::new(
                "tasks",
                format!(
                    "the task filter {key:?} is not allowed (allowed: service, {})",
                    TASK_FILTERS.join(", ")
                ),
            ));
        }
    }
    if out.services.is_empty() {
        return Err(need());
    }
    for s in &out.services {
        id_of(s).map_err(|e| Refusal::new("tasks", e.detail))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, query: Option<&str>) -> Result<Routed, Refusal> {
        route(&Method::GET, path, query)
    }

    #[test]
    fn spawner_calls_route_with_and_without_a_version() {
        let r = get("/version", None).unwrap();
        assert_eq!((r.version, r.call), (None, Call::Version));
        let r = get(
            "/v1.41/services/jupyter-alice",
            Some("insertDefaults=false"),
        )
        .unwrap();
        assert_eq!(r.version.as_deref(), Some("1.41"));
        assert_eq!(
            r.call,
            Call::ServiceInspect {
                id: "jupyter-alice".into(),
                insert_defaults: false
            }
        );
        let r = route(&Method::POST, "/v1.41/services/create", None).unwrap();
        assert_eq!(r.call, Call::ServiceCreate);
        assert_eq!(r.upstream_path(None), "/v1.41/services/create");
        let r = route(&Method::DELETE, "/v1.41/services/abc123", None).unwrap();
        assert_eq!(
            r.upstream_path(Some("abc123full")),
            "/v1.41/services/abc123full"
        );
        let r = route(
            &Method::POST,
            "/v1.41/services/x/update",
            Some("version=17"),
        )
        .unwrap();
        assert_eq!(
            r.upstream_path(Some("xid")),
            "/v1.41/services/xid/update?version=17"
        );
    }

    #[test]
    fn task_lists_need_a_service_filter_in_either_json_form() {
        let q = "filters=%7B%22service%22%3A+%5B%22jupyter-alice%22%5D%2C+%22desired-state%22%3A+%5B%22running%22%5D%7D";
        let r = get("/v1.41/tasks", Some(q)).unwrap();
        let Call::TaskList { filters } = &r.call else {
            panic!("{r:?}")
        };
        assert_eq!(filters.services, ["jupyter-alice"]);
        assert_eq!(filters.others["desired-state"], ["running"]);
        let mut resolved = filters.clone();
        resolved.services = vec!["fullid".into()];
        assert_eq!(
            resolved.to_json(),
            r#"{"desired-state":["running"],"service":["fullid"]}"#
        );
        let legacy = get(
            "/tasks",
            Some("filters=%7B%22service%22%3A%7B%22s1%22%3Atrue%7D%7D"),
        )
        .unwrap();
        assert!(matches!(legacy.call, Call::TaskList { filters } if filters.services == ["s1"]));
        for q in [
            None,
            Some("filters=%7B%7D"),
            Some("filters=%7B%22label%22%3A%5B%22a%22%5D%2C%22service%22%3A%5B%22s%22%5D%7D"),
            Some("filters=%7B%22service%22%3A%5B%22..%2Fx%22%5D%7D"),
            Some("filters=not-json"),
        ] {
            let e = get("/v1.41/tasks", q).unwrap_err();
            assert_eq!(e.rule, "tasks", "{q:?}: {e}");
        }
    }

    #[test]
    fn everything_else_is_refused_by_the_calls_rule() {
        for (m, p) in [
            (Method::POST, "/v1.41/containers/create"),
            (Method::POST, "/containers/abc/exec"),
            (Method::POST, "/exec/abc/start"),
            (Method::GET, "/v1.41/secrets"),
            (Method::GET, "/v1.41/secrets/s1"),
            (Method::POST, "/v1.41/plugins/pull"),
            (Method::POST, "/v1.41/build"),
            (Method::GET, "/v1.41/services"),
            (Method::GET, "/v1.41/info"),
            (Method::POST, "/v1.41/swarm/leave"),
            (Method::POST, "/v1.41/nodes/n1/update"),
            (Method::GET, "/v1.41/configs"),
            (Method::POST, "/v1.41/volumes/create"),
            (Method::GET, "/v1.41/services/../secrets"),
            (Method::GET, "/v1.41/services/a%2F..%2F..%2Fsecrets"),
            (Method::GET, "//v1.41/version"),
            (Method::GET, "/v1.41//version"),
            (Method::GET, "/vX.41/version"),
            (Method::PUT, "/v1.41/services/create"),
            (Method::GET, "/v1.41/services/.hidden"),
        ] {
            let e = route(&m, p, None).unwrap_err();
            assert_eq!(e.rule, "calls", "{m} {p}: {e}");
        }
    }

    #[test]
    fn unknown_or_repeated_query_parameters_are_refused() {
        let e = route(&Method::DELETE, "/v1.41/services/s", Some("force=1")).unwrap_err();
        assert_eq!(e.rule, "query");
        assert!(e.detail.contains("force"), "{e}");
        let e = route(
            &Method::POST,
            "/v1.41/services/s/update",
            Some("version=1&rollback=previous"),
        )
        .unwrap_err();
        assert!(e.detail.contains("rollback"), "{e}");
        let e = route(&Method::POST, "/v1.41/services/s/update", None).unwrap_err();
        assert!(e.detail.contains("version="), "{e}");
        let e = get("/v1.41/tasks", Some("filters=a&filters=b")).unwrap_err();
        assert!(e.detail.contains("twice"), "{e}");
    }

    #[test]
    fn logs_keep_only_dockers_log_parameters() {
        let r = get(
            "/v1.41/services/jupyter-bob/logs",
            Some("stdout=1&stderr=1&tail=all&follow=0"),
        )
        .unwrap();
        assert_eq!(
            r.upstream_path(Some("ID")),
            "/v1.41/services/ID/logs?follow=0&stderr=1&stdout=1&tail=all"
        );
        assert_eq!(
            get("/v1.41/services/s/logs", Some("stdout=1&details=1&x=1"))
                .unwrap_err()
                .rule,
            "query"
        );
    }
}
