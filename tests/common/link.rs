//! A user-space link emulator: a UDP relay between devices and the gateway
//! that behaves like a radio uplink, because this kernel has no `netem`.
//!
//! Each direction has its own [`Impairment`]: random loss, burst loss
//! (Gilbert–Elliott), a bottleneck (token bucket feeding a tail-drop queue,
//! as a real bottleneck: what does not fit is dropped), propagation delay
//! with jitter (order kept, as on a radio bearer), reordering (a packet held
//! back so later ones overtake it) and duplication. Every random choice
//! comes from a seeded generator, so the same seed and the same packets give
//! the same fate to every packet. The link can be cut (everything in both
//! directions is lost, also what was in flight) and *rebound*: the gateway
//! then sees the devices' packets come from a new source port (or address),
//! as when a phone changes cell or its NAT forgets the mapping.
//!
//! The impairment model ([`Channel`]) is separate from the sockets and runs
//! on a clock given to it, so its statistics are tested without sockets or
//! timing (tests/link_emulator.rs). [`LinkEmulator`] drives it with real
//! UDP sockets and tokio timers; tests and benches share it.

use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Burst loss: a two-state Markov chain (Gilbert–Elliott). In the good
/// state packets are lost with `loss_good`, in the bad state with
/// `loss_bad`; before each packet the chain moves good → bad with
/// probability `p` and bad → good with `r`. The mean burst (time in the bad
/// state) is 1/r packets and the stationary share of bad packets
/// p / (p + r), so the mean loss rate is
/// (r·loss_good + p·loss_bad) / (p + r).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GilbertElliott {
    pub p: f64,
    pub r: f64,
    pub loss_good: f64,
    pub loss_bad: f64,
}

impl GilbertElliott {
    /// The long-run share of packets this chain loses.
    pub fn mean_loss(&self) -> f64 {
        if self.p + self.r == 0.0 {
            return self.loss_good;
        }
        (self.r * self.loss_good + self.p * self.loss_bad) / (self.p + self.r)
    }
}

/// A bottleneck: a token bucket of `burst_bytes` refilled at `rate_bps`
/// bits per second, fed by a FIFO queue of at most `queue_bytes`; a packet
/// that does not fit in the queue is dropped (tail drop).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bottleneck {
    pub rate_bps: u64,
    pub queue_bytes: usize,
    pub burst_bytes: usize,
}

impl Bottleneck {
    /// A link of `rate_bps` whose queue holds `queue` of traffic at that
    /// rate, releasing one full-size datagram at a time.
    pub fn new(rate_bps: u64, queue: Duration) -> Bottleneck {
        Bottleneck {
            rate_bps,
            queue_bytes: ((rate_bps as f64 / 8.0 * queue.as_secs_f64()) as usize).max(3000),
            burst_bytes: 1500,
        }
    }

    fn seconds_for(&self, bytes: f64) -> f64 {
        bytes * 8.0 / self.rate_bps as f64
    }
}

/// What happens to packets in one direction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Impairment {
    /// Independent random loss, 0..=1.
    pub loss: f64,
    /// Burst loss on top of it.
    pub burst: Option<GilbertElliott>,
    /// Bandwidth cap with its queue.
    pub bottleneck: Option<Bottleneck>,
    /// One-way propagation delay.
    pub delay: Duration,
    /// Extra delay, uniform in 0..jitter, per packet. Order is kept: a
    /// packet never leaves before the one sent ahead of it (radio bearers
    /// deliver in order); use `reorder` for packets overtaking each other.
    pub jitter: Duration,
    /// Probability that a packet is held back by `reorder_by` more, so that
    /// the packets after it overtake it.
    pub reorder: f64,
    pub reorder_by: Duration,
    /// Probability that a packet is delivered twice.
    pub duplicate: f64,
}

impl Impairment {
    /// A perfect link.
    pub fn none() -> Impairment {
        Impairment::default()
    }

    /// A radio-like direction: random `loss`, `delay` ± `jitter`/2 and a cap
    /// of `rate_bps` with a queue of 100 ms (0 = no cap).
    pub fn radio(loss: f64, delay: Duration, jitter: Duration, rate_bps: u64) -> Impairment {
        Impairment {
            loss,
            delay: delay.saturating_sub(jitter / 2),
            jitter,
            bottleneck: (rate_bps > 0)
                .then(|| Bottleneck::new(rate_bps, Duration::from_millis(100))),
            ..Impairment::default()
        }
    }
}

/// Both directions of a link and the seed of its randomness.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkProfile {
    /// Device → gateway.
    pub up: Impairment,
    /// Gateway → device.
    pub down: Impairment,
    pub seed: u64,
}

impl LinkProfile {
    pub fn perfect() -> LinkProfile {
        LinkProfile::default()
    }

    /// A mobile uplink: `loss` in both directions, round trip `rtt` (half
    /// each way) with `jitter` per direction, and `rate_bps` each way.
    pub fn mobile(loss: f64, rtt: Duration, jitter: Duration, rate_bps: u64, seed: u64) -> Self {
        let one_way = Impairment::radio(loss, rtt / 2, jitter, rate_bps);
        LinkProfile {
            up: one_way.clone(),
            down: one_way,
            seed,
        }
    }
}

/// A small, fast, seeded generator (SplitMix64): the emulator needs
/// reproducible coin flips, not cryptographic randomness.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }
}

/// Why a packet did not arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    Random,
    Burst,
    /// It did not fit in the bottleneck's queue.
    Queue,
    Cut,
}

/// Counters of one direction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirStats {
    pub offered: u64,
    pub offered_bytes: u64,
    pub dropped_random: u64,
    pub dropped_burst: u64,
    pub dropped_queue: u64,
    pub dropped_cut: u64,
    pub reordered: u64,
    pub duplicated: u64,
    /// Packets (copies included) that left the emulator.
    pub delivered: u64,
    pub delivered_bytes: u64,
}

impl DirStats {
    pub fn dropped(&self) -> u64 {
        self.dropped_random + self.dropped_burst + self.dropped_queue + self.dropped_cut
    }

    /// Share of offered packets that were dropped, for any reason.
    pub fn loss_rate(&self) -> f64 {
        if self.offered == 0 {
            return 0.0;
        }
        self.dropped() as f64 / self.offered as f64
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub up: DirStats,
    pub down: DirStats,
    /// Times the link was rebound (the gateway saw new source addresses).
    pub rebinds: u64,
}

/// The impairment model of one direction, on a clock of seconds given by
/// the caller: [`Channel::offer`] says when (if ever) each copy of a packet
/// offered at `now` leaves the link.
#[derive(Debug, Clone)]
pub struct Channel {
    pub imp: Impairment,
    rng: Rng,
    bad_state: bool,
    /// Bottleneck: departures still queued (time, bytes), the time of the
    /// last departure and the tokens left right after it.
    queued: VecDeque<(f64, usize)>,
    queued_bytes: usize,
    last_departure: f64,
    tokens_after: f64,
    /// When the last in-order packet leaves (jitter never reorders).
    last_exit: f64,
    pub stats: DirStats,
}

impl Channel {
    pub fn new(imp: Impairment, seed: u64) -> Channel {
        let tokens = imp.bottleneck.map(|b| b.burst_bytes as f64).unwrap_or(0.0);
        Channel {
            imp,
            rng: Rng::new(seed),
            bad_state: false,
            queued: VecDeque::new(),
            queued_bytes: 0,
            last_departure: f64::NEG_INFINITY,
            tokens_after: tokens,
            last_exit: f64::NEG_INFINITY,
            stats: DirStats::default(),
        }
    }

    /// Changes the impairment from now on; queue and burst state carry on.
    pub fn set_impairment(&mut self, imp: Impairment) {
        self.imp = imp;
    }

    /// Offers a packet of `len` bytes at time `now` (seconds): `Err` if the
    /// link drops it, else the times its copies leave (one, or two when
    /// duplicated), in seconds.
    pub fn offer(&mut self, now: f64, len: usize) -> Result<Vec<f64>, Dropped> {
        self.stats.offered += 1;
        self.stats.offered_bytes += len as u64;
        // The radio loses packets before they queue for the uplink.
        if let Err(d) = self.radio_loss() {
            match d {
                Dropped::Random => self.stats.dropped_random += 1,
                _ => self.stats.dropped_burst += 1,
            }
            return Err(d);
        }
        let departure = match self.bottleneck(now, len) {
            Some(t) => t,
            None => {
                self.stats.dropped_queue += 1;
                return Err(Dropped::Queue);
            }
        };
        let jitter = self.imp.jitter.as_secs_f64() * self.rng.unit();
        let mut exit = departure + self.imp.delay.as_secs_f64() + jitter;
        if self.rng.chance(self.imp.reorder) {
            // Held back: later packets overtake it, and it does not hold
            // them back in turn.
            self.stats.reordered += 1;
            exit += self.imp.reorder_by.as_secs_f64();
        } else {
            exit = exit.max(self.last_exit);
            self.last_exit = exit;
        }
        let mut out = vec![exit];
        if self.rng.chance(self.imp.duplicate) {
            self.stats.duplicated += 1;
            out.push(exit);
        }
        self.stats.delivered += out.len() as u64;
        self.stats.delivered_bytes += (out.len() * len) as u64;
        Ok(out)
    }

    fn radio_loss(&mut self) -> Result<(), Dropped> {
        if let Some(ge) = self.imp.burst {
            let flip = if self.bad_state { ge.r } else { ge.p };
            if self.rng.chance(flip) {
                self.bad_state = !self.bad_state;
            }
            let p = if self.bad_state {
                ge.loss_bad
            } else {
                ge.loss_good
            };
            if self.rng.chance(p) {
                return Err(Dropped::Burst);
            }
        }
        if self.rng.chance(self.imp.loss) {
            return Err(Dropped::Random);
        }
        Ok(())
    }

    /// When a packet arriving at `now` leaves the bottleneck, or `None` if
    /// the queue has no room for it.
    fn bottleneck(&mut self, now: f64, len: usize) -> Option<f64> {
        let Some(b) = self.imp.bottleneck else {
            return Some(now);
        };
        while let Some(&(t, n)) = self.queued.front() {
            if t > now {
                break;
            }
            self.queued.pop_front();
            self.queued_bytes -= n;
        }
        if self.queued_bytes + len > b.queue_bytes {
            return None;
        }
        // The packet starts to wait for tokens once it is at the head.
        let start = now.max(self.last_departure);
        let refill = if self.last_departure.is_finite() {
            (start - self.last_departure) * b.rate_bps as f64 / 8.0
        } else {
            f64::INFINITY
        };
        let tokens = (self.tokens_after + refill).min(b.burst_bytes as f64);
        let (departure, left) = if tokens >= len as f64 {
            (start, tokens - len as f64)
        } else {
            (start + b.seconds_for(len as f64 - tokens), 0.0)
        };
        self.last_departure = departure;
        self.tokens_after = left;
        self.queued.push_back((departure, len));
        self.queued_bytes += len;
        Some(departure)
    }

    pub fn record_cut(&mut self) {
        self.stats.offered += 1;
        self.stats.dropped_cut += 1;
    }
}

/// A packet on its way, ordered by when it leaves (then by sequence).
struct InFlight {
    at: Instant,
    seq: u64,
    data: Vec<u8>,
    via: Arc<UdpSocket>,
    /// Where to send when `via` is not connected (towards a device).
    to: Option<SocketAddr>,
    up: bool,
}

impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // A max-heap: the earliest is the greatest.
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// One device's path to the gateway: the socket the gateway sees it on.
struct Binding {
    socket: Arc<UdpSocket>,
    reader: JoinHandle<()>,
}

struct Shared {
    target: SocketAddr,
    front: Arc<UdpSocket>,
    epoch: Instant,
    up: Channel,
    down: Channel,
    cut: bool,
    /// Where bindings made from now on are bound (rebinding may move it).
    bind_ip: IpAddr,
    bindings: HashMap<SocketAddr, Binding>,
    rebinds: u64,
    seq: u64,
    tx: mpsc::UnboundedSender<InFlight>,
}

impl Shared {
    /// Runs a packet through one direction and hands what survives to the
    /// scheduler.
    fn pass(&mut self, up: bool, data: &[u8], via: Arc<UdpSocket>, to: Option<SocketAddr>) {
        let ch = if up { &mut self.up } else { &mut self.down };
        if self.cut {
            ch.record_cut();
            return;
        }
        let now = self.epoch.elapsed().as_secs_f64();
        let Ok(exits) = ch.offer(now, data.len()) else {
            return;
        };
        for t in exits {
            self.seq += 1;
            let _ = self.tx.send(InFlight {
                at: self.epoch + Duration::from_secs_f64(t),
                seq: self.seq,
                data: data.to_vec(),
                via: via.clone(),
                to,
                up,
            });
        }
    }
}

/// The running emulator: devices send to `addr`, the gateway sees them
/// coming from the emulator's sockets.
pub struct LinkEmulator {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    tasks: Vec<JoinHandle<()>>,
}

impl LinkEmulator {
    /// A relay that only drops what you cut (a perfect link otherwise).
    pub async fn start(target: SocketAddr) -> LinkEmulator {
        Self::with_profile(target, LinkProfile::perfect()).await
    }

    pub async fn with_profile(target: SocketAddr, profile: LinkProfile) -> LinkEmulator {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        set_buffers(&front);
        let addr = front.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Mutex::new(Shared {
            target,
            front: front.clone(),
            epoch: Instant::now(),
            // Distinct streams of randomness for the two directions.
            up: Channel::new(profile.up, profile.seed),
            down: Channel::new(profile.down, profile.seed ^ 0x5DEE_CE66_D1CE_4E5B),
            cut: false,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            bindings: HashMap::new(),
            rebinds: 0,
            seq: 0,
            tx,
        }));
        let tasks = vec![
            tokio::spawn(deliver(rx, shared.clone())),
            tokio::spawn(from_devices(front, shared.clone())),
        ];
        LinkEmulator {
            addr,
            shared,
            tasks,
        }
    }

    /// Cuts the link (`true`) or restores it: while cut, every packet in
    /// both directions is lost, including those already in flight.
    pub fn set_cut(&self, cut: bool) {
        self.shared.lock().unwrap().cut = cut;
    }

    /// Changes the impairments from now on (the seed's streams continue).
    pub fn set_profile(&self, up: Impairment, down: Impairment) {
        let mut s = self.shared.lock().unwrap();
        s.up.set_impairment(up);
        s.down.set_impairment(down);
    }

    /// The gateway sees every device come from a new source port — and from
    /// `ip` if given (any 127.x.y.z works on Linux loopback) — as after a
    /// cell change or a NAT rebinding. Packets to the old addresses are lost.
    pub async fn rebind(&self, ip: Option<IpAddr>) {
        let (target, bind_ip, devices) = {
            let mut s = self.shared.lock().unwrap();
            if let Some(ip) = ip {
                s.bind_ip = ip;
            }
            s.rebinds += 1;
            (
                s.target,
                s.bind_ip,
                s.bindings.keys().copied().collect::<Vec<_>>(),
            )
        };
        for device in devices {
            let b = new_binding(&self.shared, target, bind_ip, device).await;
            if let Some(old) = self.shared.lock().unwrap().bindings.insert(device, b) {
                old.reader.abort();
            }
        }
    }

    /// The addresses the gateway currently sees the devices at.
    pub fn gateway_sees(&self) -> Vec<SocketAddr> {
        let s = self.shared.lock().unwrap();
        s.bindings
            .values()
            .filter_map(|b| b.socket.local_addr().ok())
            .collect()
    }

    pub fn stats(&self) -> LinkStats {
        let s = self.shared.lock().unwrap();
        LinkStats {
            up: s.up.stats.clone(),
            down: s.down.stats.clone(),
            rebinds: s.rebinds,
        }
    }
}

impl std::ops::Drop for LinkEmulator {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        for b in self.shared.lock().unwrap().bindings.values() {
            b.reader.abort();
        }
    }
}

/// Larger kernel buffers: the emulator must not add losses of its own.
fn set_buffers(s: &UdpSocket) {
    let r = socket2::SockRef::from(s);
    let _ = r.set_recv_buffer_size(4 << 20);
    let _ = r.set_send_buffer_size(4 << 20);
}

/// A socket towards the gateway for `device`, and the task relaying what
/// the gateway sends back on it.
async fn new_binding(
    shared: &Arc<Mutex<Shared>>,
    target: SocketAddr,
    ip: IpAddr,
    device: SocketAddr,
) -> Binding {
    let socket = Arc::new(UdpSocket::bind(SocketAddr::new(ip, 0)).await.unwrap());
    set_buffers(&socket);
    socket.connect(target).await.unwrap();
    let (sock, sh) = (socket.clone(), shared.clone());
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = sock.recv(&mut buf).await {
            let mut s = sh.lock().unwrap();
            let front = s.front.clone();
            s.pass(false, &buf[..n], front, Some(device));
        }
    });
    Binding { socket, reader }
}

/// Device → gateway: every datagram a device sends goes through the uplink
/// model, out of that device's binding.
async fn from_devices(front: Arc<UdpSocket>, shared: Arc<Mutex<Shared>>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, from)) = front.recv_from(&mut buf).await else {
            return;
        };
        let known = shared.lock().unwrap().bindings.contains_key(&from);
        if !known {
            let (target, ip) = {
                let s = shared.lock().unwrap();
                (s.target, s.bind_ip)
            };
            let b = new_binding(&shared, target, ip, from).await;
            shared.lock().unwrap().bindings.insert(from, b);
        }
        let mut s = shared.lock().unwrap();
        let via = s.bindings[&from].socket.clone();
        s.pass(true, &buf[..n], via, None);
    }
}

/// Sends every surviving packet when its time comes; a cut link loses what
/// was still in flight.
async fn deliver(mut rx: mpsc::UnboundedReceiver<InFlight>, shared: Arc<Mutex<Shared>>) {
    let mut heap: BinaryHeap<InFlight> = BinaryHeap::new();
    loop {
        let next = heap.peek().map(|p| p.at);
        tokio::select! {
            p = rx.recv() => match p {
                Some(p) => heap.push(p),
                None => return,
            },
            _ = sleep_until_opt(next) => {
                let now = Instant::now();
                while heap.peek().is_some_and(|p| p.at <= now) {
                    let p = heap.pop().expect("peeked");
                    let cut = {
                        let mut s = shared.lock().unwrap();
                        if s.cut {
                            let ch = if p.up { &mut s.up } else { &mut s.down };
                            ch.stats.delivered -= 1;
                            ch.stats.delivered_bytes -= p.data.len() as u64;
                            ch.stats.dropped_cut += 1;
                        }
                        s.cut
                    };
                    if cut {
                        continue;
                    }
                    let _ = match p.to {
                        Some(to) => p.via.send_to(&p.data, to).await,
                        None => p.via.send(&p.data).await,
                    };
                }
            }
        }
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
