//! Framing: every frame is `type (1 byte) ‖ length (u32, big-endian) ‖ payload`.
//!
//! Type 1 carries one JSON control message, type 2 carries recording bytes.
//! Lengths are checked against [`limits`] before anything is allocated, so a
//! hostile length costs the peer an error, not the gateway memory.

use bytes::{Bytes, BytesMut};
use serde::{Serialize, de::DeserializeOwned};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use custody_format::limits;

pub const FRAME_MSG: u8 = 1;
pub const FRAME_DATA: u8 = 2;
pub const HEADER_LEN: usize = 5;

#[derive(Debug)]
pub enum Frame {
    Msg(Bytes),
    Data(Bytes),
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("unknown frame type {0}")]
    UnknownType(u8),
    #[error("{kind} frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        kind: &'static str,
        len: usize,
        max: usize,
    },
    #[error("empty data frame")]
    EmptyData,
    #[error("stream ended inside a frame")]
    Truncated,
    #[error("message is not valid: {0}")]
    BadMessage(#[from] serde_json::Error),
    #[error("stream error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame; `Ok(None)` when the peer finished the stream cleanly
/// between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Frame>, FrameError> {
    let mut head = [0u8; HEADER_LEN];
    // A clean end is only allowed before the first header byte.
    let first = r.read(&mut head[..1]).await?;
    if first == 0 {
        return Ok(None);
    }
    r.read_exact(&mut head[1..])
        .await
        .map_err(eof_to_truncated)?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let (kind, max) = match head[0] {
        FRAME_MSG => ("message", limits::MAX_MSG_LEN),
        FRAME_DATA => ("data", limits::MAX_DATA_LEN),
        t => return Err(FrameError::UnknownType(t)),
    };
    if len > max {
        return Err(FrameError::TooLarge { kind, len, max });
    }
    if head[0] == FRAME_DATA && len == 0 {
        return Err(FrameError::EmptyData);
    }
    let mut buf = BytesMut::zeroed(len);
    r.read_exact(&mut buf).await.map_err(eof_to_truncated)?;
    let payload = buf.freeze();
    Ok(Some(if head[0] == FRAME_MSG {
        Frame::Msg(payload)
    } else {
        Frame::Data(payload)
    }))
}

fn eof_to_truncated(e: std::io::Error) -> FrameError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        FrameError::Truncated
    } else {
        FrameError::Io(e)
    }
}

pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    Ok(serde_json::from_slice(payload)?)
}

pub fn encode_msg<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let body = serde_json::to_vec(msg)?;
    if body.len() > limits::MAX_MSG_LEN {
        return Err(FrameError::TooLarge {
            kind: "message",
            len: body.len(),
            max: limits::MAX_MSG_LEN,
        });
    }
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.push(FRAME_MSG);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

pub async fn write_msg<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> Result<(), FrameError> {
    let frame = encode_msg(msg)?;
    w.write_all(&frame).await?;
    Ok(())
}

/// The 5-byte header of a data frame carrying `len` bytes.
pub fn data_header(len: usize) -> [u8; HEADER_LEN] {
    assert!(len > 0 && len <= limits::MAX_DATA_LEN);
    let l = (len as u32).to_be_bytes();
    [FRAME_DATA, l[0], l[1], l[2], l[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(bytes: &[u8]) -> Vec<Result<Option<Frame>, FrameError>> {
        let mut r = bytes;
        let mut out = Vec::new();
        loop {
            let f = read_frame(&mut r).await;
            let stop = !matches!(f, Ok(Some(_)));
            out.push(f);
            if stop {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn round_trip() {
        let mut buf = encode_msg(&serde_json::json!({"type":"status"})).unwrap();
        buf.extend_from_slice(&data_header(3));
        buf.extend_from_slice(b"abc");
        let frames = read_all(&buf).await;
        assert!(
            matches!(&frames[0], Ok(Some(Frame::Msg(m))) if m.as_ref() == br#"{"type":"status"}"#)
        );
        assert!(matches!(&frames[1], Ok(Some(Frame::Data(d))) if d.as_ref() == b"abc"));
        assert!(matches!(frames[2], Ok(None)));
    }

    #[tokio::test]
    async fn hostile_headers_are_refused_before_allocation() {
        let cases: [(&[u8], &str); 5] = [
            (&[9, 0, 0, 0, 1, 0], "unknown frame type 9"),
            (
                &[1, 0xff, 0xff, 0xff, 0xff],
                "message frame of 4294967295 bytes",
            ),
            (&[2, 0, 0x10, 0, 1], "data frame of 1048577 bytes"),
            (&[2, 0, 0, 0, 0], "empty data frame"),
            (&[2, 0, 0, 0, 4, 1, 2], "stream ended inside a frame"),
        ];
        for (bytes, want) in cases {
            let frames = read_all(bytes).await;
            let err = frames.last().unwrap().as_ref().unwrap_err().to_string();
            assert!(err.contains(want), "{err} vs {want}");
        }
        // A header cut short is truncation too, not a clean end.
        let frames = read_all(&[1, 0]).await;
        assert!(matches!(frames[0], Err(FrameError::Truncated)));
    }
}
