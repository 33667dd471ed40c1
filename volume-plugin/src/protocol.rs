//! Docker's volume plugin protocol (JSON over HTTP on a unix socket), as dockerd speaks it:
//! request and response bodies of `/Plugin.Activate` and `/VolumeDriver.*`. Field names are
//! Docker's (PascalCase); `Opts` may be `null`. Errors travel as `{"Err": "..."}` with status 200,
//! and users read them as `VolumeDriver.<Call>: <Err>`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `/VolumeDriver.Create`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRequest {
    pub name: String,
    #[serde(default)]
    pub opts: Option<BTreeMap<String, String>>,
}

/// `/VolumeDriver.Remove`, `.Path`, `.Get`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NameRequest {
    pub name: String,
}

/// `/VolumeDriver.Mount` and `.Unmount`: `ID` is per container mount point and may repeat.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountRequest {
    pub name: String,
    #[serde(rename = "ID", default)]
    pub id: String,
}

/// A reply that carries only an error (empty when none).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ErrResponse {
    pub err: String,
}

/// `/VolumeDriver.Mount` and `.Path`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct MountResponse {
    pub mountpoint: String,
    pub err: String,
}

/// A volume in `Get` and `List`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mountpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<BTreeMap<String, serde_json::Value>>,
}

/// `/VolumeDriver.Get`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct GetResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeInfo>,
    pub err: String,
}

/// `/VolumeDriver.List`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ListResponse {
    pub volumes: Vec<VolumeInfo>,
    pub err: String,
}

/// `/VolumeDriver.Capabilities`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct CapabilitiesResponse {
    pub capabilities: Capabilities,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Capabilities {
    /// `global`: the same volume name means the same data on every node.
    pub scope: String,
}

/// `/Plugin.Activate`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ActivateResponse {
    pub implements: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_shapes() {
        let c: CreateRequest = serde_json::from_str(r#"{"Name":"v","Opts":null}"#).unwrap();
        assert!(c.opts.is_none());
        let m: MountRequest = serde_json::from_str(r#"{"Name":"v","ID":"abc"}"#).unwrap();
        assert_eq!(m.id, "abc");
        let g = serde_json::to_string(&GetResponse {
            volume: None,
            err: "no such volume".into(),
        })
        .unwrap();
        assert_eq!(g, r#"{"Err":"no such volume"}"#);
    }
}
