//! The hub's TLS front as rendered by `settings::tls_front`, run by the real nginx (Debian's
//! `nginx-light`, what the hub image installs) on loopback ports, in front of a small upstream
//! that stands in for configurable-http-proxy and reports what reached it.
//!
//! Asserted, each through real sockets:
//! - plain HTTP sent to the HTTPS port gets a 301 to the same host, port and path over HTTPS
//!   (configurable-http-proxy alone closed it without a word), and an HTTP/1.0 request without
//!   a Host gets a 400 that says to use https://;
//! - HTTPS with the certificate `swarmhub tls self-signed` made (verified against its CA)
//!   reaches the upstream with the browser's Host (port included), `X-Forwarded-Proto: https`
//!   and the client's address in `X-Real-IP`, a forged one overwritten;
//! - a 3 MiB upload passes whole (nginx's default limit is 1 MiB);
//! - a WebSocket upgrade passes, and bytes flow both ways after it (kernels need that);
//! - the redirect port sends every request to `https://<host><path>` (hub_port 443).
//!
//! Needs the `nginx` binary (`apt-get install -y nginx-light`; `.ci/run` installs it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hub_deployer::settings::tls_front::{self, TlsFront};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

/// nginx, stopped when the test ends (also when it fails): SIGTERM, on which the master stops
/// its workers too (a SIGKILL would leave them running, holding the test's output open).
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Replaces the one occurrence of `from` in `text` (the rendered file must have it).
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} in:\n{text}");
    text.replacen(from, to, 1)
}

/// The stand-in for configurable-http-proxy: answers each request with the head it received
/// and the length of its body; a WebSocket upgrade gets `101` and then an echo of every byte.
fn upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            std::thread::spawn(move || serve(conn));
        }
    });
    port
}

fn serve(conn: TcpStream) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let mut conn = conn;
    if header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        conn.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        )
        .unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if conn.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    }
    let length: u64 = header("content-length").map_or(0, |v| v.parse().unwrap());
    let got = std::io::copy(&mut (&mut reader).take(length), &mut std::io::sink()).unwrap();
    let body = format!("{head}body-bytes: {got}\n");
    let _ = conn.write_all(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let _ = conn.shutdown(Shutdown::Write);
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("run curl (apt-get install -y curl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A self-signed set for 127.0.0.1, made by the CLI as an admin would.
fn certificate(dir: &Path) {
    std::fs::write(
        dir.join("swarmhub.toml"),
        "[cluster]\npublic_url = \"https://127.0.0.1/\"\n[tls]\nmode = \"self-signed\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_swarmhub"))
        .args(["tls", "self-signed"])
        .current_dir(dir)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "swarmhub tls self-signed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start_nginx(dir: &Path, conf: &str, ports: &[u16]) -> Nginx {
    let file = dir.join("front.conf");
    std::fs::write(&file, conf).unwrap();
    // errors to stderr from the start, not to the package's log file
    let nginx = || {
        let mut c = Command::new("nginx");
        c.args(["-e", "stderr", "-c"]).arg(&file);
        c
    };
    let test = nginx()
        .arg("-t")
        .output()
        .expect("run nginx (apt-get install -y nginx-light)");
    assert!(
        test.status.success(),
        "nginx -t refuses the front's configuration: {}\n{conf}",
        String::from_utf8_lossy(&test.stderr)
    );
    let child = nginx()
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let nginx = Nginx(child);
    let until = Instant::now() + Duration::from_secs(20);
    for port in ports {
        while TcpStream::connect(("127.0.0.1", *port)).is_err() {
            assert!(Instant::now() < until, "nginx does not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    nginx
}

/// A WebSocket upgrade over TLS (the CA trusted), then bytes both ways.
fn websocket(port: u16, ca: &Path) -> String {
    let roots = {
        let mut r = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).unwrap() {
            r.add(c.unwrap()).unwrap();
        }
        r
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut s = rustls::Stream::new(&mut tls, &mut sock);
    s.write_all(
        format!(
            "GET /user/alice/api/kernels/k1/channels HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"frame after the upgrade").unwrap();
    let mut echo = [0u8; 23];
    s.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"frame after the upgrade");
    head.lines().next().unwrap_or_default().to_string()
}

#[test]
fn the_front_redirects_plain_http_and_passes_https_websockets_and_the_client_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    certificate(dir);
    let (cert, key, ca) = (
        dir.join("tls/hub.pem"),
        dir.join("tls/hub-key.pem"),
        dir.join("tls/ca.pem"),
    );
    let up = upstream();
    let (https_port, redirect_port) = (free_port(), free_port());
    let conf = tls_front::render(&TlsFront {
        cert_file: cert.to_str().unwrap().into(),
        key_file: key.to_str().unwrap().into(),
        redirect_to: Some(443),
    });
    // the same file on loopback ports of this test, its pid file in the temporary directory
    let conf = replace_once(
        &conf,
        "listen 8000 ssl;",
        &format!("listen 127.0.0.1:{https_port} ssl;"),
    );
    let conf = replace_once(
        &conf,
        "listen 8080;",
        &format!("listen 127.0.0.1:{redirect_port};"),
    );
    let conf = replace_once(
        &conf,
        &format!(
            "proxy_pass http://127.0.0.1:{};",
            tls_front::PROXY_BEHIND_FRONT_PORT
        ),
        &format!("proxy_pass http://127.0.0.1:{up};"),
    );
    let conf = replace_once(
        &conf,
        "pid /run/swarmhub-tls-front.pid;",
        &format!("pid {};", dir.join("nginx.pid").display()),
    );
    let _nginx = start_nginx(dir, &conf, &[https_port, redirect_port]);
    let ca_s = ca.to_str().unwrap();
    let base = format!("127.0.0.1:{https_port}");

    // plain HTTP on the HTTPS port: 301 to the same URL over HTTPS, which then works
    let path = "/hub/login?next=%2Fhub%2F";
    let (ok, seen) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        &format!("http://{base}{path}"),
    ]);
    assert!(ok, "{seen}");
    assert_eq!(seen, format!("301 https://{base}{path}"));
    let (ok, seen) = curl(&["-L", "--cacert", ca_s, &format!("http://{base}{path}")]);
    assert!(
        ok && seen.contains(&format!("GET {path} HTTP/1.1")),
        "{seen}"
    );

    // HTTP/1.0 without a Host: no URL to redirect to, a 400 that says what to do
    let mut raw = TcpStream::connect(("127.0.0.1", https_port)).unwrap();
    raw.write_all(b"GET /hub/ HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 400") && answer.contains("send the request over https://"),
        "{answer}"
    );

    // HTTPS, the CA checked: the browser's Host, "https" and the client's address arrive
    let (ok, seen) = curl(&[
        "--cacert",
        ca_s,
        "-H",
        "X-Real-IP: 203.0.113.9",
        "-H",
        "X-Forwarded-For: 203.0.113.9",
        &format!("https://{base}/hub/api"),
    ]);
    assert!(ok, "{seen}");
    let lower = seen.to_ascii_lowercase();
    for want in [
        format!("host: {base}\r\n"),
        "x-real-ip: 127.0.0.1\r\n".to_string(),
        "x-forwarded-for: 203.0.113.9, 127.0.0.1\r\n".to_string(),
        "x-forwarded-proto: https\r\n".to_string(),
    ] {
        assert!(
            lower.contains(&want),
            "{want:?} did not reach the proxy:\n{seen}"
        );
    }
    // without the CA the certificate is refused (curl's 60)
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", &format!("https://{base}/")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(60), "{out:?}");

    // an upload larger than nginx's default 1 MiB limit passes whole
    let upload = dir.join("upload.bin");
    std::fs::write(&upload, vec![7u8; 3 << 20]).unwrap();
    let (ok, seen) = curl(&[
        "--cacert",
        ca_s,
        "--data-binary",
        &format!("@{}", upload.display()),
        &format!("https://{base}/user/alice/api/contents/big.bin"),
    ]);
    assert!(
        ok && seen.contains(&format!("body-bytes: {}", 3 << 20)),
        "{seen}"
    );

    // a WebSocket: upgraded, then bytes both ways
    let status = websocket(https_port, &ca);

    // the redirect port: everything to https://<host><path> (hub_port 443)
    let (ok, seen) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        &format!("http://127.0.0.1:{redirect_port}/lab?x=1"),
    ]);
    assert!(ok, "{seen}");
    assert_eq!(seen, "301 https://127.0.0.1/lab?x=1");
    println!(
        "nginx front on {base}: plain http -> 301 https; no Host -> 400; https with the CA -> upstream with the client's address; 3 MiB upload whole; websocket {status}; redirect port -> 301"
    );
}
