//! `custodyrestamp`: restores the timestamps a container does not carry
//! for a video track, so that the fMP4 muxer (which needs both decode and
//! presentation times) gets the original's timeline. It replaces GStreamer
//! 1.22's `h264timestamper`/`h265timestamper`, which collapse an AVI's
//! timeline (they copy the last keyframe's time onto every frame without
//! one) and give Matroska frames decode times that go backwards.
//!
//! Frames pass in decode order through a window of [`WINDOW`] frames (the
//! most any H.264/H.265 stream may reorder: 16 reference frames). Two modes:
//!
//! - `dts-from-pts` (Matroska: presentation times only): the frame decoded
//!   k-th gets the k-th smallest presentation time as its decode time.
//! - `pts-from-order` (AVI: decode times only, at the stream's frame
//!   rate, and a presentation time on keyframes alone): the frame presented
//!   k-th — by picture order count, read from the H.264 slice headers —
//!   gets the decode time of the frame decoded k-th. The first frame shown
//!   is thus at the file's first frame time, and each later one at the
//!   next frame slot, as the container's frame rate lays them out.
//!
//! Both only reorder times the container already gives; they never invent a
//! rate.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::h264::{self, Order, PocTracker};

/// Frames held back: enough for the deepest reordering H.264/H.265 allow.
pub const WINDOW: usize = 16;

/// Registers the element with GStreamer (in-process, once).
pub fn register() -> Result<(), glib::BoolError> {
    gst::Element::register(
        None,
        "custodyrestamp",
        gst::Rank::NONE,
        Restamp::static_type(),
    )
}

glib::wrapper! {
    pub struct Restamp(ObjectSubclass<imp::Restamp>) @extends gst::Element, gst::Object;
}

mod imp {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum Mode {
        #[default]
        DtsFromPts,
        PtsFromOrder,
    }

    impl Mode {
        fn name(self) -> &'static str {
            match self {
                Mode::DtsFromPts => "dts-from-pts",
                Mode::PtsFromOrder => "pts-from-order",
            }
        }
    }

    struct Frame {
        buffer: gst::Buffer,
        /// Decode time (given, in `pts-from-order`).
        dts: Option<gst::ClockTime>,
        /// Presentation time (given, in `dts-from-pts`; assigned otherwise).
        pts: Option<gst::ClockTime>,
    }

    /// What goes downstream, in order.
    enum Out {
        Buffer(gst::Buffer),
        Event(gst::Event),
    }

    #[derive(Default)]
    struct State {
        /// Frames not yet pushed, in decode order.
        window: VecDeque<Frame>,
        /// Serialized events held back with the frames: each goes out
        /// before the frame at the decode position it arrived before.
        events: VecDeque<(u64, gst::Event)>,
        /// Frames pushed so far: the decode position of `window[0]`.
        pushed: u64,
        received: u64,
        /// `dts-from-pts`: presentation times not yet used as decode times.
        pts_heap: BinaryHeap<Reverse<gst::ClockTime>>,
        /// `pts-from-order`: (presentation order, decode position) of
        /// frames without an assigned presentation time.
        order_heap: BinaryHeap<Reverse<(Order, u64)>>,
        assigned: u64,
        poc: PocTracker,
        /// Bytes of each NAL unit's length prefix; `None`: Annex B.
        length_size: Option<usize>,
        h264: bool,
    }

    pub struct Restamp {
        sinkpad: gst::Pad,
        srcpad: gst::Pad,
        mode: Mutex<Mode>,
        state: Mutex<State>,
    }

    fn fail(msg: String) -> gst::ErrorMessage {
        gst::error_msg!(gst::StreamError::Format, ["{}", msg])
    }

    impl Restamp {
        fn lock(&self) -> std::sync::MutexGuard<'_, State> {
            self.state.lock().expect("restamp state")
        }

        /// Takes what the stream's caps say about NAL framing and carries
        /// out-of-band parameter sets.
        fn caps(&self, caps: &gst::CapsRef) -> Result<(), gst::ErrorMessage> {
            let mut st = self.lock();
            let Some(s) = caps.structure(0) else {
                return Ok(());
            };
            st.h264 = s.name() == "video/x-h264";
            let codec_data = s.get::<gst::Buffer>("codec_data").ok();
            let format = s.get::<String>("stream-format").ok();
            // Only H.264's order is read (`order`), so only its framing.
            st.length_size = match (format.as_deref(), &codec_data) {
                _ if !st.h264 => None,
                (Some("byte-stream"), _) | (None, None) => None,
                (_, Some(cd)) => {
                    let map = cd
                        .map_readable()
                        .map_err(|_| fail("unreadable codec_data".into()))?;
                    st.poc.add_avcc(&map).map_err(|e| fail(e.to_string()))?;
                    // AVCDecoderConfigurationRecord: lengthSizeMinusOne.
                    Some((map.get(4).copied().unwrap_or(3) & 3) as usize + 1)
                }
                (Some(_), None) => Some(4),
            };
            Ok(())
        }

        /// The presentation order of a frame (its first picture's POC).
        fn order(st: &mut State, buffer: &gst::BufferRef) -> Result<Order, gst::ErrorMessage> {
            if !st.h264 {
                return Err(fail(
                    "the presentation order of this codec cannot be restored from decode order (only H.264 can be)".into(),
                ));
            }
            let map = buffer
                .map_readable()
                .map_err(|_| fail("unreadable frame".into()))?;
            let length_size = st.length_size;
            let r = match length_size {
                Some(n) => st.poc.access_unit(h264::avcc_nals(&map, n)),
                None => st.poc.access_unit(h264::annexb_nals(&map)),
            };
            r.map_err(|e| fail(e.to_string()))?
                .ok_or_else(|| fail("a frame holds no coded picture".into()))
        }

        /// Adds a frame; returns the frames whose times are now known.
        fn add(&self, buffer: gst::Buffer) -> Result<Vec<Out>, gst::ErrorMessage> {
            let mode = *self.mode.lock().expect("mode");
            let mut st = self.lock();
            let index = st.received;
            match mode {
                Mode::DtsFromPts => {
                    let pts = buffer
                        .pts()
                        .ok_or_else(|| fail(format!("frame {index} has no presentation time")))?;
                    st.pts_heap.push(Reverse(pts));
                    st.window.push_back(Frame {
                        buffer,
                        dts: None,
                        pts: Some(pts),
                    });
                }
                Mode::PtsFromOrder => {
                    let dts = buffer
                        .dts()
                        .ok_or_else(|| fail(format!("frame {index} has no decode time")))?;
                    let order = Self::order(&mut st, &buffer)?;
                    st.order_heap.push(Reverse((order, index)));
                    st.window.push_back(Frame {
                        buffer,
                        dts: Some(dts),
                        pts: None,
                    });
                }
            }
            st.received += 1;
            Ok(Self::release(&mut st, mode, false))
        }

        /// The frame at the front, after the events that came before it.
        fn emit(st: &mut State, out: &mut Vec<Out>, buffer: gst::Buffer) {
            while st.events.front().is_some_and(|(at, _)| *at <= st.pushed) {
                out.push(Out::Event(st.events.pop_front().expect("checked").1));
            }
            out.push(Out::Buffer(buffer));
            st.pushed += 1;
        }

        /// Assigns the times that are certain (all of them when `drain`)
        /// and takes the frames that have them, in decode order, with the
        /// events held between them.
        fn release(st: &mut State, mode: Mode, drain: bool) -> Vec<Out> {
            let mut out = Vec::new();
            match mode {
                Mode::DtsFromPts => {
                    while st.window.len() > WINDOW || (drain && !st.window.is_empty()) {
                        let mut f = st.window.pop_front().expect("not empty");
                        let Reverse(dts) = st.pts_heap.pop().expect("one time per frame");
                        f.buffer.make_mut().set_dts(dts);
                        Self::emit(st, &mut out, f.buffer);
                    }
                }
                Mode::PtsFromOrder => {
                    while st.received - st.assigned > WINDOW as u64
                        || (drain && st.assigned < st.received)
                    {
                        let Reverse((_, k)) = st.order_heap.pop().expect("one order per frame");
                        // The slot: the decode time of the frame decoded
                        // `assigned`-th (not yet pushed: pushed frames all
                        // have their times, so pushed <= assigned).
                        let slot = st.window[(st.assigned - st.pushed) as usize].dts;
                        st.window[(k - st.pushed) as usize].pts = slot;
                        st.assigned += 1;
                    }
                    while st.window.front().is_some_and(|f| f.pts.is_some()) {
                        let mut f = st.window.pop_front().expect("checked");
                        f.buffer.make_mut().set_pts(f.pts);
                        Self::emit(st, &mut out, f.buffer);
                    }
                }
            }
            if drain {
                out.extend(st.events.drain(..).map(|(_, e)| Out::Event(e)));
            }
            out
        }

        fn push(&self, items: Vec<Out>) -> Result<gst::FlowSuccess, gst::FlowError> {
            for item in items {
                match item {
                    Out::Buffer(b) => {
                        self.srcpad.push(b)?;
                    }
                    Out::Event(e) => {
                        self.srcpad.push_event(e);
                    }
                }
            }
            Ok(gst::FlowSuccess::Ok)
        }

        fn chain(
            &self,
            _pad: &gst::Pad,
            buffer: gst::Buffer,
        ) -> Result<gst::FlowSuccess, gst::FlowError> {
            match self.add(buffer) {
                Ok(out) => self.push(out),
                Err(e) => {
                    self.post_error_message(e);
                    Err(gst::FlowError::Error)
                }
            }
        }

        fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
            match event.view() {
                gst::EventView::FlushStop(_) => {
                    // Frames held are dropped; parameter sets and framing
                    // (from caps, which are not sent again) are kept.
                    let mut st = self.lock();
                    st.window.clear();
                    st.events.clear();
                    st.pts_heap.clear();
                    st.order_heap.clear();
                    (st.pushed, st.received, st.assigned) = (0, 0, 0);
                }
                gst::EventView::Caps(c) => {
                    // For the frames after it (their NAL framing).
                    if let Err(e) = self.caps(c.caps()) {
                        self.post_error_message(e);
                        return false;
                    }
                }
                _ => {}
            }
            if !event.is_serialized() || event.type_() == gst::EventType::FlushStop {
                return gst::Pad::event_default(pad, Some(&*self.obj()), event);
            }
            // Serialized events keep their place among the frames: a
            // segment update in the middle of a window (Matroska sends one
            // after its first frames) must not cut the reordering short.
            let eos = event.type_() == gst::EventType::Eos;
            let held = {
                let mut st = self.lock();
                // A new segment before any frame went out applies to the
                // frames held too (Matroska corrects its first segment's
                // start after its first frames; under the old one they would
                // play a few milliseconds off the rest).
                let replaces = event.type_() == gst::EventType::Segment && st.pushed == 0;
                if replaces {
                    st.events
                        .retain(|(_, e)| e.type_() != gst::EventType::Segment);
                }
                let idle = st.window.is_empty() && st.events.is_empty();
                let hold = !(replaces || idle);
                if hold {
                    let at = st.received;
                    st.events.push_back((at, event.clone()));
                }
                hold
            };
            if !held {
                return self.srcpad.push_event(event);
            }
            if eos {
                let mode = *self.mode.lock().expect("mode");
                let items = Self::release(&mut self.lock(), mode, true);
                return self.push(items).is_ok();
            }
            true
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for Restamp {
        const NAME: &'static str = "CustodyRestamp";
        type Type = super::Restamp;
        type ParentType = gst::Element;

        fn with_class(klass: &Self::Class) -> Self {
            let templ = klass.pad_template("sink").expect("sink template");
            let sinkpad = gst::Pad::builder_from_template(&templ)
                .chain_function(|pad, parent, buffer| {
                    Restamp::catch_panic_pad_function(
                        parent,
                        || Err(gst::FlowError::Error),
                        |this| this.chain(pad, buffer),
                    )
                })
                .event_function(|pad, parent, event| {
                    Restamp::catch_panic_pad_function(
                        parent,
                        || false,
                        |this| this.sink_event(pad, event),
                    )
                })
                .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
                .build();
            let templ = klass.pad_template("src").expect("src template");
            let srcpad = gst::Pad::builder_from_template(&templ)
                .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
                .build();
            Restamp {
                sinkpad,
                srcpad,
                mode: Mutex::new(Mode::default()),
                state: Mutex::new(State::default()),
            }
        }
    }

    impl ObjectImpl for Restamp {
        fn constructed(&self) {
            self.parent_constructed();
            let obj = self.obj();
            obj.add_pad(&self.sinkpad).expect("add sink pad");
            obj.add_pad(&self.srcpad).expect("add src pad");
        }

        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
                vec![
                    glib::ParamSpecString::builder("mode")
                        .nick("Mode")
                        .blurb("dts-from-pts or pts-from-order")
                        .default_value(Some("dts-from-pts"))
                        .mutable_ready()
                        .build(),
                ]
            });
            &PROPS
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            if pspec.name() == "mode" {
                let v: Option<String> = value.get().expect("type checked upstream");
                *self.mode.lock().expect("mode") = match v.as_deref() {
                    Some("pts-from-order") => Mode::PtsFromOrder,
                    _ => Mode::DtsFromPts,
                };
            }
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            match pspec.name() {
                "mode" => self.mode.lock().expect("mode").name().to_value(),
                // GObject asks only for the properties this element registered.
                _ => unreachable!("no property {}", pspec.name()),
            }
        }
    }

    impl GstObjectImpl for Restamp {}

    impl ElementImpl for Restamp {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "Timestamp restorer",
                    "Filter/Video",
                    "Restores decode or presentation times a container does not carry",
                    "custody",
                )
            });
            Some(&*META)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let caps = gst::Caps::builder_full()
                    .structure(gst::Structure::new_empty("video/x-h264"))
                    .structure(gst::Structure::new_empty("video/x-h265"))
                    .build();
                vec![
                    gst::PadTemplate::new(
                        "sink",
                        gst::PadDirection::Sink,
                        gst::PadPresence::Always,
                        &caps,
                    )
                    .expect("sink template"),
                    gst::PadTemplate::new(
                        "src",
                        gst::PadDirection::Src,
                        gst::PadPresence::Always,
                        &caps,
                    )
                    .expect("src template"),
                ]
            });
            &TEMPLATES
        }

        fn change_state(
            &self,
            transition: gst::StateChange,
        ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
            if transition == gst::StateChange::ReadyToPaused {
                *self.lock() = State::default();
            }
            self.parent_change_state(transition)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> gst::ClockTime {
        gst::ClockTime::from_mseconds(v)
    }

    /// Runs `frames` (pts, dts) through the element and returns the times
    /// that come out, in order.
    fn run(
        mode: &str,
        caps: gst::Caps,
        frames: Vec<gst::Buffer>,
    ) -> Vec<(Option<gst::ClockTime>, Option<gst::ClockTime>)> {
        crate::init().unwrap();
        let e = gst::ElementFactory::make("custodyrestamp")
            .property("mode", mode)
            .build()
            .unwrap();
        let sink = e.static_pad("sink").unwrap();
        let src = e.static_pad("src").unwrap();
        let out = std::sync::Arc::new(Mutex::new(Vec::new()));
        let peer = gst::Pad::builder(gst::PadDirection::Sink)
            .chain_function({
                let out = out.clone();
                move |_, _, b| {
                    out.lock().unwrap().push((b.pts(), b.dts()));
                    Ok(gst::FlowSuccess::Ok)
                }
            })
            .build();
        src.link(&peer).unwrap();
        peer.set_active(true).unwrap();
        e.set_state(gst::State::Playing).unwrap();
        sink.send_event(gst::event::StreamStart::new("test"));
        sink.send_event(gst::event::Caps::new(&caps));
        sink.send_event(gst::event::Segment::new(&gst::FormattedSegment::<
            gst::ClockTime,
        >::new()));
        for f in frames {
            sink.chain(f).unwrap();
        }
        sink.send_event(gst::event::Eos::new());
        e.set_state(gst::State::Null).unwrap();
        out.lock().unwrap().clone()
    }

    #[test]
    fn decode_times_from_presentation_times() {
        gst::init().expect("GStreamer");
        // Decode order I P B B P B B, shown I B B P B B P, 40 ms apart.
        let pts = [0, 120, 40, 80, 240, 160, 200];
        let frames = pts
            .iter()
            .map(|&p| {
                let mut b = gst::Buffer::new();
                b.get_mut().unwrap().set_pts(ms(p));
                b
            })
            .collect();
        let out = run(
            "dts-from-pts",
            gst::Caps::new_empty_simple("video/x-h265"),
            frames,
        );
        let dts: Vec<_> = out.iter().map(|o| o.1.unwrap().mseconds()).collect();
        assert_eq!(dts, [0, 40, 80, 120, 160, 200, 240]);
        let kept: Vec<_> = out.iter().map(|o| o.0.unwrap().mseconds()).collect();
        assert_eq!(kept, pts, "presentation times untouched");
    }

    #[test]
    fn presentation_times_from_picture_order() {
        gst::init().expect("GStreamer");
        // An AVI's view: frames at 40 ms decode slots; the slice headers
        // say I0 P3 B1 B2 (POC 0 6 2 4).
        let (sps, pps) = h264::testing::sps_pps();
        let slices = [
            h264::testing::slice(true, true, 0, 0),
            h264::testing::slice(false, true, 1, 6),
            h264::testing::slice(false, false, 2, 2),
            h264::testing::slice(false, false, 2, 4),
        ];
        let mut frames = Vec::new();
        for (i, s) in slices.iter().enumerate() {
            let mut au = Vec::new();
            if i == 0 {
                for n in [&sps[..], &pps[..]] {
                    au.extend_from_slice(&[0, 0, 0, 1]);
                    au.extend_from_slice(n);
                }
            }
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(s);
            let mut b = gst::Buffer::from_mut_slice(au);
            b.get_mut().unwrap().set_dts(ms(40 * i as u64));
            frames.push(b);
        }
        let caps = gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .build();
        let out = run("pts-from-order", caps, frames);
        let got: Vec<_> = out
            .iter()
            .map(|(p, d)| (p.unwrap().mseconds(), d.unwrap().mseconds()))
            .collect();
        assert_eq!(got, [(0, 0), (120, 40), (40, 80), (80, 120)]);
    }
}
