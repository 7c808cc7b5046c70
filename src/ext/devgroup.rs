//! `-m devgroup` (xt_devgroup): the device group of the input and output
//! interfaces, `[!] --src-group VALUE[/MASK]`, `[!] --dst-group VALUE[/MASK]`.
//! Values may be names from `/etc/iproute2/group`.
//!
//! One revision (0) for both families. The kernel takes `--src-group` only
//! in PREROUTING, INPUT and FORWARD, `--dst-group` only in FORWARD, OUTPUT
//! and POSTROUTING.
//!
//! This file also holds the iproute2 name maps (`xtables_lmap`) and the
//! `value[/mask]` parser and printer (`xtables_parse_val_mask`,
//! `xtables_print_val_mask`) that `-m realm` shares.

use std::mem::offset_of;

use super::recent::{XtFlags, XtOpt, XTOPT_INVERT};
use super::{
    save_inv, strtoul_prefix, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    xt_devgroup_info, XT_DEVGROUP_INVERT_DST, XT_DEVGROUP_INVERT_SRC, XT_DEVGROUP_MATCH_DST,
    XT_DEVGROUP_MATCH_SRC,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Devgroup];

mod field {
    use super::*;
    pub const FLAGS: usize = offset_of!(xt_devgroup_info, flags);
    pub const SRC_GROUP: usize = offset_of!(xt_devgroup_info, src_group);
    pub const SRC_MASK: usize = offset_of!(xt_devgroup_info, src_mask);
    pub const DST_GROUP: usize = offset_of!(xt_devgroup_info, dst_group);
    pub const DST_MASK: usize = offset_of!(xt_devgroup_info, dst_mask);
}

/// The file of device group names.
const GROUP_FILE: &str = "/etc/iproute2/group";

// ---------------------------------------------------------------------------
// iproute2 name maps

/// An iproute2 name map (`struct xtables_lmap`): ids 0..=255 with names, in
/// file order. libxtables treats a map without entries like a missing file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Lmap(Vec<(u32, String)>);

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// C strtoul on `s` with base 10 or 16 (`0x` prefix allowed in base 16):
/// the value as C's `unsigned long` and the bytes used, `None` when no
/// digit was read or the value overflows (ERANGE).
fn c_strtoul(s: &[u8], base: u32) -> Option<(u64, usize)> {
    let mut i = 0;
    while s.get(i).is_some_and(|&b| is_c_space(b)) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    if base == 16
        && s.get(i) == Some(&b'0')
        && s.get(i + 1).is_some_and(|b| b | 0x20 == b'x')
        && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    {
        i += 2;
    }
    let start = i;
    let mut v: Option<u64> = Some(0);
    while let Some(d) = s.get(i).and_then(|&b| (b as char).to_digit(base)) {
        v = v
            .and_then(|v| v.checked_mul(u64::from(base)))
            .and_then(|v| v.checked_add(u64::from(d)));
        i += 1;
    }
    if i == start {
        return None;
    }
    let v = v?;
    Some((if neg { v.wrapping_neg() } else { v }, i))
}

impl Lmap {
    /// Reads a map as xtables_lmap_init does; `None` when the file cannot
    /// be read or has no valid line.
    pub(crate) fn load(path: &str) -> Option<Lmap> {
        Lmap::parse(&std::fs::read(path).ok()?)
    }

    /// Parses map text: lines `ID NAME` (ID decimal, or hex after `0x`,
    /// within 0..=255), `#` comments and blank lines skipped. Like
    /// libxtables it reads with fgets into 512 bytes, so a longer line is
    /// taken as several.
    pub(crate) fn parse(text: &[u8]) -> Option<Lmap> {
        let mut map = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1)
                .min(511);
            let (line, tail) = rest.split_at(end);
            rest = tail;
            if let Some(entry) = Lmap::line(line) {
                map.push(entry);
            }
        }
        (!map.is_empty()).then_some(Lmap(map))
    }

    fn line(buf: &[u8]) -> Option<(u32, String)> {
        // fgets stops at a NUL byte as far as the string functions see.
        let buf = &buf[..buf.iter().position(|&b| b == 0).unwrap_or(buf.len())];
        let mut i = 0;
        while buf.get(i).is_some_and(|&b| is_c_space(b)) {
            i += 1;
        }
        if matches!(buf.get(i), None | Some(b'#') | Some(b'\n')) {
            return None;
        }
        let cur = &buf[i..];
        let base = if cur.starts_with(b"0x") { 16 } else { 10 };
        let (v, used) = c_strtoul(cur, base)?;
        // `int id = strtoul(...)`, then 0 <= id <= 255.
        let id = v as i32;
        if !(0..=255).contains(&id) {
            return None;
        }
        let mut j = i + used;
        if !buf.get(j).is_some_and(|&b| is_c_space(b)) {
            return None;
        }
        while buf.get(j).is_some_and(|&b| is_c_space(b)) {
            j += 1;
        }
        if matches!(buf.get(j), None | Some(b'#') | Some(b'\n')) {
            return None;
        }
        let name_end = buf[j..]
            .iter()
            .position(|&b| is_c_space(b))
            .map_or(buf.len(), |k| j + k);
        Some((
            id as u32,
            crate::text::from_bytes(&buf[j..name_end]).into_owned(),
        ))
    }

    /// xtables_lmap_name2id: the first entry with this name.
    pub(crate) fn id(&self, name: &str) -> Option<u32> {
        self.0.iter().find(|(_, n)| n == name).map(|(id, _)| *id)
    }

    /// xtables_lmap_id2name: the first entry with this id.
    pub(crate) fn name(&self, id: u32) -> Option<&str> {
        self.0
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| n.as_str())
    }
}

/// xtables_strtoui with an end pointer: a number (base 0) within u32 at the
/// start of `s`, and the rest after it.
fn strtoui_prefix(s: &str) -> Option<(u32, &str)> {
    if s.trim_start_matches(|c: char| c.is_ascii_whitespace())
        .starts_with('-')
    {
        return None;
    }
    let (v, rest) = strtoul_prefix(s)?;
    Some((u32::try_from(v).ok()?, rest))
}

/// xtables_parse_val_mask: `VALUE[/MASK]`, each a C number within u32, or
/// (when there is a map) a name from the map; the mask defaults to
/// 0xffffffff. Returns (value, mask).
pub(crate) fn parse_val_mask(
    ext: &str,
    opt: &str,
    arg: &str,
    lmap: Option<&Lmap>,
) -> ExtResult<(u32, u32)> {
    let bad = || format!("{ext}: bad integer value for option \"--{opt}\", or out of range.");
    let garbage = || format!("{ext}: trailing garbage after value for option \"--{opt}\".");
    let by_name = |lmap: &Lmap| {
        lmap.id(arg).map(|id| (id, u32::MAX)).ok_or_else(|| {
            format!("{ext}: could not map name {arg} to an integer value for option \"--{opt}\".")
        })
    };
    let Some((val, end)) = strtoui_prefix(arg) else {
        return match lmap {
            Some(m) => by_name(m),
            None => Err(bad()),
        };
    };
    if end.is_empty() {
        return Ok((val, u32::MAX));
    }
    let Some(m) = end.strip_prefix('/') else {
        return match lmap {
            Some(map) => by_name(map),
            None => Err(garbage()),
        };
    };
    let (mask, end) = strtoui_prefix(m).ok_or_else(bad)?;
    if !end.is_empty() {
        return Err(garbage());
    }
    Ok((val, mask))
}

/// xtables_print_val_mask: ` 0xVAL/0xMASK`, or for a full mask the name
/// from the map, or ` 0xVAL`.
pub(crate) fn save_val_mask(out: &mut String, val: u32, mask: u32, lmap: Option<&Lmap>) {
    if mask != u32::MAX {
        out.push_str(&format!(" 0x{val:x}/0x{mask:x}"));
        return;
    }
    match lmap.and_then(|m| m.name(val)) {
        Some(name) => {
            out.push(' ');
            out.push_str(name);
        }
        None => out.push_str(&format!(" 0x{val:x}")),
    }
}

// ---------------------------------------------------------------------------
// devgroup

const O_SRC_GROUP: u8 = 0;
const O_DST_GROUP: u8 = 1;
const TABLE: [XtOpt; 2] = [
    XtOpt::new("src-group", O_SRC_GROUP, Arg::One, XTOPT_INVERT),
    XtOpt::new("dst-group", O_DST_GROUP, Arg::One, XTOPT_INVERT),
];
static SPECS: [OptSpec; 2] = XtOpt::specs(&TABLE);

struct Devgroup;

fn parse_with(opts: &[OptValue], lmap: Option<&Lmap>) -> ExtResult<Vec<u8>> {
    let mut p = Payload::of::<xt_devgroup_info>();
    let mut xf = XtFlags::default();
    let mut flags = 0u32;
    for o in opts {
        let id = xf.take("devgroup", &TABLE, o)?;
        let (group, mask) = parse_val_mask("devgroup", o.name, o.arg(), lmap)?;
        if id == O_SRC_GROUP {
            p.u32(field::SRC_GROUP, group).u32(field::SRC_MASK, mask);
            flags |= XT_DEVGROUP_MATCH_SRC;
            if o.invert {
                flags |= XT_DEVGROUP_INVERT_SRC;
            }
        } else {
            p.u32(field::DST_GROUP, group).u32(field::DST_MASK, mask);
            flags |= XT_DEVGROUP_MATCH_DST;
            if o.invert {
                flags |= XT_DEVGROUP_INVERT_DST;
            }
        }
    }
    if flags == 0 {
        return Err(
            "devgroup match: You must specify either '--src-group' or '--dst-group'".into(),
        );
    }
    p.u32(field::FLAGS, flags);
    Ok(p.finish())
}

fn save_with(data: &[u8], lmap: Option<&Lmap>, out: &mut String) -> ExtResult<()> {
    let r = Reader::new(data, std::mem::size_of::<xt_devgroup_info>())?;
    let flags = r.u32(field::FLAGS)?;
    if flags & XT_DEVGROUP_MATCH_SRC != 0 {
        save_inv(out, flags & XT_DEVGROUP_INVERT_SRC != 0);
        out.push_str(" --src-group");
        save_val_mask(out, r.u32(field::SRC_GROUP)?, r.u32(field::SRC_MASK)?, lmap);
    }
    if flags & XT_DEVGROUP_MATCH_DST != 0 {
        save_inv(out, flags & XT_DEVGROUP_INVERT_DST != 0);
        out.push_str(" --dst-group");
        save_val_mask(out, r.u32(field::DST_GROUP)?, r.u32(field::DST_MASK)?, lmap);
    }
    Ok(())
}

impl Codec for Devgroup {
    fn name(&self) -> &'static str {
        "devgroup"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V4, Family::V6]
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        &SPECS
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        parse_with(opts, Lmap::load(GROUP_FILE).as_ref())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        save_with(data, Lmap::load(GROUP_FILE).as_ref(), out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;

    fn ov(name: &'static str, invert: bool, arg: &str) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: vec![arg.to_string()].into(),
        }
    }

    /// iproute2's default /etc/iproute2/group, as on the capture machine.
    fn groups() -> Lmap {
        Lmap::parse(b"# device group names\n0\tdefault\n").unwrap()
    }

    fn parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let mut v = parse_with(opts, Some(&groups()))?;
        v.resize(xt_align(v.len()), 0);
        Ok(v)
    }

    fn save(data: &[u8]) -> String {
        let mut out = String::new();
        save_with(data, Some(&groups()), &mut out).unwrap();
        out
    }

    // Kernel captures after iptables-legacy-restore of `-A FORWARD -m devgroup ...`:
    // `--src-group 1`
    const SRC: &str = concat!(
        "01000000", // flags: MATCH_SRC
        "01000000", // src_group 1
        "ffffffff", // src_mask
        "00000000", // dst_group
        "00000000", // dst_mask
        "00000000", // padding to XT_ALIGN
    );
    // `! --src-group default ! --dst-group 0x10/0xf0`
    const BOTH_INV: &str = concat!(
        "0f000000", // flags: MATCH_SRC | INVERT_SRC | MATCH_DST | INVERT_DST
        "00000000", // src_group 0 ("default")
        "ffffffff", // src_mask
        "10000000", // dst_group 0x10
        "f0000000", // dst_mask 0xf0
        "00000000",
    );
    // `--dst-group 0`
    const DST0: &str =
        concat!("04000000", "00000000", "00000000", "00000000", "ffffffff", "00000000");
    // `--dst-group 5/0xffffffff --src-group 4294967295`
    const FULL_MASK: &str =
        concat!("05000000", "ffffffff", "ffffffff", "05000000", "ffffffff", "00000000");

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(parse(&[ov("src-group", false, "1")]).unwrap(), hex(SRC));
        assert_eq!(
            parse(&[
                ov("src-group", true, "default"),
                ov("dst-group", true, "0x10/0xf0")
            ])
            .unwrap(),
            hex(BOTH_INV)
        );
        assert_eq!(parse(&[ov("dst-group", false, "0")]).unwrap(), hex(DST0));
        assert_eq!(
            parse(&[
                ov("dst-group", false, "5/0xffffffff"),
                ov("src-group", false, "4294967295")
            ])
            .unwrap(),
            hex(FULL_MASK)
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(save(&hex(SRC)), " --src-group 0x1");
        assert_eq!(
            save(&hex(BOTH_INV)),
            " ! --src-group default ! --dst-group 0x10/0xf0"
        );
        assert_eq!(save(&hex(DST0)), " --dst-group default");
        assert_eq!(
            save(&hex(FULL_MASK)),
            " --src-group 0xffffffff --dst-group 0x5"
        );
        let mut out = String::new();
        save_with(&hex(DST0), None, &mut out).unwrap();
        assert_eq!(out, " --dst-group 0x0", "no map: numbers only");
    }

    #[test]
    fn bad_values_are_refused() {
        for (bad, msg) in [
            ("nosuchgroup", "could not map name"),
            ("1x", "could not map name"),
            ("-1", "could not map name"),
            ("4294967296", "could not map name"),
            ("1/x", "bad integer value"),
            ("1/", "bad integer value"),
            ("1/2x", "trailing garbage"),
        ] {
            let e = parse(&[ov("src-group", false, bad)]).unwrap_err();
            assert!(e.contains(msg), "{bad}: {e}");
        }
        // Without a map, names and garbage are plain errors.
        assert!(parse_val_mask("devgroup", "src-group", "default", None)
            .unwrap_err()
            .contains("bad integer value"));
        assert!(parse_val_mask("devgroup", "src-group", "1x", None)
            .unwrap_err()
            .contains("trailing garbage"));
        assert!(parse(&[]).unwrap_err().contains("You must specify"));
        assert!(
            parse(&[ov("src-group", false, "1"), ov("src-group", false, "2")])
                .unwrap_err()
                .contains("only be used once")
        );
        let mut out = String::new();
        assert!(save_with(&[0; 12], None, &mut out).is_err());
    }

    #[test]
    fn name_maps_read_like_libxtables() {
        let m = Lmap::parse(
            b"  # comment\n\n1 one\n0x1f  hex # trailing\n256 big\n-1 neg\n7x bad\n8\n\
              2\tsecond extra words\n1 dup\n4294967299 wraps\n",
        )
        .unwrap();
        assert_eq!(m.id("one"), Some(1));
        assert_eq!(m.id("hex"), Some(0x1f));
        assert_eq!(m.id("big"), None);
        assert_eq!(m.id("neg"), None);
        assert_eq!(m.id("bad"), None);
        assert_eq!(m.id("second"), Some(2));
        assert_eq!(m.id("dup"), Some(1));
        assert_eq!(m.name(1), Some("one"), "first entry wins");
        // `int id = strtoul(...)` keeps the low 32 bits: 4294967299 is 3.
        assert_eq!(m.id("wraps"), Some(3));
        assert_eq!(Lmap::parse(b"# nothing\n"), None);
    }
}
