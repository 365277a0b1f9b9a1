//! The codecs of an fMP4 initialisation segment as RFC 6381 strings (what
//! HLS `CODECS` and the wall's player want), read from the sample entry
//! boxes without GStreamer.

/// Codecs of an fMP4 initialisation segment, as HLS `CODECS` wants them
/// (RFC 6381 strings), and whether browsers can play them (H.265 mostly
/// cannot).
pub fn codecs(init: &[u8]) -> (String, bool) {
    let find = |tag: &[u8]| init.windows(4).position(|w| w == tag);
    let mut out = Vec::new();
    let mut playable = true;
    if let Some(i) = find(b"avcC") {
        if let Some(b) = init.get(i + 5..i + 8) {
            let entry = if find(b"avc3").is_some() {
                "avc3"
            } else {
                "avc1"
            };
            out.push(format!("{entry}.{:02x}{:02x}{:02x}", b[0], b[1], b[2]));
        }
    } else if let Some(i) = find(b"hvcC") {
        let entry = if find(b"hev1").is_some() {
            "hev1"
        } else {
            "hvc1"
        };
        out.push(hevc_codec(entry, init.get(i + 4..).unwrap_or(&[])));
        playable = false;
    }
    if let Some(i) = find(b"esds") {
        out.push(aac_codec(init.get(i + 8..).unwrap_or(&[])));
    } else if find(b"mp4a").is_some() {
        out.push("mp4a.40.2".to_string());
    } else if find(b"Opus").is_some() {
        out.push("opus".to_string());
    }
    (out.join(","), playable)
}

/// `hvc1.<space><profile>.<compat>.<tier><level>.<constraints>` from an
/// HEVCDecoderConfigurationRecord (ISO/IEC 14496-15, annex E).
fn hevc_codec(entry: &str, rec: &[u8]) -> String {
    if rec.len() < 13 {
        return format!("{entry}.1.6.L93.B0");
    }
    let space = ["", "A", "B", "C"][(rec[1] >> 6) as usize];
    let tier = if rec[1] & 0x20 != 0 { 'H' } else { 'L' };
    let profile = rec[1] & 0x1f;
    let compat = u32::from_be_bytes([rec[2], rec[3], rec[4], rec[5]]).reverse_bits();
    let mut constraints: Vec<u8> = rec[6..12].to_vec();
    while constraints.last() == Some(&0) {
        constraints.pop();
    }
    let mut s = format!("{entry}.{space}{profile}.{compat:x}.{tier}{}", rec[12]);
    for c in constraints {
        s.push_str(&format!(".{c:02X}"));
    }
    s
}

/// `mp4a.<object type>[.<audio object type>]` from the descriptors of an
/// `esds` box (after its version and flags).
fn aac_codec(d: &[u8]) -> String {
    // (tag, payload) of the descriptor at `at`.
    fn descriptor(d: &[u8], at: usize) -> Option<(u8, usize, usize)> {
        let tag = *d.get(at)?;
        let (mut len, mut i) = (0usize, at + 1);
        for _ in 0..4 {
            let b = *d.get(i)?;
            i += 1;
            len = (len << 7) | (b & 0x7f) as usize;
            if b & 0x80 == 0 {
                break;
            }
        }
        Some((tag, i, len))
    }
    let parse = || -> Option<String> {
        let (tag, mut i, _) = descriptor(d, 0)?;
        if tag != 0x03 {
            return None;
        }
        let flags = *d.get(i + 2)?;
        i += 3;
        if flags & 0x80 != 0 {
            i += 2;
        }
        if flags & 0x40 != 0 {
            i += 1 + *d.get(i)? as usize;
        }
        if flags & 0x20 != 0 {
            i += 2;
        }
        let (tag, j, _) = descriptor(d, i)?;
        if tag != 0x04 {
            return None;
        }
        let oti = *d.get(j)?;
        if oti != 0x40 {
            return Some(format!("mp4a.{oti:02x}"));
        }
        let (tag, k, _) = descriptor(d, j + 13)?;
        let aot = if tag == 0x05 { d.get(k)? >> 3 } else { 2 };
        Some(format!("mp4a.40.{aot}"))
    };
    parse().unwrap_or_else(|| "mp4a.40.2".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_strings() {
        let mut init = b"....ftypiso6....moov....avc1....avcC".to_vec();
        init.extend_from_slice(&[1, 0x64, 0x00, 0x1f, 0xff]);
        init.extend_from_slice(b"....mp4a....");
        assert_eq!(codecs(&init), ("avc1.64001f,mp4a.40.2".to_string(), true));
        assert!(!codecs(b"....hvcC....mp4a").1);
    }

    #[test]
    fn hevc_and_aac_strings_from_their_records() {
        // HEVC Main, level 3.1, progressive-source constraint flag.
        let mut init = b"....hvc1....hvcC".to_vec();
        init.extend_from_slice(&[1, 0x01, 0x60, 0, 0, 0, 0xb0, 0, 0, 0, 0, 0, 93]);
        // AAC (object type 0x40) with an AudioSpecificConfig of HE-AAC (5).
        init.extend_from_slice(b"....esds\0\0\0\0");
        init.extend_from_slice(&[0x03, 0x19, 0, 1, 0]);
        init.extend_from_slice(&[0x04, 0x11, 0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        init.extend_from_slice(&[0x05, 0x02, 0x2b, 0x10]);
        assert_eq!(
            codecs(&init),
            ("hvc1.1.6.L93.B0,mp4a.40.5".to_string(), false)
        );
        // Descriptor sizes in the four-byte form some muxers write.
        let mut init = b"....avc1....avcC".to_vec();
        init.extend_from_slice(&[1, 0x42, 0xc0, 0x1e, 0xff]);
        init.extend_from_slice(b"....esds\0\0\0\0");
        init.extend_from_slice(&[0x03, 0x80, 0x80, 0x80, 0x22, 0, 1, 0]);
        init.extend_from_slice(&[0x04, 0x80, 0x80, 0x80, 0x14, 0x40, 0x15]);
        init.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        init.extend_from_slice(&[0x05, 0x80, 0x80, 0x80, 0x02, 0x11, 0x90]);
        assert_eq!(codecs(&init).0, "avc1.42c01e,mp4a.40.2");
    }
}
