//! `-m mark` (xt_mark): the packet's nfmark, `[!] --mark value[/mask]`.
//!
//! Revision 1 is `xt_mark_mtinfo1` (u32 mark, mask, u8 invert). Revision 0
//! is the old `xt_mark_info` with `unsigned long` fields, which iptables
//! 1.8.9 still ships but current kernels no longer accept.
//!
//! The value/mask parsing and printing here are shared with `-m connmark`.

use std::mem::offset_of;
use std::os::raw::c_ulong;

use super::{
    once, opt, strtoul_prefix, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::xt_mark_mtinfo1;

pub(super) static CODECS: &[&dyn Codec] = &[&MARK];

/// Revision 0's payload (libxt_mark.c's `struct xt_mark_info`; the kernel
/// header that had it is gone). Also the layout of connmark revision 0.
#[repr(C)]
pub(crate) struct XtMarkInfoV0 {
    pub mark: c_ulong,
    pub mask: c_ulong,
    pub invert: u8,
}

mod field {
    use super::*;
    pub const MARK: usize = offset_of!(xt_mark_mtinfo1, mark);
    pub const MASK: usize = offset_of!(xt_mark_mtinfo1, mask);
    pub const INVERT: usize = offset_of!(xt_mark_mtinfo1, invert);
    pub const V0_MARK: usize = offset_of!(XtMarkInfoV0, mark);
    pub const V0_MASK: usize = offset_of!(XtMarkInfoV0, mask);
    pub const V0_INVERT: usize = offset_of!(XtMarkInfoV0, invert);
}

/// xtables_parse_mark_mask: `value[/mask]`, each a C number (0x.., 0..,
/// decimal) within u32; the mask defaults to 0xffffffff.
pub(crate) fn parse_mark_mask(ext: &str, opt: &str, s: &str) -> ExtResult<(u32, u32)> {
    let bad = || format!("{ext}: bad integer value for option \"--{opt}\", or out of range.");
    let garbage = || format!("{ext}: trailing garbage after value for option \"--{opt}\".");
    let number = |s: &str| -> Option<(u32, usize)> {
        let t = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
        if t.starts_with('-') {
            return None;
        }
        let (v, rest) = strtoul_prefix(s)?;
        Some((u32::try_from(v).ok()?, s.len() - rest.len()))
    };
    let (mark, used) = number(s).ok_or_else(bad)?;
    let rest = &s[used..];
    if rest.is_empty() {
        return Ok((mark, u32::MAX));
    }
    let Some(m) = rest.strip_prefix('/') else {
        return Err(garbage());
    };
    let (mask, used) = number(m).ok_or_else(bad)?;
    if used != m.len() {
        return Err(garbage());
    }
    Ok((mark, mask))
}

/// xtables_print_mark_mask: ` 0xVAL/0xMASK`, or ` 0xVAL` for a full mask.
pub(crate) fn save_mark_mask(out: &mut String, mark: u32, mask: u32) {
    if mask != u32::MAX {
        out.push_str(&format!(" 0x{mark:x}/0x{mask:x}"));
    } else {
        out.push_str(&format!(" 0x{mark:x}"));
    }
}

/// Parses the one mandatory `[!] --mark` option of mark and connmark.
/// Returns (mark, mask, invert).
pub(crate) fn parse_mark_option(ext: &str, opts: &[OptValue]) -> ExtResult<(u32, u32, bool)> {
    let mut seen = Vec::new();
    let mut val = None;
    for o in opts {
        match o.name {
            "mark" => {
                once(&mut seen, o, ext)?;
                let (mark, mask) = parse_mark_mask(ext, "mark", o.arg())?;
                val = Some((mark, mask, o.invert));
            }
            _ => return Err(super::unknown_option(ext, o)),
        }
    }
    val.ok_or_else(|| format!("{ext}: option \"--mark\" must be specified"))
}

/// Builds the payload of a mark-style match (mark rev 0/1, connmark rev 0/1
/// share both layouts).
pub(crate) fn encode_mark(rev: u8, mark: u32, mask: u32, invert: bool) -> Vec<u8> {
    if rev == 0 {
        let mut p = Payload::of::<XtMarkInfoV0>();
        p.bytes(field::V0_MARK, &c_ulong::from(mark).to_ne_bytes());
        p.bytes(field::V0_MASK, &c_ulong::from(mask).to_ne_bytes());
        p.u8(field::V0_INVERT, u8::from(invert));
        p.finish()
    } else {
        let mut p = Payload::of::<xt_mark_mtinfo1>();
        p.u32(field::MARK, mark)
            .u32(field::MASK, mask)
            .u8(field::INVERT, u8::from(invert));
        p.finish()
    }
}

/// Reads a mark-style payload back: (mark, mask, invert). Revision 0's
/// `unsigned long` values are cut to 32 bits, as iptables prints them.
pub(crate) fn decode_mark(rev: u8, data: &[u8]) -> ExtResult<(u32, u32, bool)> {
    if rev == 0 {
        let r = Reader::new(data, std::mem::size_of::<XtMarkInfoV0>())?;
        let ulong = |off: usize| -> ExtResult<u32> {
            let b = r.bytes(off, std::mem::size_of::<c_ulong>())?;
            let mut a = [0u8; std::mem::size_of::<c_ulong>()];
            a.copy_from_slice(b);
            Ok(c_ulong::from_ne_bytes(a) as u32)
        };
        Ok((
            ulong(field::V0_MARK)?,
            ulong(field::V0_MASK)?,
            r.u8(field::V0_INVERT)? != 0,
        ))
    } else {
        let r = Reader::new(data, std::mem::size_of::<xt_mark_mtinfo1>())?;
        Ok((
            r.u32(field::MARK)?,
            r.u32(field::MASK)?,
            r.u8(field::INVERT)? != 0,
        ))
    }
}

/// The `mark` match, and the `connmark` match with the same payloads:
/// one codec, named by the extension it serves.
pub(super) struct MarkMatch(pub(super) &'static str);

/// `-m mark`.
pub(super) static MARK: MarkMatch = MarkMatch("mark");

impl Codec for MarkMatch {
    fn name(&self) -> &'static str {
        self.0
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V4, Family::V6]
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[1, 0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[opt("mark", Arg::One)];
        O
    }

    fn parse(&self, rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let (mark, mask, invert) = parse_mark_option(self.0, opts)?;
        Ok(encode_mark(rev, mark, mask, invert))
    }

    fn save(&self, rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let (mark, mask, invert) = decode_mark(rev, data)?;
        if invert {
            out.push_str(" !");
        }
        out.push_str(" --mark");
        save_mark_mask(out, mark, mask);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::rules::IpMatch;

    fn ov(invert: bool, arg: &str) -> OptValue<'static> {
        OptValue {
            name: "mark",
            invert,
            args: vec![arg.to_string()].into(),
        }
    }

    fn run(rev: u8, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        // The registry pads every payload to XT_ALIGN, as the kernel holds it.
        let mut v = MARK.parse(rev, opts, &ctx)?;
        v.resize(crate::ext::xt_align(v.len()), 0);
        Ok(v)
    }

    fn save(rev: u8, data: &[u8]) -> ExtResult<String> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        MARK.save(rev, data, &ctx, &mut out)?;
        Ok(out)
    }

    // Kernel capture after iptables-legacy-restore of `-m mark --mark 1`
    // (xt_mark_mtinfo1, 16 bytes with padding):
    // 01000000 mark 1 | ffffffff mask | 00 invert | 000000 pad | 00000000 align
    #[test]
    fn rev1_plain() {
        let fixture = hex("01000000 ffffffff 00 000000 00000000");
        assert_eq!(run(1, &[ov(false, "1")]).unwrap(), fixture);
        assert_eq!(save(1, &fixture).unwrap(), " --mark 0x1");
    }

    // Kernel capture of `-m mark ! --mark 0x10/0xff`:
    // 10000000 mark | ff000000 mask | 01 invert
    #[test]
    fn rev1_inverted_with_mask() {
        let fixture = hex("10000000 ff000000 01 000000 00000000");
        assert_eq!(run(1, &[ov(true, "0x10/0xff")]).unwrap(), fixture);
        assert_eq!(save(1, &fixture).unwrap(), " ! --mark 0x10/0xff");
    }

    // Kernel capture of `-m mark --mark 4294967295/010`: octal mask 8.
    #[test]
    fn rev1_max_value_octal_mask() {
        let fixture = hex("ffffffff 08000000 00 000000 00000000");
        assert_eq!(run(1, &[ov(false, "4294967295/010")]).unwrap(), fixture);
        assert_eq!(save(1, &fixture).unwrap(), " --mark 0xffffffff/0x8");
    }

    // Revision 0 (no longer in the kernel): bytes captured from
    // iptables-legacy-restore's SET_REPLACE with revision 1 hidden, for
    // `-m mark ! --mark 5/7` (x86-64: unsigned long is 8 bytes):
    // 0500000000000000 mark | 0700000000000000 mask | 01 invert | 7 pad
    #[test]
    fn rev0_inverted() {
        let fixture = hex("0500000000000000 0700000000000000 01 00000000000000");
        assert_eq!(run(0, &[ov(true, "5/7")]).unwrap(), fixture);
        assert_eq!(save(0, &fixture).unwrap(), " ! --mark 0x5/0x7");
    }

    // Kernel capture of `-m mark --mark " +5/ 7"`: blanks and `+` allowed.
    #[test]
    fn rev1_c_number_syntax() {
        let fixture = hex("05000000 07000000 00 000000 00000000");
        assert_eq!(run(1, &[ov(false, " +5/ 7")]).unwrap(), fixture);
        assert_eq!(save(1, &fixture).unwrap(), " --mark 0x5/0x7");
    }

    #[test]
    fn refused() {
        for bad in [
            "",
            "x",
            "-1",
            "4294967296",
            "1/",
            "1/-2",
            "/1",
            "1/0x100000000",
        ] {
            assert!(
                run(1, &[ov(false, bad)])
                    .unwrap_err()
                    .contains("bad integer value"),
                "{bad}"
            );
        }
        for bad in ["1x", "0x", "1/2x", "1:2"] {
            assert!(
                run(1, &[ov(false, bad)])
                    .unwrap_err()
                    .contains("trailing garbage"),
                "{bad}"
            );
        }
        assert!(run(1, &[]).unwrap_err().contains("must be specified"));
        assert!(run(1, &[ov(false, "1"), ov(false, "2")])
            .unwrap_err()
            .contains("only be used once"));
        assert!(save(1, &[0; 8]).is_err());
        assert!(save(0, &[0; 16]).is_err());
    }
}
