//! Malformed and oversized messages get a clear error code on their stream;
//! the connection survives and the gateway never panics.

mod common;

use common::*;
use custody::protocol::frame::{self, Frame};
use custody::protocol::{Reply, Request};

/// Sends `bytes` on a new stream and returns the gateway's first reply.
async fn raw(conn: &quinn::Connection, bytes: &[u8], finish: bool) -> Reply {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let _ = send.write_all(bytes).await;
    if finish {
        let _ = send.finish();
    }
    loop {
        match frame::read_frame(&mut recv).await.unwrap() {
            Some(Frame::Msg(m)) => {
                let r: Reply = frame::decode(&m).unwrap();
                if !matches!(r, Reply::Accepted { .. } | Reply::Ack { .. }) {
                    return r;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn msg(v: serde_json::Value) -> Vec<u8> {
    frame::encode_msg(&v).unwrap()
}

fn upload_req(id: &str, size: u64) -> Vec<u8> {
    msg(serde_json::json!({"type":"upload","meta":{"recording_id":id},"size":size}))
}

fn expect_error(r: &Reply, name: &str) {
    match r {
        Reply::Error(b) => assert_eq!(b.name, name, "{b:?}"),
        other => panic!("expected error {name}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_streams_get_codes_and_the_connection_survives() {
    let w = World::new(Backend::Local);
    let mut gw = w.gateway();
    let client = w.client("bwc-1", &gw);
    let conn = client.connect().await.unwrap();

    let mut big_header = vec![1u8];
    big_header.extend_from_slice(&(10u32 << 20).to_be_bytes());
    let mut data_first = frame::data_header(3).to_vec();
    data_first.extend_from_slice(b"abc");
    let mut past_declared = upload_req("r-past", 4);
    past_declared.extend_from_slice(&frame::data_header(5));
    past_declared.extend_from_slice(b"12345");
    let mut bad_finish = upload_req("r-badfinish", 1);
    bad_finish.extend_from_slice(&frame::data_header(1));
    bad_finish.push(b'x');
    bad_finish.extend(msg(
        serde_json::json!({"type":"finish","size":1,"sha256":"XYZ"}),
    ));
    let mut wrong_msg = upload_req("r-wrongmsg", 1);
    wrong_msg.extend(msg(serde_json::json!({"type":"status","recording_id":"r"})));
    let mut huge_data = upload_req("r-huge", 10);
    huge_data.extend_from_slice(&[2, 0, 0x20, 0, 0]);

    let cases: Vec<(&str, Vec<u8>, bool, &str)> = vec![
        (
            "unknown frame type",
            vec![7, 0, 0, 0, 1, 0],
            false,
            "bad_frame",
        ),
        ("oversized message", big_header, false, "frame_too_large"),
        (
            "not JSON",
            {
                let mut v = vec![1, 0, 0, 0, 5];
                v.extend_from_slice(b"{oops");
                v
            },
            true,
            "bad_message",
        ),
        (
            "unknown request",
            msg(serde_json::json!({"type":"delete_everything"})),
            true,
            "bad_message",
        ),
        (
            "unknown field",
            msg(serde_json::json!({"type":"upload","meta":{"recording_id":"a","evil":1}})),
            true,
            "bad_message",
        ),
        (
            "data before request",
            data_first,
            true,
            "unexpected_message",
        ),
        (
            "bad recording id",
            upload_req("../../etc/passwd", 1),
            true,
            "invalid_metadata",
        ),
        (
            "bad time",
            msg(
                serde_json::json!({"type":"upload","meta":{"recording_id":"r-t","started_at":"noon"}}),
            ),
            true,
            "invalid_metadata",
        ),
        (
            "declared too large",
            upload_req("r-big", 1 << 41),
            true,
            "too_large",
        ),
        (
            "data past declared size",
            past_declared,
            true,
            "size_mismatch",
        ),
        ("finish with bad hash", bad_finish, true, "bad_message"),
        (
            "wrong message mid-upload",
            wrong_msg,
            true,
            "unexpected_message",
        ),
        ("oversized data frame", huge_data, false, "frame_too_large"),
        (
            "truncated frame",
            vec![1, 0, 0, 0, 9, b'{'],
            true,
            "bad_frame",
        ),
    ];
    for (what, bytes, finish, code) in cases {
        let r = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            raw(&conn, &bytes, finish),
        )
        .await
        .unwrap_or_else(|_| panic!("{what}: no reply"));
        expect_error(&r, code);
        // The same connection still answers.
        assert!(
            conn.close_reason().is_none(),
            "{what} closed the connection"
        );
    }

    // A well-formed request on the same connection works.
    let mut b = frame::encode_msg(&Request::Status {
        recording_id: "never-seen".into(),
        recorder: None,
    })
    .unwrap();
    b.truncate(b.len());
    match raw(&conn, &b, true).await {
        Reply::Status { state, .. } => {
            assert_eq!(state, custody::protocol::RecordingState::Unknown)
        }
        other => panic!("{other:?}"),
    }
    assert!(gw.is_running(), "gateway died");
    assert!(!gw.log().contains("panicked"), "{}", gw.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_stream_of_the_same_device_takes_over_another_device_is_refused() {
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    let client = w.client("bwc-1", &gw);
    let conn = client.connect().await.unwrap();
    // First stream takes the recording, sends some bytes and stalls, as a
    // recorder whose link died would.
    let (mut s1, mut r1) = conn.open_bi().await.unwrap();
    s1.write_all(&upload_req("r-dup", 100)).await.unwrap();
    s1.write_all(&frame::data_header(10)).await.unwrap();
    s1.write_all(b"0123456789").await.unwrap();
    let accepted = |f: Option<Frame>| match f {
        Some(Frame::Msg(m)) => frame::decode::<Reply>(&m).unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        accepted(frame::read_frame(&mut r1).await.unwrap()),
        Reply::Accepted { offset: 0, .. }
    ));

    // A docking rack cannot take a recording another device is sending.
    let rack = w.client("rack-1", &gw);
    let rconn = rack.connect().await.unwrap();
    let req = msg(
        serde_json::json!({"type":"upload","meta":{"recording_id":"r-dup","recorder":"bwc-1"},"size":100}),
    );
    expect_error(&raw(&rconn, &req, false).await, "not_recording_owner");

    // The same device reconnecting takes over and resumes after the 10 durable bytes.
    let conn2 = w.client("bwc-1", &gw).connect().await.unwrap();
    let (mut s2, mut r2) = conn2.open_bi().await.unwrap();
    s2.write_all(&upload_req("r-dup", 100)).await.unwrap();
    match accepted(frame::read_frame(&mut r2).await.unwrap()) {
        Reply::Accepted { offset, .. } => assert_eq!(offset, 10),
        other => panic!("{other:?}"),
    }
    // The old stream is told why it was stopped.
    loop {
        match accepted(frame::read_frame(&mut r1).await.unwrap()) {
            Reply::Ack { .. } => continue,
            Reply::Error(b) => {
                assert_eq!(b.name, "superseded");
                break;
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Sends `bytes` on a new stream, ends it, and returns every reply until
/// the gateway ends its side.
async fn exchange(conn: &quinn::Connection, bytes: &[u8]) -> Vec<Reply> {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    let _ = send.finish();
    let mut replies = Vec::new();
    while let Some(f) = frame::read_frame(&mut recv).await.unwrap() {
        match f {
            Frame::Msg(m) => replies.push(frame::decode::<Reply>(&m).unwrap()),
            other => panic!("unexpected {other:?}"),
        }
    }
    replies
}

fn data(bytes: &[u8]) -> Vec<u8> {
    let mut v = frame::data_header(bytes.len()).to_vec();
    v.extend_from_slice(bytes);
    v
}

fn finish(bytes: &[u8]) -> Vec<u8> {
    msg(serde_json::json!({
        "type": "finish",
        "size": bytes.len(),
        "sha256": hex::encode(custody::chain::sha256(bytes)),
    }))
}

fn accepted_offset(replies: &[Reply]) -> u64 {
    match replies.first() {
        Some(Reply::Accepted { offset, .. }) => *offset,
        other => panic!("expected accepted, got {other:?} of {replies:?}"),
    }
}

fn refused(replies: &[Reply]) {
    assert_eq!(replies.len(), 1, "{replies:?}");
    expect_error(&replies[0], "not_recording_owner");
}

/// The refusals `device`'s usage record holds, by recording id.
async fn refusals_of(w: &World, device: &str) -> Vec<custody::usage::UsageEntry> {
    let store = w.store().await;
    let mut out = Vec::new();
    for o in store.list(&format!("usage/{device}/")).await.unwrap() {
        let e: custody::usage::UsageEntry =
            serde_json::from_slice(&store.get_bytes(&o.key, 1 << 20).await.unwrap()).unwrap();
        if e.event == custody::usage::UsageEvent::Refused {
            out.push(e);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recording_in_progress_is_continued_only_by_the_device_that_started_it() {
    let w = World::with_config(Backend::Local, |c| c.live.close_after_secs = 600);
    let gw = w.gateway();
    let bwc = w.client("bwc-1", &gw).connect().await.unwrap();
    let rack = w.client("rack-1", &gw).connect().await.unwrap();
    let store = w.store().await;

    // Docked: bwc-1 starts an upload and pauses; the rack, naming the same
    // recorder and recording id, offers its own bytes to finish it.
    let own: Vec<u8> = (0..100u8).collect();
    let mut first = upload_req("r-docked", 100);
    first.extend(data(&own[..10]));
    assert_eq!(accepted_offset(&exchange(&bwc, &first).await), 0);
    let theirs = vec![0xEEu8; 100];
    let mut takeover = msg(serde_json::json!({"type":"upload",
        "meta":{"recording_id":"r-docked","recorder":"bwc-1"},"size":100}));
    takeover.extend(data(&theirs[10..]));
    takeover.extend(finish(&theirs));
    refused(&exchange(&rack, &takeover).await);
    // The recorder finishes it with its own bytes, and the signed header
    // names it as the device whose bytes are stored.
    let mut rest = upload_req("r-docked", 100);
    rest.extend(data(&own[10..]));
    rest.extend(finish(&own));
    let replies = exchange(&bwc, &rest).await;
    assert_eq!(accepted_offset(&replies), 10);
    let key = match replies.last() {
        Some(Reply::Archived { manifest_key, .. }) => manifest_key.clone(),
        other => panic!("expected archived, got {other:?} of {replies:?}"),
    };
    let m: custody::manifest::Manifest =
        serde_json::from_slice(&store.get_bytes(&key, 1 << 20).await.unwrap()).unwrap();
    let header: custody::manifest::HeaderDoc =
        serde_json::from_slice(&store.get_bytes(&m.objects[0].key, 1 << 20).await.unwrap())
            .unwrap();
    assert_eq!(header.uploader.device, "bwc-1");
    assert_eq!(
        store.get_bytes(&m.objects[1].key, 1 << 20).await.unwrap(),
        own
    );

    // Quarantined: a failed attempt's id is retried only by its device.
    let mut bad = upload_req("r-quarantined", 10);
    bad.extend(data(&own[..10]));
    bad.extend(finish(&own[..9]));
    let replies = exchange(&bwc, &bad).await;
    expect_error(replies.last().unwrap(), "size_mismatch");
    let mut takeover = msg(serde_json::json!({"type":"upload",
        "meta":{"recording_id":"r-quarantined","recorder":"bwc-1"},"size":10}));
    takeover.extend(data(&theirs[..10]));
    takeover.extend(finish(&theirs[..10]));
    refused(&exchange(&rack, &takeover).await);
    let retry = upload_req("r-quarantined", 10);
    assert_eq!(accepted_offset(&exchange(&bwc, &retry).await), 0);

    // Live: bwc-1 streams, loses its stream; the rack can neither append
    // to the open recording nor end it.
    let live = |recorder: Option<&str>| {
        let mut meta = serde_json::json!({"recording_id":"r-live","mode":"live"});
        if let Some(r) = recorder {
            meta["recorder"] = r.into();
        }
        msg(serde_json::json!({"type":"live","meta":meta}))
    };
    let mut start = live(None);
    start.extend(data(&own));
    assert_eq!(accepted_offset(&exchange(&bwc, &start).await), 0);
    let mut append = live(Some("bwc-1"));
    append.extend(data(&theirs));
    refused(&exchange(&rack, &append).await);
    let mut end = live(Some("bwc-1"));
    end.extend(msg(serde_json::json!({"type":"end"})));
    refused(&exchange(&rack, &end).await);
    // Still open, holding only the recorder's bytes; it ends it, whole.
    let mut more = live(None);
    more.extend(data(&own));
    more.extend(msg(serde_json::json!({"type":"end"})));
    let replies = exchange(&bwc, &more).await;
    assert_eq!(
        accepted_offset(&replies),
        100,
        "the rack's bytes were taken"
    );
    let key = match replies.last() {
        Some(Reply::Closed {
            manifest_key,
            complete: true,
            ..
        }) => manifest_key.clone(),
        other => panic!("expected a complete close, got {other:?} of {replies:?}"),
    };
    let m: custody::manifest::Manifest = eventually(30, "the live manifest", || async {
        let b = store.get_bytes(&key, 1 << 20).await.ok()?;
        serde_json::from_slice(&b).ok()
    })
    .await;
    let header: custody::manifest::HeaderDoc =
        serde_json::from_slice(&store.get_bytes(&m.objects[0].key, 1 << 20).await.unwrap())
            .unwrap();
    assert_eq!(header.uploader.device, "bwc-1");
    let mut kept = Vec::new();
    for o in m
        .objects
        .iter()
        .filter(|o| o.role == custody::manifest::Role::RawChunk)
    {
        kept.extend_from_slice(&store.get_bytes(&o.key, 1 << 20).await.unwrap());
    }
    assert_eq!(kept, [own.clone(), own.clone()].concat());
    let v = w.verify(&key);
    assert!(v.status.success(), "{}", stdout(&v));

    // Each refusal is in the rack's usage record, with its reason.
    let recorded = eventually(30, "the rack's refusals", || async {
        let r = refusals_of(&w, "rack-1").await;
        (r.len() >= 4).then_some(r)
    })
    .await;
    for id in ["r-docked", "r-quarantined", "r-live"] {
        assert!(
            recorded
                .iter()
                .any(|e| e.recording_id.as_deref() == Some(id)
                    && e.detail.contains("not_recording_owner")
                    && e.detail.contains("started by bwc-1")),
            "{id}: {recorded:#?}"
        );
    }
}

/// A recorder whose `closed` reply was lost (with the link, or with the
/// gateway that received its `end`) asks for its recording again and sends
/// `end` again: it is answered `accepted` at the end of its stream and
/// `closed` again, with the same manifest key — while the gateway still
/// holds the recording and once it is stored. Bytes sent instead are
/// refused with `recording_closed`.
#[tokio::test(flavor = "multi_thread")]
async fn a_recorder_whose_closed_reply_was_lost_gets_it_again() {
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    let conn = w.client("bwc-1", &gw).connect().await.unwrap();
    let live = msg(serde_json::json!({"type":"live","meta":{"recording_id":"r-ended"}}));
    let end = msg(serde_json::json!({"type":"end"}));
    let body = b"bytes of a recorder that is not a camera";
    let first = exchange(&conn, &[live.clone(), data(body), end.clone()].concat()).await;
    let key = match first.last() {
        Some(Reply::Closed { manifest_key, .. }) => manifest_key.clone(),
        other => panic!("expected closed, got {other:?} of {first:?}"),
    };
    let asked_again = || async {
        let again = exchange(&conn, &[live.clone(), end.clone()].concat()).await;
        assert_eq!(accepted_offset(&again), body.len() as u64, "{again:?}");
        match again.last() {
            Some(Reply::Closed {
                manifest_key,
                complete,
                ..
            }) => {
                assert_eq!(manifest_key, &key);
                assert!(complete);
            }
            other => panic!("expected closed, got {other:?} of {again:?}"),
        }
    };
    asked_again().await;
    // Once stored and let go by the gateway (its upload task ended), the
    // answer comes from the stored manifest.
    eventually(30, "the recording stored and let go", || async {
        let log = gw.log();
        (log.contains("live recording archived")
            && log.contains(r#"background task ended task="live upload""#))
        .then_some(())
    })
    .await;
    asked_again().await;
    let more = exchange(&conn, &[live.clone(), data(b"more")].concat()).await;
    assert_eq!(accepted_offset(&more), body.len() as u64);
    expect_error(more.last().unwrap(), "recording_closed");
}
