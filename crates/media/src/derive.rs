//! CMAF derivatives of a docked original, made in the spool beside it
//! before archiving: an initialisation segment and media segments, written
//! and fsynced one by one, then `derivation.json` last. A derivation that
//! fails leaves no files behind, only the reason.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Registry;
use crate::remux::{self, Fragment, Input, RemuxError, RemuxOptions, Track};
use custody_fs::{sync_dir, write_atomic};

/// One derived file in the spool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DerivedFile {
    pub name: String,
    pub size: u64,
    #[serde(with = "custody_format::chain::hex_hash")]
    pub sha256: custody_format::chain::Hash,
    /// Media time covered, seconds from the start of the original.
    pub start: f64,
    pub end: f64,
}

pub use custody_format::manifest::Recipe;

/// The recipe for `pipeline_description` run now, on this gateway.
pub fn current_recipe(pipeline_description: String, segment_seconds: f64) -> Recipe {
    let (major, minor, micro, _) = gst::version();
    let fmp4mux = gst::Registry::get()
        .find_plugin("fmp4")
        .map(|p| p.version().to_string())
        .unwrap_or_default();
    Recipe {
        pipeline_description,
        segment_seconds,
        gstreamer: format!("{major}.{minor}.{micro}"),
        fmp4mux,
    }
}

/// The outcome of deriving, as recorded in the spool and (summarised) in
/// the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Derivation {
    /// CMAF segments were derived.
    Derived {
        input: String,
        pipeline: String,
        tracks: Vec<Track>,
        init: DerivedFile,
        segments: Vec<DerivedFile>,
        /// Absent in derivations recorded before it was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recipe: Option<Recipe>,
    },
    /// Not audio-visual (a photo, a document): the original is the record.
    None {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
        reason: String,
    },
    /// Audio-visual, but no derivative could be made; the reason says why.
    Failed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tracks: Vec<Track>,
        reason: String,
    },
}

impl Derivation {
    pub fn status(&self) -> &'static str {
        match self {
            Derivation::Derived { .. } => "derived",
            Derivation::None { .. } => "none",
            Derivation::Failed { .. } => "failed",
        }
    }
}

pub const RECORD: &str = "derivation.json";

/// The initialisation segment's file in a derivation's directory.
pub const INIT_FILE: &str = "init.mp4";

/// The file of media segment `n` (from 0) in a derivation's directory.
pub fn segment_file(n: usize) -> String {
    format!("seg-{n:06}.m4s")
}

/// Writes fragments to `seg-NNNNNN.m4s` files and the init segment to
/// `init.mp4`, hashing as it goes.
struct DirOutput {
    dir: PathBuf,
    files: Arc<Mutex<(Option<DerivedFile>, Vec<DerivedFile>)>>,
    /// Every file written, open, to be made durable before the record: the
    /// same descriptors, so a failed writeback is reported by their sync.
    written: Arc<Mutex<Vec<std::fs::File>>>,
}

/// Writes a derived file and starts its writeback to disk without waiting
/// for it: the derivation is recorded only after [`sync_files`] has made
/// every file durable, so the wait is paid once, mostly overlapped with the
/// remuxing (one `fdatasync` per segment as it closed cost about a quarter
/// of the docked remux's wall time).
/// Written files kept open until their sync, at most.
const MAX_OPEN_WRITTEN: usize = 256;

fn write_started(
    path: &Path,
    data: &[u8],
    written: &Mutex<Vec<std::fs::File>>,
) -> std::io::Result<custody_format::chain::Hash> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(data)?;
    start_writeback(&f);
    let mut w = written.lock().expect("written files");
    w.push(f);
    if w.len() > MAX_OPEN_WRITTEN {
        // Hours of segments would exhaust descriptors: sync the oldest
        // now (their writeback has long started) and close them.
        for f in w.drain(..MAX_OPEN_WRITTEN / 2) {
            f.sync_data()?;
        }
    }
    Ok(Sha256::digest(data).into())
}

#[cfg(target_os = "linux")]
fn start_writeback(f: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor; the call only schedules writeback.
    // Failure is harmless: `sync_files` makes the file durable regardless.
    unsafe {
        libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_f: &std::fs::File) {}

/// Makes every written file durable (their writeback mostly done already).
fn sync_files(written: &Mutex<Vec<std::fs::File>>) -> std::io::Result<()> {
    for f in written.lock().expect("written files").drain(..) {
        f.sync_data()?;
    }
    Ok(())
}

impl remux::Output for DirOutput {
    fn init(&mut self, data: &[u8]) -> std::io::Result<()> {
        let name = INIT_FILE.to_string();
        let sha256 = write_started(&self.dir.join(&name), data, &self.written)?;
        self.files.lock().expect("files").0 = Some(DerivedFile {
            name,
            size: data.len() as u64,
            sha256,
            start: 0.0,
            end: 0.0,
        });
        Ok(())
    }

    fn fragment(&mut self, f: Fragment) -> std::io::Result<()> {
        let mut files = self.files.lock().expect("files");
        let name = segment_file(files.1.len());
        let sha256 = write_started(&self.dir.join(&name), &f.data, &self.written)?;
        files.1.push(DerivedFile {
            name,
            size: f.data.len() as u64,
            sha256,
            start: f.start,
            end: f.start + f.duration,
        });
        Ok(())
    }
}

/// File names that promise audio-visual content; used only to word the
/// reason when the bytes turn out to be something else.
fn looks_like_av(file_name: Option<&str>) -> bool {
    const AV: &[&str] = &[
        "mp4", "mov", "m4v", "m4a", "3gp", "ts", "mts", "m2ts", "mkv", "webm", "avi", "flv", "mpg",
        "mpeg", "vob", "h264", "264", "h265", "265", "hevc", "aac", "mp3", "wav",
    ];
    file_name
        .and_then(|n| n.rsplit_once('.'))
        .is_some_and(|(_, e)| AV.contains(&e.to_ascii_lowercase().as_str()))
}

/// What the gateway needs to derive CMAF from originals.
#[derive(Clone)]
pub struct Media {
    pub registry: Arc<Registry>,
    pub options: RemuxOptions,
}

/// Derives CMAF from the complete file `original` into `dir` (replacing
/// anything there) and records the outcome in `dir/derivation.json`.
pub fn derive(
    registry: &Registry,
    original: &Path,
    file_name: Option<&str>,
    dir: &Path,
    opts: &RemuxOptions,
) -> std::io::Result<Derivation> {
    derive_input(
        registry,
        Input::File(original.to_path_buf()),
        file_name,
        dir,
        opts,
    )
}

/// A derivation running while its original is still being uploaded.
pub struct Streaming {
    growth: Arc<remux::Growth>,
    handle: std::thread::JoinHandle<std::io::Result<Derivation>>,
    dir: PathBuf,
}

impl Streaming {
    /// Starts remuxing `original` as it grows, if its first bytes (at least
    /// the typefinding probe) show a kind that can be read in order.
    pub fn start(
        media: &Media,
        original: &Path,
        available: u64,
        file_name: Option<String>,
        dir: PathBuf,
    ) -> Option<Streaming> {
        let caps = crate::typefind::caps_of_file(original).ok()??;
        let spec = media.registry.select(&caps)?;
        if spec.access != crate::Access::Stream {
            return None;
        }
        let growth = remux::Growth::new(available);
        let (m, g, p, d) = (
            media.clone(),
            growth.clone(),
            original.to_path_buf(),
            dir.clone(),
        );
        let handle = std::thread::Builder::new()
            .name("derive-streaming".into())
            .spawn(move || {
                derive_input(
                    &m.registry,
                    Input::Growing {
                        path: p,
                        growth: g,
                        start: 0,
                    },
                    file_name.as_deref(),
                    &d,
                    &m.options,
                )
            })
            .ok()?;
        Some(Streaming {
            growth,
            handle,
            dir,
        })
    }

    pub fn advance(&self, available: u64) {
        self.growth.advance(available);
    }

    /// The upload completed at `total` bytes: waits for the derivation.
    pub fn finish(self, total: u64) -> std::io::Result<Derivation> {
        self.growth.finish(total);
        self.handle
            .join()
            .map_err(|_| std::io::Error::other("derivation thread panicked"))?
    }

    /// The upload stopped short: stop, and leave nothing behind (the
    /// archiver derives from the complete file later).
    pub fn abandon(self) {
        self.growth.abandon();
        let _ = self.handle.join();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn derive_input(
    registry: &Registry,
    source: Input,
    file_name: Option<&str>,
    dir: &Path,
    opts: &RemuxOptions,
) -> std::io::Result<Derivation> {
    let original = match &source {
        Input::File(p) | Input::Growing { path: p, .. } => p.clone(),
    };
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let files = Arc::new(Mutex::new((None, Vec::new())));
    let written = Arc::new(Mutex::new(Vec::new()));
    let out = DirOutput {
        dir: dir.to_path_buf(),
        files: files.clone(),
        written: written.clone(),
    };
    let input_caps = crate::typefind::caps_of_file(&original)?;
    let input = input_caps.as_ref().map(|c| crate::typefind::describe(c));
    let result = remux::remux(registry, source, opts, Box::new(out));
    let d = match result {
        Ok(report) => {
            let (init, segments) = std::mem::take(&mut *files.lock().expect("files"));
            match init {
                Some(init) => Derivation::Derived {
                    input: report.input,
                    pipeline: report.pipeline,
                    tracks: report.tracks,
                    init,
                    segments,
                    recipe: Some(current_recipe(
                        report.pipeline_text,
                        opts.fragment_duration.as_secs_f64(),
                    )),
                },
                None => Derivation::Failed {
                    input,
                    tracks: report.tracks,
                    reason: "the muxer produced no initialisation segment".into(),
                },
            }
        }
        Err(RemuxError::NotMedia(reason)) => {
            let is_image = input_caps
                .as_ref()
                .and_then(|c| c.structure(0).map(|s| s.name().starts_with("image/")));
            if is_image == Some(true) {
                Derivation::None {
                    input,
                    reason: "a still image: evidence that is not video, kept as the original only"
                        .into(),
                }
            } else if looks_like_av(file_name) {
                Derivation::Failed {
                    input,
                    tracks: Vec::new(),
                    reason: format!(
                        "the file is named like audio-visual media ({}) but its bytes are not: {reason}",
                        file_name.unwrap_or_default()
                    ),
                }
            } else {
                Derivation::None { input, reason }
            }
        }
        Err(RemuxError::NoSupportedTrack(tracks)) => Derivation::Failed {
            input,
            reason: no_track_reason(&tracks),
            tracks,
        },
        Err(e @ RemuxError::SelfCheck { .. }) => {
            let reason = e.to_string();
            let RemuxError::SelfCheck { tracks, .. } = e else {
                unreachable!("matched above")
            };
            Derivation::Failed {
                input,
                tracks,
                reason,
            }
        }
        Err(e @ (RemuxError::Output(_) | RemuxError::Input(_))) => {
            // Local I/O trouble is not a property of the recording: retry later.
            return Err(std::io::Error::other(e.to_string()));
        }
        Err(e) => Derivation::Failed {
            input,
            tracks: Vec::new(),
            reason: e.to_string(),
        },
    };
    if !matches!(d, Derivation::Derived { .. }) {
        // Nothing half-made may look like a derivative.
        for e in std::fs::read_dir(dir)?.flatten() {
            std::fs::remove_file(e.path())?;
        }
    } else {
        // Durable before the record says they exist.
        sync_files(&written)?;
    }
    sync_dir(dir)?;
    write_atomic(
        &dir.join(RECORD),
        &serde_json::to_vec_pretty(&d).expect("derivation serialises"),
    )?;
    Ok(d)
}

/// Reads a finished derivation record, if any.
pub fn load(dir: &Path) -> std::io::Result<Option<Derivation>> {
    match std::fs::read(dir.join(RECORD)) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Why no track made it into a derivative: none could be carried without
/// transcoding (each named), or the demuxer found none at all (a stream
/// table damaged or missing, such as an MPEG-TS without its PAT).
fn no_track_reason(tracks: &[Track]) -> String {
    if tracks.is_empty() {
        return "the demuxer found no audio or video track in the file (its stream table is damaged or missing); the original is kept exactly as received".into();
    }
    format!(
        "no track can be carried in CMAF fMP4 without transcoding (not allowed): {}",
        tracks
            .iter()
            .filter_map(|t| t.reason.as_deref())
            .collect::<Vec<_>>()
            .join("; ")
    )
}
