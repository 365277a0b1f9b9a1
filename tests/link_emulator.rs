//! The link emulator the fault tests and benches run through: its
//! statistics on a simulated clock (no sockets, no timing), then the relay
//! itself on real UDP sockets.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::link::{
    Bottleneck, Channel, Dropped, GilbertElliott, Impairment, LinkEmulator, LinkProfile,
};

const PACKET: usize = 1200;

/// Offers `n` packets of `PACKET` bytes, one every `gap` seconds from 0;
/// returns each one's fate.
fn run(ch: &mut Channel, n: usize, gap: f64) -> Vec<Result<Vec<f64>, Dropped>> {
    (0..n).map(|i| ch.offer(i as f64 * gap, PACKET)).collect()
}

#[test]
fn random_loss_matches_its_rate() {
    for (rate, seed) in [(0.01, 1), (0.05, 2), (0.10, 3)] {
        let mut ch = Channel::new(
            Impairment {
                loss: rate,
                ..Impairment::none()
            },
            seed,
        );
        let n = 200_000;
        let fates = run(&mut ch, n, 0.001);
        let lost = fates.iter().filter(|f| f.is_err()).count();
        let measured = lost as f64 / n as f64;
        // Binomial standard deviation is at most 0.07 %: 5 of them.
        assert!((measured - rate).abs() < 0.0035, "{rate}: {measured}");
        assert_eq!(ch.stats.dropped_random as usize, lost);
        assert!((ch.stats.loss_rate() - measured).abs() < 1e-12);
    }
}

#[test]
fn burst_loss_has_the_chains_mean_and_burst_length() {
    // Bad 1 % of the time on average, bursts of 5 packets, all lost in the
    // bad state: 1 % loss in bursts.
    let ge = GilbertElliott {
        p: 0.002,
        r: 0.2,
        loss_good: 0.0,
        loss_bad: 1.0,
    };
    let mut ch = Channel::new(
        Impairment {
            burst: Some(ge),
            ..Impairment::none()
        },
        7,
    );
    let n = 500_000;
    let fates = run(&mut ch, n, 0.001);
    let lost: Vec<bool> = fates.iter().map(|f| f.is_err()).collect();
    let measured = lost.iter().filter(|&&l| l).count() as f64 / n as f64;
    assert!(
        (measured - ge.mean_loss()).abs() < 0.002,
        "{measured} vs {}",
        ge.mean_loss()
    );
    let mut runs = Vec::new();
    let mut cur = 0;
    for l in lost {
        if l {
            cur += 1;
        } else if cur > 0 {
            runs.push(cur);
            cur = 0;
        }
    }
    let mean_run = runs.iter().sum::<usize>() as f64 / runs.len() as f64;
    assert!((mean_run - 1.0 / ge.r).abs() < 0.5, "mean burst {mean_run}");
    assert!(runs.iter().any(|&r| r >= 15), "long bursts occur");
    assert_eq!(ch.stats.dropped_burst, ch.stats.dropped());
}

#[test]
fn the_bottleneck_caps_throughput_and_drops_what_its_queue_cannot_hold() {
    let cap = Bottleneck::new(5_000_000, Duration::from_millis(100));
    let mut ch = Channel::new(
        Impairment {
            bottleneck: Some(cap),
            ..Impairment::none()
        },
        1,
    );
    // Offered at twice the rate for 20 s of simulated time.
    let gap = (PACKET * 8) as f64 / 10_000_000.0;
    let n = (20.0 / gap) as usize;
    let fates = run(&mut ch, n, gap);
    let mut last_exit = 0.0f64;
    let mut delivered = 0usize;
    for (i, f) in fates.iter().enumerate() {
        if let Ok(t) = f {
            let sent = i as f64 * gap;
            // No packet waits longer than the queue holds.
            assert!(t[0] - sent <= 0.1 + 1e-9, "queued {} s", t[0] - sent);
            assert!(t[0] >= last_exit);
            last_exit = t[0];
            delivered += 1;
        }
    }
    let rate = (delivered * PACKET * 8) as f64 / last_exit;
    assert!((rate / 5e6 - 1.0).abs() < 0.01, "{rate} bit/s");
    // Half the packets cannot get through, and they are queue drops.
    assert!((ch.stats.dropped_queue as f64 / n as f64 - 0.5).abs() < 0.01);
    assert_eq!(ch.stats.dropped(), ch.stats.dropped_queue);
    // Never more than the bucket allows up to any moment.
    let mut sent_by = 0.0;
    let exits: Vec<f64> = fates
        .iter()
        .filter_map(|f| f.as_ref().ok())
        .map(|t| t[0])
        .collect();
    for t in exits {
        sent_by += (PACKET * 8) as f64;
        // (One bit of slack for rounding.)
        assert!(sent_by <= (cap.burst_bytes * 8) as f64 + 5e6 * t + 1.0);
    }
}

#[test]
fn below_the_cap_nothing_is_dropped_or_queued() {
    let mut ch = Channel::new(
        Impairment {
            bottleneck: Some(Bottleneck::new(5_000_000, Duration::from_millis(100))),
            ..Impairment::none()
        },
        1,
    );
    let gap = (PACKET * 8) as f64 / 4_000_000.0;
    for (i, f) in run(&mut ch, 50_000, gap).into_iter().enumerate() {
        let t = f.expect("no drop below the cap");
        assert!(
            t[0] - i as f64 * gap < 0.0021,
            "waited {}",
            t[0] - i as f64 * gap
        );
    }
}

#[test]
fn jitter_delays_within_its_range_and_keeps_order() {
    let mut ch = Channel::new(
        Impairment {
            delay: Duration::from_millis(40),
            jitter: Duration::from_millis(20),
            ..Impairment::none()
        },
        9,
    );
    let mut last = 0.0;
    for (i, f) in run(&mut ch, 100_000, 0.0005).into_iter().enumerate() {
        let t = f.unwrap()[0];
        let d = t - i as f64 * 0.0005;
        assert!((0.040 - 1e-9..=0.060 + 1e-9).contains(&d), "{d}");
        assert!(t >= last, "reordered");
        last = t;
    }
    // Packets further apart than the jitter are not held back by their
    // predecessors: their delays spread evenly over the whole range.
    let mut ch = Channel::new(
        Impairment {
            delay: Duration::from_millis(40),
            jitter: Duration::from_millis(20),
            ..Impairment::none()
        },
        10,
    );
    let delays: Vec<f64> = run(&mut ch, 20_000, 0.025)
        .into_iter()
        .enumerate()
        .map(|(i, f)| f.unwrap()[0] - i as f64 * 0.025)
        .collect();
    let mean = delays.iter().sum::<f64>() / delays.len() as f64;
    assert!((mean - 0.050).abs() < 0.0005, "{mean}");
    let low = delays.iter().filter(|&&d| d < 0.045).count() as f64 / 20_000.0;
    assert!((low - 0.25).abs() < 0.02, "{low}");
}

#[test]
fn reordering_and_duplication_happen_at_their_rates() {
    let mut ch = Channel::new(
        Impairment {
            reorder: 0.02,
            reorder_by: Duration::from_millis(10),
            duplicate: 0.01,
            ..Impairment::none()
        },
        11,
    );
    let n = 200_000;
    let fates = run(&mut ch, n, 0.001);
    let exits: Vec<Vec<f64>> = fates.into_iter().map(|f| f.unwrap()).collect();
    let dups = exits.iter().filter(|e| e.len() == 2).count();
    assert!((dups as f64 / n as f64 - 0.01).abs() < 0.002, "{dups}");
    // Held back: leaving 10 ms after it was sent (no other delay here).
    let held = |i: usize| exits[i][0] - i as f64 * 0.001 > 0.009;
    let n_held = (0..n).filter(|&i| held(i)).count();
    assert!((n_held as f64 / n as f64 - 0.02).abs() < 0.002, "{n_held}");
    assert_eq!(ch.stats.reordered as usize, n_held);
    // Every held packet is overtaken by the next one, unless that one was
    // held back too; no other packet is overtaken.
    let overtaken = (0..n - 1)
        .filter(|&i| exits[i][0] > exits[i + 1][0])
        .count();
    let expected = (0..n - 1).filter(|&i| held(i) && !held(i + 1)).count();
    assert_eq!(overtaken, expected);
    assert_eq!(ch.stats.delivered as usize, n + dups);
}

#[test]
fn the_same_seed_gives_every_packet_the_same_fate() {
    let imp = Impairment {
        loss: 0.05,
        burst: Some(GilbertElliott {
            p: 0.01,
            r: 0.3,
            loss_good: 0.0,
            loss_bad: 0.8,
        }),
        bottleneck: Some(Bottleneck::new(2_000_000, Duration::from_millis(50))),
        delay: Duration::from_millis(30),
        jitter: Duration::from_millis(10),
        reorder: 0.01,
        reorder_by: Duration::from_millis(5),
        duplicate: 0.01,
    };
    let a = run(&mut Channel::new(imp.clone(), 42), 20_000, 0.002);
    let b = run(&mut Channel::new(imp.clone(), 42), 20_000, 0.002);
    let c = run(&mut Channel::new(imp, 43), 20_000, 0.002);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

/// A UDP echo server that remembers which addresses it heard from.
async fn echo() -> (
    SocketAddr,
    tokio::task::JoinHandle<()>,
    std::sync::Arc<std::sync::Mutex<HashSet<SocketAddr>>>,
) {
    let s = udp().await;
    let addr = s.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(HashSet::new()));
    let seen2 = seen.clone();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            seen2.lock().unwrap().insert(from);
            let _ = s.send_to(&buf[..n], from).await;
        }
    });
    (addr, task, seen)
}

/// A UDP socket on loopback with buffers large enough for a test's burst.
async fn udp() -> tokio::net::UdpSocket {
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let r = socket2::SockRef::from(&s);
    r.set_recv_buffer_size(4 << 20).unwrap();
    r.set_send_buffer_size(4 << 20).unwrap();
    s
}

/// Sends `n` numbered datagrams through the link and collects the echoes
/// until everything the link let through has come back (30 s without that
/// is a hang, not a measurement).
async fn exchange(sock: &tokio::net::UdpSocket, link: &LinkEmulator, n: u32) -> Vec<u32> {
    let before = link.stats();
    for i in 0..n {
        sock.send_to(&i.to_be_bytes(), link.addr).await.unwrap();
        if i % 64 == 63 {
            // Keep within the socket buffers.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    // Settled: every datagram sent was offered to the uplink, everything
    // it delivered was echoed into the downlink, and every echo the
    // downlink delivered was read.
    let settled = |got: usize| {
        let s = link.stats();
        s.up.offered == before.up.offered + n as u64
            && s.down.offered == s.up.delivered
            && got as u64 == s.down.delivered - before.down.delivered
    };
    let mut got = Vec::new();
    let mut buf = [0u8; 16];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !settled(got.len()) {
        let wait = tokio::time::Instant::now() + Duration::from_millis(50);
        match tokio::time::timeout_at(wait.min(deadline), sock.recv(&mut buf)).await {
            Ok(Ok(4)) => got.push(u32::from_be_bytes(buf[..4].try_into().unwrap())),
            Ok(_) => {}
            Err(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "{} echoes came back; {:?}",
                got.len(),
                link.stats()
            ),
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn the_relay_loses_what_the_model_drops_and_delivers_the_rest() {
    let (server, task, seen) = echo().await;
    let profile = LinkProfile {
        up: Impairment {
            loss: 0.1,
            delay: Duration::from_millis(20),
            ..Impairment::none()
        },
        down: Impairment {
            loss: 0.05,
            delay: Duration::from_millis(20),
            ..Impairment::none()
        },
        seed: 5,
    };
    let link = LinkEmulator::with_profile(server, profile).await;
    let sock = udp().await;
    let n = 2000;
    let got = exchange(&sock, &link, n).await;
    let st = link.stats();
    // Every datagram the uplink let through reached the server and was
    // echoed into the downlink; what came back is what the downlink let
    // through, no more and no less.
    assert_eq!(st.up.offered, n as u64);
    assert_eq!(st.down.offered, st.up.delivered);
    assert_eq!(got.len() as u64, st.down.delivered);
    assert!((st.up.loss_rate() - 0.1).abs() < 0.03, "{:?}", st.up);
    assert!((st.down.loss_rate() - 0.05).abs() < 0.03, "{:?}", st.down);
    // Order kept: no reordering configured.
    assert!(got.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(seen.lock().unwrap().len(), 1);
    task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn cut_loses_everything_and_rebind_shows_a_new_source_address() {
    let (server, task, seen) = echo().await;
    let link = LinkEmulator::start(server).await;
    let sock = udp().await;
    let got = exchange(&sock, &link, 100).await;
    assert_eq!(got.len(), 100);
    let first = link.gateway_sees();
    assert_eq!(first.len(), 1);

    link.set_cut(true);
    for i in 0..50u32 {
        sock.send_to(&i.to_be_bytes(), link.addr).await.unwrap();
    }
    common::eventually(30, "the cut packets to be counted", || {
        let s = link.stats();
        async move { (s.up.dropped_cut == 50).then_some(()) }
    })
    .await;
    link.set_cut(false);

    // A new port, then a new address: the server hears the same device
    // from each in turn.
    link.rebind(None).await;
    let second = link.gateway_sees();
    assert_ne!(first, second);
    assert_eq!(first[0].ip(), second[0].ip());
    exchange(&sock, &link, 10).await;
    link.rebind(Some("127.0.0.2".parse().unwrap())).await;
    let third = link.gateway_sees();
    assert_eq!(third[0].ip().to_string(), "127.0.0.2");
    exchange(&sock, &link, 10).await;
    let heard = seen.lock().unwrap().clone();
    assert_eq!(heard, [first[0], second[0], third[0]].into_iter().collect());
    assert_eq!(link.stats().rebinds, 2);
    task.abort();
}
