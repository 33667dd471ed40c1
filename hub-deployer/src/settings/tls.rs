//! TLS of the hub: the certificate and key it serves, read and checked before they become
//! Docker secrets, and the small CA plus server certificate `swarmhub` makes itself
//! (`[tls] mode = "self-signed"`, `swarmhub tls self-signed`, the demo).
//!
//! Checks on given files (each failure names the file, the cause and the fix): the path is a
//! regular file (never opened otherwise: opening a FIFO would block), it holds PEM, the key
//! belongs to the first certificate, the certificate is valid now, and its names cover the
//! public URL's host.
//!
//! The self-signed set lives in one directory (default `tls/` next to `swarmhub.toml`):
//! `ca.pem` (what users trust), `ca-key.pem` (0600, never leaves the directory), `hub.pem` and
//! `hub-key.pem` (what the hub serves). It is kept across runs: the CA is replaced only when it
//! is near its end, the server certificate only when its names changed, it is near its end or
//! it is not the current CA's; every replacement is reported with the reason.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Serialize;
use thiserror::Error;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::names::hub_tls_secret_prefix;
use crate::settings::{Config, ConfigError, TlsMode};

/// File of the self-signed set: the CA certificate users trust.
pub const CA_CERT: &str = "ca.pem";
/// File of the self-signed set: the CA's private key (0600).
pub const CA_KEY: &str = "ca-key.pem";
/// File of the self-signed set: the hub's certificate.
pub const HUB_CERT: &str = "hub.pem";
/// File of the self-signed set: the hub's private key (0600).
pub const HUB_KEY: &str = "hub-key.pem";
/// How long a made CA is valid.
pub const CA_DAYS: i64 = 3650;
/// How long a made server certificate is valid.
pub const HUB_DAYS: i64 = 365;
/// A made certificate with less than this left is made again.
pub const RENEW_DAYS: i64 = 30;
/// Largest PEM file read (a chain is a few KiB; Docker secrets end at 500 KiB).
const MAX_PEM_BYTES: u64 = 256 * 1024;

/// The files of the hub's certificate and key, and the hash of both that names their secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubTlsFiles {
    /// the certificate chain (PEM)
    pub cert: PathBuf,
    /// the private key (PEM)
    pub key: PathBuf,
    /// [`crate::settings::tls::Pair::fingerprint`]
    pub fingerprint: String,
}

impl HubTlsFiles {
    /// The secret names of certificate and key for the hub service `hub_service`.
    pub fn secret_names(&self, hub_service: &str) -> (String, String) {
        let prefix = hub_tls_secret_prefix(hub_service);
        (
            format!("{prefix}cert-{}", self.fingerprint),
            format!("{prefix}key-{}", self.fingerprint),
        )
    }
}

/// What is wrong with a TLS file, and what to do.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{path}: {problem}; fix: {fix}", path = path.display())]
pub struct TlsError {
    /// the file
    pub path: PathBuf,
    /// what is wrong
    pub problem: String,
    /// what to do
    pub fix: String,
}

fn err(path: &Path, problem: impl Into<String>, fix: impl Into<String>) -> TlsError {
    TlsError {
        path: path.to_path_buf(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// A certificate and its key, read and checked.
#[derive(Debug, Clone)]
pub struct Pair {
    /// the certificate file
    pub cert_path: PathBuf,
    /// the key file
    pub key_path: PathBuf,
    /// its content (PEM chain, the server certificate first)
    pub cert_pem: Vec<u8>,
    /// the key's content (PEM)
    pub key_pem: Vec<u8>,
    /// facts of the first certificate
    pub leaf: CertInfo,
}

impl Pair {
    /// The files and the hash that names their secrets.
    pub fn files(&self) -> HubTlsFiles {
        HubTlsFiles {
            cert: self.cert_path.clone(),
            key: self.key_path.clone(),
            fingerprint: self.fingerprint(),
        }
    }

    /// A short hash of certificate and key: names their Docker secrets, so a changed file is a
    /// new secret (and a rolled hub) and an unchanged one changes nothing.
    pub fn fingerprint(&self) -> String {
        let mut h = blake3::Hasher::new();
        h.update(&(self.cert_pem.len() as u64).to_le_bytes());
        h.update(&self.cert_pem);
        h.update(&self.key_pem);
        h.finalize().to_hex()[..12].to_string()
    }
}

/// What a certificate says, as far as swarmhub cares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// the DER encoding
    #[serde(skip)]
    pub der: Vec<u8>,
    /// subject, RFC 4514
    pub subject: String,
    /// issuer, RFC 4514
    pub issuer: String,
    /// start of validity, Unix seconds
    pub not_before: i64,
    /// end of validity, Unix seconds
    pub not_after: i64,
    /// DNS names and IP addresses of its subjectAltName
    pub names: Vec<String>,
    /// SHA-256 of the DER, hex with colons (as browsers show it)
    pub sha256: String,
}

impl CertInfo {
    /// Parse one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertInfo, String> {
        let (_, c) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = c.subject_alternative_name() {
            for n in &san.value.general_names {
                match n {
                    GeneralName::DNSName(d) => names.push(d.to_ascii_lowercase()),
                    GeneralName::IPAddress(b) => match b.len() {
                        4 => names.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()).to_string()),
                        16 => {
                            names.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()).to_string())
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        Ok(CertInfo {
            der: der.to_vec(),
            subject: c.subject().to_string(),
            issuer: c.issuer().to_string(),
            not_before: c.validity().not_before.timestamp(),
            not_after: c.validity().not_after.timestamp(),
            names,
            sha256: digest
                .as_ref()
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":"),
        })
    }

    /// Whether its names cover `host` (a DNS name or an IP address; `*.x` covers one label).
    pub fn covers(&self, host: &str) -> bool {
        covers(&self.names, host)
    }

    /// Seconds of validity left at `now` (negative when expired).
    pub fn left(&self, now: OffsetDateTime) -> i64 {
        self.not_after - now.unix_timestamp()
    }
}

/// Whether `names` (from a subjectAltName) cover `host`.
pub fn covers(names: &[String], host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return names
            .iter()
            .any(|n| n.parse::<IpAddr>().is_ok_and(|n| n == ip));
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    names.iter().any(|n| {
        let n = n.trim_end_matches('.').to_ascii_lowercase();
        match n.strip_prefix("*.") {
            Some(suffix) => host
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
            None => n == host,
        }
    })
}

/// A date for people: `2027-12-06 03:05 UTC`.
pub fn date(unix: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => format!("{unix} (Unix time)"),
    }
}

/// Read a PEM file the admin named: it must be a regular file (a directory, FIFO, socket or
/// device is refused before it is opened) of at most 256 KiB.
pub fn read_pem_file(path: &Path, what: &str, setting: &str) -> Result<Vec<u8>, TlsError> {
    let fix = format!("set {setting} to the {what} file (PEM)");
    let meta = std::fs::metadata(path)
        .map_err(|e| err(path, format!("cannot read the {what}: {e}"), &fix))?;
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        Some("a directory")
    } else if ft.is_fifo() {
        Some("a FIFO")
    } else if ft.is_socket() {
        Some("a socket")
    } else if ft.is_block_device() || ft.is_char_device() {
        Some("a device")
    } else {
        None
    };
    if let Some(kind) = kind {
        return Err(err(path, format!("is {kind}, not a {what} file"), fix));
    }
    if meta.len() > MAX_PEM_BYTES {
        return Err(err(
            path,
            format!(
                "is {} bytes, more than a {what} file can be ({MAX_PEM_BYTES})",
                meta.len()
            ),
            fix,
        ));
    }
    std::fs::read(path).map_err(|e| err(path, format!("cannot read the {what}: {e}"), fix))
}

/// Read and check a certificate (chain) and its key at `now`: PEM, the key belongs to the first
/// certificate, the certificate is valid now. `settings` are the names of the two settings
/// the files come from, for the fixes.
pub fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    now: OffsetDateTime,
    settings: (&str, &str),
) -> Result<Pair, TlsError> {
    let cert_pem = read_pem_file(cert_path, "certificate", settings.0)?;
    let key_pem = read_pem_file(key_path, "private key", settings.1)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| err(cert_path, format!("is not valid PEM: {e}"), format!("{} must hold the server certificate as -----BEGIN CERTIFICATE----- (then its intermediates)", settings.0)))?;
    let Some(first) = chain.first() else {
        return Err(err(
            cert_path,
            "holds no certificate (no -----BEGIN CERTIFICATE----- block)",
            format!(
                "{} must hold the server certificate in PEM, then its intermediates",
                settings.0
            ),
        ));
    };
    let leaf = CertInfo::from_der(first).map_err(|e| {
        err(
            cert_path,
            format!("its first certificate cannot be parsed: {e}"),
            "use a PEM X.509 certificate",
        )
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        err(
            key_path,
            format!("holds no private key in PEM ({e})"),
            format!("{} must hold the certificate's key, unencrypted (-----BEGIN PRIVATE KEY-----, RSA or EC)", settings.1),
        )
    })?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider.key_provider.load_private_key(key).map_err(|e| {
        err(
            key_path,
            format!("the key cannot be used: {e}"),
            "use an RSA, ECDSA (P-256/P-384) or Ed25519 key",
        )
    })?;
    let certified = rustls::sign::CertifiedKey::new(chain, signing);
    if let Err(e) = certified.keys_match() {
        let problem = match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => format!(
                "the key does not belong to the certificate in {}",
                cert_path.display()
            ),
            other => format!(
                "cannot tell whether the key belongs to the certificate in {}: {other}",
                cert_path.display()
            ),
        };
        return Err(err(
            key_path,
            problem,
            format!(
                "give the key the certificate was issued for ({} and {} must be a pair)",
                settings.0, settings.1
            ),
        ));
    }
    let t = now.unix_timestamp();
    if leaf.not_after <= t {
        return Err(err(
            cert_path,
            format!("the certificate expired on {}", date(leaf.not_after)),
            "renew it (or use [tls] mode = \"self-signed\"), then run `swarmhub run` again",
        ));
    }
    if leaf.not_before > t {
        return Err(err(
            cert_path,
            format!(
                "the certificate is not valid before {}",
                date(leaf.not_before)
            ),
            "check this machine's clock, or use a certificate valid now",
        ));
    }
    Ok(Pair {
        cert_path: cert_path.to_path_buf(),
        key_path: key_path.to_path_buf(),
        cert_pem,
        key_pem,
        leaf,
    })
}

/// What happened to one file of the self-signed set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Made {
    /// the file
    pub path: PathBuf,
    /// made now (else kept)
    pub made: bool,
    /// why it was made again, or what was kept
    pub why: String,
}

/// The self-signed set after [`ensure_self_signed`].
#[derive(Debug, Clone, Serialize)]
pub struct SelfSigned {
    /// the CA certificate (what users trust)
    pub ca_cert: PathBuf,
    /// the hub's certificate
    pub cert: PathBuf,
    /// the hub's key
    pub key: PathBuf,
    /// the CA's and the certificate's fate
    pub changes: Vec<Made>,
    /// the names of the certificate
    pub names: Vec<String>,
    /// the certificate's end of validity, Unix seconds
    pub not_after: i64,
}

/// The names a made certificate carries: `names` sorted, without duplicates and empties, IP
/// addresses in canonical form, DNS names in lower case.
pub fn normalize_names(names: &[String]) -> Vec<String> {
    let set: BTreeSet<String> = names
        .iter()
        .map(|n| n.trim().trim_start_matches('[').trim_end_matches(']'))
        .filter(|n| !n.is_empty())
        .map(|n| match n.parse::<IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => n.trim_end_matches('.').to_ascii_lowercase(),
        })
        .collect();
    set.into_iter().collect()
}

/// Make (or keep) the CA and the hub certificate for `names` in `dir` at `now`.
pub fn ensure_self_signed(
    dir: &Path,
    names: &[String],
    now: OffsetDateTime,
) -> Result<SelfSigned, TlsError> {
    let names = normalize_names(names);
    if names.is_empty() {
        return Err(err(
            dir,
            "no names for the certificate",
            "set cluster.public_url to the hub's URL",
        ));
    }
    for n in &names {
        if n.parse::<IpAddr>().is_err() && !valid_dns_name(n) {
            return Err(err(
                dir,
                format!("{n:?} is neither an IP address nor a DNS name"),
                "fix cluster.public_url or tls.names",
            ));
        }
    }
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                err(
                    dir,
                    format!("cannot create the directory: {e}"),
                    "create it, or set tls.dir to a writable directory",
                )
            })?;
    }
    let (ca_cert, ca_key) = (dir.join(CA_CERT), dir.join(CA_KEY));
    let (hub_cert, hub_key) = (dir.join(HUB_CERT), dir.join(HUB_KEY));
    let mut changes = Vec::new();
    let renew = RENEW_DAYS * 86_400;

    // the CA: kept unless near its end
    let existing_ca = match (ca_cert.exists(), ca_key.exists()) {
        (false, false) => None,
        (true, true) => {
            let pair = load_pair(&ca_cert, &ca_key, now, ("the CA certificate", "the CA key")).map_err(|e| TlsError {
                fix: format!("{}; or move {} and {} aside to make a new CA (which everyone must trust again)", e.fix, CA_CERT, CA_KEY),
                ..e
            });
            match pair {
                Ok(p) if p.leaf.left(now) > renew => Some(p),
                Ok(p) => {
                    changes.push(Made {
                        path: ca_cert.clone(),
                        made: true,
                        why: format!(
                            "the old CA ends on {}: made a new one; trust the new {} again",
                            date(p.leaf.not_after),
                            ca_cert.display()
                        ),
                    });
                    None
                }
                Err(e) if e.problem.contains("expired") => {
                    changes.push(Made {
                        path: ca_cert.clone(),
                        made: true,
                        why: format!(
                            "the old CA had expired: made a new one; trust the new {} again",
                            ca_cert.display()
                        ),
                    });
                    None
                }
                Err(e) => return Err(e),
            }
        }
        (cert, _) => {
            let missing = if cert { &ca_key } else { &ca_cert };
            return Err(err(
                missing,
                "is missing while the other half of the CA exists",
                format!(
                    "restore it, or move {} aside to make a new CA (which everyone must trust again)",
                    dir.display()
                ),
            ));
        }
    };
    let (issuer_pem, issuer_key, ca_info) = match existing_ca {
        Some(p) => {
            restrict(&ca_key)?;
            changes.push(Made {
                path: ca_cert.clone(),
                made: false,
                why: format!("kept (valid until {})", date(p.leaf.not_after)),
            });
            let key = KeyPair::from_pem(&String::from_utf8_lossy(&p.key_pem)).map_err(|e| {
                err(
                    &ca_key,
                    format!("cannot use the CA key: {e}"),
                    format!("move {} aside to make a new CA", dir.display()),
                )
            })?;
            (
                String::from_utf8_lossy(&p.cert_pem).into_owned(),
                key,
                p.leaf,
            )
        }
        None => {
            let key = KeyPair::generate().map_err(|e| {
                err(
                    &ca_key,
                    format!("cannot make a key: {e}"),
                    "report this bug",
                )
            })?;
            let mut params = CertificateParams::default();
            let host = names[0].clone();
            params
                .distinguished_name
                .push(DnType::CommonName, format!("swarmhub CA for {host}"));
            params
                .distinguished_name
                .push(DnType::OrganizationName, "swarmhub");
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            params.not_before = now - Duration::hours(1);
            params.not_after = now + Duration::days(CA_DAYS);
            let cert = params.self_signed(&key);
            let (pem, info) = store(&ca_cert, &ca_key, cert, &key)?;
            if !changes.iter().any(|c| c.path == ca_cert) {
                changes.push(Made {
                    path: ca_cert.clone(),
                    made: true,
                    why: format!(
                        "new CA; trust {} (browsers: import it as an authority; curl --cacert)",
                        ca_cert.display()
                    ),
                });
            }
            (pem, key, info)
        }
    };
    let ca_was_made = changes.iter().any(|c| c.path == ca_cert && c.made);

    // the hub's certificate: kept while it is this CA's, for these names, and not near its end
    let keep_reason = if ca_was_made || !hub_cert.exists() || !hub_key.exists() {
        Err(if ca_was_made && hub_cert.exists() {
            "the CA is new".to_string()
        } else {
            "new".to_string()
        })
    } else {
        match load_pair(
            &hub_cert,
            &hub_key,
            now,
            ("the hub certificate", "the hub key"),
        ) {
            Err(e) => Err(format!("the old one cannot be used ({})", e.problem)),
            Ok(p) => {
                let had = normalize_names(&p.leaf.names);
                if !signed_by(&p.leaf.der, &ca_info.der) {
                    Err("the old one is not signed by the CA in this directory".into())
                } else if had != names {
                    Err(format!(
                        "the names changed (had {}, now {})",
                        had.join(", "),
                        names.join(", ")
                    ))
                } else if p.leaf.left(now) <= renew {
                    Err(format!("the old one ends on {}", date(p.leaf.not_after)))
                } else {
                    Ok(p.leaf)
                }
            }
        }
    };
    let (made, why, leaf) = match keep_reason {
        Ok(leaf) => {
            restrict(&hub_key)?;
            (
                false,
                format!(
                    "kept (names {}, valid until {})",
                    names.join(", "),
                    date(leaf.not_after)
                ),
                leaf,
            )
        }
        Err(why) => {
            let issuer = Issuer::from_ca_cert_pem(&issuer_pem, issuer_key).map_err(|e| {
                err(
                    &ca_cert,
                    format!("cannot sign with this CA: {e}"),
                    format!("move {} aside to make a new CA", dir.display()),
                )
            })?;
            let key = KeyPair::generate().map_err(|e| {
                err(
                    &hub_key,
                    format!("cannot make a key: {e}"),
                    "report this bug",
                )
            })?;
            let mut params = CertificateParams::default();
            params
                .distinguished_name
                .push(DnType::CommonName, names[0].clone());
            params.subject_alt_names = names
                .iter()
                .map(|n| match n.parse::<IpAddr>() {
                    Ok(ip) => Ok(SanType::IpAddress(ip)),
                    Err(_) => n.clone().try_into().map(SanType::DnsName),
                })
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    err(
                        &hub_cert,
                        format!("bad name: {e}"),
                        "fix cluster.public_url or tls.names",
                    )
                })?;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            params.use_authority_key_identifier_extension = true;
            params.not_before = now - Duration::hours(1);
            params.not_after = (now + Duration::days(HUB_DAYS)).min(
                OffsetDateTime::from_unix_timestamp(ca_info.not_after)
                    .unwrap_or(now + Duration::days(HUB_DAYS)),
            );
            let cert = params.signed_by(&key, &issuer);
            let (_, leaf) = store(&hub_cert, &hub_key, cert, &key)?;
            let why = if why == "new" {
                format!("made for {}", names.join(", "))
            } else {
                format!("made again: {why}")
            };
            (true, why, leaf)
        }
    };
    changes.push(Made {
        path: hub_cert.clone(),
        made,
        why,
    });
    Ok(SelfSigned {
        ca_cert,
        cert: hub_cert,
        key: hub_key,
        changes,
        names,
        not_after: leaf.not_after,
    })
}

/// What the hub serves: the admin's files, or the self-signed set made or kept now.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// the certificate and key, checked
    pub pair: Pair,
    /// with `mode = "self-signed"`: what was made or kept
    pub made: Option<SelfSigned>,
}

impl Prepared {
    /// The files and the hash that names their secrets.
    pub fn files(&self) -> HubTlsFiles {
        self.pair.files()
    }
}

/// The names a self-signed certificate of `cfg` carries: the public URL's host, the nodes'
/// addresses, `localhost`, `127.0.0.1` and `tls.names`.
pub fn self_signed_names(cfg: &Config, node_addrs: &[String]) -> Vec<String> {
    let mut names = vec![cfg.public_host()];
    names.extend(
        node_addrs
            .iter()
            .filter(|a| !a.is_empty() && a.as_str() != "0.0.0.0")
            .cloned(),
    );
    names.extend(["localhost".to_string(), "127.0.0.1".to_string()]);
    names.extend(cfg.tls.names.iter().cloned());
    normalize_names(&names)
}

/// The hub's certificate for `run`: `None` with TLS off; the admin's files checked (`files`);
/// or the self-signed set made or kept in `tls.dir` for [`self_signed_names`]. The certificate
/// must cover the public URL's host. Errors are settings errors (exit code 2) naming the file.
pub fn prepare(
    cfg: &Config,
    node_addrs: &[String],
    now: OffsetDateTime,
) -> Result<Option<Prepared>, ConfigError> {
    let t = &cfg.tls;
    let (pair, made) = match t.mode {
        TlsMode::Off => return Ok(None),
        TlsMode::Files => {
            let pair = load_pair(
                Path::new(&t.cert_file),
                Path::new(&t.key_file),
                now,
                ("tls.cert_file", "tls.key_file"),
            )
            .map_err(|e| {
                let key = if e.path == Path::new(&t.key_file) {
                    "tls.key_file"
                } else {
                    "tls.cert_file"
                };
                as_config(key, e)
            })?;
            (pair, None)
        }
        TlsMode::SelfSigned => {
            let made =
                ensure_self_signed(Path::new(&t.dir), &self_signed_names(cfg, node_addrs), now)
                    .map_err(|e| as_config("tls.dir", e))?;
            let pair = load_pair(&made.cert, &made.key, now, ("tls.dir", "tls.dir"))
                .map_err(|e| as_config("tls.dir", e))?;
            (pair, Some(made))
        }
    };
    let host = cfg.public_host();
    if !pair.leaf.covers(&host) {
        return Err(ConfigError::Invalid {
            key: "tls.cert_file".into(),
            reason: format!(
                "the certificate in {} is for {}, not for {host} (the host of cluster.public_url); fix: use a certificate for {host}, or set cluster.public_url to one of its names",
                pair.cert_path.display(),
                if pair.leaf.names.is_empty() {
                    "no name (it has no subjectAltName)".to_string()
                } else {
                    pair.leaf.names.join(", ")
                },
            ),
        });
    }
    Ok(Some(Prepared { pair, made }))
}

/// The certificate `config plan` and `doctor` expect the hub to serve, without making anything:
/// the admin's file, or the self-signed one if it exists. `Err` says why there is none.
pub fn configured(cfg: &Config, now: OffsetDateTime) -> Result<Pair, String> {
    let t = &cfg.tls;
    let (cert, key, settings) = match t.mode {
        TlsMode::Off => return Err("tls.mode is off".into()),
        TlsMode::Files => (
            PathBuf::from(&t.cert_file),
            PathBuf::from(&t.key_file),
            ("tls.cert_file", "tls.key_file"),
        ),
        TlsMode::SelfSigned => {
            let d = Path::new(&t.dir);
            (d.join(HUB_CERT), d.join(HUB_KEY), ("tls.dir", "tls.dir"))
        }
    };
    load_pair(&cert, &key, now, settings).map_err(|e| e.to_string())
}

fn as_config(key: &str, e: TlsError) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: e.to_string(),
    }
}

/// How to trust the CA `ca` (for the text of `tls self-signed` and `demo up`).
pub fn trust_hint(ca: &Path, url: &str) -> String {
    let ca = ca.display();
    format!(
        "CA to trust: {ca}\n  curl:     curl --cacert {ca} {url}\n  browsers: import it as a certificate authority (Chromium: Settings > Privacy and security > Security > Manage certificates > Authorities; Firefox: Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import), or on Linux: certutil -d sql:$HOME/.pki/nssdb -A -t 'C,,' -n swarmhub-ca -i {ca}\n"
    )
}

/// Whether the certificate `der` carries a valid signature of the CA `ca_der`.
pub fn signed_by(der: &[u8], ca_der: &[u8]) -> bool {
    let (Ok((_, c)), Ok((_, ca))) = (
        X509Certificate::from_der(der),
        X509Certificate::from_der(ca_der),
    ) else {
        return false;
    };
    c.issuer() == ca.subject() && c.verify_signature(Some(ca.public_key())).is_ok()
}

fn valid_dns_name(n: &str) -> bool {
    let n = n.strip_prefix("*.").unwrap_or(n);
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Write a certificate rcgen made (or say why it could not) and its key (0600); returns the
/// certificate's PEM and facts.
fn store(
    cert_path: &Path,
    key_path: &Path,
    made: Result<rcgen::Certificate, rcgen::Error>,
    key: &KeyPair,
) -> Result<(String, CertInfo), TlsError> {
    let bug = "report this bug";
    let cert =
        made.map_err(|e| err(cert_path, format!("cannot make the certificate: {e}"), bug))?;
    write_private(key_path, key.serialize_pem().as_bytes())?;
    write_public(cert_path, cert.pem().as_bytes())?;
    let info = CertInfo::from_der(cert.der()).map_err(|e| err(cert_path, e, bug))?;
    Ok((cert.pem(), info))
}

/// Keys stay 0600 (an older copy may have been made looser by hand).
fn restrict(path: &Path) -> Result<(), TlsError> {
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            err(
                path,
                format!("is readable by others (mode {mode:o}) and cannot be made 0600: {e}"),
                format!("chmod 600 {}", path.display()),
            )
        })?;
    }
    Ok(())
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    write_atomic(path, data, 0o600)
}

fn write_public(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    write_atomic(path, data, 0o644)
}

/// Write through a temporary file in the same directory, then rename: a crash leaves the old
/// file or the new one, never half of one.
fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let fix = "check the directory's permissions and free space";
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| err(&tmp, format!("cannot create: {e}"), fix))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(|e| err(&tmp, format!("cannot write: {e}"), fix))?;
    std::fs::rename(&tmp, path).map_err(|e| err(path, format!("cannot replace: {e}"), fix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn settings() -> (&'static str, &'static str) {
        ("tls.cert_file", "tls.key_file")
    }

    #[test]
    fn a_made_set_is_kept_across_runs_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("tls");
        let first = ensure_self_signed(
            &d,
            &names(&["hub.example.edu", "10.0.0.5", "127.0.0.1", "localhost"]),
            now(),
        )
        .unwrap();
        assert!(first.changes.iter().all(|c| c.made), "{:?}", first.changes);
        for key in [CA_KEY, HUB_KEY] {
            let mode = std::fs::metadata(d.join(key)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{key}");
        }
        let ca = std::fs::read(d.join(CA_CERT)).unwrap();
        let cert = std::fs::read(d.join(HUB_CERT)).unwrap();
        // the same names in another order: nothing is made
        let again = ensure_self_signed(
            &d,
            &names(&["localhost", "127.0.0.1", "HUB.example.edu", "10.0.0.5"]),
            now(),
        )
        .unwrap();
        assert!(again.changes.iter().all(|c| !c.made), "{:?}", again.changes);
        assert_eq!(std::fs::read(d.join(CA_CERT)).unwrap(), ca);
        assert_eq!(std::fs::read(d.join(HUB_CERT)).unwrap(), cert);
        // what was made is a usable pair, signed by the CA, for the names
        let pair = load_pair(&first.cert, &first.key, now(), settings()).unwrap();
        assert!(pair.leaf.covers("hub.example.edu") && pair.leaf.covers("10.0.0.5"));
        assert!(!pair.leaf.covers("other.example.edu"));
        let ca_der = CertificateDer::from_pem_slice(&ca).unwrap();
        assert!(signed_by(&pair.leaf.der, &ca_der));
    }

    #[test]
    fn changed_names_make_a_new_certificate_from_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        ensure_self_signed(dir.path(), &names(&["10.0.0.5"]), now()).unwrap();
        let ca = std::fs::read(dir.path().join(CA_CERT)).unwrap();
        let s = ensure_self_signed(dir.path(), &names(&["10.0.0.5", "10.0.0.6"]), now()).unwrap();
        let hub = s.changes.iter().find(|c| c.path == s.cert).unwrap();
        assert!(hub.made && hub.why.contains("names changed"), "{hub:?}");
        assert!(hub.why.contains("10.0.0.6"), "{hub:?}");
        let ca_change = s.changes.iter().find(|c| c.path == s.ca_cert).unwrap();
        assert!(!ca_change.made);
        assert_eq!(std::fs::read(dir.path().join(CA_CERT)).unwrap(), ca);
    }

    #[test]
    fn near_expiry_makes_them_again_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        ensure_self_signed(dir.path(), &names(&["h.example"]), now()).unwrap();
        // a year later the server certificate is at its end, the CA is not
        let later = now() + Duration::days(HUB_DAYS - 10);
        let s = ensure_self_signed(dir.path(), &names(&["h.example"]), later).unwrap();
        let hub = s.changes.iter().find(|c| c.path == s.cert).unwrap();
        assert!(hub.made && hub.why.contains("ends on"), "{hub:?}");
        assert!(!s.changes.iter().find(|c| c.path == s.ca_cert).unwrap().made);
        // ten years later the CA is too, and users are told to trust it again
        let much_later = now() + Duration::days(CA_DAYS + 1);
        let s = ensure_self_signed(dir.path(), &names(&["h.example"]), much_later).unwrap();
        let ca = s.changes.iter().find(|c| c.path == s.ca_cert).unwrap();
        assert!(ca.made && ca.why.contains("trust the new"), "{ca:?}");
        let hub = s.changes.iter().find(|c| c.path == s.cert).unwrap();
        assert!(hub.made && hub.why.contains("CA is new"), "{hub:?}");
    }

    #[test]
    fn half_a_ca_is_an_error_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        ensure_self_signed(dir.path(), &names(&["h.example"]), now()).unwrap();
        std::fs::remove_file(dir.path().join(CA_KEY)).unwrap();
        let e = ensure_self_signed(dir.path(), &names(&["h.example"]), now()).unwrap_err();
        assert_eq!(e.path, dir.path().join(CA_KEY));
        assert!(e.problem.contains("missing"), "{e}");
        assert!(dir.path().join(CA_CERT).exists());
    }

    #[test]
    fn bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = ensure_self_signed(dir.path(), &names(&["bad name"]), now()).unwrap_err();
        assert!(
            e.to_string()
                .contains("neither an IP address nor a DNS name"),
            "{e}"
        );
    }

    #[test]
    fn given_files_are_checked_with_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let a = ensure_self_signed(&dir.path().join("a"), &names(&["a.example"]), now()).unwrap();
        let b = ensure_self_signed(&dir.path().join("b"), &names(&["b.example"]), now()).unwrap();
        // a good pair
        let p = load_pair(&a.cert, &a.key, now(), settings()).unwrap();
        assert_eq!(
            p.fingerprint(),
            load_pair(&a.cert, &a.key, now(), settings())
                .unwrap()
                .fingerprint()
        );
        assert_ne!(
            p.fingerprint(),
            load_pair(&b.cert, &b.key, now(), settings())
                .unwrap()
                .fingerprint()
        );
        // a key of another certificate
        let e = load_pair(&a.cert, &b.key, now(), settings()).unwrap_err();
        assert_eq!(e.path, b.key);
        assert!(
            e.problem.contains("does not belong to the certificate"),
            "{e}"
        );
        assert!(e.fix.contains("tls.key_file"), "{e}");
        // missing
        let e = load_pair(&dir.path().join("nope.pem"), &a.key, now(), settings()).unwrap_err();
        assert!(
            e.to_string().contains("nope.pem") && e.fix.contains("tls.cert_file"),
            "{e}"
        );
        // a directory
        let e = load_pair(dir.path(), &a.key, now(), settings()).unwrap_err();
        assert!(e.problem.contains("is a directory"), "{e}");
        // a FIFO is refused without opening it (which would block)
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let e = load_pair(&fifo, &a.key, now(), settings()).unwrap_err();
        assert!(e.problem.contains("is a FIFO"), "{e}");
        // not PEM, and a key file in the certificate's place
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "hello\n").unwrap();
        let e = load_pair(&junk, &a.key, now(), settings()).unwrap_err();
        assert!(e.problem.contains("no certificate"), "{e}");
        let e = load_pair(&a.cert, &junk, now(), settings()).unwrap_err();
        assert!(e.problem.contains("no private key"), "{e}");
        // expired, and not yet valid
        let e = load_pair(
            &a.cert,
            &a.key,
            now() + Duration::days(HUB_DAYS + 1),
            settings(),
        )
        .unwrap_err();
        assert!(e.problem.contains("expired on") && e.path == a.cert, "{e}");
        let e = load_pair(&a.cert, &a.key, now() - Duration::days(2), settings()).unwrap_err();
        assert!(e.problem.contains("not valid before"), "{e}");
    }

    #[test]
    fn names_cover_hosts() {
        let n = names(&["hub.example.edu", "*.lab.example.edu", "10.0.0.5", "::1"]);
        assert!(covers(&n, "hub.example.edu"));
        assert!(covers(&n, "HUB.example.edu."));
        assert!(covers(&n, "pc1.lab.example.edu"));
        assert!(!covers(&n, "a.b.lab.example.edu"));
        assert!(!covers(&n, "lab.example.edu"));
        assert!(covers(&n, "10.0.0.5"));
        assert!(covers(&n, "[::1]"));
        assert!(!covers(&n, "10.0.0.6"));
        assert!(!covers(&n, "example.edu"));
    }
}
