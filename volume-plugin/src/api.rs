//! The plugin's HTTP endpoints on its unix socket: `/Plugin.Activate` and `/VolumeDriver.*`,
//! each parsing Docker's JSON, calling the [`Driver`], and answering `{"Err": ...}` on failure.
//! Bodies are small; anything over 64 KiB or not JSON is an `Err` reply, never a crash.
//! dockerd sends its JSON without a `Content-Type` header (only `Accept:
//! application/vnd.docker.plugins.v1.2+json`), so bodies are parsed whatever the header says.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use axum::{Json, Router};

use crate::driver::{Driver, Provisioner};
use crate::protocol::*;

type St<P> = State<Arc<Driver<P>>>;

/// Parses a request body as JSON, with or without a content type.
fn body<T: serde::de::DeserializeOwned>(bytes: Bytes) -> Result<T, String> {
    serde_json::from_slice(&bytes).map_err(|e| format!("malformed request from dockerd: {e}"))
}

/// The router Docker talks to.
pub fn router<P: Provisioner>(driver: Arc<Driver<P>>) -> Router {
    Router::new()
        .route("/Plugin.Activate", post(activate))
        .route("/VolumeDriver.Create", post(create::<P>))
        .route("/VolumeDriver.Remove", post(remove::<P>))
        .route("/VolumeDriver.Mount", post(mount::<P>))
        .route("/VolumeDriver.Unmount", post(unmount::<P>))
        .route("/VolumeDriver.Path", post(path::<P>))
        .route("/VolumeDriver.Get", post(get::<P>))
        .route("/VolumeDriver.List", post(list::<P>))
        .route("/VolumeDriver.Capabilities", post(capabilities))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(driver)
}

async fn activate() -> Json<ActivateResponse> {
    Json(ActivateResponse {
        implements: vec!["VolumeDriver".into()],
    })
}

fn err(r: Result<(), String>) -> Json<ErrResponse> {
    Json(ErrResponse {
        err: r.err().unwrap_or_default(),
    })
}

async fn create<P: Provisioner>(State(d): St<P>, req: Bytes) -> Json<ErrResponse> {
    let r = match body::<CreateRequest>(req) {
        Ok(req) => d.create(&req.name, &req.opts.unwrap_or_default()).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &r {
        tracing::warn!("VolumeDriver.Create refused: {e}");
    }
    err(r)
}

async fn remove<P: Provisioner>(State(d): St<P>, req: Bytes) -> Json<ErrResponse> {
    err(match body::<NameRequest>(req) {
        Ok(req) => d.remove(&req.name).await,
        Err(e) => Err(e),
    })
}

async fn mount<P: Provisioner>(State(d): St<P>, req: Bytes) -> Json<MountResponse> {
    match body::<MountRequest>(req) {
        Ok(req) => match d.mount(&req.name, &req.id).await {
            Ok(mountpoint) => Json(MountResponse {
                mountpoint,
                err: String::new(),
            }),
            Err(err) => Json(MountResponse {
                mountpoint: String::new(),
                err,
            }),
        },
        Err(err) => Json(MountResponse {
            mountpoint: String::new(),
            err,
        }),
    }
}

async fn unmount<P: Provisioner>(State(d): St<P>, req: Bytes) -> Json<ErrResponse> {
    err(match body::<MountRequest>(req) {
        Ok(req) => d.unmount(&req.name, &req.id).await,
        Err(e) => Err(e),
    })
}

async fn path<P: Provisioner>(State(d): St<P>, req: Bytes) -> Json<MountResponse> {
    match body::<NameRequest>(req).and_then(|r| d.path(&r.name)) {
        Ok(mountpoint) => Json(MountResponse {
            mountpoint,
            err: String::new(),
        }),
        Err(err) => Json(MountResponse {
            mountpoint: String::new(),
            err,
        }),
    }
}

async fn get<P: Provisioner>(State(d): St<P>, req: Bytes) -> Json<GetResponse> {
    match body::<NameRequest>(req).and_then(|r| d.get(&r.name)) {
        Ok(v) => Json(GetResponse {
            volume: Some(v),
            err: String::new(),
        }),
        Err(err) => Json(GetResponse { volume: None, err }),
    }
}

async fn list<P: Provisioner>(State(d): St<P>) -> Json<ListResponse> {
    Json(ListResponse {
        volumes: d.list(),
        err: String::new(),
    })
}

async fn capabilities() -> Json<CapabilitiesResponse> {
    Json(CapabilitiesResponse {
        capabilities: Capabilities {
            scope: "global".into(),
        },
    })
}
