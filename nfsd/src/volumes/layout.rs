//! The home layout of a home volume's tree. swarmhub 0.x mounted a home volume at `~/work`, so
//! such a tree holds the user's files at its top; a volume ensured with `layout=home` is the
//! whole home directory, and its 0.x files belong under `work/` to stay at `~/work`.
//! [`migrate`] moves them there by renames inside the tree (never a copy), and is crash-safe
//! and idempotent:
//!
//! 1. make a staging directory with an unguessable name at the top of the tree, owned by the
//!    volume's store ids, and persist its name and inode number (the caller's registry record);
//! 2. rename every other top-level entry into it (`RENAME_NOREPLACE`: nothing is overwritten);
//! 3. rename the staging directory to `work` (`RENAME_NOREPLACE`; when something made a new
//!    `work` at the top meanwhile, step 2 moves it in too and step 3 is tried again);
//! 4. give `work/` mode 0755, sync both directories; the caller then records the layout.
//!
//! A crash resumes at the next call with the persisted staging directory: found by name and
//! inode it continues at step 2; found as `work` (step 3 done) it finishes. A user's own
//! top-level `work` ends up as `work/work`. Entries are never opened, followed or copied: a
//! symlink, FIFO, socket or device at the top is renamed like any file and stays what it is, so
//! nothing here reads through a name the user controls, and nothing leaves the tree.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Where the files of a 0.x home volume go.
pub const WORK: &str = "work";
/// Prefix of the staging directory's name (followed by 16 random hex digits).
pub const STAGING_PREFIX: &str = ".swarmhub-layout-";
/// Mode of `work/` once made (what the 0.x notebook image gave `~/work`).
pub const WORK_MODE: u32 = 0o755;
/// How often step 3 is tried when something keeps making a new `work` at the top.
const ATTEMPTS: usize = 8;

/// A migration in progress, persisted in the volume's registry record before any entry moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Staging {
    /// Name of the staging directory at the top of the tree.
    pub dir: String,
    /// Its inode number: a directory of that name that is not this one is not ours.
    pub ino: u64,
}

/// What a migration did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Top-level entries moved into `work/` by this call.
    pub moved: usize,
    /// Entries that met a name already in the staging directory and went in under another
    /// name (`<name>.moved-<n>`): (old name, new name). Happens only when something re-creates
    /// a moved name at the top while the migration runs.
    pub renamed: Vec<(OsString, OsString)>,
    /// A staging directory of an earlier, interrupted call was continued.
    pub resumed: bool,
}

/// Why a migration stopped. Nothing is lost either way: every entry is at the top or in the
/// staging directory, and the next call continues.
#[derive(Debug, Error)]
#[error("{step}: {source}")]
pub struct MigrateError {
    pub step: String,
    #[source]
    pub source: io::Error,
}

fn step<'a, E: Into<io::Error>>(
    what: impl FnOnce() -> String + 'a,
) -> impl FnOnce(E) -> MigrateError + 'a {
    move |e| MigrateError {
        step: what(),
        source: e.into(),
    }
}

fn show(name: &OsStr) -> String {
    format!("{:?}", name.to_string_lossy())
}

fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn ino_of(fd: BorrowedFd<'_>) -> rustix::io::Result<u64> {
    Ok(rustix::fs::fstat(fd)?.st_ino)
}

/// Makes the staging directory: a fresh random name, mode 0700, owned by `owner`.
fn make_staging(
    root: BorrowedFd<'_>,
    owner: (u32, u32),
) -> Result<(Staging, OwnedFd), MigrateError> {
    loop {
        let dir = format!("{STAGING_PREFIX}{:016x}", rand::random::<u64>());
        match rustix::fs::mkdirat(root, dir.as_str(), Mode::from_raw_mode(0o700)) {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(step(|| format!("making the staging directory {dir:?}"))(e)),
        }
        let fd = open_dir_at(root, OsStr::new(&dir))
            .map_err(step(|| format!("opening the staging directory {dir:?}")))?;
        rustix::fs::fchown(
            &fd,
            Some(rustix::fs::Uid::from_raw(owner.0)),
            Some(rustix::fs::Gid::from_raw(owner.1)),
        )
        .map_err(step(|| {
            format!(
                "giving the staging directory {dir:?} to {}:{}",
                owner.0, owner.1
            )
        }))?;
        let ino = ino_of(fd.as_fd()).map_err(step(|| format!("reading {dir:?}")))?;
        rustix::fs::fsync(root).map_err(step(|| "syncing the top of the tree".to_string()))?;
        return Ok((Staging { dir, ino }, fd));
    }
}

/// The names at the top of `root` other than `.`, `..` and `skip`.
fn top_names(root: BorrowedFd<'_>, skip: &str) -> Result<Vec<CString>, MigrateError> {
    let fd = rustix::fs::openat(
        root,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(step(|| "listing the top of the tree".to_string()))?;
    let mut dir =
        rustix::fs::Dir::new(fd).map_err(step(|| "listing the top of the tree".to_string()))?;
    let mut names = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry.map_err(step(|| "listing the top of the tree".to_string()))?;
        let name = entry.file_name();
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." || bytes == skip.as_bytes() {
            continue;
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// Renames every top-level entry but the staging directory into it.
fn move_all(
    root: BorrowedFd<'_>,
    staging: BorrowedFd<'_>,
    staging_name: &str,
    report: &mut Report,
) -> Result<(), MigrateError> {
    for name in top_names(root, staging_name)? {
        let shown = || show(OsStr::from_bytes(name.to_bytes()));
        match rustix::fs::renameat_with(
            root,
            name.as_c_str(),
            staging,
            name.as_c_str(),
            RenameFlags::NOREPLACE,
        ) {
            Ok(()) => report.moved += 1,
            // gone meanwhile: nothing to move
            Err(rustix::io::Errno::NOENT) => {}
            Err(rustix::io::Errno::EXIST) => {
                let to = free_name(staging, &name)?;
                rustix::fs::renameat_with(
                    root,
                    name.as_c_str(),
                    staging,
                    to.as_c_str(),
                    RenameFlags::NOREPLACE,
                )
                .map_err(step(|| {
                    format!("moving {} into the staging directory", shown())
                }))?;
                report.moved += 1;
                report.renamed.push((
                    OsStr::from_bytes(name.to_bytes()).to_owned(),
                    OsStr::from_bytes(to.to_bytes()).to_owned(),
                ));
            }
            Err(e) => {
                return Err(step(|| {
                    format!("moving {} into the staging directory", shown())
                })(e));
            }
        }
    }
    Ok(())
}

/// `<name>.moved-<n>` with the first `n` that is not taken in `dir`.
fn free_name(dir: BorrowedFd<'_>, name: &CStr) -> Result<CString, MigrateError> {
    for n in 1..10_000u32 {
        let mut candidate = name.to_bytes().to_vec();
        candidate.extend_from_slice(format!(".moved-{n}").as_bytes());
        let candidate = CString::new(candidate).expect("no NUL in a directory entry name");
        match rustix::fs::statat(dir, candidate.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Err(rustix::io::Errno::NOENT) => return Ok(candidate),
            Ok(_) => continue,
            Err(e) => {
                return Err(step(|| {
                    format!(
                        "looking for a free name for {}",
                        show(OsStr::from_bytes(name.to_bytes()))
                    )
                })(e));
            }
        }
    }
    Err(MigrateError {
        step: format!(
            "finding a free name for {}",
            show(OsStr::from_bytes(name.to_bytes()))
        ),
        source: io::Error::from_raw_os_error(libc::EEXIST),
    })
}

/// Makes `tree` (the root directory of a home volume) laid out as a whole home: its top-level
/// entries go into `work/`. `resume` is the staging directory an interrupted call persisted;
/// `persist` is called with the new staging directory before the first entry moves and must
/// make it durable (the caller's registry). Returns what was done; the caller records the
/// layout afterwards.
pub fn migrate(
    tree: &Path,
    owner: (u32, u32),
    resume: Option<&Staging>,
    persist: &mut dyn FnMut(&Staging) -> io::Result<()>,
) -> Result<Report, MigrateError> {
    let root = rustix::fs::open(
        tree,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(step(|| "opening the tree".to_string()))?;
    let root = root.as_fd();
    let mut report = Report::default();
    let mut found = None;
    if let Some(s) = resume {
        match open_dir_at(root, OsStr::new(&s.dir)) {
            Ok(fd) if ino_of(fd.as_fd()).ok() == Some(s.ino) => {
                report.resumed = true;
                found = Some((s.clone(), fd));
            }
            _ => {
                if let Ok(fd) = open_dir_at(root, OsStr::new(WORK))
                    && ino_of(fd.as_fd()).ok() == Some(s.ino)
                {
                    // step 3 was done before the interruption
                    report.resumed = true;
                    finish(root, fd.as_fd())?;
                    return Ok(report);
                }
                tracing::warn!(
                    tree = %tree.display(),
                    staging = %s.dir,
                    "the staging directory of an interrupted layout change is gone (renamed by a client?); starting over"
                );
            }
        }
    }
    let (staging, fd) = match found {
        Some(f) => f,
        None => {
            let (s, fd) = make_staging(root, owner)?;
            persist(&s).map_err(step(|| {
                format!("recording the staging directory {:?}", s.dir)
            }))?;
            (s, fd)
        }
    };
    for _ in 0..ATTEMPTS {
        move_all(root, fd.as_fd(), &staging.dir, &mut report)?;
        match rustix::fs::renameat_with(
            root,
            staging.dir.as_str(),
            root,
            WORK,
            RenameFlags::NOREPLACE,
        ) {
            Ok(()) => {
                finish(root, fd.as_fd())?;
                return Ok(report);
            }
            // something made a new `work` at the top after the moves: move it in too
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => {
                return Err(step(|| {
                    format!("renaming the staging directory {:?} to {WORK}", staging.dir)
                })(e));
            }
        }
    }
    Err(MigrateError {
        step: format!(
            "renaming the staging directory {:?} to {WORK}: a new {WORK} appeared at the top {ATTEMPTS} times",
            staging.dir
        ),
        source: io::Error::from_raw_os_error(libc::EEXIST),
    })
}

fn finish(root: BorrowedFd<'_>, work: BorrowedFd<'_>) -> Result<(), MigrateError> {
    rustix::fs::fchmod(work, Mode::from_raw_mode(WORK_MODE))
        .map_err(step(|| format!("setting the mode of {WORK}/")))?;
    rustix::fs::fsync(work).map_err(step(|| format!("syncing {WORK}/")))?;
    rustix::fs::fsync(root).map_err(step(|| "syncing the top of the tree".to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    const OWNER: (u32, u32) = (20001, 20100);

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(t.path(), Some(OWNER.0), Some(OWNER.1)).unwrap();
        t
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn run(t: &Path, resume: Option<&Staging>) -> (Report, Vec<Staging>) {
        let mut persisted = Vec::new();
        let r = migrate(t, OWNER, resume, &mut |s| {
            persisted.push(s.clone());
            Ok(())
        })
        .unwrap();
        (r, persisted)
    }

    /// A call that fails where it records its staging directory (a crash there): returns the
    /// staging directory it made.
    fn crash_after_staging(t: &Path) -> Staging {
        let mut recorded = None;
        let err = migrate(t, OWNER, None, &mut |s| {
            recorded = Some(s.clone());
            Err(io::Error::other("power cut"))
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("recording the staging directory"),
            "{err}"
        );
        recorded.unwrap()
    }

    #[test]
    fn top_level_entries_move_into_work_owned_by_the_user() {
        let t = tree();
        let p = t.path();
        std::fs::write(p.join("a.ipynb"), b"nb").unwrap();
        std::fs::create_dir_all(p.join("course/source")).unwrap();
        std::fs::write(p.join("course/source/x"), b"x").unwrap();
        std::fs::write(p.join(".hidden"), b"h").unwrap();
        std::os::unix::fs::chown(p.join("a.ipynb"), Some(OWNER.0), Some(OWNER.1)).unwrap();
        let (r, persisted) = run(p, None);
        assert_eq!(r.moved, 3);
        assert!(!r.resumed && r.renamed.is_empty());
        assert_eq!(persisted.len(), 1);
        assert!(persisted[0].dir.starts_with(STAGING_PREFIX));
        assert_eq!(names(p), ["work"]);
        assert_eq!(names(&p.join("work")), [".hidden", "a.ipynb", "course"]);
        assert_eq!(std::fs::read(p.join("work/course/source/x")).unwrap(), b"x");
        let md = std::fs::metadata(p.join("work")).unwrap();
        assert_eq!(
            (md.uid(), md.gid(), md.mode() & 0o7777),
            (OWNER.0, OWNER.1, WORK_MODE)
        );
        // the entries keep their own owners
        let md = std::fs::metadata(p.join("work/a.ipynb")).unwrap();
        assert_eq!((md.uid(), md.gid()), OWNER);
    }

    #[test]
    fn an_empty_tree_gets_an_empty_work() {
        let t = tree();
        let (r, _) = run(t.path(), None);
        assert_eq!(r.moved, 0);
        assert_eq!(names(t.path()), ["work"]);
        assert!(names(&t.path().join("work")).is_empty());
    }

    #[test]
    fn a_users_own_work_becomes_work_work_and_nothing_is_overwritten() {
        let t = tree();
        let p = t.path();
        std::fs::create_dir(p.join("work")).unwrap();
        std::fs::write(p.join("work/keep.txt"), b"mine").unwrap();
        std::fs::write(p.join("work.txt"), b"w").unwrap();
        let (r, _) = run(p, None);
        assert_eq!(r.moved, 2);
        assert_eq!(names(p), ["work"]);
        assert_eq!(names(&p.join("work")), ["work", "work.txt"]);
        assert_eq!(
            std::fs::read(p.join("work/work/keep.txt")).unwrap(),
            b"mine"
        );
    }

    #[test]
    fn hostile_entries_are_renamed_never_followed_or_opened() {
        let t = tree();
        let p = t.path();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        // a symlink named work pointing out of the tree, a FIFO, a name with a newline and
        // invalid UTF-8, and a directory that looks like a staging directory
        std::os::unix::fs::symlink(outside.path(), p.join("work")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            p.join("fifo").as_path(),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let odd = OsStr::from_bytes(b"odd\nname\xff");
        std::fs::write(p.join(odd), b"o").unwrap();
        std::fs::create_dir(p.join(format!("{STAGING_PREFIX}0000000000000000"))).unwrap();
        let (r, _) = run(p, None);
        assert_eq!(r.moved, 4);
        assert_eq!(names(p), ["work"]);
        let work = p.join("work");
        assert!(std::fs::symlink_metadata(&work).unwrap().is_dir());
        let link = std::fs::symlink_metadata(work.join("work")).unwrap();
        assert!(link.file_type().is_symlink(), "the symlink stays a symlink");
        assert_eq!(
            std::fs::read_link(work.join("work")).unwrap(),
            outside.path()
        );
        use std::os::unix::fs::FileTypeExt;
        assert!(
            std::fs::symlink_metadata(work.join("fifo"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
        assert_eq!(std::fs::read(work.join(odd)).unwrap(), b"o");
        // nothing was written outside the tree
        assert_eq!(names(outside.path()), ["secret"]);
    }

    #[test]
    fn a_crash_after_recording_the_staging_dir_resumes_and_moves_the_rest() {
        let t = tree();
        let p = t.path();
        for n in ["a", "b", "c", "work"] {
            std::fs::write(p.join(n), n.as_bytes()).unwrap();
        }
        // first call "crashes" in persist: the staging dir exists, nothing moved yet
        let s = crash_after_staging(p);
        // half of the entries made it before the crash
        std::fs::rename(p.join("a"), p.join(&s.dir).join("a")).unwrap();
        std::fs::rename(p.join("work"), p.join(&s.dir).join("work")).unwrap();
        let (r, persisted) = run(p, Some(&s));
        assert!(r.resumed);
        assert_eq!(r.moved, 2);
        assert!(
            persisted.is_empty(),
            "a resumed call keeps its staging directory"
        );
        assert_eq!(names(p), ["work"]);
        assert_eq!(names(&p.join("work")), ["a", "b", "c", "work"]);
        assert_eq!(std::fs::read(p.join("work/work")).unwrap(), b"work");
    }

    #[test]
    fn a_crash_after_the_final_rename_only_finishes() {
        let t = tree();
        let p = t.path();
        std::fs::write(p.join("a"), b"a").unwrap();
        let (_, persisted) = run(p, None);
        let s = persisted[0].clone();
        // the registry was not updated: the next call gets the same staging record
        std::fs::set_permissions(p.join("work"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let (r, persisted) = run(p, Some(&s));
        assert!(r.resumed && r.moved == 0 && persisted.is_empty());
        assert_eq!(names(&p.join("work")), ["a"]);
        let md = std::fs::metadata(p.join("work")).unwrap();
        assert_eq!(md.mode() & 0o7777, WORK_MODE);
    }

    #[test]
    fn a_vanished_staging_dir_starts_over_without_touching_a_users_work() {
        let t = tree();
        let p = t.path();
        std::fs::create_dir(p.join("work")).unwrap();
        std::fs::write(p.join("work/mine"), b"m").unwrap();
        let gone = Staging {
            dir: format!("{STAGING_PREFIX}00000000deadbeef"),
            ino: 1,
        };
        let (r, persisted) = run(p, Some(&gone));
        assert!(!r.resumed);
        assert_eq!(persisted.len(), 1);
        assert_eq!(names(&p.join("work")), ["work"]);
        assert_eq!(std::fs::read(p.join("work/work/mine")).unwrap(), b"m");
    }

    #[test]
    fn a_name_met_again_in_staging_gets_a_free_name() {
        let t = tree();
        let p = t.path();
        std::fs::write(p.join("a"), b"new").unwrap();
        let s = crash_after_staging(p);
        // an earlier pass moved an `a`, then a client made a new `a` at the top
        std::fs::write(p.join(&s.dir).join("a"), b"old").unwrap();
        std::fs::write(p.join(&s.dir).join("a.moved-1"), b"taken").unwrap();
        let (r, _) = run(p, Some(&s));
        assert_eq!(
            r.renamed,
            [(OsString::from("a"), OsString::from("a.moved-2"))]
        );
        assert_eq!(std::fs::read(p.join("work/a")).unwrap(), b"old");
        assert_eq!(std::fs::read(p.join("work/a.moved-1")).unwrap(), b"taken");
        assert_eq!(std::fs::read(p.join("work/a.moved-2")).unwrap(), b"new");
    }
}
