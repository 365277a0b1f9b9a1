//! One stream: read the request, dispatch it, and turn any failure into an
//! `error` message with a code. A bad stream never takes the connection or
//! the gateway down with it.

use std::sync::Arc;
use std::time::Duration;

use quinn::{RecvStream, SendStream, VarInt};

use super::Session;
use crate::metrics::Refusal;
use custody_proto::frame::{self, Frame};
use custody_proto::{ErrorBody, Reply, Request, StreamError};

use super::frames::{Failure, fail, next_frame};

pub async fn handle(s: Arc<Session>, mut send: SendStream, recv: RecvStream) {
    let id = recv.id();
    let result = dispatch(&s, &mut send, recv).await;
    if let Err(f) = result {
        s.gw.metrics.refused(Refusal::Stream(f.code));
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
        Request::Upload {
            meta,
            size,
            device_clock,
        } => super::receive_file::run(s, send, recv, *meta, size, device_clock).await,
        Request::Live { meta, device_clock } => {
            super::live::run(s, send, recv, *meta, device_clock).await
        }
        Request::Status {
            recording_id,
            recorder,
        } => super::status::run(s, send, &recording_id, recorder.as_deref()).await,
        Request::Inventory {
            recorder,
            taken_at,
            page,
            last,
            items,
        } => {
            let page = super::receive_inventory::Page {
                taken_at,
                page,
                last,
                items,
            };
            super::receive_inventory::run(s, send, recorder.as_deref(), page).await
        }
    }
}
