//! Input that reaches people: device text with terminal controls is refused
//! where it comes in, text that is stored anyway (a URL in the audit trail,
//! a newline or a bidi override the text rule allows) is printed escaped,
//! and `custody certs` refuses a validity that ends before it starts.

mod common;

use std::process::Command;

use common::*;
use custody::protocol::Reply;
use custody::protocol::frame::{self, Frame};

fn msg(v: serde_json::Value) -> Vec<u8> {
    frame::encode_msg(&v).unwrap()
}

/// The next reply on a stream that is not an `ack`.
async fn next_reply(recv: &mut quinn::RecvStream) -> Reply {
    loop {
        match frame::read_frame(recv).await.unwrap() {
            Some(Frame::Msg(m)) => {
                let r: Reply = frame::decode(&m).unwrap();
                if !matches!(r, Reply::Ack { .. }) {
                    return r;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Opens (or continues) live recording `id` on a new stream: the streams
/// and the offset the gateway holds.
async fn live(conn: &quinn::Connection, id: &str) -> (quinn::SendStream, quinn::RecvStream, u64) {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&msg(serde_json::json!({
        "type": "live",
        "meta": {"recording_id": id, "mode": "live", "officer": "o-1001"}
    })))
    .await
    .unwrap();
    match next_reply(&mut recv).await {
        Reply::Accepted { offset, .. } => (send, recv, offset),
        other => panic!("live {id}: {other:?}"),
    }
}

/// Sends `gap` on a new stream of `id` and returns the gateway's error
/// message for it.
async fn refused_gap(conn: &quinn::Connection, id: &str, gap: serde_json::Value) -> String {
    let (mut send, mut recv, offset) = live(conn, id).await;
    let mut gap = gap;
    gap["type"] = "gap".into();
    gap["to"] = offset.into();
    send.write_all(&msg(gap.clone())).await.unwrap();
    match next_reply(&mut recv).await {
        Reply::Error(e) => {
            assert_eq!(e.name, "bad_message", "{gap}: {e:?}");
            e.message
        }
        other => panic!("{gap} was accepted: {other:?}"),
    }
}

fn has_terminal_controls(s: &str) -> bool {
    s.chars()
        .any(|c| (c.is_control() && c != '\n') || matches!(c, '\u{202a}'..='\u{202e}'))
}

#[tokio::test(flavor = "multi_thread")]
async fn device_and_url_text_cannot_act_on_the_terminal() {
    let w = World::with_config(Backend::Local, |c| {
        c.http.listen = Some("127.0.0.1:0".into())
    });
    let gw = w.gateway();
    let client = w.client("bwc-1", &gw);
    let conn = client.connect().await.unwrap();
    let id = "bwc-1-hostile";

    // Some bytes, durable before anything is refused.
    let (mut send, mut recv, _) = live(&conn, id).await;
    let bytes = vec![0x47u8; 4096];
    send.write_all(&frame::data_header(bytes.len()))
        .await
        .unwrap();
    send.write_all(&bytes).await.unwrap();
    loop {
        match frame::read_frame(&mut recv).await.unwrap() {
            Some(Frame::Msg(m)) => {
                if let Reply::Ack { durable } = frame::decode(&m).unwrap()
                    && durable >= bytes.len() as u64
                {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    drop((send, recv));

    // Refused where it comes in, naming the field.
    let m = refused_gap(
        &conn,
        id,
        serde_json::json!({"kind": "lost-bytes", "reason": "link down\u{1b}[2J\u{1b}[1;1H"}),
    )
    .await;
    assert!(m.contains("gap.reason: contains control characters"), "{m}");
    let m = refused_gap(
        &conn,
        id,
        serde_json::json!({"kind": "source-restart", "reason": "restart", "since": "yesterday"}),
    )
    .await;
    assert!(m.contains("gap.since: not an RFC 3339 time"), "{m}");
    let m = refused_gap(
        &conn,
        id,
        serde_json::json!({"kind": "source-restart", "reason": "restart",
            "since": "2026-11-30T08:00:00+08:00\u{1b}]0;owned\u{7}"}),
    )
    .await;
    assert!(m.contains("gap.since: contains control characters"), "{m}");

    // What the text rule allows (a newline, a bidi override) is stored, and
    // printed escaped: it cannot forge a line of `custody verify`.
    let reason = "buffer overflow\nOK records/forged/manifest.json: 99 objects \u{202e}gnp.exe";
    let (mut send, mut recv, offset) = live(&conn, id).await;
    assert_eq!(offset, bytes.len() as u64, "refused gaps changed nothing");
    for m in [
        serde_json::json!({"type": "gap", "to": offset, "kind": "source-restart",
            "reason": reason, "since": "2026-11-30T08:21:40.5+08:00"}),
        serde_json::json!({"type": "end"}),
    ] {
        send.write_all(&msg(m)).await.unwrap();
    }
    match next_reply(&mut recv).await {
        Reply::Closed { gaps, .. } => assert_eq!(gaps[0].reason, reason),
        other => panic!("end: {other:?}"),
    }
    let store = w.store().await;
    eventually(60, "the recording in storage", || {
        let store = store.clone();
        async move {
            store
                .exists(&format!("index/recordings/bwc-1/{id}.json"))
                .await
                .ok()
                .filter(|x| *x)
        }
    })
    .await;
    let out = w.verify(&format!("bwc-1/{id}"));
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.contains(
            "buffer overflow\\nOK records/forged/manifest.json: 99 objects \\u{202e}gnp.exe"
        ),
        "{text}"
    );
    assert!(!has_terminal_controls(&text), "{text:?}");
    assert!(
        !text.lines().any(|l| l.starts_with("OK records/forged")),
        "a forged line: {text}"
    );

    // An unauthenticated URL lands in the audit trail; `audit list` prints
    // it escaped, not as a cleared screen and a forged line.
    let http = gw.http_addr();
    let o = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(w.certs.ca_cert())
        .arg(format!(
            "https://localhost:{}/rec/%1b%5b2J%0a2026-11-30T08:00:00Z%20admin/x/original",
            http.port()
        ))
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "401");
    let listing = eventually(60, "the refusal in the audit trail", || {
        let o = Command::new(BIN)
            .args(["audit", "list", "-c"])
            .arg(&w.config)
            .output()
            .unwrap();
        let text = stdout(&o);
        async move { text.contains("admin/x").then_some(text) }
    })
    .await;
    assert!(
        listing.contains("\\x1b[2J\\n2026-11-30T08:00:00Z admin/x"),
        "{listing}"
    );
    assert!(!has_terminal_controls(&listing), "{listing:?}");
    assert!(
        !listing
            .lines()
            .any(|l| l.starts_with("2026-11-30T08:00:00Z admin")),
        "a forged line: {listing}"
    );
    // Nor in the gateway's own log, where every audit entry also goes.
    let log = gw.log();
    assert!(
        log.contains("\\x1b[2J\\n2026-11-30T08:00:00Z admin"),
        "{log}"
    );
    assert!(
        !log.lines()
            .any(|l| l.starts_with("2026-11-30T08:00:00Z admin")),
        "a forged log line: {log}"
    );
}

#[test]
fn certificates_that_expire_before_they_start_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let run = |args: &[&str]| {
        Command::new(BIN)
            .arg("certs")
            .args(args)
            .arg("--dir")
            .arg(&certs)
            .output()
            .unwrap()
    };
    for days in ["-1", "0"] {
        let o = run(&["init", &format!("--days={days}")]);
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains(&format!(
                "--days {days}: a certificate must be valid from 1 to"
            )),
            "{}",
            stderr(&o)
        );
        assert!(
            !certs.join("ca.pem").exists(),
            "init --days={days} wrote files"
        );
    }
    assert!(run(&["init"]).status.success());
    for (sub, name) in [("device", "bwc-9"), ("viewer", "sup-9")] {
        for days in ["-1", "0", "36501"] {
            let o = run(&[sub, &format!("--days={days}"), name]);
            assert!(!o.status.success(), "{sub} --days={days}");
            assert!(
                stderr(&o).contains(&format!("--days {days}:")),
                "{}",
                stderr(&o)
            );
        }
        assert!(!certs.join(format!("{sub}s/{name}.pem")).exists());
        let o = run(&[sub, "--days=1", name]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
}
