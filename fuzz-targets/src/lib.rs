//! What each fuzz target does with its bytes, in one place for both ways it runs: `fuzz/`
//! (cargo-fuzz, nightly, coverage-guided) calls these functions, and `tests/corpus.rs` replays
//! the kept corpus (`fuzz/corpus/<target>/`) through them on stable, so a regression fails CI
//! without the fuzzer. A target panics only on a bug: untrusted bytes must come back as an
//! error value, and the invariants asserted here (limits, round trips) must hold.
//!
//! Every input here crosses a trust boundary: RPC records and XDR from any NFS client, the
//! control API's and the plugin's JSON, volume names and options, MNT paths, `swarmhub.toml`,
//! and what a compromised hub sends the Docker gate.

use std::collections::BTreeMap;
use std::path::Path;

use nfs3_types::mount::dirpath;
use nfs3_types::nfs3::*;
use swarmhub_control_api::mount_path::{MountPath, public_export};
use swarmhub_control_api::names::{validate_share_name, validate_user_name, validate_volume_name};
use swarmhub_control_api::options::VolumeOptions;
use swarmhub_control_api::wire::{CreateVolume, ShareDir};
use swarmhub_nfsd::nfs::decode;
use swarmhub_nfsd::nfs::precheck::{mount_args_bounded, nfs_args_bounded};
use swarmhub_nfsd::rpc::message::parse_call;
use swarmhub_nfsd::rpc::record::read_record;

pub mod nfs_calls;
pub use nfs_calls::nfs_calls;

/// The largest record the fuzzed framing accepts (nfsd's cap is 1 MiB + 64 KiB; smaller here
/// keeps executions fast and reaches the same branches).
pub const RECORD_MAX: usize = 64 * 1024;

/// A target: bytes in, a panic only on a bug.
pub type Target = fn(&[u8]);

/// Every target, by the name of its corpus directory and cargo-fuzz binary.
pub const TARGETS: &[(&str, Target)] = &[
    ("rpc_record", rpc_record),
    ("rpc_call", rpc_call),
    ("control_api_bodies", control_api_bodies),
    ("plugin_bodies", plugin_bodies),
    ("volume_options", volume_options),
    ("mount_path", mount_path),
    ("swarmhub_toml", swarmhub_toml),
    ("gate_request", gate_request),
    ("nfs_calls", nfs_calls),
];

/// ONC RPC record marking: the bytes as a TCP stream, read record by record until the end or
/// an error; each record is then a call ([`rpc_call`]).
pub fn rpc_record(data: &[u8]) {
    thread_local! {
        static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
    }
    RT.with(|rt| {
        rt.block_on(async {
            let mut stream = data;
            while let Ok(Some(record)) = read_record(&mut stream, RECORD_MAX).await {
                assert!(record.len() <= RECORD_MAX, "a record over the cap");
                rpc_call(&record);
            }
        })
    });
}

/// A call's header (RFC 5531) and, for NFSv3 and MOUNTv3, its arguments as nfsd's dispatch
/// takes them: the bounds check of `nfs::precheck` first (nfs3_types allocates whatever length
/// a client announces), then the decode as the procedure's XDR type. Under the fuzzer's malloc
/// limit this asserts that nothing the precheck lets through allocates more than the record.
pub fn rpc_call(record: &[u8]) {
    let Ok(call) = parse_call(record) else {
        return;
    };
    assert!(call.args_at <= record.len(), "arguments past the record");
    let args = &record[call.args_at..];
    match (call.prog, call.vers) {
        (100_003, 3) if nfs_args_bounded(call.proc_, args) => nfs_args(call.proc_, args),
        // MNT and UMNT take a dirpath; the other MOUNT procedures take nothing
        (100_005, 3) if matches!(call.proc_, 1 | 3) && mount_args_bounded(call.proc_, args) => {
            let _ = decode::<dirpath<'static>>(args);
        }
        _ => {}
    }
}

fn nfs_args(proc_: u32, a: &[u8]) {
    match proc_ {
        1 => drop(decode::<GETATTR3args>(a)),
        2 => drop(decode::<SETATTR3args>(a)),
        3 => drop(decode::<LOOKUP3args<'static>>(a)),
        4 => drop(decode::<ACCESS3args>(a)),
        5 => drop(decode::<READLINK3args>(a)),
        6 => drop(decode::<READ3args>(a)),
        7 => drop(decode::<WRITE3args<'static>>(a)),
        8 => drop(decode::<CREATE3args<'static>>(a)),
        9 => drop(decode::<MKDIR3args<'static>>(a)),
        10 => drop(decode::<SYMLINK3args<'static>>(a)),
        11 => drop(decode::<MKNOD3args<'static>>(a)),
        12 => drop(decode::<REMOVE3args<'static>>(a)),
        13 => drop(decode::<RMDIR3args<'static>>(a)),
        14 => drop(decode::<RENAME3args<'static, 'static>>(a)),
        15 => drop(decode::<LINK3args<'static>>(a)),
        16 => drop(decode::<READDIR3args>(a)),
        17 => drop(decode::<READDIRPLUS3args>(a)),
        18 => drop(decode::<FSSTAT3args>(a)),
        19 => drop(decode::<FSINFO3args>(a)),
        20 => drop(decode::<PATHCONF3args>(a)),
        21 => drop(decode::<COMMIT3args>(a)),
        _ => {}
    }
}

/// nfsd's control API bodies (`POST /v1/volumes`, `PUT /v1/shares/.../dirs/...`): decoded and
/// checked as the API does; a body that passes keeps its options through a round trip.
pub fn control_api_bodies(data: &[u8]) {
    if let Ok(c) = serde_json::from_slice::<CreateVolume>(data)
        && validate_volume_name(&c.name).is_ok()
        && c.options.check().is_ok()
    {
        let again = VolumeOptions::from_map(&c.options.to_map()).expect("options read back");
        assert_eq!(again, c.options, "volume options change in a round trip");
    }
    if let Ok(d) = serde_json::from_slice::<ShareDir>(data)
        && let Some(u) = &d.user
    {
        let _ = validate_user_name(u);
    }
}

/// The plugin's `VolumeDriver.*` bodies: the name as a volume name, the options as the driver
/// parses them.
pub fn plugin_bodies(data: &[u8]) {
    use swarmhub_volume_plugin::protocol::{CreateRequest, MountRequest, NameRequest};
    if let Ok(c) = serde_json::from_slice::<CreateRequest>(data) {
        let _ = validate_volume_name(&c.name);
        if let Some(opts) = &c.opts
            && let Ok(o) = VolumeOptions::from_map(opts)
        {
            let _ = o.check();
            let _ = o.require_user();
        }
    }
    if let Ok(m) = serde_json::from_slice::<MountRequest>(data) {
        let _ = validate_volume_name(&m.name);
    }
    if let Ok(n) = serde_json::from_slice::<NameRequest>(data) {
        let _ = validate_volume_name(&n.name);
    }
}

/// Volume options as `docker volume create -o k=v` gives them: lines of `key=value`.
pub fn volume_options(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let map: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Ok(o) = VolumeOptions::from_map(&map)
        && o.check().is_ok()
    {
        let again = VolumeOptions::from_map(&o.to_map()).expect("options read back");
        assert_eq!(again, o, "volume options change in a round trip");
    }
    if let Some(share) = map.get("share") {
        let _ = validate_share_name(share);
    }
}

/// MNT paths: what parses names a volume and a secret, and the public form never shows the
/// secret.
pub fn mount_path(data: &[u8]) {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let public = public_export(path);
    if let Some(p) = MountPath::parse(path) {
        assert!(!p.name.contains('/'), "a volume name with a slash");
        if let Some(secret) = p.secret {
            assert!(!secret.is_empty() && !secret.contains('/'));
            assert!(
                !public.contains(secret) || p.name.contains(secret),
                "the public export {public:?} shows the secret"
            );
        }
        assert_eq!(
            MountPath::parse(&format!(
                "/{}{}",
                p.name,
                p.secret.map(|s| format!("/{s}")).unwrap_or_default()
            )),
            Some(p.clone()),
            "a mount path does not read back"
        );
    }
}

/// `swarmhub.toml`: parsed and validated as `config check` does; a valid file also renders
/// the hub's settings and the gate's rules.
pub fn swarmhub_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) =
        hub_deployer::settings::Config::from_toml(text, Path::new("swarmhub.toml"), Vec::new())
    else {
        return;
    };
    if let Ok(s) = cfg.hub_settings() {
        let rules = hub_deployer::plan::docker_gate_rules(&s);
        let json = rules.to_json();
        assert_eq!(
            swarmhub_docker_gate::GateRules::from_json(&json).ok(),
            Some(rules),
            "the gate's rules do not read back"
        );
    }
}

/// What a compromised hub sends the Docker gate: the first line is `METHOD PATH[?QUERY]`, the
/// rest the body. Routed as the gate routes; a service spec is checked against the default
/// rules, and one that passes must pass again as the gate forwards it.
pub fn gate_request(data: &[u8]) {
    use axum::http::Method;
    use swarmhub_docker_gate::route::{Call, route};
    use swarmhub_docker_gate::spec::check_service_spec;
    thread_local! {
        static RULES: swarmhub_docker_gate::GateRules = hub_deployer::settings::Config::default()
            .hub_settings()
            .map(|s| hub_deployer::plan::docker_gate_rules(&s))
            .expect("the default settings");
    }
    let (line, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(line) = std::str::from_utf8(line) else {
        return;
    };
    let Some((method, target)) = line.split_once(' ') else {
        return;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let Ok(routed) = route(&method, path, query) else {
        return;
    };
    let forwarded = routed.upstream_path(None);
    let fpath = forwarded.split('?').next().unwrap_or_default();
    assert!(
        fpath.starts_with('/')
            && fpath.split('/').skip(1).all(|seg| {
                !seg.is_empty()
                    && !seg.starts_with('.')
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            }),
        "the gate would forward the path {fpath:?}"
    );
    if matches!(
        routed.call,
        Call::ServiceCreate | Call::ServiceUpdate { .. }
    ) {
        RULES.with(|rules| {
            if let Ok(checked) = check_service_spec(body, rules, None) {
                let again = check_service_spec(&checked.body, rules, None)
                    .expect("a checked spec passes again as forwarded");
                assert_eq!(again, checked, "the forwarded spec is not what was checked");
            }
        });
    }
}
