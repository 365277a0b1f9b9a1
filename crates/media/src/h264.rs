//! Just enough of H.264 (ITU-T H.264, 7.3 and 8.2.1) to tell the order in
//! which pictures are presented: the picture order count (POC) of each
//! access unit, from its sequence and picture parameter sets and its first
//! slice header. Containers that store only decode order (AVI) need it to
//! restore presentation times (`super::restamp`).
//!
//! Not handled: memory management operation 5 (a POC reset without an IDR,
//! which would need the whole slice header parsed; encoders rarely use it)
//! and field pictures beyond their first field's order.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("H.264: {0}")]
pub struct H264Error(String);

fn err(s: impl Into<String>) -> H264Error {
    H264Error(s.into())
}

/// Removes emulation-prevention bytes (00 00 03 → 00 00).
fn rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Exp-Golomb bit reader over an RBSP.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits { data, pos: 0 }
    }
    fn bit(&mut self) -> Result<u32, H264Error> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or_else(|| err("a parameter set or slice header is cut short"))?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(b as u32)
    }
    fn bits(&mut self, n: u32) -> Result<u32, H264Error> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Ok(v)
    }
    fn ue(&mut self) -> Result<u32, H264Error> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(err("an Exp-Golomb code is too long"));
            }
        }
        Ok(((1u64 << zeros) - 1 + self.bits(zeros)? as u64) as u32)
    }
    fn se(&mut self) -> Result<i32, H264Error> {
        let k = self.ue()? as i64;
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) } as i32)
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Sps {
    separate_colour_plane: bool,
    log2_max_frame_num: u32,
    poc_type: u32,
    log2_max_poc_lsb: u32,
    delta_pic_order_always_zero: bool,
    offset_for_non_ref_pic: i32,
    offset_for_top_to_bottom_field: i32,
    offsets_for_ref_frame: Vec<i32>,
    frame_mbs_only: bool,
}

fn skip_scaling_list(b: &mut Bits, size: usize) -> Result<(), H264Error> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            // delta_scale is -128..=127 in a conforming stream; any i32
            // must still not overflow.
            next = (last as i64 + b.se()? as i64 + 256).rem_euclid(256) as i32;
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

fn parse_sps(rbsp: &[u8]) -> Result<(u32, Sps), H264Error> {
    let mut b = Bits::new(rbsp);
    let profile = b.bits(8)?;
    b.bits(16)?; // constraint flags, level
    let id = b.ue()?;
    if id > 31 {
        return Err(err(format!("SPS id {id} out of range")));
    }
    let mut separate_colour_plane = false;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        let chroma_format_idc = b.ue()?;
        if chroma_format_idc == 3 {
            separate_colour_plane = b.bit()? == 1;
        }
        b.ue()?; // bit depth luma
        b.ue()?; // bit depth chroma
        b.bit()?; // qpprime_y_zero_transform_bypass
        if b.bit()? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if b.bit()? == 1 {
                    skip_scaling_list(&mut b, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    // ue(v) is at most 2³² − 2: the widths are checked below, after the
    // + 4 that cannot overflow in u64.
    let log2_max_frame_num = (b.ue()? as u64 + 4).min(u32::MAX as u64) as u32;
    let poc_type = b.ue()?;
    let mut sps = Sps {
        separate_colour_plane,
        log2_max_frame_num,
        poc_type,
        log2_max_poc_lsb: 0,
        delta_pic_order_always_zero: false,
        offset_for_non_ref_pic: 0,
        offset_for_top_to_bottom_field: 0,
        offsets_for_ref_frame: Vec::new(),
        frame_mbs_only: true,
    };
    match poc_type {
        0 => sps.log2_max_poc_lsb = (b.ue()? as u64 + 4).min(u32::MAX as u64) as u32,
        1 => {
            sps.delta_pic_order_always_zero = b.bit()? == 1;
            sps.offset_for_non_ref_pic = b.se()?;
            sps.offset_for_top_to_bottom_field = b.se()?;
            let n = b.ue()?;
            if n > 255 {
                return Err(err("too many reference frames in the POC cycle"));
            }
            for _ in 0..n {
                sps.offsets_for_ref_frame.push(b.se()?);
            }
        }
        2 => {}
        t => return Err(err(format!("unknown pic_order_cnt_type {t}"))),
    }
    if sps.log2_max_frame_num > 16 || sps.log2_max_poc_lsb > 16 {
        return Err(err("frame number or POC field too wide"));
    }
    b.ue()?; // max_num_ref_frames
    b.bit()?; // gaps_in_frame_num_value_allowed
    b.ue()?; // width in MBs
    b.ue()?; // height in map units
    sps.frame_mbs_only = b.bit()? == 1;
    Ok((id, sps))
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Pps {
    sps_id: u32,
    bottom_field_pic_order_in_frame_present: bool,
}

fn parse_pps(rbsp: &[u8]) -> Result<(u32, Pps), H264Error> {
    let mut b = Bits::new(rbsp);
    let id = b.ue()?;
    if id > 255 {
        return Err(err(format!("PPS id {id} out of range")));
    }
    let sps_id = b.ue()?;
    b.bit()?; // entropy_coding_mode
    let bottom_field_pic_order_in_frame_present = b.bit()? == 1;
    Ok((
        id,
        Pps {
            sps_id,
            bottom_field_pic_order_in_frame_present,
        },
    ))
}

/// Where a picture falls in presentation order: pictures compare by
/// `period` (counted up at every IDR, after which POC starts again), then
/// by `poc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Order {
    pub period: u64,
    pub poc: i64,
}

/// Computes each access unit's presentation order, in decode order.
#[derive(Debug, Default)]
pub struct PocTracker {
    sps: HashMap<u32, Sps>,
    pps: HashMap<u32, Pps>,
    period: u64,
    started: bool,
    // Type 0: the previous reference picture's POC MSB and LSB.
    prev_msb: i64,
    prev_lsb: i64,
    // Types 1 and 2: the previous picture's frame_num and offset.
    prev_frame_num: u32,
    prev_frame_num_offset: i64,
}

impl PocTracker {
    /// Parameter sets carried out of band (an AVCDecoderConfigurationRecord,
    /// the caps' `codec_data`).
    pub fn add_avcc(&mut self, record: &[u8]) -> Result<(), H264Error> {
        let short = || err("codec_data is cut short");
        let n_sps = *record.get(5).ok_or_else(short)? as usize & 0x1f;
        let mut at = 6;
        let nal = |at: &mut usize| -> Result<Vec<u8>, H264Error> {
            let l = record.get(*at..*at + 2).ok_or_else(short)?;
            let len = u16::from_be_bytes([l[0], l[1]]) as usize;
            let n = record.get(*at + 2..*at + 2 + len).ok_or_else(short)?;
            *at += 2 + len;
            Ok(n.to_vec())
        };
        for _ in 0..n_sps {
            let n = nal(&mut at)?;
            self.parameter_set(&n)?;
        }
        let n_pps = *record.get(at).ok_or_else(short)? as usize;
        at += 1;
        for _ in 0..n_pps {
            let n = nal(&mut at)?;
            self.parameter_set(&n)?;
        }
        Ok(())
    }

    fn parameter_set(&mut self, nal: &[u8]) -> Result<(), H264Error> {
        let Some(&h) = nal.first() else {
            return Ok(());
        };
        match h & 0x1f {
            7 => {
                let (id, sps) = parse_sps(&rbsp(&nal[1..]))?;
                self.sps.insert(id, sps);
            }
            8 => {
                let (id, pps) = parse_pps(&rbsp(&nal[1..]))?;
                self.pps.insert(id, pps);
            }
            _ => {}
        }
        Ok(())
    }

    /// The presentation order of the access unit made of `nals` (without
    /// start codes or length prefixes), which updates the parameter sets it
    /// carries. `Ok(None)`: no coded picture in it.
    pub fn access_unit<'a>(
        &mut self,
        nals: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Option<Order>, H264Error> {
        for nal in nals {
            let Some(&h) = nal.first() else { continue };
            match h & 0x1f {
                7 | 8 => self.parameter_set(nal)?,
                1 | 5 => return self.picture(nal).map(Some),
                _ => {}
            }
        }
        Ok(None)
    }

    /// The first slice of a picture: its POC (8.2.1).
    fn picture(&mut self, nal: &[u8]) -> Result<Order, H264Error> {
        let nal_ref_idc = (nal[0] >> 5) & 3;
        let idr = nal[0] & 0x1f == 5;
        let rb = rbsp(&nal[1..nal.len().min(64)]);
        let mut b = Bits::new(&rb);
        b.ue()?; // first_mb_in_slice
        b.ue()?; // slice_type
        let pps_id = b.ue()?;
        let pps = *self.pps.get(&pps_id).ok_or_else(|| {
            err(format!(
                "a slice refers to PPS {pps_id}, which was not sent"
            ))
        })?;
        let sps = self
            .sps
            .get(&pps.sps_id)
            .ok_or_else(|| {
                err(format!(
                    "PPS {pps_id} refers to SPS {}, which was not sent",
                    pps.sps_id
                ))
            })?
            .clone();
        if sps.separate_colour_plane {
            b.bits(2)?;
        }
        let frame_num = b.bits(sps.log2_max_frame_num)?;
        let mut field = false;
        let mut bottom = false;
        if !sps.frame_mbs_only {
            field = b.bit()? == 1;
            if field {
                bottom = b.bit()? == 1;
            }
        }
        if idr {
            b.ue()?; // idr_pic_id
        }
        if idr || !self.started {
            self.started = true;
            self.period += 1;
            self.prev_msb = 0;
            self.prev_lsb = 0;
            self.prev_frame_num_offset = 0;
            self.prev_frame_num = 0;
        }
        let poc = match sps.poc_type {
            0 => {
                let lsb = b.bits(sps.log2_max_poc_lsb)? as i64;
                let delta_bottom = if pps.bottom_field_pic_order_in_frame_present && !field {
                    b.se()? as i64
                } else {
                    0
                };
                let max = 1i64 << sps.log2_max_poc_lsb;
                let msb = if lsb < self.prev_lsb && self.prev_lsb - lsb >= max / 2 {
                    self.prev_msb + max
                } else if lsb > self.prev_lsb && lsb - self.prev_lsb > max / 2 {
                    self.prev_msb - max
                } else {
                    self.prev_msb
                };
                if nal_ref_idc != 0 {
                    self.prev_msb = msb;
                    self.prev_lsb = lsb;
                }
                let top = msb + lsb;
                if bottom {
                    top
                } else {
                    top.min(top + delta_bottom)
                }
            }
            1 | 2 => {
                let max_frame_num = 1i64 << sps.log2_max_frame_num;
                let offset = if idr {
                    0
                } else if self.prev_frame_num > frame_num {
                    self.prev_frame_num_offset + max_frame_num
                } else {
                    self.prev_frame_num_offset
                };
                self.prev_frame_num = frame_num;
                self.prev_frame_num_offset = offset;
                if sps.poc_type == 2 {
                    let t = 2 * (offset + frame_num as i64);
                    if nal_ref_idc == 0 { t - 1 } else { t }
                } else {
                    poc_type1(
                        &sps,
                        &mut b,
                        &pps,
                        field,
                        bottom,
                        nal_ref_idc,
                        offset + frame_num as i64,
                    )?
                }
            }
            _ => unreachable!("checked when the SPS was parsed"),
        };
        Ok(Order {
            period: self.period,
            poc,
        })
    }
}

/// 8.2.1.2: POC type 1, from the SPS's expected cycle.
fn poc_type1(
    sps: &Sps,
    b: &mut Bits,
    pps: &Pps,
    field: bool,
    bottom: bool,
    nal_ref_idc: u8,
    abs_frame_num_base: i64,
) -> Result<i64, H264Error> {
    let (mut d0, mut d1) = (0i64, 0i64);
    if !sps.delta_pic_order_always_zero {
        d0 = b.se()? as i64;
        if pps.bottom_field_pic_order_in_frame_present && !field {
            d1 = b.se()? as i64;
        }
    }
    let cycle = sps.offsets_for_ref_frame.len() as i64;
    let mut abs = if cycle != 0 { abs_frame_num_base } else { 0 };
    if nal_ref_idc == 0 && abs > 0 {
        abs -= 1;
    }
    let mut expected = 0i64;
    if abs > 0 {
        let per_cycle: i64 = sps.offsets_for_ref_frame.iter().map(|&o| o as i64).sum();
        let count = (abs - 1) / cycle;
        let in_cycle = (abs - 1) % cycle;
        expected = count * per_cycle;
        for o in &sps.offsets_for_ref_frame[..=in_cycle as usize] {
            expected += *o as i64;
        }
    }
    if nal_ref_idc == 0 {
        expected += sps.offset_for_non_ref_pic as i64;
    }
    let top = expected + d0;
    let bot = top + sps.offset_for_top_to_bottom_field as i64 + d1;
    Ok(if !field {
        top.min(bot)
    } else if bottom {
        expected + sps.offset_for_top_to_bottom_field as i64 + d0
    } else {
        top
    })
}

/// The NAL units of an access unit in AVC format (each prefixed by its
/// length in `length_size` bytes).
pub fn avcc_nals(data: &[u8], length_size: usize) -> impl Iterator<Item = &[u8]> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let l = data.get(at..at + length_size)?;
        let len = l.iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        let nal = data.get(at + length_size..at + length_size + len)?;
        at += length_size + len;
        Some(nal)
    })
}

/// The NAL units of an access unit in Annex B format (start codes).
pub fn annexb_nals(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let starts: Vec<usize> = data
        .windows(3)
        .enumerate()
        .filter(|(_, w)| *w == [0, 0, 1])
        .map(|(i, _)| i + 3)
        .collect();
    let n = starts.len();
    (0..n).map(move |k| {
        let end = if k + 1 < n {
            starts[k + 1] - 3
        } else {
            data.len()
        };
        let mut nal = &data[starts[k]..end];
        while let Some((&0, rest)) = nal.split_last() {
            nal = rest;
        }
        nal
    })
}

#[cfg(test)]
pub(crate) mod testing {
    //! Hand-made parameter sets and slice headers.

    /// Writes Exp-Golomb and fixed-width fields, MSB first.
    #[derive(Default)]
    pub struct W {
        bits: Vec<u8>,
    }
    impl W {
        pub fn u(&mut self, n: u32, v: u32) -> &mut Self {
            for i in (0..n).rev() {
                self.bits.push(((v >> i) & 1) as u8);
            }
            self
        }
        pub fn ue(&mut self, v: u32) -> &mut Self {
            let x = v + 1;
            let len = 32 - x.leading_zeros();
            self.u(len - 1, 0).u(len, x)
        }
        pub fn bytes(&mut self) -> Vec<u8> {
            self.u(1, 1);
            while !self.bits.len().is_multiple_of(8) {
                self.bits.push(0);
            }
            self.bits
                .chunks(8)
                .map(|c| c.iter().fold(0u8, |a, &b| (a << 1) | b))
                .collect()
        }
    }

    /// Main-profile SPS 0 (POC type 0, 8-bit LSB) and PPS 0.
    pub fn sps_pps() -> (Vec<u8>, Vec<u8>) {
        let mut sps = vec![0x67];
        sps.extend(
            W::default()
                .u(8, 77)
                .u(16, 0x001e)
                .ue(0) // sps id
                .ue(0) // log2_max_frame_num - 4
                .ue(0) // poc type
                .ue(4) // log2_max_poc_lsb - 4 = 8 bits
                .ue(4) // max refs
                .u(1, 0)
                .ue(19)
                .ue(14)
                .u(1, 1) // frame_mbs_only
                .u(1, 1)
                .u(1, 0)
                .u(1, 0)
                .bytes(),
        );
        let mut pps = vec![0x68];
        pps.extend(W::default().ue(0).ue(0).u(1, 0).u(1, 0).bytes());
        (sps, pps)
    }

    pub fn slice(idr: bool, reference: bool, frame_num: u32, poc_lsb: u32) -> Vec<u8> {
        let mut w = W::default();
        w.ue(0).ue(if idr { 7 } else { 5 }).ue(0).u(4, frame_num);
        if idr {
            w.ue(0);
        }
        w.u(8, poc_lsb);
        let header = match (idr, reference) {
            (true, _) => 0x65,
            (false, true) => 0x41,
            (false, false) => 0x01,
        };
        let mut n = vec![header];
        n.extend(w.bytes());
        n
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{slice, sps_pps};
    use super::*;

    #[test]
    fn presentation_order_of_a_b_frame_stream() {
        let (sps, pps) = sps_pps();
        let mut t = PocTracker::default();
        // Decode order I0 P3 B1 B2 | IDR: I0 P2 B1; POC = 2 × display index.
        let aus = [
            (true, true, 0, 0),
            (false, true, 1, 6),
            (false, false, 2, 2),
            (false, false, 2, 4),
            (true, true, 0, 0),
            (false, true, 1, 4),
            (false, false, 2, 2),
        ];
        let mut orders = Vec::new();
        for (i, (idr, r, f, lsb)) in aus.iter().enumerate() {
            let s = slice(*idr, *r, *f, *lsb);
            let nals: Vec<&[u8]> = if i == 0 {
                vec![&sps, &pps, &s]
            } else {
                vec![&s]
            };
            orders.push(t.access_unit(nals).unwrap().unwrap());
        }
        let pocs: Vec<(u64, i64)> = orders.iter().map(|o| (o.period, o.poc)).collect();
        assert_eq!(
            pocs,
            [(1, 0), (1, 6), (1, 2), (1, 4), (2, 0), (2, 4), (2, 2)]
        );
    }

    #[test]
    fn poc_lsb_wraps_into_the_msb() {
        let (sps, pps) = sps_pps();
        let mut t = PocTracker::default();
        t.access_unit([&sps[..], &pps[..]]).unwrap();
        let mut last = None;
        // 200 reference frames, POC 2n mod 256: must keep increasing.
        for n in 0..200u32 {
            let s = slice(n == 0, true, n % 16, (2 * n) % 256);
            let o = t.access_unit([&s[..]]).unwrap().unwrap();
            assert_eq!(o.poc, 2 * n as i64);
            assert!(last.is_none_or(|l| o > l));
            last = Some(o);
        }
    }

    #[test]
    fn missing_parameter_sets_and_garbage_are_errors() {
        let mut t = PocTracker::default();
        let e = t.access_unit([&slice(true, true, 0, 0)[..]]).unwrap_err();
        assert!(e.to_string().contains("PPS 0"), "{e}");
        assert!(
            t.add_avcc(&[1, 77, 0, 30, 0xff, 0xe1, 0, 40, 0x67])
                .is_err()
        );
        // Exp-Golomb codes running off the end.
        assert!(parse_sps(&[77, 0, 30, 0, 0, 0]).is_err());
    }

    #[test]
    fn nal_splitting() {
        let annexb = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 9, 0,
        ];
        let n: Vec<&[u8]> = annexb_nals(&annexb).collect();
        assert_eq!(n, [&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 9]]);
        let avcc = [0, 0, 0, 2, 0x67, 1, 0, 0, 0, 1, 0x65, 0, 0, 0, 9];
        let n: Vec<&[u8]> = avcc_nals(&avcc, 4).collect();
        assert_eq!(n, [&[0x67, 1][..], &[0x65]], "a cut length stops the walk");
        assert_eq!(rbsp(&[0, 0, 3, 1, 0, 0, 3]), [0, 0, 1, 0, 0]);
    }

    /// Exp-Golomb values up to 2³² − 2 where the standard allows a few
    /// bits: refused or bounded, never an arithmetic overflow (the fuzz
    /// target `h264` found both).
    #[test]
    fn out_of_range_fields_are_errors_not_overflows() {
        use super::testing::W;
        // log2_max_frame_num_minus4 = 2³² − 2.
        let sps = W::default()
            .u(8, 77)
            .u(16, 0x001e)
            .ue(0)
            .ue(u32::MAX - 1)
            .ue(0)
            .ue(0)
            .ue(1)
            .u(1, 0)
            .ue(19)
            .ue(14)
            .u(1, 1)
            .bytes();
        let e = parse_sps(&sps).unwrap_err();
        assert!(e.to_string().contains("too wide"), "{e}");
        // A high-profile scaling list whose delta_scale is i32::MAX.
        let sps = W::default()
            .u(8, 100)
            .u(16, 0x001e)
            .ue(0)
            .ue(1) // chroma_format_idc
            .ue(0)
            .ue(0)
            .u(1, 0)
            .u(1, 1) // scaling matrix present
            .u(1, 1) // list 0 present
            .ue(u32::MAX - 2) // delta_scale = +2³¹ − 1
            .bytes();
        assert!(parse_sps(&sps).is_err(), "cut short after the delta");
    }
}
