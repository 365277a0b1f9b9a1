//! Cluster mode (`[cluster] database`), against Garage (one node, or three
//! with replication factor 3) and a PostgreSQL of the test's own: the
//! catalog kept in the database by every gateway and rebuilt from storage
//! alone; a Garage node killed during ingest; records-office decisions and
//! live-recording leases raced for by two gateways; a gateway killed while
//! it holds a live recording; a 1 GiB dock resumed on another gateway from
//! the parts staged in storage after its gateway is SIGKILLed, with
//! PostgreSQL restarted meanwhile.

mod common;

use std::path::Path;

use common::postgres::Postgres;
use common::records::{custody, list, media};
use common::*;

fn ids(v: &[serde_json::Value]) -> Vec<String> {
    v.iter()
        .map(|e| e["recording_id"].as_str().unwrap().to_string())
        .collect()
}

fn dock_dir(w: &World, gw: &GatewayProc, dir: &Path, n: usize) {
    let (out, results) = w.dock(
        "rack-1",
        gw,
        &["--recorder", "bwc-1", dir.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(results.len(), n, "{results:?}");
    assert!(
        results.iter().all(|r| r["result"] == "archived"),
        "{results:?}"
    );
}

fn rows(pg: &Postgres, db: &str) -> usize {
    pg.sql(db, "SELECT count(*) FROM catalog")
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_catalog_is_kept_in_postgres_and_rebuilt_from_storage() {
    let pg = Postgres::start();
    let mut w = World::with_config(Backend::Garage, |c| {
        c.cluster.database = Some(pg.url("postgres"));
    });
    // Every process runs on a clock set to 30 November 2026, 14:00 in
    // Beijing, whatever day the test runs on.
    w.set_clock("2026-11-30T06:00:00Z");
    let gw = w.gateway();
    let dir = w.path("rack");
    let meta = r#""officer":"o-1001","occasion":"on-site-inspection","proof_object":"goods","category":"market""#;
    media(
        &dir,
        "morning",
        1,
        &format!(r#"{meta},"case_id":"C-1","started_at":"2026-11-30T08:00:00+08:00""#),
    );
    media(
        &dir,
        "noon",
        2,
        &format!(r#"{meta},"started_at":"2026-11-30T12:00:00+08:00""#),
    );
    // No metadata at all: listed by when it was received.
    media(&dir, "bare", 3, "");
    dock_dir(&w, &gw, &dir, 3);

    // The lines are rows of the database; no shard is written to storage.
    eventually(30, "three catalog rows", || async {
        (rows(&pg, "postgres") == 3).then_some(())
    })
    .await;
    let store = w.store().await;
    assert!(
        store.list("index/catalog/").await.unwrap().is_empty(),
        "cluster mode writes no catalog shards"
    );

    // custody list reads the database, filters in it, newest first.
    let all = list(&w, &[]);
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(ids(&all)[1..], ["noon", "morning"], "by device time");
    let table: [(&[&str], &[&str]); 5] = [
        (&["--officer", "o-1001"], &["noon", "morning"]),
        (&["--case", "C-1"], &["morning"]),
        (
            &["--device", "bwc-1", "--category", "market"],
            &["noon", "morning"],
        ),
        (&["--from", "2026-11-30T03:00:00Z"], &["bare", "noon"]),
        (&["--to", "2026-11-30T01:00:00Z"], &["morning"]),
    ];
    for (args, want) in table {
        assert_eq!(ids(&list(&w, args)), want.to_vec(), "custody list {args:?}");
    }

    // A case assigned later (a signed annotation by the command line) is
    // found by it: the command line updates the database too.
    let o = custody(
        &w,
        &[
            "annotate",
            "--by",
            "records-office",
            "--case",
            "C-9",
            "bwc-1/bare",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ids(&list(&w, &["--case", "C-9"])), ["bare"]);
    let before = list(&w, &[]);

    // Rebuilt from storage alone into an empty database: the same catalog.
    pg.sql("postgres", "CREATE DATABASE fresh");
    w.edit_config(|c| c.cluster.database = Some(pg.url("fresh")));
    assert!(list(&w, &[]).is_empty(), "a new database starts empty");
    let o = custody(&w, &["index", "rebuild"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("3 recordings"), "{}", stdout(&o));
    assert_eq!(rows(&pg, "fresh"), 3);
    assert_eq!(list(&w, &[]), before);

    // And the same lines as a gateway alone keeps in storage.
    w.edit_config(|c| c.cluster.database = None);
    let o = custody(&w, &["index", "rebuild"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(list(&w, &[]), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_gateways_write_one_catalog() {
    let pg = Postgres::start();
    let w = World::with_config(Backend::Garage, |c| {
        c.cluster.database = Some(pg.url("postgres"));
    });
    let a = w.gateway();
    let b = w.another_gateway("gateway-b", |_| {});
    let (da, db) = (w.path("rack-a"), w.path("rack-b"));
    for (i, id) in ["a-1", "a-2"].into_iter().enumerate() {
        media(&da, id, 10 + i as u64, r#""officer":"o-1001""#);
    }
    for (i, id) in ["b-1", "b-2"].into_iter().enumerate() {
        media(&db, id, 20 + i as u64, r#""officer":"o-1001""#);
    }
    // At the same time, through different gateways.
    let (wa, wb) = (&w, &w);
    std::thread::scope(|s| {
        s.spawn(|| dock_dir(wa, &a, &da, 2));
        s.spawn(|| dock_dir(wb, &b, &db, 2));
    });
    eventually(30, "four catalog rows", || async {
        (rows(&pg, "postgres") == 4).then_some(())
    })
    .await;
    let mut got = ids(&list(&w, &["--officer", "o-1001"]));
    got.sort();
    assert_eq!(got, ["a-1", "a-2", "b-1", "b-2"]);
    for id in ["a-1", "b-2"] {
        let (ok, v) = w.verify_json(&format!("bwc-1/{id}"));
        assert!(ok, "{v:#}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_garage_node_dies_during_ingest_and_nothing_is_lost() {
    let pg = Postgres::start();
    let mut w = World::with_config(Backend::GarageCluster, |c| {
        c.cluster.database = Some(pg.url("postgres"));
    });
    let gw = w.gateway();
    let dir = w.path("rack");
    std::fs::create_dir_all(&dir).unwrap();
    let mut sums = Vec::new();
    for i in 0..3 {
        let f = dir.join(format!("big-{i}.mp4"));
        write_random_file(&f, 24 << 20, 40 + i);
        sums.push(sha256_file(&f));
        std::fs::write(
            dir.join(format!("big-{i}.mp4.json")),
            format!(r#"{{"recording_id":"big-{i}","officer":"o-1001"}}"#),
        )
        .unwrap();
    }
    // Node 2 is killed while the files go in, and comes back afterwards.
    let mut cluster = w.garage_cluster.take().unwrap();
    std::thread::scope(|s| {
        let docking = s.spawn(|| {
            w.dock(
                "rack-1",
                &gw,
                &["--recorder", "bwc-1", dir.to_str().unwrap()],
            )
        });
        std::thread::sleep(std::time::Duration::from_millis(500));
        cluster.nodes[2].stop();
        let (out, results) = docking.join().unwrap();
        assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
        assert_eq!(results.len(), 3, "{results:?}");
        assert!(
            results.iter().all(|r| r["result"] == "archived"),
            "nothing refused: {results:?}"
        );
    });
    cluster.nodes[2].restart();
    w.garage_cluster = Some(cluster);

    // Every recording verifies, read through another node than the one the
    // gateway wrote to.
    let node1 = w.garage_cluster.as_ref().unwrap().nodes[1].store_config();
    w.edit_config(|c| {
        c.store.endpoint = node1.endpoint.clone();
    });
    for i in 0..3 {
        let (ok, v) = w.verify_json(&format!("bwc-1/big-{i}"));
        assert!(ok, "{v:#}");
    }
    for (i, sum) in sums.iter().enumerate() {
        let original = stored_original(&w, &format!("bwc-1/big-{i}")).await;
        assert_eq!(original["sha256"].as_str().unwrap(), sum, "big-{i}");
    }
}

/// The manifest entry of recording `target`'s original, once it verifies.
async fn stored_original(w: &World, target: &str) -> serde_json::Value {
    let (ok, v) = w.verify_json(target);
    assert!(ok, "{v:#}");
    let m = w
        .store()
        .await
        .get_json::<serde_json::Value>(v["manifest_key"].as_str().unwrap(), "manifest")
        .await
        .unwrap();
    m["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["role"] == "original")
        .cloned()
        .unwrap()
}

fn token(name: &str) -> String {
    format!("cluster-token-{name}-0123456789")
}

fn bearer(who: &str) -> String {
    format!("Authorization: Bearer {}", token(who))
}

/// Two supervisors and an auditor on the command center of every gateway.
fn viewers(c: &mut Config) {
    use custody::config::{ViewerConfig, ViewerRole};
    ops::http(c);
    for (name, role) in [
        ("sup-a", ViewerRole::Supervisor),
        ("sup-b", ViewerRole::Supervisor),
        ("aud", ViewerRole::Auditor),
    ] {
        c.viewers.push(ViewerConfig {
            name: name.into(),
            role,
            unit: String::new(),
            token_sha256: Some(hex::encode(custody::chain::sha256(token(name).as_bytes()))),
            clearances: Vec::new(),
        });
    }
}

/// Reject and approvals fired at once at one export request through two
/// gateways, round after round: the database lets exactly one decision
/// win; the others get 409, and the request document holds the winner.
#[tokio::test(flavor = "multi_thread")]
async fn two_gateways_racing_on_one_decision_have_exactly_one_winner() {
    let pg = Postgres::start();
    let w = World::with_config(Backend::Garage, |c| {
        c.cluster.database = Some(pg.url("postgres"));
        viewers(c);
    });
    let a = w.gateway();
    let b = w.another_gateway("gateway-b", |_| {});
    let dir = w.path("rack");
    media(&dir, "to-export", 1, r#""officer":"o-1001""#);
    dock_dir(&w, &a, &dir, 1);
    let mut ids = Vec::new();
    for round in 0..6 {
        let o = w
            .command()
            .args(["request", "export", "bwc-1/to-export", "--reason", "race"])
            .arg("-c")
            .arg(&w.config)
            .args([
                "--url",
                &format!("https://localhost:{}", a.http_addr().port()),
            ])
            .args(["--token", &token("aud")])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let req: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let id = req["id"].as_str().unwrap().to_string();
        let decide = |gw: &GatewayProc, who: &str, verb: &str| {
            ops::spawn_post(
                &w,
                gw,
                &format!("/api/requests/{id}/{verb}"),
                &[bearer(who), "Content-Type: application/json".into()],
                Some(&format!(r#"{{"note":"{who} {verb}s"}}"#)),
            )
        };
        // Which gateway gets which decision changes from round to round.
        let (x, y) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let racers = [
            ("rejected", decide(x, "sup-a", "reject")),
            ("done", decide(y, "sup-a", "approve")),
            ("done", decide(y, "sup-b", "approve")),
            ("done", decide(x, "sup-b", "approve")),
        ];
        let answers: Vec<(&str, u16, String)> = racers
            .into_iter()
            .map(|(status, c)| {
                let (code, body) = ops::answer(c);
                (status, code, body)
            })
            .collect();
        let winners: Vec<_> = answers.iter().filter(|a| a.1 == 200).collect();
        assert_eq!(winners.len(), 1, "round {round}: {answers:#?}");
        for (_, code, body) in answers.iter().filter(|a| a.1 != 200) {
            assert_eq!(*code, 409, "{body}");
            assert!(body.contains("decided already"), "{body}");
        }
        let stored: serde_json::Value = w
            .store()
            .await
            .get_json(&format!("policy/requests/{id}.json"), "request")
            .await
            .unwrap();
        assert_eq!(stored["status"], winners[0].0, "{stored}");
        // Carried out once, by one gateway, and never after a rejection.
        let bundles = ["spool", "spool-gateway-b"]
            .iter()
            .filter(|s| {
                w.path(s)
                    .join("exports")
                    .join(&id)
                    .join("manifest.json")
                    .exists()
            })
            .count();
        let want = usize::from(winners[0].0 == "done");
        assert_eq!(bundles, want, "export bundles of {id}");
        ids.push(id);
    }
    let decided: usize = pg
        .sql("postgres", "SELECT count(*) FROM request_decisions")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(decided, ids.len());

    // The table is derived too: rebuilt into an empty database from the
    // request documents, with the same decisions.
    pg.sql("postgres", "CREATE DATABASE fresh");
    w.edit_config(|c| c.cluster.database = Some(pg.url("fresh")));
    let o = custody(&w, &["index", "rebuild"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("{} in storage, {} added", ids.len(), ids.len())),
        "{}",
        stdout(&o)
    );
    let q = "SELECT request_id, status, decided_by FROM request_decisions ORDER BY request_id";
    assert_eq!(pg.sql("fresh", q), pg.sql("postgres", q));
}

/// A 20 s recording made by ffmpeg, streamed by the recorders below.
fn camera_file(w: &World) -> std::path::PathBuf {
    let f = w.path("camera.ts");
    let st = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x240:rate=25:duration=20")
        .args([
            "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", "-f", "mpegts",
        ])
        .arg(&f)
        .status()
        .unwrap();
    assert!(st.success());
    f
}

/// `custody record` streaming `file` live as `bwc-1`'s recording `id`
/// through `gw`, with the recorder's state in `state`.
fn record(w: &World, gw: &GatewayProc, file: &Path, id: &str, state: &str) -> KillOnDrop {
    let child = w
        .record_cmd(gw.addr, state)
        .args(["--officer", "o-1001", "--recording-id", id, "--file"])
        .arg(file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

/// Waits for live recording `bwc-1/id` to be closed and stored, and
/// verifies it.
async fn closed_and_verified(w: &World, id: &str) {
    eventually(60, "the recording closed and stored", || {
        let (_, v) = w.verify_json(&format!("bwc-1/{id}"));
        async move { (v["state"] == "closed").then_some(()) }
    })
    .await;
    let (ok, v) = w.verify_json(&format!("bwc-1/{id}"));
    assert!(ok, "{v:#}");
}

fn lease_holder(pg: &Postgres, recorder_id: &str) -> String {
    pg.sql(
        "postgres",
        &format!("SELECT holder FROM leases WHERE name = 'live {recorder_id}'"),
    )
    .trim()
    .to_string()
}

/// One recording streamed by two recorders at once, one through each
/// gateway, round after round: exactly one gateway takes the recording's
/// lease and receives it; the other refuses it and keeps nothing. The
/// recording is stored whole by its gateway, and the lease given up.
#[tokio::test(flavor = "multi_thread")]
async fn two_gateways_racing_for_one_live_recording_have_exactly_one_winner() {
    let pg = Postgres::start();
    let w = World::with_config(Backend::Garage, |c| {
        c.cluster.database = Some(pg.url("postgres"));
        c.live.close_after_secs = 3;
        ops::http(c);
    });
    let a = w.gateway();
    let b = w.another_gateway("gateway-b", |_| {});
    let file = camera_file(&w);
    for round in 0..3 {
        let id = format!("race-{round}");
        let spooled = |spool: &str| {
            w.path(spool)
                .join("recordings")
                .join("bwc-1")
                .join(&id)
                .exists()
        };
        let ra = record(&w, &a, &file, &id, &format!("state-a-{round}"));
        let rb = record(&w, &b, &file, &id, &format!("state-b-{round}"));
        let holder = eventually(30, "the lease taken", || async {
            Some(lease_holder(&pg, &format!("bwc-1/{id}"))).filter(|h| !h.is_empty())
        })
        .await;
        // Both recorders keep trying for a few seconds.
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        let (winner, loser) = match holder.as_str() {
            "test-gateway" => ("spool", "spool-gateway-b"),
            "gateway-b" => ("spool-gateway-b", "spool"),
            other => panic!("lease held by {other:?}"),
        };
        assert!(spooled(winner), "{id}: the lease holder receives it");
        assert!(
            !spooled(loser),
            "{id}: the other gateway keeps nothing of it"
        );
        let (winner_gw, loser_gw) = if loser == "spool" { (&b, &a) } else { (&a, &b) };
        let loser_log = loser_gw.log();
        assert!(
            loser_log.contains(&format!(
                "live recording bwc-1/{id} is held by gateway {holder}"
            )),
            "{id}: the refusal names the holder:\n{loser_log}"
        );
        let held = |gw: &GatewayProc| ops::scrape(&w, gw).value("custody_leases_held");
        assert_eq!(held(winner_gw), 1.0, "{id}: the holder counts its lease");
        assert_eq!(held(loser_gw), 0.0, "{id}");
        drop((ra, rb));
        // Closed by timeout, stored by the holder, its lease given up.
        closed_and_verified(&w, &id).await;
        eventually(30, "the lease given up", || async {
            lease_holder(&pg, &format!("bwc-1/{id}"))
                .is_empty()
                .then_some(())
        })
        .await;
    }
}

/// `custody record` streaming `file` live as `bwc-1`'s recording `id`
/// through `gateways` (comma-separated), its output in `<id>.out`/`.err`.
fn record_to(w: &World, gateways: &str, file: &Path, id: &str) -> KillOnDrop {
    let child = w
        .record_cmd_to(gateways, &format!("state-{id}"))
        .args(["--officer", "o-1001", "--recording-id", id, "--json"])
        .args(["--link-timeout", "2", "--file"])
        .arg(file)
        .stdout(std::fs::File::create(w.path(&format!("{id}.out"))).unwrap())
        .stderr(std::fs::File::create(w.path(&format!("{id}.err"))).unwrap())
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

/// Journal chunks of live recording `bwc-1/id` in storage.
async fn stored_chunks(store: &custody::store::Store, id: &str) -> usize {
    store
        .list("records/")
        .await
        .unwrap()
        .iter()
        .filter(|o| o.key.contains(&format!("/bwc-1/{id}/journal/")))
        .count()
}

/// The stream offset at which gateway `g` continued live recording `id`
/// from its journal in storage, once it has.
fn continued_at(g: &GatewayProc, id: &str) -> Option<u64> {
    let log = g.log();
    let line = log.lines().find(|l| {
        l.contains("continuing a live recording from its journal in storage")
            && l.contains(&format!("id={id} "))
    })?;
    line.split("stream=")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Checks a finished live recording continued on another gateway: the
/// recorder ended well with no gap, the recording verifies, its raw chunks
/// in order are the file streamed — nothing lost, nothing twice — and it
/// was remuxed on after the takeover (a second initialisation segment,
/// segments after it).
async fn check_continued(w: &World, rec: KillOnDrop, id: &str, file: &Path, from: u64) {
    let mut rec = rec;
    let status = rec.0.wait().unwrap();
    let out = std::fs::read_to_string(w.path(&format!("{id}.out"))).unwrap();
    let err = std::fs::read_to_string(w.path(&format!("{id}.err"))).unwrap();
    assert!(status.success(), "{id}: {out}\n{err}");
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["complete"], true, "{r}");
    assert!(r["reconnects"].as_u64().unwrap() >= 1, "{r}");
    closed_and_verified(w, id).await;

    let store = w.store().await;
    let (_, v) = w.verify_json(&format!("bwc-1/{id}"));
    let m: serde_json::Value = store
        .get_json(v["manifest_key"].as_str().unwrap(), "manifest")
        .await
        .unwrap();
    // A gap would be bytes never acknowledged that the recorder no longer
    // held; its buffer held them all.
    assert_eq!(m["live"]["gaps"].as_array().map(Vec::len), Some(0), "{m:#}");
    let mut stored = Vec::new();
    let mut roles = Vec::new();
    for o in m["objects"].as_array().unwrap() {
        roles.push(o["role"].as_str().unwrap().to_string());
        if o["role"] == "raw-chunk" {
            assert_eq!(
                o["range"]["offset"].as_u64().unwrap(),
                stored.len() as u64,
                "{o}"
            );
            let body = store
                .get_bytes(o["key"].as_str().unwrap(), 1 << 30)
                .await
                .unwrap();
            stored.extend_from_slice(&body);
        }
    }
    let sent = std::fs::read(file).unwrap();
    eprintln!(
        "{id}: continued from stream offset {from} of {}",
        sent.len()
    );
    assert!(from > 0 && from < sent.len() as u64, "{id}: {from}");
    assert!(
        stored == sent,
        "{id}: stored {} bytes of raw chunks for a {}-byte stream",
        stored.len(),
        sent.len()
    );
    let inits: Vec<usize> = (0..roles.len()).filter(|i| roles[*i] == "init").collect();
    assert!(
        inits.len() >= 2 && roles[inits[1]..].iter().any(|r| r == "segment"),
        "{id}: not remuxed on after the takeover: {roles:?}"
    );
}

/// Two recorders stream live through two gateways of three on a three-node
/// Garage; both gateways are SIGKILLed mid-stream. Each recorder, given its
/// gateway and the third, turns to the third, which takes each recording's
/// lease over once it expires and continues it from its journal in
/// storage, at the stream offset storage holds: the recorder sends again
/// what was never acknowledged. PostgreSQL is then stopped and restarted
/// while they go on (the leases lapse and are taken again; acks wait). Both
/// recordings are stored with no gap, their raw chunks the recorders'
/// bytes exactly, and verify. The killed gateways, restarted, find their
/// spool copies continued elsewhere and discard them.
#[tokio::test(flavor = "multi_thread")]
async fn live_recordings_continue_on_another_gateway_when_their_gateways_die() {
    let mut pg = Postgres::start();
    let w = World::with_config(Backend::GarageCluster, |c| {
        c.cluster.database = Some(pg.url("postgres"));
        c.cluster.lease_secs = 3;
        c.live.close_after_secs = 60;
    });
    let mut a = w.gateway();
    let mut b = w.another_gateway("gateway-b", |_| {});
    let c = w.another_gateway("gateway-c", |_| {});
    let file = camera_file(&w);
    let (id1, id2) = ("continued-1", "continued-2");
    let r1 = record_to(&w, &format!("{},{}", a.addr, c.addr), &file, id1);
    let r2 = record_to(&w, &format!("{},{}", b.addr, c.addr), &file, id2);
    // Killed once storage holds a few seconds of each.
    let store = w.store().await;
    eventually(60, "journal chunks of both in storage", || {
        let store = store.clone();
        async move {
            (stored_chunks(&store, id1).await >= 4 && stored_chunks(&store, id2).await >= 4)
                .then_some(())
        }
    })
    .await;
    assert!(a.log().contains(&format!("id={id1} ")), "{id1} went to a");
    assert!(b.log().contains(&format!("id={id2} ")), "{id2} went to b");
    a.kill();
    b.kill();
    let (from1, from2) = eventually(60, "the third gateway continuing both", || async {
        Some((continued_at(&c, id1)?, continued_at(&c, id2)?))
    })
    .await;
    assert!(
        c.log()
            .contains("took over a live recording's expired lease"),
        "the leases were taken over"
    );
    pg.stop();
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    pg.restart();

    check_continued(&w, r1, id1, &file, from1).await;
    check_continued(&w, r2, id2, &file, from2).await;
    // The leases lapsed while the database was away (by the holder's own
    // clock) and were taken again: the uploads went on.
    let log = c.log();
    assert!(
        log.contains("lease expired without a renewal")
            && log.contains("live upload stopped: the recording's lease was lost"),
        "the leases did not lapse while PostgreSQL was down"
    );

    // The killed gateways, back, let their stale copies go.
    a.restart();
    b.restart();
    for (g, spool, id) in [(&a, "spool", id1), (&b, "spool-gateway-b", id2)] {
        let copy = w.path(spool).join("recordings").join("bwc-1").join(id);
        eventually(60, "the stale spool copy discarded", || async {
            (g.log()
                .contains("was continued by another gateway: this copy is discarded")
                && !copy.exists())
            .then_some(())
        })
        .await;
    }
}

/// Bytes staged (and so acknowledged at most) of docked upload
/// `bwc-1/id`, or 0 before it is known.
fn staged(pg: &Postgres, id: &str) -> u64 {
    pg.sql(
        "postgres",
        &format!("SELECT staged FROM uploads WHERE recorder = 'bwc-1' AND recording_id = '{id}'"),
    )
    .trim()
    .parse()
    .unwrap_or(0)
}

/// A 1 GiB dock through three gateways (listed together to the rack) on a
/// three-node Garage. The gateway receiving it is SIGKILLed mid-transfer:
/// the rack turns to another gateway, which takes the upload's lease over
/// once it expires, restores the spool entry from the parts staged in
/// storage, and lets the rack resume from the last acknowledged byte —
/// nothing acknowledged is sent again, nothing is lost. PostgreSQL is then
/// restarted during the rest of the transfer: staging waits and resumes.
/// The recording verifies, its original is the file, and the staged parts
/// — a part the dead gateway stored but never recorded too — are gone once
/// it is archived.
#[tokio::test(flavor = "multi_thread")]
async fn a_docked_upload_resumes_on_another_gateway_when_its_gateway_dies() {
    const SIZE: u64 = 1 << 30;
    let mut pg = Postgres::start();
    let w = World::with_config(Backend::GarageCluster, |c| {
        c.cluster.database = Some(pg.url("postgres"));
        c.cluster.lease_secs = 3;
    });
    let mut a = w.gateway();
    let b = w.another_gateway("gateway-b", |_| {});
    let c = w.another_gateway("gateway-c", |_| {});
    let dir = w.path("rack");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("big.mp4");
    write_random_file(&file, SIZE, 77);
    let sum = sha256_file(&file);
    std::fs::write(
        dir.join("big.mp4.json"),
        r#"{"recording_id":"big","officer":"o-1001"}"#,
    )
    .unwrap();
    let gateways = format!("{},{},{}", a.addr, b.addr, c.addr);
    let mut docking = w
        .client_cmd_to(
            "dock",
            &w.certs.device_cert("rack-1"),
            &w.certs.device_key("rack-1"),
            &gateways,
        )
        .args(["--json", "--retry-for-secs", "120", "--link-timeout", "3"])
        .args(["--recorder", "bwc-1"])
        .arg(&dir)
        // Files, not pipes: nobody reads a pipe until the dock ends, and a
        // full one would stall it.
        .stdout(std::fs::File::create(w.path("dock.out")).unwrap())
        .stderr(std::fs::File::create(w.path("dock.err")).unwrap())
        .spawn()
        .unwrap();

    // Killed once a good part of the file is acknowledged.
    let before = eventually(120, "a quarter of the file staged", || async {
        let n = staged(&pg, "big");
        (n >= SIZE / 4).then_some(n)
    })
    .await;
    a.kill();
    // A gateway killed between storing a part and recording it leaves a
    // part the database does not know: it goes too, once archived.
    let store = w.store().await;
    let unrecorded = custody::store::layout::staging_part_key("bwc-1", "big", 1, 999_999);
    let body = bytes::Bytes::from_static(b"stored, never recorded");
    let h = custody::chain::sha256(&body);
    store.put_bytes(&unrecorded, body, &h).await.unwrap();
    let (took_over, restored) = eventually(120, "another gateway restoring the upload", || async {
        [&b, &c]
            .into_iter()
            .find(|g| {
                g.log()
                    .contains("restored a docked upload from its staged parts")
            })
            .map(|g| {
                let log = g.log();
                (
                    log.contains("took over a docked upload's expired lease"),
                    log.contains("from=test-gateway"),
                )
            })
    })
    .await;
    assert!(
        took_over && restored,
        "the lease was taken over from the dead gateway"
    );
    // The database goes away for a moment during the rest of the transfer.
    pg.stop();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    pg.restart();

    let status = docking.wait().unwrap();
    let (out, err) = (
        std::fs::read_to_string(w.path("dock.out")).unwrap(),
        std::fs::read_to_string(w.path("dock.err")).unwrap(),
    );
    assert!(status.success(), "{out}\n{err}");
    let results: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(results.len(), 1, "{results:?}");
    let r = &results[0];
    assert_eq!(r["result"], "archived", "{r}");
    assert_eq!(r["sha256"].as_str().unwrap(), sum);
    let resumed = r["resumed_from"].as_u64().unwrap();
    eprintln!("staged before the kill: {before}; result: {r}");
    assert!(
        resumed >= before,
        "resumed from {resumed}: at least the {before} bytes staged before the kill"
    );
    assert!(r["attempts"].as_u64().unwrap() >= 2, "{r}");
    // The attempt on the gateway that took over resumed mid-file, after the
    // staged bytes (the dock reports its last attempt, which — if the
    // database stop cut an attempt after every byte had arrived — resumes
    // at the end).
    let takeover_offsets: Vec<u64> = [&b, &c]
        .into_iter()
        .flat_map(|g| {
            g.log()
                .lines()
                .filter_map(|l| {
                    let rest = l.split("receiving bwc-1/big from byte ").nth(1)?;
                    rest.split(|ch: char| !ch.is_ascii_digit())
                        .next()?
                        .parse()
                        .ok()
                })
                .collect::<Vec<u64>>()
        })
        .collect();
    assert!(
        takeover_offsets.iter().any(|&n| n >= before && n < SIZE),
        "no attempt on the other gateways resumed between {before} and {SIZE}: {takeover_offsets:?}"
    );

    let original = stored_original(&w, "bwc-1/big").await;
    assert_eq!(original["sha256"].as_str().unwrap(), sum);
    assert_eq!(original["size"].as_u64().unwrap(), SIZE);
    eventually(120, "the staged parts removed", || {
        let store = store.clone();
        let pg = &pg;
        async move {
            let left = store.list("staging/").await.unwrap();
            let rows = pg.sql("postgres", "SELECT count(*) FROM uploads");
            (left.is_empty() && rows.trim() == "0").then_some(())
        }
    })
    .await;
}

/// The wall of any gateway shows every live feed. A recorder streams
/// through one gateway; the other's wall lists the feed and plays it —
/// master and media playlists, initialisation segment and parts relayed
/// from the gateway receiving it (the same bytes) — to a supervisor, and
/// not to an operator of another unit; the relay route answers only other
/// gateways of the cluster.
#[tokio::test(flavor = "multi_thread")]
async fn the_wall_of_any_gateway_shows_the_live_feeds_another_receives() {
    use custody::config::{ViewerConfig, ViewerRole};
    let pg = Postgres::start();
    let w = World::with_config(Backend::Garage, |c| {
        c.cluster.database = Some(pg.url("postgres"));
        viewers(c);
        c.viewers.push(ViewerConfig {
            name: "op-office".into(),
            role: ViewerRole::Operator,
            unit: "office".into(),
            token_sha256: Some(hex::encode(custody::chain::sha256(
                token("op-office").as_bytes(),
            ))),
            clearances: Vec::new(),
        });
    });
    let a = w.gateway();
    let b = w.another_gateway("gateway-b", |_| {});
    let id = "seen-everywhere";
    let _rec = record(&w, &a, &camera_file(&w), id, "state");
    let at = |gw: &GatewayProc, path: &str, who: &str| {
        ops::get_as(&w, gw.http_addr(), path, Some(&token(who)))
    };
    let listed = |gw: &GatewayProc, who: &str| {
        let (code, body) = at(gw, "/api/live", who);
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice::<Vec<serde_json::Value>>(&body)
            .unwrap()
            .into_iter()
            .find(|i| i["recording_id"] == id)
    };
    let item = eventually(
        60,
        "the feed playable on the other gateway's wall",
        || async { listed(&b, "sup-b").filter(|i| i["playable"] == true) },
    )
    .await;
    assert_eq!(item["unit"], "market", "{item}");
    let master = item["master"].as_str().unwrap().to_string();
    let (code, body) = at(&b, &master, "sup-b");
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&body).contains("index.m3u8"));
    let index = master.replace("master.m3u8", "index.m3u8");
    let (code, body) = at(&b, &index, "sup-b");
    let playlist = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(code, 200, "{playlist}");
    let named = |prefix: &str| {
        playlist
            .split(['"', '\n', '='])
            .find(|s| {
                s.starts_with(prefix) && s.ends_with(".mp4")
                    || s.starts_with(prefix) && s.ends_with(".m4s")
            })
            .map(str::to_string)
    };
    for file in [named("init-"), named("part-")] {
        let file = file.unwrap_or_else(|| panic!("no such file in {playlist}"));
        let path = master.replace("master.m3u8", &file);
        let (code_b, via_b) = at(&b, &path, "sup-b");
        let (code_a, via_a) = at(&a, &path, "sup-a");
        assert_eq!((code_b, code_a), (200, 200), "{path}");
        eprintln!("{path}: {} bytes through the other gateway", via_b.len());
        assert!(
            !via_b.is_empty() && via_a == via_b,
            "{path}: the same bytes through either gateway"
        );
    }
    // An operator of another unit sees neither the feed nor its playlists.
    assert!(listed(&b, "op-office").is_none());
    assert_eq!(at(&b, &master, "op-office").0, 403);
    // The relay route is for the gateways of the cluster only.
    let (code, _) = ops::get_as(&w, a.http_addr(), "/cluster/live", Some(&token("sup-a")));
    assert_eq!(code, 401);
}

/// A gateway dies after the rack's `finish` matched (the rack was told the
/// file is verified) but, most likely, before it stored the recording —
/// and the rack is gone too. Another gateway's sweep finds the complete
/// upload nobody holds, restores it from its staged parts and stores it;
/// the staged parts are then removed. (Should the first gateway have
/// stored it before it died, the sweep has nothing to do: the same end
/// state is asserted, and which way it went is printed.)
#[tokio::test(flavor = "multi_thread")]
async fn a_complete_upload_whose_gateway_died_is_stored_by_another_gateway() {
    const SIZE: u64 = 96 << 20;
    let pg = Postgres::start();
    let w = World::with_config(Backend::Garage, |c| {
        c.cluster.database = Some(pg.url("postgres"));
        c.cluster.lease_secs = 3;
    });
    let mut a = w.gateway();
    let b = w.another_gateway("gateway-b", |_| {});
    let dir = w.path("rack");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("orphan.bin");
    write_random_file(&file, SIZE, 91);
    let sum = sha256_file(&file);
    std::fs::write(
        dir.join("orphan.bin.json"),
        r#"{"recording_id":"orphan","officer":"o-1001"}"#,
    )
    .unwrap();
    let mut dock = KillOnDrop(
        w.client_cmd("dock", "rack-1", &a)
            .args(["--json", "--retry-for-secs", "0", "--recorder", "bwc-1"])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let complete = || {
        pg.sql(
            "postgres",
            "SELECT count(*) FROM uploads WHERE recording_id = 'orphan' AND complete",
        )
        .trim()
            == "1"
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !complete() {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never completed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = dock.0.kill();
    a.kill();
    let left = pg.sql(
        "postgres",
        "SELECT count(*) FROM uploads WHERE recording_id = 'orphan'",
    );
    let stored_by_a = left.trim() == "0";
    eprintln!(
        "{}",
        if stored_by_a {
            "the first gateway stored it before it died: nothing to sweep"
        } else {
            "the first gateway died before storing it: the sweep must"
        }
    );

    let store = w.store().await;
    eventually(
        90,
        "the recording stored and its staged parts removed",
        || {
            let store = store.clone();
            let pg = &pg;
            let w = &w;
            async move {
                let ok = w.verify("bwc-1/orphan").status.success();
                let parts = store.list("staging/").await.unwrap();
                let rows = pg.sql("postgres", "SELECT count(*) FROM uploads");
                (ok && parts.is_empty() && rows.trim() == "0").then_some(())
            }
        },
    )
    .await;
    let original = stored_original(&w, "bwc-1/orphan").await;
    assert_eq!(original["sha256"].as_str().unwrap(), sum);
    if !stored_by_a {
        assert!(
            b.log().contains("a complete upload nobody held"),
            "the other gateway's sweep adopted it"
        );
    }
}
