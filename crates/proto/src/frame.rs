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

    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    use tokio::io::{AsyncWriteExt, duplex};

    /// A frame header: `kind`, then `len` big-endian.
    fn header(kind: u8, len: u32) -> [u8; HEADER_LEN] {
        let l = len.to_be_bytes();
        [kind, l[0], l[1], l[2], l[3]]
    }

    /// Reads one frame from a pipe that holds only `head` and whose writer
    /// stays open: `None` when the reader waits for more (a payload), the
    /// error when the frame is refused on its header alone — before its
    /// payload could arrive, so before room for it is allocated.
    async fn read_header_only(head: &[u8]) -> Option<Result<Option<Frame>, FrameError>> {
        let (mut peer, mut r) = duplex(64);
        peer.write_all(head).await.unwrap();
        // Unconstrained: tokio's co-operative budget must not make a read
        // that has its bytes wait.
        let read = std::pin::pin!(tokio::task::unconstrained(read_frame(&mut r)));
        match read.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(f) => Some(f),
            Poll::Pending => None,
        }
    }

    #[tokio::test]
    async fn every_frame_type_round_trips_through_a_stream() {
        // The largest message: a JSON string of MAX_MSG_LEN bytes with its quotes.
        let largest_msg = serde_json::Value::String("m".repeat(limits::MAX_MSG_LEN - 2));
        let data: Vec<Vec<u8>> = vec![
            vec![0x47],
            (0..limits::MAX_DATA_LEN).map(|i| i as u8).collect(),
        ];
        let (mut peer, mut r) = duplex(16 * 1024);
        let write = async {
            write_msg(&mut peer, &serde_json::json!({"type": "end"}))
                .await
                .unwrap();
            for d in &data {
                peer.write_all(&data_header(d.len())).await.unwrap();
                peer.write_all(d).await.unwrap();
            }
            write_msg(&mut peer, &largest_msg).await.unwrap();
            peer.shutdown().await.unwrap();
        };
        let read = async {
            let mut frames = Vec::new();
            while let Some(f) = read_frame(&mut r).await.unwrap() {
                frames.push(f);
            }
            frames
        };
        let ((), frames) = tokio::join!(write, read);
        assert_eq!(frames.len(), 4);
        assert!(matches!(&frames[0], Frame::Msg(m) if m.as_ref() == br#"{"type":"end"}"#));
        assert!(matches!(&frames[1], Frame::Data(d) if d.as_ref() == data[0].as_slice()));
        assert!(matches!(&frames[2], Frame::Data(d) if d.as_ref() == data[1].as_slice()));
        match &frames[3] {
            Frame::Msg(m) => {
                assert_eq!(m.len(), limits::MAX_MSG_LEN);
                assert_eq!(decode::<serde_json::Value>(m).unwrap(), largest_msg);
            }
            f => panic!("expected the largest message, got {f:?}"),
        }
    }

    #[tokio::test]
    async fn limits_are_checked_on_the_header_alone() {
        let max_msg = limits::MAX_MSG_LEN as u32;
        let max_data = limits::MAX_DATA_LEN as u32;
        // (header, what reading it gives before any payload arrives)
        let refused: [([u8; HEADER_LEN], &str); 6] = [
            (
                header(FRAME_MSG, max_msg + 1),
                "message frame of 65537 bytes exceeds the limit of 65536",
            ),
            (
                header(FRAME_MSG, u32::MAX),
                "message frame of 4294967295 bytes exceeds the limit of 65536",
            ),
            (
                header(FRAME_DATA, max_data + 1),
                "data frame of 1048577 bytes exceeds the limit of 1048576",
            ),
            (
                header(FRAME_DATA, u32::MAX),
                "data frame of 4294967295 bytes exceeds the limit of 1048576",
            ),
            (header(FRAME_DATA, 0), "empty data frame"),
            (header(0, 1), "unknown frame type 0"),
        ];
        for (head, says) in refused {
            match read_header_only(&head).await {
                Some(Err(e)) => assert_eq!(e.to_string(), says, "{head:?}"),
                other => panic!("{head:?}: expected {says:?}, got {other:?}"),
            }
        }
        let too_large = read_header_only(&header(FRAME_DATA, max_data + 1)).await;
        assert!(matches!(
            too_large,
            Some(Err(FrameError::TooLarge { kind: "data", len, max }))
                if len == limits::MAX_DATA_LEN + 1 && max == limits::MAX_DATA_LEN
        ));
        // At the limits, the reader waits for the payload.
        for head in [header(FRAME_MSG, max_msg), header(FRAME_DATA, max_data)] {
            assert!(read_header_only(&head).await.is_none(), "{head:?}");
        }
        // An empty message frame is a frame (whose payload is no message).
        match read_header_only(&header(FRAME_MSG, 0)).await {
            Some(Ok(Some(Frame::Msg(m)))) => {
                assert!(m.is_empty());
                assert!(matches!(
                    decode::<serde_json::Value>(&m),
                    Err(FrameError::BadMessage(_))
                ));
            }
            other => panic!("expected an empty message frame, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn every_unknown_frame_type_is_refused() {
        for t in (0..=u8::MAX).filter(|t| ![FRAME_MSG, FRAME_DATA].contains(t)) {
            assert!(
                matches!(
                    read_header_only(&header(t, 1)).await,
                    Some(Err(FrameError::UnknownType(u))) if u == t
                ),
                "type {t}"
            );
        }
    }

    #[tokio::test]
    async fn a_stream_may_end_only_between_frames() {
        let mut whole = encode_msg(&serde_json::json!({"type": "end"})).unwrap();
        whole.extend_from_slice(&data_header(4));
        whole.extend_from_slice(b"abcd");
        let msg_len = whole.len() - HEADER_LEN - 4;
        // Where the peer finishes its stream, and whether that is inside a frame.
        for cut in 0..=whole.len() {
            let (mut peer, mut r) = duplex(64);
            peer.write_all(&whole[..cut]).await.unwrap();
            drop(peer);
            let mut frames = 0;
            let end = loop {
                match read_frame(&mut r).await {
                    Ok(Some(_)) => frames += 1,
                    other => break other,
                }
            };
            let between_frames = cut == 0 || cut == msg_len || cut == whole.len();
            if between_frames {
                assert!(matches!(end, Ok(None)), "cut at {cut}: {end:?}");
                assert_eq!(
                    frames,
                    [0, msg_len, whole.len()]
                        .iter()
                        .position(|&c| c == cut)
                        .unwrap()
                );
            } else {
                assert!(
                    matches!(end, Err(FrameError::Truncated)),
                    "cut at {cut}: {end:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_message_too_long_is_not_sent() {
        let too_long = serde_json::Value::String("m".repeat(limits::MAX_MSG_LEN - 1));
        let (mut peer, mut r) = duplex(64);
        let e = write_msg(&mut peer, &too_long).await.unwrap_err();
        assert!(matches!(
            e,
            FrameError::TooLarge { kind: "message", len, max }
                if len == limits::MAX_MSG_LEN + 1 && max == limits::MAX_MSG_LEN
        ));
        drop(peer);
        assert!(
            matches!(read_frame(&mut r).await, Ok(None)),
            "nothing was written"
        );
    }

    #[test]
    fn data_headers_carry_type_and_big_endian_length() {
        assert_eq!(data_header(1), [2, 0, 0, 0, 1]);
        assert_eq!(data_header(0x0102), [2, 0, 0, 1, 2]);
        assert_eq!(data_header(limits::MAX_DATA_LEN), [2, 0, 0x10, 0, 0]);
    }

    #[test]
    #[should_panic]
    fn an_empty_data_header_is_a_bug() {
        data_header(0);
    }

    #[test]
    #[should_panic]
    fn a_data_header_over_the_limit_is_a_bug() {
        data_header(limits::MAX_DATA_LEN + 1);
    }
}
