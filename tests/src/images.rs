//! The project's container images for tests: [`ensure_images`] builds the local Debian base
//! (`images/debian-base.sh`) and the requested images of the top-level `Dockerfile` (through
//! `images/build.sh`, the Rust ones from static binaries: `--prebuilt`), but only when an image
//! is missing or its inputs changed. Each image carries the label [`INPUTS_LABEL`] with a hash of
//! what it was built from (the Dockerfile, `images/`, `plugin-config/`, and the base image or the
//! static binaries), so a later test's call costs a no-op `cargo build` and a few `docker image
//! inspect`s.
//!
//! Call it with [`crate::docker::lock`] held and a daemon up ([`crate::docker::Dockerd::ensure`]):
//! other docker tests restart dockerd. It also takes its own lock ([`IMAGES_LOCK_FILE`]) around
//! builds and `target/dist`. Needs root, the docker CLI, debootstrap (for the base) and access to
//! Debian's mirror, PyPI and npm; without them it fails with what is missing, never skips.
//! `SWARMHUB_BASE_IMAGE` names another base for the Python images (e.g. `debian:bookworm-slim`
//! where a registry is reachable); it is then used as it is, not built.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use crate::docker::{docker, docker_timeout, repo_root, run_timeout};

/// Label holding the hash of an image's inputs.
pub const INPUTS_LABEL: &str = "org.swarmhub.inputs";
/// The local Debian base of the Python images (`images/debian-base.sh`).
pub const BASE_TAG: &str = "swarmhub/debian:bookworm";
/// Serialises builds (and writes to `target/dist`) between test processes.
pub const IMAGES_LOCK_FILE: &str = "/tmp/swarmhub-images.lock";
/// How long one image build may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(40 * 60);
const TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// An image of the top-level Dockerfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Image {
    /// `swarmhub/nfsd`
    Nfsd,
    /// `swarmhub/swarmhub`: the CLI and the plugin bundle
    Cli,
    /// `swarmhub/plugin-rootfs`: the managed plugin's rootfs
    PluginRootfs,
    /// `swarmhub/hub`
    Hub,
    /// `swarmhub/notebook-student`
    NotebookStudent,
    /// `swarmhub/notebook-teacher`
    NotebookTeacher,
    /// `swarmhub/demo-ldap`: the directory of `swarmhub demo up`
    DemoLdap,
}

impl Image {
    /// Every image `swarmhub run` deploys.
    pub const DEPLOYED: [Image; 5] = [
        Image::Nfsd,
        Image::Cli,
        Image::Hub,
        Image::NotebookStudent,
        Image::NotebookTeacher,
    ];

    /// Every image `swarmhub demo up` runs (and `images/build.sh` builds by default).
    pub const DEMO: [Image; 6] = [
        Image::Nfsd,
        Image::Cli,
        Image::Hub,
        Image::NotebookStudent,
        Image::NotebookTeacher,
        Image::DemoLdap,
    ];

    /// The Dockerfile target (and `images/build.sh` argument).
    pub fn target(self) -> &'static str {
        match self {
            Image::Nfsd => "nfsd",
            Image::Cli => "cli",
            Image::PluginRootfs => "plugin-rootfs",
            Image::Hub => "hub",
            Image::NotebookStudent => "notebook-student",
            Image::NotebookTeacher => "notebook-teacher",
            Image::DemoLdap => "demo-ldap",
        }
    }

    /// The tag, as in swarmhub.toml's `[images]` (the workspace version).
    pub fn tag(self) -> String {
        let name = match self {
            Image::Cli => "swarmhub",
            other => other.target(),
        };
        format!("swarmhub/{name}:{}", env!("CARGO_PKG_VERSION"))
    }

    /// Built from the static Rust binaries (else from Python packages on the Debian base).
    pub fn is_rust(self) -> bool {
        matches!(self, Image::Nfsd | Image::Cli | Image::PluginRootfs)
    }

    /// The directory of `target/dist` the image is made of (Rust images).
    fn dist_dir(self) -> &'static str {
        match self {
            Image::Nfsd => "nfsd",
            _ => "cli",
        }
    }
}

/// What [`ensure_images`] did for one image.
#[derive(Debug, Clone)]
pub struct Ensured {
    pub image: Image,
    pub tag: String,
    /// false: the existing image was current
    pub built: bool,
    /// build time (zero when not built)
    pub took: Duration,
}

/// Makes sure every image in `images` exists and is current; builds what is not (see the module
/// documentation). Returns what it did per image, in the order given.
pub fn ensure_images(images: &[Image]) -> anyhow::Result<Vec<Ensured>> {
    ensure!(
        docker_timeout(&["version"], Duration::from_secs(20)).success(),
        "dockerd does not answer; call docker::Dockerd::ensure() first"
    );
    let _lock = FileLock::acquire(IMAGES_LOCK_FILE)?;
    let root = repo_root();
    let mut common = Inputs::default();
    common.file(&root, "Dockerfile")?;
    common.file(&root, ".dockerignore")?;
    common.tree(&root, "images")?;
    common.tree(&root, "plugin-config")?;

    let mut done = Vec::new();
    let python: Vec<Image> = images.iter().copied().filter(|i| !i.is_rust()).collect();
    let rust: Vec<Image> = images.iter().copied().filter(|i| i.is_rust()).collect();
    let base = if python.is_empty() {
        None
    } else {
        Some(ensure_base(&root)?)
    };
    if !rust.is_empty() {
        build_dist(&root)?;
    }
    for image in images.iter().copied() {
        let mut inputs = common.clone();
        inputs.text("target", image.target());
        let extra: Vec<String> = if image.is_rust() {
            inputs.tree(&root, &format!("target/dist/{}", image.dist_dir()))?;
            vec!["--prebuilt".into()]
        } else {
            let (base_tag, base_id) = base.clone().expect("ensured above");
            inputs.text("base", &base_id);
            vec!["--base".into(), base_tag]
        };
        let hash = inputs.hash()?;
        let tag = image.tag();
        if image_label(&tag).as_deref() == Some(hash.as_str()) {
            done.push(Ensured {
                image,
                tag,
                built: false,
                took: Duration::ZERO,
            });
            continue;
        }
        eprintln!("images: building {tag} (inputs {})", &hash[..12]);
        let start = Instant::now();
        let mut cmd = Command::new(root.join("images/build.sh"));
        cmd.current_dir(&root)
            .env("CARGO_TARGET_DIR", crate::nfsd::target_dir())
            .args(&extra)
            .arg("--label")
            .arg(format!("{INPUTS_LABEL}={hash}"))
            .arg(image.target());
        let out = run_timeout(cmd, BUILD_TIMEOUT)?;
        ensure!(
            out.success(),
            "building {tag} failed: {}",
            tail(&out.describe(), 60)
        );
        let took = start.elapsed();
        ensure!(
            image_label(&tag).as_deref() == Some(hash.as_str()),
            "images/build.sh succeeded but {tag} does not carry {INPUTS_LABEL}={hash}"
        );
        eprintln!("images: built {tag} in {took:.1?}");
        done.push(Ensured {
            image,
            tag,
            built: true,
            took,
        });
    }
    Ok(done)
}

/// The base of the Python images: `$SWARMHUB_BASE_IMAGE` as it is, or [`BASE_TAG`] built with
/// `images/debian-base.sh` when missing or built from another version of the script.
/// Returns (tag, image id).
fn ensure_base(root: &Path) -> anyhow::Result<(String, String)> {
    if let Ok(base) = std::env::var("SWARMHUB_BASE_IMAGE") {
        let id = image_id(&base).with_context(|| {
            format!("SWARMHUB_BASE_IMAGE={base} is not an image in this daemon")
        })?;
        return Ok((base, id));
    }
    let mut inputs = Inputs::default();
    inputs.file(root, "images/debian-base.sh")?;
    let hash = inputs.hash()?;
    if image_label(BASE_TAG).as_deref() != Some(hash.as_str()) {
        eprintln!("images: building {BASE_TAG} with images/debian-base.sh (debootstrap)");
        let start = Instant::now();
        let mut cmd = Command::new(root.join("images/debian-base.sh"));
        cmd.args(["--force", "--tag", BASE_TAG, "--label"])
            .arg(format!("{INPUTS_LABEL}={hash}"));
        let out = run_timeout(cmd, BUILD_TIMEOUT)?;
        ensure!(
            out.success(),
            "images/debian-base.sh failed (needs root, debootstrap: apt-get install -y debootstrap, and deb.debian.org): {}",
            tail(&out.describe(), 40)
        );
        eprintln!("images: built {BASE_TAG} in {:.1?}", start.elapsed());
    }
    let id = image_id(BASE_TAG).context("the base image is missing after its build")?;
    Ok((BASE_TAG.to_string(), id))
}

/// The static release binaries (a no-op cargo build when current), laid out in `target/dist`.
fn build_dist(root: &Path) -> anyhow::Result<()> {
    let target = crate::nfsd::target_dir();
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root)
        .env("CARGO_TARGET_DIR", &target)
        .env(
            "RUSTFLAGS",
            format!(
                "{} -C target-feature=+crt-static",
                std::env::var("RUSTFLAGS").unwrap_or_default()
            ),
        )
        .args(["build", "--release", "--locked", "--target", TRIPLE])
        .args(["-p", "swarmhub-nfsd", "-p", "swarmhub-volume-plugin"])
        .args(["-p", "hub-deployer"]);
    let out = run_timeout(cmd, Duration::from_secs(40 * 60))?;
    ensure!(
        out.success(),
        "static cargo build failed: {}",
        tail(&out.describe(), 40)
    );
    let mut layout = Command::new(root.join("images/layout.sh"));
    layout
        .arg(root.join("target/dist"))
        .arg(target.join(TRIPLE).join("release"));
    let out = run_timeout(layout, Duration::from_secs(300))?;
    ensure!(out.success(), "images/layout.sh failed: {}", out.describe());
    Ok(())
}

/// The value of [`INPUTS_LABEL`] on `tag`, if the image exists and has it.
pub fn image_label(tag: &str) -> Option<String> {
    let out = docker(&[
        "image",
        "inspect",
        "-f",
        &format!("{{{{index .Config.Labels \"{INPUTS_LABEL}\"}}}}"),
        tag,
    ]);
    let v = out.stdout.trim();
    (out.success() && !v.is_empty() && v != "<no value>").then(|| v.to_string())
}

/// The image id of `tag`, if it exists.
pub fn image_id(tag: &str) -> Option<String> {
    let out = docker(&["image", "inspect", "-f", "{{.Id}}", tag]);
    out.success().then(|| out.stdout.trim().to_string())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// input hashes

/// A canonical listing of inputs (paths, modes, contents), hashed with sha256sum(1).
#[derive(Debug, Clone, Default)]
struct Inputs {
    bytes: Vec<u8>,
}

impl Inputs {
    fn text(&mut self, key: &str, value: &str) {
        self.bytes
            .extend_from_slice(format!("text {key} {}\n", value.len()).as_bytes());
        self.bytes.extend_from_slice(value.as_bytes());
        self.bytes.push(b'\n');
    }

    /// One file, by its path relative to `root`.
    fn file(&mut self, root: &Path, rel: &str) -> anyhow::Result<()> {
        let p = root.join(rel);
        let meta = std::fs::symlink_metadata(&p).with_context(|| format!("{}", p.display()))?;
        let mode = meta.permissions().mode();
        if meta.is_dir() {
            self.bytes
                .extend_from_slice(format!("dir {rel} {mode:o}\n").as_bytes());
        } else if meta.file_type().is_symlink() {
            let to = std::fs::read_link(&p)?;
            self.bytes
                .extend_from_slice(format!("link {rel} {}\n", to.display()).as_bytes());
        } else {
            let data = std::fs::read(&p).with_context(|| format!("{}", p.display()))?;
            self.bytes
                .extend_from_slice(format!("file {rel} {mode:o} {}\n", data.len()).as_bytes());
            self.bytes.extend_from_slice(&data);
            self.bytes.push(b'\n');
        }
        Ok(())
    }

    /// A directory tree, entries in name order (editor swap files skipped).
    fn tree(&mut self, root: &Path, rel: &str) -> anyhow::Result<()> {
        self.file(root, rel)?;
        let dir = root.join(rel);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .with_context(|| format!("{}", dir.display()))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names.iter().filter(|n| !n.ends_with(".swp")) {
            let child = format!("{rel}/{name}");
            if std::fs::symlink_metadata(root.join(&child))?.is_dir() {
                self.tree(root, &child)?;
            } else {
                self.file(root, &child)?;
            }
        }
        Ok(())
    }

    fn hash(&self) -> anyhow::Result<String> {
        let mut child = Command::new("sha256sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("running sha256sum (coreutils)")?;
        let mut stdin = child.stdin.take().expect("piped");
        let bytes = self.bytes.clone();
        let writer = std::thread::spawn(move || stdin.write_all(&bytes));
        let mut out = String::new();
        child
            .stdout
            .take()
            .expect("piped")
            .read_to_string(&mut out)?;
        writer.join().expect("writer thread")?;
        ensure!(child.wait()?.success(), "sha256sum failed");
        let hash = out.split_whitespace().next().unwrap_or_default();
        ensure!(hash.len() == 64, "sha256sum printed {out:?}");
        Ok(hash.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// lock

/// An exclusive flock(1) on a file until dropped (as [`crate::docker::lock`], another file).
struct FileLock {
    child: Child,
}

impl FileLock {
    fn acquire(path: &str) -> anyhow::Result<FileLock> {
        let mut child = Command::new("flock")
            .args(["--exclusive", "--timeout", "3600", path, "-c"])
            .arg("echo locked; exec cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("running flock(1) (util-linux)")?;
        let mut buf = [0u8; 7];
        child
            .stdout
            .as_mut()
            .expect("piped")
            .read_exact(&mut buf)
            .with_context(|| format!("waiting for the lock {path}"))?;
        if &buf != b"locked\n" {
            bail!("flock said {:?}", String::from_utf8_lossy(&buf));
        }
        Ok(FileLock { child })
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The path of the repository's `target/dist` (the Dockerfile's prebuilt input).
pub fn dist_dir() -> PathBuf {
    repo_root().join("target/dist")
}
