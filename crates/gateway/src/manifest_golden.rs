//! Golden bytes of the manifests the gateway writes, docked and live, from
//! fixed inputs: the exact JSON a verifier reads (`docs/manifest.md`). The
//! expected texts were produced by the code as it stood before docked and
//! live recordings shared one construction (issue 12), so any change to a
//! stored byte made while restructuring it fails here.

use custody_format::chain::{self, Hash};
use custody_format::deadline::{Deadline, DeadlineRecord};
use custody_format::journal::Progress;
use custody_format::manifest::{
    ByteRange, DerivationStatus, DerivationSummary, DerivativeHole, DerivedFrom, Gap, HeaderDoc,
    Manifest, MediaRange, ObjectEntry, Recipe, Role, Track, check_chain,
};
use custody_media::derive::{Derivation, DerivedFile};

use crate::archive::{Docked, docked_manifest};
use crate::live::recording::{
    Closed, DerivationFacts, LiveClose, LiveState, chain_next, live_derivation, live_manifest,
};

const DOCKED_HEADER: &str = r#"{
  "format": "custody-header/1",
  "recorder": "bwc-7",
  "recording_id": "r-0001.docked",
  "method": { "device_kind": "body-worn-recorder", "mode": "docked" },
  "received_at": "2026-12-01T02:00:05.5Z",
  "device_clock": { "at": "2026-12-01T10:00:02+08:00", "skew_seconds": -3 },
  "gateway": "gw-east",
  "uploader": {
    "device": "rack-3",
    "device_kind": "docking-rack",
    "certificate_sha256": "aa"
  },
  "ledger": {
    "device": "bwc-7",
    "kind": "body-worn-recorder",
    "status": "active",
    "custodian": "equipment room",
    "unit": "traffic brigade",
    "officer": "o-17",
    "officer_name": "Li Ming",
    "enforcement": true
  },
  "meta": {
    "recording_id": "r-0001.docked",
    "mode": "docked",
    "started_at": "2026-12-01T09:00:00+08:00",
    "ended_at": "2026-12-01T09:30:00+08:00",
    "officer": "o-17",
    "proof_object": "the driver refused the breath test",
    "occasion": "administrative-coercion",
    "full_process": { "mandatory": true, "reason": "personal-liberty" },
    "category": "traffic",
    "case_id": "case-42",
    "file_name": "CLIP0001.MP4"
  },
  "declared_size": 4096,
  "missing": [],
  "signing_key": "bb",
  "retention": { "class": "permanent", "reason": "major-case" },
  "copy_of": { "relation": "docked-copy-of", "recorder": "bwc-7", "recording_id": "r-0001" }
}"#;

const LIVE_HEADER: &str = r#"{
  "format": "custody-header/1",
  "recorder": "bwc-7",
  "recording_id": "r-0001",
  "method": { "device_kind": "body-worn-recorder", "mode": "live" },
  "received_at": "2026-12-01T01:00:00.25Z",
  "gateway": "gw-east",
  "uploader": {
    "device": "bwc-7",
    "device_kind": "body-worn-recorder",
    "certificate_sha256": "cc"
  },
  "ledger": {
    "device": "bwc-7",
    "kind": "body-worn-recorder",
    "status": "active",
    "custodian": "equipment room",
    "unit": "",
    "officer": null,
    "officer_name": null,
    "enforcement": null
  },
  "meta": {
    "recording_id": "r-0001",
    "mode": "live",
    "started_at": "2026-12-01T09:00:00+08:00",
    "occasion": "on-site-inspection",
    "full_process": { "mandatory": true }
  },
  "missing": ["officer", "proof_object"],
  "signing_key": "bb",
  "retention": { "class": "standard", "years": 2 }
}"#;

const PREFIX: &str = "records/traffic/2026/12/01/bwc-7/r-0001";

fn header(json: &str) -> HeaderDoc {
    serde_json::from_str(json).expect("test header parses")
}

fn hash(s: &str) -> Hash {
    chain::sha256(s.as_bytes())
}

fn time(s: &str) -> time::OffsetDateTime {
    custody_format::time_fmt::parse(s).expect("test time parses")
}

/// A deadline record as the policy writes one (its calendar is not this
/// test's business).
fn deadline(ended_at: &str, basis: &str, stored_at: &str) -> DeadlineRecord {
    DeadlineRecord {
        ended_at: Some(ended_at.into()),
        basis: Some(basis.into()),
        deadline: Some(Deadline {
            due: "2026-12-04T00:00:00+08:00".into(),
            working_days: 2,
            calendar: "test-calendar".into(),
            sources: Vec::new(),
            provisional_years: Vec::new(),
        }),
        stored_at: stored_at.into(),
        status: custody_format::deadline::DeadlineStatus::Met,
        reason: None,
    }
}

fn tracks() -> Vec<Track> {
    vec![
        Track {
            caps: "video/x-h264, stream-format=avc".into(),
            included: true,
            reason: None,
        },
        Track {
            caps: "audio/x-opus".into(),
            included: false,
            reason: Some("no CMAF mapping".into()),
        },
    ]
}

fn file(name: &str, start: f64, end: f64) -> DerivedFile {
    DerivedFile {
        name: name.into(),
        size: name.len() as u64 * 100,
        sha256: hash(name),
        start,
        end,
    }
}

fn docked(derivation: &Derivation) -> Manifest {
    let h = header(DOCKED_HEADER);
    let header_bytes = h.to_bytes();
    docked_manifest(Docked {
        header: &h,
        header_bytes: &header_bytes,
        prefix: "records/traffic/2026/12/01/bwc-7/r-0001.docked",
        declared_sha256: Some(&hex::encode(hash("original"))),
        size: 4096,
        sha256: &hash("original"),
        derivation,
        gateway: "gw-west",
        stored_at: time("2026-12-01T02:01:00.125Z"),
        deadline: deadline("2026-12-01T01:30:00Z", "device", "2026-12-01T02:01:00.125Z"),
    })
}

fn text(m: &Manifest) -> String {
    String::from_utf8(m.to_bytes()).expect("utf-8")
}

/// The chain values in `m` are those its hashes make (`docs/manifest.md`
/// §4), ending at its head.
fn assert_chained(m: &Manifest) {
    let head = check_chain(&m.objects).expect("chain checks");
    assert_eq!(hex::encode(head), m.chain_head);
    assert_eq!(m.object_count, m.objects.len() as u64);
}

/// The exact JSON of a manifest's `derivation`.
fn derivation_of(m: &Manifest) -> String {
    serde_json::to_string_pretty(&m.derivation).expect("serialises")
}

#[test]
fn docked_manifest_bytes() {
    let derived = Derivation::Derived {
        input: "video/quicktime".into(),
        pipeline: "quicktime".into(),
        tracks: tracks(),
        init: file("init.mp4", 0.0, 0.0),
        segments: vec![
            file("seg-000000.m4s", 0.0, 2.0),
            file("seg-000001.m4s", 2.0, 3.5),
        ],
        recipe: Some(Recipe {
            pipeline_description: "qtdemux name=d\n".into(),
            segment_seconds: 2.0,
            gstreamer: "1.22.0".into(),
            fmp4mux: "0.14.5".into(),
        }),
    };
    let m = docked(&derived);
    assert_eq!(text(&m), EXPECTED_DOCKED);
    assert_chained(&m);
}

#[test]
fn docked_derivation_none_and_failed_bytes() {
    let none = docked(&Derivation::None {
        input: Some("image/jpeg".into()),
        reason: "not audio-visual".into(),
    });
    assert_eq!(derivation_of(&none), EXPECTED_DOCKED_NONE);
    let failed = docked(&Derivation::Failed {
        input: Some("video/quicktime".into()),
        tracks: tracks(),
        reason: "the muxer refused the stream".into(),
    });
    assert_eq!(derivation_of(&failed), EXPECTED_DOCKED_FAILED);
    // Without derived objects, the chain holds the header and the original.
    for m in [none, failed] {
        assert_eq!(m.object_count, 2);
        assert_eq!(m.objects[1].role, Role::Original);
    }
}

/// The objects of a live recording as `LiveRecording` chains them: the
/// header, a raw chunk, an init and a media segment derived from it, and
/// a marker annotation.
fn live_objects(progress: &mut Progress) -> Vec<ObjectEntry> {
    let at = |s: u32| format!("2026-12-01T01:00:{s:02}Z");
    let header_bytes = header(LIVE_HEADER).to_bytes();
    let mut e = chain_next(
        progress,
        PREFIX,
        Role::Header,
        "json",
        header_bytes.len() as u64,
        &chain::sha256(&header_bytes),
        at(0),
    );
    e.content_type = Some("application/json".into());
    let mut objects = vec![e];

    let mut raw = chain_next(
        progress,
        PREFIX,
        Role::RawChunk,
        "ts",
        1000,
        &hash("raw"),
        at(4),
    );
    raw.range = Some(ByteRange {
        offset: 0,
        length: 1000,
    });
    raw.content_type = Some("video/mp2t".into());
    let from = DerivedFrom {
        index: raw.index,
        key: raw.key.clone(),
        sha256: raw.sha256.clone(),
    };
    objects.push(raw);

    let mut init = chain_next(
        progress,
        PREFIX,
        Role::Init,
        "mp4",
        700,
        &hash("init"),
        at(4),
    );
    init.content_type = Some("video/mp4".into());
    init.derived_from = Some(from.clone());
    objects.push(init);

    let mut seg = chain_next(
        progress,
        PREFIX,
        Role::Segment,
        "m4s",
        900,
        &hash("seg"),
        at(4),
    );
    seg.content_type = Some("video/mp4".into());
    seg.derived_from = Some(from);
    seg.media = Some(MediaRange {
        start: 0.0,
        end: 3.9,
    });
    objects.push(seg);

    let mut mark = chain_next(
        progress,
        PREFIX,
        Role::Annotation,
        "json",
        120,
        &hash("mark"),
        at(5),
    );
    mark.content_type = Some("application/json".into());
    objects.push(mark);
    objects
}

#[test]
fn live_manifest_bytes() {
    let h = header(LIVE_HEADER);
    let mut progress = Progress::default();
    let objects = live_objects(&mut progress);
    progress.media_end = 7.5;
    progress.segments = 1;
    let gap = Gap {
        kind: "lost-bytes".into(),
        wall_from: "2026-12-01T01:00:06Z".into(),
        wall_to: "2026-12-01T01:00:09.5Z".into(),
        media_from: 4.0,
        media_to: Some(7.5),
        bytes: Some(ByteRange {
            offset: 1000,
            length: 250,
        }),
        reason: "the recorder's buffer overflowed".into(),
    };
    let state = LiveState {
        started_at: "2026-12-01T01:00:00.25Z".into(),
        last_byte_at: "2026-12-01T01:00:20Z".into(),
        gaps: vec![gap],
        raw_ext: "ts".into(),
        raw_chunks: true,
        closed: Some(Closed {
            by: custody_format::manifest::ClosedBy::Timeout,
            at: "2026-12-01T01:01:20.75Z".into(),
        }),
        ..Default::default()
    };
    let derivation = live_derivation(
        Some(DerivationSummary {
            status: DerivationStatus::Derived,
            input: Some("video/mpegts".into()),
            pipeline: Some("mpegts".into()),
            tracks: tracks(),
            reason: custody_media::remux::left_out_reason(&tracks()),
            recipe: None,
            holes: Vec::new(),
        }),
        &DerivationFacts {
            holes: vec![DerivativeHole {
                media_from: 3.9,
                media_to: 4.0,
                reason: "gateway restarted".into(),
            }],
            log: false,
            media_on: true,
            stream_bytes: 2250,
            segments: 1,
            derive_failed: None,
        },
    );
    let m = live_manifest(LiveClose {
        header: &h,
        prefix: PREFIX,
        objects,
        journal_chunks: 4,
        state: &state,
        progress: &progress,
        stream_bytes: 2250,
        derivation,
        deadline: Some(deadline(
            "2026-12-01T01:01:20.75Z",
            "gateway",
            "2026-12-01T01:01:20.75Z",
        )),
    });
    assert_eq!(text(&m), EXPECTED_LIVE);
    assert_chained(&m);
}

#[test]
fn live_derivation_statuses() {
    let base = || {
        Some(DerivationSummary {
            status: DerivationStatus::Derived,
            input: Some("video/mpegts".into()),
            pipeline: Some("mpegts".into()),
            tracks: tracks()[..1].to_vec(),
            reason: None,
            recipe: None,
            holes: Vec::new(),
        })
    };
    let facts = || DerivationFacts {
        holes: Vec::new(),
        log: false,
        media_on: true,
        stream_bytes: 10,
        segments: 0,
        derive_failed: None,
    };
    let cases = [
        (
            None,
            DerivationFacts {
                log: true,
                ..facts()
            },
        ),
        (
            None,
            DerivationFacts {
                media_on: false,
                ..facts()
            },
        ),
        (
            None,
            DerivationFacts {
                stream_bytes: 0,
                ..facts()
            },
        ),
        (
            base(),
            DerivationFacts {
                segments: 3,
                derive_failed: Some("the pipeline ended".into()),
                ..facts()
            },
        ),
        (
            None,
            DerivationFacts {
                segments: 3,
                ..facts()
            },
        ),
        (base(), facts()),
        (
            None,
            DerivationFacts {
                derive_failed: Some("no keyframe".into()),
                ..facts()
            },
        ),
    ];
    let got: Vec<String> = cases
        .into_iter()
        .map(|(base, f)| serde_json::to_string(&live_derivation(base, &f)).unwrap())
        .collect();
    assert_eq!(got, EXPECTED_LIVE_DERIVATIONS);
}

const EXPECTED_DOCKED: &str = r#"{
  "format": "custody-manifest/1",
  "recorder": "bwc-7",
  "recording_id": "r-0001.docked",
  "prefix": "records/traffic/2026/12/01/bwc-7/r-0001.docked",
  "integrity": "verified",
  "declared_sha256": "0682c5f2076f099c34cfdd15a9e063849ed437a49677e6fcc5b4198c76575be5",
  "metadata_complete": true,
  "missing": [],
  "summary": {
    "officer": "o-17",
    "occasion": "administrative-coercion",
    "mandatory_full_process": true,
    "category": "traffic",
    "case_id": "case-42",
    "proof_object": "the driver refused the breath test",
    "started_at": "2026-12-01T09:00:00+08:00",
    "received_at": "2026-12-01T02:00:05.5Z",
    "method": {
      "device_kind": "body-worn-recorder",
      "mode": "docked"
    },
    "unit": "traffic brigade",
    "officer_name": "Li Ming",
    "clock_skew_seconds": -3
  },
  "objects": [
    {
      "index": 0,
      "key": "records/traffic/2026/12/01/bwc-7/r-0001.docked/000000-header.json",
      "role": "header",
      "size": 1397,
      "sha256": "b23097fa9a6c219017ef300eb3b0ef5efa19ac2fd9d30b9831a922f926d2746f",
      "chain": "613310e51f2e26a22ce64ecd5d2b81136b6918387c70a64866bc4417f25c3bca",
      "content_type": "application/json"
    },
    {
      "index": 1,
      "key": "records/traffic/2026/12/01/bwc-7/r-0001.docked/000001-original.mp4",
      "role": "original",
      "size": 4096,
      "sha256": "0682c5f2076f099c34cfdd15a9e063849ed437a49677e6fcc5b4198c76575be5",
      "chain": "460a0151502bc8ab0e132639739c17dd21ee27c6cbdf6f0a091d645985d242d1"
    },
    {
      "index": 2,
      "key": "records/traffic/2026/12/01/bwc-7/r-0001.docked/000002-init.mp4",
      "role": "init",
      "size": 800,
      "sha256": "b880fccf381b161a9d28a1cd0411f4ab5f3219d44b86627fbe87e02a3fa6a841",
      "chain": "858e95efdf50fab2c3f3e9d1a049f22919e39db6e7ebccff3fbd9d177933fc67",
      "content_type": "video/mp4",
      "derived_from": {
        "index": 1,
        "key": "records/traffic/2026/12/01/bwc-7/r-0001.docked/000001-original.mp4",
        "sha256": "0682c5f2076f099c34cfdd15a9e063849ed437a49677e6fcc5b4198c76575be5"
      }
    },
    {
      "index": 3,
      "key": "records/traffic/2026/12/01/bwc-7/r-0001.docked/000003-segment.m4s",
      "role": "segment",
      "size": 1400,
      "sha256": "8b0c930a9d0d60ed5c667458fd7975f125ce5d2af42e80fb7323fe3ae43d3442",
      "chain": "43ad47f236c86578ea21765f90e4068547a33aa8b31a27f086fd886f859356e5",
      "content_type": "video/mp4",
      "derived_from": {
        "index": 1,
        "key": "records/traffic/2026/12/01/bwc-7/r-0001.docked/000001-original.mp4",
        "sha256": "0682c5f2076f099c34cfdd15a9e063849ed437a49677e6fcc5b4198c76575be5"
      },
      "media": {
        "start": 0.0,
        "end": 2.0
      }
    },
    {
      "index": 4,
      "key": "records/traffic/2026/12/01/bwc-7/r-0001.docked/000004-segment.m4s",
      "role": "segment",
      "size": 1400,
      "sha256": "5b81c756e25c084f3e6ef6760dc5f59cd9c1392a777c279f0908ed7dc9c193a3",
      "chain": "6fbe89001afca47ee55327038fdff3120ec782336ecff1b9c79a5b7dbc024e4b",
      "content_type": "video/mp4",
      "derived_from": {
        "index": 1,
        "key": "records/traffic/2026/12/01/bwc-7/r-0001.docked/000001-original.mp4",
        "sha256": "0682c5f2076f099c34cfdd15a9e063849ed437a49677e6fcc5b4198c76575be5"
      },
      "media": {
        "start": 2.0,
        "end": 3.5
      }
    }
  ],
  "object_count": 5,
  "chain_head": "6fbe89001afca47ee55327038fdff3120ec782336ecff1b9c79a5b7dbc024e4b",
  "finalized_at": "2026-12-01T02:01:00.125Z",
  "gateway": "gw-west",
  "derivation": {
    "status": "derived",
    "input": "video/quicktime",
    "pipeline": "quicktime",
    "tracks": [
      {
        "caps": "video/x-h264, stream-format=avc",
        "included": true
      },
      {
        "caps": "audio/x-opus",
        "included": false,
        "reason": "no CMAF mapping"
      }
    ],
    "reason": "1 of 2 tracks left out: audio/x-opus (no CMAF mapping)",
    "recipe": {
      "pipeline_description": "qtdemux name=d\n",
      "segment_seconds": 2.0,
      "gstreamer": "1.22.0",
      "fmp4mux": "0.14.5"
    }
  },
  "links": [
    {
      "relation": "docked-copy-of",
      "recorder": "bwc-7",
      "recording_id": "r-0001"
    }
  ],
  "deadline": {
    "ended_at": "2026-12-01T01:30:00Z",
    "basis": "device",
    "deadline": {
      "due": "2026-12-04T00:00:00+08:00",
      "working_days": 2,
      "calendar": "test-calendar"
    },
    "stored_at": "2026-12-01T02:01:00.125Z",
    "status": "met"
  },
  "retention": {
    "class": "permanent",
    "reason": "major-case",
    "from": "2026-12-01T02:00:05.5Z"
  }
}
"#;

const EXPECTED_DOCKED_NONE: &str = r#"{
  "status": "none",
  "input": "image/jpeg",
  "reason": "not audio-visual"
}"#;
const EXPECTED_DOCKED_FAILED: &str = r#"{
  "status": "failed",
  "input": "video/quicktime",
  "tracks": [
    {
      "caps": "video/x-h264, stream-format=avc",
      "included": true
    },
    {
      "caps": "audio/x-opus",
      "included": false,
      "reason": "no CMAF mapping"
    }
  ],
  "reason": "the muxer refused the stream"
}"#;

const EXPECTED_LIVE: &str = r#"{
  "format": "custody-manifest/1",
  "recorder": "bwc-7",
  "recording_id": "r-0001",
  "prefix": "records/traffic/2026/12/01/bwc-7/r-0001",
  "integrity": "verified",
  "declared_sha256": "",
  "metadata_complete": false,
  "missing": [
    "officer",
    "proof_object"
  ],
  "summary": {
    "officer": null,
    "occasion": "on-site-inspection",
    "mandatory_full_process": true,
    "category": null,
    "case_id": null,
    "proof_object": null,
    "started_at": "2026-12-01T09:00:00+08:00",
    "received_at": "2026-12-01T01:00:00.25Z",
    "method": {
      "device_kind": "body-worn-recorder",
      "mode": "live"
    }
  },
  "objects": [
    {
      "index": 0,
      "key": "records/traffic/2026/12/01/bwc-7/r-0001/000000-header.json",
      "role": "header",
      "size": 914,
      "sha256": "e6119efd313b03557f5b72e853c5a6a66eef73ba872253aa2e693be7f14022a7",
      "chain": "817f025b92b325fb85ea8534ba8371d22b1417b6b23d627c342b1085a7134751",
      "content_type": "application/json",
      "at": "2026-12-01T01:00:00Z"
    },
    {
      "index": 1,
      "key": "records/traffic/2026/12/01/bwc-7/r-0001/000001-raw.ts",
      "role": "raw-chunk",
      "size": 1000,
      "sha256": "d7439bee24773bcbfa2d0a97947ee36227b10d1022b1a55847e928965bb6bfde",
      "chain": "c47a5b4d3f5ce8895258d4ef7e69a41b29dd024ab4cc2263a303e60904d288b9",
      "content_type": "video/mp2t",
      "range": {
        "offset": 0,
        "length": 1000
      },
      "at": "2026-12-01T01:00:04Z"
    },
    {
      "index": 2,
      "key": "records/traffic/2026/12/01/bwc-7/r-0001/000002-init.mp4",
      "role": "init",
      "size": 700,
      "sha256": "bb54068aea85faa7e487530083366be9962390af822e4c71ef1aca7033c83e66",
      "chain": "698469c5b0c4f2142c101e8104b8f8eed37a62919419bf52b3dca285f07de113",
      "content_type": "video/mp4",
      "derived_from": {
        "index": 1,
        "key": "records/traffic/2026/12/01/bwc-7/r-0001/000001-raw.ts",
        "sha256": "d7439bee24773bcbfa2d0a97947ee36227b10d1022b1a55847e928965bb6bfde"
      },
      "at": "2026-12-01T01:00:04Z"
    },
    {
      "index": 3,
      "key": "records/traffic/2026/12/01/bwc-7/r-0001/000003-segment.m4s",
      "role": "segment",
      "size": 900,
      "sha256": "ea42cfa102bd7aac62b7cc8f323802129072eca6c96585421adc1c5ace46c1dd",
      "chain": "3f6bce98465704a60c9445c1aefa51a1d5e9776f7f4fcf6555b905ae03075d0b",
      "content_type": "video/mp4",
      "derived_from": {
        "index": 1,
        "key": "records/traffic/2026/12/01/bwc-7/r-0001/000001-raw.ts",
        "sha256": "d7439bee24773bcbfa2d0a97947ee36227b10d1022b1a55847e928965bb6bfde"
      },
      "media": {
        "start": 0.0,
        "end": 3.9
      },
      "at": "2026-12-01T01:00:04Z"
    },
    {
      "index": 4,
      "key": "records/traffic/2026/12/01/bwc-7/r-0001/000004-annotation.json",
      "role": "annotation",
      "size": 120,
      "sha256": "6201eb4dccc956cc4fa3a78dca0c2888177ec52efd48f125df214f046eb43138",
      "chain": "e48be178d86f7240f5cc045c471427c8eef676f24fb51173b14d38175a8e57df",
      "content_type": "application/json",
      "at": "2026-12-01T01:00:05Z"
    }
  ],
  "object_count": 5,
  "chain_head": "e48be178d86f7240f5cc045c471427c8eef676f24fb51173b14d38175a8e57df",
  "finalized_at": "2026-12-01T01:01:20.75Z",
  "gateway": "gw-east",
  "derivation": {
    "status": "derived",
    "input": "video/mpegts",
    "pipeline": "mpegts",
    "tracks": [
      {
        "caps": "video/x-h264, stream-format=avc",
        "included": true
      },
      {
        "caps": "audio/x-opus",
        "included": false,
        "reason": "no CMAF mapping"
      }
    ],
    "reason": "1 of 2 tracks left out: audio/x-opus (no CMAF mapping)",
    "holes": [
      {
        "media_from": 3.9,
        "media_to": 4.0,
        "reason": "gateway restarted"
      }
    ]
  },
  "live": {
    "closed_by": "timeout",
    "started_at": "2026-12-01T01:00:00.25Z",
    "ended_at": "2026-12-01T01:01:20.75Z",
    "media_duration": 7.5,
    "stream_bytes": 2250,
    "gaps": [
      {
        "kind": "lost-bytes",
        "wall_from": "2026-12-01T01:00:06Z",
        "wall_to": "2026-12-01T01:00:09.5Z",
        "media_from": 4.0,
        "media_to": 7.5,
        "bytes": {
          "offset": 1000,
          "length": 250
        },
        "reason": "the recorder's buffer overflowed"
      }
    ],
    "complete": false,
    "full_process_violation": true,
    "journal_chunks": 4,
    "raw_chunks": true
  },
  "deadline": {
    "ended_at": "2026-12-01T01:01:20.75Z",
    "basis": "gateway",
    "deadline": {
      "due": "2026-12-04T00:00:00+08:00",
      "working_days": 2,
      "calendar": "test-calendar"
    },
    "stored_at": "2026-12-01T01:01:20.75Z",
    "status": "met"
  },
  "retention": {
    "class": "standard",
    "years": 2,
    "from": "2026-12-01T01:01:20.75Z",
    "until": "2028-12-01T01:01:20.75Z"
  }
}
"#;

/// Log, derivation off, no bytes, derived part way, derived without a
/// finished run, failed after a run that made no segment, failed.
const EXPECTED_LIVE_DERIVATIONS: [&str; 7] = [
    r#"{"status":"none","reason":"a log kept by the gateway, not media"}"#,
    r#"{"status":"none","reason":"derivation is turned off on this gateway"}"#,
    r#"{"status":"none","reason":"the recording holds no media: the recorder sent no bytes"}"#,
    r#"{"status":"derived","input":"video/mpegts","pipeline":"mpegts","tracks":[{"caps":"video/x-h264, stream-format=avc","included":true}],"reason":"derivation stopped part way: the pipeline ended"}"#,
    r#"{"status":"derived"}"#,
    r#"{"status":"failed","input":"video/mpegts","pipeline":"mpegts","tracks":[{"caps":"video/x-h264, stream-format=avc","included":true}],"reason":"no media segment was produced"}"#,
    r#"{"status":"failed","reason":"no keyframe"}"#,
];
