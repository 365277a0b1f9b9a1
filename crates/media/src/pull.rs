//! Running a source pipeline and handing over what its appsink makes: the
//! test camera, RTSP cameras and SRT devices all end in one.

use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::elements::{Missing, ParseError};

/// Why a source (the test camera, an RTSP camera, an SRT listener) cannot
/// start or stopped early.
#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    /// GStreamer elements the camera needs are not installed.
    #[error("{0}")]
    Missing(Missing),
    /// GStreamer failed: the message names the element and the error.
    #[error("{0}")]
    GStreamer(String),
}

impl From<ParseError> for CameraError {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::Missing(m) => CameraError::Missing(m),
            ParseError::Invalid(m) => CameraError::GStreamer(m),
        }
    }
}

/// When a pull stops besides the pipeline's own end or error.
#[derive(Default)]
pub struct Limits<'a> {
    /// Stop (without error) at this instant.
    pub deadline: Option<Instant>,
    /// A pipeline that makes nothing for this long is stopped with an error
    /// (a network source that went silent).
    pub stall: Option<Duration>,
    /// The stall clock starts at the first buffer, not at the start: a
    /// listener may wait for its caller as long as it likes.
    pub stall_after_first: bool,
    /// With `stall_after_first`: the first buffer must come within this
    /// (a camera prepares its stream after it is asked for it).
    pub first: Option<Duration>,
    /// Asked between buffers (at least every 200 ms): `false` stops the
    /// pull without error, even while nothing arrives.
    pub keep_going: Option<&'a (dyn Fn() -> bool + Sync)>,
}

/// Plays a pipeline whose appsink is named `out` and hands over what it
/// makes until it ends, a limit is reached or `emit` returns `false`. An
/// error on the pipeline's bus stops it and is returned, naming the
/// element: a camera that fails must not look like one that had nothing to
/// say.
pub fn pull(
    pipeline: &gst::Element,
    limits: Limits,
    emit: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<(), CameraError> {
    let sink = pipeline
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name("out"))
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| CameraError::GStreamer("no appsink named out".into()))?;
    let bus = pipeline
        .bus()
        .ok_or_else(|| CameraError::GStreamer("no bus".into()))?;
    // Reads the bus dry (nothing else does), keeping the first error.
    let bus_error = || {
        let mut first = None;
        while let Some(msg) = bus.pop() {
            if let (None, gst::MessageView::Error(e)) = (&first, msg.view()) {
                first = Some(CameraError::GStreamer(crate::remux::describe_error(
                    &msg, e,
                )));
            }
        }
        first
    };
    let started = Instant::now();
    let mut last = (!limits.stall_after_first).then_some(started);
    let result = match pipeline.set_state(gst::State::Playing) {
        // The bus says why.
        Err(e) => Err(bus_error().unwrap_or_else(|| CameraError::GStreamer(e.to_string()))),
        Ok(_) => loop {
            if limits.deadline.is_some_and(|d| Instant::now() >= d)
                || limits.keep_going.is_some_and(|k| !k())
            {
                break Ok(());
            }
            if let Some(e) = bus_error() {
                break Err(e);
            }
            if let (Some(s), Some(l)) = (limits.stall, last)
                && l.elapsed() >= s
            {
                break Err(CameraError::GStreamer(format!(
                    "no media for {} s",
                    s.as_secs()
                )));
            }
            if let (Some(f), None) = (limits.first, last)
                && started.elapsed() >= f
            {
                break Err(CameraError::GStreamer(format!(
                    "no media within {} s of asking for it",
                    f.as_secs()
                )));
            }
            match sink.try_pull_sample(gst::ClockTime::from_mseconds(200)) {
                Some(s) => {
                    last = Some(Instant::now());
                    let Some(b) = s.buffer() else { continue };
                    let Ok(m) = b.map_readable() else { continue };
                    if !emit(m.to_vec()) {
                        break Ok(());
                    }
                }
                // After the end, an error posted with it still counts.
                None if sink.is_eos() => break bus_error().map_or(Ok(()), Err),
                None => {}
            }
        },
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}
