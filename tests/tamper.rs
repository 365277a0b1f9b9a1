//! Someone with write access to the bucket tries to alter a recording; each
//! attempt is caught by `custody verify` with a precise reason. Then the
//! verification bundle is checked with standard tools only, and later
//! annotations extend the signed chain without rewriting any object.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use bytes::Bytes;
use common::*;
use custody::chain;
use custody::live::journal::JournalChunk;
use custody::manifest::{Manifest, Role};
use custody::protocol::Reply;
use custody::protocol::frame::{self, Frame};
use custody::signing::Algorithm;
use custody::store::Store;

/// Streams a short live recording and returns its manifest key.
fn record(w: &World, gw: &GatewayProc, id: &str, secs: &str) -> String {
    let out = Command::new(BIN)
        .arg("record")
        .args(["--gateway", &gw.addr.to_string(), "--ca"])
        .arg(w.certs.ca_cert())
        .arg("--cert")
        .arg(w.certs.device_cert("bwc-1"))
        .arg("--key")
        .arg(w.certs.device_key("bwc-1"))
        .arg("--state-dir")
        .arg(w.path(&format!("state-{id}")))
        .args([
            "--json",
            "--test-source",
            "--duration",
            secs,
            "--recording-id",
            id,
        ])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["manifest_key"].as_str().unwrap().to_string()
}

/// Everything under a prefix, to put back after each attack.
async fn snapshot(store: &Store, prefix: &str) -> BTreeMap<String, Bytes> {
    let mut m = BTreeMap::new();
    for o in store.list(&format!("{prefix}/")).await.unwrap() {
        m.insert(
            o.key.clone(),
            store.get_bytes(&o.key, 1 << 30).await.unwrap(),
        );
    }
    m
}

async fn restore(store: &Store, prefix: &str, snap: &BTreeMap<String, Bytes>) {
    for o in store.list(&format!("{prefix}/")).await.unwrap() {
        if !snap.contains_key(&o.key) {
            store.delete(&o.key).await.unwrap();
        }
    }
    for (k, v) in snap {
        put(store, k, v.clone()).await;
    }
}

async fn put(store: &Store, key: &str, body: Bytes) {
    let h = chain::sha256(&body);
    store.put_bytes(key, body, &h).await.unwrap();
}

async fn manifest(store: &Store, key: &str) -> Manifest {
    serde_json::from_slice(&store.get_bytes(key, 1 << 26).await.unwrap()).unwrap()
}

/// Rewrites the manifest (and the journal, as a careful forger would) after
/// changing object hashes, recomputing every chain value and the head.
async fn forge(store: &Store, key: &str, mut m: Manifest) {
    let mut c: Option<chain::Hash> = None;
    for (i, o) in m.objects.iter_mut().enumerate() {
        o.index = i as u64;
        let h = chain::parse_hex(&o.sha256).unwrap();
        let v = chain::link(c.as_ref(), &h);
        o.chain = hex::encode(v);
        c = Some(v);
    }
    m.object_count = m.objects.len() as u64;
    m.chain_head = hex::encode(c.unwrap());
    // One journal chunk holding everything.
    if let Some(l) = m.live.as_mut() {
        for o in store.list(&format!("{}/journal/", m.prefix)).await.unwrap() {
            store.delete(&o.key).await.unwrap();
        }
        let first: JournalChunk = serde_json::from_slice(
            &store
                .get_bytes(&format!("{}/journal/000000.json", m.prefix), 1 << 20)
                .await
                .unwrap_or_else(|_| Bytes::new()),
        )
        .unwrap_or_else(|_| JournalChunk {
            format: custody::live::journal::JOURNAL_FORMAT.into(),
            recorder: m.recorder.clone(),
            recording_id: m.recording_id.clone(),
            seq: 0,
            at: "t".into(),
            entries: Vec::new(),
            gaps: Vec::new(),
            progress: Default::default(),
            last: true,
            raw_chunks: true,
        });
        let mut chunk = first;
        chunk.seq = 0;
        chunk.entries = m.objects.clone();
        chunk.last = true;
        chunk.progress.next_index = m.object_count;
        chunk.progress.chain_head = m.chain_head.clone();
        put(
            store,
            &format!("{}/journal/000000.json", m.prefix),
            Bytes::from(chunk.to_bytes()),
        )
        .await;
        l.journal_chunks = 1;
    }
    put(store, key, Bytes::from(m.to_bytes())).await;
}

fn failures(w: &World, key: &str) -> Vec<serde_json::Value> {
    let (ok, r) = w.verify_json(key);
    assert!(!ok, "the attack went unnoticed: {r}");
    r["failures"].as_array().unwrap().clone()
}

fn assert_reason(fs: &[serde_json::Value], index: Option<u64>, words: &str) {
    assert!(
        fs.iter().any(|f| {
            f["reason"].as_str().unwrap().contains(words)
                && index.is_none_or(|i| f["index"].as_u64() == Some(i))
        }),
        "no failure at {index:?} saying {words:?}: {fs:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_attack_on_a_stored_recording_is_named() {
    every_attack_is_named(Algorithm::Ed25519).await;
}

/// The same attacks on a deployment that signs with SM2 (GB/T 32918).
#[tokio::test(flavor = "multi_thread")]
async fn every_attack_on_an_sm2_signed_recording_is_named() {
    every_attack_is_named(Algorithm::Sm2).await;
}

async fn every_attack_is_named(signing: Algorithm) {
    let w = World::with_config(Backend::Garage, |c| c.live.close_after_secs = 30);
    w.sign_with(signing);
    let gw = w.gateway();
    let key = record(&w, &gw, "bwc-1-victim", "9");
    let other = record(&w, &gw, "bwc-1-other", "5");
    let store = w.store().await;
    let m = manifest(&store, &key).await;
    let prefix = m.prefix.clone();
    let (ok, r) = w.verify_json(&key);
    assert!(ok, "{r}");
    // Signed with the deployment's algorithm: a raw Ed25519 key is 64 hex
    // digits, an uncompressed SM2 point 130.
    let key_digits = match signing {
        Algorithm::Ed25519 => 64,
        Algorithm::Sm2 => 130,
    };
    assert_eq!(
        r["public_key"].as_str().map(str::len),
        Some(key_digits),
        "{r}"
    );
    let snap = snapshot(&store, &prefix).await;
    let segs: Vec<_> = m
        .objects
        .iter()
        .filter(|o| o.role == Role::Segment)
        .cloned()
        .collect();
    assert!(segs.len() >= 4, "{} segments", segs.len());
    let (s1, s2) = (&segs[1], &segs[2]);

    // 1. A flipped byte in a segment.
    let mut b = snap[&s1.key].to_vec();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    put(&store, &s1.key, b.into()).await;
    assert_reason(&failures(&w, &key), Some(s1.index), "SHA-256 is");
    restore(&store, &prefix, &snap).await;

    // 2. A deleted segment.
    store.delete(&s1.key).await.unwrap();
    assert_reason(&failures(&w, &key), Some(s1.index), "missing from storage");
    restore(&store, &prefix, &snap).await;

    // 3. Two segments swapped.
    put(&store, &s1.key, snap[&s2.key].clone()).await;
    put(&store, &s2.key, snap[&s1.key].clone()).await;
    let fs = failures(&w, &key);
    assert_reason(&fs, Some(s1.index), "SHA-256 is");
    assert_reason(&fs, Some(s2.index), "SHA-256 is");
    restore(&store, &prefix, &snap).await;

    // 4. A segment spliced in from another recording of the same device,
    //    with the manifest and chain recomputed to match.
    let om = manifest(&store, &other).await;
    let foreign = om.objects.iter().find(|o| o.role == Role::Segment).unwrap();
    let fbytes = store.get_bytes(&foreign.key, 1 << 30).await.unwrap();
    put(&store, &s1.key, fbytes.clone()).await;
    let mut forged = m.clone();
    let e = forged
        .objects
        .iter_mut()
        .find(|o| o.index == s1.index)
        .unwrap();
    e.sha256 = hex::encode(chain::sha256(&fbytes));
    e.size = fbytes.len() as u64;
    forge(&store, &key, forged).await;
    assert_reason(&failures(&w, &key), None, "checkpoint signs chain head");
    restore(&store, &prefix, &snap).await;

    // 5. The tail truncated: last objects and last checkpoint removed, the
    //    manifest rewritten to end earlier.
    let keep = m.objects.len() - 3;
    for o in &m.objects[keep..] {
        store.delete(&o.key).await.unwrap();
    }
    let cps: Vec<_> = store.list(&format!("{prefix}/checkpoints/")).await.unwrap();
    let last_cp = cps
        .iter()
        .rfind(|o| o.key.ends_with(".json"))
        .unwrap()
        .key
        .clone();
    store.delete(&last_cp).await.unwrap();
    store
        .delete(&last_cp.replace(".json", ".sig"))
        .await
        .unwrap();
    let mut truncated = m.clone();
    truncated.objects.truncate(keep);
    forge(&store, &key, truncated).await;
    assert_reason(&failures(&w, &key), None, "end is not signed");
    restore(&store, &prefix, &snap).await;

    // 5b. A closed recording passed off as open: manifest and final
    //     checkpoint removed, so only the journal is left. The locator the
    //     gateway wrote at the close gives it away.
    store.delete(&key).await.unwrap();
    store.delete(&last_cp).await.unwrap();
    store
        .delete(&last_cp.replace(".json", ".sig"))
        .await
        .unwrap();
    assert_reason(
        &failures(&w, &key),
        None,
        "end of the recording has been removed",
    );
    restore(&store, &prefix, &snap).await;

    // 6. The manifest rewritten with every hash recomputed (a segment
    //    replaced by other content).
    let mut fake = snap[&s2.key].to_vec();
    fake.truncate(fake.len() / 2);
    put(&store, &s2.key, fake.clone().into()).await;
    let mut forged = m.clone();
    let e = forged
        .objects
        .iter_mut()
        .find(|o| o.index == s2.index)
        .unwrap();
    e.sha256 = hex::encode(chain::sha256(&fake));
    e.size = fake.len() as u64;
    forge(&store, &key, forged).await;
    let fs = failures(&w, &key);
    assert_reason(&fs, None, "checkpoint signs chain head");
    restore(&store, &prefix, &snap).await;

    // 7. A checkpoint signed by another key.
    let rogue = custody::signing::SigningKey::generate_for(signing).unwrap();
    let bytes = snap[&last_cp].clone();
    put(
        &store,
        &last_cp.replace(".json", ".sig"),
        Bytes::from(rogue.sign(&bytes)),
    )
    .await;
    assert_reason(
        &failures(&w, &key),
        None,
        "does not verify with the trusted public key",
    );
    restore(&store, &prefix, &snap).await;

    // 8. The recording moved to another category: every object copied
    //    under the new prefix, the keys in its manifest and journal
    //    rewritten to match, its locator repointed, the old prefix removed.
    let category = prefix.split('/').nth(1).unwrap().to_string();
    let moved = prefix.replacen(&format!("records/{category}/"), "records/traffic/", 1);
    assert_ne!(moved, prefix);
    let locator_key = format!("index/recordings/bwc-1/{}.json", m.recording_id);
    let locator = store.get_bytes(&locator_key, 1 << 20).await.unwrap();
    for (k, v) in &snap {
        let body = if k.ends_with("manifest.json") || k.contains("/journal/") {
            let text = std::str::from_utf8(v).unwrap().replace(&prefix, &moved);
            Bytes::from(text)
        } else {
            v.clone()
        };
        put(&store, &k.replace(&prefix, &moved), body).await;
        store.delete(k).await.unwrap();
    }
    let text = std::str::from_utf8(&locator)
        .unwrap()
        .replace(&prefix, &moved);
    put(&store, &locator_key, Bytes::from(text)).await;
    let moved_key = format!("{moved}/manifest.json");
    for target in [moved_key.as_str(), "bwc-1/bwc-1-victim"] {
        let fs = failures(&w, target);
        assert_reason(&fs, None, &format!("checkpoint signs prefix {prefix}"));
        assert_reason(&fs, Some(0), "stored under category traffic");
    }
    for o in store.list(&format!("{moved}/")).await.unwrap() {
        store.delete(&o.key).await.unwrap();
    }
    put(&store, &locator_key, locator.clone()).await;
    restore(&store, &prefix, &snap).await;

    // 9. Two recordings' locators swapped: each name leads to the other
    //    recording, which is intact and signed — and is not the one asked for.
    let other_locator_key = format!("index/recordings/bwc-1/{}.json", om.recording_id);
    let other_locator = store.get_bytes(&other_locator_key, 1 << 20).await.unwrap();
    put(&store, &locator_key, other_locator.clone()).await;
    put(&store, &other_locator_key, locator.clone()).await;
    let fs = failures(&w, "bwc-1/bwc-1-victim");
    assert_reason(&fs, None, "bwc-1/bwc-1-victim was asked for, but");
    assert_reason(&fs, None, "names bwc-1/bwc-1-other");
    assert_reason(
        &failures(&w, "bwc-1/bwc-1-other"),
        None,
        "names bwc-1/bwc-1-victim",
    );
    // Nor does rewriting the names in the swapped locator help.
    let renamed = std::str::from_utf8(&other_locator).unwrap().replace(
        "\"recording_id\": \"bwc-1-other\"",
        "\"recording_id\": \"bwc-1-victim\"",
    );
    put(&store, &locator_key, Bytes::from(renamed)).await;
    let fs = failures(&w, "bwc-1/bwc-1-victim");
    assert_reason(&fs, None, "which is not a prefix of bwc-1/bwc-1-victim");
    put(&store, &locator_key, locator).await;
    put(&store, &other_locator_key, other_locator).await;

    // Untouched again, it verifies.
    let (ok, r) = w.verify_json(&key);
    assert!(ok, "{r}");
    let (ok, r) = w.verify_json("bwc-1/bwc-1-victim");
    assert!(ok, "{r}");
}

/// Sends `bytes` on a new stream of `conn`, ends it, and returns every
/// reply until the gateway ends its side.
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

#[tokio::test(flavor = "multi_thread")]
async fn a_hidden_gap_is_named() {
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    let store = w.store().await;
    // A mandatory full-process recording streamed live, with a gap: the
    // recorder declares 1 MiB lost between two runs of its stream.
    let before = w.path("before.bin");
    let after = w.path("after.bin");
    write_random_file(&before, 300_000, 7);
    write_random_file(&after, 300_000, 8);
    let lost = 1u64 << 20;
    let msg = |v: serde_json::Value| frame::encode_msg(&v).unwrap();
    let data = |b: &[u8]| {
        let mut v = frame::data_header(b.len()).to_vec();
        v.extend_from_slice(b);
        v
    };
    let mut stream = msg(serde_json::json!({"type": "live", "meta": {
        "recording_id": "bwc-1-gap", "mode": "live", "officer": "o-1001",
        "category": "market", "full_process": {"mandatory": true, "reason": "personal-liberty"},
    }}));
    let first = std::fs::read(&before).unwrap();
    for part in first.chunks(64 << 10) {
        stream.extend(data(part));
    }
    stream.extend(msg(serde_json::json!({"type": "gap", "kind": "lost-bytes",
        "to": first.len() as u64 + lost,
        "reason": "the recorder's buffer overflowed while the link was down"})));
    for part in std::fs::read(&after).unwrap().chunks(64 << 10) {
        stream.extend(data(part));
    }
    stream.extend(msg(serde_json::json!({"type": "end"})));
    let conn = w.client("bwc-1", &gw).connect().await.unwrap();
    let replies = exchange(&conn, &stream).await;
    let key = match replies.last() {
        Some(Reply::Closed {
            manifest_key,
            complete: false,
            gap_count: 1,
            ..
        }) => manifest_key.clone(),
        other => panic!("expected a close with one gap, got {other:?}"),
    };
    eventually(30, "the locator", || async {
        store
            .exists("index/recordings/bwc-1/bwc-1-gap.json")
            .await
            .unwrap()
            .then_some(())
    })
    .await;
    let m = manifest(&store, &key).await;
    let l = m.live.as_ref().unwrap();
    assert!(l.full_process_violation && !l.complete, "{l:?}");
    let (ok, r) = w.verify_json(&key);
    assert!(ok, "{r}");
    assert_eq!(r["gaps"].as_array().unwrap().len(), 1, "{r}");

    // The forger removes the gap from the journal chunk that records it and
    // from the manifest, shifts the later raw chunk's range down so the
    // ranges join up, and declares the recording complete. No object and no
    // chain value changes.
    let shift = |e: &mut custody::manifest::ObjectEntry| {
        if let Some(r) = e.range.as_mut()
            && r.offset >= lost
        {
            r.offset -= lost;
        }
    };
    for o in store.list(&format!("{}/journal/", m.prefix)).await.unwrap() {
        let mut j: JournalChunk =
            serde_json::from_slice(&store.get_bytes(&o.key, 1 << 20).await.unwrap()).unwrap();
        j.gaps.clear();
        j.entries.iter_mut().for_each(shift);
        put(&store, &o.key, Bytes::from(j.to_bytes())).await;
    }
    let mut forged = m.clone();
    forged.objects.iter_mut().for_each(shift);
    let fl = forged.live.as_mut().unwrap();
    fl.gaps.clear();
    fl.complete = true;
    fl.full_process_violation = false;
    fl.stream_bytes -= lost;
    put(&store, &key, Bytes::from(forged.to_bytes())).await;

    let fs = failures(&w, &key);
    assert_reason(&fs, None, "journal chunks were rewritten");
    assert_reason(&fs, None, "the manifest is not the one the gateway signed");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bundle_verifies_with_standard_tools_only_and_annotations_are_signed() {
    bundle_and_annotations(Algorithm::Ed25519).await;
}

/// The same on a deployment that signs with SM2: OpenSSL checks the
/// bundle's SM2 signatures.
#[tokio::test(flavor = "multi_thread")]
async fn an_sm2_signed_bundle_verifies_with_standard_tools_only() {
    bundle_and_annotations(Algorithm::Sm2).await;
}

async fn bundle_and_annotations(signing: Algorithm) {
    let w = World::new(Backend::Garage);
    w.sign_with(signing);
    let gw = w.gateway();
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    write_random_file(&media.join("clip.mp4"), 3 << 20, 4);
    let (out, results) = w.dock("bwc-1", &gw, &[media.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
    let key = results[0]["manifest_key"].as_str().unwrap().to_string();
    let cfg = w.config.clone();
    let custody = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .arg("-c")
            .arg(&cfg)
            .output()
            .unwrap()
    };

    // Later facts are appended and signed; nothing earlier is rewritten.
    let store = w.store().await;
    let before = manifest(&store, &key).await;
    let o = custody(&[
        "annotate",
        "--by",
        "records-office",
        "--proof",
        "seizure of goods",
        &key,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = custody(&[
        "annotate",
        "--by",
        "records-office",
        "--case",
        "SC-2026-0042",
        &key,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = custody(&[
        "annotate",
        "--by",
        "o-1001",
        "--marker",
        "evidence@12.5:labels shown",
        &key,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let after = manifest(&store, &key).await;
    assert_eq!(after.objects.len(), before.objects.len() + 3);
    assert_eq!(&after.objects[..before.objects.len()], &before.objects[..]);
    assert!(
        after.objects[before.objects.len()..]
            .iter()
            .all(|o| o.role == Role::Annotation)
    );
    assert_eq!(
        after.summary.proof_object.as_deref(),
        Some("seizure of goods")
    );
    assert_eq!(after.summary.case_id.as_deref(), Some("SC-2026-0042"));
    assert!(
        store
            .exists(&format!(
                "index/cases/SC-2026-0042/bwc-1/{}.json",
                after.recording_id
            ))
            .await
            .unwrap()
    );
    let (ok, r) = w.verify_json(&key);
    assert!(ok, "{r}");
    assert_eq!(r["signed_objects"], after.objects.len());

    // The bundle, checked with bash, coreutils, sed and OpenSSL only.
    let bundle = w.path("bundle");
    let o = Command::new(BIN)
        .args(["export-proof", "-c"])
        .arg(&cfg)
        .arg("--out")
        .arg(&bundle)
        .arg(&key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let run = |dir: &std::path::Path| {
        Command::new("/bin/bash")
            .arg("verify.sh")
            .current_dir(dir)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap()
    };
    let o = run(&bundle);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("RECORDING VERIFIED"), "{}", stdout(&o));
    let named = match signing {
        Algorithm::Ed25519 => "signature algorithm: Ed25519",
        Algorithm::Sm2 => "signature algorithm: SM2",
    };
    assert!(stdout(&o).contains(named), "{}", stdout(&o));
    // The procedure catches a changed byte, and a checkpoint not signed by the key.
    let obj = std::fs::read_dir(bundle.join("objects"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("original"))
        .unwrap();
    let mut b = std::fs::read(&obj).unwrap();
    b[1000] ^= 1;
    std::fs::write(&obj, &b).unwrap();
    let o = run(&bundle);
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains("does not match its SHA-256"),
        "{}",
        stdout(&o)
    );
    // Rewriting the object's line in SHA256SUMS to match does not help: the
    // chain was built over the original hash.
    let sums_path = bundle.join("SHA256SUMS");
    let sums = std::fs::read_to_string(&sums_path).unwrap();
    let name = format!("objects/{}", obj.file_name().unwrap().to_string_lossy());
    let forged: String = sums
        .lines()
        .map(|l| {
            if l.ends_with(&format!("  {name}")) {
                format!("{}  {name}\n", hex::encode(custody::chain::sha256(&b)))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_ne!(forged, sums);
    std::fs::write(&sums_path, &forged).unwrap();
    let o = run(&bundle);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("does not give it the chained hash"),
        "{}",
        stdout(&o)
    );
    std::fs::write(&sums_path, &sums).unwrap();
    b[1000] ^= 1;
    std::fs::write(&obj, &b).unwrap();
    // The manifest's other fields are signed too: a changed proof object is caught.
    let mpath = bundle.join("manifest.json");
    let mtext = std::fs::read_to_string(&mpath).unwrap();
    std::fs::write(&mpath, mtext.replace("seizure of goods", "nothing at all")).unwrap();
    let o = run(&bundle);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("manifest.json is not the manifest"),
        "{}",
        stdout(&o)
    );
    std::fs::write(&mpath, &mtext).unwrap();
    let sig = bundle.join("checkpoints/000000.sig");
    let rogue = custody::signing::SigningKey::generate_for(signing).unwrap();
    std::fs::write(
        &sig,
        rogue.sign(&std::fs::read(bundle.join("checkpoints/000000.json")).unwrap()),
    )
    .unwrap();
    let o = run(&bundle);
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains("does not verify with public-key.pem"),
        "{}",
        stdout(&o)
    );

    // An annotation interrupted after its final checkpoint was signed but
    // before the manifest was replaced: the manifest is not the one signed,
    // and verify says so…
    let signed_manifest = store.get_bytes(&key, 1 << 26).await.unwrap();
    let o = custody(&[
        "annotate",
        "--by",
        "records-office",
        "--note",
        "reviewed",
        &key,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let annotated = manifest(&store, &key).await;
    put(&store, &key, signed_manifest.clone()).await;
    let fs = failures(&w, &key);
    assert_reason(&fs, None, "the manifest is not the one the gateway signed");
    // …and the next annotation completes it from the signature — the
    // manifest made again from the stored one and the annotation object
    // hashes to what the checkpoint signs — then appends itself.
    let o = custody(&[
        "annotate",
        "--by",
        "records-office",
        "--note",
        "again",
        &key,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (ok, r) = w.verify_json(&key);
    assert!(ok, "{r}");
    assert_eq!(r["signed_objects"], r["objects"], "{r}");
    let after = manifest(&store, &key).await;
    assert_eq!(after.objects.len(), annotated.objects.len() + 1);
    assert_eq!(
        &after.objects[..annotated.objects.len()],
        &annotated.objects[..]
    );

    // The gateway signs only manifests it made itself: an annotation object
    // forged into storage, listed in a rewritten manifest as an annotation
    // interrupted before its checkpoint would be, is refused by the next
    // annotation, not signed.
    let mut forged = after.clone();
    let body = Bytes::from_static(b"{\"kind\": \"note\", \"value\": \"forged\"}\n");
    let h = chain::sha256(&body);
    let index = forged.objects.len() as u64;
    let forged_key = format!("{}/{index:06}-annotation.json", forged.prefix);
    put(&store, &forged_key, body.clone()).await;
    forged.objects.push(custody::manifest::ObjectEntry {
        index,
        key: forged_key,
        role: Role::Annotation,
        size: body.len() as u64,
        sha256: hex::encode(h),
        chain: hex::encode(chain::link(
            chain::parse_hex(&forged.chain_head).as_ref(),
            &h,
        )),
        content_type: Some("application/json".into()),
        derived_from: None,
        media: None,
        range: None,
        at: None,
    });
    forged.object_count += 1;
    forged.chain_head = forged.objects.last().unwrap().chain.clone();
    forged.summary.proof_object = Some("forged".into());
    put(&store, &key, Bytes::from(forged.to_bytes())).await;
    let o = custody(&[
        "annotate",
        "--by",
        "records-office",
        "--note",
        "third",
        &key,
    ]);
    assert!(!o.status.success(), "a forged manifest was extended");
    assert!(
        stderr(&o).contains("does not match the recording's last signed checkpoint"),
        "{}",
        stderr(&o)
    );
    assert_reason(
        &failures(&w, &key),
        None,
        "the recording's end is not signed",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recording_signed_by_version_1_still_verifies_and_an_annotation_signs_it_again() {
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    let store = w.store().await;
    // A live recording, streamed and ended.
    let bytes = w.path("stream.bin");
    write_random_file(&bytes, 400_000, 9);
    let mut stream = frame::encode_msg(&serde_json::json!({"type": "live",
        "meta": {"recording_id": "bwc-1-old", "mode": "live"}}))
    .unwrap();
    for part in std::fs::read(&bytes).unwrap().chunks(64 << 10) {
        stream.extend(frame::data_header(part.len()));
        stream.extend_from_slice(part);
    }
    stream.extend(frame::encode_msg(&serde_json::json!({"type": "end"})).unwrap());
    let conn = w.client("bwc-1", &gw).connect().await.unwrap();
    let key = match exchange(&conn, &stream).await.last() {
        Some(Reply::Closed { manifest_key, .. }) => manifest_key.clone(),
        other => panic!("expected closed, got {other:?}"),
    };
    eventually(30, "the locator", || async {
        store
            .exists("index/recordings/bwc-1/bwc-1-old.json")
            .await
            .unwrap()
            .then_some(())
    })
    .await;
    let prefix = key.trim_end_matches("/manifest.json").to_string();

    // As an earlier version signed it: every checkpoint custody-checkpoint/1,
    // signed with the gateway's key.
    let signer = custody::signing::SigningKey::from_pem(
        &std::fs::read_to_string(w.certs.signing_key()).unwrap(),
    )
    .unwrap();
    let mut previous: Option<String> = None;
    for seq in 0.. {
        let ck = format!("{prefix}/checkpoints/{seq:06}.json");
        let Ok(b) = store.get_bytes(&ck, 1 << 20).await else {
            break;
        };
        let mut cp: custody::checkpoint::Checkpoint = serde_json::from_slice(&b).unwrap();
        cp.format = custody::checkpoint::CHECKPOINT_FORMAT_1.into();
        (cp.prefix, cp.journal, cp.manifest_sha256) = (None, None, None);
        cp.previous = previous.clone();
        let mut v1 = serde_json::to_vec_pretty(&cp).unwrap();
        v1.push(b'\n');
        previous = Some(hex::encode(chain::sha256(&v1)));
        put(
            &store,
            &ck.replace(".json", ".sig"),
            Bytes::from(signer.sign(&v1)),
        )
        .await;
        put(&store, &ck, Bytes::from(v1)).await;
    }
    assert!(previous.is_some());
    let (ok, r) = w.verify_json(&key);
    assert!(ok, "{r}");
    assert_eq!(r["checkpoint_format"], "custody-checkpoint/1", "{r}");
    assert!(
        r["not_signed"]
            .as_str()
            .is_some_and(|n| n.contains("journal (gaps, raw-chunk ranges)")),
        "{r}"
    );
    assert!(
        stdout(&w.verify(&key)).contains("custody-checkpoint/1 signs the objects"),
        "the report does not say what /1 leaves unsigned"
    );

    // An annotation by this version signs it under /2, journal and manifest
    // included, hashing the journal it finds in storage.
    let o = Command::new(BIN)
        .args(["annotate", "-c"])
        .arg(&w.config)
        .args(["--by", "records-office", "--note", "signed again", &key])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let (ok, r) = w.verify_json(&key);
    assert!(ok, "{r}");
    assert_eq!(r["checkpoint_format"], "custody-checkpoint/2", "{r}");
    assert!(r.get("not_signed").is_none(), "{r}");
    assert_eq!(r["signed_objects"], r["objects"], "{r}");
}
