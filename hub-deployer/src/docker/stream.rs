//! Docker calls bollard's client cannot make as dockerd needs them, each one request over its
//! own connection to the dockerd at `host` (`unix:///path` or `tcp://host:port`), its answer
//! read to the end:
//! - `POST /plugins/{name}/push`: bollard returns at the response's headers and drops the
//!   stream of progress lines, which makes dockerd cancel the push; here an
//!   `error`/`errorDetail` line is the push's failure;
//! - `GET /plugins/privileges` with a registry login: bollard sends none there, and a
//!   registry that wants one refuses to show the plugin's config.

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::Connect;
use hyper_util::rt::TokioExecutor;
use hyperlocal::UnixClientExt;

use bollard::models::PluginPrivilege;

use super::engine::{EngineError, RegistryLogin};

/// The `X-Registry-Auth` header of a login (base64url of Docker's auth JSON).
pub fn registry_auth(login: &RegistryLogin) -> String {
    let json = serde_json::json!({
        "username": login.username.clone().unwrap_or_default(),
        "password": login.password.clone().unwrap_or_default(),
        "serveraddress": login.server,
    });
    base64::engine::general_purpose::URL_SAFE.encode(json.to_string())
}

/// The failure a progress stream reports, if any (the first `errorDetail.message` or `error`).
pub fn stream_error(body: &str) -> Option<String> {
    body.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| {
            v["errorDetail"]["message"]
                .as_str()
                .or_else(|| v["error"].as_str())
                .map(str::to_string)
        })
}

/// `req` through `client`: the status and the whole body.
async fn send<C>(
    client: Client<C, Full<Bytes>>,
    req: hyper::Request<Full<Bytes>>,
) -> Result<(u16, Bytes), String>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((status, body.to_bytes()))
}

/// One request to the dockerd at `host`: its status and whole body.
async fn request(
    host: &str,
    method: hyper::Method,
    path: &str,
    login: Option<&RegistryLogin>,
) -> Result<(u16, String), EngineError> {
    let mut req = hyper::Request::builder().method(method);
    if let Some(l) = login {
        req = req.header("X-Registry-Auth", registry_auth(l));
    }
    let unreachable =
        |e: &dyn std::fmt::Display| EngineError::Unreachable(format!("dockerd at {host}: {e}"));
    let (status, body) = if let Some(socket) = host.strip_prefix("unix://") {
        let uri: hyper::Uri = hyperlocal::Uri::new(socket, path).into();
        let req = req.uri(uri).body(Full::new(Bytes::new()));
        send(Client::unix(), req.map_err(|e| unreachable(&e))?).await
    } else {
        let addr = host
            .trim_start_matches("tcp://")
            .trim_start_matches("http://");
        let uri: hyper::Uri = format!("http://{addr}{path}")
            .parse()
            .map_err(|e| unreachable(&e))?;
        let req = req.uri(uri).body(Full::new(Bytes::new()));
        let client = Client::builder(TokioExecutor::new()).build_http();
        send(client, req.map_err(|e| unreachable(&e))?).await
    }
    .map_err(|e| unreachable(&e))?;
    let text = String::from_utf8_lossy(&body).into_owned();
    if status != 200 {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| text.trim().to_string());
        return Err(match status {
            404 => EngineError::NotFound(message),
            409 => EngineError::Conflict(message),
            _ => EngineError::Other { status, message },
        });
    }
    Ok((status, text))
}

/// Push the plugin `name` through the dockerd at `host`, reading its progress to the end.
pub async fn push_plugin(
    host: &str,
    name: &str,
    login: Option<&RegistryLogin>,
) -> Result<(), EngineError> {
    let path = format!("/plugins/{name}/push");
    let (_, text) = request(host, hyper::Method::POST, &path, login).await?;
    match stream_error(&text) {
        Some(message) => Err(EngineError::Other {
            status: 500,
            message,
        }),
        None => Ok(()),
    }
}

/// The privileges the plugin `remote` asks for, read from its registry with `login`.
pub async fn plugin_privileges(
    host: &str,
    remote: &str,
    login: &RegistryLogin,
) -> Result<Vec<PluginPrivilege>, EngineError> {
    let query: String = url::form_urlencoded::byte_serialize(remote.as_bytes()).collect();
    let path = format!("/plugins/privileges?remote={query}");
    let (_, text) = request(host, hyper::Method::GET, &path, Some(login)).await?;
    serde_json::from_str(&text).map_err(|e| EngineError::Other {
        status: 502,
        message: format!("dockerd's privileges of {remote} are not what it documents: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_errors_are_found_and_logins_encoded() {
        let ok = "{\"status\":\"Preparing\"}\n{\"aux\":{\"Tag\":\"1\"}}\n";
        assert_eq!(stream_error(ok), None);
        let bad = "{\"status\":\"Preparing\"}\n{\"errorDetail\":{\"message\":\"denied\"},\"error\":\"denied!\"}\n";
        assert_eq!(stream_error(bad).as_deref(), Some("denied"));
        assert_eq!(
            stream_error("{\"error\":\"no route\"}").as_deref(),
            Some("no route")
        );
        let h = registry_auth(&RegistryLogin {
            server: "r:5000".into(),
            username: Some("ann".into()),
            password: Some("pw".into()),
        });
        let json = base64::engine::general_purpose::URL_SAFE.decode(h).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["username"], "ann");
        assert_eq!(v["serveraddress"], "r:5000");
    }

    #[tokio::test]
    async fn an_unreachable_dockerd_is_named() {
        let e = push_plugin("unix:///nonexistent/docker.sock", "r:5000/p:1", None)
            .await
            .unwrap_err();
        assert!(matches!(e, EngineError::Unreachable(_)), "{e}");
        assert!(e.to_string().contains("/nonexistent/docker.sock"), "{e}");
        let login = RegistryLogin::default();
        let e = plugin_privileges("unix:///nonexistent/docker.sock", "r:5000/p:1", &login)
            .await
            .unwrap_err();
        assert!(matches!(e, EngineError::Unreachable(_)), "{e}");
    }
}
