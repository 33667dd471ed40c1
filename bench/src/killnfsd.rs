//! `kill -9` of swarmhub-nfsd under load (issue 17, item 1; figures in docs/RELIABILITY.md).
//!
//! Host mode (`run_host`): a release (or given) swarmhub-nfsd over a temp data dir with one
//! volume; `clients` userspace NFSv3 clients (nfs3_client, each on its own TCP connection) do the
//! notebook autosave pattern back to back — CREATE GUARDED a temp file named after the version,
//! WRITE UNSTABLE, COMMIT, RENAME over the client's notebook — while `streams` writers append 1 MiB
//! WRITEs to their own files (even writers UNSTABLE + COMMIT every few MiB, odd writers
//! FILE_SYNC). A killer sends SIGKILL to nfsd `kills` times at seeded random moments, starts it
//! again on the same port and data dir, and measures the time from the restart to the first
//! answered call (GETATTR of the export root, with the handle from before the kill, through a
//! fresh connection).
//!
//! The clients behave like a real client: a broken connection is reopened (no new MOUNT: the
//! handles from before must stay valid) and the call is sent again; a WRITE verifier that changed
//! between WRITE and COMMIT means the server restarted and the data is written again. What only
//! a resend can cause is counted apart, not as an error: a resent CREATE GUARDED answering EXIST
//! (the first copy made the file) and a resent RENAME answering NOENT — the latter only after a
//! LOOKUP + READ shows that the notebook holds this very version; otherwise it is an error.
//! Every other NFS error (ESTALE above all) is an error.
//!
//! A version is acknowledged when its RENAME reply arrives; a stream's prefix when a COMMIT reply
//! (with the verifier of every WRITE since the previous COMMIT) or a FILE_SYNC WRITE reply does.
//! After the last kill the load runs a little longer, nfsd is killed once more (not counted)
//! and the volume's directory is checked on disk byte for byte: every notebook holds exactly its
//! last acknowledged version or a later one that was sent; every stream file holds at least its
//! acknowledged prefix.
//!
//! Guest mode (`run_guest`): the same load from the Linux kernel client in the qemu guest of
//! `tests/guest/` (hard mount): busybox autosave loops (`dd conv=fsync` of a temp file, `mv` over
//! the notebook, then a line in a log on the guest's tmpfs) and `dd conv=fsync` streams, while the
//! host kills nfsd; the guest prints its logs and every application error (there must be none),
//! and the host checks the volume on disk.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use nfs3_client::Nfs3Client;

use crate::rng::{Rng, splitmix};
use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use swarmhub_tests::nfsd::Nfsd;
use tokio::net::TcpStream;

use crate::nfs::{self, Fh, dirop};
use crate::servers::{self, BENCH_GID, BENCH_UID, Endpoint};

/// The volume the load runs on.
pub const VOLUME: &str = "killvol";
/// A call that gets no reply within this time counts as a broken connection (and is resent).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A client gives up (an error) when nfsd does not answer for this long.
const GIVE_UP: Duration = Duration::from_secs(120);

// ------------------------------------------------------------------------------------------------
// deterministic content
// ------------------------------------------------------------------------------------------------

fn fill(seed: u64, out: &mut [u8]) {
    let mut s = seed;
    for chunk in out.chunks_mut(8) {
        let v = splitmix(&mut s).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// Version `version` of client `client`'s notebook: a one-line header naming both, then bytes
/// derived from them; 2-64 KiB in all.
pub fn payload(client: usize, version: u64) -> Vec<u8> {
    let seed = (client as u64) << 40 ^ version;
    let mut s = seed ^ 0x5157_4152_4D48_5542;
    let len = 2048 + usize::try_from(splitmix(&mut s) % (62 * 1024)).unwrap_or(0);
    let header =
        format!("swarmhub-kill-nfsd client={client:03} version={version:08} len={len:06}\n");
    let mut v = header.into_bytes();
    let h = v.len();
    v.resize(len.max(h), 0);
    fill(seed, &mut v[h..]);
    v
}

/// The (client, version) a notebook's header names.
pub fn parse_header(b: &[u8]) -> Option<(usize, u64)> {
    let line = b.split(|c| *c == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut it = line.split_whitespace();
    if it.next()? != "swarmhub-kill-nfsd" {
        return None;
    }
    let client = it.next()?.strip_prefix("client=")?.parse().ok()?;
    let version = it.next()?.strip_prefix("version=")?.parse().ok()?;
    Some((client, version))
}

/// Bytes `offset..offset+len` of stream file `name` (content depends only on name and offset,
/// in 4 KiB blocks).
pub fn stream_bytes(name: &str, offset: u64, len: usize) -> Vec<u8> {
    let mut key = 0xCBF2_9CE4_8422_2325u64;
    for b in name.bytes() {
        key = (key ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
    }
    let mut out = vec![0u8; len];
    let mut pos = 0usize;
    while pos < len {
        let abs = offset + pos as u64;
        let block = abs / 4096;
        let within = usize::try_from(abs % 4096).unwrap_or(0);
        let mut b = [0u8; 4096];
        fill(key ^ block.wrapping_mul(0x9E37_79B9), &mut b);
        let n = (4096 - within).min(len - pos);
        out[pos..pos + n].copy_from_slice(&b[within..within + n]);
        pos += n;
    }
    out
}

// ------------------------------------------------------------------------------------------------
// a client connection that reconnects and resends
// ------------------------------------------------------------------------------------------------

/// Counters one client or writer keeps; summed into the report.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Calls sent again after a broken connection (or a call timeout).
    pub resends: u64,
    /// Reconnections.
    pub reconnects: u64,
    /// Calls that got no reply within `CALL_TIMEOUT` (then resent).
    pub timeouts: u64,
    /// Resent CREATE GUARDED that answered EXIST (its first copy had made the file).
    pub dup_create_exist: u64,
    /// Resent RENAME that answered NOENT, the notebook then found holding this version.
    pub dup_rename_noent: u64,
    /// WRITEs sent again because the COMMIT verifier differed (nfsd restarted in between).
    pub rewrites: u64,
    /// NFS3ERR_STALE replies.
    pub estale: u64,
    /// Every other error (an NFS status where success was due, an RPC failure other than a
    /// broken connection, nfsd unreachable for `GIVE_UP`, a short write).
    pub errors: u64,
    pub first_errors: Vec<String>,
}

impl Tally {
    fn error(&mut self, what: String) {
        if what.contains("NFS3ERR_STALE") {
            self.estale += 1;
        } else {
            self.errors += 1;
        }
        if self.first_errors.len() < 5 {
            self.first_errors.push(what);
        }
    }

    fn absorb(&mut self, o: &Tally) {
        self.resends += o.resends;
        self.reconnects += o.reconnects;
        self.timeouts += o.timeouts;
        self.dup_create_exist += o.dup_create_exist;
        self.dup_rename_noent += o.dup_rename_noent;
        self.rewrites += o.rewrites;
        self.estale += o.estale;
        self.errors += o.errors;
        for e in &o.first_errors {
            if self.first_errors.len() < 10 {
                self.first_errors.push(e.clone());
            }
        }
    }
}

fn credential() -> opaque_auth<'static> {
    opaque_auth::auth_unix(&auth_unix {
        stamp: 1,
        machinename: Opaque::borrowed(b"swarmhub-kill-nfsd"),
        uid: BENCH_UID,
        gid: BENCH_GID,
        gids: vec![],
    })
}

/// A TCP stream for nfs3_client whose reads fail at end of stream: nfs3_client 0.9.1's
/// `async_read_exact` loops for ever on a read of 0 bytes, so a connection the server closed
/// while a call was in flight (a killed nfsd that had read the whole call) would never fail.
struct EofIo(TcpStream);

impl nfs3_client::io::AsyncRead for EofIo {
    async fn async_read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = tokio::io::AsyncReadExt::read(&mut self.0, buf).await?;
        if n == 0 && !buf.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "nfsd closed the connection",
            ));
        }
        Ok(n)
    }
}

impl nfs3_client::io::AsyncWrite for EofIo {
    async fn async_write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        tokio::io::AsyncWriteExt::write(&mut self.0, buf).await
    }
}

type Client = Nfs3Client<EofIo>;

/// Opens an NFS connection (no MOUNT: the handles are the ones from before).
async fn open(addr: SocketAddr) -> std::io::Result<Client> {
    let s = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    s.set_nodelay(true)?;
    Ok(Nfs3Client::new_with_auth(
        EofIo(s),
        credential(),
        opaque_auth::default(),
    ))
}

/// One client's connection: reopened after a failure.
struct Conn {
    addr: SocketAddr,
    c: Option<Client>,
}

impl Conn {
    async fn new(addr: SocketAddr) -> anyhow::Result<Conn> {
        let c = open(addr)
            .await
            .with_context(|| format!("connecting to nfsd at {addr}"))?;
        Ok(Conn { addr, c: Some(c) })
    }

    /// The connection, reopened (retrying while nfsd is down) if it broke.
    async fn get(&mut self, t: &mut Tally) -> Result<&mut Client, String> {
        if self.c.is_none() {
            let start = Instant::now();
            let mut wait = Duration::from_millis(5);
            loop {
                match open(self.addr).await {
                    Ok(c) => {
                        t.reconnects += 1;
                        self.c = Some(c);
                        break;
                    }
                    Err(e) if start.elapsed() > GIVE_UP => {
                        return Err(format!(
                            "nfsd at {} unreachable for {} s: {e}",
                            self.addr,
                            GIVE_UP.as_secs()
                        ));
                    }
                    Err(_) => {
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_millis(100));
                    }
                }
            }
        }
        Ok(self.c.as_mut().expect("connected above"))
    }
}

/// Sends `$call` (an expression using `$c: &mut Client`) until a reply arrives: a broken
/// connection or a timeout reopens the connection and sends it again. Evaluates to
/// `Result<(reply, resent), String>`.
macro_rules! resend {
    ($conn:expr, $tally:expr, $what:expr, |$c:ident| $call:expr) => {{
        let start = Instant::now();
        let mut resent = false;
        loop {
            let $c = match $conn.get(&mut $tally).await {
                Ok(c) => c,
                Err(e) => break Err(format!("{}: {e}", $what)),
            };
            let r = tokio::time::timeout(CALL_TIMEOUT, $call).await;
            match r {
                Ok(Ok(reply)) => break Ok((reply, resent)),
                Ok(Err(nfs3_client::RpcError::Io(_))) | Err(_) => {
                    if r.is_err() {
                        $tally.timeouts += 1;
                        eprintln!(
                            "{}: no reply within {} s (sent {:.1} s into the run); resending",
                            $what,
                            CALL_TIMEOUT.as_secs(),
                            run_clock().as_secs_f64() - CALL_TIMEOUT.as_secs_f64()
                        );
                    }
                    $conn.c = None;
                    if start.elapsed() > GIVE_UP {
                        break Err(format!("{}: no reply for {} s", $what, GIVE_UP.as_secs()));
                    }
                    $tally.resends += 1;
                    resent = true;
                }
                Ok(Err(e)) => {
                    $conn.c = None;
                    break Err(format!("{}: rpc {e:?}", $what));
                }
            }
        }
    }};
}

/// Time since the first call of this function (the run's clock for messages).
fn run_clock() -> Duration {
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    T0.get_or_init(Instant::now).elapsed()
}

fn nfs_err<T, F>(r: Nfs3Result<T, F>, what: &str) -> Result<T, (nfsstat3, String)> {
    match r {
        Nfs3Result::Ok(ok) => Ok(ok),
        Nfs3Result::Err((s, _)) => Err((s, format!("{what}: {s:?}"))),
    }
}

// ------------------------------------------------------------------------------------------------
// the autosave clients
// ------------------------------------------------------------------------------------------------

/// What one autosave client did.
#[derive(Clone, Debug, Default)]
pub struct ClientLedger {
    pub client: usize,
    /// Last version whose RENAME was acknowledged.
    pub acked: Option<u64>,
    /// Highest version whose RENAME was sent.
    pub sent: Option<u64>,
    /// Versions acknowledged.
    pub acks: u64,
    pub tally: Tally,
}

pub fn client_dir(i: usize) -> String {
    format!("c{i:03}")
}
pub const NOTEBOOK: &str = "notebook.ipynb";
fn temp_name(v: u64) -> String {
    format!(".notebook.v{v:08}.tmp")
}

/// One autosave of version `v`; `led.acked` is set when its RENAME is acknowledged.
async fn autosave(
    conn: &mut Conn,
    t: &mut Tally,
    led: &mut ClientLedger,
    dir: &Fh,
    v: u64,
) -> Result<(), String> {
    let data = payload(led.client, v);
    let temp = temp_name(v);
    // CREATE GUARDED
    let (r, resent) = resend!(conn, *t, "CREATE", |c| c.create(&CREATE3args {
        where_: dirop(dir, &temp),
        how: createhow3::GUARDED(sattr3 {
            mode: Nfs3Option::Some(0o644),
            ..Default::default()
        }),
    }))?;
    let fh = match nfs_err(r, &format!("CREATE {temp}")) {
        Ok(ok) => match ok.obj {
            Nfs3Option::Some(fh) => fh,
            Nfs3Option::None => lookup(conn, t, dir, &temp).await?,
        },
        Err((nfsstat3::NFS3ERR_EXIST, _)) if resent => {
            t.dup_create_exist += 1;
            lookup(conn, t, dir, &temp).await?
        }
        Err((_, e)) => return Err(e),
    };
    // WRITE UNSTABLE + COMMIT, again while the verifiers differ
    let mut tries = 0;
    loop {
        let len = u32::try_from(data.len()).map_err(|e| e.to_string())?;
        let (r, _) = resend!(conn, *t, "WRITE", |c| c.write(&WRITE3args {
            file: fh.clone(),
            offset: 0,
            count: len,
            stable: stable_how::UNSTABLE,
            data: Opaque::borrowed(&data),
        }))?;
        let w = nfs_err(r, &format!("WRITE {temp}")).map_err(|e| e.1)?;
        if w.count != len {
            return Err(format!("WRITE {temp}: short write {} of {len}", w.count));
        }
        let (r, _) = resend!(conn, *t, "COMMIT", |c| c.commit(&COMMIT3args {
            file: fh.clone(),
            offset: 0,
            count: 0,
        }))?;
        let cm = nfs_err(r, &format!("COMMIT {temp}")).map_err(|e| e.1)?;
        if cm.verf == w.verf {
            break;
        }
        t.rewrites += 1;
        tries += 1;
        if tries > 50 {
            return Err(format!("COMMIT {temp}: verifier changed 50 times in a row"));
        }
    }
    // RENAME over the notebook
    led.sent = Some(v);
    let (r, resent) = resend!(conn, *t, "RENAME", |c| c.rename(&RENAME3args {
        from: dirop(dir, &temp),
        to: dirop(dir, NOTEBOOK),
    }))?;
    match nfs_err(r, &format!("RENAME {temp} -> {NOTEBOOK}")) {
        Ok(_) => {}
        Err((nfsstat3::NFS3ERR_NOENT, e)) if resent => {
            // the first copy took effect, unless the notebook says otherwise
            let nb = lookup(conn, t, dir, NOTEBOOK).await?;
            let (r, _) = resend!(conn, *t, "READ", |c| c.read(&READ3args {
                file: nb.clone(),
                offset: 0,
                count: 128,
            }))?;
            let rd = nfs_err(r, "READ notebook").map_err(|e| e.1)?;
            match parse_header(&rd.data.0) {
                Some((_, got)) if got == v => t.dup_rename_noent += 1,
                other => {
                    return Err(format!(
                        "{e} on a resend, but the notebook holds {other:?}, not version {v}"
                    ));
                }
            }
        }
        Err((_, e)) => return Err(e),
    }
    led.acked = Some(v);
    led.acks += 1;
    Ok(())
}

async fn lookup(conn: &mut Conn, t: &mut Tally, dir: &Fh, name: &str) -> Result<Fh, String> {
    let (r, _) = resend!(conn, *t, "LOOKUP", |c| c.lookup(&LOOKUP3args {
        what: dirop(dir, name),
    }))?;
    nfs_err(r, &format!("LOOKUP {name}"))
        .map(|ok| ok.object)
        .map_err(|e| e.1)
}

async fn autosave_client(
    mut conn: Conn,
    dir: Fh,
    client: usize,
    stop: Arc<AtomicBool>,
) -> ClientLedger {
    let mut led = ClientLedger {
        client,
        ..Default::default()
    };
    let mut t = Tally::default();
    let mut v = 0u64;
    while !stop.load(Ordering::Relaxed) {
        v += 1;
        if let Err(e) = autosave(&mut conn, &mut t, &mut led, &dir, v).await {
            t.error(format!("client {client} version {v}: {e}"));
            // a client whose server is gone for good stops
            if e.contains("unreachable") || e.contains("no reply") {
                break;
            }
        }
    }
    led.tally = t;
    led
}

// ------------------------------------------------------------------------------------------------
// the streaming writers
// ------------------------------------------------------------------------------------------------

/// What one streaming writer left: per file, the acknowledged length.
#[derive(Clone, Debug, Default)]
pub struct StreamLedger {
    pub files: Vec<(String, u64)>,
    pub acked_bytes: u64,
    /// COMMITs (unstable writers) or FILE_SYNC WRITEs acknowledged.
    pub acks: u64,
    pub tally: Tally,
}

/// Stream parameters.
#[derive(Clone, Debug)]
pub struct StreamCfg {
    pub chunk: usize,
    pub commit_every: usize,
    /// Start a new file past this size.
    pub file_cap: u64,
    /// Per writer; 0 = unthrottled.
    pub mib_per_s: f64,
}

pub const STREAM_DIR: &str = "streams";

async fn stream_writer(
    mut conn: Conn,
    sdir: Fh,
    s: usize,
    cfg: StreamCfg,
    stop: Arc<AtomicBool>,
) -> StreamLedger {
    let mut led = StreamLedger::default();
    let mut t = Tally::default();
    let sync = s % 2 == 1;
    let mut generation = 0;
    let started = Instant::now();
    let mut total: u64 = 0;
    'files: while !stop.load(Ordering::Relaxed) {
        let name = format!(
            "s{s:02}-{generation:03}.{}",
            if sync { "sync" } else { "unstable" }
        );
        generation += 1;
        let r = resend!(conn, t, "CREATE", |c| c.create(&CREATE3args {
            where_: dirop(&sdir, &name),
            how: createhow3::GUARDED(sattr3 {
                mode: Nfs3Option::Some(0o644),
                ..Default::default()
            }),
        }));
        let fh = match r.map(|(r, resent)| (nfs_err(r, &format!("CREATE {name}")), resent)) {
            Ok((Ok(ok), _)) => match ok.obj {
                Nfs3Option::Some(fh) => fh,
                Nfs3Option::None => match lookup(&mut conn, &mut t, &sdir, &name).await {
                    Ok(fh) => fh,
                    Err(e) => {
                        t.error(e);
                        continue;
                    }
                },
            },
            Ok((Err((nfsstat3::NFS3ERR_EXIST, _)), true)) => {
                t.dup_create_exist += 1;
                match lookup(&mut conn, &mut t, &sdir, &name).await {
                    Ok(fh) => fh,
                    Err(e) => {
                        t.error(e);
                        continue;
                    }
                }
            }
            Ok((Err((_, e)), _)) | Err(e) => {
                t.error(format!("stream {s}: {e}"));
                if e.contains("unreachable") || e.contains("no reply") {
                    break;
                }
                continue;
            }
        };
        led.files.push((name.clone(), 0));
        let fi = led.files.len() - 1;
        let mut off: u64 = 0;
        // unstable writes since the last COMMIT: (offset, verifier)
        let mut pending: Vec<(u64, writeverf3)> = Vec::new();
        while off < cfg.file_cap && !stop.load(Ordering::Relaxed) {
            if cfg.mib_per_s > 0.0 {
                let due = Duration::from_secs_f64(total as f64 / (cfg.mib_per_s * 1048576.0));
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
            let data = stream_bytes(&name, off, cfg.chunk);
            let how = if sync {
                stable_how::FILE_SYNC
            } else {
                stable_how::UNSTABLE
            };
            let w = match write_chunk(&mut conn, &mut t, &fh, off, &data, how, &name).await {
                Ok(w) => w,
                Err(e) => {
                    t.error(format!("stream {s}: {e}"));
                    continue 'files;
                }
            };
            off += cfg.chunk as u64;
            total += cfg.chunk as u64;
            if sync {
                if w.committed != stable_how::FILE_SYNC {
                    t.error(format!(
                        "stream {s}: FILE_SYNC WRITE of {name} answered {:?}",
                        w.committed
                    ));
                    continue 'files;
                }
                led.files[fi].1 = off;
                led.acks += 1;
                continue;
            }
            pending.push((off - cfg.chunk as u64, w.verf));
            if pending.len() >= cfg.commit_every || off >= cfg.file_cap {
                match commit_pending(&mut conn, &mut t, &fh, &name, &mut pending, cfg.chunk).await {
                    Ok(()) => {
                        led.files[fi].1 = off;
                        led.acks += 1;
                    }
                    Err(e) => {
                        t.error(format!("stream {s}: {e}"));
                        continue 'files;
                    }
                }
            }
        }
        if !pending.is_empty() {
            match commit_pending(&mut conn, &mut t, &fh, &name, &mut pending, cfg.chunk).await {
                Ok(()) => {
                    led.files[fi].1 = off;
                    led.acks += 1;
                }
                Err(e) => t.error(format!("stream {s}: {e}")),
            }
        }
    }
    led.acked_bytes = led.files.iter().map(|f| f.1).sum();
    led.tally = t;
    led
}

async fn write_chunk(
    conn: &mut Conn,
    t: &mut Tally,
    fh: &Fh,
    off: u64,
    data: &[u8],
    how: stable_how,
    name: &str,
) -> Result<WRITE3resok, String> {
    let len = u32::try_from(data.len()).map_err(|e| e.to_string())?;
    let (r, _) = resend!(conn, *t, "WRITE", |c| c.write(&WRITE3args {
        file: fh.clone(),
        offset: off,
        count: len,
        stable: how,
        data: Opaque::borrowed(data),
    }))?;
    let w = nfs_err(r, &format!("WRITE {name} at {off}")).map_err(|e| e.1)?;
    if w.count != len {
        return Err(format!(
            "WRITE {name} at {off}: short write {} of {len}",
            w.count
        ));
    }
    Ok(w)
}

/// COMMIT; the WRITEs whose verifier differs from the COMMIT's are written again (and committed
/// again) as a real client does.
async fn commit_pending(
    conn: &mut Conn,
    t: &mut Tally,
    fh: &Fh,
    name: &str,
    pending: &mut Vec<(u64, writeverf3)>,
    chunk: usize,
) -> Result<(), String> {
    for _ in 0..50 {
        let (r, _) = resend!(conn, *t, "COMMIT", |c| c.commit(&COMMIT3args {
            file: fh.clone(),
            offset: 0,
            count: 0,
        }))?;
        let cm = nfs_err(r, &format!("COMMIT {name}")).map_err(|e| e.1)?;
        if pending.iter().all(|(_, v)| *v == cm.verf) {
            pending.clear();
            return Ok(());
        }
        for (off, v) in pending.iter_mut() {
            if *v != cm.verf {
                t.rewrites += 1;
                let data = stream_bytes(name, *off, chunk);
                let w = write_chunk(conn, t, fh, *off, &data, stable_how::UNSTABLE, name).await?;
                *v = w.verf;
            }
        }
    }
    Err(format!("COMMIT {name}: verifier changed 50 times in a row"))
}

// ------------------------------------------------------------------------------------------------
// the killer
// ------------------------------------------------------------------------------------------------

/// One kill and restart.
#[derive(Clone, Debug)]
pub struct Restart {
    /// Since the load started.
    pub at: Duration,
    /// From the start of the new process to the first answered GETATTR of the root (with the
    /// handle from before) through a fresh connection.
    pub first_answer: Duration,
}

/// Polls GETATTR of `root` through fresh connections until one answers OK; returns when.
async fn first_answer(addr: SocketAddr, root: &Fh, give_up: Duration) -> anyhow::Result<Instant> {
    let start = Instant::now();
    loop {
        if let Ok(mut c) = open(addr).await
            && let Ok(Ok(r)) = tokio::time::timeout(
                Duration::from_secs(5),
                c.getattr(&GETATTR3args {
                    object: root.clone(),
                }),
            )
            .await
        {
            match r {
                Nfs3Result::Ok(_) => return Ok(Instant::now()),
                Nfs3Result::Err((s, _)) => {
                    bail!("GETATTR of the export root after a restart answered {s:?}")
                }
            }
        }
        ensure!(
            start.elapsed() < give_up,
            "nfsd answered no GETATTR within {} s of its restart",
            give_up.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Kills nfsd `kills` times with SIGKILL at moments `gap_ms` apart (uniform, seeded) and starts
/// it again on the same ports and data dir.
async fn killer(
    nfsd: Arc<Mutex<Nfsd>>,
    root: Fh,
    kills: usize,
    gap_ms: (u64, u64),
    seed: u64,
    t0: Instant,
    verbose: bool,
) -> anyhow::Result<Vec<Restart>> {
    let mut rng = Rng::new(seed);
    let addr = nfsd.lock().expect("nfsd lock").nfs;
    let mut out = Vec::new();
    for k in 0..kills {
        let gap = rng.range(gap_ms.0, gap_ms.1);
        tokio::time::sleep(Duration::from_millis(gap)).await;
        let n = nfsd.clone();
        let at = t0.elapsed();
        tokio::task::spawn_blocking(move || n.lock().expect("nfsd lock").kill())
            .await?
            .context("SIGKILL of nfsd")?;
        let started = Instant::now();
        let n = nfsd.clone();
        let spawn = tokio::task::spawn_blocking(move || n.lock().expect("nfsd lock").start_again());
        let answered = first_answer(addr, &root, Duration::from_secs(60)).await;
        spawn
            .await?
            .with_context(|| format!("starting nfsd again after kill {}", k + 1))?;
        let first = answered?.duration_since(started);
        if verbose {
            eprintln!(
                "kill {:2}/{kills} at {:6.2} s: first answer {:.0} ms after the restart",
                k + 1,
                at.as_secs_f64(),
                first.as_secs_f64() * 1000.0
            );
        }
        out.push(Restart {
            at,
            first_answer: first,
        });
    }
    Ok(out)
}

// ------------------------------------------------------------------------------------------------
// host mode
// ------------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct HostConfig {
    pub clients: usize,
    pub streams: usize,
    pub kills: usize,
    pub seed: u64,
    /// Pause before each kill: uniform in this range (ms).
    pub gap_ms: (u64, u64),
    /// Load before the first kill's gap starts, and after the last restart.
    pub warmup: Duration,
    pub settle: Duration,
    pub stream: StreamCfg,
    /// The nfsd binary; None: build (release) and use it.
    pub nfsd_bin: Option<PathBuf>,
    /// Parent of the temp dir (data dir, nfsd log).
    pub work_base: PathBuf,
    pub keep: bool,
    pub verbose: bool,
}

impl HostConfig {
    /// The documented run: 64 clients, 8 streams, 20 kills.
    pub fn full() -> HostConfig {
        HostConfig {
            clients: 64,
            streams: 8,
            kills: 20,
            seed: 1,
            gap_ms: (500, 4000),
            warmup: Duration::from_secs(2),
            settle: Duration::from_secs(3),
            stream: StreamCfg {
                chunk: 1 << 20,
                commit_every: 4,
                file_cap: 64 << 20,
                mib_per_s: 4.0,
            },
            nfsd_bin: None,
            work_base: std::env::temp_dir(),
            keep: false,
            verbose: true,
        }
    }
}

/// The figures of one run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub mode: String,
    pub clients: usize,
    pub streams: usize,
    pub kills: usize,
    pub seed: u64,
    /// Autosave versions acknowledged (RENAME replies, incl. confirmed resent ones).
    pub acked_renames: u64,
    /// Stream acknowledgements (COMMIT or FILE_SYNC WRITE replies) and the bytes they cover.
    pub acked_stream_ops: u64,
    pub acked_stream_bytes: u64,
    /// Notebooks / stream files checked on disk.
    pub checked_targets: usize,
    pub checked_stream_files: usize,
    /// Acknowledged data missing on disk (a notebook older than its last acknowledged version,
    /// missing, or a stream file shorter than its acknowledged prefix).
    pub lost: u64,
    /// Bytes on disk that differ from what was sent.
    pub corrupt: u64,
    pub problems: Vec<String>,
    pub tally: Tally,
    pub restarts: Vec<Restart>,
    pub wall: Duration,
    /// Notebooks found at a version later than the last acknowledged one (sent, reply lost).
    pub newer_than_acked: u64,
    /// Fewest autosaves one client had acknowledged (every client kept going).
    pub min_client_acks: u64,
    /// Resent RENAMEs nfsd answered OK from its replay record (the first copy had done it).
    pub replayed_renames: usize,
}

impl Report {
    pub fn restart_ms(&self) -> Vec<f64> {
        self.restarts
            .iter()
            .map(|r| r.first_answer.as_secs_f64() * 1000.0)
            .collect()
    }

    pub fn max_restart_ms(&self) -> f64 {
        self.restart_ms().into_iter().fold(0.0, f64::max)
    }

    pub fn median_restart_ms(&self) -> f64 {
        let mut v = self.restart_ms();
        if v.is_empty() {
            return 0.0;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    }

    /// Lost + corrupt + ESTALE + other errors: 0 for a passing run.
    pub fn failures(&self) -> u64 {
        self.lost + self.corrupt + self.tally.estale + self.tally.errors
    }

    pub fn table(&self) -> String {
        let t = &self.tally;
        let mut s = String::new();
        let mut rows: Vec<(&str, String, &str)> = vec![
            ("mode", self.mode.clone(), ""),
            (
                "load",
                format!(
                    "{} autosave clients, {} streaming writers",
                    self.clients, self.streams
                ),
                "",
            ),
            (
                "SIGKILLs of nfsd (seed)",
                format!("{} ({})", self.restarts.len(), self.seed),
                "",
            ),
            ("run time, s", format!("{:.1}", self.wall.as_secs_f64()), ""),
            (
                "acknowledged autosaves (RENAME replies)",
                self.acked_renames.to_string(),
                "",
            ),
            (
                "acknowledged stream COMMIT / FILE_SYNC replies",
                format!(
                    "{} ({:.1} MiB)",
                    self.acked_stream_ops,
                    self.acked_stream_bytes as f64 / 1048576.0
                ),
                "",
            ),
            (
                "checked on disk: notebooks, stream files",
                format!("{}, {}", self.checked_targets, self.checked_stream_files),
                "",
            ),
            ("lost acknowledged operations", self.lost.to_string(), "0"),
            ("corrupt (bytes differ)", self.corrupt.to_string(), "0"),
            ("ESTALE seen by clients", t.estale.to_string(), "0"),
            ("other errors seen by clients", t.errors.to_string(), "0"),
            (
                "restart → first answered call, median / max ms",
                format!(
                    "{:.0} / {:.0}",
                    self.median_restart_ms(),
                    self.max_restart_ms()
                ),
                "≤ 5000",
            ),
            (
                "resent RENAMEs nfsd answered from its replay record",
                self.replayed_renames.to_string(),
                "",
            ),
            (
                "notebooks at a later version than acknowledged",
                self.newer_than_acked.to_string(),
                "",
            ),
        ];
        rows.insert(
            5,
            (
                "fewest acknowledged autosaves of one client",
                self.min_client_acks.to_string(),
                "",
            ),
        );
        if !self.mode.starts_with("guest") {
            // what the userspace clients did to recover (the kernel client keeps its own)
            rows.extend(vec![
                (
                    "calls resent after a broken connection (reconnects)",
                    format!("{} ({})", t.resends, t.reconnects),
                    "",
                ),
                (
                    "calls without a reply within 30 s (then resent)",
                    t.timeouts.to_string(),
                    "",
                ),
                (
                    "resent CREATE → EXIST / resent RENAME → NOENT (confirmed)",
                    format!("{} / {}", t.dup_create_exist, t.dup_rename_noent),
                    "",
                ),
                (
                    "WRITEs sent again after a verifier change",
                    t.rewrites.to_string(),
                    "",
                ),
            ]);
        }
        s.push_str("| figure | value | target |\n|---|--:|--:|\n");
        for (a, b, c) in rows {
            let _ = writeln!(s, "| {a} | {b} | {c} |");
        }
        if !t.first_errors.is_empty() {
            let _ = writeln!(s, "\nfirst errors:");
            for e in &t.first_errors {
                let _ = writeln!(s, "  {e}");
            }
        }
        if !self.problems.is_empty() {
            let _ = writeln!(s, "\non-disk problems (first 20):");
            for p in self.problems.iter().take(20) {
                let _ = writeln!(s, "  {p}");
            }
        }
        s
    }

    pub fn json(&self) -> serde_json::Value {
        let ms: Vec<f64> = self
            .restart_ms()
            .iter()
            .map(|m| (m * 10.0).round() / 10.0)
            .collect();
        serde_json::json!({
            "mode": self.mode,
            "clients": self.clients,
            "streams": self.streams,
            "kills": self.restarts.len(),
            "seed": self.seed,
            "seconds": (self.wall.as_secs_f64() * 10.0).round() / 10.0,
            "acked_renames": self.acked_renames,
            "acked_stream_ops": self.acked_stream_ops,
            "acked_stream_bytes": self.acked_stream_bytes,
            "lost": self.lost,
            "corrupt": self.corrupt,
            "estale": self.tally.estale,
            "errors": self.tally.errors,
            "resends": self.tally.resends,
            "timeouts": self.tally.timeouts,
            "dup_create_exist": self.tally.dup_create_exist,
            "dup_rename_noent": self.tally.dup_rename_noent,
            "rewrites": self.tally.rewrites,
            "restart_first_answer_ms": ms,
            "restart_max_ms": (self.max_restart_ms() * 10.0).round() / 10.0,
            "min_client_acks": self.min_client_acks,
            "replayed_renames": self.replayed_renames,
        })
    }
}

/// Checks notebook `dir/notebook.ipynb` on disk against (acked, sent); adds to the report.
fn check_notebook(
    rep: &mut Report,
    vol: &Path,
    client: usize,
    acked: Option<u64>,
    sent: Option<u64>,
    min_version: u64,
) {
    rep.checked_targets += 1;
    let p = vol.join(client_dir(client)).join(NOTEBOOK);
    let got = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) => {
            if acked.is_some() {
                rep.lost += 1;
                rep.problems.push(format!(
                    "{}: {e}, but version {} was acknowledged",
                    p.display(),
                    acked.unwrap_or(0)
                ));
            }
            return;
        }
    };
    let Some((c, v)) = parse_header(&got) else {
        rep.corrupt += 1;
        rep.problems.push(format!(
            "{}: no valid header ({} bytes, starts {:?})",
            p.display(),
            got.len(),
            String::from_utf8_lossy(&got[..got.len().min(60)])
        ));
        return;
    };
    if c != client || got != payload(client, v) {
        rep.corrupt += 1;
        rep.problems.push(format!(
            "{}: header says client {c} version {v}, bytes differ from what was sent",
            p.display()
        ));
        return;
    }
    let floor = acked.unwrap_or(0).max(min_version);
    if v < floor {
        rep.lost += 1;
        rep.problems.push(format!(
            "{}: holds version {v}, but version {floor} was acknowledged",
            p.display()
        ));
    } else if sent.is_some_and(|s| v > s) {
        rep.corrupt += 1;
        rep.problems.push(format!(
            "{}: holds version {v}, later than any sent ({:?})",
            p.display(),
            sent
        ));
    } else if v > acked.unwrap_or(0) {
        rep.newer_than_acked += 1;
    }
}

/// Checks that `path` holds at least `acked` bytes of stream `name` exactly.
fn check_stream_file(rep: &mut Report, path: &Path, name: &str, acked: u64) {
    rep.checked_stream_files += 1;
    let got = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            if acked > 0 {
                rep.lost += 1;
                rep.problems.push(format!(
                    "{}: {e}, {acked} bytes acknowledged",
                    path.display()
                ));
            }
            return;
        }
    };
    let n = usize::try_from(acked).unwrap_or(usize::MAX);
    if got.len() < n {
        rep.lost += 1;
        rep.problems.push(format!(
            "{}: {} bytes on disk, {acked} acknowledged",
            path.display(),
            got.len()
        ));
    }
    let upto = n.min(got.len());
    let want = stream_bytes(name, 0, upto);
    if let Some(at) = got[..upto].iter().zip(&want).position(|(a, b)| a != b) {
        rep.corrupt += 1;
        rep.problems.push(format!(
            "{}: byte {at} differs from what was written ({acked} acknowledged)",
            path.display()
        ));
    }
}

/// What nfsd logs (at info) when it answers a resent RENAME from its replay record.
const REPLAYED: &str = "a resent RENAME whose first copy took effect";

/// Starts nfsd over `data` with one volume; returns it, its endpoint and the volume's directory.
/// nfsd logs warnings, and the RENAMEs it answers from its replay record (`REPLAYED`).
fn start_with_volume(bin: &Path, data: &Path) -> anyhow::Result<(Nfsd, Endpoint, PathBuf)> {
    std::fs::create_dir_all(data)?;
    let options = swarmhub_tests::nfsd::NfsdOptions {
        bin: Some(bin.to_path_buf()),
        rust_log: "warn,swarmhub_nfsd::nfs::nfs3=info".into(),
        stop_on_drop: true,
    };
    let n = Nfsd::start_with(data, &[], options)?;
    servers::create_volume(&n, VOLUME, "killer", BENCH_UID, BENCH_GID)?;
    let ep = Endpoint::nfsd(&n, VOLUME);
    Ok((n, ep, data.join("volumes").join(VOLUME)))
}

/// Host mode: see the module header.
pub fn run_host(cfg: &HostConfig) -> anyhow::Result<Report> {
    let bin = match &cfg.nfsd_bin {
        Some(b) => b.clone(),
        None => servers::nfsd_binary(true, true)?,
    };
    let say = |s: String| {
        if cfg.verbose {
            eprintln!("{s}");
        }
    };
    say(format!("nfsd binary: {}", bin.display()));
    std::fs::create_dir_all(&cfg.work_base)?;
    let tmp = tempfile::Builder::new()
        .prefix("swarmhub-kill-nfsd-")
        .tempdir_in(&cfg.work_base)
        .with_context(|| format!("creating a temp dir in {}", cfg.work_base.display()))?;
    let data = tmp.path().join("data");
    let (nfsd, ep, vol) = start_with_volume(&bin, &data)?;
    let addr = nfsd.nfs;
    let nfsd = Arc::new(Mutex::new(nfsd));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    run_clock();
    let rep = rt.block_on(async {
        // set up: one connection per client and writer (MOUNT once each), their directories
        let (mut c0, root) = nfs::connect(&ep).await?;
        let sdir = nfs::mkdir(&mut c0, &root, STREAM_DIR)
            .await
            .map_err(anyhow::Error::msg)?;
        drop(c0);
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for i in 0..cfg.clients {
            let (mut c, root) = nfs::connect(&ep).await?;
            let dir = nfs::mkdir(&mut c, &root, &client_dir(i))
                .await
                .map_err(|e| anyhow::anyhow!("MKDIR {}: {e}", client_dir(i)))?;
            drop(c);
            clients.push(tokio::spawn(autosave_client(
                Conn::new(addr).await?,
                dir,
                i,
                stop.clone(),
            )));
        }
        let mut streams = Vec::new();
        for s in 0..cfg.streams {
            streams.push(tokio::spawn(stream_writer(
                Conn::new(addr).await?,
                sdir.clone(),
                s,
                cfg.stream.clone(),
                stop.clone(),
            )));
        }
        tokio::time::sleep(cfg.warmup).await;
        let restarts = killer(
            nfsd.clone(),
            root,
            cfg.kills,
            cfg.gap_ms,
            cfg.seed,
            started,
            cfg.verbose,
        )
        .await;
        tokio::time::sleep(cfg.settle).await;
        stop.store(true, Ordering::Relaxed);
        let mut rep = Report {
            mode: "host (nfs3_client)".into(),
            clients: cfg.clients,
            streams: cfg.streams,
            kills: cfg.kills,
            seed: cfg.seed,
            ..Default::default()
        };
        let mut ledgers = Vec::new();
        for c in clients {
            ledgers.push(c.await?);
        }
        let mut sledgers = Vec::new();
        for s in streams {
            sledgers.push(s.await?);
        }
        rep.restarts = restarts?;
        anyhow::Ok((rep, ledgers, sledgers))
    });
    let wall = started.elapsed();
    // the final stop is a kill too: nothing may depend on a clean shutdown
    nfsd.lock().expect("nfsd lock").kill()?;
    let (mut rep2, ledgers, sledgers) = rep.with_context(|| {
        let log = nfsd.lock().expect("nfsd lock").log_text();
        let lines: Vec<&str> = log.lines().collect();
        format!(
            "nfsd log tail:\n{}",
            lines[lines.len().saturating_sub(30)..].join("\n")
        )
    })?;
    rep2.wall = wall;
    rep2.replayed_renames = nfsd
        .lock()
        .expect("nfsd lock")
        .log_text()
        .matches(REPLAYED)
        .count();
    say(format!(
        "load stopped after {:.1} s; checking {} on disk",
        wall.as_secs_f64(),
        vol.display()
    ));
    rep2.min_client_acks = ledgers.iter().map(|l| l.acks).min().unwrap_or(0);
    for l in &ledgers {
        rep2.acked_renames += l.acks;
        rep2.tally.absorb(&l.tally);
        check_notebook(&mut rep2, &vol, l.client, l.acked, l.sent, 0);
    }
    for l in &sledgers {
        rep2.acked_stream_ops += l.acks;
        rep2.acked_stream_bytes += l.acked_bytes;
        rep2.tally.absorb(&l.tally);
        for (name, acked) in &l.files {
            check_stream_file(&mut rep2, &vol.join(STREAM_DIR).join(name), name, *acked);
        }
    }
    if cfg.keep {
        let p = tmp.keep();
        say(format!("kept {}", p.display()));
    }
    Ok(rep2)
}

// ------------------------------------------------------------------------------------------------
// guest mode
// ------------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct GuestConfig {
    pub clients: usize,
    pub streams: usize,
    pub kills: usize,
    pub seed: u64,
    pub gap_ms: (u64, u64),
    /// Stream chunk in KiB (each chunk one `dd conv=notrunc,fsync` write at the end).
    pub stream_chunk_kib: usize,
    /// Autosave payload in KiB.
    pub payload_kib: usize,
    /// Seconds the guest keeps going after the host's last restart.
    pub settle_s: u64,
    pub nfsd_bin: Option<PathBuf>,
    pub timeout_s: u32,
    pub work_base: PathBuf,
    pub keep: bool,
    pub verbose: bool,
}

impl GuestConfig {
    pub fn full() -> GuestConfig {
        GuestConfig {
            clients: 16,
            streams: 8,
            kills: 20,
            seed: 1,
            gap_ms: (2000, 6000),
            stream_chunk_kib: 256,
            payload_kib: 16,
            settle_s: 5,
            nfsd_bin: None,
            timeout_s: 900,
            work_base: std::env::temp_dir(),
            keep: false,
            verbose: true,
        }
    }
}

/// The busybox script the guest runs (see the module header). Protocol with the host through
/// files in the export root: `kill-go` (guest: workers run), `kill-done` (host: last restart
/// done), then the guest stops its workers and prints `LOG` lines and `APPERR` lines.
pub fn guest_script(cfg: &GuestConfig) -> String {
    format!(
        r#"
N={clients}; S={streams}; PK={pk}; CK={ck}; SETTLE={settle}
cd "$NFS_MNT" || exit 1
mkdir -p /tmp/k
rm -f /tmp/k/*
i=0; while [ $i -lt $N ]; do mkdir -p c$i; i=$((i + 1)); done
mkdir -p streams
# one autosave: a versioned payload (header line + PK KiB of urandom-free filler) via a temp file
autosaver() {{
    c=$1; v=0
    while [ ! -e /tmp/k/stop ]; do
        v=$((v + 1))
        t=c$c/.nb.v$v.tmp
        {{ echo "swarmhub-kill-nfsd client=$c version=$v"; dd if=/tmp/k/fill bs=1024 count=$PK 2>/dev/null; }} |
            dd of=$t bs=65536 conv=fsync 2>/tmp/k/err.$c ||
            {{ echo "APPERR client $c version $v: dd: $(tr '\n' ' ' </tmp/k/err.$c)"; continue; }}
        mv $t c$c/notebook.ipynb 2>/tmp/k/err.$c ||
            {{ echo "APPERR client $c version $v: mv: $(tr '\n' ' ' </tmp/k/err.$c)"; continue; }}
        echo "$v" >>/tmp/k/acked.$c
    done
}}
streamer() {{
    s=$1; n=0
    while [ ! -e /tmp/k/stop ]; do
        dd if=/tmp/k/sfill.$s of=streams/s$s bs=${{CK}}k count=1 seek=$n conv=notrunc,fsync 2>/tmp/k/serr.$s ||
            {{ echo "APPERR stream $s chunk $n: dd: $(tr '\n' ' ' </tmp/k/serr.$s)"; continue; }}
        n=$((n + 1))
        echo "$n" >/tmp/k/sacked.$s
    done
}}
dd if=/dev/zero bs=1024 count=$PK 2>/dev/null | tr '\0' 'x' >/tmp/k/fill
s=0; while [ $s -lt $S ]; do
    dd if=/dev/zero bs=1024 count=$CK 2>/dev/null | tr '\0' "$(printf "\\$(printf %o $((65 + s)))")" >/tmp/k/sfill.$s
    echo 0 >/tmp/k/sacked.$s
    s=$((s + 1))
done
i=0; while [ $i -lt $N ]; do autosaver $i >>/tmp/k/app.log 2>&1 & i=$((i + 1)); done
s=0; while [ $s -lt $S ]; do streamer $s >>/tmp/k/app.log 2>&1 & s=$((s + 1)); done
sleep 2
: >kill-go
echo "info: $N autosavers and $S streamers running at uptime $(uptime_s)"
while [ ! -e kill-done ]; do
    echo 2 >/proc/sys/vm/drop_caches
    sleep 1
done
echo "info: kill-done seen at uptime $(uptime_s): $(cat kill-done)"
sleep $SETTLE
: >/tmp/k/stop
wait
i=0; while [ $i -lt $N ]; do echo "LOG client $i $(tail -n 1 /tmp/k/acked.$i 2>/dev/null) $(wc -l </tmp/k/acked.$i 2>/dev/null)"; i=$((i + 1)); done
s=0; while [ $s -lt $S ]; do echo "LOG stream $s $(cat /tmp/k/sacked.$s)"; s=$((s + 1)); done
cat /tmp/k/app.log
n=$(grep -c '^APPERR' /tmp/k/app.log)
echo "SUMMARY passed=1 failed=$n"
[ "$n" = 0 ] || exit 1
exit 0
"#,
        clients = cfg.clients,
        streams = cfg.streams,
        pk = cfg.payload_kib,
        ck = cfg.stream_chunk_kib,
        settle = cfg.settle_s,
    )
}

/// Guest mode: see the module header. The guest lock is held for the run.
pub fn run_guest(cfg: &GuestConfig) -> anyhow::Result<Report> {
    use swarmhub_tests::guest::{self, GuestRun};
    guest::require_root();
    let _lock = guest::lock();
    guest::ensure_built();
    let bin = match &cfg.nfsd_bin {
        Some(b) => b.clone(),
        None => servers::nfsd_binary(true, true)?,
    };
    std::fs::create_dir_all(&cfg.work_base)?;
    let tmp = tempfile::Builder::new()
        .prefix("swarmhub-kill-nfsd-guest-")
        .tempdir_in(&cfg.work_base)?;
    let data = tmp.path().join("data");
    let (nfsd, _ep, vol) = start_with_volume(&bin, &data)?;
    let export = nfsd.export(VOLUME)?;
    let port = nfsd.nfs.port();
    let mut run = GuestRun::script(
        "kill-nfsd",
        &format!(
            "{}\n{}",
            std::fs::read_to_string(guest::guest_dir().join("suite/lib.sh"))?,
            guest_script(cfg)
        ),
        port,
        port,
        &export,
    );
    run.timeout_s = cfg.timeout_s;
    let root = {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let ep = Endpoint::nfsd(&nfsd, VOLUME);
        rt.block_on(async { nfs::connect(&ep).await.map(|x| x.1) })?
    };
    let nfsd = Arc::new(Mutex::new(nfsd));
    let mut g = run.spawn(None)?;
    let started = Instant::now();
    let drive = (|| -> anyhow::Result<Vec<Restart>> {
        while !vol.join("kill-go").exists() {
            if let Some(st) = g.try_wait()? {
                bail!("the guest ended ({st}) before its workers ran");
            }
            ensure!(
                started.elapsed() < Duration::from_secs(300),
                "no kill-go from the guest within 300 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let r = rt.block_on(killer(
            nfsd.clone(),
            root.clone(),
            cfg.kills,
            cfg.gap_ms,
            cfg.seed,
            started,
            cfg.verbose,
        ))?;
        std::fs::write(vol.join("kill-done"), format!("{} kills\n", r.len()))?;
        Ok(r)
    })();
    if drive.is_err() {
        let _ = std::fs::write(vol.join("kill-done"), "host gave up\n");
    }
    let res = g.finish()?;
    let wall = started.elapsed();
    nfsd.lock().expect("nfsd lock").kill()?;
    let restarts = drive.with_context(|| format!("guest output:\n{}", res.output))?;
    let mut rep = Report {
        mode: "guest (Linux kernel client, hard mount)".into(),
        clients: cfg.clients,
        streams: cfg.streams,
        kills: cfg.kills,
        seed: cfg.seed,
        restarts,
        wall,
        replayed_renames: nfsd
            .lock()
            .expect("nfsd lock")
            .log_text()
            .matches(REPLAYED)
            .count(),
        ..Default::default()
    };
    // the guest's application errors
    for l in res.output.lines().filter(|l| l.starts_with("APPERR")) {
        rep.tally.error(l.to_string());
    }
    if res.code != Some(0) && rep.tally.errors == 0 {
        rep.tally.error(format!(
            "guest exit {:?}; output:\n{}",
            res.code, res.output
        ));
    }
    // the guest's acknowledged versions and chunks, checked on disk
    let mut clients: BTreeMap<usize, (Option<u64>, u64)> = BTreeMap::new();
    let mut streams = Vec::new();
    for l in res.output.lines().filter_map(|l| l.strip_prefix("LOG ")) {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.as_slice() {
            ["client", c, v, n] => {
                clients.insert(c.parse()?, (Some(v.parse()?), n.parse()?));
            }
            ["client", c, ..] => {
                clients.insert(c.parse()?, (None, 0));
            }
            ["stream", s, n] => streams.push((s.parse::<usize>()?, n.parse::<u64>()?)),
            _ => bail!("unexpected guest log line {l:?}"),
        }
    }
    ensure!(
        clients.len() == cfg.clients && streams.len() == cfg.streams,
        "the guest reported {} clients and {} streams, not {} and {}; output:\n{}",
        clients.len(),
        streams.len(),
        cfg.clients,
        cfg.streams,
        res.output
    );
    rep.min_client_acks = clients.values().map(|c| c.1).min().unwrap_or(0);
    let fill = vec![b'x'; cfg.payload_kib * 1024];
    for (c, (acked, n)) in &clients {
        rep.acked_renames += n;
        rep.checked_targets += 1;
        let p = vol.join(format!("c{c}")).join(NOTEBOOK);
        let Some(acked) = acked else { continue };
        match std::fs::read(&p) {
            Err(e) => {
                rep.lost += 1;
                rep.problems.push(format!(
                    "{}: {e}, version {acked} acknowledged",
                    p.display()
                ));
            }
            Ok(b) => {
                let line = b.split(|x| *x == b'\n').next().unwrap_or_default();
                let v = std::str::from_utf8(line)
                    .ok()
                    .and_then(|l| {
                        l.strip_prefix(&format!("swarmhub-kill-nfsd client={c} version="))
                    })
                    .and_then(|v| v.parse::<u64>().ok());
                let good_body =
                    b.len() == line.len() + 1 + fill.len() && b[line.len() + 1..] == fill;
                match v {
                    Some(v) if good_body && v >= *acked && v <= acked + 1 => {
                        if v > *acked {
                            rep.newer_than_acked += 1;
                        }
                    }
                    Some(v) if good_body => {
                        rep.lost += 1;
                        rep.problems.push(format!(
                            "{}: version {v}, acknowledged {acked}",
                            p.display()
                        ));
                    }
                    _ => {
                        rep.corrupt += 1;
                        rep.problems.push(format!(
                            "{}: {} bytes, header {:?}",
                            p.display(),
                            b.len(),
                            String::from_utf8_lossy(line)
                        ));
                    }
                }
            }
        }
    }
    let ck = cfg.stream_chunk_kib * 1024;
    for (s, n) in streams {
        rep.checked_stream_files += 1;
        rep.acked_stream_ops += n;
        let want_len = usize::try_from(n)? * ck;
        rep.acked_stream_bytes += want_len as u64;
        let p = vol.join(STREAM_DIR).join(format!("s{s}"));
        let byte = b'A' + u8::try_from(s)?;
        match std::fs::read(&p) {
            Err(e) if n > 0 => {
                rep.lost += 1;
                rep.problems.push(format!("{}: {e}", p.display()));
            }
            Err(_) => {}
            Ok(b) => {
                if b.len() < want_len {
                    rep.lost += 1;
                    rep.problems.push(format!(
                        "{}: {} bytes, {want_len} acknowledged",
                        p.display(),
                        b.len()
                    ));
                }
                if let Some(at) = b[..want_len.min(b.len())].iter().position(|x| *x != byte) {
                    rep.corrupt += 1;
                    rep.problems.push(format!(
                        "{}: byte {at} is not {:?}",
                        p.display(),
                        byte as char
                    ));
                }
            }
        }
    }
    if cfg.verbose {
        for l in res
            .output
            .lines()
            .filter(|l| l.starts_with("info: ") || l.starts_with("run-guest: timings"))
        {
            eprintln!("guest: {l}");
        }
    }
    if cfg.keep {
        let p = tmp.keep();
        eprintln!("kept {}", p.display());
    }
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_their_version_and_differ() {
        let a = payload(7, 41);
        assert_eq!(parse_header(&a), Some((7, 41)));
        assert!(a.len() >= 2048 && a.len() <= 64 * 1024, "{}", a.len());
        assert_ne!(a, payload(7, 42));
        assert_eq!(a, payload(7, 41));
        assert_eq!(parse_header(b"something else\n"), None);
    }

    #[test]
    fn stream_bytes_depend_only_on_name_and_offset() {
        let whole = stream_bytes("s00-000.unstable", 0, 3 * 4096 + 100);
        assert_eq!(
            stream_bytes("s00-000.unstable", 4000, 5000),
            whole[4000..9000]
        );
        assert_ne!(stream_bytes("s01-000.unstable", 0, 64), whole[..64]);
    }

    #[test]
    fn the_disk_check_finds_old_missing_and_corrupt_notebooks() {
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path();
        for c in 0..4 {
            std::fs::create_dir_all(vol.join(client_dir(c))).unwrap();
        }
        let nb = |c| vol.join(client_dir(c)).join(NOTEBOOK);
        std::fs::write(nb(0), payload(0, 5)).unwrap(); // the acknowledged version: fine
        std::fs::write(nb(1), payload(1, 4)).unwrap(); // older than acknowledged: lost
        let mut bad = payload(2, 5);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        std::fs::write(nb(2), bad).unwrap(); // one byte flipped: corrupt
        let mut rep = Report::default();
        for c in 0..4 {
            // client 3 has no file at all: lost
            check_notebook(&mut rep, vol, c, Some(5), Some(5), 0);
        }
        assert_eq!((rep.lost, rep.corrupt), (2, 1), "{:?}", rep.problems);
        assert_eq!(rep.checked_targets, 4);
    }

    #[test]
    fn the_disk_check_finds_short_and_corrupt_streams() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let mut rep = Report::default();
        std::fs::write(&p, stream_bytes("s", 0, 10_000)).unwrap();
        check_stream_file(&mut rep, &p, "s", 10_000);
        assert_eq!((rep.lost, rep.corrupt), (0, 0), "{:?}", rep.problems);
        check_stream_file(&mut rep, &p, "s", 20_000);
        assert_eq!((rep.lost, rep.corrupt), (1, 0), "{:?}", rep.problems);
        let mut b = stream_bytes("s", 0, 10_000);
        b[5000] ^= 0xff;
        std::fs::write(&p, b).unwrap();
        check_stream_file(&mut rep, &p, "s", 8_000);
        assert_eq!((rep.lost, rep.corrupt), (1, 1), "{:?}", rep.problems);
    }
}
