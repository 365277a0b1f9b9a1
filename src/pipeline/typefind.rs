//! What kind of input a recording is, from its bytes (never its name).

use std::io::Read;
use std::path::Path;

/// Bytes read for typefinding: enough for several MPEG-TS packets, a
/// Matroska header, or an elementary stream's parameter sets.
pub const PROBE_BYTES: usize = 1 << 20;

/// The caps GStreamer's typefinders give the start of `data`, or `None`
/// when no typefinder recognises it.
pub fn caps_of(data: &[u8]) -> Option<gst::Caps> {
    super::init().ok()?;
    match gst_base::functions::type_find_helper_for_data(None::<&gst::Object>, data) {
        Ok((caps, prob)) if prob >= gst::TypeFindProbability::Possible => Some(caps),
        _ => None,
    }
}

/// Typefinds the first [`PROBE_BYTES`] of a file.
pub fn caps_of_file(path: &Path) -> std::io::Result<Option<gst::Caps>> {
    let mut buf = Vec::with_capacity(PROBE_BYTES);
    std::fs::File::open(path)?
        .take(PROBE_BYTES as u64)
        .read_to_end(&mut buf)?;
    Ok(caps_of(&buf))
}

/// A short name for caps: the structure name and its distinguishing fields.
pub fn describe(caps: &gst::CapsRef) -> String {
    caps.structure(0)
        .map(|s| s.to_string())
        .unwrap_or_else(|| caps.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_by_content_not_name() {
        // A JPEG start-of-image and JFIF header.
        let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10];
        jpeg.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        jpeg.resize(4096, 0);
        let caps = caps_of(&jpeg).unwrap();
        assert_eq!(caps.structure(0).unwrap().name(), "image/jpeg");
        // Random bytes are nothing.
        let mut x = 0x1234_5678_u32;
        let noise: Vec<u8> = (0..65536)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect();
        assert!(caps_of(&noise).is_none());
    }
}
