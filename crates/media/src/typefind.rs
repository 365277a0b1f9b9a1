//! What kind of input a recording is, from its bytes (never its name).

use std::io::Read;
use std::path::Path;

/// Bytes read for typefinding: enough for several MPEG-TS packets, a
/// Matroska header, or an elementary stream's parameter sets.
pub const PROBE_BYTES: usize = 1 << 20;

/// The caps GStreamer's typefinders give the start of `data`, or `None`
/// when no typefinder recognises it. ISO base media (`video/quicktime`)
/// also gets `fragmented=(boolean)…`: GStreamer gives plain and fragmented
/// MP4 the same caps, but only a fragmented one can be remuxed while it
/// arrives (`pipelines/15-fmp4.pipeline`).
pub fn caps_of(data: &[u8]) -> Option<gst::Caps> {
    super::init().ok()?;
    match gst_base::functions::type_find_helper_for_data(None::<&gst::Object>, data) {
        Ok((mut caps, prob)) if prob >= gst::TypeFindProbability::Possible => {
            if caps
                .structure(0)
                .is_some_and(|s| s.name() == "video/quicktime")
            {
                caps.make_mut().set("fragmented", is_fragmented_mp4(data));
            }
            Some(caps)
        }
        _ => None,
    }
}

/// Whether the ISO base media file starting with `data` is fragmented: its
/// `moov` declares movie fragments (`mvex`), or a `moof` comes before any
/// `mdat`. Walks top-level boxes only, within `data`.
pub fn is_fragmented_mp4(data: &[u8]) -> bool {
    let mut at = 0usize;
    while let Some((kind, header, size)) = box_at(data, at) {
        match &kind {
            b"moof" => return true,
            b"mdat" => return false,
            b"moov" => {
                let end = if size == 0 {
                    data.len()
                } else {
                    at.saturating_add(size).min(data.len())
                };
                let mut c = at + header;
                while let Some((k, h, s)) = box_at(&data[..end], c) {
                    if &k == b"mvex" {
                        return true;
                    }
                    if s == 0 || s < h {
                        break;
                    }
                    // Sizes come from the upload: never let them wrap or
                    // stand still.
                    match c.checked_add(s) {
                        Some(n) if n > c => c = n,
                        _ => break,
                    }
                }
                return false;
            }
            _ => {}
        }
        if size == 0 || size < header {
            return false;
        }
        at = match at.checked_add(size) {
            Some(n) if n > at => n,
            _ => return false,
        };
    }
    false
}

/// The box at `at`: (type, header length, size including the header; 0
/// means "to the end"), if its header lies within `data`.
fn box_at(data: &[u8], at: usize) -> Option<([u8; 4], usize, usize)> {
    let h = data.get(at..at.checked_add(8)?)?;
    let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let kind = [h[4], h[5], h[6], h[7]];
    if size32 == 1 {
        let l = data.get(at + 8..at + 16)?;
        let size = u64::from_be_bytes(l.try_into().ok()?);
        Some((kind, 16, usize::try_from(size).unwrap_or(usize::MAX)))
    } else {
        Some((kind, 8, size32))
    }
}

/// Typefinds the first [`PROBE_BYTES`] of a file.
pub fn caps_of_file(path: &Path) -> std::io::Result<Option<gst::Caps>> {
    caps_of_file_at(path, 0)
}

/// The caps of the bytes of `path` from `offset` on (a live recording's
/// run starts where the one before it was cut).
pub fn caps_of_file_at(path: &Path, offset: u64) -> std::io::Result<Option<gst::Caps>> {
    use std::io::{Seek, SeekFrom};
    let mut buf = Vec::with_capacity(PROBE_BYTES);
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    f.take(PROBE_BYTES as u64).read_to_end(&mut buf)?;
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

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn fragmented_mp4_is_told_apart() {
        let ftyp = boxed(b"ftyp", b"isom\0\0\x02\0isomiso2avc1mp41");
        let mvhd = boxed(b"mvhd", &[0; 100]);
        let frag_moov = boxed(b"moov", &[mvhd.clone(), boxed(b"mvex", &[0; 32])].concat());
        let plain_moov = boxed(b"moov", &mvhd);
        // (boxes, fragmented)
        let mut wrap = boxed(b"free", &[0; 8]);
        wrap.extend_from_slice(&[0, 0, 0, 1, b'f', b'r', b'e', b'e']);
        wrap.extend_from_slice(&(u64::MAX - 15).to_be_bytes());
        let table: [(Vec<u8>, bool); 7] = [
            (
                [ftyp.clone(), frag_moov.clone(), boxed(b"moof", &[0; 16])].concat(),
                true,
            ),
            (
                [ftyp.clone(), plain_moov.clone(), boxed(b"mdat", &[0; 64])].concat(),
                false,
            ),
            // Index at the end: mdat first.
            (
                [ftyp.clone(), boxed(b"mdat", &[0; 64]), plain_moov].concat(),
                false,
            ),
            // Cut short before the mvex header: what is there decides.
            (
                [ftyp.clone(), frag_moov[..8 + mvhd.len() + 4].to_vec()].concat(),
                false,
            ),
            // A size smaller than a box header is not looped on.
            (
                [ftyp.clone(), vec![0, 0, 0, 4, b'f', b'r', b'e', b'e']].concat(),
                false,
            ),
            // 64-bit sizes that would wrap the walk back onto an earlier
            // box (inside a moov, and at the top level).
            ([ftyp.clone(), boxed(b"moov", &wrap)].concat(), false),
            ([ftyp, wrap].concat(), false),
        ];
        for (i, (data, want)) in table.iter().enumerate() {
            assert_eq!(is_fragmented_mp4(data), *want, "case {i}");
        }
    }
}
