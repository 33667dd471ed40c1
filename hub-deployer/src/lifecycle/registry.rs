//! The registry every node pulls swarmhub from (`[registry]`): who logs in to it, which digest
//! each image reference names there now (what `run` deploys: services pinned by digest, so
//! every node runs the same bytes and a later push changes nothing until the next `run`), and
//! the plugin's push (its bundle read from the CLI image it was built into).
//!
//! Logins, in order: `--registry-password-file` with `registry.username`; the `docker login`
//! of whoever runs the CLI (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`); none
//! (anonymous). On the nodes the rollout job logs in with the Docker secret
//! `registry.password_secret`, or, without a user name, with the node's own `docker login`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine as _;

use crate::docker::cluster::Swarm;
use crate::docker::engine::{Engine, EngineError, RegistryLogin, absent, registry_access_fix};
use crate::exit::CliError;
use crate::plan::PLUGIN_BUNDLE_DIR;
use crate::settings::{Config, names_registry};
use crate::steps::{Change, Step};

/// The registry an image reference names (`10.0.0.5:5000/swarmhub/hub:1` → `10.0.0.5:5000`).
pub fn address_of(reference: &str) -> Option<&str> {
    names_registry(reference).then(|| reference.split('/').next().unwrap_or_default())
}

/// The login of a Docker client config (`{"auths": {"host:port": {"auth": base64(user:pass)}}}`)
/// for `address`; `None` when the file or the entry is missing. Credential helpers
/// (`credsStore`) keep no password in the file and are not read.
pub fn docker_config_login(path: &Path, address: &str) -> anyhow::Result<Option<RegistryLogin>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a Docker client config (JSON)", path.display()))?;
    let auths = &v["auths"];
    let entry = [
        address.to_string(),
        format!("https://{address}"),
        format!("http://{address}"),
    ]
    .into_iter()
    .find_map(|k| auths.get(&k).and_then(|e| e["auth"].as_str()));
    let Some(encoded) = entry else {
        return Ok(None);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .with_context(|| {
            format!(
                "the login of {address} in {} is not base64 of user:password",
                path.display()
            )
        })?;
    let (user, password) = decoded.split_once(':').with_context(|| {
        format!(
            "the login of {address} in {} is not user:password",
            path.display()
        )
    })?;
    Ok(Some(RegistryLogin {
        server: address.to_string(),
        username: Some(user.to_string()),
        password: Some(password.to_string()),
    }))
}

/// The Docker client config of whoever runs the CLI.
fn own_docker_config() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The login the CLI uses for the registry (see the module docs); `None` without a registry
/// or for an anonymous one.
pub fn manager_login(
    cfg: &Config,
    password_file: Option<&Path>,
) -> Result<Option<RegistryLogin>, CliError> {
    let Some(address) = &cfg.registry.address else {
        return Ok(None);
    };
    let username = cfg.registry.username.clone();
    if let Some(p) = password_file {
        let Some(user) = username else {
            return Err(CliError::Usage(
                "--registry-password-file needs registry.username in swarmhub.toml".into(),
            ));
        };
        if p.as_os_str() == "-" {
            return Err(CliError::Usage(
                "give the registry password as a file (--registry-password-file FILE); it is read more than once".into(),
            ));
        }
        return Ok(Some(RegistryLogin {
            server: address.clone(),
            username: Some(user),
            password: Some(read_password(p)?),
        }));
    }
    let own = match own_docker_config() {
        Some(path) => docker_config_login(&path, address)?,
        None => None,
    };
    match (own, username) {
        (Some(l), Some(user)) if l.username.as_deref() != Some(user.as_str()) => {
            Err(CliError::Precondition {
                what: format!(
                    "registry.username is {user}, but this machine's docker login for {address} is {}",
                    l.username.unwrap_or_default()
                ),
                fix: "give the password with --registry-password-file FILE, or docker login as that user".into(),
            })
        }
        (Some(l), _) => Ok(Some(l)),
        (None, Some(user)) => Err(CliError::Precondition {
            what: format!("registry.username is {user}, but no password for {address} was given"),
            fix: "give it with --registry-password-file FILE (stored once as the Docker secret registry.password_secret), or `docker login` here".into(),
        }),
        (None, None) => Ok(None),
    }
}

/// A password file's content without its final line break.
fn read_password(p: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(p)
        .with_context(|| format!("cannot read the registry password from {}", p.display()))?;
    Ok(String::from_utf8(bytes)
        .context("the registry password is not UTF-8")?
        .trim_end_matches(['\n', '\r'])
        .to_string())
}

/// The login of the node side (the rollout job) to the registry of `references`: the password
/// in the Docker secret `secret_file` for `username`, or without a user name the node's own
/// `docker login` in `docker_config`; `None` without a registry or for an anonymous one.
pub fn node_login<'a>(
    references: impl IntoIterator<Item = &'a String>,
    username: Option<&str>,
    secret_file: Option<&Path>,
    docker_config: Option<&Path>,
) -> anyhow::Result<Option<RegistryLogin>> {
    let Some(address) = references.into_iter().find_map(|r| address_of(r)) else {
        return Ok(None);
    };
    match (username, secret_file, docker_config) {
        (Some(user), Some(file), _) => Ok(Some(RegistryLogin {
            server: address.to_string(),
            username: Some(user.to_string()),
            password: Some(read_password(file)?),
        })),
        (None, _, Some(path)) => docker_config_login(path, address),
        _ => Ok(None),
    }
}

/// `reference` pinned to `digest` (`name:tag@sha256:...`), replacing an older pin.
pub fn pinned(reference: &str, digest: &str) -> String {
    let name = reference.split('@').next().unwrap_or(reference);
    format!("{name}@{digest}")
}

/// The settings with every image and the plugin pinned to the digest its reference names in
/// the registry now; unchanged without a registry, and for references pinned already.
pub async fn pin(c: &Swarm, cfg: &Config) -> Result<Config, CliError> {
    let Some(address) = &cfg.registry.address else {
        return Ok(cfg.clone());
    };
    let mut out = cfg.clone();
    for (key, image) in out.images.references_mut() {
        if image.contains('@') {
            continue;
        }
        let digest = c
            .engine()
            .registry_digest(image, c.registry_login.as_ref())
            .await
            .map_err(|e| not_in_registry(key, image, address, &e))?;
        *image = pinned(image, &digest);
    }
    Ok(out)
}

fn not_in_registry(key: &str, image: &str, address: &str, e: &EngineError) -> CliError {
    if matches!(e, EngineError::Unreachable(_)) {
        return anyhow::anyhow!("cannot ask dockerd for {image} ({key}): {}", e.message()).into();
    }
    let m = e.message();
    let fix = registry_access_fix(address, m)
        .unwrap_or_else(|| "push it first: swarmhub push (or swarmhub rebuild)".into());
    CliError::Precondition {
        what: format!("{image} ({key}) cannot be found in the registry {address}: {m}"),
        fix,
    }
}

/// The plugin bundle inside the CLI image (`config.json`, `rootfs/`), as the tar
/// `POST /plugins/create` takes.
pub async fn bundle_from_image(engine: &dyn Engine, cli_image: &str) -> Result<Vec<u8>, CliError> {
    let tar = engine
        .image_files(cli_image, PLUGIN_BUNDLE_DIR)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read the plugin bundle {PLUGIN_BUNDLE_DIR} from {cli_image}: {}",
                e.message()
            )
        })?;
    Ok(strip_first_component(&tar)
        .with_context(|| format!("cannot repack the plugin bundle of {cli_image}"))?)
}

/// A tar with its entries' first path component removed (`plugin/rootfs/x` → `rootfs/x`).
fn strip_first_component(tar: &[u8]) -> anyhow::Result<Vec<u8>> {
    let strip = |p: &Path| -> PathBuf { p.components().skip(1).collect() };
    let mut out = tar::Builder::new(Vec::new());
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = strip(&entry.path()?);
        if path.as_os_str().is_empty() {
            continue;
        }
        let mut header = entry.header().clone();
        match header.entry_type() {
            tar::EntryType::Symlink => {
                let target = entry.link_name()?.unwrap_or_default().into_owned();
                out.append_link(&mut header, &path, target)?;
            }
            tar::EntryType::Link => {
                let target = strip(&entry.link_name()?.unwrap_or_default());
                out.append_link(&mut header, &path, target)?;
            }
            _ => out.append_data(&mut header, &path, &mut entry)?,
        }
    }
    Ok(out.into_inner()?)
}

/// Push the plugin of the CLI image `cfg.images.cli` as `cfg.images.plugin` (through the
/// dockerd of `engine`: created there under that name, pushed, removed again).
pub async fn push_plugin(
    c: &Swarm,
    cfg: &Config,
    login: Option<&RegistryLogin>,
) -> Result<Step, CliError> {
    let engine = c.engine();
    let name = &cfg.images.plugin;
    let Some(address) = &cfg.registry.address else {
        return Err(CliError::Precondition {
            what: "no registry is configured, so the plugin cannot be pushed".into(),
            fix: "set registry.address in swarmhub.toml".into(),
        });
    };
    if address_of(name) != Some(address.as_str()) {
        return Err(CliError::Precondition {
            what: format!("images.plugin {name} is not in the registry {address}"),
            fix: "leave the registry out of images.plugin (it is added) or name this one".into(),
        });
    }
    let bundle = bundle_from_image(engine, &cfg.images.cli).await?;
    // a leftover of an earlier push (never enabled) goes first
    if absent(engine.inspect_plugin(name).await)
        .with_context(|| format!("cannot inspect plugin {name}"))?
        .is_some()
    {
        engine
            .remove_plugin(name)
            .await
            .map_err(|e| anyhow::anyhow!("cannot remove the earlier {name}: {}", e.message()))?;
    }
    engine
        .create_plugin(name, bundle)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create plugin {name}: {}", e.message()))?;
    let pushed = engine.push_plugin(&c.host, name, login).await;
    let removed = engine.remove_plugin(name).await;
    pushed.map_err(|e| anyhow::anyhow!("cannot push plugin {name}: {}", e.message()))?;
    removed.map_err(|e| {
        anyhow::anyhow!(
            "pushed, but cannot remove the local {name}: {}",
            e.message()
        )
    })?;
    Ok(Step::new("plugin", name, Change::Updated).note(format!("pushed to {address}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_read_off_references() {
        assert_eq!(
            address_of("10.0.0.5:5000/swarmhub/hub:1"),
            Some("10.0.0.5:5000")
        );
        assert_eq!(address_of("reg.example.edu/hub:1"), Some("reg.example.edu"));
        assert_eq!(address_of("localhost/hub:1"), Some("localhost"));
        assert_eq!(address_of("swarmhub/hub:1"), None);
        assert_eq!(address_of("hub:1"), None);
        assert_eq!(
            pinned("r:5000/a/b:1@sha256:old", "sha256:new"),
            "r:5000/a/b:1@sha256:new"
        );
        assert_eq!(pinned("r:5000/a/b:1", "sha256:d"), "r:5000/a/b:1@sha256:d");
    }

    #[test]
    fn docker_logins_are_read_and_bad_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        assert_eq!(docker_config_login(&p, "r:5000").unwrap(), None);
        let auth = base64::engine::general_purpose::STANDARD.encode("ann:pw:with:colons");
        std::fs::write(
            &p,
            format!(r#"{{"auths": {{"https://r:5000": {{"auth": "{auth}"}}, "other": {{}}}}}}"#),
        )
        .unwrap();
        let l = docker_config_login(&p, "r:5000").unwrap().unwrap();
        assert_eq!(l.username.as_deref(), Some("ann"));
        assert_eq!(l.password.as_deref(), Some("pw:with:colons"));
        assert_eq!(docker_config_login(&p, "elsewhere:5000").unwrap(), None);
        std::fs::write(&p, r#"{"auths": {"r:5000": {"auth": "!!!"}}}"#).unwrap();
        let e = docker_config_login(&p, "r:5000").unwrap_err();
        assert!(format!("{e:#}").contains("base64"), "{e:#}");
        std::fs::write(&p, "not json").unwrap();
        let e = docker_config_login(&p, "r:5000").unwrap_err();
        assert!(
            format!("{e:#}").contains("not a Docker client config"),
            "{e:#}"
        );
    }

    #[test]
    fn nodes_log_in_with_the_secret_or_their_own_docker_login() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "pw\n").unwrap();
        let config = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("node:npw");
        std::fs::write(
            &config,
            format!(r#"{{"auths": {{"r:5000": {{"auth": "{auth}"}}}}}}"#),
        )
        .unwrap();
        let refs = ["r:5000/swarmhub/swarmhub-nfs:1".to_string()];
        let l = node_login(&refs, Some("ann"), Some(&secret), Some(&config))
            .unwrap()
            .unwrap();
        assert_eq!(
            (l.username.as_deref(), l.password.as_deref()),
            (Some("ann"), Some("pw"))
        );
        let l = node_login(&refs, None, None, Some(&config))
            .unwrap()
            .unwrap();
        assert_eq!(
            (l.username.as_deref(), l.password.as_deref()),
            (Some("node"), Some("npw"))
        );
        assert_eq!(node_login(&refs, None, None, None).unwrap(), None);
        // no registry in the references: nothing to log in to
        let local = ["swarmhub/swarmhub-nfs:1".to_string()];
        assert_eq!(
            node_login(&local, Some("ann"), Some(&secret), None).unwrap(),
            None
        );
        let e = node_login(&refs, Some("ann"), Some(&dir.path().join("nope")), None).unwrap_err();
        assert!(
            format!("{e:#}").contains("cannot read the registry password"),
            "{e:#}"
        );
    }

    #[test]
    fn a_password_needs_a_user_and_a_user_needs_a_password() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let mut cfg = Config::default();
        assert_eq!(manager_login(&cfg, Some(&pw)).unwrap(), None);
        cfg.registry.address = Some("r:5000".into());
        assert!(matches!(
            manager_login(&cfg, Some(&pw)),
            Err(CliError::Usage(_))
        ));
        cfg.registry.username = Some("ann".into());
        let l = manager_login(&cfg, Some(&pw)).unwrap().unwrap();
        assert_eq!(
            (
                l.server.as_str(),
                l.username.as_deref(),
                l.password.as_deref()
            ),
            ("r:5000", Some("ann"), Some("s3cret"))
        );
        assert!(matches!(
            manager_login(&cfg, Some(Path::new("-"))),
            Err(CliError::Usage(_))
        ));
    }

    #[tokio::test]
    async fn deploys_are_pinned_to_what_the_registry_holds() {
        use crate::docker::cluster::Cluster;
        use crate::docker::fake::Fake;
        let cfg = Config::from_toml(
            "[registry]\naddress = \"r:5000\"\n",
            Path::new("swarmhub.toml"),
            Vec::new(),
        )
        .unwrap();
        let fake = Fake::one_node(&[]);
        for (repo, digest) in [
            ("nfsd", "sha256:01"),
            ("hub", "sha256:02"),
            ("notebook-student", "sha256:03"),
            ("notebook-teacher", "sha256:04"),
            ("swarmhub", "sha256:05"),
        ] {
            fake.publish(&format!("r:5000/swarmhub/{repo}:0.1.0"), digest);
        }
        let c = Cluster::new("fake", &cfg.timeouts, fake);
        // the plugin was never pushed: the fix says so
        let e = pin(&c, &cfg).await.unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("r:5000/swarmhub/swarmhub-nfs:0.1.0 (images.plugin)")
                && text.contains("fix: push it first: swarmhub push"),
            "{text}"
        );
        c.engine()
            .publish("r:5000/swarmhub/swarmhub-nfs:0.1.0", "sha256:06");
        let p = pin(&c, &cfg).await.unwrap();
        assert_eq!(p.images.nfsd, "r:5000/swarmhub/nfsd:0.1.0@sha256:01");
        assert_eq!(
            p.images.plugin,
            "r:5000/swarmhub/swarmhub-nfs:0.1.0@sha256:06"
        );
        // pinned again after a new push: the new digest replaces the old one
        c.engine()
            .publish("r:5000/swarmhub/nfsd:0.1.0", "sha256:11");
        let again = pin(
            &c,
            &Config {
                images: p.images.clone(),
                ..cfg.clone()
            },
        )
        .await
        .unwrap();
        assert_eq!(
            again.images.nfsd, "r:5000/swarmhub/nfsd:0.1.0@sha256:01",
            "a pinned reference stays as given"
        );
        let fresh = pin(&c, &cfg).await.unwrap();
        assert_eq!(fresh.images.nfsd, "r:5000/swarmhub/nfsd:0.1.0@sha256:11");
        // without a registry nothing is asked
        let plain = Config::default();
        assert_eq!(pin(&c, &plain).await.unwrap(), plain);
    }

    #[tokio::test]
    async fn the_plugin_is_pushed_from_the_cli_image_and_not_left_behind() {
        use crate::docker::cluster::Cluster;
        use crate::docker::fake::Fake;
        let cfg = Config::from_toml(
            "[registry]\naddress = \"r:5000\"\nusername = \"ann\"\n",
            Path::new("swarmhub.toml"),
            Vec::new(),
        )
        .unwrap();
        let c = Cluster::new("fake", &cfg.timeouts, Fake::one_node(&[]));
        let fake = c.engine();
        let login = RegistryLogin {
            server: "r:5000".into(),
            username: Some("ann".into()),
            password: Some("pw".into()),
        };
        let step = push_plugin(&c, &cfg, Some(&login)).await.unwrap();
        assert_eq!(step.name, "r:5000/swarmhub/swarmhub-nfs:0.1.0");
        assert_eq!(
            fake.changes(),
            [
                "create_plugin r:5000/swarmhub/swarmhub-nfs:0.1.0",
                "push_plugin r:5000/swarmhub/swarmhub-nfs:0.1.0 as ann",
                "remove_plugin r:5000/swarmhub/swarmhub-nfs:0.1.0",
            ]
        );
        assert!(fake.calls().contains(&format!(
            "image_files r:5000/swarmhub/swarmhub:0.1.0 {PLUGIN_BUNDLE_DIR}"
        )));
        let e = push_plugin(&c, &Config::default(), None).await.unwrap_err();
        assert!(e.to_string().contains("registry.address"), "{e}");
    }

    #[test]
    fn bundles_lose_their_top_directory() {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            b.append_data(&mut h, path, data).unwrap();
        };
        add("plugin/config.json", b"{}");
        add("plugin/rootfs/swarmhub-volume-plugin", b"bin");
        let tar = b.into_inner().unwrap();
        let out = strip_first_component(&tar).unwrap();
        let names: Vec<String> = tar::Archive::new(out.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["config.json", "rootfs/swarmhub-volume-plugin"]);
    }
}
