//! The pieces every kind of stream shares: reading frames with an idle
//! timeout, replying, and turning what went wrong into the `error` the
//! device is told ([`Failure`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use quinn::{RecvStream, SendStream, VarInt};
use tokio::io::{AsyncRead, ReadBuf};

use custody_format::limits;
use custody_proto::frame::{self, Frame, FrameError};
use custody_proto::{Reply, StreamError};

/// Why a stream's request failed, as the device will be told.
#[derive(Debug)]
pub struct Failure {
    pub code: StreamError,
    pub message: String,
}

pub fn fail(code: StreamError, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

/// A spool write that failed: `spool_full` when its filesystem is full or
/// below the reserve (the device retries later), `storage_failure` else.
pub fn spool_failure(what: &str, e: std::io::Error) -> Failure {
    let code = if e.kind() == std::io::ErrorKind::StorageFull {
        StreamError::SpoolFull
    } else {
        StreamError::StorageFailure
    };
    fail(code, format!("{what}: {e}"))
}

impl From<FrameError> for Failure {
    fn from(e: FrameError) -> Self {
        let code = match &e {
            FrameError::TooLarge { .. } => StreamError::FrameTooLarge,
            FrameError::BadMessage(_) => StreamError::BadMessage,
            FrameError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => StreamError::Timeout,
            FrameError::Io(_) => StreamError::Internal,
            FrameError::UnknownType(_) | FrameError::EmptyData | FrameError::Truncated => {
                StreamError::BadFrame
            }
        };
        fail(code, e.to_string())
    }
}

pub fn idle() -> Duration {
    Duration::from_secs(limits::STREAM_IDLE_SECS)
}

/// Fails a read when no byte has arrived for the idle limit. Progress,
/// not whole frames, resets the clock, so a slow link that keeps
/// delivering is never cut off mid-frame.
struct Idle<'a> {
    inner: &'a mut RecvStream,
    limit: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl AsyncRead for Idle<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut *this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    let next = tokio::time::Instant::now() + this.limit;
                    this.sleep.as_mut().reset(next);
                }
                Poll::Ready(r)
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no data for {} s", this.limit.as_secs()),
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// Reads the next frame, failing on silence longer than the idle limit.
pub async fn next_frame(recv: &mut RecvStream) -> Result<Option<Frame>, Failure> {
    let limit = idle();
    let mut r = Idle {
        inner: recv,
        limit,
        sleep: Box::pin(tokio::time::sleep(limit)),
    };
    Ok(frame::read_frame(&mut r).await?)
}

/// Decodes a message expected to be `finish`: malformed JSON is
/// `bad_message`, a well-formed message of another kind `unexpected_message`,
/// and the hash must be 64 lowercase hex digits.
pub fn decode_finish(m: &[u8]) -> Result<(u64, custody_format::chain::Hash, String), Failure> {
    use custody_proto::Finish;
    let f: Finish = serde_json::from_slice(m).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            fail(
                StreamError::UnexpectedMessage,
                format!("expected finish: {e}"),
            )
        } else {
            fail(
                StreamError::BadMessage,
                format!("message is not valid JSON: {e}"),
            )
        }
    })?;
    let Finish::Finish { size, sha256 } = f;
    let h = custody_format::chain::parse_hex(&sha256).ok_or_else(|| {
        fail(
            StreamError::BadMessage,
            "finish.sha256 must be 64 lowercase hex digits",
        )
    })?;
    Ok((size, h, sha256))
}

pub async fn reply(send: &mut SendStream, r: &Reply) -> Result<(), Failure> {
    frame::write_msg(send, r)
        .await
        .map_err(|e| fail(StreamError::Internal, format!("reply not sent: {e}")))
}

/// Tells the device to stop sending on this stream, with the failure's code.
pub fn stop(recv: &mut RecvStream, f: &Failure) {
    let _ = recv.stop(VarInt::from_u32(f.code.code()));
}

/// Runs spool I/O off the async threads; a failure is a spool failure.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| fail(StreamError::Internal, e.to_string()))?
        .map_err(|e| spool_failure("spool", e))
}
