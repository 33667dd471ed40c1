//! The driver: Docker's volume semantics over nfsd and a mount backend. Get/List/Path answer
//! from local state and never touch NFS; Create validates options and asks nfsd to ensure the
//! volume; Mount and Unmount count references per (volume, mount ID), mount on the first (asking
//! nfsd for the volume again when it refuses the mount path this node has: the path carries the
//! volume's capability secret, which a node upgraded from an older version does not have yet, and
//! this node's state may be older than nfsd's data) and unmount on the last; Remove forgets the volume on this node
//! and never deletes data. Every change is persisted before it is acknowledged. A hub home
//! volume this node recorded without `layout=home` gets it at its next mount (Docker never sends
//! a known volume's options again).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use swarmhub_control_api::{CreateVolume, Layout, VolumeOptions, validate_volume_name};

pub use crate::error::{DriverError, ProvisionError};
use crate::mounter::{MountError, MountSpec, Mounter};
use crate::protocol::VolumeInfo;
use crate::state::{PluginState, StateFile, VolumeState};

/// How long a Mount of an already mounted volume waits for nfsd to accept a connection.
pub const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// What the driver needs from nfsd: ensure a volume exists, get its export path.
///
/// Not dyn-compatible (its method returns `impl Future`), so [`Driver`] is generic over it
/// rather than holding an `Arc<dyn Provisioner>`: one plugin uses one provisioner, chosen at
/// start. Implementations write `async fn ensure`; the trait spells out `+ Send` because the
/// driver's futures run in axum handlers and spawned tasks, and a plain `async fn` in a trait
/// would promise generic callers nothing about `Send`.
pub trait Provisioner: Send + Sync + 'static {
    /// Creates volume `name` on nfsd with `options`, or confirms the one there; answers the
    /// mount path nfsd gives out for it.
    fn ensure(
        &self,
        name: &str,
        options: &VolumeOptions,
    ) -> impl Future<Output = Result<String, ProvisionError>> + Send;
}

/// The real provisioner: nfsd's control API, with the token read from its file at each call
/// (so a token written after the plugin started is picked up).
pub struct NfsdProvisioner {
    pub base_url: String,
    pub token_file: PathBuf,
    pub timeout: Duration,
}

impl Provisioner for NfsdProvisioner {
    async fn ensure(&self, name: &str, options: &VolumeOptions) -> Result<String, ProvisionError> {
        let token =
            std::fs::read_to_string(&self.token_file).map_err(|source| ProvisionError::Token {
                path: self.token_file.clone(),
                source,
            })?;
        let client = swarmhub_control_api::client::ControlClient::new(
            &self.base_url,
            token.trim(),
            self.timeout,
        );
        let v = client
            .create(&CreateVolume {
                name: name.to_string(),
                options: options.clone(),
                identity: None,
                client: None,
            })
            .await?;
        Ok(v.export)
    }
}

/// Fixed settings of a driver.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Where mounts go; must lie under the plugin's propagated mount.
    pub mount_root: PathBuf,
    /// `state.json` lives here.
    pub state_dir: PathBuf,
    /// nfsd's NFS address as `host:port` (resolved at each mount).
    pub server: String,
    /// Extra kernel mount options.
    pub extra_options: Option<String>,
    /// Bound on one mount; Docker's plugin client gives up after 30 s in `plugin enable`.
    pub mount_timeout: Duration,
    /// Name prefix of the hub's home volumes (`home-`), whose volume `<prefix><user>` is the
    /// whole home of `<user>` (see [`Driver::mount`]); `None`: no such volumes.
    pub home_prefix: Option<String>,
}

/// The volume driver of one node, asking nfsd through `P`.
pub struct Driver<P> {
    config: DriverConfig,
    state_path: PathBuf,
    // std locks: held for map updates only, never across an await
    state: Mutex<PluginState>,
    mounted: Mutex<HashSet<String>>,
    /// References (mount IDs) per volume that an earlier plugin process gave out through a
    /// backend whose mounts end with the process (FUSE): the containers holding them see only
    /// errors on that mount until they restart. Cleared by their Unmount (or a reap).
    dead: Mutex<HashMap<String, BTreeSet<String>>>,
    last_error: Mutex<HashMap<String, String>>,
    // one async lock per volume serialises its mounts and unmounts
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    mounter: Arc<dyn Mounter>,
    provisioner: Arc<P>,
}

impl<P: Provisioner> Driver<P> {
    /// Loads the state (before the socket listens) and notes which volumes are mounted now.
    pub fn open(
        config: DriverConfig,
        mounter: Arc<dyn Mounter>,
        provisioner: Arc<P>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.state_dir)?;
        std::fs::create_dir_all(&config.mount_root)?;
        let state_path = config.state_dir.join("state.json");
        let state = PluginState::load(&state_path)?;
        let mounted = state
            .volumes
            .keys()
            .filter(|n| mounter.is_mounted(&config.mount_root.join(n)))
            .cloned()
            .collect();
        let dead = if mounter.outlives_process() {
            HashMap::new()
        } else {
            dead_references(&state)
        };
        Ok(Self {
            config,
            state_path,
            state: Mutex::new(state),
            mounted: Mutex::new(mounted),
            dead: Mutex::new(dead),
            last_error: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
            mounter,
            provisioner,
        })
    }

    /// The mount backend's name.
    pub fn backend(&self) -> &'static str {
        self.mounter.name()
    }

    fn target(&self, name: &str) -> PathBuf {
        self.config.mount_root.join(name)
    }

    fn lock_of(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .expect("poisoned")
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    fn save(&self, state: &PluginState) -> Result<(), DriverError> {
        state.save(&self.state_path).map_err(DriverError::SaveState)
    }

    fn is_mounted(&self, name: &str) -> bool {
        self.mounted.lock().expect("poisoned").contains(name)
    }

    /// `VolumeDriver.Create`. A volume this node knows is created again when the options
    /// differ only in `size` and `layout` (what the hub's settings may change; a recorded layout
    /// is kept): nfsd applies them, this node records them.
    pub async fn create(
        &self,
        name: &str,
        opts: &BTreeMap<String, String>,
    ) -> Result<(), DriverError> {
        validate_volume_name(name)?;
        let mut options = VolumeOptions::from_map(opts)?;
        options.require_user()?;
        let known = self
            .state
            .lock()
            .expect("poisoned")
            .volumes
            .get(name)
            .map(|v| v.options.clone());
        if let Some(existing) = known {
            if options.layout.is_none() {
                options.layout = existing.layout;
            }
            if existing == options {
                return Ok(());
            }
            let settings = |o: &VolumeOptions| VolumeOptions {
                size: None,
                layout: None,
                ..o.clone()
            };
            if settings(&existing) != settings(&options) {
                return Err(DriverError::OptionsConflict {
                    name: name.to_string(),
                    existing: existing.to_map(),
                    wanted: options.to_map(),
                });
            }
        }
        let export = self.provisioner.ensure(name, &options).await?;
        self.record(name, &options, export)?;
        tracing::info!(volume = name, options = ?options.to_map(), "volume created");
        Ok(())
    }

    /// Records the volume's options and mount path (persisted before it is used); references
    /// and the creation time of a known volume stay.
    fn record(
        &self,
        name: &str,
        options: &VolumeOptions,
        export: String,
    ) -> Result<VolumeState, DriverError> {
        let mut state = self.state.lock().expect("poisoned");
        let mut next = state.clone();
        let v = next
            .volumes
            .entry(name.to_string())
            .or_insert_with(|| VolumeState {
                options: VolumeOptions::default(),
                export: String::new(),
                created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                refs: BTreeMap::new(),
            });
        v.options = options.clone();
        v.export = export;
        let v = v.clone();
        self.save(&next)?;
        *state = next;
        Ok(v)
    }

    /// The options to mount `name` with: for a home volume of the hub (`<home_prefix><user>`,
    /// no share) that this node recorded without a layout, nfsd is asked for it with
    /// `layout=home` first (it moves a 0.x home's files into `work/`), and that is recorded.
    /// Docker created such a volume here before the hub passed the option and never calls
    /// Create for a volume it knows, so this is where the option reaches nfsd.
    async fn with_home_layout(
        &self,
        name: &str,
        vol: VolumeState,
    ) -> Result<VolumeState, DriverError> {
        let Some(prefix) = &self.config.home_prefix else {
            return Ok(vol);
        };
        let mut options = vol.options.clone();
        let hub_home = options.share.is_none()
            && options
                .user
                .as_deref()
                .is_some_and(|u| name == format!("{prefix}{u}"));
        if !hub_home || options.layout.is_some() {
            return Ok(vol);
        }
        options.layout = Some(Layout::Home);
        let export = self
            .provisioner
            .ensure(name, &options)
            .await
            .map_err(|source| DriverError::HomeLayout {
                name: name.to_string(),
                source,
            })?;
        let vol = self.record(name, &options, export)?;
        tracing::info!(
            volume = name,
            "home volume recorded here without a layout is now asked for with layout=home (nfsd moves a 0.x home's files into work/)"
        );
        Ok(vol)
    }

    /// `VolumeDriver.Remove`: forgets the volume here; nfsd keeps the data.
    pub async fn remove(&self, name: &str) -> Result<(), DriverError> {
        let lock = self.lock_of(name);
        let _g = lock.lock().await;
        {
            let state = self.state.lock().expect("poisoned");
            match state.volumes.get(name) {
                None => return Ok(()),
                Some(v) if v.total_refs() > 0 => {
                    return Err(DriverError::InUse {
                        name: name.to_string(),
                        mounts: v.total_refs(),
                    });
                }
                Some(_) => {}
            }
        }
        if self.is_mounted(name) {
            self.unmount_now(name).await?;
        }
        let mut state = self.state.lock().expect("poisoned");
        let mut next = state.clone();
        next.volumes.remove(name);
        self.save(&next)?;
        *state = next;
        tracing::info!(
            volume = name,
            "volume forgotten on this node (data kept on nfsd)"
        );
        Ok(())
    }

    fn spec(&self, v: &VolumeState) -> MountSpec {
        MountSpec {
            server: "0.0.0.0:0".parse().expect("valid"),
            export: v.export.clone(),
            readonly: v.options.readonly,
            extra_options: self.config.extra_options.clone(),
        }
    }

    /// Mount; when nfsd refuses this node's mount path (or has no such export), ask it for the
    /// volume again (create-or-ensure with the options this node knows), keep the mount path
    /// it answers, and mount once more. The path carries the volume's capability secret, which
    /// a node upgraded from a version without capabilities does not have, and this node's state
    /// can outlive nfsd's volume (a replaced data directory, a volume deleted there), while
    /// dockerd does not call Create again for a volume it already knows.
    async fn mount_or_recreate(&self, name: &str, v: &VolumeState) -> Result<(), DriverError> {
        match self.mount_now(name, v).await {
            Err(DriverError::Mount(refused))
                if matches!(
                    *refused,
                    MountError::NoSuchExport { .. } | MountError::Refused { .. }
                ) =>
            {
                let export = self
                    .provisioner
                    .ensure(name, &v.options)
                    .await
                    .map_err(|source| DriverError::Reensure {
                        name: name.to_string(),
                        refused,
                        source,
                    })?;
                let v = self.relearn_export(name, export)?;
                tracing::warn!(
                    volume = name,
                    "nfsd refused the mount path this node had for the volume; it gave the current one (or created the volume again)"
                );
                self.mount_now(name, &v).await
            }
            other => other,
        }
    }

    /// Keeps `export` as the volume's mount path (persisted before it is used).
    fn relearn_export(&self, name: &str, export: String) -> Result<VolumeState, DriverError> {
        let mut state = self.state.lock().expect("poisoned");
        let mut next = state.clone();
        let v = next
            .volumes
            .get_mut(name)
            .ok_or_else(|| no_such_volume(name))?;
        v.export = export;
        let v = v.clone();
        self.save(&next)?;
        *state = next;
        Ok(v)
    }

    async fn mount_now(&self, name: &str, v: &VolumeState) -> Result<(), DriverError> {
        let target = self.target(name);
        let mut spec = self.spec(v);
        let server = self.config.server.clone();
        let mounter = self.mounter.clone();
        let deadline = self.config.mount_timeout;
        let result = tokio::task::spawn_blocking(move || {
            use std::net::ToSocketAddrs;
            spec.server = server
                .to_socket_addrs()
                .map_err(|source| DriverError::ResolveNfsd {
                    server: server.clone(),
                    source,
                })?
                .next()
                .ok_or_else(|| DriverError::NfsdAddressEmpty {
                    server: server.clone(),
                })?;
            std::fs::create_dir_all(&target).map_err(|source| DriverError::MountPoint {
                target: target.clone(),
                source,
            })?;
            mounter.mount(&spec, &target, deadline)?;
            Ok::<_, DriverError>(())
        })
        .await
        .map_err(|source| DriverError::Task {
            what: "mount",
            source,
        })?;
        match &result {
            Ok(()) => {
                self.mounted
                    .lock()
                    .expect("poisoned")
                    .insert(name.to_string());
                self.last_error.lock().expect("poisoned").remove(name);
                tracing::info!(volume = name, backend = self.backend(), "mounted");
            }
            Err(e) => {
                self.last_error
                    .lock()
                    .expect("poisoned")
                    .insert(name.to_string(), e.to_string());
                tracing::error!(volume = name, "mount failed: {e}");
            }
        }
        result
    }

    async fn unmount_now(&self, name: &str) -> Result<(), DriverError> {
        let target = self.target(name);
        let mounter = self.mounter.clone();
        tokio::task::spawn_blocking(move || {
            mounter.unmount(&target)?;
            let _ = std::fs::remove_dir(&target);
            Ok::<_, DriverError>(())
        })
        .await
        .map_err(|source| DriverError::Task {
            what: "unmount",
            source,
        })??;
        self.mounted.lock().expect("poisoned").remove(name);
        tracing::info!(volume = name, "unmounted");
        Ok(())
    }

    /// `VolumeDriver.Mount`: returns the mount point.
    pub async fn mount(&self, name: &str, id: &str) -> Result<String, DriverError> {
        let lock = self.lock_of(name);
        let _g = lock.lock().await;
        let vol = self
            .state
            .lock()
            .expect("poisoned")
            .volumes
            .get(name)
            .cloned()
            .ok_or_else(|| no_such_volume(name))?;
        let target = self.target(name);
        if !self.is_mounted(name) || !self.mounter.is_mounted(&target) {
            let vol = self.with_home_layout(name, vol).await?;
            self.mount_or_recreate(name, &vol).await?;
        } else {
            // a mount kept for another container answers nothing while nfsd is down: the new
            // container's start would hang on it (runc stats the mount point) and fail with EIO
            // a minute later, so refuse now with the reason
            self.probe_server(name).await?;
        }
        let mut state = self.state.lock().expect("poisoned");
        let mut next = state.clone();
        if let Some(v) = next.volumes.get_mut(name) {
            *v.refs.entry(id.to_string()).or_insert(0) += 1;
        }
        self.save(&next)?;
        *state = next;
        Ok(target.display().to_string())
    }

    /// A TCP connection to nfsd's NFS port within [`PROBE_TIMEOUT`].
    async fn probe_server(&self, name: &str) -> Result<(), DriverError> {
        let server = self.config.server.clone();
        let connect = tokio::net::TcpStream::connect(server.clone());
        match tokio::time::timeout(PROBE_TIMEOUT, connect).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(DriverError::NfsdUnreachable {
                name: name.to_string(),
                server,
                source,
            }),
            Err(_) => Err(DriverError::NfsdSilent {
                name: name.to_string(),
                server,
                after: PROBE_TIMEOUT,
            }),
        }
    }

    /// `VolumeDriver.Unmount`: unknown volumes and IDs succeed.
    pub async fn unmount(&self, name: &str, id: &str) -> Result<(), DriverError> {
        let lock = self.lock_of(name);
        let _g = lock.lock().await;
        let remaining = {
            let mut state = self.state.lock().expect("poisoned");
            let mut next = state.clone();
            let Some(v) = next.volumes.get_mut(name) else {
                return Ok(());
            };
            if let Some(n) = v.refs.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    v.refs.remove(id);
                }
            }
            let remaining = v.total_refs();
            self.save(&next)?;
            *state = next;
            if !next_refs_hold(&state, name, id) {
                self.forget_dead(name, Some(id));
            }
            remaining
        };
        if remaining == 0 && self.is_mounted(name) {
            self.unmount_now(name).await?;
        }
        Ok(())
    }

    /// `VolumeDriver.Path`: the mount point while mounted, else empty.
    pub fn path(&self, name: &str) -> Result<String, DriverError> {
        let state = self.state.lock().expect("poisoned");
        if !state.volumes.contains_key(name) {
            return Err(no_such_volume(name));
        }
        Ok(if self.is_mounted(name) {
            self.target(name).display().to_string()
        } else {
            String::new()
        })
    }

    fn info(&self, name: &str, v: &VolumeState, with_status: bool) -> VolumeInfo {
        let mounted = self.is_mounted(name);
        let status = with_status.then(|| {
            let mut s = BTreeMap::new();
            s.insert("server".into(), json!(self.config.server));
            s.insert(
                "export".into(),
                json!(swarmhub_control_api::mount_path::public_export(&v.export)),
            );
            s.insert("options".into(), json!(v.options.to_map()));
            s.insert("backend".into(), json!(self.backend()));
            s.insert("mounted".into(), json!(mounted));
            s.insert("references".into(), json!(v.total_refs()));
            let dead = self.dead_count(name);
            if dead > 0 {
                s.insert("dead_references".into(), json!(dead));
                s.insert("dead_references_fix".into(), json!(DEAD_MOUNTS_FIX));
            }
            s.insert("created_at".into(), json!(v.created_at));
            if let Some(e) = self.last_error.lock().expect("poisoned").get(name) {
                s.insert("last_error".into(), json!(e));
            }
            s
        });
        VolumeInfo {
            name: name.to_string(),
            mountpoint: if mounted {
                self.target(name).display().to_string()
            } else {
                String::new()
            },
            status,
        }
    }

    /// `VolumeDriver.Get`: `Err` for unknown names, so Docker calls Create with the options.
    pub fn get(&self, name: &str) -> Result<VolumeInfo, DriverError> {
        let state = self.state.lock().expect("poisoned");
        let v = state
            .volumes
            .get(name)
            .ok_or_else(|| no_such_volume(name))?;
        Ok(self.info(name, v, true))
    }

    /// `VolumeDriver.List`.
    pub fn list(&self) -> Vec<VolumeInfo> {
        let state = self.state.lock().expect("poisoned");
        state
            .volumes
            .iter()
            .map(|(n, v)| self.info(n, v, false))
            .collect()
    }

    /// Brings mounts in line with references after a start: remounts volumes that containers
    /// still reference (a FUSE mount ends with the plugin process, a node may have rebooted),
    /// unmounts what nothing references.
    pub async fn reconcile(&self) {
        let volumes: Vec<(String, VolumeState)> = self
            .state
            .lock()
            .expect("poisoned")
            .volumes
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        for (name, v) in volumes {
            let lock = self.lock_of(&name);
            let _g = lock.lock().await;
            let target = self.target(&name);
            let mounted = self.mounter.is_mounted(&target);
            let dead = self.dead_count(&name);
            if dead > 0 {
                tracing::warn!(
                    volume = %name,
                    dead,
                    "{dead} container mount(s) of this volume were made by an earlier plugin process and ended with it ({} mounts end with the plugin): those containers see 'Transport endpoint is not connected' there until they restart; {DEAD_MOUNTS_FIX}",
                    self.backend()
                );
            }
            if v.total_refs() > 0 && !mounted {
                tracing::info!(volume = %name, "remounting a volume that containers still reference");
                let _ = self.mount_now(&name, &v).await;
            } else if v.total_refs() == 0 && mounted {
                tracing::info!(volume = %name, "unmounting a volume nothing references");
                self.mounted.lock().expect("poisoned").insert(name.clone());
                if let Err(e) = self.unmount_now(&name).await {
                    tracing::warn!(volume = %name, "{e}");
                }
            }
        }
    }

    /// Volumes with references, for the reaper.
    pub fn referenced(&self) -> Vec<String> {
        self.state
            .lock()
            .expect("poisoned")
            .volumes
            .iter()
            .filter(|(_, v)| v.total_refs() > 0)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Drops every reference of `name` and unmounts it: used for mounts no running container
    /// holds any more (dockerd's live-restore never sends Unmount for them).
    pub async fn reap(&self, name: &str) -> Result<(), DriverError> {
        let lock = self.lock_of(name);
        let _g = lock.lock().await;
        {
            let mut state = self.state.lock().expect("poisoned");
            let mut next = state.clone();
            if let Some(v) = next.volumes.get_mut(name) {
                v.refs.clear();
            }
            self.save(&next)?;
            *state = next;
        }
        self.forget_dead(name, None);
        if self.is_mounted(name) {
            self.unmount_now(name).await?;
        }
        tracing::warn!(
            volume = name,
            "reaped references left by containers that no longer run"
        );
        Ok(())
    }

    /// How many references of `name` an earlier plugin process gave out through mounts that
    /// ended with it.
    pub fn dead_count(&self, name: &str) -> usize {
        self.dead
            .lock()
            .expect("poisoned")
            .get(name)
            .map_or(0, BTreeSet::len)
    }

    /// Forgets dead reference `id` of `name` (or all of them).
    fn forget_dead(&self, name: &str, id: Option<&str>) {
        let mut dead = self.dead.lock().expect("poisoned");
        if let Some(ids) = dead.get_mut(name) {
            match id {
                Some(id) => {
                    ids.remove(id);
                }
                None => ids.clear(),
            }
            if ids.is_empty() {
                dead.remove(name);
            }
        }
    }

    /// The mount root.
    pub fn mount_root(&self) -> &Path {
        &self.config.mount_root
    }
}

/// What an operator does about containers holding dead mounts (logged and in `Status`).
pub const DEAD_MOUNTS_FIX: &str = "`swarmhub doctor` names them, `swarmhub notebooks restart --dead-mounts` restarts exactly those notebooks (their files stay)";

/// Every reference in `state`, per volume: at the start of a process whose backend's mounts
/// end with the process, all of them were given out by an earlier process.
fn dead_references(state: &PluginState) -> HashMap<String, BTreeSet<String>> {
    state
        .volumes
        .iter()
        .filter(|(_, v)| v.total_refs() > 0)
        .map(|(n, v)| (n.clone(), v.refs.keys().cloned().collect()))
        .collect()
}

/// Whether mount ID `id` still holds a reference to `name` in `state`.
fn next_refs_hold(state: &PluginState, name: &str, id: &str) -> bool {
    state
        .volumes
        .get(name)
        .is_some_and(|v| v.refs.contains_key(id))
}

fn no_such_volume(name: &str) -> DriverError {
    DriverError::NoSuchVolume {
        name: name.to_string(),
    }
}
