//! The running gateway: everything a session needs, and the accept loop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::archive::Archiver;
use crate::config::Config;
use crate::ledger::{LedgerError, LedgerFile};
use crate::shared::Gateway;
use crate::spool::Spool;
use crate::spool::outbox::Outbox;
use crate::usage::{UNIDENTIFIED, Usage, UsageEvent, UsageLog};
use custody_store::{Store, StoreError};
use custody_transport::quic::{self, QuicError};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("spool {path}: {source}")]
    Spool {
        path: String,
        source: std::io::Error,
    },
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("QUIC endpoint: {0}")]
    Quic(#[from] QuicError),
    // Transparent: the message is the pipeline's own, printed once.
    #[error(transparent)]
    Pipeline(#[from] custody_media::PipelineError),
    #[error("command center: {0}")]
    View(#[from] crate::view::ViewError),
    #[error("policy: {0}")]
    Policy(#[from] crate::policy::calendar::CalendarError),
    #[error("signing key {path}: {reason}")]
    SigningKey { path: String, reason: String },
    #[error("{0}")]
    SpoolInUse(#[from] crate::spool::lock::LockError),
    #[error("cluster {0}")]
    Database(#[from] custody_db::DbError),
}

/// A started gateway.
pub struct Running {
    pub gateway: Arc<Gateway>,
    pub endpoint: quinn::Endpoint,
    pub local_addr: SocketAddr,
    /// The command center's address, when `[http] listen` is set.
    pub http_addr: Option<SocketAddr>,
    /// The background tasks, stopped and joined by [`Running::shutdown`].
    pub tasks: Arc<crate::tasks::Tasks>,
}

impl Running {
    /// Stops accepting, tells connected devices to come back later (close
    /// code `shutting_down`) and waits briefly for them, then stops and
    /// joins the background tasks. What was acknowledged is in the spool
    /// already; the next start resumes the rest.
    pub async fn shutdown(&self) {
        tracing::info!("shutting down");
        self.endpoint.close(
            custody_proto::CloseCode::ShuttingDown.code().into(),
            b"gateway shutting down",
        );
        let _ = tokio::time::timeout(Duration::from_secs(5), self.endpoint.wait_idle()).await;
        let panicked = self.tasks.shutdown(Duration::from_secs(10)).await;
        if panicked > 0 {
            tracing::error!(panicked, "background tasks had panicked");
        }
    }

    /// Accepts connections until the endpoint is closed.
    pub async fn serve(&self) {
        while let Some(incoming) = self.endpoint.accept().await {
            let gw = self.gateway.clone();
            tokio::spawn(crate::session::handle(gw, incoming));
        }
    }
}

/// Opens spool, ledger, store and endpoint, and starts the background
/// tasks (archiver, outbox drain, refusal log).
pub async fn start(cfg: Config) -> Result<Running, GatewayError> {
    // Before anything reads or resumes what is in the spool: a second
    // gateway on it would resume the first one's live recordings.
    let spool_lock = crate::spool::lock::SpoolLock::acquire(
        &cfg.gateway.spool,
        &format!(
            "custody serve, pid {}, gateway {}, since {}",
            std::process::id(),
            cfg.gateway.id,
            custody_format::time_fmt::now()
        ),
    )?;
    let spool = Spool::open(&cfg.gateway.spool).map_err(|source| GatewayError::Spool {
        path: cfg.gateway.spool.display().to_string(),
        source,
    })?;
    let ledger = LedgerFile::open(&cfg.ledger.path)?;
    let space = Arc::new(crate::spool::space::SpoolSpace::new(
        spool.root(),
        cfg.gateway.spool_reserve_bytes,
    ));
    let metrics = Arc::new(crate::metrics::Metrics::new(space.clone()));
    let store = Store::open_observed(&cfg.store, Some(metrics.store_observer())).await?;
    // Cluster mode: the catalog is kept in the shared database.
    let db = match &cfg.cluster.database {
        Some(url) => Some(custody_db::Db::connect(url).await?),
        None => None,
    };
    let index = crate::catalog::Index::new(store.clone(), db.clone());
    match store.probe().await {
        Ok(()) => tracing::info!("store: {}", store.describe()),
        Err(e) => tracing::warn!(
            "store {} unreachable at startup ({e}); receiving into the spool and retrying",
            store.describe()
        ),
    }
    let retention = match cfg.policy.object_lock {
        crate::config::ObjectLockMode::Auto => {
            // The standard period plus a week: objects are written before
            // the recording ends, and the period runs from its end.
            let years = cfg.policy.standard_years as f64;
            let retain =
                time::Duration::seconds_f64(years * 365.25 * 86400.0) + time::Duration::days(7);
            store.set_up_retention(Some(retain)).await
        }
        crate::config::ObjectLockMode::Off => custody_format::retention::Enforcement::Gateway {
            why: "policy.object_lock = \"off\" in the configuration".into(),
        },
    };
    match &retention {
        custody_format::retention::Enforcement::ObjectLock => {
            tracing::info!("retention: {}", retention.describe())
        }
        _ => tracing::warn!("retention: {}", retention.describe()),
    }
    // What the probe found, for `custody retention list` and reports.
    let probed = serde_json::json!({
        "gateway": cfg.gateway.id,
        "probed_at": custody_format::time_fmt::now(),
        "storage": retention,
        "describe": retention.describe(),
    });
    let pb = bytes::Bytes::from(serde_json::to_vec_pretty(&probed).expect("json"));
    let ph = custody_format::chain::sha256(&pb);
    if let Err(e) = store
        .put_bytes(custody_format::retention::PROBE_RESULT, pb, &ph)
        .await
    {
        tracing::warn!("retention probe result not stored: {e}");
    }
    let offset = cfg.utc_offset();
    let key_err = |reason: String| GatewayError::SigningKey {
        path: cfg.tls.signing_key.display().to_string(),
        reason,
    };
    let signer = Arc::new(
        crate::signing::SigningKey::from_pem(
            &std::fs::read_to_string(&cfg.tls.signing_key).map_err(|e| key_err(e.to_string()))?,
        )
        .map_err(|e| key_err(e.to_string()))?,
    );
    tracing::info!(public_key = %signer.public().to_hex(), "checkpoint signing key loaded");
    let tasks = Arc::new(crate::tasks::Tasks::new());
    let outbox = Outbox::new(spool.outbox_dir());
    tasks.spawn("outbox", outbox.clone().drain(store.clone()));
    let usage = UsageLog::new(outbox, offset, cfg.gateway.id.clone());
    let media = if cfg.media.derive {
        let registry = custody_media::Registry::load(&cfg.media.pipelines)?;
        tracing::info!(
            dir = %cfg.media.pipelines.display(),
            kinds = registry.specs().len(),
            "pipelines loaded"
        );
        Some(crate::archive::Media {
            registry: Arc::new(registry),
            options: custody_media::remux::RemuxOptions {
                fragment_duration: Duration::from_secs_f64(cfg.media.segment_seconds),
                ..Default::default()
            },
        })
    } else {
        None
    };
    let policy = crate::policy::Policy::from_config(&cfg)?;
    tracing::info!(
        calendar = policy.calendar().version(),
        working_days = policy.working_days,
        "storage deadline policy"
    );
    // Provisional deadlines are assessed again now, and whenever the
    // holiday schedules in `calendar_dir` change.
    tasks.spawn(
        "deadline recompute",
        crate::policy::recompute::Recompute::new(
            policy.clone(),
            cfg.policy.calendar_dir.clone(),
            store.clone(),
            index.clone(),
            signer.clone(),
            &cfg.gateway.id,
        )
        .run(),
    );
    let catalog = crate::catalog::Catalog::new(spool.root(), index.clone());
    tasks.spawn("catalog", catalog.clone().run());
    let linker =
        crate::link::Linker::new(spool.root(), index.clone(), signer.clone(), &cfg.gateway.id);
    tasks.spawn("links", linker.clone().run());
    let leases = db.as_ref().map(|db| {
        crate::lease::Leases::new(
            db.clone(),
            &cfg.gateway.id,
            Duration::from_secs(cfg.cluster.lease_secs.max(3)),
            metrics.clone(),
        )
    });
    let staging = leases
        .as_ref()
        .map(|l| crate::staging::Staging::new(l.clone(), store.clone(), metrics.clone()));
    // In cluster mode docked parts are staged instead (under the lease).
    let ahead = staging
        .is_none()
        .then(|| crate::upload_ahead::UploadsAhead::new(store.clone()));
    let archiver = Archiver::start(
        crate::archive::ArchiverParts {
            staging: staging.clone(),
            ahead: ahead.clone(),
            spool: spool.clone(),
            store: store.clone(),
            usage: usage.clone(),
            media: media.clone(),
            signer: signer.clone(),
            gateway: cfg.gateway.id.clone(),
            linker: linker.clone(),
            catalog: catalog.clone(),
            policy: policy.clone(),
            metrics: metrics.clone(),
        },
        2,
        &tasks,
    )
    .map_err(|source| GatewayError::Spool {
        path: cfg.gateway.spool.display().to_string(),
        source,
    })?;
    let live = crate::live::Live::start(
        spool.clone(),
        store.clone(),
        usage.clone(),
        catalog.clone(),
        crate::live::LiveOptions {
            media: media.clone(),
            part: Duration::from_secs_f64(cfg.live.part_seconds),
            close_after: Duration::from_secs(cfg.live.close_after_secs),
            latencies: Default::default(),
            view_latencies: Default::default(),
            signer: signer.clone(),
            raw_chunks: cfg.live.raw_chunks,
            policy: Some(policy.clone()),
            metrics: metrics.clone(),
        },
        tasks.clone(),
        leases,
    )
    .map_err(|source| GatewayError::Spool {
        path: cfg.gateway.spool.display().to_string(),
        source,
    })?;
    let (endpoint, mut refusals) = quic::server(&quic::ServerSettings {
        listen: &cfg.gateway.listen,
        ca: &cfg.tls.ca,
        cert: &cfg.tls.cert,
        key: &cfg.tls.key,
        crls: &cfg.tls.crls,
        udp_buffer: cfg.gateway.udp_buffer_bytes,
        stream_window: cfg.gateway.stream_window_bytes,
        conn_window: crate::session::window::initial(cfg.gateway.connection_window_bytes),
    })?;
    let local_addr = endpoint
        .local_addr()
        .map_err(|source| GatewayError::Spool {
            path: "endpoint".into(),
            source,
        })?;
    {
        let (usage, metrics) = (usage.clone(), metrics.clone());
        tasks.spawn("refusal log", async move {
            // Unauthenticated peers can make refusals at will: record at
            // most REFUSALS_PER_MINUTE individually per minute, and how many
            // more there were when the minute ends.
            const REFUSALS_PER_MINUTE: u32 = 60;
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            let (mut recorded, mut skipped) = (0u32, 0u64);
            loop {
                let r = tokio::select! {
                    r = refusals.recv() => match r {
                        Some(r) => r,
                        None => return,
                    },
                    _ = tick.tick() => {
                        if skipped > 0 {
                            usage
                                .record(Usage {
                                    device: UNIDENTIFIED,
                                    officer: None,
                                    event: UsageEvent::Refused,
                                    recording_id: None,
                                    detail: format!(
                                        "{skipped} further certificates were refused at the TLS handshake in the last minute (not recorded one by one)"
                                    ),
                                    peer: None,
                                })
                                .await;
                        }
                        (recorded, skipped) = (0, 0);
                        continue;
                    }
                };
                metrics.refused(crate::metrics::Refusal::Certificate);
                if recorded >= REFUSALS_PER_MINUTE {
                    skipped += 1;
                    continue;
                }
                recorded += 1;
                let device = r.device.clone().unwrap_or_else(|| UNIDENTIFIED.to_string());
                usage
                    .record(Usage {
                        device: &device,
                        officer: None,
                        event: UsageEvent::Refused,
                        recording_id: None,
                        detail: format!(
                            "certificate refused at TLS handshake: {} (certificate sha256 {}): {}",
                            r.presented, r.fingerprint, r.reason
                        ),
                        peer: None,
                    })
                    .await;
            }
        });
    }
    {
        // Live segment close → storage latency, for operators and the load
        // benchmark.
        let live = live.clone();
        tasks.spawn("latency log", async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                if let Some((n, p50, p99)) = live.latency_summary() {
                    tracing::info!(
                        segments = n,
                        p50_ms = p50.as_millis() as u64,
                        p99_ms = p99.as_millis() as u64,
                        "live latency segment-close to storage"
                    );
                }
                if let Some((n, p50, p99)) = live.view_latency_summary() {
                    tracing::info!(
                        parts = n,
                        p50_ms = p50.as_millis() as u64,
                        p99_ms = p99.as_millis() as u64,
                        "live latency ingest to playable part"
                    );
                }
            }
        });
    }
    tracing::info!(addr = %local_addr, "listening (QUIC, ALPN custody/1)");
    let gateway = Arc::new(Gateway {
        cfg,
        ledger,
        space,
        metrics,
        spool,
        store,
        usage,
        archiver,
        linker,
        catalog,
        db,
        staging,
        ahead,
        media,
        live,
        signer,
        retention,
        offset,
        busy: Mutex::new(HashMap::new()),
        spool_lock,
    });
    let http_addr = crate::view::start(gateway.clone(), &tasks).await?;
    crate::ingest::start(gateway.clone(), &tasks);
    Ok(Running {
        gateway,
        endpoint,
        local_addr,
        http_addr,
        tasks,
    })
}
