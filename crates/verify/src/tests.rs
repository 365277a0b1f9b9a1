//! What `verify` says about hand-built docked recordings (`fixture`): a
//! valid one passes, and each kind of damage gives its own finding, with
//! the index, key and reason of `docs/manifest.md` §5. Each table row is
//! one damage and every finding it gives, in the report's order.

use custody_format::chain;
use custody_format::checkpoint::{CHECKPOINT_FORMAT_1, Checkpoint};
use custody_format::layout;
use custody_format::locator::Locator;
use custody_format::manifest::{DerivationStatus, HeaderDoc, Link, Manifest};

use crate::fixture::{
    Docked, Fixture, OTHER_ID, RECORDER, RECORDING_ID, document, final_checkpoint, findings,
    gateway_key, prefix_of, public, stranger_key,
};
use crate::{NOT_SIGNED_BY_V1, VerifyError, VerifyOptions, resolve, verify_target, verify_with};

/// One finding as the report gives it: (index, key, reason).
type Finding = (Option<u64>, String, String);

/// A finding about object `index`.
fn at(index: u64, key: &str, reason: impl Into<String>) -> Finding {
    (Some(index), key.to_string(), reason.into())
}

/// A finding about no object in particular.
fn on(key: &str, reason: impl Into<String>) -> Finding {
    (None, key.to_string(), reason.into())
}

/// A well-formed hash that is nobody's.
fn forged() -> String {
    "ab".repeat(32)
}

fn prefix() -> String {
    prefix_of(RECORDING_ID)
}

fn manifest_key() -> String {
    layout::manifest_key(&prefix())
}

/// The key of the first checkpoint.
fn checkpoint_0() -> String {
    layout::checkpoint_key(&prefix(), 0)
}

fn hex_key(key: &ring::signature::Ed25519KeyPair) -> String {
    public(key).to_hex()
}

const NOT_FROM_AN_EARLIER_ORIGINAL: &str =
    "derived object does not name an original of this recording listed before it";

#[tokio::test]
async fn a_valid_docked_recording_verifies() {
    let fx = Fixture::new().await;
    let (d, m) = fx.archive_valid(RECORDING_ID).await;
    let r = fx.verify(&prefix()).await;
    assert_eq!(findings(&r), Vec::<Finding>::new());
    assert!(r.ok);
    assert_eq!(r.manifest_key, manifest_key());
    assert_eq!(r.state, "closed");
    assert_eq!(r.recorder.as_deref(), Some(RECORDER));
    assert_eq!(r.recording_id.as_deref(), Some(RECORDING_ID));
    assert_eq!(r.objects, 5);
    let bytes: usize = d.objects.iter().map(|o| o.bytes.len()).sum();
    assert_eq!(r.bytes, bytes as u64);
    assert_eq!(r.chain_head.as_deref(), Some(m.chain_head.as_str()));
    assert_eq!(r.signed_objects, 5);
    assert_eq!(r.checkpoint_format.as_deref(), Some("custody-checkpoint/2"));
    assert_eq!(r.not_signed, None);
    assert_eq!(r.public_key, Some(hex_key(&gateway_key())));
    assert!(!r.key_pinned);
    assert_eq!(r.officer.as_deref(), Some("o-1001"));
    assert_eq!(r.uploader.as_deref(), Some("dock-07"));
    assert!(!r.empty);
    assert!(r.gaps.is_empty() && r.links.is_empty());
}

#[tokio::test]
async fn a_valid_recording_verifies_with_the_pinned_key_and_by_name() {
    let fx = Fixture::new().await;
    fx.archive_valid(RECORDING_ID).await;
    let opts = VerifyOptions {
        trusted_key: Some(public(&gateway_key())),
    };
    let r = verify_with(&fx.store, &manifest_key(), &opts)
        .await
        .unwrap();
    assert_eq!(findings(&r), Vec::<Finding>::new());
    assert!(r.ok && r.key_pinned);

    for typed in [
        format!("{RECORDER}/{RECORDING_ID}"),
        prefix(),
        format!("{}/", prefix()),
        manifest_key(),
    ] {
        let target = resolve(&fx.store, &typed).await.unwrap();
        assert_eq!(target.manifest_key, manifest_key(), "{typed}");
        let r = verify_target(&fx.store, &target, &opts).await.unwrap();
        assert_eq!(findings(&r), Vec::<Finding>::new(), "{typed}");
    }
    let unknown = format!("{RECORDER}/{OTHER_ID}");
    assert!(matches!(
        resolve(&fx.store, &unknown).await,
        Err(VerifyError::NotFound(t)) if t == unknown
    ));
}

/// Damage to the recording before it is listed: the gateway lists, signs
/// and stores what it was given, so only the damage itself is found. Each
/// row's findings are computed from the manifest of the damaged recording.
#[tokio::test]
async fn each_damaged_recording_gives_its_finding() {
    type Row = (&'static str, fn(&mut Docked), fn(&Manifest) -> Vec<Finding>);
    let rows: Vec<Row> = vec![
        (
            "a derivative made from an original listed after it",
            |d| {
                d.objects.swap(1, 2);
                for o in &mut d.objects[1..] {
                    o.derived_from =
                        (o.role != custody_format::manifest::Role::Original).then_some(2);
                }
            },
            |m| vec![at(1, &m.objects[1].key, NOT_FROM_AN_EARLIER_ORIGINAL)],
        ),
        (
            "a segment made from the header",
            |d| d.objects[3].derived_from = Some(0),
            |m| vec![at(3, &m.objects[3].key, NOT_FROM_AN_EARLIER_ORIGINAL)],
        ),
        (
            "no original",
            |d| {
                d.objects.remove(1);
                for o in &mut d.objects {
                    o.derived_from = None;
                }
            },
            |m| {
                vec![
                    at(1, &m.objects[1].key, NOT_FROM_AN_EARLIER_ORIGINAL),
                    at(2, &m.objects[2].key, NOT_FROM_AN_EARLIER_ORIGINAL),
                    at(3, &m.objects[3].key, NOT_FROM_AN_EARLIER_ORIGINAL),
                    on(&manifest_key(), "no original (or raw chunk) is listed"),
                ]
            },
        ),
        (
            "derivation says derived, nothing derived is listed",
            |d| d.objects.truncate(2),
            |_| {
                vec![on(
                    &manifest_key(),
                    "derivation says derived but 0 init and 0 media segments are listed",
                )]
            },
        ),
        (
            "object 0 is the original, not the header",
            |d| {
                d.objects.swap(0, 1);
                for o in &mut d.objects[2..] {
                    o.derived_from = Some(0);
                }
            },
            |m| {
                vec![
                    at(0, &m.objects[0].key, "object 0 is not the header"),
                    on(
                        &format!("{}/checkpoints/", prefix()),
                        "no public key to check checkpoints with (the header names none)",
                    ),
                ]
            },
        ),
        (
            "a header naming another recording",
            |d| d.edit_header(|h| h.recording_id = OTHER_ID.into()),
            |m| {
                vec![
                    at(
                        0,
                        &m.objects[0].key,
                        format!(
                            "header is for {RECORDER}/{OTHER_ID}, manifest for {RECORDER}/{RECORDING_ID}"
                        ),
                    ),
                    at(
                        0,
                        &prefix(),
                        format!(
                            "the recording is stored under {}, not under a prefix of {RECORDER}/{OTHER_ID}: it was moved or copied",
                            prefix()
                        ),
                    ),
                ]
            },
        ),
        (
            "a header of another category",
            |d| d.edit_header(|h| h.meta.category = Some("traffic".into())),
            |_| {
                vec![at(
                    0,
                    &prefix(),
                    "the recording is stored under category market but its header says traffic: it was moved or copied",
                )]
            },
        ),
        (
            "a header of an unknown format",
            |d| d.edit_header(|h| h.format = "custody-header/9".into()),
            |m| {
                vec![at(
                    0,
                    &m.objects[0].key,
                    "unknown header format \"custody-header/9\"",
                )]
            },
        ),
        (
            "a header that is not one",
            |d| d.objects[0].bytes = b"not a header".to_vec(),
            |m| {
                let e = serde_json::from_slice::<HeaderDoc>(b"not a header").unwrap_err();
                vec![
                    at(0, &m.objects[0].key, format!("header is not valid: {e}")),
                    on(
                        &format!("{}/checkpoints/", prefix()),
                        "no public key to check checkpoints with (the header names none)",
                    ),
                ]
            },
        ),
        (
            "a header naming a key that did not sign the checkpoints",
            |d| d.edit_header(|h| h.signing_key = hex_key(&stranger_key())),
            |_| {
                vec![on(
                    &checkpoint_0(),
                    "signature does not verify with the trusted public key",
                )]
            },
        ),
    ];
    for (damage, edit, says) in rows {
        let fx = Fixture::new().await;
        let mut d = Docked::new(RECORDING_ID);
        edit(&mut d);
        let m = d.manifest();
        fx.archive(&d, &m).await;
        let r = fx.verify(&prefix()).await;
        assert_eq!(findings(&r), says(&m), "{damage}");
        assert!(!r.ok, "{damage}");
    }
}

/// Damage to the manifest, which the gateway then signs as it is (so the
/// checkpoints, which would also catch a manifest rewritten later, stay
/// out of the way). Each row's findings are computed from the valid
/// manifest.
#[tokio::test]
async fn each_damaged_manifest_gives_its_finding() {
    type Row = (
        &'static str,
        fn(&mut Manifest),
        fn(&Manifest) -> Vec<Finding>,
    );
    let rows: Vec<Row> = vec![
        (
            "a chain value edited",
            |m| m.objects[2].chain = forged(),
            |m| {
                vec![at(
                    2,
                    &m.objects[2].key,
                    format!(
                        "chain broken: chain value is {} but recomputes to {}",
                        forged(),
                        m.objects[2].chain
                    ),
                )]
            },
        ),
        (
            "two segments listed in each other's place",
            |m| m.objects.swap(3, 4),
            |m| {
                vec![at(
                    4,
                    &m.objects[3].key,
                    "chain broken: entry at position 3 has index 4",
                )]
            },
        ),
        (
            "an upper-case hash",
            |m| m.objects[4].sha256 = m.objects[4].sha256.to_uppercase(),
            |m| {
                let e = &m.objects[4];
                vec![
                    at(
                        4,
                        &e.key,
                        "chain broken: sha256 is not 64 lowercase hex digits",
                    ),
                    at(
                        4,
                        &e.key,
                        format!(
                            "SHA-256 is {}, manifest says {}",
                            e.sha256,
                            e.sha256.to_uppercase()
                        ),
                    ),
                ]
            },
        ),
        (
            "chain_head edited",
            |m| m.chain_head = forged(),
            |m| {
                vec![on(
                    &manifest_key(),
                    format!(
                        "chain_head is {} but the chain ends at {}",
                        forged(),
                        m.chain_head
                    ),
                )]
            },
        ),
        (
            "object_count edited",
            |m| m.object_count = 6,
            |_| {
                vec![on(
                    &manifest_key(),
                    "object_count is 6 but 5 objects are listed",
                )]
            },
        ),
        (
            "an unknown manifest format",
            |m| m.format = "custody-manifest/9".into(),
            |_| {
                vec![on(
                    &manifest_key(),
                    "unknown manifest format \"custody-manifest/9\"",
                )]
            },
        ),
        (
            "derivation says failed, derived objects are listed",
            |m| m.derivation.as_mut().unwrap().status = DerivationStatus::Failed,
            |_| {
                vec![on(
                    &manifest_key(),
                    "derivation says failed but derived objects are listed",
                )]
            },
        ),
        (
            "a derivative naming another key for its original",
            |m| m.objects[2].derived_from.as_mut().unwrap().key = forged(),
            |m| vec![at(2, &m.objects[2].key, NOT_FROM_AN_EARLIER_ORIGINAL)],
        ),
        (
            "the original stored outside the recording's prefix",
            |m| {
                let moved = format!("{}/000001-original.mp4", prefix_of(OTHER_ID));
                for o in &mut m.objects[2..] {
                    o.derived_from.as_mut().unwrap().key = moved.clone();
                }
                m.objects[1].key = moved;
            },
            |_| {
                vec![at(
                    1,
                    &format!("{}/000001-original.mp4", prefix_of(OTHER_ID)),
                    "object is outside the recording's prefix",
                )]
            },
        ),
        (
            "a link the chain does not state",
            |m| {
                m.links.push(Link {
                    relation: custody_format::manifest::Relation::CopyOf,
                    recorder: RECORDER.into(),
                    recording_id: "REC-live".into(),
                    manifest_key: None,
                    gaps_filled: Vec::new(),
                })
            },
            |_| {
                vec![on(
                    &prefix(),
                    format!(
                        "the manifest links docked-copy-of {RECORDER}/REC-live but nothing in the chain says so"
                    ),
                )]
            },
        ),
    ];
    for (damage, edit, says) in rows {
        let fx = Fixture::new().await;
        let d = Docked::new(RECORDING_ID);
        let valid = d.manifest();
        let mut m = valid.clone();
        edit(&mut m);
        fx.archive(&d, &m).await;
        let r = fx.verify(&prefix()).await;
        assert_eq!(findings(&r), says(&valid), "{damage}");
    }
}

#[tokio::test]
async fn a_missing_object_is_found() {
    let fx = Fixture::new().await;
    let (_, m) = fx.archive_valid(RECORDING_ID).await;
    fx.delete(&m.objects[3].key).await;
    let r = fx.verify(&prefix()).await;
    assert_eq!(
        findings(&r),
        vec![at(3, &m.objects[3].key, "object is missing from storage")]
    );
    assert_eq!(
        r.bytes,
        m.objects.iter().map(|o| o.size).sum::<u64>() - m.objects[3].size
    );
}

#[tokio::test]
async fn an_object_of_another_size_is_found() {
    let fx = Fixture::new().await;
    let (_, m) = fx.archive_valid(RECORDING_ID).await;
    let o = &m.objects[1];
    let longer = b"original bytes of the device, and more".to_vec();
    fx.put(&o.key, longer.clone()).await;
    let r = fx.verify(&prefix()).await;
    assert_eq!(
        findings(&r),
        vec![at(
            1,
            &o.key,
            format!(
                "size is {}, manifest says {}; SHA-256 is {}, manifest says {}",
                longer.len(),
                o.size,
                hex::encode(chain::sha256(&longer)),
                o.sha256
            )
        )]
    );
}

#[tokio::test]
async fn an_object_of_the_same_size_with_other_bytes_is_found() {
    let fx = Fixture::new().await;
    let (d, m) = fx.archive_valid(RECORDING_ID).await;
    let o = &m.objects[1];
    let mut edited = d.objects[1].bytes.clone();
    edited[0] ^= 1;
    fx.put(&o.key, edited.clone()).await;
    let r = fx.verify(&prefix()).await;
    assert_eq!(
        findings(&r),
        vec![at(
            1,
            &o.key,
            format!(
                "SHA-256 is {}, manifest says {}",
                hex::encode(chain::sha256(&edited)),
                o.sha256
            )
        )]
    );
}

#[tokio::test]
async fn an_object_added_under_the_prefix_is_found() {
    let fx = Fixture::new().await;
    fx.archive_valid(RECORDING_ID).await;
    let added = format!("{}/000005-segment.m4s", prefix());
    fx.put(&added, b"spliced in".to_vec()).await;
    let r = fx.verify(&prefix()).await;
    assert_eq!(
        findings(&r),
        vec![on(
            &added,
            "object in the recording's prefix is not in its manifest"
        )]
    );
}

#[tokio::test]
async fn a_manifest_missing_or_unreadable_is_found() {
    let fx = Fixture::new().await;
    fx.archive_valid(RECORDING_ID).await;
    fx.put(&manifest_key(), b"{\"format\": 1".to_vec()).await;
    let e = serde_json::from_slice::<Manifest>(b"{\"format\": 1").unwrap_err();
    let r = fx.verify(&prefix()).await;
    assert_eq!(
        findings(&r),
        vec![on(&manifest_key(), format!("manifest is not valid: {e}"))]
    );

    fx.delete(&manifest_key()).await;
    let r = fx.verify(&prefix()).await;
    assert_eq!(
        findings(&r),
        vec![on(
            &manifest_key(),
            "manifest is missing (and no journal of an open live recording)"
        )]
    );
}

#[tokio::test]
async fn a_manifest_rewritten_after_it_was_signed_is_found() {
    let fx = Fixture::new().await;
    let (_, m) = fx.archive_valid(RECORDING_ID).await;
    let signed = hex::encode(chain::sha256(&document(&m)));
    let mut rewritten = m.clone();
    rewritten.summary.officer = Some("o-2002".into());
    let bytes = document(&rewritten);
    fx.put(&manifest_key(), bytes.clone()).await;
    let r = fx.verify(&prefix()).await;
    assert_eq!(
        findings(&r),
        vec![on(
            &checkpoint_0(),
            format!(
                "the manifest is not the one the gateway signed: its SHA-256 is {}, the last checkpoint signs {signed}",
                hex::encode(chain::sha256(&bytes))
            )
        )]
    );
}

#[tokio::test]
async fn a_manifest_copied_under_another_prefix_is_found() {
    let fx = Fixture::new().await;
    let (_, m) = fx.archive_valid(RECORDING_ID).await;
    let elsewhere = prefix_of(OTHER_ID);
    fx.put(&layout::manifest_key(&elsewhere), document(&m))
        .await;
    let r = fx.verify(&elsewhere).await;
    let mut expected: Vec<Finding> = m
        .objects
        .iter()
        .map(|o| at(o.index, &o.key, "object is outside the recording's prefix"))
        .collect();
    expected.insert(
        1,
        at(
            0,
            &elsewhere,
            format!(
                "the recording is stored under {elsewhere}, not under a prefix of {RECORDER}/{RECORDING_ID}: it was moved or copied"
            ),
        ),
    );
    expected.extend([
        on(
            &layout::manifest_key(&elsewhere),
            format!("manifest names prefix {} but is stored elsewhere", prefix()),
        ),
        on(
            &format!("{elsewhere}/checkpoints/"),
            "no signed checkpoint: nothing proves the gateway wrote this chain",
        ),
    ]);
    assert_eq!(findings(&r), expected);
}

/// A final checkpoint the gateway signed wrongly (each row edits the valid
/// one before it is signed with the gateway's key). Each row's findings
/// are computed from the valid manifest.
#[tokio::test]
async fn each_wrong_checkpoint_gives_its_finding() {
    type Row = (
        &'static str,
        fn(&mut Checkpoint),
        fn(&Manifest) -> Vec<Finding>,
    );
    let rows: Vec<Row> = vec![
        (
            "it signs another prefix",
            |cp| cp.prefix = Some(prefix_of(OTHER_ID)),
            |_| {
                vec![on(
                    &checkpoint_0(),
                    format!(
                        "checkpoint signs prefix {} but the recording is stored under {}: it was moved or copied",
                        prefix_of(OTHER_ID),
                        prefix()
                    ),
                )]
            },
        ),
        (
            "it signs no prefix",
            |cp| cp.prefix = None,
            |_| {
                vec![on(
                    &checkpoint_0(),
                    "checkpoint does not sign the recording's prefix",
                )]
            },
        ),
        (
            "it is another recording's",
            |cp| cp.recording_id = OTHER_ID.into(),
            |_| {
                vec![on(
                    &checkpoint_0(),
                    format!(
                        "checkpoint is for {RECORDER}/{OTHER_ID} number 0, not this recording's number 0"
                    ),
                )]
            },
        ),
        (
            "it names another public key",
            |cp| cp.public_key = hex_key(&stranger_key()),
            |_| vec![on(&checkpoint_0(), "checkpoint names another public key")],
        ),
        (
            "the first one names one before it",
            |cp| cp.previous = Some(forged()),
            |_| {
                vec![on(
                    &checkpoint_0(),
                    "checkpoint does not link to the one before it",
                )]
            },
        ),
        (
            "it signs more objects than are listed",
            |cp| cp.object_count = 6,
            |_| {
                vec![
                    on(
                        &checkpoint_0(),
                        "checkpoint signs 6 objects but only 5 are listed: objects were removed",
                    ),
                    on(
                        &checkpoint_0(),
                        "the recording's end is not signed: the last checkpoint covers 6 of 5 objects (objects removed from, or added to, its end)",
                    ),
                ]
            },
        ),
        (
            "it signs another chain head",
            |cp| cp.chain_head = forged(),
            |m| {
                vec![on(
                    &checkpoint_0(),
                    format!(
                        "checkpoint signs chain head {} after 5 objects, but the listed chain has {} there",
                        forged(),
                        m.chain_head
                    ),
                )]
            },
        ),
        (
            "the last one is not final",
            |cp| {
                cp.is_final = false;
                cp.manifest_sha256 = None;
            },
            |_| {
                vec![on(
                    &checkpoint_0(),
                    "the recording's end is not signed: the last checkpoint covers 5 of 5 objects and is not final (objects removed from, or added to, its end)",
                )]
            },
        ),
        (
            "a final one signs no manifest",
            |cp| cp.manifest_sha256 = None,
            |_| {
                vec![on(
                    &checkpoint_0(),
                    "final checkpoint does not sign a manifest",
                )]
            },
        ),
        (
            "it signs another manifest",
            |cp| cp.manifest_sha256 = Some(forged()),
            |m| {
                vec![on(
                    &checkpoint_0(),
                    format!(
                        "the manifest is not the one the gateway signed: its SHA-256 is {}, the last checkpoint signs {}",
                        hex::encode(chain::sha256(&document(m))),
                        forged()
                    ),
                )]
            },
        ),
        (
            "an unknown format",
            |cp| cp.format = "custody-checkpoint/9".into(),
            |_| {
                vec![on(
                    &checkpoint_0(),
                    "unknown checkpoint format \"custody-checkpoint/9\"",
                )]
            },
        ),
    ];
    for (wrong, edit, says) in rows {
        let fx = Fixture::new().await;
        let (_, m) = fx.archive_valid(RECORDING_ID).await;
        let mut cp = final_checkpoint(&m, &document(&m), 0, None);
        edit(&mut cp);
        fx.put_checkpoint(&m.prefix, &cp, &gateway_key()).await;
        let r = fx.verify(&prefix()).await;
        assert_eq!(findings(&r), says(&m), "{wrong}");
    }
}

#[tokio::test]
async fn a_checkpoint_whose_signature_does_not_verify_is_found() {
    let fx = Fixture::new().await;
    let (_, m) = fx.archive_valid(RECORDING_ID).await;
    let cp = final_checkpoint(&m, &document(&m), 0, None);
    let fails = vec![on(
        &checkpoint_0(),
        "signature does not verify with the trusted public key",
    )];

    // Signed by someone else.
    fx.put_checkpoint(&m.prefix, &cp, &stranger_key()).await;
    let r = fx.verify(&prefix()).await;
    assert_eq!(findings(&r), fails);
    assert_eq!(r.signed_objects, 0);

    // Signed by the gateway, then edited.
    let bytes = fx.put_checkpoint(&m.prefix, &cp, &gateway_key()).await;
    let edited = String::from_utf8(bytes)
        .unwrap()
        .replace("2026-11-30T01:47:31.5Z", "2026-11-30T01:47:31.6Z");
    fx.put(&checkpoint_0(), edited).await;
    assert_eq!(findings(&fx.verify(&prefix()).await), fails);

    // A signature of the right length that is not one.
    fx.put_checkpoint(&m.prefix, &cp, &gateway_key()).await;
    fx.put(&layout::signature_key(&m.prefix, 0), vec![0u8; 64])
        .await;
    assert_eq!(findings(&fx.verify(&prefix()).await), fails);
}

#[tokio::test]
async fn a_checkpoint_without_signature_or_none_at_all_is_found() {
    let fx = Fixture::new().await;
    let (_, m) = fx.archive_valid(RECORDING_ID).await;
    fx.delete(&layout::signature_key(&m.prefix, 0)).await;
    let r = fx.verify(&prefix()).await;
    assert_eq!(
        findings(&r),
        vec![on(&checkpoint_0(), "checkpoint has no signature")]
    );

    fx.delete(&checkpoint_0()).await;
    let r = fx.verify(&prefix()).await;
    assert_eq!(
        findings(&r),
        vec![on(
            &format!("{}/checkpoints/", prefix()),
            "no signed checkpoint: nothing proves the gateway wrote this chain"
        )]
    );
    assert_eq!(r.signed_objects, 0);
}

/// Two checkpoints: number 0 over the first two objects, then the final
/// one. Each row edits the final one before it is signed.
#[tokio::test]
async fn checkpoints_must_follow_each_other() {
    type Row = (&'static str, fn(&mut Checkpoint, &[u8]), Vec<Finding>);
    let ck1 = layout::checkpoint_key(&prefix(), 1);
    let rows: Vec<Row> = vec![
        ("in order", |_, _| {}, vec![]),
        (
            "the second does not name the first",
            |cp, _| cp.previous = None,
            vec![on(&ck1, "checkpoint does not link to the one before it")],
        ),
        (
            "the second names another first",
            |cp, first| {
                let mut other = first.to_vec();
                other.push(b' ');
                cp.previous = Some(hex::encode(chain::sha256(&other)));
            },
            vec![on(&ck1, "checkpoint does not link to the one before it")],
        ),
        (
            "the second covers fewer objects than the first",
            |cp, _| {
                cp.object_count = 1;
                cp.is_final = false;
                cp.manifest_sha256 = None;
            },
            vec![
                on(
                    &ck1,
                    "checkpoint covers 1 objects, fewer than the one before",
                ),
                on(
                    &ck1,
                    "checkpoint signs chain head CHAIN after 1 objects, but the listed chain has C0 there",
                ),
                on(
                    &ck1,
                    "the recording's end is not signed: the last checkpoint covers 1 of 5 objects and is not final (objects removed from, or added to, its end)",
                ),
            ],
        ),
        (
            "the second is numbered 2",
            |cp, _| cp.seq = 2,
            vec![on(
                &layout::checkpoint_key(&prefix(), 2),
                "checkpoint 1 is missing (found 2 instead)",
            )],
        ),
    ];
    for (case, edit, expected) in rows {
        let fx = Fixture::new().await;
        let d = Docked::new(RECORDING_ID);
        let m = d.manifest();
        fx.put_objects(&d, &m).await;
        let first = Checkpoint {
            object_count: 2,
            chain_head: m.objects[1].chain.clone(),
            is_final: false,
            manifest_sha256: None,
            ..final_checkpoint(&m, &[], 0, None)
        };
        let first_bytes = fx.put_checkpoint(&m.prefix, &first, &gateway_key()).await;
        let bytes = document(&m);
        let mut last = final_checkpoint(
            &m,
            &bytes,
            1,
            Some(hex::encode(chain::sha256(&first_bytes))),
        );
        edit(&mut last, &first_bytes);
        fx.put_checkpoint(&m.prefix, &last, &gateway_key()).await;
        fx.put(&manifest_key(), bytes).await;
        let r = fx.verify(&prefix()).await;
        // The chain values are only known here.
        let expected: Vec<Finding> = expected
            .into_iter()
            .map(|(i, k, why)| {
                let why = why
                    .replace("CHAIN", &last.chain_head)
                    .replace("C0", &m.objects[0].chain);
                (i, k, why)
            })
            .collect();
        assert_eq!(findings(&r), expected, "{case}");
        if expected.is_empty() {
            assert_eq!(r.signed_objects, 5, "{case}");
        }
    }
}

#[tokio::test]
async fn a_recording_signed_by_checkpoint_format_1_verifies_and_says_what_is_unsigned() {
    let fx = Fixture::new().await;
    let d = Docked::new(RECORDING_ID);
    let m = d.manifest();
    fx.put_objects(&d, &m).await;
    let cp = Checkpoint {
        format: CHECKPOINT_FORMAT_1.into(),
        prefix: None,
        manifest_sha256: None,
        ..final_checkpoint(&m, &[], 0, None)
    };
    fx.put_checkpoint(&m.prefix, &cp, &gateway_key()).await;
    fx.put(&manifest_key(), document(&m)).await;
    let r = fx.verify(&prefix()).await;
    assert_eq!(findings(&r), Vec::<Finding>::new());
    assert_eq!(r.checkpoint_format.as_deref(), Some(CHECKPOINT_FORMAT_1));
    assert_eq!(r.not_signed.as_deref(), Some(NOT_SIGNED_BY_V1));
}

#[tokio::test]
async fn a_pinned_key_other_than_the_headers_is_found() {
    let fx = Fixture::new().await;
    fx.archive_valid(RECORDING_ID).await;
    let opts = VerifyOptions {
        trusted_key: Some(public(&stranger_key())),
    };
    let r = verify_with(&fx.store, &manifest_key(), &opts)
        .await
        .unwrap();
    assert_eq!(
        findings(&r),
        vec![
            at(
                0,
                "",
                format!(
                    "the header names signing key {} but the trusted key is {}",
                    hex_key(&gateway_key()),
                    hex_key(&stranger_key())
                )
            ),
            on(
                &checkpoint_0(),
                "signature does not verify with the trusted public key"
            ),
        ]
    );
    assert!(r.key_pinned);
}

/// A recording asked for by name, whose locator (unsigned) was rewritten to
/// lead to another valid recording: each row edits the asked-for
/// recording's locator, and the report names the locator as the culprit.
#[tokio::test]
async fn a_locator_that_leads_elsewhere_is_found() {
    type Row = (&'static str, fn(&mut Locator), Vec<&'static str>);
    let rows: Vec<Row> = vec![
        (
            "the other recording's locator, copied",
            |l| {
                l.recording_id = OTHER_ID.into();
                l.prefix = prefix_of(OTHER_ID);
                l.manifest_key = layout::manifest_key(&l.prefix);
            },
            vec![
                "LOCATOR names bwc-0001/REC-20261130-0002, not bwc-0001/REC-20261130-0001: the index points at another recording",
            ],
        ),
        (
            "renamed, leading to the other recording",
            |l| {
                l.prefix = prefix_of(OTHER_ID);
                l.manifest_key = layout::manifest_key(&l.prefix);
            },
            vec![
                "LOCATOR leads to OTHER_PREFIX, which is not a prefix of bwc-0001/REC-20261130-0001: the index points at another recording",
            ],
        ),
        (
            "naming the other recording's manifest",
            |l| l.manifest_key = layout::manifest_key(&prefix_of(OTHER_ID)),
            vec!["LOCATOR names manifest OTHER_PREFIX/manifest.json outside its prefix PREFIX"],
        ),
    ];
    let locator_key = layout::locator_key(RECORDER, RECORDING_ID);
    for (rewrite, edit, says) in rows {
        let fx = Fixture::new().await;
        fx.archive_valid(RECORDING_ID).await;
        fx.archive_valid(OTHER_ID).await;
        let mut l: Locator = serde_json::from_slice(&fx.get(&locator_key).await).unwrap();
        edit(&mut l);
        fx.put(&locator_key, serde_json::to_vec_pretty(&l).unwrap())
            .await;
        let target = resolve(&fx.store, &format!("{RECORDER}/{RECORDING_ID}"))
            .await
            .unwrap();
        assert_eq!(
            target.manifest_key,
            layout::manifest_key(&prefix_of(OTHER_ID))
        );
        let r = verify_target(&fx.store, &target, &VerifyOptions::default())
            .await
            .unwrap();
        let mut expected: Vec<Finding> = says
            .iter()
            .map(|s| {
                on(
                    &locator_key,
                    s.replace("LOCATOR", &locator_key)
                        .replace("OTHER_PREFIX", &prefix_of(OTHER_ID))
                        .replace("PREFIX", &prefix()),
                )
            })
            .collect();
        expected.push(on(
            &locator_key,
            format!(
                "{RECORDER}/{RECORDING_ID} was asked for, but {} holds {RECORDER}/{OTHER_ID}",
                layout::manifest_key(&prefix_of(OTHER_ID))
            ),
        ));
        assert_eq!(findings(&r), expected, "{rewrite}");
    }
}

#[tokio::test]
async fn locating_a_recording_checks_locator_manifest_and_header() {
    use crate::locate::{LocateError, stored};
    let fx = Fixture::new().await;
    let (_, m) = fx.archive_valid(RECORDING_ID).await;
    let found = stored(&fx.store, RECORDER, RECORDING_ID).await.unwrap();
    assert_eq!(found.map(|f| f.manifest), Some(m));
    assert!(
        stored(&fx.store, RECORDER, OTHER_ID)
            .await
            .unwrap()
            .is_none()
    );

    // The other recording, archived with a header naming this one.
    let mut d = Docked::new(OTHER_ID);
    d.edit_header(|h| h.recording_id = RECORDING_ID.into());
    let m = d.manifest();
    fx.archive(&d, &m).await;
    match stored(&fx.store, RECORDER, OTHER_ID).await {
        Err(LocateError::Mismatch(why)) => assert_eq!(
            why,
            format!(
                "the header under {} is for {RECORDER}/{RECORDING_ID}, not {RECORDER}/{OTHER_ID}",
                prefix_of(OTHER_ID)
            )
        ),
        other => panic!("expected a mismatch, got {other:?}"),
    }
}
