//! The control API over real HTTP/1.1 (a raw TcpStream client, so the test sees exactly what goes
//! over the wire): bearer token, create-or-ensure and conflicts, strict bodies, hostile names in
//! bodies and paths, the body cap, removal that moves trees aside, purge confined to `removed/`,
//! and the metrics exposition.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::*;
use nfs3_client::nfs3_types::nfs3::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ALICE: (u32, u32) = (20001, 20000);

/// An HTTP response as read off the wire.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// Asserts an error reply: `status`, a JSON body of `kind` and a non-empty message; returns
    /// the message.
    fn error(&self, status: u16, kind: &str) -> String {
        assert_eq!(self.status, status, "body: {}", self.text());
        let ct = self.header("content-type").unwrap_or_default();
        assert!(ct.starts_with("application/json"), "content-type {ct:?}");
        let v = self.json();
        assert_eq!(v["kind"], kind, "{v}");
        let msg = v["error"].as_str().expect("error message").to_string();
        assert!(!msg.is_empty());
        msg
    }
}

fn decode_chunked(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = std::str::from_utf8(&raw[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// One request on its own connection (`Connection: close`). The request is written while the
/// response is read, so a server that answers before reading a large body is seen answering.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> Resp {
    http_raw(
        addr,
        method,
        path,
        token.map(|t| format!("Bearer {t}")).as_deref(),
        body,
        true,
    )
    .await
}

async fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<&[u8]>,
    json_type: bool,
) -> Resp {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(a) = authorization {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    let body = body.map(<[u8]>::to_vec);
    if let Some(b) = &body {
        if json_type {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    let writer = tokio::spawn(async move {
        // the server may answer and close before reading everything: ignore write errors
        if wr.write_all(req.as_bytes()).await.is_ok()
            && let Some(b) = body
        {
            let _ = wr.write_all(&b).await;
        }
        wr
    });
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), rd.read_to_end(&mut raw)).await;
    match read {
        Err(_) => panic!("{method} {path}: no complete response within 10 s"),
        // a reset after the response arrived (server closed with our body unread) is fine
        Ok(Err(e)) if raw.is_empty() => panic!("{method} {path}: {e}"),
        Ok(_) => {}
    }
    drop(writer.await);
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "{method} {path}: no HTTP head in {:?}",
                String::from_utf8_lossy(&raw)
            )
        });
    let head = std::str::from_utf8(&raw[..head_end]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[head_end + 4..];
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
    };
    resp.body = if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        decode_chunked(rest)
    } else if let Some(len) = resp
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        assert!(rest.len() >= len, "short body: {} of {len}", rest.len());
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    resp
}

struct Api {
    srv: Server,
    addr: SocketAddr,
    token: String,
}

impl Api {
    async fn start() -> Api {
        let srv = Server::start().await;
        let addr = srv.running().api_addr;
        let token = srv.running().token.clone();
        Api { srv, addr, token }
    }

    async fn get(&self, path: &str) -> Resp {
        http(self.addr, "GET", path, Some(&self.token), None).await
    }

    async fn delete(&self, path: &str) -> Resp {
        http(self.addr, "DELETE", path, Some(&self.token), None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Resp {
        let b = serde_json::to_vec(body).unwrap();
        http(self.addr, "POST", path, Some(&self.token), Some(&b)).await
    }

    async fn create(&self, body: &Value) -> Resp {
        self.post("/v1/volumes", body).await
    }

    async fn health_volumes(&self) -> u64 {
        let r = http(self.addr, "GET", "/v1/health", None, None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["volumes"].as_u64().expect("volumes count")
    }

    fn dir(&self) -> &Path {
        &self.srv.dir
    }
}

fn volume_body(name: &str) -> Value {
    json!({"name": name, "user": "alice", "identity": {"uid": ALICE.0, "gid": ALICE.1}})
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Everything under the data root, as relative paths (symlinks not followed).
fn snapshot(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn volume_endpoints_need_the_bearer_token() {
    let api = Api::start().await;
    let body = serde_json::to_vec(&volume_body("home-alice")).unwrap();
    let wrong = format!("{}x", &api.token[..api.token.len() - 1]);
    let prefix = api.token[..api.token.len() - 1].to_string();
    let basic = format!("Basic {}", api.token);
    let auths: Vec<(&str, Option<&str>)> = vec![
        ("no header", None),
        ("empty", Some("")),
        ("bearer without token", Some("Bearer ")),
        ("basic scheme", Some(&basic)),
    ];
    for (method, path, b) in [
        ("GET", "/v1/volumes", None),
        ("POST", "/v1/volumes", Some(&body[..])),
        ("GET", "/v1/volumes/home-alice", None),
        ("DELETE", "/v1/volumes/home-alice", None),
        ("GET", "/v1/removed", None),
        (
            "DELETE",
            "/v1/removed/home-alice.20260101T000000.000Z",
            None,
        ),
    ] {
        for (what, auth) in &auths {
            let r = http_raw(api.addr, method, path, *auth, b, true).await;
            let msg = r.error(401, "unauthorized");
            assert!(msg.contains("token"), "{method} {path} {what}: {msg}");
        }
        for (what, token) in [("wrong token", &wrong), ("token prefix", &prefix)] {
            let r = http(api.addr, method, path, Some(token), b).await;
            let msg = r.error(401, "unauthorized");
            assert!(
                msg.contains("wrong bearer token"),
                "{method} {path} {what}: {msg}"
            );
        }
    }
    // nothing happened
    assert_eq!(api.health_volumes().await, 0);
    assert!(names_in(&api.dir().join("volumes")).is_empty());
    // the right token works
    assert_eq!(api.create(&volume_body("home-alice")).await.status, 201);
}

#[tokio::test]
async fn health_and_metrics_need_no_token() {
    let api = Api::start().await;
    let r = http(api.addr, "GET", "/v1/health", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["volumes"], 0);
    assert_eq!(v["nfs_listen"], api.srv.nfs_addr().to_string());
    assert_eq!(api.create(&volume_body("home-alice")).await.status, 201);
    assert_eq!(api.health_volumes().await, 1);
    let m = http(api.addr, "GET", "/metrics", None, None).await;
    assert_eq!(m.status, 200);
    assert!(m.text().contains("swarmhub_nfsd_volumes 1"), "{}", m.text());
    // health reveals no names
    let h = http(api.addr, "GET", "/v1/health", None, None).await;
    assert!(!h.text().contains("home-alice"));
}

#[tokio::test]
async fn create_is_idempotent_and_conflicts_name_the_difference() {
    let api = Api::start().await;
    let body = volume_body("home-alice");
    let r = api.create(&body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(v["name"], "home-alice");
    let export = v["export"].as_str().unwrap();
    assert!(
        export.starts_with("/home-alice/") && export.len() == "/home-alice/".len() + 32,
        "the mount path carries the capability secret: {export}"
    );
    assert_eq!(v["tree"], "volumes/home-alice");
    assert_eq!(
        (v["store_uid"].as_u64(), v["store_gid"].as_u64()),
        (Some(20001), Some(20000))
    );
    assert_eq!(
        (v["client_uid"].as_u64(), v["client_gid"].as_u64()),
        (Some(1000), Some(100))
    );
    assert!(api.dir().join("volumes/home-alice").is_dir());
    assert_eq!(owner(&api.dir().join("volumes/home-alice")), ALICE);

    // the same again: 200 and the same volume
    let again = api.create(&body).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json(), v);
    // another size is applied (the hub's home_size may change), and can be taken away again
    let mut sized = body.clone();
    sized["size"] = json!(1 << 30);
    let r = api.create(&sized).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["options"]["size"], json!(1 << 30));
    assert!(r.json()["used_bytes"].as_u64().is_some(), "{}", r.text());
    let r = api.create(&body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), v);
    // other settings: 409 naming what differs
    let mut other_id = body.clone();
    other_id["identity"] = json!({"uid": 20002, "gid": 20000});
    let msg = api.create(&other_id).await.error(409, "conflict");
    assert!(msg.contains("identity") && msg.contains("20002"), "{msg}");
    let mut ro = body.clone();
    ro["readonly"] = json!(true);
    let msg = api.create(&ro).await.error(409, "conflict");
    assert!(msg.contains("readonly"), "{msg}");
    let mut client = body.clone();
    client["client"] = json!({"uid": 1001, "gid": 100});
    let msg = api.create(&client).await.error(409, "conflict");
    assert!(msg.contains("client"), "{msg}");
    // GET shows the original settings
    let got = api.get("/v1/volumes/home-alice").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), v);
    let list = api.get("/v1/volumes").await;
    assert_eq!(list.json()["volumes"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn malformed_bodies_are_400_naming_the_problem() {
    let api = Api::start().await;
    let mut sise = volume_body("home-alice");
    sise["sise"] = json!("10G");
    let msg = api.create(&sise).await.error(400, "invalid");
    assert!(msg.contains("sise"), "{msg}");
    let mut nested = volume_body("home-alice");
    nested["identity"]["uidd"] = json!(1);
    let msg = api.create(&nested).await.error(400, "invalid");
    assert!(msg.contains("uidd"), "{msg}");
    let msg = api
        .create(&json!({"user": "alice", "identity": {"uid": 20001, "gid": 20000}}))
        .await
        .error(400, "invalid");
    assert!(msg.contains("name"), "{msg}");
    let mut bad_size = volume_body("home-alice");
    bad_size["size"] = json!("ten gigs");
    api.create(&bad_size).await.error(400, "invalid");
    let mut neg = volume_body("home-alice");
    neg["identity"]["uid"] = json!(-1);
    api.create(&neg).await.error(400, "invalid");
    // root is never a volume's identity
    let mut root = volume_body("home-alice");
    root["identity"] = json!({"uid": 0, "gid": 0});
    let msg = api.create(&root).await.error(400, "invalid");
    assert!(msg.contains("root"), "{msg}");
    // share without user
    let msg = api
        .create(
            &json!({"name": "ex", "share": "exchange", "identity": {"uid": 20001, "gid": 20000}}),
        )
        .await
        .error(400, "invalid");
    assert!(msg.contains("share"), "{msg}");
    // not JSON, not an object, no content type
    for raw in [&b"{"[..], b"[]", b"null", b"\"x\"", b"\xff\xfe"] {
        http(api.addr, "POST", "/v1/volumes", Some(&api.token), Some(raw))
            .await
            .error(400, "invalid");
    }
    let b = serde_json::to_vec(&volume_body("home-alice")).unwrap();
    http_raw(
        api.addr,
        "POST",
        "/v1/volumes",
        Some(&format!("Bearer {}", api.token)),
        Some(&b),
        false,
    )
    .await
    .error(400, "invalid");
    assert_eq!(api.health_volumes().await, 0);
    assert!(names_in(&api.dir().join("volumes")).is_empty());
}

#[tokio::test]
async fn user_without_identity_and_without_ldap_is_400_mentioning_ldap() {
    let api = Api::start().await;
    let msg = api
        .create(&json!({"name": "home-bob", "user": "bob"}))
        .await
        .error(400, "invalid");
    assert!(msg.contains("LDAP"), "{msg}");
    assert!(msg.contains("bob"), "{msg}");
    assert!(!api.dir().join("volumes/home-bob").exists());
    assert_eq!(api.health_volumes().await, 0);
}

#[tokio::test]
async fn hostile_names_are_refused_in_bodies_and_paths() {
    let api = Api::start().await;
    assert_eq!(api.create(&volume_body("keeper")).await.status, 201);
    let (mut c, root) = api.srv.mount("keeper", 1000).await;
    let f = create(&mut c, &root, "data.txt", 0o644).await.unwrap();
    write(&mut c, &f, 0, b"kept", stable_how::FILE_SYNC)
        .await
        .unwrap();
    let before = snapshot(api.dir());

    let long = "x".repeat(300);
    let hostile = [
        "../x",
        "..",
        ".",
        "a/b",
        "/etc",
        "",
        &long,
        "a\0b",
        ".hidden",
        "-a",
        "a b",
        "é",
        "keeper/../x",
    ];
    for n in hostile {
        let msg = api.create(&volume_body(n)).await.error(400, "invalid");
        assert!(msg.contains("volume"), "{n:?}: {msg}");
    }
    // hostile share and user names
    for share in ["../volumes", "a/b", "..", "", &long] {
        let body = json!({"name": "s1", "user": "alice", "share": share, "identity": {"uid": 20001, "gid": 20000}});
        let msg = api.create(&body).await.error(400, "invalid");
        assert!(msg.contains("share"), "{share:?}: {msg}");
    }
    for user in ["../x", "a)(uid=*", "*", ""] {
        let body = json!({"name": "u1", "user": user, "identity": {"uid": 20001, "gid": 20000}});
        let msg = api.create(&body).await.error(400, "invalid");
        assert!(msg.contains("user"), "{user:?}: {msg}");
    }

    // in the path: percent-encoded forms reach the handler and are refused
    let long_path = format!("/v1/volumes/{long}");
    for path in [
        "/v1/volumes/..%2Fx",
        "/v1/volumes/a%2Fb",
        "/v1/volumes/..%2Fvolumes%2Fkeeper",
        "/v1/volumes/%2E%2E",
        "/v1/volumes/a%00b",
        "/v1/volumes/.hidden",
        long_path.as_str(),
    ] {
        for method in ["GET", "DELETE"] {
            let r = http(api.addr, method, path, Some(&api.token), None).await;
            r.error(400, "invalid");
        }
    }
    // forms the router cannot match are 404s, still with a JSON error
    for path in [
        "/v1/volumes/../x",
        "/v1/volumes/a/b",
        "/v1/volumes/",
        "/v1/volumes//",
        "/v1/volumes/keeper/..",
    ] {
        for method in ["GET", "DELETE"] {
            let r = http(api.addr, method, path, Some(&api.token), None).await;
            assert!(
                matches!(r.status, 400 | 404),
                "{method} {path}: {}",
                r.status
            );
            let v = r.json();
            assert!(
                v["kind"] == "invalid" || v["kind"] == "not_found",
                "{method} {path}: {v}"
            );
        }
    }

    // nothing was created, moved or deleted
    assert_eq!(snapshot(api.dir()), before);
    assert_eq!(api.health_volumes().await, 1);
    assert_eq!(read(&mut c, &f, 0, 100).await.unwrap(), b"kept");
}

#[tokio::test]
async fn bodies_over_64_kib_are_413() {
    let api = Api::start().await;
    // valid JSON, just too large
    let mut big = volume_body("home-alice");
    big["padding"] = json!("p".repeat(70 * 1024));
    let b = serde_json::to_vec(&big).unwrap();
    assert!(b.len() > 64 * 1024);
    let msg = http(api.addr, "POST", "/v1/volumes", Some(&api.token), Some(&b))
        .await
        .error(413, "too_large");
    assert!(!msg.is_empty());
    // 1 MiB of junk too
    let junk = vec![b'{'; 1 << 20];
    http(
        api.addr,
        "POST",
        "/v1/volumes",
        Some(&api.token),
        Some(&junk),
    )
    .await
    .error(413, "too_large");
    assert_eq!(api.health_volumes().await, 0);
    // a normal request right after is served
    assert_eq!(api.create(&volume_body("home-alice")).await.status, 201);
}

#[tokio::test]
async fn unknown_things_are_404() {
    let api = Api::start().await;
    let msg = api.get("/v1/volumes/nobody").await.error(404, "not_found");
    assert!(msg.contains("nobody"), "{msg}");
    api.delete("/v1/volumes/nobody")
        .await
        .error(404, "not_found");
    for path in ["/v1/nothing", "/", "/v2/volumes", "/v1/volumes/x/y/z"] {
        api.get(path).await.error(404, "not_found");
        http(api.addr, "GET", path, None, None)
            .await
            .error(404, "not_found");
    }
}

#[tokio::test]
async fn delete_moves_the_tree_aside_and_purge_stays_in_removed() {
    let api = Api::start().await;
    assert_eq!(api.create(&volume_body("home-alice")).await.status, 201);
    assert_eq!(api.create(&volume_body("keeper")).await.status, 201);
    for (vol, content) in [
        ("home-alice", &b"alice's notebook"[..]),
        ("keeper", b"keeper's data"),
    ] {
        let (mut c, root) = api.srv.mount(vol, 1000).await;
        let d = mkdir(&mut c, &root, "work", 0o755).await.unwrap();
        let f = create(&mut c, &d, "nb.ipynb", 0o644).await.unwrap();
        write(&mut c, &f, 0, content, stable_how::FILE_SYNC)
            .await
            .unwrap();
    }

    let r = api.delete("/v1/volumes/home-alice").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["name"], "home-alice");
    let moved = v["tree_moved_to"]
        .as_str()
        .expect("tree_moved_to")
        .to_string();
    let entry = moved
        .strip_prefix("removed/")
        .expect("under removed/")
        .to_string();
    assert!(entry.starts_with("home-alice."), "{entry}");
    // the files are intact in the moved tree, the old place is empty
    let moved_path = api.dir().join(&moved);
    assert_eq!(
        std::fs::read(moved_path.join("work/nb.ipynb")).unwrap(),
        b"alice's notebook"
    );
    assert_eq!(owner(&moved_path.join("work/nb.ipynb")), ALICE);
    assert!(!api.dir().join("volumes/home-alice").exists());
    api.get("/v1/volumes/home-alice")
        .await
        .error(404, "not_found");
    api.delete("/v1/volumes/home-alice")
        .await
        .error(404, "not_found");
    assert_eq!(api.health_volumes().await, 1);

    let removed = api.get("/v1/removed").await;
    assert_eq!(removed.status, 200);
    assert_eq!(removed.json(), json!({"removed": [{"entry": entry}]}));

    // purge refuses anything that is not a plain entry of removed/
    std::fs::write(api.dir().join("removed/stray-file"), b"not a tree").unwrap();
    std::os::unix::fs::symlink(
        api.dir().join("volumes/keeper"),
        api.dir().join("removed/evil"),
    )
    .unwrap();
    let before = snapshot(api.dir());
    for e in [
        "..%2Fvolumes",
        "..%2Fvolumes%2Fkeeper",
        "%2E%2E",
        "..",
        ".",
        "unknown",
        "stray-file",
        "%2Fetc",
        "a%00b",
    ] {
        let r = api.delete(&format!("/v1/removed/{e}")).await;
        r.error(404, "not_found");
    }
    for path in ["/v1/removed/../volumes", "/v1/removed/", "/v1/removed/x/.."] {
        let r = api.delete(path).await;
        assert!(matches!(r.status, 400 | 404), "{path}: {}", r.status);
        r.json();
    }
    assert_eq!(
        snapshot(api.dir()),
        before,
        "a refused purge changed the data root"
    );
    // a symlink under removed/ may go, but never what it points to
    let r = api.delete("/v1/removed/evil").await;
    assert!(matches!(r.status, 200 | 404), "{}", r.text());
    assert_eq!(
        std::fs::read(api.dir().join("volumes/keeper/work/nb.ipynb")).unwrap(),
        b"keeper's data"
    );
    assert!(api.dir().join("volumes/keeper/work").is_dir());

    // the real entry is purged
    let r = api.delete(&format!("/v1/removed/{entry}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"entry": entry}));
    assert!(!moved_path.exists());
    api.delete(&format!("/v1/removed/{entry}"))
        .await
        .error(404, "not_found");
    let left: Vec<String> = api.get("/v1/removed").await.json()["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entry"].as_str().unwrap().to_string())
        .collect();
    assert!(!left.contains(&entry));
    assert!(left.contains(&"stray-file".to_string()));
    // the other volume is untouched and still served
    let (mut c, root) = api.srv.mount("keeper", 1000).await;
    let (d, _) = lookup(&mut c, &root, "work").await.unwrap();
    let (f, _) = lookup(&mut c, &d, "nb.ipynb").await.unwrap();
    assert_eq!(read(&mut c, &f, 0, 100).await.unwrap(), b"keeper's data");
}

#[tokio::test]
async fn share_views_leave_the_shared_tree_in_place() {
    let api = Api::start().await;
    let body = json!({"name": "ex-alice", "user": "alice", "share": "exchange", "identity": {"uid": 20001, "gid": 20000}});
    assert_eq!(api.create(&body).await.status, 201);
    api.srv.share_dir("exchange", "pub", ALICE, 0o755).await;
    let (mut c, root) = api.srv.mount("ex-alice", 1000).await;
    let (pub_dir, _) = lookup(&mut c, &root, "pub").await.unwrap();
    let f = create(&mut c, &pub_dir, "shared.txt", 0o644).await.unwrap();
    write(&mut c, &f, 0, b"for everyone", stable_how::FILE_SYNC)
        .await
        .unwrap();
    let r = api.delete("/v1/volumes/ex-alice").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["tree_moved_to"], Value::Null);
    assert_eq!(
        std::fs::read(api.dir().join("shares/exchange/pub/shared.txt")).unwrap(),
        b"for everyone"
    );
    assert!(names_in(&api.dir().join("removed")).is_empty());
}

const TINA: (u32, u32) = (20010, 20100);

fn share_dir_body(owner: (u32, u32), mode: u32) -> Value {
    json!({"identity": {"uid": owner.0, "gid": owner.1}, "mode": mode})
}

impl Api {
    async fn put(&self, path: &str, body: &Value) -> Resp {
        let b = serde_json::to_vec(body).unwrap();
        http(self.addr, "PUT", path, Some(&self.token), Some(&b)).await
    }
}

#[tokio::test]
async fn share_dirs_are_made_for_token_holders_and_never_taken_from_their_owner() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let api = Api::start().await;
    let path = "/v1/shares/exchange/dirs/demo101";
    // the share tree is made on the way, owned by nfsd
    let r = api.put(path, &share_dir_body(TINA, 0o755)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"share": "exchange", "name": "demo101", "uid": TINA.0, "gid": TINA.1, "mode": 0o755, "created": true})
    );
    let tree = api.dir().join("shares/exchange");
    let md = std::fs::metadata(&tree).unwrap();
    assert_eq!((md.uid(), md.gid(), md.mode() & 0o7777), (0, 0, 0o755));
    let md = std::fs::metadata(tree.join("demo101")).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o7777),
        (TINA.0, TINA.1, 0o755)
    );

    // again: 200, and a mode changed since is put back
    std::fs::set_permissions(tree.join("demo101"), PermissionsExt::from_mode(0o777)).unwrap();
    let r = api.put(path, &share_dir_body(TINA, 0o755)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["created"], false);
    let md = std::fs::metadata(tree.join("demo101")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o755);
    // setgid and sticky bits are allowed
    let r = api
        .put(
            "/v1/shares/exchange/dirs/drop",
            &share_dir_body(TINA, 0o3777),
        )
        .await;
    assert_eq!((r.status, r.json()["mode"].as_u64()), (201, Some(0o3777)));

    // someone else's directory (squatted before an upgrade) is not taken over
    let msg = api
        .put(path, &share_dir_body(ALICE, 0o755))
        .await
        .error(409, "conflict");
    assert!(msg.contains(&format!("uid {}", TINA.0)), "{msg}");
    assert!(msg.contains("move it aside"), "{msg}");
    let md = std::fs::metadata(tree.join("demo101")).unwrap();
    assert_eq!(md.uid(), TINA.0);

    // bad names, bad modes, bad bodies: 400, nothing made
    let before = snapshot(api.dir());
    for bad in [
        "%2E%2E",
        "..",
        ".hidden",
        "a%2Fb",
        "..%2Fvolumes",
        "-x",
        "a%00b",
    ] {
        let msg = api
            .put(
                &format!("/v1/shares/exchange/dirs/{bad}"),
                &share_dir_body(TINA, 0o755),
            )
            .await
            .error(400, "invalid");
        assert!(msg.contains("share directory"), "{bad:?}: {msg}");
    }
    let msg = api
        .put(
            "/v1/shares/..%2Fvolumes/dirs/x",
            &share_dir_body(TINA, 0o755),
        )
        .await
        .error(400, "invalid");
    assert!(msg.contains("share"), "{msg}");
    for mode in [0o10000, 0o170755, u32::MAX] {
        let msg = api
            .put("/v1/shares/exchange/dirs/m", &share_dir_body(TINA, mode))
            .await
            .error(400, "invalid");
        assert!(msg.contains("0o7777"), "{mode:o}: {msg}");
    }
    for body in [
        json!({"identity": {"uid": TINA.0, "gid": TINA.1}}),
        json!({"mode": 493}),
        json!({"user": "tina", "mode": 493, "owner": 1}),
        json!({"identity": {"uid": 0, "gid": 0}, "mode": 493}),
        json!({"user": "a)(uid=*", "mode": 493}),
        json!({"user": "tina", "mode": 493}),
    ] {
        api.put("/v1/shares/exchange/dirs/b", &body)
            .await
            .error(400, "invalid");
    }
    // without the token: 401
    let b = serde_json::to_vec(&share_dir_body(TINA, 0o755)).unwrap();
    let r = http(
        api.addr,
        "PUT",
        "/v1/shares/exchange/dirs/t",
        None,
        Some(&b),
    )
    .await;
    assert!(r.error(401, "unauthorized").contains("token"));
    let r = http(
        api.addr,
        "PUT",
        "/v1/shares/exchange/dirs/t",
        Some("nope"),
        Some(&b),
    )
    .await;
    r.error(401, "unauthorized");
    assert_eq!(snapshot(api.dir()), before);
}

#[tokio::test]
async fn metrics_count_nfs_calls_and_volumes() {
    let api = Api::start().await;
    assert_eq!(api.create(&volume_body("home-alice")).await.status, 201);
    assert_eq!(api.create(&volume_body("home-bob")).await.status, 201);
    let (mut c, root) = api.srv.mount("home-alice", 1000).await;
    for _ in 0..3 {
        getattr(&mut c, &root).await.unwrap();
    }
    let f = create(&mut c, &root, "x", 0o644).await.unwrap();
    write(&mut c, &f, 0, &[1u8; 1000], stable_how::FILE_SYNC)
        .await
        .unwrap();
    let _ = lookup(&mut c, &root, "missing").await;

    let r = http(api.addr, "GET", "/metrics", None, None).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    let value = |prefix: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"));
        line[prefix.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(value("swarmhub_nfsd_rpc_calls_total{procedure=\"GETATTR\"} ") >= 3.0);
    assert!(value("swarmhub_nfsd_rpc_calls_total{procedure=\"MOUNT_MNT\"} ") >= 1.0);
    assert!(value("swarmhub_nfsd_rpc_calls_total{procedure=\"WRITE\"} ") >= 1.0);
    assert!(value("swarmhub_nfsd_write_bytes_total ") >= 1000.0);
    assert_eq!(
        value("swarmhub_nfsd_directory_flushes_total "),
        0.0,
        "test servers run with sync_metadata off: no directory fsync"
    );
    assert_eq!(value("swarmhub_nfsd_volumes "), 2.0);
    assert!(
        text.contains("NFS3ERR_NOENT"),
        "LOOKUP of a missing name counts as an error"
    );
    assert!(text.trim_end().ends_with("# EOF"));
    // no names leak
    assert!(!text.contains("home-alice"));
}

#[tokio::test]
async fn directory_fsyncs_are_counted_when_namespace_changes_are_synchronous() {
    let srv = Server::start_with(|s| s.sync_metadata = true).await;
    srv.volume("home-alice", None, 30001, 30000).await;
    let (mut c, root) = srv.mount("home-alice", 1000).await;
    create(&mut c, &root, "a", 0o644).await.unwrap();
    mkdir(&mut c, &root, "d", 0o755).await.unwrap();
    let text = http(srv.running().api_addr, "GET", "/metrics", None, None)
        .await
        .text();
    let flushes: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("swarmhub_nfsd_directory_flushes_total "))
        .unwrap_or_else(|| panic!("no directory fsync counter in\n{text}"))
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        flushes, 2.0,
        "one fsync of the directory per CREATE and MKDIR"
    );
}
