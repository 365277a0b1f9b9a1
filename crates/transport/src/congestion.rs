//! A congestion controller for lossy radio uplinks (`custody-bbr`).
//!
//! quinn's loss-based controllers (Cubic, NewReno) shrink the window on
//! every loss, so the random loss of a radio link — which is not
//! congestion — holds them far below the link's capacity: with 2 % loss
//! at 100 ms their throughput is about MSS / RTT × 1.22 / √p ≈ 0.8 Mbit/s
//! (docs/reliability.md has the measurements). quinn 0.11's BBR does not
//! measure a delivery rate: its bandwidth sample is one packet's bytes over
//! the time since the previous batch of acks (the acks of a batch share one
//! time, so the others give none), or the last transmit's bytes over the
//! time since the one before. Measured on the link emulator its window
//! swung between 6 kB and 16 MB, and a dock lost 50–70 % of its packets at
//! the bottleneck's queue: it keeps up by flooding.
//!
//! This controller follows BBR's model (Cardwell et al., "BBR:
//! Congestion-Based Congestion Control", ACM Queue 2016): the bottleneck
//! bandwidth is the windowed maximum of delivery-rate samples
//! (draft-cheng-iccrg-delivery-rate-estimation: bytes delivered between a
//! packet's send and its ack, over the longer of the send and ack
//! intervals), the round-trip propagation time is the minimum RTT, and the
//! window is `CWND_GAIN` × their product plus the ack aggregation measured.
//! A lost packet does not change the window; what does:
//!
//! - a standing queue: when a round's smallest RTT is more than a quarter
//!   of the minimum above it, the window holds one BDP for a round, so the
//!   queue drains (a delay signal, which random loss does not trigger);
//! - persistent congestion (everything lost for several PTOs: the link is
//!   down): the window restarts at its minimum and grows back to the
//!   model's by what each ack delivers; the model is kept.
//!
//! Startup doubles the window each round (up to 2.885 × the BDP measured so
//! far) until the delivery rate stops growing or a queue starts to build
//! (HyStart++'s delay rule, RFC 9406). quinn paces at 1.25 × window /
//! smoothed RTT, so the window also sets the rate.
//!
//! What it leaves out, and why: BBR's ProbeRTT (draining every 10 s to
//! re-measure the minimum RTT) — the minimum is quinn's for the whole path,
//! right unless the path's propagation delay grows without a new path
//! (quinn starts a new controller when the peer's address really changes);
//! pacing-gain cycling — quinn paces from the window, and a window above
//! the BDP already lets the delivery rate, and so the estimate, grow when
//! the bottleneck frees up.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::congestion::{Controller, ControllerFactory, ControllerMetrics};

/// In-flight bytes as a multiple of the estimated bandwidth-delay product,
/// on top of the ack aggregation measured: enough to keep the bottleneck
/// busy and to see more bandwidth when there is more, little enough to
/// keep its queue short (on the link emulator, while this was developed, a
/// gain of 2, as in BBR, had 20–30 % of the packets dropped at a 100 ms
/// queue; with 1.25 the queue drops 0.5–2 % in docs/reliability.md's runs).
const CWND_GAIN: f64 = 1.25;
/// Startup's window gain (2/ln 2, as BBR's): the window may double each
/// round while the delivery rate keeps up, and no further once it stops.
const STARTUP_GAIN: f64 = 2.885;
/// A round's minimum RTT this far above the path's means a standing queue
/// (the bottleneck is full): Startup ends (HyStart++, RFC 9406: 1/8 of the
/// RTT, 4–16 ms) and the window drains to one BDP for a round when the
/// queue is above a quarter of the RTT (at least 10 ms).
const STARTUP_QUEUE: (f64, Duration, Duration) =
    (0.125, Duration::from_millis(4), Duration::from_millis(16));
const STANDING_QUEUE: (f64, Duration) = (0.25, Duration::from_millis(10));
/// The least round trip the window is computed from. On a LAN or loopback
/// the path's minimum RTT is tens of microseconds, while the receiver's
/// processing and delayed acks make the real round trip milliseconds: a
/// window of gain × bandwidth × min RTT then holds less than one real round
/// trip, the delivery rate it allows falls, the estimate with it, and the
/// window again — a dock into a gateway on loopback ran at half the bare
/// QUIC rate (docs/performance.md). Below this RTT the window covers this
/// long at the estimated bandwidth instead (a few milliseconds of queue at
/// most on such a path); radio links, with RTTs of 20 ms and more, are not
/// affected.
const MIN_WINDOW_RTT: Duration = Duration::from_millis(5);
/// RTT samples a round needs for its minimum to say anything.
const ROUND_SAMPLES: u32 = 8;
/// The bandwidth estimate is the best sample of the last this many rounds.
const BW_WINDOW_ROUNDS: u64 = 10;
/// Startup ends when the estimate grew less than 25 % in 3 rounds.
const STARTUP_GROWTH: f64 = 1.25;
const STARTUP_ROUNDS: u32 = 3;
/// Send records kept for rate samples (one per transmit batch); beyond this
/// the oldest are dropped (their acks then give no sample).
const MAX_RECORDS: usize = 1 << 16;

/// The factory quinn builds a controller per connection (and path) from.
#[derive(Debug, Clone)]
pub struct CustodyBbrConfig {
    initial_window: u64,
}

impl Default for CustodyBbrConfig {
    fn default() -> Self {
        // RFC 9002 §7.2: min(10 × max datagram, max(2 × max datagram, 14720)).
        CustodyBbrConfig {
            initial_window: 14_720,
        }
    }
}

impl ControllerFactory for CustodyBbrConfig {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        Box::new(CustodyBbr {
            model: Model::new(self.initial_window, current_mtu as u64, now),
            initial_window: self.initial_window,
        })
    }
}

/// quinn's side of the controller: passes events to the [`Model`].
#[derive(Debug, Clone)]
pub struct CustodyBbr {
    model: Model,
    initial_window: u64,
}

impl Controller for CustodyBbr {
    fn on_sent(&mut self, now: Instant, bytes: u64, _last_packet_number: u64) {
        self.model.on_sent(now, bytes);
    }

    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        _app_limited: bool,
        rtt: &quinn_proto::RttEstimator,
    ) {
        self.model.on_ack(now, sent, bytes, rtt.min());
    }

    fn on_end_acks(
        &mut self,
        now: Instant,
        _in_flight: u64,
        app_limited: bool,
        _largest_packet_num_acked: Option<u64>,
    ) {
        self.model.on_end_acks(now, app_limited);
    }

    fn on_congestion_event(
        &mut self,
        _now: Instant,
        _sent: Instant,
        is_persistent_congestion: bool,
        _lost_bytes: u64,
    ) {
        if is_persistent_congestion {
            self.model.on_link_down();
        }
    }

    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.model.set_mtu(new_mtu as u64);
    }

    fn window(&self) -> u64 {
        self.model.cwnd()
    }

    fn metrics(&self) -> ControllerMetrics {
        let mut m = ControllerMetrics::default();
        m.congestion_window = self.model.cwnd();
        m.pacing_rate = Some(self.model.bandwidth() * 8);
        m
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(self.clone())
    }

    fn initial_window(&self) -> u64 {
        self.initial_window
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Doubling the window each round until the bandwidth stops growing.
    Startup,
    /// Keeping the model's window.
    Steady,
}

/// What the sender knew when it sent a batch of packets, to measure the
/// delivery rate when one of them is acknowledged.
#[derive(Debug, Clone, Copy)]
struct SendRecord {
    time: Instant,
    delivered: u64,
    delivered_time: Instant,
    first_sent_time: Instant,
    app_limited: bool,
}

/// The delivery-rate sample being built from one batch of acks: the one
/// of the most recently sent packet counts.
#[derive(Debug, Clone, Copy)]
struct Sample {
    prior_delivered: u64,
    interval: Duration,
    app_limited: bool,
}

/// A windowed maximum over rounds: the best value of the last `window`
/// rounds, kept as a decreasing run of (round, value).
#[derive(Debug, Clone, Default)]
pub struct MaxFilter {
    window: u64,
    best: VecDeque<(u64, u64)>,
}

impl MaxFilter {
    pub fn new(window: u64) -> MaxFilter {
        MaxFilter {
            window,
            best: VecDeque::new(),
        }
    }

    pub fn get(&self) -> u64 {
        self.best.front().map(|b| b.1).unwrap_or(0)
    }

    /// Adds a value seen in `round`; values older than the window expire
    /// (only when a new one comes: without samples the estimate stays).
    pub fn update(&mut self, round: u64, value: u64) {
        while self.best.back().is_some_and(|b| b.1 <= value) {
            self.best.pop_back();
        }
        if self.best.back().is_none_or(|b| b.0 != round) {
            self.best.push_back((round, value));
        }
        while self
            .best
            .front()
            .is_some_and(|b| b.0 + self.window <= round)
        {
            self.best.pop_front();
        }
    }
}

/// The controller's model of the path, on the times it is given.
#[derive(Debug, Clone)]
pub struct Model {
    mtu: u64,
    init_cwnd: u64,
    cwnd: u64,
    mode: Mode,
    min_rtt: Duration,
    bw: MaxFilter,
    /// Bytes acknowledged so far and when the last was.
    delivered: u64,
    delivered_time: Instant,
    /// Send time of the newest packet whose ack produced a sample.
    first_sent_time: Instant,
    records: VecDeque<SendRecord>,
    app_limited: bool,
    sample: Option<Sample>,
    acked_in_batch: u64,
    round: u64,
    next_round_delivered: u64,
    round_start: bool,
    full_bw: u64,
    rounds_without_growth: u32,
    /// Ack aggregation: the current epoch and the largest excess lately.
    epoch_start: Instant,
    epoch_bytes: u64,
    extra_acked: MaxFilter,
    /// The current round's smallest RTT sample and how many it had.
    round_min_rtt: Duration,
    round_rtt_samples: u32,
    /// The last round showed a standing queue: hold one BDP for a round.
    draining: bool,
}

impl Model {
    pub fn new(init_cwnd: u64, mtu: u64, now: Instant) -> Model {
        Model {
            mtu,
            init_cwnd,
            cwnd: init_cwnd,
            mode: Mode::Startup,
            min_rtt: Duration::ZERO,
            bw: MaxFilter::new(BW_WINDOW_ROUNDS),
            delivered: 0,
            delivered_time: now,
            first_sent_time: now,
            records: VecDeque::new(),
            app_limited: false,
            sample: None,
            acked_in_batch: 0,
            round: 0,
            next_round_delivered: 0,
            round_start: false,
            full_bw: 0,
            rounds_without_growth: 0,
            epoch_start: now,
            epoch_bytes: 0,
            extra_acked: MaxFilter::new(BW_WINDOW_ROUNDS),
            round_min_rtt: Duration::MAX,
            round_rtt_samples: 0,
            draining: false,
        }
    }

    pub fn cwnd(&self) -> u64 {
        self.cwnd
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Estimated bottleneck bandwidth, bytes per second.
    pub fn bandwidth(&self) -> u64 {
        self.bw.get()
    }

    fn min_cwnd(&self) -> u64 {
        4 * self.mtu
    }

    pub fn set_mtu(&mut self, mtu: u64) {
        self.mtu = mtu;
        self.cwnd = self.cwnd.max(self.min_cwnd());
    }

    pub fn on_sent(&mut self, now: Instant, _bytes: u64) {
        if self.records.is_empty() {
            // Nothing in flight: the interval starts now, not at the last
            // ack before an idle period.
            self.first_sent_time = now;
            self.delivered_time = now;
        }
        if self.records.len() >= MAX_RECORDS {
            self.records.pop_front();
        }
        self.records.push_back(SendRecord {
            time: now,
            delivered: self.delivered,
            delivered_time: self.delivered_time,
            first_sent_time: self.first_sent_time,
            app_limited: self.app_limited,
        });
    }

    /// One packet sent at `sent` was acknowledged at `now`.
    pub fn on_ack(&mut self, now: Instant, sent: Instant, bytes: u64, min_rtt: Duration) {
        self.min_rtt = min_rtt;
        self.round_min_rtt = self.round_min_rtt.min(now.saturating_duration_since(sent));
        self.round_rtt_samples += 1;
        self.delivered += bytes;
        self.delivered_time = now;
        self.acked_in_batch += bytes;
        // Records of earlier batches will give no newer sample: their
        // packets were acknowledged or lost.
        while self.records.front().is_some_and(|r| r.time < sent) {
            self.records.pop_front();
        }
        let Some(r) = self.records.front().copied().filter(|r| r.time == sent) else {
            return;
        };
        if self.sample.is_none_or(|s| r.delivered >= s.prior_delivered) {
            let send_elapsed = r.time.saturating_duration_since(r.first_sent_time);
            let ack_elapsed = now.saturating_duration_since(r.delivered_time);
            self.sample = Some(Sample {
                prior_delivered: r.delivered,
                interval: send_elapsed.max(ack_elapsed),
                app_limited: r.app_limited,
            });
            self.first_sent_time = r.time;
        }
        if r.delivered >= self.next_round_delivered {
            self.next_round_delivered = self.delivered;
            self.round += 1;
            self.round_start = true;
        }
    }

    /// A batch of acks ended; `app_limited`: the sender had nothing more to
    /// send before it.
    pub fn on_end_acks(&mut self, now: Instant, app_limited: bool) {
        self.app_limited = app_limited;
        let mut sample_app_limited = app_limited;
        if let Some(s) = self.sample.take() {
            sample_app_limited = s.app_limited;
            // An interval shorter than the path's round trip measures a
            // burst of acks, not the bottleneck.
            if !s.interval.is_zero() && s.interval >= self.min_rtt {
                let bytes = self.delivered - s.prior_delivered;
                let rate = (bytes as f64 / s.interval.as_secs_f64()) as u64;
                if !s.app_limited || rate >= self.bw.get() {
                    self.bw.update(self.round, rate);
                }
            }
        }
        if self.round_start {
            let queue = self.end_round();
            match self.mode {
                Mode::Startup if !sample_app_limited => self.check_startup_done(queue),
                Mode::Startup => {}
                Mode::Steady => self.draining = queue.is_some_and(|q| q > self.standing_limit()),
            }
        }
        self.update_ack_aggregation(now);
        self.round_start = false;
        self.update_cwnd(app_limited);
        self.acked_in_batch = 0;
    }

    /// Closes the round's RTT record: the queue its minimum RTT shows, if
    /// it had enough samples.
    fn end_round(&mut self) -> Option<Duration> {
        let queue = (self.round_rtt_samples >= ROUND_SAMPLES)
            .then(|| self.round_min_rtt.saturating_sub(self.min_rtt));
        self.round_min_rtt = Duration::MAX;
        self.round_rtt_samples = 0;
        queue
    }

    fn standing_limit(&self) -> Duration {
        self.min_rtt.mul_f64(STANDING_QUEUE.0).max(STANDING_QUEUE.1)
    }

    /// Startup ends when the bottleneck's queue starts to fill, or when
    /// the bandwidth stopped growing.
    fn check_startup_done(&mut self, queue: Option<Duration>) {
        let (share, lo, hi) = STARTUP_QUEUE;
        if queue.is_some_and(|q| q >= self.min_rtt.mul_f64(share).clamp(lo, hi)) {
            self.mode = Mode::Steady;
            return;
        }
        let bw = self.bw.get();
        if bw as f64 >= self.full_bw as f64 * STARTUP_GROWTH {
            self.full_bw = bw;
            self.rounds_without_growth = 0;
            return;
        }
        self.rounds_without_growth += 1;
        if self.rounds_without_growth >= STARTUP_ROUNDS {
            self.mode = Mode::Steady;
        }
    }

    /// Acks that come in bursts (delayed and stretched acks, a radio
    /// link's jitter) deliver more than the bandwidth in a short time and
    /// then nothing: the window must hold what is sent meanwhile. Measured
    /// as in BBR: bytes acked since the acks last fell behind the
    /// estimated bandwidth, beyond what that bandwidth explains.
    fn update_ack_aggregation(&mut self, now: Instant) {
        let bw = self.bw.get() as f64;
        let expected = bw
            * now
                .saturating_duration_since(self.epoch_start)
                .as_secs_f64();
        if self.epoch_bytes as f64 <= expected || bw == 0.0 {
            self.epoch_start = now;
            self.epoch_bytes = self.acked_in_batch;
            return;
        }
        self.epoch_bytes += self.acked_in_batch;
        // At most 100 ms at the estimated bandwidth, as in Linux BBR.
        let extra = (self.epoch_bytes as f64 - expected).min(bw * 0.1);
        self.extra_acked.update(self.round, extra as u64);
    }

    /// The window the model asks for: gain × bandwidth × min RTT, plus the
    /// bursts of acks seen lately; one BDP while a standing queue drains.
    pub fn target_cwnd(&self) -> u64 {
        let bdp = self.bw.get() as f64 * self.min_rtt.max(MIN_WINDOW_RTT).as_secs_f64();
        if bdp == 0.0 {
            return self.init_cwnd;
        }
        let target = match (self.mode, self.draining) {
            (Mode::Startup, _) => STARTUP_GAIN * bdp + self.extra_acked.get() as f64,
            (Mode::Steady, true) => bdp,
            (Mode::Steady, false) => CWND_GAIN * bdp + self.extra_acked.get() as f64,
        };
        (target as u64).max(self.min_cwnd())
    }

    fn update_cwnd(&mut self, app_limited: bool) {
        // The window grows by what was delivered, up to the model's; in
        // Startup only while it is what limits the sender (as quinn's own
        // controllers do).
        if !(self.mode == Mode::Startup && app_limited) {
            self.cwnd = (self.cwnd + self.acked_in_batch).min(self.target_cwnd());
        }
        self.cwnd = self.cwnd.max(self.min_cwnd());
    }

    /// Everything sent for several PTOs was lost: the link went down. The
    /// window restarts small and grows back to the model's by what each
    /// ack delivers; the model (bandwidth, min RTT) is kept.
    pub fn on_link_down(&mut self) {
        self.cwnd = self.min_cwnd();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_max_filter_keeps_the_best_of_its_window() {
        let mut f = MaxFilter::new(3);
        f.update(1, 10);
        f.update(2, 5);
        assert_eq!(f.get(), 10);
        f.update(3, 7);
        assert_eq!(f.get(), 10);
        // Round 4: the 10 of round 1 has left the window; 7 is the best.
        f.update(4, 1);
        assert_eq!(f.get(), 7);
        f.update(4, 20);
        assert_eq!(f.get(), 20);
        // Without new samples nothing expires.
        assert_eq!(f.get(), 20);
        assert!(f.best.len() <= 4);
    }

    /// What the simulation needs of a controller.
    trait Sender {
        fn cwnd(&self) -> u64;
        fn sent(&mut self, now: Instant, bytes: u64);
        fn acked(&mut self, now: Instant, sent: Instant, bytes: u64, min_rtt: Duration);
        fn lost(&mut self, sent: Instant);
    }

    impl Sender for Model {
        fn cwnd(&self) -> u64 {
            Model::cwnd(self)
        }
        fn sent(&mut self, now: Instant, bytes: u64) {
            self.on_sent(now, bytes)
        }
        fn acked(&mut self, now: Instant, sent: Instant, bytes: u64, min_rtt: Duration) {
            self.on_ack(now, sent, bytes, min_rtt);
            self.on_end_acks(now, false);
        }
        fn lost(&mut self, _sent: Instant) {}
    }

    /// A loss-based reference (NewReno: halve once per round trip with
    /// losses, grow one packet per window), to show the simulation
    /// reproduces the collapse the issue measured.
    struct Reno {
        cwnd: f64,
        recovery_until: Option<Instant>,
        last_sent: Option<Instant>,
    }

    impl Sender for Reno {
        fn cwnd(&self) -> u64 {
            self.cwnd as u64
        }
        fn sent(&mut self, now: Instant, _bytes: u64) {
            self.last_sent = Some(now);
        }
        fn acked(&mut self, _now: Instant, sent: Instant, bytes: u64, _min_rtt: Duration) {
            if self.recovery_until.is_some_and(|r| sent <= r) {
                return;
            }
            self.cwnd += 1200.0 * bytes as f64 / self.cwnd;
        }
        fn lost(&mut self, sent: Instant) {
            if self.recovery_until.is_some_and(|r| sent <= r) {
                return;
            }
            self.cwnd = (self.cwnd / 2.0).max(2400.0);
            self.recovery_until = self.last_sent;
        }
    }

    /// What a simulated transfer did.
    struct Outcome {
        /// Bytes acknowledged per second.
        goodput: f64,
        /// Share of the packets sent that the bottleneck queue dropped.
        queue_drops: f64,
    }

    /// A seeded discrete-event simulation of one sender behind a
    /// bottleneck: `rate` bytes/s, a tail-drop queue of `queue` bytes,
    /// round trip `rtt`, and independent random loss `loss` on the way.
    /// The sender always has data and sends whenever the window allows,
    /// paced as quinn paces (1.25 × window / smoothed RTT); a packet counts
    /// as lost when one sent 3 packets later is acked, or after a round
    /// trip with nothing acked.
    fn simulate(
        cc: &mut dyn Sender,
        rate: f64,
        queue: f64,
        rtt: f64,
        loss: f64,
        secs: f64,
        seed: u64,
    ) -> Outcome {
        const MTU: u64 = 1200;
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let mut rng = seed | 1;
        let mut coin = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64
        };
        // Arrivals of acks: (time in ns, packet number) → send time.
        let mut acks: std::collections::BTreeMap<(u64, u64), f64> = Default::default();
        let mut outstanding: std::collections::BTreeMap<u64, f64> = Default::default();
        let (mut now, mut pn, mut in_flight) = (0.0f64, 0u64, 0u64);
        let (mut last_departure, mut goodput) = (0.0f64, 0u64);
        let (mut sent_packets, mut queue_drops) = (0u64, 0u64);
        let mut queued: VecDeque<f64> = VecDeque::new();
        let (mut min_rtt, mut srtt) = (f64::INFINITY, rtt);
        let mut next_send = 0.0f64;
        while now < secs {
            let next_ack = acks.keys().next().map(|&(t, _)| t as f64 / 1e9);
            let can_send = in_flight + MTU <= cc.cwnd();
            if can_send && next_ack.is_none_or(|a| next_send <= a) {
                now = now.max(next_send);
                next_send = now + MTU as f64 / (1.25 * cc.cwnd() as f64 / srtt);
                pn += 1;
                sent_packets += 1;
                cc.sent(at(now), MTU);
                in_flight += MTU;
                outstanding.insert(pn, now);
                while queued.front().is_some_and(|&d| d <= now) {
                    queued.pop_front();
                }
                if coin() < loss {
                    continue;
                }
                if (queued.len() as u64 + 1) * MTU > queue as u64 {
                    queue_drops += 1;
                    continue;
                }
                let dep = now.max(last_departure) + MTU as f64 / rate;
                last_departure = dep;
                queued.push_back(dep);
                acks.insert((((dep + rtt) * 1e9) as u64, pn), now);
                continue;
            }
            let Some((&(t, p), &sent)) = acks.iter().next() else {
                // Nothing will be acked: all in flight was lost, found by
                // a timeout.
                for (_, s) in std::mem::take(&mut outstanding) {
                    cc.lost(at(s));
                }
                in_flight = 0;
                now += srtt;
                continue;
            };
            acks.remove(&(t, p));
            now = now.max(t as f64 / 1e9);
            min_rtt = min_rtt.min(now - sent);
            srtt = 0.875 * srtt + 0.125 * (now - sent);
            outstanding.remove(&p);
            in_flight -= MTU;
            goodput += MTU;
            cc.acked(at(now), at(sent), MTU, Duration::from_secs_f64(min_rtt));
            let lost: Vec<(u64, f64)> = outstanding
                .range(..p.saturating_sub(2))
                .map(|(k, s)| (*k, *s))
                .collect();
            for (k, s) in lost {
                outstanding.remove(&k);
                in_flight -= MTU;
                cc.lost(at(s));
            }
        }
        Outcome {
            goodput: goodput as f64 / now,
            queue_drops: queue_drops as f64 / sent_packets as f64,
        }
    }

    const RATE: f64 = 5e6 / 8.0;

    #[test]
    fn random_loss_does_not_shrink_the_window() {
        // 5 Mbit/s, 100 ms queue, 200 ms round trip.
        for loss in [0.0, 0.01, 0.05, 0.10] {
            let mut m = Model::new(14_720, 1200, Instant::now());
            let o = simulate(&mut m, RATE, RATE * 0.1, 0.2, loss, 60.0, 7);
            assert_eq!(m.mode(), Mode::Steady, "{loss}");
            // The estimate finds the bottleneck, the window holds at least
            // its BDP, the link stays busy, and the queue rarely overflows.
            let bw = m.bandwidth() as f64;
            assert!(bw > RATE * 0.9 && bw < RATE * 1.1, "{loss}: {bw}");
            assert!(m.cwnd() as f64 >= RATE * 0.2 * 0.9, "{loss}: {}", m.cwnd());
            assert!(o.goodput > RATE * 0.9, "{loss}: {}", o.goodput);
            assert!(o.queue_drops < 0.03, "{loss}: {}", o.queue_drops);
        }
    }

    #[test]
    fn the_simulation_shows_a_loss_based_controller_collapse() {
        // The same link with NewReno's response to loss: at 5 % the
        // window stays a few packets and the link mostly idles.
        let mut reno = Reno {
            cwnd: 14_720.0,
            recovery_until: None,
            last_sent: None,
        };
        let o = simulate(&mut reno, RATE, RATE * 0.1, 0.2, 0.05, 60.0, 7);
        assert!(o.goodput < RATE * 0.25, "{}", o.goodput);
        let mut reno = Reno {
            cwnd: 14_720.0,
            recovery_until: None,
            last_sent: None,
        };
        let o = simulate(&mut reno, RATE, RATE * 0.1, 0.2, 0.0, 60.0, 7);
        assert!(
            o.goodput > RATE * 0.7,
            "without loss it fills the link: {}",
            o.goodput
        );
    }

    #[test]
    fn persistent_congestion_restarts_small_and_keeps_the_model() {
        let mut m = Model::new(14_720, 1200, Instant::now());
        simulate(&mut m, RATE, RATE * 0.1, 0.1, 0.02, 20.0, 3);
        let bw = m.bandwidth();
        m.on_link_down();
        assert_eq!(m.cwnd(), 4 * 1200);
        assert_eq!(m.bandwidth(), bw);
        assert_eq!(m.mode(), Mode::Steady);
    }
}
