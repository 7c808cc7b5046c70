//! `-j MARK` (xt_MARK revision 2, `xt_mark_tginfo2`): set the packet mark.
//!
//! Every form (`--set-mark`, `--and-mark` …) becomes one (mark, mask) pair:
//! the kernel clears the mask bits and XORs the mark in, and iptables saves
//! them all as `--set-xmark MARK/MASK`. Revisions 0 and 1 (iptables still has
//! them) are gone from the kernel since Linux 2.6.3x, so no table can hold
//! them; they are not listed.

use std::mem::offset_of;

use super::{
    no_invert, once, opt, parse_uint, strtoul_prefix, Arg, Codec, ExtResult, Kind, OptSpec,
    OptValue, Payload, Reader, RuleContext,
};
use crate::sys::bindings::xt_mark_tginfo2;

pub(super) static CODECS: &[&dyn Codec] = &[&MarkTarget];

mod field {
    use super::*;
    pub const MARK: usize = offset_of!(xt_mark_tginfo2, mark);
    pub const MASK: usize = offset_of!(xt_mark_tginfo2, mask);
}

/// xtables_strtoui with an end pointer: a number at the start of `s` within
/// u32 (no sign), and the unparsed rest.
fn u32_prefix(s: &str) -> Option<(u32, &str)> {
    if s.trim_start_matches(|c: char| c.is_ascii_whitespace())
        .starts_with('-')
    {
        return None;
    }
    let (v, rest) = strtoul_prefix(s)?;
    Some((u32::try_from(v).ok()?, rest))
}

/// Parses `VALUE[/MASK]` as xtables_parse_mark_mask (XTTYPE_MARKMASK32)
/// does; the mask defaults to all ones.
pub(crate) fn parse_mark_mask(ext: &str, opt: &str, s: &str) -> ExtResult<(u32, u32)> {
    let bad = || format!("{ext}: bad integer value for option \"--{opt}\", or out of range.");
    let garbage = || format!("{ext}: trailing garbage after value for option \"--{opt}\".");
    let (mark, rest) = u32_prefix(s).ok_or_else(bad)?;
    if rest.is_empty() {
        return Ok((mark, u32::MAX));
    }
    let m = rest.strip_prefix('/').ok_or_else(garbage)?;
    let (mask, rest) = u32_prefix(m).ok_or_else(bad)?;
    if !rest.is_empty() {
        return Err(garbage());
    }
    Ok((mark, mask))
}

/// Parses an XTTYPE_UINT32 argument (the whole string, base 0).
pub(crate) fn parse_u32(ext: &str, opt: &str, s: &str) -> ExtResult<u32> {
    parse_uint(s, 0, u64::from(u32::MAX))
        .map(|v| v as u32)
        .ok_or_else(|| {
            format!("{ext}: bad value for option \"--{opt}\", or out of range (0-4294967295).")
        })
}

/// One entry of an extension's libxtables option table, for the exclusion
/// check: its name, its option id, and the ids it excludes (a bit per id).
pub(crate) struct Excl {
    pub name: &'static str,
    pub id: u32,
    pub excl: u32,
}

/// The check libxtables makes after parsing (xtables_options_fcheck): for
/// each used option in table order, the first used option (by id) that it
/// excludes is an error. `used` holds the names given.
pub(crate) fn check_exclusions(ext: &str, table: &[Excl], used: &[&str]) -> ExtResult<()> {
    let is_used = |name: &str| used.contains(&name);
    for e in table.iter().filter(|e| is_used(e.name)) {
        for id in 0..32 {
            if id == e.id || e.excl & (1 << id) == 0 {
                continue;
            }
            if let Some(other) = table.iter().find(|o| o.id == id && is_used(o.name)) {
                return Err(format!(
                    "{ext}: option \"--{}\" cannot be used together with \"--{}\".",
                    e.name, other.name
                ));
            }
        }
    }
    Ok(())
}

const fn x(name: &'static str, id: u32, excl: u32) -> Excl {
    Excl { name, id, excl }
}

/// libxt_MARK's revision 2 table (ids: set=0, and=1, or=2, xor=3, set-xmark=4);
/// every operation excludes every other.
const F_ANY: u32 = 0x1f;
const EXCL: &[Excl] = &[
    x("set-xmark", 4, F_ANY),
    x("set-mark", 0, F_ANY),
    x("and-mark", 1, F_ANY),
    x("or-mark", 2, F_ANY),
    x("xor-mark", 3, F_ANY),
];

struct MarkTarget;

impl Codec for MarkTarget {
    fn name(&self) -> &'static str {
        "MARK"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn revisions(&self, _: crate::rules::Family) -> &'static [u8] {
        &[2]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("set-xmark", Arg::One),
            opt("set-mark", Arg::One),
            opt("and-mark", Arg::One),
            opt("or-mark", Arg::One),
            opt("xor-mark", Arg::One),
        ];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let (mut mark, mut mask) = (0u32, 0u32);
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "MARK")?;
            no_invert(o, "MARK")?;
            match o.name {
                "set-xmark" => (mark, mask) = parse_mark_mask("MARK", o.name, o.arg())?,
                "set-mark" => {
                    let (v, m) = parse_mark_mask("MARK", o.name, o.arg())?;
                    (mark, mask) = (v, v | m);
                }
                "and-mark" => (mark, mask) = (0, !parse_u32("MARK", o.name, o.arg())?),
                "or-mark" => {
                    let v = parse_u32("MARK", o.name, o.arg())?;
                    (mark, mask) = (v, v);
                }
                "xor-mark" => (mark, mask) = (parse_u32("MARK", o.name, o.arg())?, 0),
                _ => return Err(super::unknown_option("MARK", o)),
            }
        }
        if seen.is_empty() {
            return Err(
                "MARK: One of the --set-xmark, --{and,or,xor,set}-mark options is required".into(),
            );
        }
        check_exclusions("MARK", EXCL, &seen)?;
        let mut p = Payload::of::<xt_mark_tginfo2>();
        p.u32(field::MARK, mark).u32(field::MASK, mask);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_mark_tginfo2>())?;
        out.push_str(&format!(
            " --set-xmark {:#x}/{:#x}",
            r.u32(field::MARK)?,
            r.u32(field::MASK)?
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::rules::{Family, IpMatch};

    fn ov(name: &'static str, arg: &str) -> OptValue<'static> {
        OptValue {
            name,
            invert: false,
            args: vec![arg.to_string()].into(),
        }
    }

    fn parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "mangle",
        };
        MarkTarget.parse(2, opts, &ctx)
    }

    fn save(data: &[u8]) -> String {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "mangle",
        };
        let mut out = String::new();
        MarkTarget.save(2, data, &ctx, &mut out).expect("save");
        out
    }

    // Captured from the kernel after iptables-legacy-restore: the 8-byte
    // xt_mark_tginfo2 (mark, mask; host order) after the target header.
    const CASES: &[(&str, &str, &str, &str)] = &[
        // option, argument, kernel bytes (mark | mask), iptables-legacy-save
        (
            "set-mark",
            "1",
            "01000000 ffffffff",
            " --set-xmark 0x1/0xffffffff",
        ),
        (
            "set-mark",
            "0x10/0xf0",
            "10000000 f0000000",
            " --set-xmark 0x10/0xf0",
        ),
        (
            "set-xmark",
            "0xfeedcafe/0xfeedcafe",
            "fecaedfe fecaedfe",
            " --set-xmark 0xfeedcafe/0xfeedcafe",
        ),
        (
            "set-xmark",
            "4294967295",
            "ffffffff ffffffff",
            " --set-xmark 0xffffffff/0xffffffff",
        ),
        (
            "and-mark",
            "0xff",
            "00000000 00ffffff",
            " --set-xmark 0x0/0xffffff00",
        ),
        (
            "or-mark",
            "0x100",
            "00010000 00010000",
            " --set-xmark 0x100/0x100",
        ),
        ("xor-mark", "7", "07000000 00000000", " --set-xmark 0x7/0x0"),
        (
            "set-xmark",
            "0/0",
            "00000000 00000000",
            " --set-xmark 0x0/0x0",
        ),
    ];

    #[test]
    fn parse_matches_kernel_bytes() {
        for (name, arg, bytes, _) in CASES {
            assert_eq!(
                parse(&[ov(name, arg)]).unwrap(),
                hex(bytes),
                "--{name} {arg}"
            );
        }
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        for (name, arg, bytes, text) in CASES {
            assert_eq!(save(&hex(bytes)), *text, "--{name} {arg}");
        }
    }

    #[test]
    fn bad_input_is_refused() {
        let err = |opts: &[OptValue]| parse(opts).unwrap_err();
        assert!(err(&[]).contains("is required"));
        assert!(err(&[ov("set-mark", "1/")]).contains("bad integer value"));
        assert!(err(&[ov("set-mark", "/1")]).contains("bad integer value"));
        assert!(err(&[ov("set-mark", "1x")]).contains("trailing garbage"));
        assert!(err(&[ov("set-mark", "1/2x")]).contains("trailing garbage"));
        assert!(err(&[ov("set-xmark", "4294967296")]).contains("bad integer value"));
        assert!(err(&[ov("set-xmark", "-1")]).contains("bad integer value"));
        assert!(err(&[ov("and-mark", "1/2")]).contains("out of range (0-4294967295)"));
        assert!(err(&[ov("or-mark", "")]).contains("bad value"));
        assert_eq!(
            err(&[ov("set-mark", "1"), ov("set-mark", "2")]),
            "MARK: option \"--set-mark\" can only be used once."
        );
        assert_eq!(
            err(&[ov("and-mark", "2"), ov("set-mark", "1")]),
            "MARK: option \"--set-mark\" cannot be used together with \"--and-mark\"."
        );
        assert_eq!(
            err(&[ov("set-mark", "2"), ov("set-xmark", "1")]),
            "MARK: option \"--set-xmark\" cannot be used together with \"--set-mark\"."
        );
        let inv = OptValue {
            invert: true,
            ..ov("set-mark", "1")
        };
        assert!(err(&[inv]).contains("cannot be inverted"));
    }

    #[test]
    fn short_payload_is_an_error() {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "mangle",
        };
        assert!(MarkTarget
            .save(2, &hex("01000000"), &ctx, &mut String::new())
            .is_err());
    }
}
