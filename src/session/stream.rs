//! One stream: read the request, dispatch it, and turn any failure into an
//! `error` message with a code. A bad stream never takes the connection or
//! the gateway down with it.

use std::sync::Arc;
use std::time::Duration;

use quinn::{RecvStream, SendStream, VarInt};

use super::Session;
use crate::limits;
use crate::protocol::frame::{self, Frame, FrameError};
use crate::protocol::{ErrorBody, Reply, Request, StreamError};

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

impl From<FrameError> for Failure {
    fn from(e: FrameError) -> Self {
        let code = match &e {
            FrameError::TooLarge { .. } => StreamError::FrameTooLarge,
            FrameError::BadMessage(_) => StreamError::BadMessage,
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

/// Reads the next frame, failing on silence longer than the idle limit.
pub async fn next_frame(recv: &mut RecvStream) -> Result<Option<Frame>, Failure> {
    match tokio::time::timeout(idle(), frame::read_frame(recv)).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(fail(
            StreamError::Timeout,
            format!("no data for {} s", limits::STREAM_IDLE_SECS),
        )),
    }
}

pub async fn reply(send: &mut SendStream, r: &Reply) -> Result<(), Failure> {
    frame::write_msg(send, r)
        .await
        .map_err(|e| fail(StreamError::Internal, format!("reply not sent: {e}")))
}

pub async fn handle(s: Arc<Session>, mut send: SendStream, recv: RecvStream) {
    let id = recv.id();
    let result = dispatch(&s, &mut send, recv).await;
    if let Err(f) = result {
        tracing::warn!(device = s.device(), stream = %id, code = %f.code, "{}", f.message);
        let _ = frame::write_msg(
            &mut send,
            &Reply::Error(ErrorBody::new(f.code, f.message.clone())),
        )
        .await;
    }
    let _ = send.finish();
    let _ = tokio::time::timeout(Duration::from_secs(5), send.stopped()).await;
}

async fn dispatch(
    s: &Arc<Session>,
    send: &mut SendStream,
    mut recv: RecvStream,
) -> Result<(), Failure> {
    let first = next_frame(&mut recv).await;
    let req = match first {
        Ok(Some(Frame::Msg(m))) => frame::decode::<Request>(&m).map_err(Failure::from),
        Ok(Some(Frame::Data(_))) => Err(fail(
            StreamError::UnexpectedMessage,
            "a stream must start with a request message",
        )),
        Ok(None) => return Ok(()),
        Err(f) => Err(f),
    };
    let req = match req {
        Ok(r) => r,
        Err(f) => {
            // Tell the peer to stop sending whatever else it had queued.
            let _ = recv.stop(VarInt::from_u32(f.code.code()));
            return Err(f);
        }
    };
    match req {
        Request::Upload { meta, size } => super::upload::run(s, send, recv, *meta, size).await,
        Request::Status {
            recording_id,
            recorder,
        } => super::status::run(s, send, &recording_id, recorder.as_deref()).await,
    }
}
