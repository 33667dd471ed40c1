//! An HTTP client of nfsd's control API, for the volume plugin and the CLI. Every call has a
//! timeout; errors say which URL failed and why, and carry the API's own error kind and message.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::{
    ApiError, CreateVolume, ErrorKind, Health, Purged, Removed, ShareDir, ShareDirInfo, Volume,
    VolumeList,
};

/// Why a control API call failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// no connection
    #[error(
        "nfsd control API at {url} is unreachable: {cause}; check that nfsd runs and the address and port are right"
    )]
    Unreachable { url: String, cause: String },
    /// no answer in time
    #[error("nfsd control API at {url} did not answer within {after:?}")]
    Timeout { url: String, after: Duration },
    /// the API answered with an error
    #[error("nfsd refused {what}: {error}")]
    Api {
        what: String,
        status: u16,
        kind: ErrorKind,
        error: String,
    },
    /// the answer was not what the API promises
    #[error("nfsd control API at {url} answered {status} with an unexpected body: {cause}")]
    Protocol {
        url: String,
        status: u16,
        cause: String,
    },
}

impl ClientError {
    /// The API's error kind when the API itself refused.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            ClientError::Api { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

/// A client for one nfsd.
#[derive(Clone)]
pub struct ControlClient {
    base: String,
    token: String,
    timeout: Duration,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for ControlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlClient")
            .field("base", &self.base)
            .finish()
    }
}

impl ControlClient {
    /// `base` is `http://host:port`; `token` the bearer token.
    pub fn new(base: impl Into<String>, token: impl Into<String>, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout.min(Duration::from_secs(5))));
        Self {
            base: base.into().trim_end_matches('/').to_string(),
            token: token.into(),
            timeout,
            http: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        what: &str,
    ) -> Result<(StatusCode, T), ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = Request::builder()
            .method(method)
            .uri(&url)
            .header("authorization", format!("Bearer {}", self.token));
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Unreachable {
                url: url.clone(),
                cause: e.to_string(),
            })?;
        let fut = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| ClientError::Unreachable {
                    url: url.clone(),
                    cause: error_chain(&e),
                })?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| ClientError::Unreachable {
                    url: url.clone(),
                    cause: e.to_string(),
                })?
                .to_bytes();
            Ok::<_, ClientError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| ClientError::Timeout {
                url: url.clone(),
                after: self.timeout,
            })??;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ApiError>(&bytes) {
                Ok(e) => ClientError::Api {
                    what: what.to_string(),
                    status: status.as_u16(),
                    kind: e.kind,
                    error: e.error,
                },
                Err(e) => ClientError::Protocol {
                    url,
                    status: status.as_u16(),
                    cause: format!("{e}: {}", String::from_utf8_lossy(&bytes)),
                },
            });
        }
        let value = serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
            url,
            status: status.as_u16(),
            cause: e.to_string(),
        })?;
        Ok((status, value))
    }

    /// `GET /v1/health`.
    pub async fn health(&self) -> Result<Health, ClientError> {
        Ok(self
            .call(Method::GET, "/v1/health", None, "the health check")
            .await?
            .1)
    }

    /// `POST /v1/volumes`: create or ensure.
    pub async fn create(&self, req: &CreateVolume) -> Result<Volume, ClientError> {
        Ok(self.ensure(req).await?.0)
    }

    /// `POST /v1/volumes`, telling whether nfsd created the volume (`true`, 201) or had it with
    /// the same settings already (`false`, 200).
    pub async fn ensure(&self, req: &CreateVolume) -> Result<(Volume, bool), ClientError> {
        let body = serde_json::to_vec(req).expect("serialising a request cannot fail");
        let what = format!("volume {:?}", req.name);
        let (status, v) = self
            .call(Method::POST, "/v1/volumes", Some(body), &what)
            .await?;
        Ok((v, status == StatusCode::CREATED))
    }

    /// `GET /v1/volumes/{name}`; `None` when nfsd has no such volume.
    pub async fn get(&self, name: &str) -> Result<Option<Volume>, ClientError> {
        let what = format!("volume {name:?}");
        match self
            .call(Method::GET, &format!("/v1/volumes/{name}"), None, &what)
            .await
        {
            Ok((_, v)) => Ok(Some(v)),
            Err(ClientError::Api {
                kind: ErrorKind::NotFound,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v1/volumes`.
    pub async fn list(&self) -> Result<Vec<Volume>, ClientError> {
        let (_, l): (_, VolumeList) = self
            .call(Method::GET, "/v1/volumes", None, "the volume list")
            .await?;
        Ok(l.volumes)
    }

    /// `DELETE /v1/volumes/{name}`: nfsd moves the tree aside (nothing is deleted yet).
    pub async fn remove(&self, name: &str) -> Result<Removed, ClientError> {
        let what = format!("volume {name:?}");
        Ok(self
            .call(Method::DELETE, &format!("/v1/volumes/{name}"), None, &what)
            .await?
            .1)
    }

    /// `PUT /v1/shares/{share}/dirs/{name}`: make sure a top-level directory of a shared tree
    /// (a course in the exchange) exists, owned by the user of `req` with its mode.
    pub async fn ensure_share_dir(
        &self,
        share: &str,
        name: &str,
        req: &ShareDir,
    ) -> Result<ShareDirInfo, ClientError> {
        let body = serde_json::to_vec(req).expect("serialising a request cannot fail");
        let what = format!("share directory {share:?}/{name:?}");
        let path = format!("/v1/shares/{share}/dirs/{name}");
        Ok(self.call(Method::PUT, &path, Some(body), &what).await?.1)
    }

    /// `DELETE /v1/removed/{entry}`: delete a tree that a removal moved aside, for good.
    pub async fn purge(&self, entry: &str) -> Result<Purged, ClientError> {
        let what = format!("removed tree {entry:?}");
        Ok(self
            .call(Method::DELETE, &format!("/v1/removed/{entry}"), None, &what)
            .await?
            .1)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
