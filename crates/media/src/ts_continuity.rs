//! Where an MPEG-TS byte stream lost packets on the way, from its own
//! continuity counters. SRT gives up on packets that miss its latency
//! window (too-late packet drop) and delivers the rest without saying so;
//! GStreamer 1.22 does not report those drops either. Each TS packet with a
//! payload carries a 4-bit counter per PID, so a jump in it is a hole in
//! what arrived — found at its exact byte offset, without decoding.

/// The size of an MPEG-TS packet.
const PACKET: usize = 188;
const SYNC: u8 = 0x47;
/// The null packets' PID: padding, not counted.
const NULL_PID: u16 = 0x1fff;
/// No counter seen yet for a PID (counters are 0–15).
const UNSEEN: u8 = 0xff;

/// A hole found in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hole {
    /// Stream offset of the first packet after the hole.
    pub offset: u64,
    /// The PID whose counter jumped; `None`: the 188-byte packet rhythm
    /// broke (bytes that are not whole TS packets were lost or came).
    pub pid: Option<u16>,
    /// Packets of that PID missing, modulo 16 (the counter's range): at
    /// least this many.
    pub missing: u8,
}

/// Follows one stream's continuity counters, fed in pieces of any size.
#[derive(Debug)]
pub struct TsContinuity {
    /// Bytes of a packet not yet complete.
    carry: Vec<u8>,
    /// Stream offset of the next byte fed.
    offset: u64,
    /// The last counter seen per PID; [`UNSEEN`] for none.
    last: Box<[u8; 8192]>,
    /// Looking for the packet rhythm again after it broke.
    lost_sync: bool,
}

impl TsContinuity {
    /// A stream whose next byte is at `offset`.
    pub fn new(offset: u64) -> TsContinuity {
        TsContinuity {
            carry: Vec::with_capacity(PACKET),
            offset,
            last: Box::new([UNSEEN; 8192]),
            lost_sync: false,
        }
    }

    /// Takes the next bytes of the stream; returns the holes they show.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<Hole> {
        let mut holes = Vec::new();
        while !bytes.is_empty() {
            if !self.carry.is_empty() {
                // Complete the packet begun in the last piece.
                let take = (PACKET - self.carry.len()).min(bytes.len());
                self.carry.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if self.carry.len() < PACKET {
                    break;
                }
                let packet = std::mem::take(&mut self.carry);
                self.packet(&packet, &mut holes);
                self.carry = packet;
                self.carry.clear();
                continue;
            }
            if bytes[0] != SYNC {
                self.resync(&mut bytes, &mut holes);
                continue;
            }
            // Whole packets in place, as SRT and muxers hand them over.
            let whole = bytes.len() / PACKET * PACKET;
            let mut at = 0;
            while at < whole && bytes[at] == SYNC {
                self.packet(&bytes[at..at + PACKET], &mut holes);
                at += PACKET;
            }
            if at < whole {
                bytes = &bytes[at..];
                continue;
            }
            self.carry.extend_from_slice(&bytes[whole..]);
            break;
        }
        holes
    }

    /// The packet rhythm broke: skips to where two sync bytes 188 apart
    /// (or one at the end of the piece) show it again; one hole, and the
    /// counters start again.
    fn resync(&mut self, bytes: &mut &[u8], holes: &mut Vec<Hole>) {
        if !self.lost_sync {
            self.lost_sync = true;
            holes.push(Hole {
                offset: self.offset,
                pid: None,
                missing: 0,
            });
        }
        self.last.fill(UNSEEN);
        let b = *bytes;
        let skip = (1..b.len())
            .find(|&i| b[i] == SYNC && b.get(i + PACKET).is_none_or(|&n| n == SYNC))
            .unwrap_or(b.len());
        self.offset += skip as u64;
        *bytes = &b[skip..];
    }

    fn packet(&mut self, p: &[u8], holes: &mut Vec<Hole>) {
        let start = self.offset;
        self.offset += PACKET as u64;
        self.lost_sync = false;
        if let Some(hole) = check(&mut self.last, p, start) {
            holes.push(hole);
        }
    }
}

/// Checks one whole packet against the counters seen so far.
fn check(last: &mut [u8; 8192], p: &[u8], offset: u64) -> Option<Hole> {
    let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
    if pid == NULL_PID {
        return None;
    }
    let control = (p[3] >> 4) & 0x3;
    let cc = p[3] & 0x0f;
    // An adaptation field's discontinuity indicator: the counter may
    // start anywhere.
    let seen = &mut last[usize::from(pid)];
    if control & 0x2 != 0 && p[4] > 0 && p[5] & 0x80 != 0 {
        *seen = cc;
        return None;
    }
    // Only packets with a payload advance the counter.
    if control & 0x1 == 0 {
        return None;
    }
    let hole = match *seen {
        UNSEEN => None,
        // A duplicate packet repeats its counter.
        before if before == cc => None,
        before => {
            let expected = (before + 1) & 0x0f;
            (cc != expected).then(|| Hole {
                offset,
                pid: Some(pid),
                missing: cc.wrapping_sub(expected) & 0x0f,
            })
        }
    };
    *seen = cc;
    hole
}

/// Where in `bytes` — whole TS packets, as SRT and the RTSP muxer hand
/// them over — the first video keyframe begins: a packet that starts a PES
/// packet of a video stream (stream id 0xE0–0xEF) with the adaptation
/// field's random access indicator set, as encoders' and GStreamer's
/// muxers mark keyframes. `None` if there is none, or the bytes are not
/// whole packets.
pub fn first_video_keyframe(bytes: &[u8]) -> Option<usize> {
    if !bytes.len().is_multiple_of(PACKET) {
        return None;
    }
    bytes
        .chunks_exact(PACKET)
        .position(|p| {
            let starts_unit = p[1] & 0x40 != 0;
            let adaptation = (p[3] >> 4) & 0x2 != 0;
            if p[0] != SYNC || !starts_unit || !adaptation || p[4] == 0 || p[5] & 0x40 == 0 {
                return false;
            }
            let payload = 5 + usize::from(p[4]);
            p.get(payload..payload + 4)
                .is_some_and(|h| h[..3] == [0, 0, 1] && (0xe0..=0xef).contains(&h[3]))
        })
        .map(|i| i * PACKET)
}

/// Where to begin a new recording in `bytes`: at the first video keyframe
/// ([`first_video_keyframe`]), moved back over the PAT and PMT packets
/// right before it — muxers (ffmpeg's among them) write the tables there,
/// and a recording that begins with them is demuxed from its first byte.
pub fn keyframe_cut(bytes: &[u8]) -> Option<usize> {
    let mut at = first_video_keyframe(bytes)?;
    while at >= PACKET && is_table_start(&bytes[at - PACKET..at]) {
        at -= PACKET;
    }
    Some(at)
}

/// Whether packet `p` begins a PAT (table 0x00) or PMT (table 0x02).
fn is_table_start(p: &[u8]) -> bool {
    if p[0] != SYNC || p[1] & 0x40 == 0 {
        return false;
    }
    let control = (p[3] >> 4) & 0x3;
    if control & 0x1 == 0 {
        return false;
    }
    let payload = if control & 0x2 != 0 {
        5 + usize::from(p[4])
    } else {
        4
    };
    let Some(&pointer) = p.get(payload) else {
        return false;
    };
    matches!(p.get(payload + 1 + usize::from(pointer)), Some(0x00 | 0x02))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TS packet of `pid` with counter `cc` and a payload.
    fn packet(pid: u16, cc: u8) -> Vec<u8> {
        let mut p = vec![0xffu8; PACKET];
        p[0] = SYNC;
        p[1] = (pid >> 8) as u8 & 0x1f;
        p[2] = pid as u8;
        p[3] = 0x10 | (cc & 0x0f);
        p
    }

    fn stream(packets: &[(u16, u8)]) -> Vec<u8> {
        packets
            .iter()
            .flat_map(|&(pid, cc)| packet(pid, cc))
            .collect()
    }

    #[test]
    fn an_unbroken_stream_has_no_hole_whatever_the_pieces() {
        let s = stream(&[(256, 14), (257, 3), (256, 15), (256, 0), (257, 4), (256, 1)]);
        for piece in [1, 7, 188, 200, 1316] {
            let mut c = TsContinuity::new(0);
            let holes: Vec<Hole> = s.chunks(piece).flat_map(|b| c.feed(b)).collect();
            assert!(holes.is_empty(), "pieces of {piece}: {holes:?}");
        }
    }

    #[test]
    fn missing_packets_are_found_at_their_offset() {
        // Seven packets (one SRT payload) of PID 256 dropped after cc 2.
        let s = stream(&[(256, 1), (256, 2), (257, 9), (256, 10), (257, 10)]);
        let mut c = TsContinuity::new(1000);
        let holes = c.feed(&s);
        assert_eq!(
            holes,
            [Hole {
                offset: 1000 + 3 * 188,
                pid: Some(256),
                missing: 7,
            }]
        );
    }

    #[test]
    fn duplicates_null_packets_and_signalled_discontinuities_are_not_holes() {
        let mut s = stream(&[(256, 5), (256, 5), (NULL_PID, 9), (256, 6)]);
        // An adaptation field with the discontinuity indicator, then a
        // counter that starts elsewhere.
        let mut d = packet(256, 12);
        d[3] = 0x30 | 12;
        d[4] = 1;
        d[5] = 0x80;
        s.extend(d);
        s.extend(packet(256, 13));
        // Adaptation field only: the counter does not advance.
        let mut a = packet(256, 13);
        a[3] = 0x20 | 13;
        a[4] = 0;
        s.extend(a);
        s.extend(packet(256, 14));
        assert!(TsContinuity::new(0).feed(&s).is_empty());
    }

    /// A packet starting a PES packet of `stream_id`, a keyframe or not.
    fn pes_start(pid: u16, stream_id: u8, keyframe: bool) -> Vec<u8> {
        let mut p = packet(pid, 0);
        p[1] |= 0x40;
        p[3] = 0x30;
        p[4] = 1;
        p[5] = if keyframe { 0x40 } else { 0 };
        p[6..10].copy_from_slice(&[0, 0, 1, stream_id]);
        p
    }

    #[test]
    fn the_first_video_keyframe_is_found_and_audio_ones_are_not() {
        let mut s = packet(256, 0);
        s.extend(pes_start(257, 0xc0, true)); // audio: every frame a key
        s.extend(pes_start(256, 0xe0, false)); // video, not a keyframe
        s.extend(pes_start(256, 0xe0, true));
        s.extend(packet(256, 1));
        assert_eq!(first_video_keyframe(&s), Some(3 * PACKET));
        assert_eq!(first_video_keyframe(&s[..3 * PACKET]), None);
        assert_eq!(first_video_keyframe(&s[1..]), None, "not whole packets");
    }

    /// A packet beginning table `table_id` (pointer field 0).
    fn table(pid: u16, table_id: u8) -> Vec<u8> {
        let mut p = packet(pid, 0);
        p[1] |= 0x40;
        p[4] = 0;
        p[5] = table_id;
        p
    }

    #[test]
    fn a_cut_takes_the_tables_before_the_keyframe_along() {
        let mut s = packet(257, 0);
        s.extend(table(0, 0x00));
        s.extend(table(4096, 0x02));
        s.extend(pes_start(256, 0xe0, true));
        assert_eq!(keyframe_cut(&s), Some(PACKET));
        // Without tables before it, the keyframe itself.
        let mut t = packet(257, 0);
        t.extend(pes_start(256, 0xe0, true));
        assert_eq!(keyframe_cut(&t), Some(PACKET));
        // A keyframe at the start of the bytes.
        assert_eq!(keyframe_cut(&pes_start(256, 0xe0, true)), Some(0));
    }

    #[test]
    fn a_sync_byte_inside_a_payload_is_not_taken_for_a_packet() {
        // Garbage with 0x47 in it between two runs of packets: one hole,
        // no invented counters.
        let mut s = stream(&[(256, 1), (256, 2)]);
        let mut junk = vec![0u8; 100];
        junk[10] = SYNC;
        junk[40] = SYNC;
        s.extend(junk);
        s.extend(stream(&[(256, 9), (256, 10), (257, 0)]));
        let holes = TsContinuity::new(0).feed(&s);
        assert_eq!(
            holes,
            [Hole {
                offset: 2 * 188,
                pid: None,
                missing: 0,
            }]
        );
    }

    #[test]
    fn broken_packet_rhythm_is_one_hole_and_counting_starts_again() {
        let mut s = stream(&[(256, 1)]);
        s.extend_from_slice(&[0u8; 50]);
        s.extend(stream(&[(256, 9), (256, 10)]));
        let holes = TsContinuity::new(0).feed(&s);
        assert_eq!(
            holes,
            [Hole {
                offset: 188,
                pid: None,
                missing: 0,
            }]
        );
    }
}
