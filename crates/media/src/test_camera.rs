//! The test camera: a ball and a tone, H.264 + AAC in MPEG-TS, standing in
//! for a body-worn recorder (`custody record --test-source`, the live tests
//! and benches). Each frame carries the wall-clock time it was captured as
//! a barcode ([`stamp_barcode`]), which the browser test reads back from the
//! decoded picture to measure glass-to-glass latency.

use std::time::Instant;

use gst::prelude::*;

use crate::elements;

pub use crate::elements::test_source_description;

pub use crate::pull::CameraError;

/// Whether the camera can start here: GStreamer and every element it
/// needs (a missing one is named with its Debian package).
pub fn check(width: u32, height: u32, bitrate_kbps: u32) -> Result<(), CameraError> {
    crate::init().map_err(|e| CameraError::GStreamer(e.to_string()))?;
    elements::parse_pipeline(&test_source_description(width, height, bitrate_kbps))?;
    Ok(())
}

/// Runs the camera until `deadline`, an error, or `emit` returns false
/// (its receiver went away); `emit` gets the MPEG-TS bytes as made.
pub fn run(
    bitrate_kbps: u32,
    width: u32,
    height: u32,
    deadline: Option<Instant>,
    emit: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<(), CameraError> {
    crate::init().map_err(|e| CameraError::GStreamer(e.to_string()))?;
    let pipeline = elements::parse_pipeline(&test_source_description(width, height, bitrate_kbps))?;
    let stamp = pipeline
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name("stamp"))
        .and_then(|e| e.static_pad("src"))
        .ok_or_else(|| CameraError::GStreamer("no stamp element".into()))?;
    let (w, h) = (width as usize, height as usize);
    stamp.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buf) = info.buffer_mut() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64;
            if let Ok(mut m) = buf.make_mut().map_writable() {
                stamp_barcode(m.as_mut_slice(), w, h, now as u32);
            }
        }
        gst::PadProbeReturn::Ok
    });
    crate::pull::pull(
        &pipeline,
        crate::pull::Limits {
            deadline,
            ..Default::default()
        },
        emit,
    )
}

/// Draws `value` as 32 blocks, most significant bit first, into the luma
/// plane of an I420 frame: block i is 16×16 at x = 8 + 20·i, y = 8 in a
/// 640×360 frame (scaled with the frame), white for 1 and black for 0.
pub fn stamp_barcode(frame: &mut [u8], width: usize, height: usize, value: u32) {
    // GStreamer's default I420 luma stride: the width rounded up to 4.
    let stride = width.div_ceil(4) * 4;
    let sx = |v: usize| v * width / 640;
    let sy = |v: usize| v * height / 360;
    for i in 0..32 {
        let bit = (value >> (31 - i)) & 1 == 1;
        let luma = if bit { 235 } else { 16 };
        let (x0, x1) = (sx(8 + 20 * i), sx(8 + 20 * i + 16));
        for y in sy(8)..sy(24).min(height) {
            let row = y * stride;
            if let Some(px) = frame.get_mut(row + x0..row + x1.min(width)) {
                px.fill(luma);
            }
        }
    }
}

/// Reads a barcode drawn by [`stamp_barcode`] back (for tests).
pub fn read_barcode(frame: &[u8], width: usize, height: usize) -> u32 {
    let stride = width.div_ceil(4) * 4;
    let mut v = 0u32;
    for i in 0..32 {
        let (x, y) = ((8 + 20 * i + 8) * width / 640, 16 * height / 360);
        let bit = frame.get(y * stride + x).is_some_and(|&l| l >= 128);
        v = (v << 1) | bit as u32;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barcode_round_trips_at_any_frame_size() {
        for (w, h) in [(640, 360), (1280, 720), (320, 180)] {
            let mut f = vec![128u8; w * h * 3 / 2];
            for v in [0u32, 1, 0x8000_0001, 0xdead_beef, u32::MAX] {
                stamp_barcode(&mut f, w, h, v);
                assert_eq!(read_barcode(&f, w, h), v, "{w}x{h} {v:#x}");
            }
        }
    }

    /// Runs `pull` on a description; what it returned and how many
    /// buffers it handed over.
    fn pull_all(desc: &str) -> (Result<(), CameraError>, usize) {
        crate::init().unwrap();
        let p = elements::parse_pipeline(desc).unwrap();
        let mut n = 0;
        let r = crate::pull::pull(
            &p,
            crate::pull::Limits {
                deadline: Some(Instant::now() + std::time::Duration::from_secs(60)),
                ..Default::default()
            },
            &mut |_| {
                n += 1;
                true
            },
        );
        (r, n)
    }

    #[test]
    fn a_pipeline_that_fails_stops_with_the_gstreamer_error() {
        // Fails mid-stream: identity posts an error after 5 buffers.
        let (r, n) = pull_all(
            "videotestsrc num-buffers=50 ! identity name=cam error-after=5 ! appsink name=out",
        );
        match r {
            Err(CameraError::GStreamer(m)) => {
                assert!(m.starts_with("cam (identity): "), "{m}")
            }
            other => panic!("{other:?}"),
        }
        assert!(n < 50, "{n} buffers");
        // Fails at the start: the file is not there.
        let (r, n) = pull_all("filesrc location=/nonexistent/cam.ts ! appsink name=out");
        match r {
            Err(CameraError::GStreamer(m)) => assert!(m.contains("filesrc"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(n, 0);
        // Runs to its end: no error, everything handed over.
        let (r, n) = pull_all("audiotestsrc num-buffers=5 ! appsink name=out");
        r.unwrap();
        assert_eq!(n, 5);
    }

    #[test]
    fn the_camera_can_start_here() {
        check(320, 180, 500).unwrap();
    }
}
