//! Thin NFSv3 helpers over `nfs3_client`: one connection = one client doing one call at a time.

use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::{TokioConnector, TokioIo};
use nfs3_client::{Nfs3Client, Nfs3ConnectionBuilder};
use tokio::net::TcpStream;

use crate::servers::{BENCH_GID, BENCH_UID, Endpoint};

pub type Client = Nfs3Client<TokioIo<TcpStream>>;
pub type Fh = nfs_fh3;

/// One error of one call: an RPC failure or an NFS status.
pub type E = String;

/// Mounts the endpoint's export; returns the NFS client (the MOUNT connection is dropped) and
/// the root handle.
pub async fn connect(ep: &Endpoint) -> anyhow::Result<(Client, Fh)> {
    let cred = opaque_auth::auth_unix(&auth_unix {
        stamp: 1,
        machinename: Opaque::borrowed(b"swarmhub-bench"),
        uid: BENCH_UID,
        gid: BENCH_GID,
        gids: vec![],
    });
    let conn = Nfs3ConnectionBuilder::new(TokioConnector, &ep.host, &ep.export)
        .mount_port(ep.mount_port)
        .nfs3_port(ep.nfs_port)
        .connect_from_privileged_port(false)
        .credential(cred)
        .mount()
        .await
        .map_err(|e| anyhow::anyhow!("mounting {} on port {}: {e:?}", ep.export, ep.mount_port))?;
    let root = conn.root_nfs_fh3();
    let client = conn.into_nfs3_client();
    Ok((client, root))
}

/// `n` connections to the endpoint.
pub async fn connect_many(ep: &Endpoint, n: usize) -> anyhow::Result<Vec<(Client, Fh)>> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(connect(ep).await?);
    }
    Ok(v)
}

pub fn dirop<'a>(dir: &Fh, name: &'a str) -> diropargs3<'a> {
    diropargs3 {
        dir: dir.clone(),
        name: filename3(Opaque::borrowed(name.as_bytes())),
    }
}

fn st<T, F>(r: Result<Nfs3Result<T, F>, nfs3_client::RpcError>, what: &str) -> Result<T, E> {
    match r {
        Ok(Nfs3Result::Ok(ok)) => Ok(ok),
        Ok(Nfs3Result::Err((s, _))) => Err(format!("{what}: {s:?}")),
        Err(e) => Err(format!("{what}: rpc {e:?}")),
    }
}

/// CREATE UNCHECKED mode 0644 (what open(O_CREAT|O_TRUNC) without O_EXCL sends).
pub async fn create(c: &mut Client, dir: &Fh, name: &str) -> Result<Fh, E> {
    let ok = st(
        c.create(&CREATE3args {
            where_: dirop(dir, name),
            how: createhow3::UNCHECKED(sattr3 {
                mode: Nfs3Option::Some(0o644),
                ..Default::default()
            }),
        })
        .await,
        "CREATE",
    )?;
    match ok.obj {
        Nfs3Option::Some(fh) => Ok(fh),
        Nfs3Option::None => lookup(c, dir, name).await,
    }
}

pub async fn mkdir(c: &mut Client, dir: &Fh, name: &str) -> Result<Fh, E> {
    let ok = st(
        c.mkdir(&MKDIR3args {
            where_: dirop(dir, name),
            attributes: sattr3 {
                mode: Nfs3Option::Some(0o755),
                ..Default::default()
            },
        })
        .await,
        "MKDIR",
    )?;
    match ok.obj {
        Nfs3Option::Some(fh) => Ok(fh),
        Nfs3Option::None => lookup(c, dir, name).await,
    }
}

pub async fn lookup(c: &mut Client, dir: &Fh, name: &str) -> Result<Fh, E> {
    st(
        c.lookup(&LOOKUP3args {
            what: dirop(dir, name),
        })
        .await,
        "LOOKUP",
    )
    .map(|ok| ok.object)
}

pub async fn getattr(c: &mut Client, fh: &Fh) -> Result<fattr3, E> {
    st(
        c.getattr(&GETATTR3args { object: fh.clone() }).await,
        "GETATTR",
    )
    .map(|ok| ok.obj_attributes)
}

/// WRITE; returns the count the server took (a short write is an error for the caller).
pub async fn write(
    c: &mut Client,
    fh: &Fh,
    offset: u64,
    data: &[u8],
    stable: stable_how,
) -> Result<(), E> {
    let count = u32::try_from(data.len()).map_err(|_| format!("WRITE of {} bytes", data.len()))?;
    let ok = st(
        c.write(&WRITE3args {
            file: fh.clone(),
            offset,
            count,
            stable,
            data: Opaque::borrowed(data),
        })
        .await,
        "WRITE",
    )?;
    if ok.count as usize != data.len() {
        return Err(format!("WRITE: short write {} of {}", ok.count, data.len()));
    }
    Ok(())
}

pub async fn commit(c: &mut Client, fh: &Fh) -> Result<(), E> {
    st(
        c.commit(&COMMIT3args {
            file: fh.clone(),
            offset: 0,
            count: 0,
        })
        .await,
        "COMMIT",
    )
    .map(|_| ())
}

/// READ; returns (bytes, eof).
pub async fn read(c: &mut Client, fh: &Fh, offset: u64, count: u32) -> Result<(usize, bool), E> {
    st(
        c.read(&READ3args {
            file: fh.clone(),
            offset,
            count,
        })
        .await,
        "READ",
    )
    .map(|ok| (ok.data.len(), ok.eof))
}

pub async fn remove(c: &mut Client, dir: &Fh, name: &str) -> Result<(), E> {
    st(
        c.remove(&REMOVE3args {
            object: dirop(dir, name),
        })
        .await,
        "REMOVE",
    )
    .map(|_| ())
}

pub async fn rmdir(c: &mut Client, dir: &Fh, name: &str) -> Result<(), E> {
    st(
        c.rmdir(&RMDIR3args {
            object: dirop(dir, name),
        })
        .await,
        "RMDIR",
    )
    .map(|_| ())
}

pub async fn rename(c: &mut Client, dir: &Fh, from: &str, to: &str) -> Result<(), E> {
    st(
        c.rename(&RENAME3args {
            from: dirop(dir, from),
            to: dirop(dir, to),
        })
        .await,
        "RENAME",
    )
    .map(|_| ())
}

/// Lists a directory with READDIRPLUS pages of `dircount`/`maxcount` bytes (Linux ≥ 5.17 sends
/// dircount = maxcount; older clients sent maxcount / 8). Returns (entries other than `.`/`..`, pages);
/// counts an entry without attributes or handle as an error.
pub async fn readdirplus_all(
    c: &mut Client,
    dir: &Fh,
    dircount: u32,
    maxcount: u32,
) -> Result<(usize, usize), E> {
    let mut cookie = 0;
    let mut verf = cookieverf3::default();
    let mut n = 0;
    let mut pages = 0;
    loop {
        let ok = st(
            c.readdirplus(&READDIRPLUS3args {
                dir: dir.clone(),
                cookie,
                cookieverf: verf,
                dircount,
                maxcount,
            })
            .await,
            "READDIRPLUS",
        )?;
        pages += 1;
        verf = ok.cookieverf;
        for e in &ok.reply.entries.0 {
            cookie = e.cookie;
            let name = e.name.0.as_ref();
            if name == b"." || name == b".." {
                continue;
            }
            if matches!(e.name_attributes, Nfs3Option::None)
                || matches!(e.name_handle, Nfs3Option::None)
            {
                return Err("READDIRPLUS: entry without attributes or handle".into());
            }
            n += 1;
        }
        if ok.reply.eof {
            return Ok((n, pages));
        }
        if ok.reply.entries.0.is_empty() {
            return Err("READDIRPLUS: empty page without eof".into());
        }
    }
}
