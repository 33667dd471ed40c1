//! Shared harness of nfsd's in-process tests: a server on loopback port 0 over a temp data dir,
//! volumes created through the same `Volumes` the control API uses, and `nfs3_client`
//! connections that mount them.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::{TokioConnector, TokioIo};
use nfs3_client::{Nfs3Client, Nfs3ConnectionBuilder};
use swarmhub_control_api::{CreateVolume, ExplicitIdentity, ShareDir, VolumeOptions};
use swarmhub_nfsd::config::Settings;
use swarmhub_nfsd::server::{self, Running};
use tokio::net::TcpStream;

pub type Client = Nfs3Client<TokioIo<TcpStream>>;

pub struct Server {
    pub dir: PathBuf,
    pub running: Option<Running>,
    _tmp: Option<tempfile::TempDir>,
}

pub fn settings(dir: &Path) -> Settings {
    let mut s = Settings::ephemeral(dir);
    s.sync_metadata = false;
    s
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(|_| {}).await
    }

    /// Starts a server whose test settings `change` adjusts first.
    pub async fn start_with(change: impl FnOnce(&mut Settings)) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut s = settings(&dir);
        change(&mut s);
        let running = server::start(s).await.unwrap();
        Server {
            dir,
            running: Some(running),
            _tmp: Some(tmp),
        }
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().unwrap()
    }

    pub fn nfs_addr(&self) -> SocketAddr {
        self.running().nfs_addr
    }

    /// Stops gracefully and starts a new server over the same data dir.
    pub async fn restart(&mut self) {
        self.running.take().unwrap().stop().await.unwrap();
        self.running = Some(server::start(settings(&self.dir)).await.unwrap());
    }

    /// Creates a volume with explicit store ids.
    pub async fn volume(&self, name: &str, share: Option<&str>, uid: u32, gid: u32) {
        self.volume_with(name, share, uid, gid, None, &[]).await
    }

    pub async fn volume_with(
        &self,
        name: &str,
        share: Option<&str>,
        uid: u32,
        gid: u32,
        size: Option<u64>,
        groups: &[u32],
    ) {
        self.running()
            .volumes
            .create(CreateVolume {
                name: name.into(),
                options: VolumeOptions {
                    user: Some(format!("u{uid}")),
                    share: share.map(Into::into),
                    size,
                    readonly: false,
                    layout: None,
                },
                identity: Some(ExplicitIdentity {
                    uid,
                    gid,
                    groups: groups.to_vec(),
                }),
                client: None,
            })
            .await
            .unwrap();
    }

    /// The mount path of volume `name` (`/<name>/<secret>`), as the control API gives it out.
    pub fn export(&self, name: &str) -> String {
        self.running().volumes.get(name).unwrap().export
    }

    /// Makes top-level directory `name` of share `share` for store ids `owner`, as
    /// `PUT /v1/shares/{share}/dirs/{name}` does.
    pub async fn share_dir(&self, share: &str, name: &str, owner: (u32, u32), mode: u32) {
        self.running()
            .volumes
            .ensure_share_dir(
                share,
                name,
                ShareDir {
                    user: None,
                    identity: Some(ExplicitIdentity {
                        uid: owner.0,
                        gid: owner.1,
                        groups: vec![],
                    }),
                    mode,
                },
            )
            .await
            .unwrap();
    }

    /// Mounts volume `name` by its capability path as AUTH_SYS `uid` (the uid does not matter
    /// to nfsd; views decide).
    pub async fn mount(&self, name: &str, uid: u32) -> (Client, nfs_fh3) {
        mount_at(self.nfs_addr(), &self.export(name), uid).await
    }
}

/// Mounts `export` (a full mount path) as AUTH_SYS `uid`.
pub async fn mount_at(addr: SocketAddr, export: &str, uid: u32) -> (Client, nfs_fh3) {
    let cred = opaque_auth::auth_unix(&auth_unix {
        stamp: 1,
        machinename: Opaque::borrowed(b"test"),
        uid,
        gid: uid,
        gids: vec![],
    });
    let conn = Nfs3ConnectionBuilder::new(TokioConnector, addr.ip().to_string(), export)
        .mount_port(addr.port())
        .nfs3_port(addr.port())
        .connect_from_privileged_port(false)
        .credential(cred)
        .mount()
        .await
        .unwrap();
    let root = conn.root_nfs_fh3();
    (conn.into_nfs3_client(), root)
}

pub fn name(s: &str) -> filename3<'static> {
    filename3(Opaque::owned(s.as_bytes().to_vec()))
}

pub fn dirop(dir: &nfs_fh3, n: &str) -> diropargs3<'static> {
    diropargs3 {
        dir: dir.clone(),
        name: name(n),
    }
}

pub fn mode(m: u32) -> sattr3 {
    sattr3 {
        mode: Nfs3Option::Some(m),
        ..Default::default()
    }
}

/// Creates a file (UNCHECKED, `mode`) and returns its handle.
pub async fn create(c: &mut Client, dir: &nfs_fh3, n: &str, m: u32) -> Result<nfs_fh3, nfsstat3> {
    match c
        .create(&CREATE3args {
            where_: dirop(dir, n),
            how: createhow3::UNCHECKED(mode(m)),
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(ok) => Ok(ok.obj.unwrap()),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

pub async fn mkdir(c: &mut Client, dir: &nfs_fh3, n: &str, m: u32) -> Result<nfs_fh3, nfsstat3> {
    match c
        .mkdir(&MKDIR3args {
            where_: dirop(dir, n),
            attributes: mode(m),
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(ok) => Ok(ok.obj.unwrap()),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

pub async fn write(
    c: &mut Client,
    fh: &nfs_fh3,
    offset: u64,
    data: &[u8],
    stable: stable_how,
) -> Result<WRITE3resok, nfsstat3> {
    match c
        .write(&WRITE3args {
            file: fh.clone(),
            offset,
            count: u32::try_from(data.len()).unwrap(),
            stable,
            data: Opaque::owned(data.to_vec()),
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(ok) => Ok(ok),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

pub async fn read(
    c: &mut Client,
    fh: &nfs_fh3,
    offset: u64,
    count: u32,
) -> Result<Vec<u8>, nfsstat3> {
    match c
        .read(&READ3args {
            file: fh.clone(),
            offset,
            count,
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(ok) => Ok(ok.data.to_vec()),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

pub async fn lookup(c: &mut Client, dir: &nfs_fh3, n: &str) -> Result<(nfs_fh3, fattr3), nfsstat3> {
    match c
        .lookup(&LOOKUP3args {
            what: dirop(dir, n),
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(ok) => Ok((ok.object, ok.obj_attributes.unwrap())),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

pub async fn fsstat(c: &mut Client, root: &nfs_fh3) -> FSSTAT3resok {
    c.fsstat(&FSSTAT3args {
        fsroot: root.clone(),
    })
    .await
    .unwrap()
    .unwrap()
}

pub async fn getattr(c: &mut Client, fh: &nfs_fh3) -> Result<fattr3, nfsstat3> {
    match c
        .getattr(&GETATTR3args { object: fh.clone() })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(ok) => Ok(ok.obj_attributes),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

/// SETATTR without a guard.
pub async fn setattr(c: &mut Client, h: &nfs_fh3, set: sattr3) -> Result<(), nfsstat3> {
    match c
        .setattr(&SETATTR3args {
            object: h.clone(),
            new_attributes: set,
            guard: Nfs3Option::None,
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(_) => Ok(()),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

/// Every name in a directory through READDIR (or READDIRPLUS) pages of `count` bytes.
pub async fn list(
    c: &mut Client,
    dir: &nfs_fh3,
    count: u32,
    plus: bool,
) -> Result<Vec<String>, nfsstat3> {
    let mut names = Vec::new();
    let mut cookie = 0;
    let mut verf = cookieverf3::default();
    loop {
        let (entries, eof, next_verf): (Vec<(String, u64)>, bool, cookieverf3) = if plus {
            match c
                .readdirplus(&READDIRPLUS3args {
                    dir: dir.clone(),
                    cookie,
                    cookieverf: verf,
                    dircount: count,
                    maxcount: count * 4,
                })
                .await
                .unwrap()
            {
                Nfs3Result::Ok(ok) => {
                    use nfs3_client::nfs3_types::xdr_codec::Pack;
                    // the whole reply (status + resok) must fit the client's maxcount
                    let size = 4 + ok.packed_size();
                    assert!(
                        size <= (count * 4) as usize,
                        "READDIRPLUS reply of {size} bytes over maxcount {}",
                        count * 4
                    );
                    for e in &ok.reply.entries.0 {
                        if e.name.0.as_ref() != b"." && e.name.0.as_ref() != b".." {
                            assert!(e.name_handle.is_some(), "readdirplus entry without handle");
                        }
                    }
                    (
                        ok.reply
                            .entries
                            .0
                            .into_iter()
                            .map(|e| (String::from_utf8(e.name.0.to_vec()).unwrap(), e.cookie))
                            .collect(),
                        ok.reply.eof,
                        ok.cookieverf,
                    )
                }
                Nfs3Result::Err((s, _)) => return Err(s),
            }
        } else {
            match c
                .readdir(&READDIR3args {
                    dir: dir.clone(),
                    cookie,
                    cookieverf: verf,
                    count,
                })
                .await
                .unwrap()
            {
                Nfs3Result::Ok(ok) => {
                    use nfs3_client::nfs3_types::xdr_codec::Pack;
                    let size = 4 + ok.packed_size();
                    assert!(
                        size <= count as usize,
                        "READDIR reply of {size} bytes over count {count}"
                    );
                    (
                        ok.reply
                            .entries
                            .0
                            .into_iter()
                            .map(|e| (String::from_utf8(e.name.0.to_vec()).unwrap(), e.cookie))
                            .collect(),
                        ok.reply.eof,
                        ok.cookieverf,
                    )
                }
                Nfs3Result::Err((s, _)) => return Err(s),
            }
        };
        verf = next_verf;
        for (n, ck) in entries {
            cookie = ck;
            if n != "." && n != ".." {
                names.push(n);
            }
        }
        if eof {
            return Ok(names);
        }
    }
}

pub fn owner(path: &Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::symlink_metadata(path).unwrap();
    (md.uid(), md.gid())
}
