//! Settings of swarmhub-nfsd. Every setting has one name in the config file (TOML), as a flag
//! (`--name-with-dashes`) and in the environment (`SWARMHUB_NFSD_NAME`); flags and environment
//! win over the file, the file over the defaults. Unknown keys in the file are errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use ipnet::IpNet;
use serde::Deserialize;

use crate::identity::ldap::LdapSettings;
use crate::rpc::Limits;

/// Command line of `swarmhub-nfsd` (each flag also reads `SWARMHUB_NFSD_<NAME>`).
#[derive(Debug, Parser)]
#[command(
    name = "swarmhub-nfsd",
    version,
    about = "Userspace NFSv3 server for swarmhub volumes (MOUNT and NFS on one TCP port) with an HTTP control API"
)]
pub struct Args {
    /// TOML config file; its keys are the long flag names with '_' for '-'
    #[arg(long, env = "SWARMHUB_NFSD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data root: volumes/, shares/, removed/, registry.json, handle.key, rename-replay [default: /var/lib/swarmhub-nfsd]
    #[arg(long, env = "SWARMHUB_NFSD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the NFS + MOUNT listener [default: 127.0.0.1:2049]
    #[arg(long, env = "SWARMHUB_NFSD_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address of the HTTP control API [default: 127.0.0.1:8049]
    #[arg(long, env = "SWARMHUB_NFSD_API_LISTEN")]
    pub api_listen: Option<SocketAddr>,
    /// File holding the API bearer token [default: <data-dir>/api-token, created when missing]
    #[arg(long, env = "SWARMHUB_NFSD_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Client networks allowed to connect to NFS, comma separated (e.g. 10.0.0.0/8,127.0.0.1/32) [default: everyone]
    #[arg(long, env = "SWARMHUB_NFSD_ALLOW", value_delimiter = ',')]
    pub allow: Option<Vec<IpNet>>,
    /// Concurrent NFS connections [default: 512]
    #[arg(long, env = "SWARMHUB_NFSD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Calls processed at once per connection [default: 128]
    #[arg(long, env = "SWARMHUB_NFSD_MAX_IN_FLIGHT")]
    pub max_in_flight: Option<usize>,
    /// Seconds after which an idle connection is closed [default: 360]
    #[arg(long, env = "SWARMHUB_NFSD_IDLE_TIMEOUT_SECONDS")]
    pub idle_timeout_seconds: Option<u64>,
    /// fsync directories after namespace changes (true/false) [default: true]
    #[arg(long, env = "SWARMHUB_NFSD_SYNC_METADATA")]
    pub sync_metadata: Option<bool>,
    /// INSECURE, for tests of the network defence only: also accept MNT of a bare `/<volume>`
    /// without its capability secret (true/false) [default: false]
    #[arg(long, env = "SWARMHUB_NFSD_BARE_MOUNTS")]
    pub bare_mounts: Option<bool>,
    /// Log format: text or json [default: text]; the level comes from RUST_LOG
    #[arg(long, env = "SWARMHUB_NFSD_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// LDAP URL (ldap://host:port); enables lookups of user=<name>
    #[arg(long, env = "SWARMHUB_NFSD_LDAP_URL")]
    pub ldap_url: Option<String>,
    /// LDAP base DN searched for users and groups
    #[arg(long, env = "SWARMHUB_NFSD_LDAP_BASE_DN")]
    pub ldap_base_dn: Option<String>,
    /// LDAP DN to bind as (anonymous when absent)
    #[arg(long, env = "SWARMHUB_NFSD_LDAP_BIND_DN")]
    pub ldap_bind_dn: Option<String>,
    /// File holding the LDAP bind password
    #[arg(long, env = "SWARMHUB_NFSD_LDAP_PASSWORD_FILE")]
    pub ldap_password_file: Option<PathBuf>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The config file. Same names as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    api_listen: Option<SocketAddr>,
    token_file: Option<PathBuf>,
    allow: Option<Vec<IpNet>>,
    max_connections: Option<usize>,
    max_in_flight: Option<usize>,
    idle_timeout_seconds: Option<u64>,
    sync_metadata: Option<bool>,
    bare_mounts: Option<bool>,
    log_format: Option<LogFormat>,
    ldap: Option<LdapSettings>,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub api_listen: SocketAddr,
    /// `None`: the default `<data_dir>/api-token`, created when missing.
    pub token_file: Option<PathBuf>,
    pub limits: Limits,
    pub sync_metadata: bool,
    /// Accept MNT without the capability secret (insecure; tests of the network defence).
    pub bare_mounts: bool,
    pub log_format: LogFormat,
    pub ldap: Option<LdapSettings>,
}

impl Settings {
    /// Defaults, then the file, then flags and environment.
    pub fn resolve(args: Args) -> anyhow::Result<Self> {
        let file: File = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("config file {} is not valid", path.display()))?
            }
            None => File::default(),
        };
        let defaults = Limits::default();
        let limits = Limits {
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(defaults.max_connections),
            max_in_flight: args
                .max_in_flight
                .or(file.max_in_flight)
                .unwrap_or(defaults.max_in_flight),
            idle_timeout: args
                .idle_timeout_seconds
                .or(file.idle_timeout_seconds)
                .map(Duration::from_secs)
                .unwrap_or(defaults.idle_timeout),
            allow: args.allow.or(file.allow).unwrap_or_default(),
            max_record: defaults.max_record,
        };
        if limits.max_connections == 0 || limits.max_in_flight == 0 {
            bail!("max_connections and max_in_flight must be at least 1");
        }
        let mut ldap = file.ldap;
        if let Some(url) = args.ldap_url {
            let base = args
                .ldap_base_dn
                .clone()
                .or(ldap.as_ref().map(|l| l.base_dn.clone()))
                .context("--ldap-url needs --ldap-base-dn (or ldap.base_dn in the config file)")?;
            let mut l = ldap
                .take()
                .unwrap_or_else(|| LdapSettings::new(&url, &base));
            l.url = url;
            l.base_dn = base;
            ldap = Some(l);
        } else if let (Some(l), Some(base)) = (ldap.as_mut(), args.ldap_base_dn.clone()) {
            l.base_dn = base;
        } else if args.ldap_base_dn.is_some() {
            bail!("--ldap-base-dn needs --ldap-url");
        }
        if let Some(l) = ldap.as_mut() {
            if let Some(dn) = args.ldap_bind_dn {
                l.bind_dn = Some(dn);
            }
            if let Some(p) = args.ldap_password_file {
                l.password_file = Some(p);
            }
            l.validate().context("LDAP settings")?;
        } else if args.ldap_bind_dn.is_some() || args.ldap_password_file.is_some() {
            bail!("--ldap-bind-dn and --ldap-password-file need --ldap-url");
        }
        Ok(Self {
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("/var/lib/swarmhub-nfsd")),
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:2049".parse().expect("valid")),
            api_listen: args
                .api_listen
                .or(file.api_listen)
                .unwrap_or_else(|| "127.0.0.1:8049".parse().expect("valid")),
            token_file: args.token_file.or(file.token_file),
            limits,
            sync_metadata: args.sync_metadata.or(file.sync_metadata).unwrap_or(true),
            bare_mounts: args.bare_mounts.or(file.bare_mounts).unwrap_or(false),
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            ldap,
        })
    }

    /// Defaults for a server over `data_dir` on loopback ports chosen by the kernel: how tests,
    /// examples and embedding programs start nfsd in-process.
    pub fn ephemeral(data_dir: &Path) -> Self {
        let mut args = Args::parse_from(["swarmhub-nfsd"]);
        args.data_dir = Some(data_dir.to_path_buf());
        args.listen = Some("127.0.0.1:0".parse().expect("valid"));
        args.api_listen = Some("127.0.0.1:0".parse().expect("valid"));
        Self::resolve(args).expect("defaults without a config file always resolve")
    }

    /// Reads the API token: from the configured file (which must exist), or from
    /// `<data_dir>/api-token`, created with a random token when missing.
    pub fn load_token(&self) -> anyhow::Result<String> {
        let (path, create) = match &self.token_file {
            Some(p) => (p.clone(), false),
            None => (self.data_dir.join("api-token"), true),
        };
        read_token(&path, create)
    }
}

fn read_token(path: &Path, create: bool) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let token = text.trim().to_string();
            if token.len() < 16 {
                bail!(
                    "API token in {} is shorter than 16 characters; write a longer random token there",
                    path.display()
                );
            }
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let bytes: [u8; 24] = rand::random();
            let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            crate::volumes::atomic_write(path, format!("{token}\n").as_bytes(), 0o600)?;
            tracing::info!(path = %path.display(), "created a new API token");
            Ok(token)
        }
        Err(e) => Err(e).with_context(|| format!("reading API token file {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut v = vec!["swarmhub-nfsd"];
        v.extend_from_slice(extra);
        Args::parse_from(v)
    }

    #[test]
    fn flags_win_over_file_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("nfsd.toml");
        std::fs::write(
            &cfg,
            "listen = \"127.0.0.1:3049\"\nmax_connections = 7\nallow = [\"10.0.0.0/8\"]\n[ldap]\nurl = \"ldap://127.0.0.1:389\"\nbase_dn = \"dc=x\"\n",
        )
        .unwrap();
        let s = Settings::resolve(args(&[
            "--config",
            cfg.to_str().unwrap(),
            "--max-connections",
            "9",
        ]))
        .unwrap();
        assert_eq!(s.listen.port(), 3049);
        assert_eq!(s.limits.max_connections, 9);
        assert_eq!(s.limits.allow.len(), 1);
        assert_eq!(s.ldap.unwrap().base_dn, "dc=x");
        assert_eq!(s.api_listen.port(), 8049);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("nfsd.toml");
        std::fs::write(&cfg, "listne = \"127.0.0.1:1\"\n").unwrap();
        let err = Settings::resolve(args(&["--config", cfg.to_str().unwrap()])).unwrap_err();
        assert!(format!("{err:#}").contains("listne"), "{err:#}");
        Args::try_parse_from(["swarmhub-nfsd", "--bogus"]).unwrap_err();
        Args::try_parse_from(["swarmhub-nfsd", "--allow", "10.0.0.0/99"]).unwrap_err();
        let err = Settings::resolve(args(&["--ldap-url", "ldap://x"])).unwrap_err();
        assert!(format!("{err:#}").contains("--ldap-base-dn"), "{err:#}");
    }

    #[test]
    fn token_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tok");
        let t = read_token(&p, true).unwrap();
        assert_eq!(read_token(&p, false).unwrap(), t);
        let err = read_token(&dir.path().join("missing"), false).unwrap_err();
        assert!(format!("{err:#}").contains("missing"), "{err:#}");
    }
}
