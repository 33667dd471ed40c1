//! The way to dockerd: one trait, [`Upstream`], with the real implementation over dockerd's
//! unix socket ([`DockerSocket`]), and the reads the gate makes for itself before it decides
//! ([`get_json`]: a service's or a task's labels, the notebook network's id).

use std::future::Future;
use std::path::PathBuf;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use hyperlocal::{UnixConnector, Uri};
use serde::de::DeserializeOwned;

/// dockerd could not be asked, or its answer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The request did not reach dockerd or its answer broke off.
    #[error("dockerd at {socket} did not answer {what}: {cause}")]
    Unreachable {
        socket: String,
        what: String,
        cause: String,
    },
    /// dockerd answered with something the gate could not decode.
    #[error("dockerd's answer to {what} is not what the gate expected: {cause}")]
    Garbled { what: String, cause: String },
}

/// A request to dockerd: method, the path and query written by [`crate::route`], the headers to
/// pass on and the body.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    /// The method.
    pub method: Method,
    /// Path and query (`/v1.41/services/ID`).
    pub path: String,
    /// Headers passed on (`Content-Type`, `X-Registry-Auth`).
    pub headers: HeaderMap,
    /// The body (empty for reads).
    pub body: Bytes,
}

impl UpstreamRequest {
    /// A `GET` of `path` with no body.
    pub fn get(path: String) -> UpstreamRequest {
        UpstreamRequest {
            method: Method::GET,
            path,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }
}

/// Something that answers Docker Engine API requests: dockerd, or a test's stand-in.
pub trait Upstream: Send + Sync + 'static {
    /// Send `req`; the answer's body streams (a service's logs with `follow`).
    fn send(
        &self,
        req: UpstreamRequest,
    ) -> impl Future<Output = Result<Response<Body>, UpstreamError>> + Send;
}

/// dockerd's unix socket.
#[derive(Debug, Clone)]
pub struct DockerSocket {
    socket: PathBuf,
    client: Client<UnixConnector, Full<Bytes>>,
}

impl DockerSocket {
    /// dockerd at `socket` (connected per request; nothing is checked here).
    pub fn new(socket: PathBuf) -> DockerSocket {
        DockerSocket {
            socket,
            client: Client::builder(TokioExecutor::new()).build(UnixConnector),
        }
    }
}

impl Upstream for DockerSocket {
    async fn send(&self, req: UpstreamRequest) -> Result<Response<Body>, UpstreamError> {
        let what = format!("{} {}", req.method, req.path);
        let unreachable = |cause: String| UpstreamError::Unreachable {
            socket: self.socket.display().to_string(),
            what: what.clone(),
            cause,
        };
        let mut builder = Request::builder()
            .method(req.method.clone())
            .uri(Uri::new(&self.socket, &req.path));
        for (k, v) in &req.headers {
            builder = builder.header(k, v);
        }
        let request = builder
            .body(Full::new(req.body))
            .map_err(|e| unreachable(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(response.map(Body::new))
    }
}

/// What dockerd said to a read the gate made for itself.
#[derive(Debug)]
pub enum Lookup<T> {
    /// 200 with this object.
    Found(T, Bytes),
    /// Any other status, with dockerd's body (404: no such object).
    Answered(StatusCode, Bytes),
}

/// `GET path`, decoded as `T` when dockerd answers 200.
pub async fn get_json<U: Upstream, T: DeserializeOwned>(
    up: &U,
    path: String,
) -> Result<Lookup<T>, UpstreamError> {
    let what = format!("GET {path}");
    let response = up.send(UpstreamRequest::get(path)).await?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| UpstreamError::Garbled {
            what: what.clone(),
            cause: e.to_string(),
        })?
        .to_bytes();
    if status != StatusCode::OK {
        return Ok(Lookup::Answered(status, bytes));
    }
    let value = serde_json::from_slice(&bytes).map_err(|e| UpstreamError::Garbled {
        what,
        cause: e.to_string(),
    })?;
    Ok(Lookup::Found(value, bytes))
}
