//! Pulling a fixed camera's RTSP stream (`rtspsrc`). Each RTP stream the
//! camera offers is depayloaded and parsed — never decoded — and the
//! elementary streams go into one MPEG-TS byte stream (`mpegtsmux`), which
//! the gateway keeps as the recording's original and remuxes like a
//! recorder's live stream. `docs/manifest.md` §10.12 says exactly what that
//! original is and is not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;

use crate::elements;
use crate::pull::{CameraError, Limits, pull as pull_pipeline};

/// Every element the puller may make (the element table's test checks
/// them against the Debian packages).
pub const ELEMENTS: &[&str] = &[
    "rtspsrc",
    "rtph264depay",
    "rtph265depay",
    "rtpmp4gdepay",
    "rtpmp4adepay",
    "h264parse",
    "h265parse",
    "aacparse",
    "capsfilter",
    "mpegtsmux",
    "appsink",
];

/// How long a camera may take from the request to its first media.
pub const FIRST_MEDIA: Duration = Duration::from_secs(20);

/// Where and how to reach one camera. Its `Debug` leaves the password out.
#[derive(Clone)]
pub struct RtspSource<'a> {
    pub url: &'a str,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
    /// RTP interleaved on the RTSP TCP connection (no loss on the way, one
    /// port through firewalls) rather than RTP over UDP.
    pub tcp: bool,
}

impl std::fmt::Debug for RtspSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtspSource")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.map(|_| "<redacted>"))
            .field("tcp", &self.tcp)
            .finish()
    }
}

/// The depayloader and parser for an RTP stream's `encoding-name`; `None`
/// for encodings MPEG-TS cannot carry (G.711, …), which are left out.
pub fn chain_for(encoding: &str) -> Option<&'static str> {
    match encoding.to_ascii_uppercase().as_str() {
        // Parameter sets repeated before each keyframe, as the camera's SDP
        // or stream gave them: a remux run that starts after a gap or a
        // restart can begin at any keyframe. Whole access units: given
        // single NAL units, mpegtsmux (1.22) stalls the video after the
        // first picture while audio goes on.
        "H264" => Some(
            "rtph264depay ! h264parse config-interval=-1 \
             ! capsfilter caps=video/x-h264,stream-format=byte-stream,alignment=au",
        ),
        "H265" => Some(
            "rtph265depay ! h265parse config-interval=-1 \
             ! capsfilter caps=video/x-h265,stream-format=byte-stream,alignment=au",
        ),
        "MPEG4-GENERIC" => Some("rtpmp4gdepay ! aacparse"),
        "MP4A-LATM" => Some("rtpmp4adepay ! aacparse"),
        _ => None,
    }
}

/// Pulls the camera until its stream ends or fails, nothing arrives for
/// `stall` (or within [`FIRST_MEDIA`] of asking), `keep_going` says no or `emit` returns `false`. `emit` receives MPEG-TS in whole
/// packets; it may block (the camera's connection then waits: memory stays
/// bounded). An RTP stream of an encoding MPEG-TS cannot carry is
/// reported to `left_out` and not set up.
pub fn pull(
    src: &RtspSource,
    stall: Duration,
    keep_going: &(dyn Fn() -> bool + Sync),
    left_out: impl Fn(String) + Send + Sync + 'static,
    emit: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<(), CameraError> {
    crate::init().map_err(|e| CameraError::GStreamer(e.to_string()))?;
    elements::require(ELEMENTS).map_err(CameraError::Missing)?;
    let pipeline = elements::parse_pipeline(
        "rtspsrc name=src latency=200 \
         mpegtsmux name=mux alignment=7 ! appsink name=out sync=false max-buffers=64",
    )?;
    let bin = pipeline
        .clone()
        .downcast::<gst::Bin>()
        .map_err(|_| CameraError::GStreamer("the pipeline is not a bin".into()))?;
    let (Some(rtspsrc), Some(mux)) = (bin.by_name("src"), bin.by_name("mux")) else {
        return Err(CameraError::GStreamer("no rtspsrc or mpegtsmux".into()));
    };
    rtspsrc.set_property("location", src.url);
    if let Some(u) = src.username {
        rtspsrc.set_property("user-id", u);
    }
    if let Some(p) = src.password {
        rtspsrc.set_property("user-pw", p);
    }
    rtspsrc.set_property_from_str("protocols", if src.tcp { "tcp" } else { "udp" });
    // Each stream's chain is made and linked into the muxer when rtspsrc
    // selects the stream, before SETUP: every stream is then in the first
    // PMT. Chains made when their pads appear reach the muxer at different
    // times, and the PMT it rewrites makes tsdemux add a second video track
    // that never gets data (the remux then never closes a segment).
    let chains: Arc<Mutex<HashMap<u32, gst::Bin>>> = Arc::default();
    let (weak_bin, weak_mux, made) = (bin.downgrade(), mux.downgrade(), chains.clone());
    rtspsrc.connect("select-stream", false, move |args| {
        let selected = (|| {
            let num = args.get(1)?.get::<u32>().ok()?;
            let caps = args.get(2)?.get::<gst::Caps>().ok()?;
            let s = caps.structure(0)?;
            let get = |f| s.get::<&str>(f).unwrap_or("").to_string();
            let (media, encoding) = (get("media"), get("encoding-name"));
            let Some(chain) = chain_for(&encoding) else {
                left_out(format!(
                    "{media} stream in {encoding}: MPEG-TS cannot carry it"
                ));
                return Some(false);
            };
            let (bin, mux) = (weak_bin.upgrade()?, weak_mux.upgrade()?);
            match make_chain(&bin, &mux, chain) {
                Ok(part) => {
                    made.lock().expect("chains").insert(num, part);
                    Some(true)
                }
                Err(e) => {
                    tracing::warn!(%media, %encoding, "an RTSP stream cannot be received: {e}");
                    Some(false)
                }
            }
        })();
        Some(selected.unwrap_or(false).to_value())
    });
    rtspsrc.connect_pad_added(move |_, pad| {
        // `recv_rtp_src_<stream>_<ssrc>_<pt>`
        let name = pad.name();
        let num = name
            .strip_prefix("recv_rtp_src_")
            .and_then(|r| r.split('_').next())
            .and_then(|n| n.parse::<u32>().ok());
        let part = num.and_then(|n| chains.lock().expect("chains").get(&n).cloned());
        let Some(part) = part else {
            tracing::warn!(pad = %name, "an RTSP stream nobody selected");
            return;
        };
        let linked = part
            .static_pad("sink")
            .ok_or_else(|| "no sink pad".to_string())
            .and_then(|sink| pad.link(&sink).map_err(|e| e.to_string()))
            .and_then(|_| part.sync_state_with_parent().map_err(|e| e.to_string()));
        if let Err(e) = linked {
            tracing::warn!(pad = %name, "an RTSP stream could not be linked: {e}");
        }
    });
    // A camera prepares its stream once asked (an encoder starting, a
    // keyframe to wait for): the first media gets longer than a gap in it.
    let limits = Limits {
        stall: Some(stall),
        stall_after_first: true,
        first: Some(stall.max(FIRST_MEDIA)),
        keep_going: Some(keep_going),
        ..Default::default()
    };
    pull_pipeline(&pipeline, limits, emit)
}

/// Makes one stream's depayloader and parser, linked into the muxer.
fn make_chain(bin: &gst::Bin, mux: &gst::Element, chain: &str) -> Result<gst::Bin, String> {
    let part = gst::parse::bin_from_description(chain, true).map_err(|e| e.to_string())?;
    bin.add(&part).map_err(|e| e.to_string())?;
    let out = part.static_pad("src").ok_or("no src pad")?;
    let into = mux
        .request_pad_simple("sink_%d")
        .ok_or("the muxer gave no pad")?;
    out.link(&into).map_err(|e| e.to_string())?;
    Ok(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_not_in_debug_output() {
        let s = RtspSource {
            url: "rtsp://cam-7.example:554/stream1",
            username: Some("viewer"),
            password: Some("s3cret-pass"),
            tcp: true,
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret-pass"), "{shown}");
        assert!(
            shown.contains("viewer") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn every_carried_encoding_is_depayloaded_and_parsed_only() {
        crate::init().unwrap();
        for (enc, depay) in [
            ("H264", "rtph264depay"),
            ("h265", "rtph265depay"),
            ("MPEG4-GENERIC", "rtpmp4gdepay"),
            ("MP4A-LATM", "rtpmp4adepay"),
        ] {
            let c = chain_for(enc).unwrap();
            assert!(c.starts_with(depay), "{c}");
            // No decoder or encoder: the camera's samples go on as sent.
            assert!(!c.contains("dec") && !c.contains("enc"), "{c}");
            // And it is a bin GStreamer can make, with its two ends.
            let bin = gst::parse::bin_from_description(c, true).unwrap();
            assert!(bin.static_pad("sink").is_some() && bin.static_pad("src").is_some());
        }
        for enc in ["PCMU", "PCMA", "JPEG", ""] {
            assert_eq!(chain_for(enc), None, "{enc}");
        }
    }

    #[test]
    fn a_camera_that_cannot_be_reached_is_an_error_not_an_empty_stream() {
        // A port nothing listens on (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("rtsp://127.0.0.1:{port}/cam");
        let mut n = 0;
        let r = pull(
            &RtspSource {
                url: &url,
                username: None,
                password: None,
                tcp: true,
            },
            Duration::from_secs(20),
            &|| true,
            |_| {},
            &mut |_| {
                n += 1;
                true
            },
        );
        assert!(matches!(r, Err(CameraError::GStreamer(_))), "{r:?}");
        assert_eq!(n, 0);
    }
}
