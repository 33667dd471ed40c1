//! A real browser against a hub serving HTTPS: `tests/browser/https_login.py` drives headless
//! Chromium (Debian's `chromium`, `chromium-driver`, `python3-selenium`, `libnss3-tools`, with
//! the system python) through the hub's login form into JupyterLab, with the hub's CA trusted
//! in an NSS database and, first, without it (the certificate interstitial). This module runs
//! it, checks curl's view of the same hub ([`crate::https`]) and finds the file the browser
//! saved on nfsd's disk, owned by the user's LDAP ids.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::docker::{TEST_ROOT, run_timeout};
use crate::hub::find_file;

/// The system python with Debian's selenium (not a venv's).
pub const PYTHON: &str = "/usr/bin/python3";
/// The file the browser saves, relative to the notebook server's root (the home volume is
/// mounted at `work/`).
const SAVED: &str = "work/browser-https.txt";

/// Where the browser's screenshots go: kept after the test (outside its state directory).
pub fn log_dir() -> PathBuf {
    Path::new(TEST_ROOT).join("logs").join("browser")
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/https_login.py")
}

/// The demo over HTTPS in a real browser, at `url` (the hub's configured URL, as `demo up`
/// printed it), with the demo's state in `state_dir` (`tls/ca.pem`, `data/`): curl's checks
/// (with and without the CA, plain HTTP on the HTTPS port and on `redirect_port`), then
/// Chromium without the CA (interstitial) and with it (login as `user`, JupyterLab, a file
/// saved through the contents API from the page, a kernel's code run over its wss:// socket), and the file on disk owned by `owner`
/// (uidNumber, gidNumber). Returns what was seen, with the screenshot's path.
pub fn browser_https_step(
    url: &str,
    state_dir: &Path,
    redirect_port: Option<u16>,
    user: &str,
    password: &str,
    owner: (u32, u32),
) -> anyhow::Result<String> {
    let ca = state_dir.join("tls").join("ca.pem");
    ensure!(ca.is_file(), "the demo's CA {} is missing", ca.display());
    let mut report = crate::https::check_hub_https(url.trim_end_matches('/'), &ca, redirect_port)?;

    let shots = log_dir();
    std::fs::create_dir_all(&shots)?;
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let content = format!("saved by headless Chromium over HTTPS ({stamp})\n");
    let mut cmd = Command::new(PYTHON);
    cmd.arg(script())
        .args(["--url", url, "--user", user, "--password", password])
        .arg("--ca")
        .arg(&ca)
        .args(["--file", SAVED, "--content", &content])
        .arg("--shots")
        .arg(&shots);
    let out = run_timeout(cmd, Duration::from_secs(600))
        .context("running the browser (apt-get install -y chromium chromium-driver python3-selenium libnss3-tools)")?;
    let seen: Value = out
        .stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .with_context(|| format!("the browser printed no result: {}", out.describe()))?;
    if seen["ok"] != Value::Bool(true) || !out.success() {
        bail!("the browser: {}\n{}", seen["error"], out.describe());
    }
    let name = Path::new(SAVED).file_name().unwrap_or_default();
    let data = state_dir.join("data");
    let on_disk = find_file(&data, &name.to_string_lossy()).with_context(|| {
        format!(
            "{SAVED} saved by the browser is not under {}",
            data.display()
        )
    })?;
    let text = std::fs::read_to_string(&on_disk)?;
    ensure!(
        text == content,
        "{} holds {text:?}, not what the browser saved",
        on_disk.display()
    );
    let meta = std::fs::metadata(&on_disk)?;
    ensure!(
        (meta.uid(), meta.gid()) == owner,
        "{} is owned by {}:{}, not {user}'s LDAP ids {}:{}",
        on_disk.display(),
        meta.uid(),
        meta.gid(),
        owner.0,
        owner.1
    );
    report.push_str(&format!(
        "chromium without the CA: {}\nchromium with the CA: logged in as {user} at {}hub/login, JupyterLab at {} after {} s, PUT {} -> HTTP {}\nkernel over {}: printed {}\nfile on nfsd's disk: {} ({}:{})\nscreenshot of JupyterLab: {}\n",
        seen["untrusted"].as_str().unwrap_or_default(),
        url,
        seen["lab_url"].as_str().unwrap_or_default(),
        seen["login_to_lab_seconds"],
        seen["put"].as_str().unwrap_or_default(),
        seen["put_status"],
        seen["kernel_websocket"].as_str().unwrap_or_default(),
        seen["kernel_output"],
        on_disk.display(),
        meta.uid(),
        meta.gid(),
        seen["screenshot"].as_str().unwrap_or_default(),
    ));
    Ok(report)
}
