//! Pipeline descriptions, one file per input kind, loaded at run time from
//! the `pipelines/` directory (see `pipelines/README.md` for the convention).
//!
//! A description is gst-launch syntax with three named elements: `src`
//! (an appsrc the gateway feeds with the original's bytes), `mux` (the fMP4
//! muxer) and `sink` (an appsink the gateway reads fragments from). Every
//! other src pad left unlinked — static, or added later by a demuxer — is a
//! track, which the gateway links to `mux` through a queue and the codec's
//! parser. Comment lines (`#`) carry metadata:
//!
//! ```text
//! # match: video/mpegts          caps this kind is chosen for (repeatable)
//! # access: random               the demuxer needs to seek (whole file first)
//! # timestamps: pts-only         pts-dts (default), pts-only, dts-only or none
//! ```

use std::path::{Path, PathBuf};

use gst::prelude::*;

use super::PipelineError;

/// How the pipeline reads its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Bytes in order, as they arrive: remuxing can run during the upload.
    Stream,
    /// Random access: the demuxer seeks (e.g. MP4 with the index at the end),
    /// so the whole file must be present.
    Random,
}

/// What timing the input carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamps {
    /// Presentation and decode timestamps (MP4, MPEG-TS, PS).
    PtsDts,
    /// Presentation timestamps only (Matroska): video tracks get decode
    /// timestamps from the order of their presentation timestamps
    /// (`super::restamp`, `dts-from-pts`).
    PtsOnly,
    /// Decode timestamps only, at the container's frame rate, with a
    /// presentation timestamp on keyframes at most (AVI): H.264 tracks get
    /// presentation timestamps from their pictures' order
    /// (`super::restamp`, `pts-from-order`).
    DtsOnly,
    /// No timestamps (raw elementary streams): the parser times frames at the
    /// frame rate the description's caps declare, and presentation time is
    /// set to decode time — right only for streams without frame reordering
    /// (no B-frames), which is what recorders' hardware encoders write.
    None,
}

#[derive(Debug, Clone)]
pub struct PipelineSpec {
    /// File stem, e.g. `10-mpegts`.
    pub name: String,
    pub path: PathBuf,
    /// The file as written, header lines included: recorded with each
    /// derivative so that it can be re-run exactly (`crate::rederive`).
    pub text: String,
    pub description: String,
    pub matches: Vec<gst::Caps>,
    pub access: Access,
    /// Which timestamps the input carries; fMP4 needs both kinds.
    pub timestamps: Timestamps,
}

#[derive(Debug, Clone, Default)]
pub struct Registry {
    specs: Vec<PipelineSpec>,
}

fn invalid(path: &Path, reason: impl Into<String>) -> PipelineError {
    PipelineError::Invalid {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

impl PipelineSpec {
    /// Parses a description file's text.
    pub fn parse(path: &Path, text: &str) -> Result<PipelineSpec, PipelineError> {
        let mut matches = Vec::new();
        let mut access = Access::Stream;
        let mut timestamps = Timestamps::PtsDts;
        let mut body = String::new();
        for line in text.lines() {
            let t = line.trim();
            if let Some(c) = t.strip_prefix('#') {
                let c = c.trim();
                if let Some(m) = c.strip_prefix("match:") {
                    let caps = m
                        .trim()
                        .parse::<gst::Caps>()
                        .map_err(|e| invalid(path, format!("match caps {:?}: {e}", m.trim())))?;
                    matches.push(caps);
                } else if let Some(t) = c.strip_prefix("timestamps:") {
                    timestamps = match t.trim() {
                        "pts-dts" => Timestamps::PtsDts,
                        "pts-only" => Timestamps::PtsOnly,
                        "dts-only" => Timestamps::DtsOnly,
                        "none" => Timestamps::None,
                        other => {
                            return Err(invalid(path, format!("unknown timestamps {other:?}")));
                        }
                    };
                } else if let Some(a) = c.strip_prefix("access:") {
                    access = match a.trim() {
                        "stream" => Access::Stream,
                        "random" => Access::Random,
                        other => return Err(invalid(path, format!("unknown access {other:?}"))),
                    };
                }
                continue;
            }
            body.push_str(line);
            body.push('\n');
        }
        if matches.is_empty() {
            return Err(invalid(path, "no `# match: <caps>` line"));
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let spec = PipelineSpec {
            name,
            path: path.to_path_buf(),
            text: text.to_string(),
            description: body.trim().to_string(),
            matches,
            access,
            timestamps,
        };
        spec.check()?;
        Ok(spec)
    }

    /// Instantiates the description: parse errors name the file and the
    /// element; the three named endpoints must exist and be of the right kind.
    pub fn instantiate(&self) -> Result<Endpoints, PipelineError> {
        let bin = super::elements::parse_bin(&self.description)
            .map_err(|e| invalid(&self.path, format!("does not parse: {e}")))?;
        let bin = bin
            .downcast::<gst::Bin>()
            .map_err(|_| invalid(&self.path, "description is not a bin"))?;
        let get = |name: &str| {
            bin.by_name(name)
                .ok_or_else(|| invalid(&self.path, format!("no element named {name:?}")))
        };
        let src = get("src")?
            .downcast::<gst_app::AppSrc>()
            .map_err(|_| invalid(&self.path, "element \"src\" must be an appsrc"))?;
        let sink = get("sink")?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| invalid(&self.path, "element \"sink\" must be an appsink"))?;
        let mux = get("mux")?;
        if mux.pad_template("sink_%u").is_none() {
            return Err(invalid(
                &self.path,
                format!(
                    "element \"mux\" ({}) has no request pads sink_%u",
                    mux.factory()
                        .map(|f| f.name().to_string())
                        .unwrap_or_default()
                ),
            ));
        }
        Ok(Endpoints {
            bin,
            src,
            mux,
            sink,
        })
    }

    /// At load: the description instantiates, and contains no decoder or
    /// encoder (derivatives carry the original's compressed samples, never
    /// re-encoded ones).
    fn check(&self) -> Result<(), PipelineError> {
        let ep = self.instantiate()?;
        let mut it = ep.bin.iterate_recurse();
        loop {
            let e = match it.next() {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(gst::IteratorError::Resync) => {
                    it.resync();
                    continue;
                }
                Err(gst::IteratorError::Error) => {
                    return Err(invalid(&self.path, "its elements cannot be listed"));
                }
            };
            let Some(f) = e.factory() else { continue };
            let klass = f.metadata(gst::ELEMENT_METADATA_KLASS).unwrap_or_default();
            if klass.contains("Decoder") || klass.contains("Encoder") {
                return Err(invalid(
                    &self.path,
                    format!(
                        "element {:?} ({}) is a {klass}: pipelines must not decode or encode (no transcoding)",
                        e.name().as_str(),
                        f.name()
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn accepts(&self, caps: &gst::CapsRef) -> bool {
        self.matches.iter().any(|m| m.can_intersect(caps))
    }
}

/// An instantiated description.
pub struct Endpoints {
    pub bin: gst::Bin,
    pub src: gst_app::AppSrc,
    pub mux: gst::Element,
    pub sink: gst_app::AppSink,
}

impl Registry {
    /// Loads every `*.pipeline` file in `dir`, in name order (the first
    /// match wins). Any file that fails to parse or link is an error that
    /// names the file.
    pub fn load(dir: &Path) -> Result<Registry, PipelineError> {
        super::init()?;
        // What every derivation needs besides the descriptions' own
        // elements (those are checked as each file is parsed).
        super::elements::require_typefinders()?;
        super::elements::require(super::elements::TRACK_ELEMENTS)?;
        let rd = std::fs::read_dir(dir).map_err(|e| invalid(dir, e.to_string()))?;
        let mut paths: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pipeline"))
            .collect();
        paths.sort();
        let mut specs = Vec::new();
        for p in paths {
            let text = std::fs::read_to_string(&p).map_err(|e| invalid(&p, e.to_string()))?;
            specs.push(PipelineSpec::parse(&p, &text)?);
        }
        if specs.is_empty() {
            return Err(invalid(dir, "no *.pipeline files"));
        }
        Ok(Registry { specs })
    }

    /// A registry of one description (re-running a recorded derivation).
    pub fn single(spec: PipelineSpec) -> Registry {
        Registry { specs: vec![spec] }
    }

    pub fn specs(&self) -> &[PipelineSpec] {
        &self.specs
    }

    pub fn select(&self, caps: &gst::CapsRef) -> Option<&PipelineSpec> {
        self.specs.iter().find(|s| s.accepts(caps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Result<PipelineSpec, PipelineError> {
        super::super::init().unwrap();
        PipelineSpec::parse(Path::new("pipelines/99-test.pipeline"), text)
    }

    #[test]
    fn good_description() {
        let s = spec(
            "# match: video/mpegts\n# access: stream\nappsrc name=src ! tsdemux\nisofmp4mux name=mux ! appsink name=sink\n",
        )
        .unwrap();
        assert_eq!(s.name, "99-test");
        assert_eq!(s.access, Access::Stream);
        assert!(
            s.accepts(
                &"video/mpegts, systemstream=(boolean)true"
                    .parse::<gst::Caps>()
                    .unwrap()
            )
        );
        assert!(!s.accepts(&"video/quicktime".parse::<gst::Caps>().unwrap()));
    }

    #[test]
    fn bad_descriptions_name_file_and_element() {
        for (text, want) in [
            ("appsrc name=src ! tsdemux\n", "no `# match"),
            (
                "# match: video/mpegts\nappsrc name=src ! nosuchdemux\nisofmp4mux name=mux ! appsink name=sink",
                "nosuchdemux",
            ),
            (
                "# match: video/mpegts\nappsrc name=src ! tsdemux\nisofmp4mux name=mux ! fakesink name=sink",
                "must be an appsink",
            ),
            (
                "# match: video/mpegts\nfakesrc name=src ! tsdemux\nisofmp4mux name=mux ! appsink name=sink",
                "must be an appsrc",
            ),
            (
                "# match: video/mpegts\nappsrc name=src ! tsdemux\nqueue name=mux ! appsink name=sink",
                "no request pads",
            ),
            (
                "# match: video/mpegts\nappsrc name=src ! tsdemux\nappsink name=sink",
                "no element named \"mux\"",
            ),
            (
                "# match: video/mpegts\nappsrc name=src ! tsdemux ! h264parse ! avdec_h264 ! x264enc\nisofmp4mux name=mux ! appsink name=sink",
                "must not decode or encode",
            ),
            ("# match: not caps ((\nappsrc name=src", "match caps"),
            (
                "# match: video/mpegts\nappsrc name=src ! audioconvert ! tsdemux\nisofmp4mux name=mux ! appsink name=sink",
                "could not link",
            ),
        ] {
            let e = spec(text).unwrap_err().to_string();
            assert!(e.contains("99-test.pipeline"), "{e}");
            assert!(e.contains(want), "{e} should mention {want}");
        }
    }
}
