//! The project's container images for tests: [`ensure_images`] builds the local Debian base
//! (`images/debian-base.sh`) and the requested images of the top-level `Dockerfile` (through
//! `images/build.sh`, the Rust ones from static binaries: `--prebuilt`) in the test suite's own
//! builder dockerd ([`crate::builder`], never the machine's), but only when an image is missing
//! or its inputs changed. Each image carries the label [`INPUTS_LABEL`] with a hash of what it
//! was built from (the Dockerfile, `images/`, `plugin-config/`, and the base image or the static
//! binaries), so a later test's call costs a no-op `cargo build` and a few `docker image
//! inspect`s. Each requested image is then saved (`docker save`, once per image id) under
//! [`SAVED_DIR`], where [`crate::swarm::Swarm::load_image`] loads it from, and loaded into this
//! process's one-node machine if it has one ([`crate::docker::Dockerd`]).
//!
//! Needs root, the docker CLI, debootstrap (for the base) and access to Debian's mirror, PyPI and
//! npm; without them it fails with what is missing, never skips. `SWARMHUB_BASE_IMAGE` names
//! another base for the Python images (e.g. `debian:bookworm-slim` where a registry is
//! reachable; it must then exist in the builder); it is used as it is, not built.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use crate::builder::Builder;
use crate::docker::{repo_root, run_timeout};

/// Label holding the hash of an image's inputs.
pub const INPUTS_LABEL: &str = "org.swarmhub.inputs";
/// The local Debian base of the Python images (`images/debian-base.sh`).
pub const BASE_TAG: &str = "swarmhub/debian:bookworm";
/// Where requested images are saved (`<tag>.tar` and `<tag>.id`, the tag made a file name).
pub const SAVED_DIR: &str = "/var/tmp/swarmhub-tests/images";
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
    // the builder's lock also serialises the writes to target/dist between test processes
    let builder = Builder::start()?;
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
        Some(ensure_base(&builder, &root)?)
    };
    if !rust.is_empty() {
        build_dist(&builder, &root)?;
    }
    for image in images.iter().copied() {
        let mut inputs = common.clone();
        inputs.text("target", image.target());
        let extra: Vec<String> = if image.is_rust() {
            inputs.tree(&root, &format!("target/dist/{}", image.dist_dir()))?;
            vec!["--prebuilt".into(), "--network".into(), "host".into()]
        } else {
            let (base_tag, base_id) = base.clone().expect("ensured above");
            inputs.text("base", &base_id);
            vec!["--base".into(), base_tag, "--network".into(), "host".into()]
        };
        let hash = inputs.hash()?;
        let tag = image.tag();
        if image_label(&builder, &tag).as_deref() == Some(hash.as_str()) {
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
        let mut cmd = builder.command(root.join("images/build.sh"));
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
            image_label(&builder, &tag).as_deref() == Some(hash.as_str()),
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
    for e in &done {
        save(&builder, &e.tag)?;
    }
    drop(builder);
    let mut ensured = ENSURED.lock().unwrap_or_else(|e| e.into_inner());
    for e in &done {
        ensured.insert(e.tag.clone());
        crate::docker::load_into_machine(&e.tag)?;
    }
    Ok(done)
}

/// Tags [`ensure_images`] saved in this process: a machine started later loads them too.
static ENSURED: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// The tags [`ensure_images`] has saved so far in this process.
pub fn ensured_tags() -> Vec<String> {
    ENSURED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect()
}

fn saved_paths(tag: &str) -> (PathBuf, PathBuf) {
    let name = tag.replace(|c: char| !c.is_ascii_alphanumeric() && c != '.', "_");
    let dir = Path::new(SAVED_DIR);
    (
        dir.join(format!("{name}.tar")),
        dir.join(format!("{name}.id")),
    )
}

/// Saves `tag` from the builder to [`SAVED_DIR`] unless the file there is of the same image id
/// (written to a temporary name and renamed: a reader never sees half a file).
fn save(builder: &Builder, tag: &str) -> anyhow::Result<()> {
    let id = image_id(builder, tag).with_context(|| format!("{tag} is not in the builder"))?;
    let (tar, id_file) = saved_paths(tag);
    if tar.is_file() && std::fs::read_to_string(&id_file).ok().as_deref() == Some(id.as_str()) {
        return Ok(());
    }
    std::fs::create_dir_all(SAVED_DIR).with_context(|| format!("creating {SAVED_DIR}"))?;
    let tmp = tar.with_extension(format!("tar.{}", std::process::id()));
    let t = Instant::now();
    let out = builder.docker_timeout(
        &["save", "-o", &tmp.to_string_lossy(), tag],
        Duration::from_secs(600),
    );
    ensure!(
        out.success(),
        "saving {tag} from the builder: {}",
        out.describe()
    );
    std::fs::rename(&tmp, &tar)?;
    std::fs::write(&id_file, &id)?;
    eprintln!(
        "images: saved {tag} to {} in {:.1?}",
        tar.display(),
        t.elapsed()
    );
    Ok(())
}

/// The file [`ensure_images`] saved `tag` to, and its image id.
pub fn saved_image_with_id(tag: &str) -> anyhow::Result<(PathBuf, String)> {
    let (tar, id_file) = saved_paths(tag);
    let id = std::fs::read_to_string(&id_file)
        .ok()
        .filter(|_| tar.is_file());
    let id = id.with_context(|| {
        format!(
            "no saved image {tag} at {}: call images::ensure_images with it first",
            tar.display()
        )
    })?;
    Ok((tar, id))
}

/// The file [`ensure_images`] saved `tag` to.
pub fn saved_image(tag: &str) -> anyhow::Result<PathBuf> {
    Ok(saved_image_with_id(tag)?.0)
}

/// The base of the Python images: `$SWARMHUB_BASE_IMAGE` as it is, or [`BASE_TAG`] built with
/// `images/debian-base.sh` when missing or built from another version of the script.
/// Returns (tag, image id).
fn ensure_base(builder: &Builder, root: &Path) -> anyhow::Result<(String, String)> {
    if let Ok(base) = std::env::var("SWARMHUB_BASE_IMAGE") {
        let id = image_id(builder, &base).with_context(|| {
            format!(
                "SWARMHUB_BASE_IMAGE={base} is not an image in the test builder ({})",
                builder.host()
            )
        })?;
        return Ok((base, id));
    }
    let mut inputs = Inputs::default();
    inputs.file(root, "images/debian-base.sh")?;
    let hash = inputs.hash()?;
    if image_label(builder, BASE_TAG).as_deref() != Some(hash.as_str()) {
        eprintln!("images: building {BASE_TAG} with images/debian-base.sh (debootstrap)");
        let start = Instant::now();
        let mut cmd = builder.command(root.join("images/debian-base.sh"));
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
    let id = image_id(builder, BASE_TAG).context("the base image is missing after its build")?;
    Ok((BASE_TAG.to_string(), id))
}

/// The static release binaries (a no-op cargo build when current), laid out in `target/dist`.
fn build_dist(builder: &Builder, root: &Path) -> anyhow::Result<()> {
    let target = crate::nfsd::target_dir();
    let mut cmd = builder.command(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
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
    let mut layout = builder.command(root.join("images/layout.sh"));
    layout
        .arg(root.join("target/dist"))
        .arg(target.join(TRIPLE).join("release"));
    let out = run_timeout(layout, Duration::from_secs(300))?;
    ensure!(out.success(), "images/layout.sh failed: {}", out.describe());
    Ok(())
}

/// The value of [`INPUTS_LABEL`] on `tag` in the builder, if the image exists and has it.
pub fn image_label(builder: &Builder, tag: &str) -> Option<String> {
    let out = builder.docker(&[
        "image",
        "inspect",
        "-f",
        &format!("{{{{index .Config.Labels \"{INPUTS_LABEL}\"}}}}"),
        tag,
    ]);
    let v = out.stdout.trim();
    (out.success() && !v.is_empty() && v != "<no value>").then(|| v.to_string())
}

/// The image id of `tag` in the builder, if it exists.
pub fn image_id(builder: &Builder, tag: &str) -> Option<String> {
    let out = builder.docker(&["image", "inspect", "-f", "{{.Id}}", tag]);
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
