//! Uploading one file as a recording over one stream, resuming from what
//! the gateway already holds durably.

use std::io::SeekFrom;
use std::path::PathBuf;

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::ClientError;
use custody_format::chain::Hash;
use custody_format::limits;
use custody_format::metadata::RecordingMeta;
use custody_proto::frame::{self, Frame, FrameError};
use custody_proto::{
    DerivationNote, ErrorBody, Finish, RecordingState, Reply, Request, StreamError,
};

/// Data frame size for uploads: a quarter of what the protocol allows
/// (`limits::MAX_DATA_LEN`). The gateway reads a frame whole before it
/// writes it, so a frame in its hands when it dies is sent again; smaller
/// frames keep that small, at 5 bytes of header per 256 KiB.
const FRAME_BYTES: usize = limits::MAX_DATA_LEN / 4;

/// A file to upload and what is known about it.
#[derive(Debug, Clone)]
pub struct UploadJob {
    pub path: PathBuf,
    pub meta: RecordingMeta,
    pub size: u64,
    pub sha256: Hash,
}

/// Receives progress reports; shared with the task that reads replies.
pub type ProgressFn = std::sync::Arc<dyn Fn(Progress) + Send + Sync>;

/// Progress as the gateway reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// The gateway already holds `offset` bytes; sending resumes there.
    Accepted { offset: u64, state: RecordingState },
    /// Bytes written to the stream so far.
    Sent(u64),
    /// Bytes the gateway has made durable.
    Durable(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOutcome {
    pub recorder: String,
    pub recording_id: String,
    /// Bytes that were already at the gateway when this attempt began.
    pub resumed_from: u64,
    pub sha256_matched: bool,
    pub state: RecordingState,
    pub manifest_key: String,
    pub chain_head: Option<String>,
    /// The gateway's explanation when the verdict is a failure.
    pub detail: Option<String>,
    /// What the remux stage made of the file, when archived on this stream.
    pub derivation: Option<DerivationNote>,
}

fn conn_err(e: quinn::ConnectionError) -> ClientError {
    ClientError::from_connection(e)
}

/// A failed write. A stream the gateway stopped carries the stream error
/// code it stopped it with, so whether to retry follows that code.
pub(super) fn write_err(e: quinn::WriteError) -> ClientError {
    match e {
        quinn::WriteError::ConnectionLost(c) => conn_err(c),
        quinn::WriteError::Stopped(code) => match StreamError::from_code(code.into_inner()) {
            Some(se) => ClientError::Stream(ErrorBody::new(se, "the gateway stopped the stream")),
            None => {
                ClientError::Protocol(format!("stream write: stopped with unknown code {code}"))
            }
        },
        other => ClientError::Protocol(format!("stream write: {other}")),
    }
}

fn frame_err(e: FrameError) -> ClientError {
    if let FrameError::Io(io) = &e
        && let Some(inner) = io.get_ref()
        && let Some(re) = inner.downcast_ref::<quinn::ReadError>()
        && let quinn::ReadError::ConnectionLost(c) = re
    {
        return conn_err(c.clone());
    }
    ClientError::Protocol(e.to_string())
}

async fn read_reply(recv: &mut quinn::RecvStream) -> Result<Option<Reply>, ClientError> {
    match frame::read_frame(recv).await.map_err(frame_err)? {
        None => Ok(None),
        Some(Frame::Msg(m)) => match frame::decode::<Reply>(&m).map_err(frame_err)? {
            Reply::Error(b) => Err(ClientError::Stream(b)),
            r => Ok(Some(r)),
        },
        Some(Frame::Data(_)) => Err(ClientError::Protocol("gateway sent a data frame".into())),
    }
}

/// Uploads `job` on a new stream of `conn`. `progress` sees every step.
/// The request carries this device's clock; a gateway too old to know the
/// field refuses it before any byte is sent, and is asked again without.
pub async fn upload(
    conn: &quinn::Connection,
    job: &UploadJob,
    progress: ProgressFn,
) -> Result<UploadOutcome, ClientError> {
    match upload_once(
        conn,
        job,
        progress.clone(),
        Some(custody_format::time_fmt::now()),
    )
    .await
    {
        Err(e) if e.refuses_device_clock() => upload_once(conn, job, progress, None).await,
        r => r,
    }
}

async fn upload_once(
    conn: &quinn::Connection,
    job: &UploadJob,
    progress: ProgressFn,
    device_clock: Option<String>,
) -> Result<UploadOutcome, ClientError> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(conn_err)?;
    frame::write_msg(
        &mut send,
        &Request::Upload {
            meta: Box::new(job.meta.clone()),
            size: Some(job.size),
            device_clock,
        },
    )
    .await
    .map_err(frame_err)?;
    let Some(Reply::Accepted {
        recorder,
        recording_id,
        offset,
        state,
        manifest_key,
    }) = read_reply(&mut recv).await?
    else {
        return Err(ClientError::Protocol("expected accepted".into()));
    };
    if offset > job.size {
        return Err(ClientError::Protocol(format!(
            "gateway holds {offset} bytes of a {}-byte file",
            job.size
        )));
    }
    progress(Progress::Accepted { offset, state });

    // Replies (acks, the verdict) are read concurrently with sending.
    let p2 = progress.clone();
    let mut reader = tokio::spawn(async move {
        let mut r = Replies::default();
        loop {
            match read_reply(&mut recv).await {
                Ok(Some(Reply::Ack { durable })) => {
                    r.durable = durable;
                    p2(Progress::Durable(durable));
                }
                Ok(Some(Reply::Verified { matched, state, .. })) => {
                    r.verified = Some((matched, state))
                }
                Ok(Some(Reply::Archived {
                    manifest_key,
                    chain_head,
                    derivation,
                })) => {
                    r.archived = Some((manifest_key, chain_head));
                    r.derivation = derivation;
                }
                Ok(Some(other)) => {
                    r.error = Some(ClientError::Protocol(format!("unexpected reply {other:?}")));
                    return r;
                }
                Ok(None) => return r,
                Err(e) => {
                    r.error = Some(e);
                    return r;
                }
            }
        }
    });

    if let Err(e) = send_from(&mut send, job, offset, &*progress).await {
        // The gateway usually says why it stopped the stream; prefer that.
        return Err(
            match tokio::time::timeout(std::time::Duration::from_secs(5), &mut reader).await {
                Ok(Ok(Replies {
                    error: Some(ge @ ClientError::Stream(_)),
                    ..
                })) => ge,
                _ => {
                    reader.abort();
                    e
                }
            },
        );
    }
    let r = reader
        .await
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    let (matched, vstate) = match (r.verified, r.error) {
        (Some((false, st)), e) => {
            // A mismatch is a verdict, not a transport failure: report it.
            return Ok(UploadOutcome {
                recorder,
                recording_id,
                resumed_from: offset,
                sha256_matched: false,
                state: st,
                manifest_key,
                chain_head: None,
                detail: e.map(|e| e.to_string()),
                derivation: None,
            });
        }
        (_, Some(e)) => return Err(e),
        (Some(v), None) => v,
        (None, None) => {
            return Err(ClientError::Protocol(
                "the stream ended without a verdict".into(),
            ));
        }
    };
    let (state, manifest_key, chain_head) = match r.archived {
        Some((k, h)) => (RecordingState::Archived, k, Some(h)),
        None => (vstate, manifest_key, None),
    };
    Ok(UploadOutcome {
        recorder,
        recording_id,
        resumed_from: offset,
        sha256_matched: matched,
        state,
        manifest_key,
        chain_head,
        detail: None,
        derivation: r.derivation,
    })
}

#[derive(Default)]
struct Replies {
    derivation: Option<DerivationNote>,
    durable: u64,
    verified: Option<(bool, RecordingState)>,
    archived: Option<(String, String)>,
    error: Option<ClientError>,
}

async fn send_from(
    send: &mut quinn::SendStream,
    job: &UploadJob,
    offset: u64,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(), ClientError> {
    let file_err = |source| ClientError::File {
        path: job.path.display().to_string(),
        source,
    };
    if offset < job.size {
        let mut f = tokio::fs::File::open(&job.path).await.map_err(file_err)?;
        f.seek(SeekFrom::Start(offset)).await.map_err(file_err)?;
        let mut pos = offset;
        let mut buf = vec![0u8; FRAME_BYTES];
        while pos < job.size {
            let want = ((job.size - pos) as usize).min(buf.len());
            let n = f.read(&mut buf[..want]).await.map_err(file_err)?;
            if n == 0 {
                return Err(file_err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "file shrank while uploading",
                )));
            }
            send.write_all(&frame::data_header(n))
                .await
                .map_err(write_err)?;
            send.write_all(&buf[..n]).await.map_err(write_err)?;
            pos += n as u64;
            progress(Progress::Sent(pos));
        }
    }
    frame::write_msg(
        send,
        &Finish::Finish {
            size: job.size,
            sha256: hex::encode(job.sha256),
        },
    )
    .await
    .map_err(frame_err)?;
    send.finish()
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    Ok(())
}

/// Asks how much of a recording the gateway holds.
pub async fn status(
    conn: &quinn::Connection,
    recording_id: &str,
    recorder: Option<&str>,
) -> Result<Reply, ClientError> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(conn_err)?;
    frame::write_msg(
        &mut send,
        &Request::Status {
            recording_id: recording_id.to_string(),
            recorder: recorder.map(str::to_string),
        },
    )
    .await
    .map_err(frame_err)?;
    send.finish()
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    read_reply(&mut recv)
        .await?
        .ok_or_else(|| ClientError::Protocol("no status reply".into()))
}

/// Reports what a recorder holds, in pages the gateway accepts; returns
/// how many recordings it noted.
pub async fn inventory(
    conn: &quinn::Connection,
    recorder: Option<&str>,
    taken_at: &str,
    items: &[custody_proto::InventoryItem],
) -> Result<u64, ClientError> {
    let pages: Vec<&[custody_proto::InventoryItem]> = if items.is_empty() {
        vec![&[]]
    } else {
        items
            .chunks(custody_format::limits::MAX_INVENTORY_ITEMS)
            .collect()
    };
    let mut noted = 0;
    let n = pages.len();
    for (i, page) in pages.into_iter().enumerate() {
        let (mut send, mut recv) = conn.open_bi().await.map_err(conn_err)?;
        frame::write_msg(
            &mut send,
            &Request::Inventory {
                recorder: recorder.map(str::to_string),
                taken_at: taken_at.to_string(),
                page: i as u32,
                last: i + 1 == n,
                items: page.to_vec(),
            },
        )
        .await
        .map_err(frame_err)?;
        send.finish()
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        match read_reply(&mut recv).await? {
            Some(Reply::Noted { items }) => noted += items,
            other => {
                return Err(ClientError::Protocol(format!(
                    "expected noted, got {other:?}"
                )));
            }
        }
    }
    Ok(noted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_stream_is_retried_only_if_its_code_says_so() {
        let stopped = |code: StreamError| {
            write_err(quinn::WriteError::Stopped(quinn::VarInt::from_u32(
                code.code(),
            )))
        };
        for (code, retry) in [
            (StreamError::BitrateExceeded, false),
            (StreamError::NotRecordingOwner, false),
            (StreamError::RecordingClosed, false),
            (StreamError::SpoolFull, true),
            (StreamError::StorageFailure, true),
        ] {
            let e = stopped(code);
            assert!(
                matches!(&e, ClientError::Stream(b) if b.code == code.code()),
                "{e}"
            );
            assert_eq!(e.is_retryable(), retry, "{e}");
        }
        let unknown = write_err(quinn::WriteError::Stopped(quinn::VarInt::from_u32(9999)));
        assert!(matches!(unknown, ClientError::Protocol(_)), "{unknown}");
    }
}
