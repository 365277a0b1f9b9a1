//! Fixed cameras pulled over RTSP. Every device the ledger lists with a
//! `[device.rtsp]` source is pulled while the ledger admits it
//! (`super::feed`); its stream, depayloaded into MPEG-TS
//! (`custody_media::rtsp`), becomes a live recording like a recorder's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::feed::Media;
use crate::ledger::{RtspCamera, RtspTransport};
use crate::shared::Gateway;

/// Starts pulling the camera on its own thread.
pub(super) fn start(gw: &Arc<Gateway>, device: &str, cam: &RtspCamera) -> Media {
    let cam = cam.clone();
    let stall = Duration::from_secs(gw.cfg.rtsp.stall_secs.max(1));
    let dev = device.to_string();
    Media::spawn(format!("rtsp-{device}"), move |tx, _peer| {
        let src = custody_media::rtsp::RtspSource {
            url: &cam.url,
            username: cam.username.as_deref(),
            password: cam.password.as_deref(),
            tcp: cam.transport == RtspTransport::Tcp,
        };
        let left_out = move |what: String| {
            tracing::warn!(device = %dev, "left out of the recording: {what}");
        };
        let open = tx.clone();
        let r = custody_media::rtsp::pull(&src, stall, &|| !open.is_closed(), left_out, &mut |b| {
            tx.blocking_send(Bytes::from(b)).is_ok()
        });
        match r {
            Ok(()) => "the camera ended its stream".to_string(),
            Err(e) => e.to_string(),
        }
    })
}

/// The camera's address, for usage records (`None` if its name does not
/// resolve now).
pub(super) async fn peer_of(url: &str) -> Option<SocketAddr> {
    let authority = url
        .strip_prefix("rtsp://")
        .and_then(|r| r.split('/').next())
        .unwrap_or("");
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:554")
    };
    tokio::net::lookup_host(with_port).await.ok()?.next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_camera_address_is_its_host_and_port() {
        assert_eq!(
            peer_of("rtsp://127.0.0.1:8554/cam").await,
            Some("127.0.0.1:8554".parse().unwrap())
        );
        assert_eq!(
            peer_of("rtsp://127.0.0.1/cam").await,
            Some("127.0.0.1:554".parse().unwrap())
        );
    }
}
