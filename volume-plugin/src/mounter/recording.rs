//! A test double of [`Mounter`]: records every call, keeps a set of "mounted" targets, and can be
//! told to fail the next mounts (or one mount with "no such export" or "refused"). For protocol and driver
//! tests that must not need NFS.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::{MountError, MountSpec, Mounter};

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Mount { export: String, target: PathBuf },
    Unmount { target: PathBuf },
}

/// Records calls instead of mounting.
#[derive(Debug, Default)]
pub struct RecordingMounter {
    pub calls: Mutex<Vec<Call>>,
    mounted: Mutex<HashSet<PathBuf>>,
    fail_with: Mutex<Option<String>>,
    missing_once: Mutex<HashSet<String>>,
    refused_once: Mutex<HashSet<String>>,
    /// Whether its "mounts" end with the process, like FUSE's (see [`Mounter::outlives_process`]).
    process_bound: bool,
}

impl RecordingMounter {
    /// A recorder whose mounts end with the process that made them, like the FUSE backend's.
    pub fn process_bound() -> Self {
        Self {
            process_bound: true,
            ..Self::default()
        }
    }

    /// Makes the following mounts fail with `cause` (`None` to succeed again).
    pub fn fail(&self, cause: Option<&str>) {
        *self.fail_with.lock().expect("poisoned") = cause.map(str::to_string);
    }

    /// Makes the next mount of `export` answer that nfsd has no such export, as nfsd does
    /// for a volume it lost; the mount after that succeeds.
    pub fn missing_once(&self, export: &str) {
        self.missing_once
            .lock()
            .expect("poisoned")
            .insert(export.to_string());
    }

    /// Makes the next mount of `export` answer that nfsd refused the mount path, as nfsd does
    /// for a path without the volume's current capability secret.
    pub fn refuse_once(&self, export: &str) {
        self.refused_once
            .lock()
            .expect("poisoned")
            .insert(export.to_string());
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("poisoned").clone()
    }
}

impl Mounter for RecordingMounter {
    fn name(&self) -> &'static str {
        "recording"
    }

    fn mount(
        &self,
        spec: &MountSpec,
        target: &Path,
        _deadline: Duration,
    ) -> Result<(), MountError> {
        if self
            .missing_once
            .lock()
            .expect("poisoned")
            .remove(&spec.export)
        {
            return Err(MountError::NoSuchExport {
                server: spec.server,
                export: spec.shown_export(),
                target: target.display().to_string(),
                cause: "MNT3ERR_NOENT".into(),
            });
        }
        if self
            .refused_once
            .lock()
            .expect("poisoned")
            .remove(&spec.export)
        {
            return Err(MountError::Refused {
                server: spec.server,
                export: spec.shown_export(),
                target: target.display().to_string(),
                cause: "MNT3ERR_ACCES".into(),
            });
        }
        if let Some(cause) = self.fail_with.lock().expect("poisoned").clone() {
            return Err(MountError::Failed {
                server: spec.server,
                export: spec.shown_export(),
                target: target.display().to_string(),
                cause,
                hint: String::new(),
            });
        }
        self.calls.lock().expect("poisoned").push(Call::Mount {
            export: spec.export.clone(),
            target: target.to_path_buf(),
        });
        self.mounted
            .lock()
            .expect("poisoned")
            .insert(target.to_path_buf());
        Ok(())
    }

    fn unmount(&self, target: &Path) -> Result<(), MountError> {
        self.calls.lock().expect("poisoned").push(Call::Unmount {
            target: target.to_path_buf(),
        });
        self.mounted.lock().expect("poisoned").remove(target);
        Ok(())
    }

    fn is_mounted(&self, target: &Path) -> bool {
        self.mounted.lock().expect("poisoned").contains(target)
    }

    fn outlives_process(&self) -> bool {
        !self.process_bound
    }
}
