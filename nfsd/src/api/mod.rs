//! The HTTP control API (`/v1/...`, JSON; endpoint table in `swarmhub_control_api::wire`).
//! Parse → act on [`Volumes`] → typed reply; every failure is an [`ApiError`] body whose status
//! matches its kind. Volume and share endpoints need `Authorization: Bearer <token>`; `/v1/health` and
//! `/metrics` do not (they reveal counts, never names or secrets). Bodies are capped at 64 KiB.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use swarmhub_control_api::{
    ApiError, CreateVolume, ErrorKind, Health, Purged, RemovedList, ShareDir, ShareDirInfo, Volume,
    VolumeList,
};

use crate::metrics::Metrics;
use crate::volumes::{VolumeError, Volumes};

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub volumes: Arc<Volumes>,
    pub metrics: Arc<Metrics>,
    pub token: Arc<str>,
    pub nfs_listen: String,
    pub started: Instant,
}

/// An error reply.
pub struct Failure(ApiError);

impl Failure {
    pub fn new(kind: ErrorKind, error: impl Into<String>) -> Self {
        Self(ApiError {
            kind,
            error: error.into(),
        })
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %self.0.error, "control API request failed");
        }
        (status, Json(self.0)).into_response()
    }
}

impl From<VolumeError> for Failure {
    fn from(e: VolumeError) -> Self {
        Failure::new(e.kind(), e.to_string())
    }
}

impl From<JsonRejection> for Failure {
    fn from(r: JsonRejection) -> Self {
        let kind = if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ErrorKind::TooLarge
        } else {
            ErrorKind::Invalid
        };
        Failure::new(kind, format!("request body: {}", r.body_text()))
    }
}

/// The router with all endpoints.
pub fn router(state: ApiState) -> Router {
    let protected = Router::new()
        .route("/v1/volumes", get(list).post(create))
        .route("/v1/volumes/{name}", get(get_one).delete(remove))
        .route("/v1/removed", get(removed))
        .route("/v1/removed/{entry}", delete(purge))
        .route("/v1/shares/{share}/dirs/{name}", put(share_dir))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .route("/v1/health", get(health))
        .route("/metrics", get(metrics))
        .merge(protected)
        .fallback(|| async {
            Failure::new(
                ErrorKind::NotFound,
                "no such endpoint; see the README for the control API",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn auth(
    State(st): State<ApiState>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token);
    match given {
        None => Failure::new(
            ErrorKind::Unauthorized,
            "missing bearer token: send 'Authorization: Bearer <token>' with the token from nfsd's token file",
        )
        .into_response(),
        Some(t) if !constant_time_eq::constant_time_eq(t.trim().as_bytes(), st.token.as_bytes()) => Failure::new(
            ErrorKind::Unauthorized,
            "wrong bearer token: use the token from nfsd's token file",
        )
        .into_response(),
        Some(_) => next.run(req).await,
    }
}

async fn health(State(st): State<ApiState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        volumes: st.volumes.count(),
        nfs_listen: st.nfs_listen.clone(),
        uptime_seconds: st.started.elapsed().as_secs(),
    })
}

async fn metrics(State(st): State<ApiState>) -> impl IntoResponse {
    let volumes = i64::try_from(st.volumes.count()).unwrap_or(i64::MAX);
    st.metrics.volumes.set(volumes);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.encode(),
    )
}

async fn list(State(st): State<ApiState>) -> Json<VolumeList> {
    Json(VolumeList {
        volumes: st.volumes.list(),
    })
}

async fn create(
    State(st): State<ApiState>,
    body: Result<Json<CreateVolume>, JsonRejection>,
) -> Result<(StatusCode, Json<Volume>), Failure> {
    let Json(req) = body?;
    let (vol, created) = st.volumes.create(req).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(vol)))
}

async fn get_one(
    State(st): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<Volume>, Failure> {
    Ok(Json(st.volumes.get(&name)?))
}

async fn remove(
    State(st): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<swarmhub_control_api::Removed>, Failure> {
    Ok(Json(st.volumes.remove(&name).await?))
}

async fn removed(State(st): State<ApiState>) -> Result<Json<RemovedList>, Failure> {
    Ok(Json(RemovedList {
        removed: st.volumes.removed()?,
    }))
}

async fn purge(
    State(st): State<ApiState>,
    Path(entry): Path<String>,
) -> Result<Json<Purged>, Failure> {
    st.volumes.purge(&entry).await?;
    Ok(Json(Purged { entry }))
}

async fn share_dir(
    State(st): State<ApiState>,
    Path((share, name)): Path<(String, String)>,
    body: Result<Json<ShareDir>, JsonRejection>,
) -> Result<(StatusCode, Json<ShareDirInfo>), Failure> {
    let Json(req) = body?;
    let dir = st.volumes.ensure_share_dir(&share, &name, req).await?;
    let status = if dir.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(dir)))
}
