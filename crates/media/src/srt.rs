//! Receiving a device's SRT push (`srtserversrc`, listener mode). The
//! device sends MPEG-TS; what SRT delivers is handed over byte for byte and
//! kept as the recording's original. Only a caller that names the expected
//! stream id (and, in SRT's handshake, knows the passphrase) is taken.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;

use crate::elements;
use crate::pull::{CameraError, Limits, pull};

/// Every element the listener makes.
pub const ELEMENTS: &[&str] = &["srtserversrc", "appsink"];

/// How long a caller that was let in has to finish SRT's handshake (the
/// passphrase's key exchange included) before it is reported unfinished.
pub const HANDSHAKE: Duration = Duration::from_secs(5);

/// Callers followed up at once; more are let in but not followed up
/// (anyone can call, and each one followed up holds a thread for a while).
const FOLLOWED: usize = 16;

/// What the gateway decides and learns about callers.
pub trait Gate: Send + Sync + 'static {
    /// Whether a caller `peer` (`host:port`) naming `stream_id` may go on
    /// with SRT's handshake.
    fn accept(&self, stream_id: &str, peer: &str) -> bool;
    /// The caller was taken: the handshake ended, the passphrase matched.
    fn connected(&self, peer: String);
    /// A caller let in did not finish the handshake within [`HANDSHAKE`]:
    /// a wrong or missing passphrase, or it gave up.
    fn unfinished(&self, stream_id: &str, peer: &str);
}

/// Where to listen and what a caller must know. Its `Debug` leaves the
/// passphrase out.
#[derive(Clone)]
pub struct SrtListener<'a> {
    /// Address to bind (`0.0.0.0` for all).
    pub address: &'a str,
    pub port: u16,
    /// AES passphrase (10–79 characters, as libsrt requires); the caller's
    /// key length is taken.
    pub passphrase: &'a str,
    /// SRT receive latency (retransmission window), milliseconds.
    pub latency_ms: u32,
}

impl std::fmt::Debug for SrtListener<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtListener")
            .field("address", &self.address)
            .field("port", &self.port)
            .field("passphrase", &"<redacted>")
            .field("latency_ms", &self.latency_ms)
            .finish()
    }
}

/// The device id a caller's stream id names: the id itself, or the `r`
/// (resource) key of SRT's access-control syntax (`#!::r=cam-1,m=publish`).
pub fn device_of_stream_id(stream_id: &str) -> Option<&str> {
    match stream_id.strip_prefix("#!::") {
        None => Some(stream_id).filter(|s| !s.is_empty()),
        Some(keys) => keys
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "r")
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty()),
    }
}

/// Listens for one caller and hands over what it sends until it leaves,
/// sends nothing for `stall` (counted from its first bytes: waiting for a
/// caller has no limit), `keep_going` says no or `emit` returns `false`.
/// `gate` decides on each caller before SRT's handshake ends and is told
/// who was taken and who let in never finished.
pub fn listen(
    l: &SrtListener,
    stall: Duration,
    keep_going: &(dyn Fn() -> bool + Sync),
    gate: Arc<dyn Gate>,
    emit: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<(), CameraError> {
    crate::init().map_err(|e| CameraError::GStreamer(e.to_string()))?;
    elements::require(ELEMENTS).map_err(CameraError::Missing)?;
    let pipeline = elements::parse_pipeline(
        "srtserversrc name=src ! appsink name=out sync=false max-buffers=64",
    )?;
    let src = pipeline
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name("src"))
        .ok_or_else(|| CameraError::GStreamer("no srtserversrc".into()))?;
    src.set_property(
        "uri",
        format!("srt://{}:{}?mode=listener", l.address, l.port),
    );
    src.set_property("localaddress", l.address);
    src.set_property("localport", u32::from(l.port));
    src.set_property("passphrase", l.passphrase);
    src.set_property("latency", l.latency_ms as i32);
    src.set_property("authentication", true);
    // libsrt asks before the key exchange: a caller let in here may still
    // fail on the passphrase, and then is never added.
    let awaited: Arc<Mutex<HashSet<String>>> = Arc::default();
    let (g, waiting) = (gate.clone(), awaited.clone());
    src.connect("caller-connecting", false, move |args| {
        let peer = args.get(1).map(address_of).unwrap_or_default();
        let stream_id = args
            .get(2)
            .and_then(|v| v.get::<Option<String>>().ok())
            .flatten()
            .unwrap_or_default();
        let taken = g.accept(&stream_id, &peer);
        if taken {
            follow_up(&waiting, &g, stream_id, peer);
        }
        Some(taken.to_value())
    });
    src.connect("caller-added", false, move |args| {
        let peer = args.get(2).map(address_of).unwrap_or_default();
        awaited.lock().expect("awaited callers").remove(&peer);
        gate.connected(peer);
        None
    });
    let limits = Limits {
        stall: Some(stall),
        stall_after_first: true,
        keep_going: Some(keep_going),
        ..Default::default()
    };
    pull(&pipeline, limits, emit)
}

/// Tells `gate` if `peer`, let in, has not been added after [`HANDSHAKE`].
fn follow_up(
    awaited: &Arc<Mutex<HashSet<String>>>,
    gate: &Arc<dyn Gate>,
    stream_id: String,
    peer: String,
) {
    {
        let mut a = awaited.lock().expect("awaited callers");
        if a.len() >= FOLLOWED || !a.insert(peer.clone()) {
            return;
        }
    }
    let (waiting, gate, p) = (awaited.clone(), gate.clone(), peer.clone());
    // Run from a GStreamer signal: a panic here would abort the gateway.
    let spawned = std::thread::Builder::new()
        .name("srt-handshake".into())
        .spawn(move || {
            std::thread::sleep(HANDSHAKE);
            if waiting.lock().expect("awaited callers").remove(&p) {
                gate.unfinished(&stream_id, &p);
            }
        });
    if spawned.is_err() {
        awaited.lock().expect("awaited callers").remove(&peer);
    }
}

/// `host:port` of a `GSocketAddress` signal argument.
fn address_of(v: &glib::Value) -> String {
    use glib::translate::{FromGlibPtrFull, ToGlibPtr};
    let Ok(obj) = v.get::<glib::Object>() else {
        return String::new();
    };
    if !obj.type_().name().contains("SocketAddress") {
        return String::new();
    }
    // SAFETY: every GSocketAddress implements GSocketConnectable; the
    // string returned is newly allocated and owned by the GString.
    unsafe {
        let p: *mut glib::gobject_ffi::GObject = obj.to_glib_none().0;
        let s = gio_sys::g_socket_connectable_to_string(p as *mut gio_sys::GSocketConnectable);
        if s.is_null() {
            return String::new();
        }
        glib::GString::from_glib_full(s).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_id_names_its_device_plainly_or_in_access_control_syntax() {
        for (sid, want) in [
            ("cam-srt-1", Some("cam-srt-1")),
            ("#!::r=cam-srt-1,m=publish", Some("cam-srt-1")),
            ("#!::m=publish,r=enc-2", Some("enc-2")),
            ("#!::m=publish", None),
            ("#!::r=", None),
            ("", None),
        ] {
            assert_eq!(device_of_stream_id(sid), want, "{sid:?}");
        }
    }
}
