//! Building and pushing swarmhub's images through dockerd's build API (`hub build`,
//! `hub push`, `rebuild`): the repository's Dockerfile, one target per image, tagged with the
//! pinned references of `[images]`.
//!
//! The build context is packed here as a tar (the repository without `.git` and without
//! `target/` except `target/dist`, where `--prebuilt` binaries live). Each image gets the
//! build argument `SWARMHUB_VERSION` (its tag), which the Dockerfile records as the label
//! `org.opencontainers.image.version`. Without a registry the images stay on the dockerd that
//! built them; other nodes need `docker save | docker load`. With one, `push` uploads them
//! (tagging an image built under its name without the registry first) and the plugin.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use futures_util::StreamExt;

use crate::docker::engine::{Engine, ImageBuild, RegistryLogin, absent, registry_access_fix};
use crate::exit::CliError;
use crate::lifecycle::registry;
use crate::progress::Progress;
use crate::settings::Config;
use crate::steps::{Change, Step};

/// One image: the Dockerfile target that builds it and the reference it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageTarget {
    /// Dockerfile target (`hub`, `notebook-student`, ...).
    pub target: String,
    /// The pinned reference from `[images]`.
    pub tag: String,
    /// Whether the Rust binaries are compiled by the target (so `--prebuilt` switches it to
    /// `<target>-prebuilt`).
    pub rust: bool,
}

fn image(target: &str, tag: &str, rust: bool) -> ImageTarget {
    ImageTarget {
        target: target.into(),
        tag: tag.into(),
        rust,
    }
}

/// The hub and the two notebook images.
pub fn hub_images(cfg: &Config) -> Vec<ImageTarget> {
    let i = &cfg.images;
    vec![
        image("hub", &i.hub, false),
        image("notebook-student", &i.notebook_student, false),
        image("notebook-teacher", &i.notebook_teacher, false),
    ]
}

/// Every image of the stack: nfsd, the CLI (which carries the plugin), hub and notebooks.
pub fn all_images(cfg: &Config) -> Vec<ImageTarget> {
    let i = &cfg.images;
    let mut v = vec![image("nfsd", &i.nfsd, true), image("cli", &i.cli, true)];
    v.extend(hub_images(cfg));
    v
}

/// What the build context leaves out besides `target/` (whose `target/dist` it keeps): what
/// `.dockerignore` lists, i.e. git's data and cargo-fuzz's build output, findings and corpus
/// (`fuzz/run.sh` leaves gigabytes there; no image needs them).
const LEFT_OUT: [&str; 5] = [
    ".git",
    "fuzz/target",
    "fuzz/artifacts",
    "fuzz/coverage",
    "fuzz/corpus",
];

/// The build context as a tar: everything under `dir` but [`LEFT_OUT`] and `target/` (except
/// `target/dist`). Every file is a plain entry: the tar crate would write a sparse file (a
/// linker's output often is one) as a GNU sparse entry, which dockerd refuses ("unhandled tar
/// header type 83").
pub fn context_tar(dir: &Path) -> anyhow::Result<Vec<u8>> {
    if !dir.join("Dockerfile").is_file() {
        anyhow::bail!(
            "{} has no Dockerfile: give the swarmhub checkout with --context DIR",
            dir.display()
        );
    }
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.sparse(false);
    add_dir(&mut b, dir, Path::new(""))?;
    b.into_inner().context("cannot finish the build context")
}

fn add_dir(b: &mut tar::Builder<Vec<u8>>, root: &Path, rel: &Path) -> anyhow::Result<()> {
    let dir = root.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = rel.join(e.file_name());
        let n = name.to_string_lossy();
        if LEFT_OUT.contains(&n.as_ref()) || (n == "target" && !root.join("target/dist").exists()) {
            continue;
        }
        let ft = e.file_type().with_context(|| format!("cannot stat {n}"))?;
        if n == "target" {
            b.append_dir(&name, e.path())
                .with_context(|| format!("cannot pack {n}"))?;
            add_dir(b, root, &Path::new("target").join("dist"))?;
            continue;
        }
        if ft.is_dir() {
            b.append_dir(&name, e.path())
                .with_context(|| format!("cannot pack {n}"))?;
            add_dir(b, root, &name)?;
        } else {
            b.append_path_with_name(e.path(), &name)
                .with_context(|| format!("cannot pack {n}"))?;
        }
    }
    Ok(())
}

/// How to build and push the images (`swarmhub rebuild`, `hub build|push`; the command line
/// fills it).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The build context: a checkout of swarmhub with its Dockerfile.
    pub context: PathBuf,
    /// Build the Rust images from binaries already in target/dist.
    pub prebuilt: bool,
    /// Build arguments `KEY=VALUE` for the Dockerfile.
    pub build_args: Vec<String>,
    /// Network of the build containers.
    pub network: Option<String>,
    /// The dockerd that builds and pushes, when not the manager's (`unix:///...`, `tcp://...`).
    pub build_host: Option<String>,
}

/// The build argument that carries an image's version (its tag) into its label.
pub const VERSION_ARG: &str = "SWARMHUB_VERSION";

fn build_args(args: &BuildOptions) -> Result<HashMap<String, String>, CliError> {
    args.build_args
        .iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(CliError::Usage(format!(
                "--build-arg {a:?} is not KEY=VALUE"
            ))),
        })
        .collect()
}

/// Build `images` from the context in `args`, one target each, through `engine`.
pub async fn build(
    engine: &dyn Engine,
    progress: &Progress,
    args: &BuildOptions,
    images: &[ImageTarget],
) -> Result<Vec<Step>, CliError> {
    let buildargs = build_args(args)?;
    let tar = context_tar(&args.context)?;
    let mut steps = Vec::new();
    for img in images {
        let target = if img.rust && args.prebuilt {
            format!("{}-prebuilt", img.target)
        } else {
            img.target.clone()
        };
        let bar = progress.spinner(format!("building {} (target {target})", img.tag));
        let mut buildargs = buildargs.clone();
        let (_, version) = split_tag(&img.tag);
        buildargs
            .entry(VERSION_ARG.to_string())
            .or_insert_with(|| version.to_string());
        let build = ImageBuild {
            target: target.clone(),
            tag: img.tag.clone(),
            buildargs,
            network: args.network.clone(),
        };
        let mut stream = engine.build_image(build, tar.clone());
        let mut last = String::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| {
                anyhow::anyhow!(
                    "cannot build {} (target {target}): {}\n  last output: {last}",
                    img.tag,
                    e.message()
                )
            })?;
            if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                return Err(anyhow::anyhow!(
                    "building {} (target {target}) failed: {detail}\n  last output: {last}",
                    img.tag
                )
                .into());
            }
            if let Some(s) = info.stream {
                let s = s.trim();
                if !s.is_empty() {
                    last = s.to_string();
                    bar.set_message(format!("building {}: {}", img.tag, truncate(s, 80)));
                }
            }
        }
        bar.finish();
        steps.push(
            Step::new("image", &img.tag, Change::Created).note(format!("built target {target}")),
        );
    }
    Ok(steps)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n).collect::<String>() + "…"
    }
}

/// Push `images` to `registry.address` through `engine` (each reference names that
/// registry: `[images]` without one are moved into it). An image that exists only under its
/// name without the registry (built before the registry was set, or by images/build.sh) is
/// tagged first.
pub async fn push(
    engine: &dyn Engine,
    progress: &Progress,
    cfg: &Config,
    login: Option<&RegistryLogin>,
    images: &[ImageTarget],
) -> Result<Vec<Step>, CliError> {
    let Some(address) = &cfg.registry.address else {
        return Err(CliError::Precondition {
            what: "no registry is configured, so there is nowhere to push".into(),
            fix: "set registry.address (and registry.username) in swarmhub.toml; without a registry, copy images with docker save | docker load".into(),
        });
    };
    let anonymous = RegistryLogin {
        server: address.clone(),
        ..Default::default()
    };
    let mut steps = Vec::new();
    for img in images {
        if registry::address_of(&img.tag) != Some(address.as_str()) {
            return Err(CliError::Precondition {
                what: format!("image {} does not name the registry {address}", img.tag),
                fix:
                    "leave the registry out of [images] references (it is added), or name this one"
                        .into(),
            });
        }
        let (name, tag) = split_tag(&img.tag);
        let local = absent(engine.inspect_image(&img.tag).await)
            .with_context(|| format!("cannot inspect {}", img.tag))?;
        let bare = &img.tag[address.len() + 1..];
        let unqualified = absent(engine.inspect_image(bare).await)
            .with_context(|| format!("cannot inspect {bare}"))?;
        // the newer of the two is what was built last (images/build.sh builds the name
        // without the registry; `swarmhub build` the one with it)
        let created = |i: &bollard::models::ImageInspect| i.created.clone().unwrap_or_default();
        let tag_bare = match (&local, &unqualified) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(q), Some(b)) => q.id != b.id && created(b) > created(q),
        };
        if local.is_none() && unqualified.is_none() {
            return Err(CliError::Precondition {
                what: format!(
                    "image {} is not on this dockerd, so it cannot be pushed",
                    img.tag
                ),
                fix: "build it first: swarmhub build (or swarmhub rebuild)".into(),
            });
        }
        if tag_bare {
            engine.tag_image(bare, name, tag).await.map_err(|e| {
                anyhow::anyhow!("cannot tag {bare} as {}: {}", img.tag, e.message())
            })?;
        }
        let bar = progress.spinner(format!("pushing {}", img.tag));
        let mut stream = engine.push_image(name, tag, login.cloned().unwrap_or(anonymous.clone()));
        while let Some(item) = stream.next().await {
            let info =
                item.map_err(|e| anyhow::anyhow!("cannot push {}: {}", img.tag, e.message()))?;
            if let Some(e) = info.error_detail.and_then(|d| d.message) {
                return Err(push_failed(&img.tag, address, cfg.registry.tls, &e));
            }
            if let Some(s) = info.status {
                bar.set_message(format!("pushing {}: {s}", img.tag));
            }
        }
        bar.finish();
        steps.push(
            Step::new("image", &img.tag, Change::Updated).note(format!("pushed to {address}")),
        );
    }
    Ok(steps)
}

/// A push dockerd refused, with the fix for the usual causes.
fn push_failed(image: &str, address: &str, tls: bool, e: &str) -> CliError {
    let fix = registry_access_fix(address, e).unwrap_or_else(|| {
        let scheme = if tls { "https" } else { "http" };
        format!("check that the registry answers from this machine: curl {scheme}://{address}/v2/")
    });
    CliError::Precondition {
        what: format!("pushing {image} failed: {e}"),
        fix,
    }
}

/// `reg:5000/a/b:1.0` → (`reg:5000/a/b`, `1.0`); a digest reference stays whole.
pub fn split_tag(r: &str) -> (&str, &str) {
    if r.contains('@') {
        return (r, "");
    }
    match r.rfind(':') {
        Some(i) if !r[i..].contains('/') => (&r[..i], &r[i + 1..]),
        _ => (r, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_tag_not_the_port() {
        assert_eq!(
            split_tag("reg:5000/swarmhub/hub:0.1.0"),
            ("reg:5000/swarmhub/hub", "0.1.0")
        );
        assert_eq!(
            split_tag("reg:5000/swarmhub/hub"),
            ("reg:5000/swarmhub/hub", "latest")
        );
        assert_eq!(split_tag("swarmhub/hub:0.1.0"), ("swarmhub/hub", "0.1.0"));
    }

    #[test]
    fn the_context_leaves_out_git_and_build_output() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::create_dir_all(d.join(".git")).unwrap();
        std::fs::write(d.join(".git/HEAD"), "x").unwrap();
        std::fs::create_dir_all(d.join("target/debug")).unwrap();
        std::fs::write(d.join("target/debug/big"), "x").unwrap();
        std::fs::create_dir_all(d.join("src")).unwrap();
        std::fs::write(d.join("src/main.rs"), "fn main() {}").unwrap();
        let names = |tar: Vec<u8>| -> Vec<String> {
            tar::Archive::new(tar.as_slice())
                .entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().display().to_string())
                .collect()
        };
        let n = names(context_tar(d).unwrap());
        assert!(
            n.contains(&"Dockerfile".to_string()) && n.contains(&"src/main.rs".to_string()),
            "{n:?}"
        );
        assert!(
            !n.iter()
                .any(|x| x.starts_with(".git") || x.starts_with("target")),
            "{n:?}"
        );
        std::fs::create_dir_all(d.join("target/dist")).unwrap();
        std::fs::write(d.join("target/dist/swarmhub"), "bin").unwrap();
        let n = names(context_tar(d).unwrap());
        assert!(n.contains(&"target/dist/swarmhub".to_string()), "{n:?}");
        assert!(!n.iter().any(|x| x.starts_with("target/debug")), "{n:?}");
        let e = context_tar(&d.join("src")).unwrap_err();
        assert!(e.to_string().contains("--context"), "{e}");
    }

    #[test]
    fn the_context_leaves_out_fuzzing_output_and_has_no_sparse_entries() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("Dockerfile"), "FROM scratch\n").unwrap();
        for f in [
            "fuzz/target/release/x",
            "fuzz/corpus/nfs_calls/1",
            "fuzz/artifacts/a",
            "fuzz/coverage/c",
        ] {
            std::fs::create_dir_all(d.join(f).parent().unwrap()).unwrap();
            std::fs::write(d.join(f), "x").unwrap();
        }
        std::fs::create_dir_all(d.join("fuzz/fuzz_targets")).unwrap();
        std::fs::write(d.join("fuzz/fuzz_targets/t.rs"), "").unwrap();
        // a file with a 4 MiB hole, as a linker may leave a binary
        let sparse = std::fs::File::create(d.join("holes.bin")).unwrap();
        sparse.set_len(4 << 20).unwrap();
        std::os::unix::fs::FileExt::write_at(&sparse, b"end", (4 << 20) - 3).unwrap();
        drop(sparse);
        let tar = context_tar(d).unwrap();
        let mut seen = Vec::new();
        for e in tar::Archive::new(tar.as_slice()).entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let kind = e.header().entry_type();
            assert!(!kind.is_gnu_sparse(), "{name} is a sparse entry");
            if name == "holes.bin" {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data).unwrap();
                assert_eq!(data.len(), 4 << 20);
                assert!(data.ends_with(b"end"));
            }
            seen.push(name);
        }
        assert!(
            seen.contains(&"fuzz/fuzz_targets/t.rs".to_string()),
            "{seen:?}"
        );
        assert!(seen.contains(&"holes.bin".to_string()), "{seen:?}");
        for gone in [
            "fuzz/target",
            "fuzz/corpus",
            "fuzz/artifacts",
            "fuzz/coverage",
        ] {
            assert!(
                !seen.iter().any(|x| x.starts_with(gone)),
                "{gone}: {seen:?}"
            );
        }
    }

    #[test]
    fn every_image_of_the_stack_is_built() {
        let cfg = Config::default();
        let all: Vec<String> = all_images(&cfg).into_iter().map(|i| i.target).collect();
        assert_eq!(
            all,
            ["nfsd", "cli", "hub", "notebook-student", "notebook-teacher"]
        );
    }
}
