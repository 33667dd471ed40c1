//! A browser for JupyterHub in tests: curl with a cookie jar, the login form with its xsrf
//! field, the hub's REST API with the login cookie (servers, tokens), and a user's Jupyter
//! contents API with a token. Used by the end-to-end and demo tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use crate::docker::run_timeout;
use crate::swarm::wait_until;

/// The CA every [`Browser`] of this test process trusts (a hub serving HTTPS with a
/// certificate of swarmhub's own CA). Set once, after the CA exists.
static TRUSTED_CA: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

/// Make every [`Browser`] (and [`curl_ca_args`]) trust the CA in `ca` (PEM) besides the system's.
pub fn trust_ca(ca: &Path) {
    *TRUSTED_CA.lock().unwrap_or_else(|e| e.into_inner()) = Some(ca.to_path_buf());
}

/// `--cacert FILE` for curl when a CA is trusted ([`trust_ca`]), else nothing.
pub fn curl_ca_args() -> Vec<String> {
    TRUSTED_CA
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|ca| vec!["--cacert".to_string(), ca.display().to_string()])
        .unwrap_or_default()
}

/// How long a spawn may take in [`Browser::login_and_spawn`].
pub const SPAWN_LIMIT: Duration = Duration::from_secs(300);

/// One user's browser session with the hub: curl with its own cookie jar.
pub struct Browser {
    base: String,
    /// the user name
    pub user: String,
    jar: PathBuf,
    body: PathBuf,
    token: Option<String>,
}

/// An HTTP answer: status code and body.
pub struct Resp {
    pub code: u16,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.body).with_context(|| {
            format!(
                "HTTP {} with a body that is not JSON: {}",
                self.code, self.body
            )
        })
    }
}

impl Browser {
    pub fn new(base: &str, dir: &Path, user: &str) -> Browser {
        Browser {
            base: base.trim_end_matches('/').to_string(),
            user: user.to_string(),
            jar: dir.join(format!("cookies-{user}")),
            body: dir.join(format!("body-{user}")),
            token: None,
        }
    }

    /// `curl` with the jar; `extra` are more curl arguments (method, headers, data). Trusts the
    /// CA given to [`trust_ca`], if any.
    pub fn curl(&self, path: &str, extra: &[&str], timeout: Duration) -> anyhow::Result<Resp> {
        let _ = std::fs::remove_file(&self.body);
        let mut cmd = Command::new("curl");
        cmd.args(curl_ca_args());
        cmd.args(["-sS", "-o"])
            .arg(&self.body)
            .args(["-w", "%{http_code}", "-b"])
            .arg(&self.jar)
            .arg("-c")
            .arg(&self.jar)
            .args(["--max-time", &timeout.as_secs().to_string()])
            .args(extra)
            .arg(format!("{}{path}", self.base));
        let out = run_timeout(cmd, timeout + Duration::from_secs(5))
            .context("running curl (apt-get install -y curl)")?;
        let code: u16 = out.stdout.trim().parse().unwrap_or(0);
        ensure!(code != 0, "curl {path} failed: {}", out.describe());
        Ok(Resp {
            code,
            body: std::fs::read_to_string(&self.body).unwrap_or_default(),
        })
    }

    pub fn get(&self, path: &str) -> anyhow::Result<Resp> {
        self.curl(path, &[], Duration::from_secs(30))
    }

    /// The value of cookie `name` set for exactly `path` (e.g. a user server's `_xsrf`, set for
    /// `/user/<name>/`).
    pub fn cookie(&self, name: &str, path: &str) -> anyhow::Result<String> {
        let jar = std::fs::read_to_string(&self.jar).context("reading the cookie jar")?;
        jar.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f.len() == 7 && f[5] == name && f[2] == path).then(|| f[6].to_string())
            })
            .next_back()
            .with_context(|| format!("no {name} cookie for {path} in the jar:\n{jar}"))
    }

    /// The `_xsrf` cookie the hub set (path /hub/; a user's server sets its own for its path).
    pub fn xsrf(&self) -> anyhow::Result<String> {
        self.cookie("_xsrf", "/hub/")
    }

    /// The hub's REST API with the login cookie and the X-XSRFToken header JupyterHub 5 wants
    /// with cookie authentication.
    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Resp> {
        let xsrf = format!("X-XSRFToken: {}", self.xsrf()?);
        let data = body.map(|b| b.to_string());
        let mut args = vec!["-X", method, "-H", &xsrf];
        if let Some(d) = &data {
            args.extend(["-H", "Content-Type: application/json", "--data-binary", d]);
        }
        self.curl(&format!("/hub/api{path}"), &args, Duration::from_secs(60))
    }

    /// The login form: GET for the `_xsrf` cookie and form field, POST the credentials.
    pub fn login(&self, password: &str) -> anyhow::Result<()> {
        let _ = std::fs::remove_file(&self.jar);
        let page = self.get("/hub/login")?;
        ensure!(
            page.code == 200,
            "GET /hub/login: HTTP {}: {}",
            page.code,
            page.body
        );
        let field = match form_xsrf(&page.body) {
            Some(v) => v,
            None => self.xsrf()?,
        };
        let form = format!(
            "username={}&password={}&_xsrf={}",
            urlencode(&self.user),
            urlencode(password),
            urlencode(&field)
        );
        let r = self.curl(
            "/hub/login?next=",
            &["-X", "POST", "--data", &form],
            Duration::from_secs(60),
        )?;
        ensure!(
            r.code == 302,
            "login of {} refused: HTTP {}: {}",
            self.user,
            r.code,
            r.body
        );
        // a page after login: the hub sets the _xsrf cookie of the new session
        let home = self.get("/hub/home")?;
        ensure!(
            home.code == 200,
            "GET /hub/home after login: HTTP {}",
            home.code
        );
        Ok(())
    }

    /// POST .../server: 201 started, 202 pending; anything else is returned as an error.
    pub fn start_server(&self) -> anyhow::Result<Resp> {
        self.api("POST", &format!("/users/{}/server", self.user), None)
    }

    /// The user model (`servers`, `pending`).
    pub fn model(&self) -> anyhow::Result<Value> {
        let r = self.curl(
            &format!("/hub/api/users/{}", self.user),
            &[],
            Duration::from_secs(30),
        )?;
        ensure!(
            r.code == 200,
            "GET user {}: HTTP {}: {}",
            self.user,
            r.code,
            r.body
        );
        r.json()
    }

    /// Until the default server is ready; an error once the hub says the spawn is over
    /// without a server (no pending action, no server) or after `limit`.
    pub fn wait_ready(&self, limit: Duration) -> anyhow::Result<Duration> {
        let start = Instant::now();
        loop {
            let m = self.model()?;
            let server = &m["servers"][""];
            if server["ready"] == json!(true) {
                return Ok(start.elapsed());
            }
            if server.is_null()
                && m["pending"].is_null()
                && start.elapsed() > Duration::from_secs(2)
            {
                bail!(
                    "{}'s spawn ended without a server after {:.1?}: {m}",
                    self.user,
                    start.elapsed()
                );
            }
            ensure!(
                start.elapsed() < limit,
                "{}'s server not ready after {limit:?}: {m}",
                self.user
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// DELETE .../server and wait until the hub has no server for the user.
    pub fn stop_server(&self) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let r = self.api("DELETE", &format!("/users/{}/server", self.user), None)?;
        ensure!(
            matches!(r.code, 202 | 204),
            "stopping {}'s server: HTTP {}: {}",
            self.user,
            r.code,
            r.body
        );
        wait_until(
            &format!("{}'s server to stop", self.user),
            Duration::from_secs(120),
            || {
                let m = self.model().map_err(|e| format!("{e:#}"))?;
                if m["servers"][""].is_null() && m["pending"].is_null() {
                    Ok(())
                } else {
                    Err(m.to_string())
                }
            },
        )?;
        Ok(start.elapsed())
    }

    /// Logs in, starts the server, waits until ready: the time of all of it.
    pub fn login_and_spawn(&self, password: &str) -> anyhow::Result<Duration> {
        let start = Instant::now();
        self.login(password)?;
        let r = self.start_server()?;
        ensure!(
            matches!(r.code, 201 | 202),
            "starting {}'s server: HTTP {}: {}",
            self.user,
            r.code,
            r.body
        );
        self.wait_ready(SPAWN_LIMIT)?;
        Ok(start.elapsed())
    }

    /// An API token of the user (created with the login cookie), for the notebook's own API.
    pub fn ensure_token(&mut self) -> anyhow::Result<()> {
        if self.token.is_some() {
            return Ok(());
        }
        let r = self.api(
            "POST",
            &format!("/users/{}/tokens", self.user),
            Some(&json!({"note": "e2e", "expires_in": 7200})),
        )?;
        ensure!(
            matches!(r.code, 200 | 201),
            "creating a token for {}: HTTP {}: {}",
            self.user,
            r.code,
            r.body
        );
        let t = r.json()?["token"]
            .as_str()
            .context("token in the answer")?
            .to_string();
        self.token = Some(t);
        Ok(())
    }

    /// The Jupyter server's contents API of the user's notebook, with the API token.
    pub fn contents(&self, method: &str, rel: &str, body: Option<&Value>) -> anyhow::Result<Resp> {
        self.server(method, &format!("api/contents/{rel}"), body)
    }

    /// The user's Jupyter server at `/user/<user>/<rel>` (`api/contents/...`,
    /// `lab/api/settings/...`) through the hub's proxy, with the API token.
    pub fn server(&self, method: &str, rel: &str, body: Option<&Value>) -> anyhow::Result<Resp> {
        let auth = format!(
            "Authorization: token {}",
            self.token.as_deref().context("no token (ensure_token)")?
        );
        let data = body.map(|b| b.to_string());
        let mut args = vec!["-X", method, "-H", &auth];
        if let Some(d) = &data {
            args.extend(["-H", "Content-Type: application/json", "--data-binary", d]);
        }
        self.curl(
            &format!("/user/{}/{rel}", self.user),
            &args,
            Duration::from_secs(60),
        )
    }
}

/// Until the hub's login page at `base_url` answers 200 (after a deploy or `hub run` replaced
/// the hub's task), at most 180 s: how long it took.
pub fn wait_login_page(base_url: &str) -> anyhow::Result<Duration> {
    let (_, took) = wait_until("the hub's login page", Duration::from_secs(180), || {
        let out = Command::new("curl")
            .args(curl_ca_args())
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(["--max-time", "5"])
            .arg(format!("{base_url}/hub/login"))
            .output()
            .map_err(|e| e.to_string())?;
        let code = String::from_utf8_lossy(&out.stdout).to_string();
        if code == "200" { Ok(()) } else { Err(code) }
    })?;
    Ok(took)
}

/// The value of the login form's hidden `_xsrf` input.
pub fn form_xsrf(html: &str) -> Option<String> {
    let at = html.find("name=\"_xsrf\"")?;
    let rest = &html[at..];
    let v = rest.find("value=\"")? + "value=\"".len();
    let end = rest[v..].find('"')?;
    Some(
        rest[v..v + end]
            .replace("&#124;", "|")
            .replace("&amp;", "&"),
    )
}

/// A form value: everything but RFC 3986's unreserved characters percent-encoded.
pub fn urlencode(s: &str) -> String {
    const FORM_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, FORM_VALUE).to_string()
}

/// A small notebook with one markdown and one code cell.
pub fn notebook(text: &str) -> Value {
    json!({
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": text},
            {"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": null,
             "outputs": [], "source": "print('hello')"}
        ]
    })
}

pub fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
        if p.is_dir()
            && !p.is_symlink()
            && let Some(found) = find_file(&p, name)
        {
            return Some(found);
        }
    }
    None
}
