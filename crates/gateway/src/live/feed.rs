//! What a live player needs from a recording that is still growing: the
//! initialisation segment and the most recent segments and parts (CMAF
//! chunks), in memory, so a command center sees the feed within about a
//! second. Kept while someone watches — or may be about to: a wall that
//! lists the feed counts, so a viewer who opens it starts at once — and
//! not at all otherwise, so a gateway without viewers spends no memory on
//! it (the live load benchmark's memory per stream).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

/// Complete segments kept for players joining or catching up.
const KEEP_SEGMENTS: usize = 4;
/// Stop buffering this long after the last request.
const WATCH_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct ViewPart {
    pub data: Bytes,
    pub duration: f64,
    pub independent: bool,
}

#[derive(Debug, Clone)]
pub struct ViewSegment {
    /// Media sequence number.
    pub msn: u64,
    /// Which initialisation segment (pipeline run) it belongs to.
    pub generation: u64,
    pub parts: Vec<ViewPart>,
    pub complete: bool,
}

impl ViewSegment {
    pub fn duration(&self) -> f64 {
        self.parts.iter().map(|p| p.duration).sum()
    }

    pub fn bytes(&self) -> Bytes {
        let mut v = Vec::with_capacity(self.parts.iter().map(|p| p.data.len()).sum());
        for p in &self.parts {
            v.extend_from_slice(&p.data);
        }
        v.into()
    }
}

/// A snapshot-able buffer; `changed` ticks whenever a part arrives.
#[derive(Debug)]
pub struct LiveView {
    pub inits: VecDeque<(u64, Bytes)>,
    pub generation: u64,
    pub segments: VecDeque<ViewSegment>,
    next_msn: u64,
    /// Discontinuities that left the window (EXT-X-DISCONTINUITY-SEQUENCE).
    pub discontinuity_sequence: u64,
    /// Longest segment seen, seconds: the target duration never shrinks.
    pub max_duration: f64,
    watched_until: Option<Instant>,
    pub ended: bool,
    changed: watch::Sender<u64>,
}

impl Default for LiveView {
    fn default() -> Self {
        LiveView {
            inits: VecDeque::new(),
            generation: 0,
            segments: VecDeque::new(),
            next_msn: 0,
            discontinuity_sequence: 0,
            max_duration: 0.0,
            watched_until: None,
            ended: false,
            changed: watch::channel(0).0,
        }
    }
}

impl LiveView {
    /// A viewer asked for this recording: buffer parts for a while.
    pub fn watch(&mut self) {
        self.watched_until = Some(Instant::now() + WATCH_TIMEOUT);
    }

    pub fn watched(&self) -> bool {
        self.watched_until.is_some_and(|t| Instant::now() < t)
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// A new pipeline run made a new initialisation segment.
    pub fn init(&mut self, data: &[u8]) {
        self.generation += 1;
        self.inits
            .push_back((self.generation, Bytes::copy_from_slice(data)));
        // Parts of the previous run end here.
        if let Some(s) = self.segments.back_mut() {
            s.complete = true;
        }
        self.prune_inits();
    }

    /// Keeps the initialisation segments the window still refers to, and
    /// the newest.
    fn prune_inits(&mut self) {
        let oldest = self
            .segments
            .front()
            .map_or(self.generation, |s| s.generation);
        while self.inits.len() > 1 && self.inits.front().is_some_and(|(g, _)| *g < oldest) {
            self.inits.pop_front();
        }
    }

    pub fn part(&mut self, data: &[u8], duration: f64, independent: bool) {
        if !self.watched() {
            // Nobody watches: count segments, keep no media.
            if independent {
                self.next_msn += 1;
            }
            if !self.segments.is_empty() {
                self.segments.clear();
                self.discontinuity_sequence = 0;
            }
            return;
        }
        if self.segments.is_empty() && !independent {
            // Joining mid-segment: wait for the next keyframe.
            return;
        }
        let starts = independent || self.segments.back().is_none_or(|s| s.complete);
        if starts {
            if let Some(s) = self.segments.back_mut() {
                s.complete = true;
                self.max_duration = self.max_duration.max(s.duration());
            }
            self.segments.push_back(ViewSegment {
                msn: self.next_msn,
                generation: self.generation,
                parts: Vec::new(),
                complete: false,
            });
            self.next_msn += 1;
            while self.segments.iter().filter(|s| s.complete).count() > KEEP_SEGMENTS {
                let gone = self.segments.pop_front().expect("counted");
                if self
                    .segments
                    .front()
                    .is_some_and(|s| s.generation != gone.generation)
                {
                    self.discontinuity_sequence += 1;
                }
            }
            self.prune_inits();
        }
        let seg = self.segments.back_mut().expect("a segment in progress");
        seg.parts.push(ViewPart {
            data: Bytes::copy_from_slice(data),
            duration,
            independent,
        });
        self.changed.send_modify(|v| *v += 1);
    }

    pub fn end(&mut self) {
        self.ended = true;
        if let Some(s) = self.segments.back_mut() {
            s.complete = true;
        }
        self.changed.send_modify(|v| *v += 1);
    }

    /// The position (msn, part index) of the newest part.
    pub fn head(&self) -> Option<(u64, usize)> {
        self.segments
            .back()
            .map(|s| (s.msn, s.parts.len().saturating_sub(1)))
    }

    /// Media sequence numbers in the window: (oldest, newest).
    pub fn window(&self) -> Option<(u64, u64)> {
        Some((self.segments.front()?.msn, self.segments.back()?.msn))
    }

    /// Bits per second of the complete segments in the window (the peak,
    /// as HLS BANDWIDTH wants), or `None` before the first one.
    pub fn bandwidth(&self) -> Option<u64> {
        self.segments
            .iter()
            .filter(|s| s.complete && s.duration() > 0.0)
            .map(|s| {
                let bytes: usize = s.parts.iter().map(|p| p.data.len()).sum();
                (bytes as f64 * 8.0 / s.duration()) as u64
            })
            .max()
    }

    pub fn segment(&self, msn: u64) -> Option<&ViewSegment> {
        self.segments.iter().find(|s| s.msn == msn)
    }

    pub fn init_data(&self, generation: u64) -> Option<Bytes> {
        self.inits
            .iter()
            .find(|(g, _)| *g == generation)
            .map(|(_, b)| b.clone())
    }
}

/// When a recording's bytes arrived, to measure ingest → playable latency:
/// how long the oldest bytes of a part waited between reaching the gateway
/// and the part being fetchable by players.
#[derive(Debug, Default)]
pub struct IngestClock {
    /// (file offset the bytes arrived up to, when), oldest first.
    marks: VecDeque<(u64, Instant)>,
    /// Input consumed when the previous part was made; `None` until a
    /// pipeline run has made its first part (whose wait includes start-up).
    part_from: Option<u64>,
}

/// Arrival marks kept at most (about a minute at real-time pace).
const MAX_MARKS: usize = 4096;

impl IngestClock {
    /// Bytes up to `end` (file offset) have arrived now.
    pub fn arrived(&mut self, end: u64) {
        if self.marks.back().is_some_and(|(e, _)| *e >= end) {
            return;
        }
        if self.marks.len() >= MAX_MARKS {
            self.marks.pop_front();
        }
        self.marks.push_back((end, Instant::now()));
    }

    /// A new pipeline run: its first part is not measured.
    pub fn restart(&mut self) {
        self.part_from = None;
    }

    /// A part made from input up to `input_end` is fetchable now: how long
    /// its oldest bytes (the first after the previous part's input) waited.
    pub fn part(&mut self, input_end: u64) -> Option<Duration> {
        let from = self.part_from.replace(input_end);
        let oldest = from
            .filter(|f| input_end > *f)
            .and_then(|f| self.marks.iter().find(|(e, _)| *e > f))
            .map(|(_, t)| t.elapsed());
        // Marks of bytes this part consumed are no longer needed.
        while self.marks.front().is_some_and(|(e, _)| *e <= input_end) {
            self.marks.pop_front();
        }
        oldest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_clock_measures_the_oldest_bytes_of_each_part() {
        let mut c = IngestClock::default();
        c.arrived(100);
        assert_eq!(c.part(100), None, "the first part of a run is not measured");
        c.arrived(200);
        std::thread::sleep(Duration::from_millis(20));
        c.arrived(300);
        let d = c.part(300).unwrap();
        assert!(
            d >= Duration::from_millis(20),
            "{d:?}: from the arrival of 101..200"
        );
        assert_eq!(c.marks.len(), 0, "marks up to the part's input are dropped");
        assert_eq!(c.part(300), None, "no new input, nothing measured");
        c.restart();
        c.arrived(400);
        assert_eq!(c.part(400), None);
    }

    #[test]
    fn keeps_more_segments_while_watched() {
        let mut v = LiveView::default();
        v.init(b"init");
        for i in 0..12 {
            v.part(b"a", 0.5, i % 4 == 0);
        }
        assert!(v.segments.is_empty(), "nobody watches: no media kept");
        v.watch();
        for i in 0..24 {
            v.part(b"p", 0.5, i % 4 == 0);
        }
        assert_eq!(v.segments.iter().filter(|s| s.complete).count(), 4);
        let (msn, part) = v.head().unwrap();
        assert_eq!(part, 3);
        assert_eq!(v.segment(msn).unwrap().parts.len(), 4);
        assert!((v.segment(msn - 1).unwrap().duration() - 2.0).abs() < 1e-9);
        assert_eq!(v.init_data(1).unwrap(), Bytes::from_static(b"init"));
    }
}
