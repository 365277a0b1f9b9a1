//! Receive-window autotuning for a device connection.
//!
//! QUIC's connection-level flow-control window is how many bytes a device
//! may send beyond what the gateway has read. All of it can be in flight or
//! in the gateway's memory when the gateway process dies, and the device
//! then sends it again; so it should be no larger than the path needs. What
//! the path needs is its bandwidth-delay product: a docking rack on a LAN
//! needs well under a MiB, a recorder on a 4G cell (20 Mbit/s, 100 ms)
//! about 250 KB, a rack behind a 1 Gbit/s, 20 ms WAN about 2.5 MB.
//!
//! As Linux's TCP receive autotuning does, the window starts small and
//! grows to twice the bytes received per round trip whenever that is more
//! than the window (twice, so a sender held back by the window can double
//! its rate each adjustment), up to the configured ceiling
//! (`gateway.connection_window_bytes`). It never shrinks: the round trip
//! QUIC measures leaves out how long the gateway takes to read, so a
//! window computed down from it would throttle a sender whose reads are
//! bursty (a live recording's chunks) well below what the path carries.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use quinn::VarInt;

/// The window a connection starts with, and its least: 40 Mbit/s at 100 ms,
/// and what a loopback or LAN path needs.
pub const INITIAL: u64 = 512 << 10;
/// How often the window is adjusted.
const EVERY: Duration = Duration::from_millis(100);
/// Delivery-rate samples kept: growth follows their maximum.
const SAMPLES: usize = 10;

/// The initial window for a configured ceiling.
pub fn initial(ceiling: u64) -> u64 {
    INITIAL.min(ceiling)
}

/// Follows a connection's delivery rate and round-trip time.
#[derive(Debug)]
pub struct Tuner {
    ceiling: u64,
    window: u64,
    last: Option<(Instant, u64)>,
    /// Bytes per second received in recent intervals.
    rates: VecDeque<f64>,
}

impl Tuner {
    pub fn new(ceiling: u64) -> Tuner {
        Tuner {
            ceiling,
            window: initial(ceiling),
            last: None,
            rates: VecDeque::with_capacity(SAMPLES),
        }
    }

    pub fn window(&self) -> u64 {
        self.window
    }

    /// Takes the bytes received so far on the connection and its smoothed
    /// RTT; returns the new window when it grew by more than an eighth
    /// (smaller steps are not worth a MAX_DATA frame).
    pub fn update(&mut self, now: Instant, received: u64, rtt: Duration) -> Option<u64> {
        let (at, before) = self.last.replace((now, received))?;
        let secs = now.saturating_duration_since(at).as_secs_f64();
        if secs <= 0.0 {
            return None;
        }
        if self.rates.len() == SAMPLES {
            self.rates.pop_front();
        }
        self.rates
            .push_back(received.saturating_sub(before) as f64 / secs);
        let rate = self.rates.iter().copied().fold(0.0, f64::max);
        let want = ((2.0 * rate * rtt.as_secs_f64()) as u64).min(self.ceiling);
        if want > self.window + self.window / 8 {
            self.window = want;
            Some(want)
        } else {
            None
        }
    }
}

/// Adjusts `conn`'s receive window until it closes.
pub async fn run(conn: quinn::Connection, ceiling: u64) {
    let mut tuner = Tuner::new(ceiling);
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while conn.close_reason().is_none() {
        tick.tick().await;
        let received = conn.stats().udp_rx.bytes;
        if let Some(w) = tuner.update(Instant::now(), received, conn.rtt()) {
            conn.set_receive_window(VarInt::from_u64(w).unwrap_or(VarInt::MAX));
            tracing::debug!(target: "custody::link", window = w, "receive window grown");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `rate` bytes/s for `steps` intervals at `rtt`; the last window.
    fn settle(t: &mut Tuner, start: Instant, rate: f64, rtt_ms: u64, steps: u32) -> u64 {
        let mut received = 0u64;
        let mut now = start;
        t.update(now, received, Duration::from_millis(rtt_ms));
        for _ in 0..steps {
            now += EVERY;
            received += (rate * EVERY.as_secs_f64()) as u64;
            t.update(now, received, Duration::from_millis(rtt_ms));
        }
        t.window()
    }

    #[test]
    fn the_window_grows_to_twice_the_bandwidth_delay_product() {
        let mb = 1e6;
        // (rate bytes/s, rtt ms, ceiling, expected window)
        let table = [
            // Loopback dock: 300 MB/s at 0.3 ms: the initial window holds.
            (300.0 * mb, 0.3, 64 << 20, INITIAL),
            // 4G recorder: 2.5 MB/s (20 Mbit/s) at 100 ms: 500 KB fits.
            (2.5 * mb, 100.0, 64 << 20, INITIAL),
            // 5G recorder: 12.5 MB/s at 60 ms.
            (12.5 * mb, 60.0, 64 << 20, 1_500_000),
            // WAN dock: 125 MB/s at 20 ms.
            (125.0 * mb, 20.0, 64 << 20, 5_000_000),
            // A fast long path never above the ceiling.
            (1000.0 * mb, 200.0, 8 << 20, 8 << 20),
        ];
        for (rate, rtt_ms, ceiling, want) in table {
            let mut t = Tuner::new(ceiling);
            let rtt = Duration::from_secs_f64(rtt_ms / 1000.0);
            let mut received = 0u64;
            let mut now = Instant::now();
            t.update(now, received, rtt);
            for _ in 0..20 {
                now += EVERY;
                received += (rate * EVERY.as_secs_f64()) as u64;
                t.update(now, received, rtt);
            }
            let got = t.window();
            let err = got.abs_diff(want) as f64 / want as f64;
            assert!(
                err < 0.02,
                "{rate} B/s at {rtt_ms} ms: window {got}, want {want}"
            );
        }
    }

    #[test]
    fn the_window_never_shrinks() {
        let mut t = Tuner::new(64 << 20);
        let w = settle(&mut t, Instant::now(), 125e6, 20, 20);
        assert!(w > INITIAL);
        let (at, received) = t.last.unwrap();
        for i in 1..=30 {
            assert_eq!(
                t.update(at + EVERY * i, received, Duration::from_millis(20)),
                None
            );
        }
        assert_eq!(t.window(), w);
    }

    #[test]
    fn small_steps_are_not_sent_and_tiny_ceilings_hold() {
        let mut t = Tuner::new(64 << 20);
        let w = settle(&mut t, Instant::now(), 12.5e6, 60, 20);
        let (at, received) = t.last.unwrap();
        // 5 % more: not worth a new window.
        let more = received + (12.5e6 * 1.05 * EVERY.as_secs_f64()) as u64;
        assert_eq!(t.update(at + EVERY, more, Duration::from_millis(60)), None);
        assert_eq!(t.window(), w);
        // A ceiling below the initial window is the window, whatever the rate.
        let mut tiny = Tuner::new(64 << 10);
        assert_eq!(settle(&mut tiny, Instant::now(), 100e6, 100, 5), 64 << 10);
        assert_eq!(initial(64 << 10), 64 << 10);
        assert_eq!(initial(64 << 20), INITIAL);
    }
}
