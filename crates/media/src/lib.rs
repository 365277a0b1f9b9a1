//! GStreamer: recognising what a recording is (typefinding on its bytes)
//! and remuxing it into CMAF fragments without transcoding; the derivative
//! of a recording ([`derive`]) and the codecs of its init segment
//! ([`codecs`]). The only custody crate that links GStreamer.

pub mod codecs;
pub mod derive;
pub mod elements;
pub mod fmp4;
pub mod h264;
pub mod mp4;
pub mod pull;
pub mod registry;
pub mod remux;
pub mod restamp;
pub mod rtsp;
pub mod selfcheck;
pub mod srt;
pub mod test_camera;
pub mod ts_continuity;
pub mod typefind;

use std::sync::OnceLock;

pub use registry::{Access, PipelineSpec, Registry, Timestamps};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("GStreamer: {0}")]
    Init(String),
    #[error("pipeline {path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error(transparent)]
    Missing(#[from] elements::Missing),
}

/// Initialises GStreamer once and registers, in-process, the fMP4 muxers
/// (cmafmux, isofmp4mux) from gst-plugin-fmp4 and the gateway's own
/// timestamp restorer (`custodyrestamp`).
pub fn init() -> Result<(), PipelineError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        gst::init().map_err(|e| e.to_string())?;
        gstfmp4::plugin_register_static().map_err(|e| e.to_string())?;
        restamp::register().map_err(|e| e.to_string())?;
        Ok(())
    })
    .clone()
    .map_err(PipelineError::Init)
}
