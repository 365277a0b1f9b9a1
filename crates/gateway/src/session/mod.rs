//! One device connection: identify the device from its certificate, admit
//! it against the ledger, record the session in its usage record, then
//! serve each stream it opens (one recording or query per stream).

pub(crate) mod frames;
mod header;
pub(crate) mod live;
mod owner;
mod receive_file;
pub mod receive_inventory;
mod status;
mod stream;
pub mod window;

use std::net::SocketAddr;
use std::sync::Arc;

use quinn::VarInt;
use rustls_pki_types::CertificateDer;

use crate::ledger::Admission;
use crate::metrics::Refusal;
use crate::shared::Gateway;
use crate::usage::{UNIDENTIFIED, Usage, UsageEvent};
use custody_proto::CloseCode;
use custody_transport::identity;

/// What every stream of a connection knows about its device.
pub struct Session {
    pub gw: Arc<Gateway>,
    pub admission: Admission,
    /// SHA-256 of the device's certificate; empty for a device reached
    /// over another protocol (`ingest`).
    pub fingerprint: String,
    pub peer: SocketAddr,
    /// A device reached over another protocol than custody's (`crate::ingest`).
    pub ingest: Option<custody_format::manifest::Ingest>,
}

impl Session {
    pub fn device(&self) -> &str {
        &self.admission.device
    }

    pub async fn usage(&self, event: UsageEvent, recording_id: Option<&str>, detail: String) {
        self.gw
            .usage
            .record(Usage {
                device: &self.admission.device,
                officer: Some(&self.admission.officer),
                event,
                recording_id,
                detail,
                peer: Some(self.peer),
            })
            .await;
    }
}

fn close(conn: &quinn::Connection, code: CloseCode, reason: &str) {
    conn.close(VarInt::from_u32(code.code()), reason.as_bytes());
}

pub async fn handle(gw: Arc<Gateway>, incoming: quinn::Incoming) {
    let peer = incoming.remote_address();
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            // Certificate failures were already recorded by the verifier.
            tracing::info!(%peer, "handshake failed: {e}");
            return;
        }
    };
    let cert = conn
        .peer_identity()
        .and_then(|a| a.downcast::<Vec<CertificateDer<'static>>>().ok())
        .and_then(|v| v.into_iter().next());
    let Some(cert) = cert else {
        gw.metrics
            .refused(Refusal::Admission(CloseCode::ProtocolViolation));
        close(&conn, CloseCode::ProtocolViolation, "no client certificate");
        return;
    };
    let fingerprint = identity::cert_fingerprint(&cert);
    let device = match identity::device_id_from_cert(&cert) {
        Ok(d) => d,
        Err(e) => {
            let reason = format!("{e}");
            gw.usage
                .record(Usage {
                    device: UNIDENTIFIED,
                    officer: None,
                    event: UsageEvent::Refused,
                    recording_id: None,
                    detail: format!(
                        "{}: {} (certificate sha256 {fingerprint})",
                        CloseCode::NoDeviceIdentity.name(),
                        reason
                    ),
                    peer: Some(peer),
                })
                .await;
            gw.metrics
                .refused(Refusal::Admission(CloseCode::NoDeviceIdentity));
            close(&conn, CloseCode::NoDeviceIdentity, &reason);
            return;
        }
    };
    let now = custody_format::clock::now();
    let admission = match gw.ledger.current().admit(&device, now) {
        Ok(a) => a,
        Err(refusal) => {
            gw.usage
                .record(Usage {
                    device: &device,
                    officer: None,
                    event: UsageEvent::Refused,
                    recording_id: None,
                    detail: format!("{}: {}", refusal.code.name(), refusal.reason),
                    peer: Some(peer),
                })
                .await;
            gw.metrics.refused(Refusal::Admission(refusal.code));
            close(&conn, refusal.code, &refusal.reason);
            return;
        }
    };
    let s = Arc::new(Session {
        gw,
        admission,
        fingerprint,
        peer,
        ingest: None,
    });
    let _open = s.gw.metrics.session_opened();
    s.usage(
        UsageEvent::SessionOpened,
        None,
        format!(
            "session opened by {} (certificate sha256 {})",
            s.device(),
            s.fingerprint
        ),
    )
    .await;
    // The connection window follows the path (`window`): what a killed
    // gateway held for this device, and the device sends again, stays near
    // one bandwidth-delay product.
    tokio::spawn(window::run(
        conn.clone(),
        s.gw.cfg.gateway.connection_window_bytes,
    ));
    let mut streams = 0u64;
    let why = loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                streams += 1;
                tokio::spawn(stream::handle(s.clone(), send, recv));
            }
            Err(e) => break e,
        }
    };
    // A device whose address changed mid-session (a recorder's phone link
    // changing cell) kept its connection by QUIC migration: say where it
    // ended up.
    let moved = match conn.remote_address() {
        now_at if now_at != peer => {
            format!("; the device's address changed from {peer} to {now_at}")
        }
        _ => String::new(),
    };
    s.usage(
        UsageEvent::SessionClosed,
        None,
        format!("session closed after {streams} streams: {why}{moved}"),
    )
    .await;
}
