//! Small state files that must survive crashes (nfsd's registry, the plugin's state, keys):
//! atomic replacement (temp file, fsync, rename, fsync of the directory), so readers and crashes
//! see the old or the new content, never a mix; and loading of versioned JSON state that refuses
//! a torn or foreign file loudly instead of starting empty. Shared by nfsd and the plugin, which
//! otherwise have nothing to share but wire types (`swarmhub-control-api`, which does no file
//! I/O).

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Replaces `path` with `data`, created with `mode` when new.
pub fn atomic_write(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{} has no file name", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| io::Error::new(e.kind(), format!("writing {}: {e}", path.display())))
}

/// A JSON state file with a format number.
pub trait StateFile: serde::Serialize + serde::de::DeserializeOwned + Default {
    /// The format this program reads and writes.
    const FORMAT: u32;
    /// What the file is, for messages (`registry`, `plugin state`).
    const WHAT: &'static str;
    /// What to do when the file is not valid.
    const HINT: &'static str;
    /// The format number read from the file.
    fn format(&self) -> u32;

    /// Loads the file, or the default when it does not exist yet.
    fn load(path: &Path) -> io::Result<Self> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("reading {} {}: {e}", Self::WHAT, path.display()),
                ));
            }
        };
        let value: Self = serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} {} is not valid ({e}); {}",
                    Self::WHAT,
                    path.display(),
                    Self::HINT
                ),
            )
        })?;
        if value.format() != Self::FORMAT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} {} has format {}, this program reads format {}",
                    Self::WHAT,
                    path.display(),
                    value.format(),
                    Self::FORMAT
                ),
            ));
        }
        Ok(value)
    }

    /// Writes the file atomically, mode 0600.
    fn save(&self, path: &Path) -> io::Result<()> {
        let mut json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        json.push(b'\n');
        atomic_write(path, &json, 0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[derive(serde::Serialize, serde::Deserialize, Default, Debug, PartialEq)]
    struct State {
        format: u32,
        items: Vec<String>,
    }

    impl StateFile for State {
        const FORMAT: u32 = 2;
        const WHAT: &'static str = "test state";
        const HINT: &'static str = "fix it by hand";
        fn format(&self) -> u32 {
            self.format
        }
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        atomic_write(&path, b"one", 0o640).unwrap();
        atomic_write(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        // the mode is that of the file the last write created
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let err = atomic_write(&dir.path().join("missing/key"), b"x", 0o600).unwrap_err();
        assert!(err.to_string().contains("missing/key"), "{err}");
    }

    #[test]
    fn load_round_trips_and_refuses_torn_or_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(State::load(&path).unwrap(), State::default());
        let state = State {
            format: State::FORMAT,
            items: vec!["a".into()],
        };
        state.save(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), state);

        std::fs::write(&path, b"{\"format\": 2, \"ite").unwrap();
        let err = State::load(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("fix it by hand"), "{err}");

        std::fs::write(&path, br#"{"format": 3, "items": []}"#).unwrap();
        let err = State::load(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("format 3"), "{err}");
    }
}
