//! Who may connect: certificates that do not chain to the CA, revoked
//! certificates, devices the ledger does not know, revoked devices and
//! devices assigned to non-enforcement staff are all refused with a clear
//! code, nothing is stored, and each refusal is recorded.

mod common;

use common::*;
use custody::pki::{self, CertDir};
use custody::usage::{UsageEntry, UsageEvent};

async fn refusals(w: &World, device: &str) -> Vec<UsageEntry> {
    let store = w.store().await;
    let mut out = Vec::new();
    for o in store.list(&format!("usage/{device}/")).await.unwrap() {
        let e: UsageEntry =
            serde_json::from_slice(&store.get_bytes(&o.key, 1 << 20).await.unwrap()).unwrap();
        if e.event == UsageEvent::Refused {
            out.push(e);
        }
    }
    out
}

async fn nothing_stored(w: &World) {
    let store = w.store().await;
    assert!(store.list("records/").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn ledger_refusals_have_codes_and_are_recorded() {
    let w = World::new(Backend::Garage);
    let gw = w.gateway();
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    write_random_file(&media.join("a.mp4"), 10_000, 1);
    let cases = [
        ("ghost", "device_unknown", "not in the ledger"),
        ("bwc-revoked", "device_revoked", "revoked"),
        (
            "cam-clerk",
            "officer_not_enforcement",
            "not enforcement staff",
        ),
    ];
    for (device, code, words) in cases {
        let (out, results) = w.dock(device, &gw, &[media.to_str().unwrap()]);
        assert!(!out.status.success(), "{device} was admitted");
        let err = results[0]["error"].as_str().unwrap();
        assert!(err.contains(code) && err.contains(words), "{device}: {err}");
        let recorded = eventually(20, "refusal record", || async {
            let r = refusals(&w, device).await;
            (!r.is_empty()).then_some(r)
        })
        .await;
        assert!(recorded[0].detail.contains(code), "{:?}", recorded[0]);
        assert!(recorded[0].peer.is_some());
    }
    nothing_stored(&w).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_from_another_ca_or_revoked_by_crl_fail_the_handshake() {
    let w = World::new(Backend::Local);
    let mut gw = w.gateway();
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    write_random_file(&media.join("a.mp4"), 10_000, 1);

    // A device certificate for a known id, but from a CA the gateway does not trust.
    let rogue = CertDir::new(w.path("rogue"));
    pki::init(
        &rogue,
        "Rogue",
        &["localhost".into()],
        30,
        custody::signing::Algorithm::Ed25519,
        false,
    )
    .unwrap();
    pki::issue_device(&rogue, "bwc-1", 30, false).unwrap();
    let out = w
        .client_cmd_with(
            "dock",
            &rogue.device_cert("bwc-1"),
            &rogue.device_key("bwc-1"),
            &gw,
        )
        .args(["--json", "--retry-for-secs", "0"])
        .arg(&media)
        .output()
        .unwrap();
    assert!(!out.status.success());
    // The id in an untrusted certificate is only a claim: the refusal is
    // filed as unidentified, naming what the certificate claimed.
    let r = eventually(20, "TLS refusal record", || async {
        let r = refusals(&w, custody::usage::UNIDENTIFIED).await;
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert!(
        r[0].detail
            .contains("certificate refused at TLS handshake: device bwc-1"),
        "{:?}",
        r[0]
    );
    assert!(r[0].detail.contains("UnknownIssuer"), "{}", r[0].detail);
    assert!(refusals(&w, "bwc-1").await.is_empty());
    // The device is told at the handshake (how the failure surfaces depends
    // on when the client first uses the connection).
    let text = stdout(&out);
    assert!(
        text.contains("\"result\":\"error\"")
            && (text.contains("handshake")
                || text.contains("certificate")
                || text.contains("connection")),
        "{text}"
    );

    // Revoking bwc-1's real certificate on the CRL refuses it after the
    // gateway reloads the CRL (at start).
    pki::revoke_device(&w.certs, "bwc-1").unwrap();
    gw.restart();
    // No inventory report: it would be a second connection, refused too.
    let (out, results) = w.dock(
        "bwc-1",
        &gw,
        &[
            "--retry-for-secs",
            "0",
            "--no-inventory",
            media.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "{}", stdout(&out));
    assert_eq!(results[0]["result"], "error");
    let r = eventually(20, "CRL refusal record", || async {
        let r = refusals(&w, "bwc-1").await;
        r.iter().any(|e| e.detail.contains("Revoked")).then_some(r)
    })
    .await;
    assert_eq!(r.len(), 1);
    nothing_stored(&w).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ledger_changes_apply_without_restart() {
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    write_random_file(&media.join("a.mp4"), 10_000, 1);
    let (out, _) = w.dock("bwc-1", &gw, &[media.to_str().unwrap()]);
    assert!(out.status.success());
    // The records office revokes bwc-1.
    let ledger = LEDGER.replacen(
        "id = \"bwc-1\"\nkind = \"body-worn-recorder\"\ncustodian = \"Li Na\"\nunit = \"market\"\nstatus = \"active\"",
        "id = \"bwc-1\"\nkind = \"body-worn-recorder\"\ncustodian = \"Li Na\"\nunit = \"market\"\nstatus = \"revoked\"",
        1,
    );
    assert_ne!(ledger, LEDGER);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(w.path("ledger.toml"), ledger).unwrap();
    write_random_file(&media.join("b.mp4"), 10_000, 2);
    let (out, results) = w.dock(
        "bwc-1",
        &gw,
        &["--retry-for-secs", "0", media.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(
        results[0]["error"]
            .as_str()
            .unwrap()
            .contains("device_revoked")
    );
}
