//! Entry points for fuzzing: one function per target, each taking bytes an
//! attacker (a device, a docking rack's files, someone with write access
//! to storage, a browser) controls and driving the same parser the gateway
//! runs on them, in memory, without GStreamer, storage or the network.
//!
//! The coverage-guided runs (`fuzz/`, cargo-fuzz and libFuzzer) call these
//! functions; so do the ordinary unit tests below, which replay every
//! committed corpus file and a fixed number of seeded mutations of each, so
//! that `cargo test` exercises every target on every run
//! (`docs/reliability.md`, "Fuzzing").
//!
//! A target may return early on input its parser refuses — refusing is the
//! point — but must never panic, hang or allocate without bound; where a
//! parser promises more (a document read back parses again, sanitised
//! metadata validates), the target asserts it.

use std::future::Future;
use std::io::Cursor;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use crate::chain;
use crate::checkpoint::{Checkpoint, JournalHead};
use crate::live::journal::JournalChunk;
use crate::manifest::{HeaderDoc, Manifest, ObjectEntry, check_chain};
use crate::metadata::{RecordingMeta, RecordingMode};
use crate::pipeline::{fmp4, h264, mp4, typefind};
use crate::protocol::frame::{self, Frame};
use crate::protocol::{Finish, LiveControl, Reply, Request};
use crate::store::layout;
use crate::verify;

/// A fuzz target: runs one input through a parser.
pub type Target = fn(&[u8]);

/// Every target, by name, as `fuzz/fuzz_targets/<name>.rs` and the corpus
/// directories `fuzz/corpus/<name>/` call them.
pub const TARGETS: &[(&str, Target)] = &[
    ("frame", frame),
    ("message", message),
    ("sidecar", sidecar),
    ("mp4", mp4),
    ("fmp4", fmp4),
    ("h264", h264),
    ("manifest", manifest),
    ("journal", journal),
    ("stored_doc", stored_doc),
    ("wall_query", wall_query),
    ("hls_codecs", hls_codecs),
];

/// Splits an input into up to `n` parts at NUL bytes, which no JSON
/// document holds, so that one input can carry several documents.
fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    data.splitn(n, |&b| b == 0).collect()
}

/// Runs a future over in-memory bytes to completion: reading a slice never
/// waits, so one poll must finish it.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("reading frames from memory never waits"),
    }
}

/// A gateway clock for checks that compare with "now", fixed so that a
/// run does not depend on the day it runs.
fn gateway_now() -> time::OffsetDateTime {
    time::macros::datetime!(2026-12-06 00:00 UTC)
}

/// The frame parser over a stream's bytes, frame after frame, as a session
/// reads them; every message frame goes to [`message`].
pub fn frame(data: &[u8]) {
    let mut r = data;
    loop {
        match ready(frame::read_frame(&mut r)) {
            Ok(Some(Frame::Msg(m))) => {
                assert!(m.len() <= crate::limits::MAX_MSG_LEN);
                message(&m);
            }
            Ok(Some(Frame::Data(d))) => {
                assert!(!d.is_empty() && d.len() <= crate::limits::MAX_DATA_LEN);
            }
            Ok(None) | Err(_) => return,
        }
    }
}

/// A control message's JSON, read as each message a device or gateway
/// sends, then checked as the gateway checks it.
pub fn message(data: &[u8]) {
    if let Ok(req) = frame::decode::<Request>(data) {
        check_request(&req);
        // (Written again it may outgrow a message: `1` becomes `1.0`.)
        if let Ok(again) = frame::encode_msg(&req) {
            frame::decode::<Request>(&again[frame::HEADER_LEN..])
                .expect("a request written again parses again");
        }
    }
    if let Ok(c) = frame::decode::<LiveControl>(data) {
        match c {
            LiveControl::Mark { marker } => {
                let _ = marker.validate();
            }
            LiveControl::Gap { since, .. } => {
                if let Some(s) = since {
                    let _ = crate::metadata::check_time("since", &s);
                }
            }
            LiveControl::End => {}
        }
    }
    if let Ok(f) = frame::decode::<Finish>(data) {
        let again = frame::encode_msg(&f).expect("a finish encodes again");
        assert_eq!(
            frame::decode::<Finish>(&again[frame::HEADER_LEN..]).ok(),
            Some(f)
        );
    }
    if let Ok(r) = frame::decode::<Reply>(data) {
        let _ = serde_json::to_vec(&r).expect("a reply read serialises again");
    }
}

/// What the session checks of a request before it acts on it.
fn check_request(req: &Request) {
    match req {
        Request::Upload {
            meta, device_clock, ..
        }
        | Request::Live {
            meta, device_clock, ..
        } => {
            if meta.validate().is_ok() {
                let _ = meta.missing_required();
            }
            if let Some(c) = device_clock {
                let _ = crate::manifest::DeviceClock::at_receipt(c, gateway_now());
            }
        }
        Request::Status { .. } => {}
        Request::Inventory {
            taken_at,
            page,
            last,
            items,
            ..
        } => {
            let _ = crate::session::receive_inventory::page_is_valid(
                &crate::session::receive_inventory::Page {
                    taken_at: taken_at.clone(),
                    page: *page,
                    last: *last,
                    items: items.clone(),
                },
            );
        }
    }
}

/// A docked file's sidecar JSON, as `custody dock` reads it: whatever it
/// holds, the metadata sent is valid and fits in one upload request.
pub fn sidecar(data: &[u8]) {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(data) else {
        return;
    };
    let fallback = "f-0123456789abcdef0123456789abcdef01234567";
    let mut meta = RecordingMeta {
        recording_id: fallback.into(),
        mode: Some(RecordingMode::Docked),
        ..Default::default()
    };
    crate::client::sidecar::apply(&mut meta, &fields);
    crate::client::sidecar::sanitize(&mut meta, fallback);
    assert_eq!(meta.validate(), Ok(()), "sanitised metadata validates");
    let req = Request::Upload {
        meta: Box::new(meta),
        size: Some(crate::limits::MAX_FILE_SIZE),
        device_clock: Some("2026-12-06T08:00:00.123456789+08:00".into()),
    };
    frame::encode_msg(&req).expect("sanitised metadata fits in one upload request");
}

/// An MP4-family original as the remux stage reads it directly: the
/// top-level box walk (typefinding, a missing index) and every track's
/// sample tables.
pub fn mp4(data: &[u8]) {
    let _ = typefind::is_fragmented_mp4(data);
    let len = data.len() as u64;
    let _ = mp4::missing_index_in(&mut Cursor::new(data), len);
    let Ok(Some(moov)) = mp4::read_moov(&mut Cursor::new(data), len) else {
        return;
    };
    for id in mp4::track_ids(&moov).into_iter().take(4) {
        let Some(t) = mp4::track_in_moov(&moov, len, id, 0) else {
            continue;
        };
        for s in &t.samples {
            assert!(s.offset + s.size as u64 <= len, "samples lie in the file");
            let _ = t.times_ns(s);
        }
        if let Some(first) = t.samples.first() {
            let _ = mp4::TailSamples::find(&t, t.to_ns(first.dts), None);
        }
    }
}

/// The derivative's fMP4 as the self-check reads it: an init segment and
/// fragments (NUL-free splitting would not do for binary data, so the first
/// four bytes give the init segment's length).
pub fn fmp4(data: &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let n = (u32::from_be_bytes(*head) as usize).min(rest.len());
    let (init, fragments) = rest.split_at(n);
    let mut copy = init.to_vec();
    if fmp4::clear_creation_times(&mut copy).is_ok() {
        assert_eq!(copy.len(), init.len(), "cleared in place");
    }
    let Ok(mut tl) = fmp4::Timeline::from_init(init) else {
        return;
    };
    let _ = tl.fragment(fragments);
    for t in tl.tracks() {
        if let (Some(a), Some(b)) = (t.first, t.end) {
            let _ = (t.seconds(a), t.seconds(b));
        }
    }
}

/// H.264 as the timestamp restorer reads it: an AVCDecoderConfigurationRecord
/// (the first part, length-prefixed by two bytes) and access units, in
/// AVC framing with the record's length size and in Annex B.
pub fn h264(data: &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let n = (u16::from_be_bytes(*head) as usize).min(rest.len());
    let (record, units) = rest.split_at(n);
    let mut avc = h264::PocTracker::default();
    let length_size = (record.get(4).copied().unwrap_or(3) & 3) as usize + 1;
    if avc.add_avcc(record).is_ok() {
        for au in units.chunks(256) {
            let _ = avc.access_unit(h264::avcc_nals(au, length_size));
        }
    }
    let mut annexb = h264::PocTracker::default();
    for au in units.split(|&b| b == 0xff) {
        let _ = annexb.access_unit(h264::annexb_nals(au));
    }
}

/// A manifest read back from storage, checked as `custody verify` checks
/// it without the objects; the wall's VOD playlist is made from it.
pub fn manifest(data: &[u8]) {
    let Ok(m) = serde_json::from_slice::<Manifest>(data) else {
        return;
    };
    let _ = check_chain(&m.objects);
    let _ = verify::offline::manifest(&m);
    let _ = crate::view::hls::vod(&m);
    serde_json::from_slice::<Manifest>(&m.to_bytes()).expect("a manifest read parses again");
}

/// A live recording's journal chunks (NUL-separated) read back from
/// storage, checked as `custody verify` checks an open recording.
pub fn journal(data: &[u8]) {
    let docs = parts(data, 8);
    let prefix = "records/c/2026/12/06/r/i";
    let chunks: Vec<(String, JournalChunk)> = docs
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let j = serde_json::from_slice::<JournalChunk>(d).ok()?;
            Some((layout::journal_key(prefix, i as u64), j))
        })
        .collect();
    if chunks.is_empty() {
        return;
    }
    let _ = verify::offline::journal(prefix, &chunks);
    let entries: Vec<ObjectEntry> = chunks.iter().flat_map(|(_, j)| j.entries.clone()).collect();
    let _ = check_chain(&entries);
    let chunks: Vec<JournalChunk> = chunks.into_iter().map(|(_, j)| j).collect();
    let head = JournalHead::over(docs.iter().copied());
    assert_eq!(head.chunks, docs.len() as u64);
    for j in &chunks {
        serde_json::from_slice::<JournalChunk>(&j.to_bytes()).expect("a chunk read parses again");
    }
}

/// The other documents read back from storage: a checkpoint (checked
/// against journal chunks that follow it, NUL-separated), a header, a
/// locator, an annotation, a catalog line.
pub fn stored_doc(data: &[u8]) {
    let docs = parts(data, 8);
    let first = docs[0];
    if let Ok(cp) = serde_json::from_slice::<Checkpoint>(first) {
        let hashes: Vec<chain::Hash> = docs[1..].iter().map(|d| chain::sha256(d)).collect();
        let _ = verify::offline::checkpoint(&cp, &hashes);
        let again = serde_json::to_vec(&cp).expect("a checkpoint serialises");
        assert_eq!(serde_json::from_slice::<Checkpoint>(&again).ok(), Some(cp));
    }
    if let Ok(h) = serde_json::from_slice::<HeaderDoc>(first) {
        let prefix = String::from_utf8_lossy(docs.get(1).copied().unwrap_or_default());
        let _ = verify::offline::header(&prefix, &h);
        let _ = h.meta.validate();
        serde_json::from_slice::<HeaderDoc>(&h.to_bytes()).expect("a header read parses again");
    }
    if let Ok(loc) = serde_json::from_slice::<custody_format::locator::Locator>(first) {
        let _ = crate::locate::check_locator(&loc, &loc.recorder, &loc.recording_id);
    }
    if let Ok(a) = serde_json::from_slice::<crate::annotate::Annotation>(first) {
        let _ = serde_json::to_vec(&a).expect("an annotation serialises");
    }
    if let Ok(e) = serde_json::from_slice::<crate::catalog::Entry>(first) {
        let _ = crate::catalog::Filter::default().matches(&e);
    }
}

/// The wall's search query (`/api/recordings?…`) as the handler reads it,
/// matched against a catalog line that follows it after a NUL.
pub fn wall_query(data: &[u8]) {
    let docs = parts(data, 2);
    let query = String::from_utf8_lossy(docs[0]);
    let Ok(uri) = format!("/api/recordings?{query}").parse::<axum::http::Uri>() else {
        return;
    };
    let Ok(axum::extract::Query(q)) =
        axum::extract::Query::<crate::catalog::Filter>::try_from_uri(&uri)
    else {
        return;
    };
    if q.check_times().is_err() {
        return;
    }
    if let Some(e) = docs
        .get(1)
        .and_then(|d| serde_json::from_slice::<crate::catalog::Entry>(d).ok())
    {
        let _ = q.matches(&e);
    }
}

/// The codecs the wall's playlists announce, read from a stored init
/// segment.
pub fn hls_codecs(data: &[u8]) {
    let (codecs, _) = crate::view::hls::codecs(data);
    assert!(
        !codecs.contains(['\n', '\r', '"']),
        "CODECS is a quoted playlist attribute: {codecs:?}"
    );
}

#[cfg(test)]
mod tests {
    //! The CI short run: every committed corpus file of every target, and
    //! a fixed number of seeded mutations of each, through the same
    //! functions the coverage-guided runs call.

    use super::*;

    /// Mutations per target, of corpus files picked at random: enough to
    /// reach past the corpus's shapes, few enough that all targets take
    /// seconds in a debug build.
    const MUTATIONS: usize = 4000;

    /// SplitMix64: a seeded, dependency-free generator, so every run
    /// mutates alike.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Values that sit on the edges parsers get wrong.
    const INTERESTING: &[&[u8]] = &[
        &[0],
        &[0xff],
        &[0x7f],
        &[0x80],
        &[0, 0, 0, 0],
        &[0, 0, 0, 1],
        &[0, 0, 0, 8],
        &[0xff, 0xff, 0xff, 0xff],
        &[0x7f, 0xff, 0xff, 0xff],
        &[0x80, 0, 0, 0],
        b"18446744073709551615",
        b"-1",
        b"1e400",
        b"null",
        b"\"\\u0000\"",
    ];

    /// One mutation of `input`, in the ways libFuzzer mutates: flip a bit,
    /// set a byte, insert or overwrite an edge value, cut, duplicate a
    /// stretch, splice in another corpus file.
    fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
        let mut v = input.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(v.len() + 1);
            match rng.below(7) {
                0 if !v.is_empty() => {
                    let i = at.min(v.len() - 1);
                    v[i] ^= 1 << rng.below(8);
                }
                1 if !v.is_empty() => {
                    let i = at.min(v.len() - 1);
                    v[i] = rng.next() as u8;
                }
                2 => {
                    let x = INTERESTING[rng.below(INTERESTING.len())];
                    v.splice(at..at, x.iter().copied());
                }
                3 => {
                    let x = INTERESTING[rng.below(INTERESTING.len())];
                    let end = (at + x.len()).min(v.len());
                    v.splice(at..end, x.iter().copied());
                }
                4 => v.truncate(at),
                5 if !v.is_empty() => {
                    let from = rng.below(v.len());
                    let len = rng.below(v.len() - from + 1).min(4096);
                    let piece = v[from..from + len].to_vec();
                    v.splice(at..at, piece);
                }
                _ => {
                    let from = rng.below(other.len() + 1);
                    v.truncate(at);
                    v.extend_from_slice(&other[from..]);
                }
            }
        }
        v
    }

    fn corpus(target: &str) -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    }

    #[test]
    fn every_target_has_a_fuzz_binary_and_a_corpus() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        for (name, _) in TARGETS {
            let src = std::fs::read_to_string(root.join(format!("fuzz_targets/{name}.rs")))
                .unwrap_or_else(|e| panic!("fuzz_targets/{name}.rs: {e}"));
            assert!(
                src.contains(&format!("custody::fuzzing::{name}(")),
                "{name}.rs calls its target"
            );
            assert!(
                manifest.contains(&format!("name = \"{name}\"")),
                "{name} in Cargo.toml"
            );
            assert!(!corpus(name).is_empty(), "{name} has a corpus");
        }
    }

    #[test]
    fn corpus_and_seeded_mutations_replay_through_every_target() {
        for (name, target) in TARGETS {
            let files = corpus(name);
            for f in &files {
                replay(name, *target, f);
            }
            let mut rng = Rng(0x5eed ^ name.len() as u64);
            for _ in 0..MUTATIONS {
                let f = &files[rng.below(files.len())];
                let other = &files[rng.below(files.len())];
                let input = mutate(&mut rng, f, other);
                replay(name, *target, &input);
            }
        }
    }

    /// Runs one input; a panic fails the test naming the target and where
    /// the input was saved (`fuzz/target/.../NAME fuzz/...` reproduces it).
    fn replay(name: &str, target: Target, input: &[u8]) {
        if std::panic::catch_unwind(|| target(input)).is_err() {
            let path = std::env::temp_dir().join(format!("custody-fuzz-{name}-failure"));
            std::fs::write(&path, input).unwrap();
            panic!(
                "fuzz target {name} failed on the input saved in {}",
                path.display()
            );
        }
    }
}
