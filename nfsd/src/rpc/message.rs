//! ONC RPC call headers and replies. The header of a call, including the AUTH_SYS credential, is
//! parsed here by bounds-checked reads against the RFC limits (credential bodies ≤ 400 bytes,
//! machine name ≤ 255, ≤ 16 groups) before anything else looks at it; the procedure arguments
//! are then decoded with `nfs3_types`. Replies are packed with `nfs3_types` into one frame.

use nfs3_types::rpc::{
    accept_stat_data, accepted_reply, auth_stat, auth_unix, msg_body, opaque_auth, rejected_reply,
    reply_body, rpc_msg,
};
use nfs3_types::xdr_codec::{Opaque, Pack};

use super::record::seal;

/// Largest credential or verifier body (RFC 5531).
const MAX_AUTH_BODY: usize = 400;
const AUTH_NONE: u32 = 0;
const AUTH_SYS: u32 = 1;

/// Who the client says it is. nfsd does not use it for permissions (views do), only for logs.
#[derive(Debug, Clone)]
pub enum Credential {
    None,
    Unix(auth_unix),
    /// Another flavor, refused with AUTH_TOOWEAK.
    Other(u32),
}

/// The parsed header of a call.
#[derive(Debug, Clone)]
pub struct CallHeader {
    pub xid: u32,
    pub rpcvers: u32,
    pub prog: u32,
    pub vers: u32,
    pub proc_: u32,
    pub cred: Credential,
    /// Offset of the procedure arguments in the record.
    pub args_at: usize,
}

/// Why a record is not a call we can answer.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Not even an xid and a CALL: nothing can be answered, the connection is closed.
    NotACall,
    /// A call whose credential is malformed: answered with AUTH_BADCRED.
    BadCredential { xid: u32 },
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Option<u32> {
        let b = self.buf.get(self.pos..self.pos + 4)?;
        self.pos += 4;
        Some(u32::from_be_bytes(b.try_into().ok()?))
    }
    fn opaque(&mut self, max: usize) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        if len > max {
            return None;
        }
        let padded = len.div_ceil(4) * 4;
        let b = self.buf.get(self.pos..self.pos + len)?;
        self.buf.get(self.pos..self.pos + padded)?;
        self.pos += padded;
        Some(b)
    }
}

/// Parses a call header.
pub fn parse_call(record: &[u8]) -> Result<CallHeader, HeaderError> {
    let mut r = Reader {
        buf: record,
        pos: 0,
    };
    let xid = r.u32().ok_or(HeaderError::NotACall)?;
    if r.u32() != Some(0) {
        return Err(HeaderError::NotACall);
    }
    let bad = HeaderError::BadCredential { xid };
    let (Some(rpcvers), Some(prog), Some(vers), Some(proc_)) = (r.u32(), r.u32(), r.u32(), r.u32())
    else {
        return Err(bad);
    };
    let flavor = r.u32().ok_or(HeaderError::BadCredential { xid })?;
    let body = r
        .opaque(MAX_AUTH_BODY)
        .ok_or(HeaderError::BadCredential { xid })?;
    let cred = match flavor {
        AUTH_NONE => Credential::None,
        AUTH_SYS => {
            Credential::Unix(parse_auth_unix(body).ok_or(HeaderError::BadCredential { xid })?)
        }
        other => Credential::Other(other),
    };
    let _verf_flavor = r.u32().ok_or(HeaderError::BadCredential { xid })?;
    r.opaque(MAX_AUTH_BODY)
        .ok_or(HeaderError::BadCredential { xid })?;
    Ok(CallHeader {
        xid,
        rpcvers,
        prog,
        vers,
        proc_,
        cred,
        args_at: r.pos,
    })
}

fn parse_auth_unix(body: &[u8]) -> Option<auth_unix> {
    let mut r = Reader { buf: body, pos: 0 };
    let stamp = r.u32()?;
    let machinename = r.opaque(255)?.to_vec();
    let uid = r.u32()?;
    let gid = r.u32()?;
    let n = r.u32()? as usize;
    if n > 16 {
        return None;
    }
    let mut gids = Vec::with_capacity(n);
    for _ in 0..n {
        gids.push(r.u32()?);
    }
    Some(auth_unix {
        stamp,
        machinename: Opaque::owned(machinename),
        uid,
        gid,
        gids,
    })
}

fn frame(msg: &rpc_msg<'_, '_>, body: Option<&dyn PackInto>) -> Vec<u8> {
    let size = 4 + msg.packed_size() + body.map_or(0, |b| b.size());
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&[0; 4]);
    msg.pack(&mut out).expect("packing into a Vec cannot fail");
    if let Some(b) = body {
        b.pack_into(&mut out);
    }
    seal(out)
}

/// Object-safe packing into a Vec, so replies of any type share one framing function.
pub trait PackInto {
    fn size(&self) -> usize;
    fn pack_into(&self, out: &mut Vec<u8>);
}

impl<T: Pack> PackInto for T {
    fn size(&self) -> usize {
        self.packed_size()
    }
    fn pack_into(&self, out: &mut Vec<u8>) {
        self.pack(out).expect("packing into a Vec cannot fail");
    }
}

fn accepted(xid: u32, stat: accept_stat_data) -> rpc_msg<'static, 'static> {
    rpc_msg {
        xid,
        body: msg_body::REPLY(reply_body::MSG_ACCEPTED(accepted_reply {
            verf: opaque_auth::default(),
            reply_data: stat,
        })),
    }
}

/// A successful reply carrying `result`.
pub fn success(xid: u32, result: &dyn PackInto) -> Vec<u8> {
    frame(&accepted(xid, accept_stat_data::SUCCESS), Some(result))
}

/// An accepted call that failed at the RPC level (unknown program, garbage arguments, ...).
pub fn accept_error(xid: u32, stat: accept_stat_data) -> Vec<u8> {
    frame(&accepted(xid, stat), None)
}

/// A denied call (RPC version mismatch or authentication error).
pub fn denied(xid: u32, reply: rejected_reply) -> Vec<u8> {
    frame(
        &rpc_msg {
            xid,
            body: msg_body::REPLY(reply_body::MSG_DENIED(reply)),
        },
        None,
    )
}

/// Shortcut for an authentication error.
pub fn auth_error(xid: u32, stat: auth_stat) -> Vec<u8> {
    denied(xid, rejected_reply::AUTH_ERROR(stat))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(cred_flavor: u32, cred: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        let cred_len = u32::try_from(cred.len()).unwrap();
        for w in [7u32, 0, 2, 100_003, 3, 1, cred_flavor, cred_len] {
            v.extend_from_slice(&w.to_be_bytes());
        }
        v.extend_from_slice(cred);
        v.resize(v.len().div_ceil(4) * 4, 0);
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(b"ARGS");
        v
    }

    fn unix_cred(name_len: u32, ngroups: u32) -> Vec<u8> {
        let mut c = Vec::new();
        c.extend_from_slice(&1u32.to_be_bytes());
        c.extend_from_slice(&name_len.to_be_bytes());
        c.extend(std::iter::repeat_n(b'h', name_len.min(300) as usize));
        c.resize(c.len().div_ceil(4) * 4, 0);
        for w in [1000u32, 100, ngroups] {
            c.extend_from_slice(&w.to_be_bytes());
        }
        for g in 0..ngroups.min(20) {
            c.extend_from_slice(&g.to_be_bytes());
        }
        c
    }

    #[test]
    fn parses_auth_sys_call() {
        let rec = call(AUTH_SYS, &unix_cred(4, 2));
        let h = parse_call(&rec).unwrap();
        assert_eq!((h.xid, h.prog, h.vers, h.proc_), (7, 100_003, 3, 1));
        assert_eq!(&rec[h.args_at..], b"ARGS");
        match h.cred {
            Credential::Unix(u) => assert_eq!((u.uid, u.gid, u.gids.len()), (1000, 100, 2)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hostile_headers() {
        assert_eq!(parse_call(b"\x01\x02").unwrap_err(), HeaderError::NotACall);
        assert_eq!(parse_call(&[0xff; 64]).unwrap_err(), HeaderError::NotACall);
        // a REPLY is not a call
        let mut rec = call(AUTH_NONE, &[]);
        rec[7] = 1;
        assert_eq!(parse_call(&rec).unwrap_err(), HeaderError::NotACall);
        // too many groups, a lying machine-name length, an oversized credential
        for cred in [unix_cred(4, 17), unix_cred(300, 0)] {
            assert_eq!(
                parse_call(&call(AUTH_SYS, &cred)).unwrap_err(),
                HeaderError::BadCredential { xid: 7 }
            );
        }
        let mut rec = call(AUTH_NONE, &[]);
        rec[28..32].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        assert_eq!(
            parse_call(&rec).unwrap_err(),
            HeaderError::BadCredential { xid: 7 }
        );
    }

    #[test]
    fn reply_frame_has_record_mark() {
        let f = accept_error(9, accept_stat_data::PROC_UNAVAIL);
        let mark = u32::from_be_bytes(f[..4].try_into().unwrap());
        assert_eq!(mark & 0x7fff_ffff, u32::try_from(f.len() - 4).unwrap());
        assert_eq!(&f[4..8], &9u32.to_be_bytes());
    }
}
