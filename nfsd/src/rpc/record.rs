//! ONC RPC record marking over TCP (RFC 5531 §11): a record is one or more fragments, each behind a
//! 4-byte header. The size cap is checked against every header before a byte is allocated, so a
//! peer that announces 2 GiB gets an error, not an allocation.

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};

const LAST_FRAGMENT: u32 = 0x8000_0000;

/// Why a record could not be read. Every variant ends the connection.
#[derive(Debug, Error)]
pub enum RecordError {
    /// the announced size is over the cap
    #[error("record of at least {announced} bytes is over the limit of {max} bytes")]
    TooLarge { announced: usize, max: usize },
    /// the peer closed the connection inside a record
    #[error("connection closed inside a record")]
    Truncated,
    #[error("reading a record: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one whole record of at most `max` bytes. `Ok(None)` is a clean end of stream.
pub async fn read_record<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, RecordError> {
    let mut record = Vec::new();
    loop {
        let mut header = [0u8; 4];
        match r.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return if record.is_empty() {
                    Ok(None)
                } else {
                    Err(RecordError::Truncated)
                };
            }
            Err(e) => return Err(e.into()),
        }
        let header = u32::from_be_bytes(header);
        let len = (header & !LAST_FRAGMENT) as usize;
        let announced = record.len() + len;
        if announced > max {
            return Err(RecordError::TooLarge { announced, max });
        }
        let start = record.len();
        record.resize(announced, 0);
        r.read_exact(&mut record[start..]).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                RecordError::Truncated
            } else {
                RecordError::Io(e)
            }
        })?;
        if header & LAST_FRAGMENT != 0 {
            return Ok(Some(record));
        }
    }
}

/// Frames `payload` (which starts with 4 reserved bytes) as one last fragment, in place.
pub fn seal(mut frame: Vec<u8>) -> Vec<u8> {
    // replies are bounded by MAX_IO and the READDIR counts, far below the mark's 2^31 bytes
    let len = u32::try_from(frame.len() - 4)
        .ok()
        .filter(|len| len & LAST_FRAGMENT == 0)
        .expect("a reply of 2 GiB or more");
    frame[..4].copy_from_slice(&(len | LAST_FRAGMENT).to_be_bytes());
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reassembles_fragments() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&3u32.to_be_bytes());
        wire.extend_from_slice(b"abc");
        wire.extend_from_slice(&(2u32 | LAST_FRAGMENT).to_be_bytes());
        wire.extend_from_slice(b"de");
        let mut r = wire.as_slice();
        assert_eq!(read_record(&mut r, 10).await.unwrap().unwrap(), b"abcde");
        assert!(read_record(&mut r, 10).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn refuses_oversized_before_reading() {
        let wire = (0x7fff_ffffu32 | LAST_FRAGMENT).to_be_bytes();
        let mut r = wire.as_slice();
        let err = read_record(&mut r, 1 << 20).await.unwrap_err();
        assert!(matches!(
            err,
            RecordError::TooLarge {
                announced: 0x7fff_ffff,
                ..
            }
        ));
        // many small fragments cannot add up past the cap either
        let mut wire = Vec::new();
        for _ in 0..5 {
            wire.extend_from_slice(&4u32.to_be_bytes());
            wire.extend_from_slice(b"xxxx");
        }
        let mut r = wire.as_slice();
        assert!(matches!(
            read_record(&mut r, 16).await,
            Err(RecordError::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn truncated_record() {
        let mut wire = (10u32 | LAST_FRAGMENT).to_be_bytes().to_vec();
        wire.extend_from_slice(b"abc");
        let mut r = wire.as_slice();
        assert!(matches!(
            read_record(&mut r, 100).await,
            Err(RecordError::Truncated)
        ));
    }
}
