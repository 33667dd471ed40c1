//! What clients see of a hub that serves HTTPS, checked with curl: the page over HTTPS with the
//! hub's CA trusted; certificate verification refusing the connection without it; plain HTTP
//! on the HTTPS port answered by the hub's TLS front with a redirect to the same URL over
//! HTTPS (not a hang, not a connection closed without a word); plain HTTP on the redirect port
//! answered with a redirect to the HTTPS URL. Every request has curl's `--max-time`, so a hang
//! is a failure, not a stuck test.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, ensure};

use crate::docker::{Out, run_timeout};

/// curl's own limit for each request (a hang ends as curl's exit code 28).
const MAX_TIME: u64 = 20;

fn curl(args: &[&str]) -> anyhow::Result<Out> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", &MAX_TIME.to_string()])
        .args(args);
    run_timeout(cmd, Duration::from_secs(MAX_TIME + 10))
        .context("running curl (apt-get install -y curl)")
}

/// GET `url` with curl's `args` must answer 200.
fn expect_200(args: &[&str], url: &str) -> anyhow::Result<()> {
    let out = curl(&[args, &["-o", "/dev/null", "-w", "%{http_code}", url]].concat())?;
    ensure!(
        out.success() && out.stdout.trim() == "200",
        "GET {url} ({}) must answer 200: {}",
        args.join(" "),
        out.describe()
    );
    Ok(())
}

/// Plain HTTP GET `from` must answer 301 to `want`, and following it with the CA `ca` must
/// end in 200. Returns how long the redirect took.
fn expect_redirect(from: &str, want: &str, ca: &str) -> anyhow::Result<Duration> {
    let r = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        from,
    ])?;
    ensure!(
        r.success() && r.stdout.trim() == format!("301 {want}"),
        "plain HTTP to {from} must answer 301 to {want}: {}",
        r.describe()
    );
    expect_200(&["-L", "--cacert", ca], from)?;
    Ok(r.took)
}

/// `base` is the hub's HTTPS URL without the trailing slash (`https://host:port`), `ca` the
/// CA its certificate comes from, `redirect_port` the plain-HTTP port that redirects (if
/// any). Returns what was seen, one line per check, for the test's log.
pub fn check_hub_https(
    base: &str,
    ca: &Path,
    redirect_port: Option<u16>,
) -> anyhow::Result<String> {
    let mut report = String::new();
    let ca_s = ca.display().to_string();
    let login = format!("{base}/hub/login");

    // the CA trusted: the login page
    expect_200(&["--cacert", &ca_s], &login)?;
    report.push_str(&format!("https with --cacert {ca_s}: HTTP 200\n"));

    // without the CA: certificate verification refuses (curl's exit code 60)
    let refused = curl(&["-o", "/dev/null", "-w", "%{http_code}", &login])?;
    ensure!(
        refused.code() == Some(60) && refused.stderr.contains("certificate"),
        "GET {login} without the CA must fail certificate verification (curl exit 60): {}",
        refused.describe()
    );
    report.push_str(&format!(
        "https without the CA: refused by certificate verification: {}\n",
        refused.stderr.lines().next().unwrap_or_default()
    ));

    // plain HTTP on the HTTPS port: a redirect to the same host, port and path over HTTPS,
    // which works with the CA (before the TLS front, the connection closed without a word)
    let path = "/hub/login?next=%2Fhub%2F";
    let plain = format!("{}{path}", base.replacen("https://", "http://", 1));
    let want = format!("{base}{path}");
    let took = expect_redirect(&plain, &want, &ca_s)?;
    report.push_str(&format!(
        "plain http to the https port: 301 to {want} after {took:.2?}; followed with the CA: HTTP 200\n"
    ));

    // plain HTTP on the redirect port: a redirect to the same path over HTTPS, which works
    if let Some(port) = redirect_port {
        let host_port = base
            .strip_prefix("https://")
            .context("the base URL is not https://")?;
        let (host, _) = host_port
            .rsplit_once(':')
            .context("the base URL has no port")?;
        let from = format!("http://{host}:{port}{path}");
        expect_redirect(&from, &want, &ca_s)?;
        report.push_str(&format!(
            "plain http to port {port}: 301 to {want}; followed with the CA: HTTP 200\n"
        ));
    }
    Ok(report)
}
