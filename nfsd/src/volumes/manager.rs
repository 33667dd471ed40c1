//! The live set of volumes: create-or-ensure, get, list, remove (the tree is moved aside, never
//! deleted) and purge of moved-aside trees, each persisted to the registry before it takes
//! effect; and the fast lookups the NFS side needs (view by id, view by export path).
//! Identities come from explicit numbers or from LDAP by user name.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use swarmhub_control_api::{
    ClientIdentity, CreateVolume, ErrorKind, ExplicitIdentity, Layout, NameError, OptionError,
    RemovedTree, ShareDir, ShareDirInfo, Volume, VolumeKind, VolumeOptions,
    validate_share_dir_name, validate_share_name, validate_user_name, validate_volume_name,
};
use thiserror::Error;

use super::capability::MountCapabilities;
use super::layout::{self, MigrateError, Staging};
use super::registry::{Registry, StateFile, VolumeRecord};
use super::shares::{self, ShareDirError};
use crate::fs::View;
use crate::fs::creds::StoreIds;
use crate::fs::kernel;
use crate::fs::usage::{Limits, TreeUsage};
use crate::identity::DirectoryError;
use crate::identity::ldap::LdapDirectory;

/// Why a volume operation failed. Each names the volume and the cause.
#[derive(Debug, Error)]
pub enum VolumeError {
    /// a name that cannot be a volume
    #[error(transparent)]
    Name(#[from] NameError),
    /// options that do not parse or do not fit together
    #[error(transparent)]
    Options(#[from] OptionError),
    /// a volume of that name exists with different options
    #[error(
        "volume {name:?} exists with different settings ({differences}); remove it first or use another name"
    )]
    Conflict { name: String, differences: String },
    /// no such volume
    #[error("no volume named {name:?}")]
    NotFound { name: String },
    /// no such removed tree
    #[error("no removed tree named {entry:?} under removed/")]
    RemovedNotFound { entry: String },
    /// the user is not in the directory, or the directory cannot be asked
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// a user name without LDAP configured and without explicit ids; `thing` is `volume "x"`
    /// or `share directory "s/d"`
    #[error(
        "{thing} names user {user:?} but no LDAP directory is configured; configure [ldap] or give the identity explicitly"
    )]
    NoDirectory { thing: String, user: String },
    /// neither user nor identity
    #[error("{thing} needs user=<ldap name> or an explicit identity")]
    NoIdentity { thing: String },
    /// uid or gid 0
    #[error("{thing} would act as root (uid {uid}, gid {gid}); volumes never act as root")]
    Root { thing: String, uid: u32, gid: u32 },
    /// a top-level directory of a share cannot be made as asked
    #[error(transparent)]
    ShareDir(#[from] ShareDirError),
    /// moving a 0.x home volume's files into `work/` stopped (nothing is lost; the next ensure
    /// with `layout=home` continues)
    #[error(
        "volume {name:?}: moving its files into work/ for layout=home (tree {tree}) stopped while {source}; nothing was lost, the next ensure with layout=home continues"
    )]
    Layout {
        name: String,
        tree: String,
        #[source]
        source: MigrateError,
    },
    /// a file system operation on the data root failed
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl VolumeError {
    /// The API error class of this failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            VolumeError::Name(_)
            | VolumeError::Options(_)
            | VolumeError::NoDirectory { .. }
            | VolumeError::NoIdentity { .. }
            | VolumeError::Root { .. } => ErrorKind::Invalid,
            VolumeError::Conflict { .. } => ErrorKind::Conflict,
            VolumeError::NotFound { .. } | VolumeError::RemovedNotFound { .. } => {
                ErrorKind::NotFound
            }
            VolumeError::Directory(DirectoryError::UnknownUser { .. }) => ErrorKind::UnknownUser,
            VolumeError::Directory(DirectoryError::Unavailable { .. }) => {
                ErrorKind::DirectoryUnavailable
            }
            VolumeError::Directory(_) => ErrorKind::Invalid,
            VolumeError::ShareDir(ShareDirError::BadMode { .. }) => ErrorKind::Invalid,
            VolumeError::ShareDir(
                ShareDirError::Foreign { .. } | ShareDirError::NotADirectory { .. },
            ) => ErrorKind::Conflict,
            VolumeError::Io { .. }
            | VolumeError::Layout { .. }
            | VolumeError::ShareDir(ShareDirError::Io { .. }) => ErrorKind::Internal,
        }
    }
}

fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> VolumeError + 'a {
    move |source| VolumeError::Io {
        what,
        path: path.display().to_string(),
        source,
    }
}

#[derive(Default)]
struct State {
    registry: Registry,
    views: HashMap<u32, Arc<View>>,
    by_export: HashMap<String, u32>,
    usage: HashMap<String, Arc<TreeUsage>>,
}

/// All volumes of one data root.
pub struct Volumes {
    root: PathBuf,
    registry_path: PathBuf,
    root_dev: u64,
    // std lock: held only for map lookups and updates, never across an await
    state: RwLock<State>,
    // serialises changes, including the LDAP lookup of a create
    changes: tokio::sync::Mutex<()>,
    directory: Option<Arc<LdapDirectory>>,
    caps: MountCapabilities,
}

impl std::fmt::Debug for Volumes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Volumes").field("root", &self.root).finish()
    }
}

/// The subdirectories of the data root.
pub const HOMES: &str = "volumes";
pub const SHARES: &str = "shares";
pub const REMOVED: &str = "removed";
pub const REGISTRY: &str = "registry.json";

impl Volumes {
    /// Opens the data root (creating its layout when new) and builds a view for every volume
    /// in the registry. A volume whose tree is missing is reported and not served; nothing is
    /// recreated or deleted.
    pub fn open(
        root: &Path,
        directory: Option<Arc<LdapDirectory>>,
        caps: MountCapabilities,
    ) -> Result<Self, VolumeError> {
        for sub in [HOMES, SHARES, REMOVED] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).map_err(io_err("creating", &p))?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o711))
                .map_err(io_err("setting mode of", &p))?;
        }
        let registry_path = root.join(REGISTRY);
        let registry = Registry::load(&registry_path).map_err(io_err("loading", &registry_path))?;
        let root_dev = std::fs::metadata(root)
            .map_err(io_err("reading", root))?
            .dev();
        let volumes = Self {
            root: root.to_path_buf(),
            registry_path,
            root_dev,
            state: RwLock::new(State::default()),
            changes: tokio::sync::Mutex::new(()),
            directory,
            caps,
        };
        let mut state = State {
            registry,
            ..State::default()
        };
        let records: Vec<VolumeRecord> = state.registry.volumes.values().cloned().collect();
        for rec in records {
            match volumes.build_view(&mut state, &rec) {
                Ok(view) => {
                    state.by_export.insert(export_of(&rec.name), view.id);
                    state.views.insert(view.id, view);
                }
                Err(e) => tracing::error!(volume = %rec.name, "volume not served: {e}"),
            }
        }
        *volumes.state.write().expect("poisoned") = state;
        Ok(volumes)
    }

    /// The data root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The view a handle names.
    pub fn view(&self, id: u32) -> Option<Arc<View>> {
        self.state.read().expect("poisoned").views.get(&id).cloned()
    }

    /// The served view of the volume `name` (MOUNT checks its capability before using it).
    pub fn by_name(&self, name: &str) -> Option<Arc<View>> {
        let state = self.state.read().expect("poisoned");
        state
            .by_export
            .get(&export_of(name))
            .and_then(|id| state.views.get(id).cloned())
    }

    /// The secrets of capability mounts.
    pub fn capabilities(&self) -> &MountCapabilities {
        &self.caps
    }

    /// Number of volumes in the registry.
    pub fn count(&self) -> usize {
        self.state.read().expect("poisoned").registry.volumes.len()
    }

    fn info(&self, state: &State, rec: &VolumeRecord) -> Volume {
        // a share view with a size reports its own bytes, any other counted view the tree's
        let used_bytes = state
            .usage
            .get(&rec.tree)
            .filter(|u| u.is_limited())
            .map(|u| match (rec.kind, rec.options.size) {
                (VolumeKind::Share, Some(_)) => u.used_by(rec.store_uid),
                _ => u.used(),
            });
        Volume {
            name: rec.name.clone(),
            export: self.caps.export(rec.view_id, &rec.name),
            kind: rec.kind,
            tree: rec.tree.clone(),
            options: rec.options.clone(),
            store_uid: rec.store_uid,
            store_gid: rec.store_gid,
            groups: rec.groups.clone(),
            client_uid: rec.client_uid,
            client_gid: rec.client_gid,
            created_at: rec.created_at.clone(),
            used_bytes,
        }
    }

    /// One volume.
    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        validate_volume_name(name)?;
        let state = self.state.read().expect("poisoned");
        let rec = state
            .registry
            .volumes
            .get(name)
            .ok_or_else(|| VolumeError::NotFound { name: name.into() })?;
        Ok(self.info(&state, rec))
    }

    /// Every volume, by name.
    pub fn list(&self) -> Vec<Volume> {
        let state = self.state.read().expect("poisoned");
        state
            .registry
            .volumes
            .values()
            .map(|r| self.info(&state, r))
            .collect()
    }

    /// Creates a volume, or returns the existing one when it has the same settings. The bool
    /// says whether it was created now.
    pub async fn create(&self, req: CreateVolume) -> Result<(Volume, bool), VolumeError> {
        validate_volume_name(&req.name)?;
        req.options.check()?;
        let _changes = self.changes.lock().await;
        let client = req.client.unwrap_or_default();
        if let Some(existing) = self.existing(&req, client)? {
            return Ok((existing, false));
        }
        let thing = format!("volume {:?}", req.name);
        let ids = self
            .resolve_identity(&thing, req.options.user.as_deref(), req.identity.as_ref())
            .await?;
        let (kind, tree) = match &req.options.share {
            Some(share) => (VolumeKind::Share, format!("{SHARES}/{share}")),
            None => (VolumeKind::Home, format!("{HOMES}/{}", req.name)),
        };
        let tree_path = self.root.join(&tree);
        let adopted = self.prepare_tree(kind, &tree_path, &ids)?;
        if adopted && req.options.layout == Some(Layout::Home) {
            // a tree without a record (a removal interrupted before the move aside): its layout
            // is unknown, and moving files without knowing would be a guess
            tracing::warn!(
                volume = %req.name,
                tree = %tree,
                "adopted an existing tree as a whole home (layout=home) as it is; if it holds a 0.x home's files, they are at the top of the home, not in ~/work"
            );
        }
        let mut state = self.state.write().expect("poisoned");
        let rec = VolumeRecord {
            view_id: state.registry.next_view_id,
            name: req.name.clone(),
            kind,
            tree,
            options: req.options.clone(),
            explicit: req.identity.clone(),
            store_uid: ids.uid,
            store_gid: ids.gid,
            groups: ids.groups.clone(),
            client_uid: client.uid,
            client_gid: client.gid,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            migration: None,
        };
        let view = self.build_view(&mut state, &rec)?;
        let mut next = state.registry.clone();
        next.next_view_id += 1;
        next.volumes.insert(rec.name.clone(), rec.clone());
        next.save(&self.registry_path)
            .map_err(io_err("saving", &self.registry_path))?;
        state.registry = next;
        state.by_export.insert(export_of(&rec.name), view.id);
        state.views.insert(view.id, view);
        tracing::info!(volume = %rec.name, uid = rec.store_uid, gid = rec.store_gid, tree = %rec.tree, "volume created");
        Ok((self.info(&state, &rec), true))
    }

    fn existing(
        &self,
        req: &CreateVolume,
        client: ClientIdentity,
    ) -> Result<Option<Volume>, VolumeError> {
        let state = self.state.read().expect("poisoned");
        let Some(rec) = state.registry.volumes.get(&req.name) else {
            return Ok(None);
        };
        let mut diffs = Vec::new();
        // the size is a setting an ensure may change (see `resize`); a layout is only ever
        // added (see `lay_out_as_home`), and an ensure without one keeps the volume's
        let same_but_size = VolumeOptions {
            size: rec.options.size,
            layout: rec.options.layout,
            ..req.options.clone()
        };
        if rec.options != same_but_size {
            diffs.push(format!(
                "options {:?} vs requested {:?}",
                rec.options.to_map(),
                req.options.to_map()
            ));
        }
        if req.identity.is_some() && rec.explicit != req.identity {
            diffs.push(format!(
                "identity {}:{} vs requested {:?}",
                rec.store_uid, rec.store_gid, req.identity
            ));
        }
        if (rec.client_uid, rec.client_gid) != (client.uid, client.gid) {
            diffs.push(format!(
                "client ids {}:{} vs requested {}:{}",
                rec.client_uid, rec.client_gid, client.uid, client.gid
            ));
        }
        if !diffs.is_empty() {
            return Err(VolumeError::Conflict {
                name: req.name.clone(),
                differences: diffs.join("; "),
            });
        }
        let resize = rec.options.size != req.options.size;
        let lay_out =
            req.options.layout == Some(Layout::Home) && rec.options.layout != Some(Layout::Home);
        if !resize && !lay_out {
            return Ok(Some(self.info(&state, rec)));
        }
        drop(state);
        let mut volume = None;
        if resize {
            volume = Some(self.resize(&req.name, req.options.size)?);
        }
        if lay_out {
            volume = Some(self.lay_out_as_home(&req.name)?);
        }
        Ok(volume)
    }

    /// Makes a home volume created without a layout (by swarmhub 0.x, which mounted it at
    /// `~/work`) the user's whole home: its top-level entries move into `work/` (see
    /// [`layout`]), then the layout is recorded. An interrupted run left its staging directory
    /// in the record, and this continues it. Runs with the changes lock held.
    fn lay_out_as_home(&self, name: &str) -> Result<Volume, VolumeError> {
        let rec = {
            let state = self.state.read().expect("poisoned");
            state
                .registry
                .volumes
                .get(name)
                .cloned()
                .ok_or_else(|| VolumeError::NotFound { name: name.into() })?
        };
        let tree = self.root.join(&rec.tree);
        let mut persist = |staging: &Staging| -> std::io::Result<()> {
            self.update_record(name, |r| r.migration = Some(staging.clone()))
        };
        let report = layout::migrate(
            &tree,
            (rec.store_uid, rec.store_gid),
            rec.migration.as_ref(),
            &mut persist,
        )
        .map_err(|source| VolumeError::Layout {
            name: name.into(),
            tree: rec.tree.clone(),
            source,
        })?;
        self.update_record(name, |r| {
            r.options.layout = Some(Layout::Home);
            r.migration = None;
        })
        .map_err(io_err("saving", &self.registry_path))?;
        for (from, to) in &report.renamed {
            tracing::warn!(
                volume = %name,
                from = %from.to_string_lossy(),
                to = %to.to_string_lossy(),
                "a name met twice while moving into work/ went in under another name"
            );
        }
        tracing::info!(
            volume = %name,
            tree = %rec.tree,
            moved = report.moved,
            resumed = report.resumed,
            "home volume is now the whole home (layout=home): its top-level entries were moved into work/"
        );
        self.get(name)
    }

    /// Changes the record of `name` and saves the registry before the change takes effect.
    fn update_record(
        &self,
        name: &str,
        change: impl FnOnce(&mut VolumeRecord),
    ) -> std::io::Result<()> {
        let mut state = self.state.write().expect("poisoned");
        let mut next = state.registry.clone();
        let rec = next.volumes.get_mut(name).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no volume named {name:?} in the registry"),
            )
        })?;
        change(rec);
        next.save(&self.registry_path)?;
        state.registry = next;
        Ok(())
    }

    /// Gives an existing volume another size (or none). The hub asks for every volume with the
    /// size its settings name now, so a changed `home_size` reaches volumes created before it
    /// whenever a node creates them again; a smaller size than what is used only stops growth.
    fn resize(&self, name: &str, size: Option<u64>) -> Result<Volume, VolumeError> {
        let mut state = self.state.write().expect("poisoned");
        let Some(mut rec) = state.registry.volumes.get(name).cloned() else {
            return Err(VolumeError::NotFound { name: name.into() });
        };
        let old = rec.options.size;
        rec.options.size = size;
        let mut next = state.registry.clone();
        next.volumes.insert(name.to_string(), rec.clone());
        next.save(&self.registry_path)
            .map_err(io_err("saving", &self.registry_path))?;
        state.registry = next;
        let limits = limits_of(&state, &rec.tree, None);
        if let Some(u) = state.usage.get(&rec.tree) {
            let path = self.root.join(&rec.tree);
            u.apply_limits(&path, limits)
                .map_err(io_err("counting", &path))?;
        }
        tracing::info!(volume = %name, ?old, new = ?size, "volume size changed");
        Ok(self.info(&state, &rec))
    }

    /// Store ids of `thing` (named in errors): the explicit ones, else `user`'s from LDAP.
    /// Never root.
    async fn resolve_identity(
        &self,
        thing: &str,
        user: Option<&str>,
        explicit: Option<&ExplicitIdentity>,
    ) -> Result<StoreIds, VolumeError> {
        let ids = match (explicit, user) {
            (Some(ExplicitIdentity { uid, gid, groups }), _) => StoreIds {
                uid: *uid,
                gid: *gid,
                groups: groups.clone(),
            },
            (None, None) => {
                return Err(VolumeError::NoIdentity {
                    thing: thing.into(),
                });
            }
            (None, Some(user)) => {
                let Some(dir) = &self.directory else {
                    return Err(VolumeError::NoDirectory {
                        thing: thing.into(),
                        user: user.into(),
                    });
                };
                let u = dir.lookup(user).await?;
                StoreIds {
                    uid: u.uid,
                    gid: u.gid,
                    groups: u.groups,
                }
            }
        };
        if ids.uid == 0 || ids.gid == 0 {
            return Err(VolumeError::Root {
                thing: thing.into(),
                uid: ids.uid,
                gid: ids.gid,
            });
        }
        Ok(ids)
    }

    /// Makes sure top-level directory `name` of share `share` exists, owned by the store ids of
    /// the request's user with exactly its mode; the shared tree is created when missing. The
    /// bool of the reply says whether the directory was made now.
    pub async fn ensure_share_dir(
        &self,
        share: &str,
        name: &str,
        req: ShareDir,
    ) -> Result<ShareDirInfo, VolumeError> {
        validate_share_name(share)?;
        validate_share_dir_name(name)?;
        if let Some(user) = &req.user {
            validate_user_name(user)?;
        }
        let _changes = self.changes.lock().await;
        let thing = format!("share directory {:?}", format!("{share}/{name}"));
        let ids = self
            .resolve_identity(&thing, req.user.as_deref(), req.identity.as_ref())
            .await?;
        let tree = self.root.join(SHARES).join(share);
        self.prepare_tree(VolumeKind::Share, &tree, &ids)?;
        let root = std::fs::File::open(&tree).map_err(io_err("opening tree", &tree))?;
        shares::own_root(&root, &tree).map_err(io_err("taking over share root", &tree))?;
        let state = shares::ensure_dir(
            root.as_fd(),
            shares::DirRequest {
                share,
                name,
                uid: ids.uid,
                gid: ids.gid,
                mode: req.mode,
            },
        )?;
        tracing::info!(
            share,
            dir = name,
            uid = state.uid,
            gid = state.gid,
            mode = format!("{:o}", state.mode),
            created = state.created,
            "share directory ensured"
        );
        Ok(ShareDirInfo {
            share: share.into(),
            name: name.into(),
            uid: state.uid,
            gid: state.gid,
            mode: state.mode,
            created: state.created,
        })
    }

    /// Makes sure the tree exists: a home tree owned by its user (an existing one is adopted as
    /// it is), a shared tree `0755` owned by root (see [`shares`]). True when it existed.
    fn prepare_tree(
        &self,
        kind: VolumeKind,
        path: &Path,
        ids: &StoreIds,
    ) -> Result<bool, VolumeError> {
        if path.exists() {
            tracing::info!(tree = %path.display(), "using the existing tree");
            return Ok(true);
        }
        std::fs::create_dir(path).map_err(io_err("creating tree", path))?;
        let (mode, owner) = match kind {
            VolumeKind::Home => (0o750, Some((ids.uid, ids.gid))),
            VolumeKind::Share => (shares::ROOT_MODE, None),
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(io_err("setting mode of", path))?;
        if let Some((u, g)) = owner {
            std::os::unix::fs::chown(path, Some(u), Some(g)).map_err(io_err("chown of", path))?;
        }
        Ok(false)
    }

    fn build_view(&self, state: &mut State, rec: &VolumeRecord) -> Result<Arc<View>, VolumeError> {
        let path = self.root.join(&rec.tree);
        let dir = std::fs::File::open(&path).map_err(io_err("opening tree", &path))?;
        let md = dir.metadata().map_err(io_err("reading tree", &path))?;
        if !md.is_dir() {
            return Err(VolumeError::Io {
                what: "tree is not a directory:",
                path: path.display().to_string(),
                source: std::io::Error::from_raw_os_error(libc::ENOTDIR),
            });
        }
        if md.dev() != self.root_dev {
            return Err(VolumeError::Io {
                what: "tree is on another file system than the data root:",
                path: path.display().to_string(),
                source: std::io::Error::from_raw_os_error(libc::EXDEV),
            });
        }
        if rec.kind == VolumeKind::Share {
            shares::own_root(&dir, &path).map_err(io_err("taking over share root", &path))?;
        }
        let root = kernel::name_to_handle(dir.as_fd(), c"").map_err(io_err("handle of", &path))?;
        let limits = limits_of(state, &rec.tree, Some(rec));
        let usage = match state.usage.get(&rec.tree) {
            Some(u) => {
                u.apply_limits(&path, limits)
                    .map_err(io_err("counting", &path))?;
                u.clone()
            }
            None => {
                let u = if limits.any() {
                    TreeUsage::count(&path, limits).map_err(io_err("counting", &path))?
                } else {
                    TreeUsage::default()
                };
                let u = Arc::new(u);
                state.usage.insert(rec.tree.clone(), u.clone());
                u
            }
        };
        Ok(Arc::new(View {
            id: rec.view_id,
            name: rec.name.clone(),
            root,
            root_ino: md.ino(),
            ids: StoreIds {
                uid: rec.store_uid,
                gid: rec.store_gid,
                groups: rec.groups.clone(),
            },
            client_uid: rec.client_uid,
            client_gid: rec.client_gid,
            readonly: rec.options.readonly,
            shared: rec.kind == VolumeKind::Share,
            usage,
        }))
    }

    /// Removes a volume. A home tree is moved to `removed/<name>.<UTC time>`; a shared tree stays
    /// for its other views. The registry is saved first, so a crash in between leaves the tree in
    /// place and a later create of the same name adopts it.
    pub async fn remove(&self, name: &str) -> Result<swarmhub_control_api::Removed, VolumeError> {
        validate_volume_name(name)?;
        let _changes = self.changes.lock().await;
        let mut state = self.state.write().expect("poisoned");
        let rec = state
            .registry
            .volumes
            .get(name)
            .cloned()
            .ok_or_else(|| VolumeError::NotFound { name: name.into() })?;
        let mut next = state.registry.clone();
        next.volumes.remove(name);
        next.save(&self.registry_path)
            .map_err(io_err("saving", &self.registry_path))?;
        state.registry = next;
        state.by_export.remove(&export_of(name));
        state.views.remove(&rec.view_id);
        let moved = match rec.kind {
            VolumeKind::Share => {
                // the removed view's cap no longer applies to its owner's bytes
                if let Some(u) = state.usage.get(&rec.tree) {
                    u.set_limits(limits_of(&state, &rec.tree, None));
                }
                None
            }
            VolumeKind::Home => {
                state.usage.remove(&rec.tree);
                let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
                let entry = format!("{name}.{stamp}");
                let from = self.root.join(&rec.tree);
                let to = self.root.join(REMOVED).join(&entry);
                std::fs::rename(&from, &to).map_err(io_err("moving aside", &from))?;
                Some(format!("{REMOVED}/{entry}"))
            }
        };
        tracing::info!(volume = %name, moved_to = ?moved, "volume removed");
        Ok(swarmhub_control_api::Removed {
            name: name.into(),
            tree_moved_to: moved,
        })
    }

    /// Trees waiting under `removed/`.
    pub fn removed(&self) -> Result<Vec<RemovedTree>, VolumeError> {
        let dir = self.root.join(REMOVED);
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).map_err(io_err("listing", &dir))? {
            let e = e.map_err(io_err("listing", &dir))?;
            out.push(RemovedTree {
                entry: e.file_name().to_string_lossy().into_owned(),
            });
        }
        out.sort_by(|a, b| a.entry.cmp(&b.entry));
        Ok(out)
    }

    /// Deletes a moved-aside tree for good. The only call in nfsd that deletes user data.
    pub async fn purge(&self, entry: &str) -> Result<(), VolumeError> {
        let _changes = self.changes.lock().await;
        let valid = !entry.is_empty()
            && entry.len() <= 200
            && !entry.starts_with('.')
            && entry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        let path = self.root.join(REMOVED).join(entry);
        if !valid || !path.is_dir() {
            return Err(VolumeError::RemovedNotFound {
                entry: entry.escape_default().to_string(),
            });
        }
        let p = path.clone();
        tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&p))
            .await
            .map_err(|e| VolumeError::Io {
                what: "purging",
                path: path.display().to_string(),
                source: std::io::Error::other(e),
            })?
            .map_err(io_err("purging", &path))?;
        tracing::warn!(entry, "removed tree purged");
        Ok(())
    }
}

/// The limits of a tree from the sizes of its views: a home's size caps its tree; in a shared
/// tree, a view's size caps the bytes owned by the view's store uid (the smallest size when one
/// uid has several views). `extra` is a record that is not in the registry yet.
fn limits_of(state: &State, tree: &str, extra: Option<&VolumeRecord>) -> Limits {
    let mut limits = Limits::default();
    let others = state
        .registry
        .volumes
        .values()
        .filter(|r| r.tree == tree && extra.is_none_or(|e| e.name != r.name));
    for r in others.chain(extra) {
        let Some(size) = r.options.size else {
            continue;
        };
        match r.kind {
            VolumeKind::Home => limits.tree = Some(limits.tree.map_or(size, |l| l.min(size))),
            VolumeKind::Share => {
                let cap = limits.owners.entry(r.store_uid).or_insert(size);
                *cap = (*cap).min(size);
            }
        }
    }
    limits
}

/// Key of a volume in the view table (not a mount path: MOUNT needs the capability too).
pub fn export_of(name: &str) -> String {
    format!("/{name}")
}
