//! Receiving a device's SRT push (`srtserversrc`, listener mode). The
//! device sends MPEG-TS; what SRT delivers is handed over byte for byte and
//! kept as the recording's original. Only a caller that names the expected
//! stream id (and, in SRT's handshake, knows the passphrase) is taken.

use std::time::Duration;

use gst::glib;
use gst::prelude::*;

use crate::elements;
use crate::pull::{CameraError, Limits, pull};

/// Every element the listener makes.
pub const ELEMENTS: &[&str] = &["srtserversrc", "appsink"];

/// Where to listen and what a caller must know.
#[derive(Debug, Clone)]
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
/// `accept(stream_id, peer)` decides on each caller before SRT's handshake
/// ends; `connected(peer)` is told who was taken.
pub fn listen(
    l: &SrtListener,
    stall: Duration,
    keep_going: &(dyn Fn() -> bool + Sync),
    accept: impl Fn(&str, &str) -> bool + Send + Sync + 'static,
    connected: impl Fn(String) + Send + Sync + 'static,
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
    src.connect("caller-connecting", false, move |args| {
        let peer = args.get(1).map(address_of).unwrap_or_default();
        let stream_id = args
            .get(2)
            .and_then(|v| v.get::<Option<String>>().ok())
            .flatten()
            .unwrap_or_default();
        Some(accept(&stream_id, &peer).to_value())
    });
    src.connect("caller-added", false, move |args| {
        connected(args.get(2).map(address_of).unwrap_or_default());
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
