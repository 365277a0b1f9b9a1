//! Every GStreamer element custody creates, with the Debian 12 package that
//! provides it, so that a machine without one is told what to install
//! instead of failing later (or, worse, quietly making nothing).
//! `scripts/setup.sh` installs every package named here; a unit test keeps
//! this table in step with the pipelines, the remux stage, the recorder's
//! test source and the setup script.

/// The package of elements custody registers itself (gst-plugin-fmp4 is
/// linked into the binary).
pub const BUILT_IN: &str = "custody (built in)";

/// Element factory name → the Debian 12 package that provides it.
const PROVIDERS: &[(&str, &str)] = &[
    // GStreamer's core elements.
    ("capsfilter", "libgstreamer1.0-0"),
    ("identity", "libgstreamer1.0-0"),
    ("queue", "libgstreamer1.0-0"),
    // gst-plugin-fmp4, registered in-process by `pipeline::init`.
    ("isofmp4mux", BUILT_IN),
    // The gateway's own timestamp restorer (`pipeline::restamp`).
    ("custodyrestamp", BUILT_IN),
    // The pipelines' ends, and the recorder's test camera.
    ("appsrc", "gstreamer1.0-plugins-base"),
    ("appsink", "gstreamer1.0-plugins-base"),
    ("audioconvert", "gstreamer1.0-plugins-base"),
    ("audiotestsrc", "gstreamer1.0-plugins-base"),
    ("videotestsrc", "gstreamer1.0-plugins-base"),
    // Demuxers and parsers (pipelines/*.pipeline, the remux stage).
    ("aacparse", "gstreamer1.0-plugins-good"),
    ("avidemux", "gstreamer1.0-plugins-good"),
    ("flvdemux", "gstreamer1.0-plugins-good"),
    ("id3demux", "gstreamer1.0-plugins-good"),
    ("matroskademux", "gstreamer1.0-plugins-good"),
    ("mpegaudioparse", "gstreamer1.0-plugins-good"),
    ("qtdemux", "gstreamer1.0-plugins-good"),
    ("wavparse", "gstreamer1.0-plugins-good"),
    // Pulling fixed cameras over RTSP (`rtsp`).
    ("rtspsrc", "gstreamer1.0-plugins-good"),
    ("rtph264depay", "gstreamer1.0-plugins-good"),
    ("rtph265depay", "gstreamer1.0-plugins-good"),
    ("rtpmp4gdepay", "gstreamer1.0-plugins-good"),
    ("rtpmp4adepay", "gstreamer1.0-plugins-good"),
    ("h264parse", "gstreamer1.0-plugins-bad"),
    ("h265parse", "gstreamer1.0-plugins-bad"),
    ("mpegpsdemux", "gstreamer1.0-plugins-bad"),
    ("mpegtsmux", "gstreamer1.0-plugins-bad"),
    ("srtserversrc", "gstreamer1.0-plugins-bad"),
    ("tsdemux", "gstreamer1.0-plugins-bad"),
    // The recorder's test camera: encoders and the time overlay.
    ("x264enc", "gstreamer1.0-plugins-ugly"),
    ("avenc_aac", "gstreamer1.0-libav"),
    ("timeoverlay", "gstreamer1.0-x"),
];

/// GStreamer's typefinders (which tell what an input is) are a plugin, not
/// an element: without it every input looks unrecognised.
const TYPEFINDERS: (&str, &str) = ("typefindfunctions", "gstreamer1.0-plugins-base");

/// The Debian package that provides `element`, if custody knows it.
pub fn package_of(element: &str) -> Option<&'static str> {
    PROVIDERS
        .iter()
        .find(|(e, _)| *e == element)
        .map(|(_, p)| *p)
}

/// Every package the table names (for the setup check).
pub fn packages() -> impl Iterator<Item = &'static str> {
    PROVIDERS
        .iter()
        .map(|(_, p)| *p)
        .chain([TYPEFINDERS.1])
        .filter(|p| *p != BUILT_IN)
}

/// GStreamer parts this machine lacks, each with what provides it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct Missing(pub Vec<MissingPart>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingPart {
    /// What is missing, in words: `GStreamer element "timeoverlay"`.
    pub what: String,
    pub package: Option<&'static str>,
}

fn describe(parts: &[MissingPart]) -> String {
    parts
        .iter()
        .map(|p| match p.package {
            Some(pkg) => format!(
                "{} is missing: install the Debian package {pkg} (scripts/setup.sh installs it)",
                p.what
            ),
            None => format!(
                "{} is missing (custody does not know which package provides it)",
                p.what
            ),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Missing {
    /// The elements named, with their packages; `None` if there are none.
    pub fn elements<S: AsRef<str>>(names: &[S]) -> Option<Missing> {
        let parts: Vec<MissingPart> = names
            .iter()
            .map(|n| MissingPart {
                what: format!("GStreamer element {:?}", n.as_ref()),
                package: package_of(n.as_ref()),
            })
            .collect();
        (!parts.is_empty()).then_some(Missing(parts))
    }
}

/// Checks that every element in `names` can be made here.
pub fn require(names: &[&str]) -> Result<(), Missing> {
    let absent: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| gst::ElementFactory::find(n).is_none())
        .collect();
    Missing::elements(&absent).map_or(Ok(()), Err)
}

/// Checks that GStreamer's typefinders are here.
pub fn require_typefinders() -> Result<(), Missing> {
    match gst::Registry::get().find_plugin(TYPEFINDERS.0) {
        Some(_) => Ok(()),
        None => Err(Missing(vec![MissingPart {
            what: format!("GStreamer's typefinders (plugin {})", TYPEFINDERS.0),
            package: Some(TYPEFINDERS.1),
        }])),
    }
}

/// Parses a gst-launch description, naming the package of every element
/// this machine lacks when that is why it does not parse.
pub fn parse_bin(description: &str) -> Result<gst::Element, ParseError> {
    let mut ctx = gst::ParseContext::new();
    gst::parse::bin_from_description_full(
        description,
        false,
        Some(&mut ctx),
        gst::ParseFlags::FATAL_ERRORS,
    )
    .map_err(|e| parse_error(e, &ctx))
}

/// Like [`parse_bin`], for a whole pipeline.
pub fn parse_pipeline(description: &str) -> Result<gst::Element, ParseError> {
    let mut ctx = gst::ParseContext::new();
    gst::parse::launch_full(description, Some(&mut ctx), gst::ParseFlags::FATAL_ERRORS)
        .map_err(|e| parse_error(e, &ctx))
}

fn parse_error(e: gst::glib::Error, ctx: &gst::ParseContext) -> ParseError {
    match Missing::elements(&ctx.missing_elements()) {
        Some(m) => ParseError::Missing(m),
        None => ParseError::Invalid(e.to_string()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Missing(Missing),
    #[error("{0}")]
    Invalid(String),
}

/// The test camera: a ball and a tone, H.264 + AAC in MPEG-TS. Each frame
/// carries the wall-clock time it was captured, as a barcode drawn by a
/// probe on `stamp` (see `stamp_barcode`): the browser test reads it back
/// from the decoded picture to measure glass-to-glass latency. The running
/// time is also shown as text for people watching.
pub fn test_source_description(width: u32, height: u32, bitrate_kbps: u32) -> String {
    format!(
        "videotestsrc is-live=true pattern=ball \
         ! video/x-raw,format=I420,width={width},height={height},framerate=25/1 \
         ! identity name=stamp \
         ! timeoverlay time-mode=running-time halignment=left valignment=bottom font-desc=\"Sans 24\" \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=50 bitrate={bitrate_kbps} \
         ! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1 ! queue \
         ! mpegtsmux name=mux alignment=7 ! appsink name=out sync=false \
         audiotestsrc is-live=true wave=sine freq=440 ! audio/x-raw,rate=48000,channels=1 \
         ! audioconvert ! avenc_aac ! aacparse ! queue ! mux."
    )
}

/// Every element the remux stage adds to a description at run time: a
/// queue per track, and what the remux stage's `parser_for` (`crate::remux`) names.
pub const TRACK_ELEMENTS: &[&str] = &[
    "queue",
    "h264parse",
    "h265parse",
    "aacparse",
    "custodyrestamp",
];

#[cfg(test)]
mod tests {
    use super::*;
    use gst::prelude::*;

    /// Every element factory in an instantiated description.
    fn factories(bin: &gst::Element) -> Vec<String> {
        let bin = bin.clone().downcast::<gst::Bin>().expect("a bin");
        let mut out = Vec::new();
        for e in bin.iterate_recurse().into_iter().flatten() {
            if let Some(f) = e.factory() {
                out.push(f.name().to_string());
            }
        }
        out
    }

    #[test]
    fn the_table_covers_every_element_custody_makes() {
        crate::init().unwrap();
        let mut used: Vec<(String, String)> = Vec::new();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines");
        let registry = crate::Registry::load(&dir).unwrap();
        assert!(registry.specs().len() >= 10);
        for spec in registry.specs() {
            let ep = spec.instantiate().unwrap();
            for f in factories(ep.bin.upcast_ref()) {
                used.push((f, spec.name.clone()));
            }
        }
        for e in TRACK_ELEMENTS {
            used.push((e.to_string(), "the remux stage".into()));
        }
        for e in crate::rtsp::ELEMENTS {
            used.push((e.to_string(), "the RTSP puller".into()));
        }
        for e in crate::srt::ELEMENTS {
            used.push((e.to_string(), "the SRT listener".into()));
        }
        let camera = parse_pipeline(&test_source_description(640, 360, 1500)).unwrap();
        for f in factories(&camera) {
            used.push((f, "the test source".into()));
        }
        for (element, by) in &used {
            assert!(
                package_of(element).is_some(),
                "{element} (used by {by}) is not in the element table"
            );
        }
        // And the other way round: nothing in the table is unused.
        for (e, _) in PROVIDERS {
            assert!(
                used.iter().any(|(u, _)| u == e),
                "{e} is in the table but nothing uses it"
            );
        }
    }

    #[test]
    fn setup_installs_every_package_in_the_table() {
        let setup = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/setup.sh"),
        )
        .unwrap();
        // The apt list: from `APT_PACKAGES=(` to its closing parenthesis.
        let start = setup.find("APT_PACKAGES=(").expect("the apt list");
        let list = &setup[start..start + setup[start..].find(')').unwrap()];
        let words: Vec<&str> = list.split_whitespace().collect();
        for p in packages() {
            assert!(words.contains(&p), "scripts/setup.sh does not install {p}");
        }
    }

    #[test]
    fn a_missing_element_names_its_package() {
        crate::init().unwrap();
        let e = require(&["queue", "nosuchelement"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"nosuchelement\" is missing"), "{e}");
        assert!(e.contains("does not know which package"), "{e}");
        assert!(!e.contains("queue"), "{e}");
        assert_eq!(
            Missing::elements(&["timeoverlay"]).unwrap().to_string(),
            "GStreamer element \"timeoverlay\" is missing: install the Debian package \
             gstreamer1.0-x (scripts/setup.sh installs it)"
        );
        assert!(require(&["queue", "appsrc", "isofmp4mux"]).is_ok());
        assert!(require_typefinders().is_ok());
        // A description naming an element this machine lacks says which.
        match parse_bin("appsrc name=src ! nosuchdemux ! fakesink") {
            Err(ParseError::Missing(m)) => {
                assert_eq!(m.0.len(), 1);
                assert!(m.0[0].what.contains("nosuchdemux"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_bin("appsrc ! ! !"),
            Err(ParseError::Invalid(_))
        ));
    }
}
