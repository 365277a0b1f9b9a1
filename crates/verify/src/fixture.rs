//! Hand-built stores for the verifier's unit tests: a small docked
//! recording written object by object with the format's own types, in the
//! gateway's write order (`docs/manifest.md` §7) — objects, the final
//! signed checkpoint, the manifest, the locator — into a local store in a
//! temporary directory. A test damages one thing, at whichever stage the
//! damage belongs (the recording before it is listed, the manifest before
//! it is signed, or storage afterwards), and reads what `verify` says.
//!
//! Every value is fixed (times, keys, bytes), so a report is the same on
//! every run. The objects' bytes are short stand-ins for media: the
//! verifier checks bytes by size and hash only.

use bytes::Bytes;
use ring::signature::{Ed25519KeyPair, KeyPair};
use tempfile::TempDir;

use custody_format::chain;
use custody_format::checkpoint::{CHECKPOINT_FORMAT, Checkpoint};
use custody_format::layout;
use custody_format::locator::Locator;
use custody_format::manifest::{
    DerivationStatus, DerivationSummary, DerivedFrom, EntryBuilder, HEADER_FORMAT, HeaderDoc,
    IntegrityStatus, LedgerView, MANIFEST_FORMAT, Manifest, Method, Role, Summary, Uploader,
};
use custody_format::metadata::{DeviceKind, FullProcess, Occasion, RecordingMeta, RecordingMode};
use custody_store::{Store, StoreConfig};

use crate::Report;

pub(crate) const RECORDER: &str = "bwc-0001";
pub(crate) const RECORDING_ID: &str = "REC-20261130-0001";
/// Another recording of the same recorder, for swapped locators.
pub(crate) const OTHER_ID: &str = "REC-20261130-0002";
const CATEGORY: &str = "market";
const RECEIVED_AT: &str = "2026-11-30T01:05:09.123456789Z";
const FINALIZED_AT: &str = "2026-11-30T01:47:31.5Z";

/// Where recording `id` of [`RECORDER`] is stored (received 30 November
/// 2026, category `market`).
pub(crate) fn prefix_of(id: &str) -> String {
    format!("records/{CATEGORY}/2026/11/30/{RECORDER}/{id}")
}

/// The gateway's signing key in these tests (a fixed seed: reproducible
/// signatures).
pub(crate) fn gateway_key() -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[7; 32]).expect("seed")
}

/// A key that is not the gateway's.
pub(crate) fn stranger_key() -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[9; 32]).expect("seed")
}

/// The public half of `key`.
pub(crate) fn public(key: &Ed25519KeyPair) -> crate::signature::PublicKey {
    crate::signature::PublicKey::Ed25519(key.public_key().as_ref().try_into().expect("32 bytes"))
}

/// One object of a recording, in chain order.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    pub role: Role,
    /// The key's extension (`<index>-<role>.<ext>`).
    pub ext: &'static str,
    pub bytes: Vec<u8>,
    /// Position (in the same list) of the object a derivative was made from.
    pub derived_from: Option<usize>,
}

/// A docked recording before it is listed: its header and every object in
/// chain order (object 0 holds the header's exact bytes).
#[derive(Debug, Clone)]
pub(crate) struct Docked {
    pub recording_id: String,
    pub prefix: String,
    pub header: HeaderDoc,
    pub objects: Vec<Object>,
}

impl Docked {
    /// A valid docked recording `id`: header, original, and a derivative
    /// (one init segment and two media segments made from the original).
    pub(crate) fn new(id: &str) -> Docked {
        let header = header(id);
        let object = |role, ext, bytes: &[u8], derived_from| Object {
            role,
            ext,
            bytes: bytes.to_vec(),
            derived_from,
        };
        Docked {
            recording_id: id.to_string(),
            prefix: prefix_of(id),
            objects: vec![
                object(Role::Header, "json", &header.to_bytes(), None),
                object(Role::Original, "mp4", b"original bytes of the device", None),
                object(Role::Init, "mp4", b"init segment", Some(1)),
                object(Role::Segment, "m4s", b"media segment one", Some(1)),
                object(Role::Segment, "m4s", b"media segment two", Some(1)),
            ],
            header,
        }
    }

    /// Changes the header and the bytes stored as object 0 with it (the
    /// header is serialised once, as the gateway does).
    pub(crate) fn edit_header(&mut self, edit: impl FnOnce(&mut HeaderDoc)) {
        edit(&mut self.header);
        let bytes = self.header.to_bytes();
        for o in self.objects.iter_mut().filter(|o| o.role == Role::Header) {
            o.bytes = bytes.clone();
        }
    }

    /// The manifest the gateway would write for these objects: keys from
    /// their positions and roles, the chain over their bytes, the summary
    /// from the header.
    pub(crate) fn manifest(&self) -> Manifest {
        let keys: Vec<String> = self
            .objects
            .iter()
            .enumerate()
            .map(|(i, o)| layout::object_key(&self.prefix, i as u64, o.role, o.ext))
            .collect();
        let mut entries = EntryBuilder::new();
        for (o, key) in self.objects.iter().zip(&keys) {
            let e = entries.push(
                key.clone(),
                o.role,
                o.bytes.len() as u64,
                &chain::sha256(&o.bytes),
            );
            e.derived_from = o.derived_from.map(|i| DerivedFrom {
                index: i as u64,
                key: keys[i].clone(),
                sha256: hex::encode(chain::sha256(&self.objects[i].bytes)),
            });
        }
        let chain_head = entries.head_hex();
        let objects = entries.into_entries();
        let declared_sha256 = objects
            .iter()
            .find(|o| o.role == Role::Original)
            .map(|o| o.sha256.clone())
            .unwrap_or_default();
        let h = &self.header;
        Manifest {
            format: MANIFEST_FORMAT.into(),
            recorder: RECORDER.into(),
            recording_id: self.recording_id.clone(),
            prefix: self.prefix.clone(),
            integrity: IntegrityStatus::Verified,
            declared_sha256,
            metadata_complete: h.missing.is_empty(),
            missing: h.missing.clone(),
            summary: Summary {
                officer: h.meta.officer.clone(),
                occasion: h.meta.occasion,
                mandatory_full_process: false,
                category: h.meta.category.clone(),
                case_id: None,
                proof_object: None,
                started_at: h.meta.started_at.clone(),
                received_at: h.received_at.clone(),
                method: h.method.clone(),
                unit: Some(h.ledger.unit.clone()),
                officer_name: h.ledger.officer_name.clone(),
                clock_skew_seconds: None,
            },
            object_count: objects.len() as u64,
            objects,
            chain_head,
            finalized_at: FINALIZED_AT.into(),
            gateway: h.gateway.clone(),
            derivation: Some(DerivationSummary {
                status: DerivationStatus::Derived,
                input: Some("video/quicktime".into()),
                pipeline: Some("mp4".into()),
                tracks: Vec::new(),
                reason: None,
                recipe: None,
                holes: Vec::new(),
            }),
            live: None,
            links: Vec::new(),
            deadline: None,
            retention: None,
            confidentiality: Vec::new(),
        }
    }
}

/// The header the gateway writes for a docked recording `id` of
/// [`RECORDER`], signed with [`gateway_key`].
fn header(id: &str) -> HeaderDoc {
    let meta = RecordingMeta {
        recording_id: id.into(),
        recorder: Some(RECORDER.into()),
        mode: Some(RecordingMode::Docked),
        started_at: Some("2026-11-30T08:00:00+08:00".into()),
        officer: Some("o-1001".into()),
        occasion: Some(Occasion::OnSiteInspection),
        full_process: Some(FullProcess {
            mandatory: false,
            reason: None,
        }),
        category: Some(CATEGORY.into()),
        file_name: Some("REC_0001.MP4".into()),
        ..RecordingMeta::default()
    };
    HeaderDoc {
        format: HEADER_FORMAT.into(),
        recorder: RECORDER.into(),
        recording_id: id.into(),
        method: Method {
            device_kind: DeviceKind::BodyWornRecorder,
            mode: Some(RecordingMode::Docked),
        },
        received_at: RECEIVED_AT.into(),
        device_clock: None,
        gateway: "zibo-market-gw1".into(),
        uploader: Uploader {
            device: "dock-07".into(),
            device_kind: DeviceKind::DockingRack,
            certificate_sha256: hex::encode(chain::sha256(b"dock-07 certificate")),
            ingest: None,
        },
        ledger: LedgerView {
            device: RECORDER.into(),
            kind: DeviceKind::BodyWornRecorder,
            status: custody_format::manifest::DeviceStatus::Active,
            custodian: "Li Na".into(),
            unit: CATEGORY.into(),
            officer: Some("o-1001".into()),
            officer_name: Some("Zhang Wei".into()),
            enforcement: Some(true),
        },
        missing: meta
            .missing_required()
            .into_iter()
            .map(str::to_string)
            .collect(),
        meta,
        declared_size: None,
        discrepancies: Vec::new(),
        signing_key: public(&gateway_key()).to_hex(),
        retention: None,
        copy_of: None,
    }
}

/// The final checkpoint (number `seq`, after `previous`) the gateway signs
/// over manifest `m`, whose exact bytes are `manifest_bytes`.
pub(crate) fn final_checkpoint(
    m: &Manifest,
    manifest_bytes: &[u8],
    seq: u64,
    previous: Option<String>,
) -> Checkpoint {
    Checkpoint {
        format: CHECKPOINT_FORMAT.into(),
        recorder: m.recorder.clone(),
        recording_id: m.recording_id.clone(),
        prefix: Some(m.prefix.clone()),
        seq,
        object_count: m.objects.len() as u64,
        chain_head: m
            .objects
            .last()
            .map(|o| o.chain.clone())
            .unwrap_or_default(),
        journal: None,
        manifest_sha256: Some(hex::encode(chain::sha256(manifest_bytes))),
        at: FINALIZED_AT.into(),
        previous,
        is_final: true,
        public_key: public(&gateway_key()).to_hex(),
    }
}

/// Exact bytes of a JSON document as the gateway stores it (pretty, then
/// one newline).
pub(crate) fn document<T: serde::Serialize>(doc: &T) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(doc).expect("serialises");
    v.push(b'\n');
    v
}

/// The failures of a report as (index, key, reason), in the report's order.
pub(crate) fn findings(r: &Report) -> Vec<(Option<u64>, String, String)> {
    r.failures
        .iter()
        .map(|f| (f.index, f.key.clone(), f.reason.clone()))
        .collect()
}

/// A local store in a temporary directory.
pub(crate) struct Fixture {
    pub store: Store,
    _dir: TempDir,
}

impl Fixture {
    pub(crate) async fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::open(&StoreConfig {
            local_dir: dir.path().to_path_buf(),
            ..StoreConfig::default()
        })
        .await
        .expect("local store");
        Fixture { store, _dir: dir }
    }

    /// Stores `bytes` under `key`, replacing what is there.
    pub(crate) async fn put(&self, key: &str, bytes: impl Into<Vec<u8>>) {
        let b = Bytes::from(bytes.into());
        let h = chain::sha256(&b);
        self.store.put_bytes(key, b, &h).await.expect("put");
    }

    pub(crate) async fn get(&self, key: &str) -> Vec<u8> {
        self.store
            .get_bytes(key, u64::MAX)
            .await
            .expect("get")
            .to_vec()
    }

    pub(crate) async fn delete(&self, key: &str) {
        self.store.delete(key).await.expect("delete");
    }

    /// Writes `d`'s objects under the keys `m` lists for them: object `i`
    /// under the key of the entry with index `i`, wherever `m` lists it.
    pub(crate) async fn put_objects(&self, d: &Docked, m: &Manifest) {
        for e in &m.objects {
            if let Some(o) = d.objects.get(e.index as usize) {
                self.put(&e.key, o.bytes.clone()).await;
            }
        }
    }

    /// Stores checkpoint `cp` of the recording under `prefix` with
    /// `key`'s signature of its exact bytes; returns those bytes.
    pub(crate) async fn put_checkpoint(
        &self,
        prefix: &str,
        cp: &Checkpoint,
        key: &Ed25519KeyPair,
    ) -> Vec<u8> {
        let bytes = document(cp);
        let sig = key.sign(&bytes);
        self.put(
            &layout::signature_key(prefix, cp.seq),
            sig.as_ref().to_vec(),
        )
        .await;
        self.put(&layout::checkpoint_key(prefix, cp.seq), bytes.clone())
            .await;
        bytes
    }

    /// The locator the gateway writes last for recording `m`.
    pub(crate) async fn put_locator(&self, m: &Manifest) {
        let original = m.objects.iter().find(|o| o.role == Role::Original);
        let locator = Locator {
            recorder: m.recorder.clone(),
            recording_id: m.recording_id.clone(),
            prefix: m.prefix.clone(),
            manifest_key: layout::manifest_key(&m.prefix),
            size: original.map_or(0, |o| o.size),
            sha256: original.map(|o| o.sha256.clone()).unwrap_or_default(),
            chain_head: m.chain_head.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&locator).expect("serialises");
        self.put(&layout::locator_key(&m.recorder, &m.recording_id), bytes)
            .await;
    }

    /// Archives `d` listed as `m`, as the gateway does: the objects, the
    /// final checkpoint (signed with [`gateway_key`]) over the manifest's
    /// exact bytes, the manifest, the locator.
    pub(crate) async fn archive(&self, d: &Docked, m: &Manifest) {
        self.put_objects(d, m).await;
        let bytes = document(m);
        let cp = final_checkpoint(m, &bytes, 0, None);
        self.put_checkpoint(&m.prefix, &cp, &gateway_key()).await;
        self.put(&layout::manifest_key(&m.prefix), bytes).await;
        self.put_locator(m).await;
    }

    /// Archives the valid recording `id`; returns it and its manifest.
    pub(crate) async fn archive_valid(&self, id: &str) -> (Docked, Manifest) {
        let d = Docked::new(id);
        let m = d.manifest();
        self.archive(&d, &m).await;
        (d, m)
    }

    /// Verifies the recording under `prefix`, trusting the key its header
    /// names.
    pub(crate) async fn verify(&self, prefix: &str) -> Report {
        crate::verify(&self.store, &layout::manifest_key(prefix))
            .await
            .expect("verify runs")
    }
}
