//! Packets an SRT device's stream lost on the way, recorded as gaps. SRT
//! drops what does not arrive within its latency and delivers the rest as
//! if nothing happened; the MPEG-TS continuity counters show where
//! (`custody_media::ts_continuity`). The first loss is recorded at once,
//! later ones at most once per [`GAP_EVERY`], each gap counting the holes
//! since the one before (a bad link loses packets every second, and every
//! gap restarts the recording's remux).

use std::time::{Duration, Instant};

use custody_media::ts_continuity::TsContinuity;

/// The shortest time between two loss gaps of one session.
pub const GAP_EVERY: Duration = Duration::from_secs(10);

/// The gap kind (`docs/manifest.md` §10.6).
pub const KIND: &str = "transport-loss";

/// The protocol whose losses are followed (the metrics' label).
pub const PROTOCOL: &str = "srt";

/// Follows one session's stream.
pub struct LossWatch {
    ts: TsContinuity,
    latency_ms: u32,
    pending: Option<Losses>,
    last_gap: Option<Instant>,
}

/// Holes not yet recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Losses {
    first_offset: u64,
    last_offset: u64,
    holes: u64,
    packets: u64,
    resyncs: u64,
}

impl LossWatch {
    /// A session whose stream goes on at `offset`.
    pub fn new(offset: u64, latency_ms: u32) -> LossWatch {
        LossWatch {
            ts: TsContinuity::new(offset),
            latency_ms,
            pending: None,
            last_gap: None,
        }
    }

    /// Takes the next bytes the device sent.
    pub fn feed(&mut self, bytes: &[u8]) {
        for h in self.ts.feed(bytes) {
            let l = self.pending.get_or_insert(Losses {
                first_offset: h.offset,
                last_offset: h.offset,
                holes: 0,
                packets: 0,
                resyncs: 0,
            });
            l.last_offset = h.offset;
            l.holes += 1;
            l.packets += u64::from(h.missing);
            if h.pid.is_none() {
                l.resyncs += 1;
            }
        }
    }

    /// The gap to record now, if one is due at `now`: its reason and how
    /// many packets (at least) it stands for.
    pub fn due(&mut self, now: Instant) -> Option<(String, u64)> {
        self.pending.as_ref()?;
        if self
            .last_gap
            .is_some_and(|at| now.duration_since(at) < GAP_EVERY)
        {
            return None;
        }
        self.last_gap = Some(now);
        self.flush()
    }

    /// The gap for every hole not yet recorded (the session ends): its
    /// reason and how many packets (at least) it stands for.
    pub fn flush(&mut self) -> Option<(String, u64)> {
        let l = self.pending.take()?;
        let mut why = format!(
            "SRT delivered the stream with MPEG-TS packets missing: {} hole{} between stream \
             offsets {} and {}, at least {} packet{} of 188 bytes (SRT drops what does not \
             arrive within its latency: at least {} ms, the larger of both sides')",
            l.holes,
            if l.holes == 1 { "" } else { "s" },
            l.first_offset,
            l.last_offset,
            l.packets,
            if l.packets == 1 { "" } else { "s" },
            self.latency_ms
        );
        if l.resyncs > 0 {
            why.push_str(&format!(
                "; {} place{} where the bytes were not whole TS packets",
                l.resyncs,
                if l.resyncs == 1 { "" } else { "s" }
            ));
        }
        Some((why, l.packets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(pid: u16, cc: u8) -> Vec<u8> {
        let mut p = vec![0xffu8; 188];
        p[0] = 0x47;
        p[1] = (pid >> 8) as u8;
        p[2] = pid as u8;
        p[3] = 0x10 | cc;
        p
    }

    #[test]
    fn the_first_loss_is_a_gap_at_once_later_ones_are_gathered() {
        let t0 = Instant::now();
        let mut w = LossWatch::new(0, 120);
        w.feed(&packet(256, 0));
        assert_eq!(w.due(t0), None, "no loss, no gap");
        w.feed(&packet(256, 3));
        let (first, packets) = w.due(t0).unwrap();
        assert_eq!(packets, 2);
        assert!(
            first.contains("1 hole between stream offsets 188 and 188, at least 2 packets"),
            "{first}"
        );
        assert!(first.contains("latency: at least 120 ms"), "{first}");
        w.feed(&packet(256, 5));
        w.feed(&packet(256, 9));
        assert_eq!(w.due(t0 + Duration::from_secs(3)), None, "too soon");
        let (later, packets) = w.due(t0 + GAP_EVERY).unwrap();
        assert_eq!(packets, 4);
        assert!(
            later.contains("2 holes between stream offsets 376 and 564, at least 4 packets"),
            "{later}"
        );
        assert_eq!(w.flush(), None, "nothing left");
        w.feed(&packet(256, 12));
        assert!(w.flush().unwrap().0.contains("1 hole"));
    }
}
