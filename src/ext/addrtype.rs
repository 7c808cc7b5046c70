//! `-m addrtype` (xt_addrtype): the routing type of the source/destination
//! address, `[!] --src-type T[,T...]`, `[!] --dst-type ...`, and (revision 1)
//! `--limit-iface-in` / `--limit-iface-out`.
//!
//! Revision 1 (`xt_addrtype_info_v1`) serves IPv4 and IPv6; revision 0
//! (`xt_addrtype_info`, no interface limits) is IPv4 only.

use std::mem::offset_of;

use super::{
    no_invert, once, opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    xt_addrtype_info, xt_addrtype_info_v1, XT_ADDRTYPE_INVERT_DEST, XT_ADDRTYPE_INVERT_SOURCE,
    XT_ADDRTYPE_LIMIT_IFACE_IN, XT_ADDRTYPE_LIMIT_IFACE_OUT,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Addrtype];

mod field {
    use super::*;
    pub const SOURCE: usize = offset_of!(xt_addrtype_info_v1, source);
    pub const DEST: usize = offset_of!(xt_addrtype_info_v1, dest);
    pub const FLAGS: usize = offset_of!(xt_addrtype_info_v1, flags);
    pub const V0_SOURCE: usize = offset_of!(xt_addrtype_info, source);
    pub const V0_DEST: usize = offset_of!(xt_addrtype_info, dest);
    pub const V0_INVERT_SOURCE: usize = offset_of!(xt_addrtype_info, invert_source);
    pub const V0_INVERT_DEST: usize = offset_of!(xt_addrtype_info, invert_dest);
}

/// Route types in rtnetlink order: name `i` is bit `1 << i` (XT_ADDRTYPE_*).
const TYPES: &[&str] = &[
    "UNSPEC",
    "UNICAST",
    "LOCAL",
    "BROADCAST",
    "ANYCAST",
    "MULTICAST",
    "BLACKHOLE",
    "UNREACHABLE",
    "PROHIBIT",
    "THROW",
    "NAT",
    "XRESOLVE",
];

/// One type name: the first in table order that it is a case-insensitive
/// prefix of (libxt_addrtype's strncasecmp), as its bit.
fn parse_type(name: &str) -> Option<u16> {
    if name.is_empty() {
        return None;
    }
    TYPES
        .iter()
        .position(|t| name.len() <= t.len() && t[..name.len()].eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

/// A comma list of types as a bit mask. The error names the rest of the list
/// from the bad element on, as iptables does.
fn parse_types(arg: &str) -> ExtResult<u16> {
    let mut mask = 0;
    let mut rest = arg;
    while let Some(comma) = rest.find(',') {
        mask |= parse_type(&rest[..comma]).ok_or_else(|| format!("addrtype: bad type `{rest}'"))?;
        rest = &rest[comma + 1..];
    }
    mask |= parse_type(rest).ok_or_else(|| format!("addrtype: bad type \"{rest}\""))?;
    Ok(mask)
}

fn save_types(out: &mut String, mask: u16) {
    let names: Vec<&str> = TYPES
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect();
    out.push_str(&names.join(","));
}

/// What the options say, for either revision.
#[derive(Default)]
struct Addrtype0 {
    source: u16,
    dest: u16,
    invert_source: bool,
    invert_dest: bool,
    limit_in: bool,
    limit_out: bool,
}

fn save_all(out: &mut String, a: &Addrtype0) {
    if a.source != 0 {
        if a.invert_source {
            out.push_str(" !");
        }
        out.push_str(" --src-type ");
        save_types(out, a.source);
    }
    if a.dest != 0 {
        if a.invert_dest {
            out.push_str(" !");
        }
        out.push_str(" --dst-type ");
        save_types(out, a.dest);
    }
    if a.limit_in {
        out.push_str(" --limit-iface-in");
    }
    if a.limit_out {
        out.push_str(" --limit-iface-out");
    }
}

struct Addrtype;

impl Codec for Addrtype {
    fn name(&self) -> &'static str {
        "addrtype"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V4, Family::V6]
    }
    fn revisions(&self, family: Family) -> &'static [u8] {
        match family {
            Family::V4 => &[1, 0],
            Family::V6 => &[1],
        }
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("src-type", Arg::One),
            opt("dst-type", Arg::One),
            opt("limit-iface-in", Arg::None),
            opt("limit-iface-out", Arg::None),
        ];
        O
    }

    fn parse(&self, rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut a = Addrtype0::default();
        let mut seen = Vec::new();
        for o in opts {
            match o.name {
                "src-type" => {
                    once(&mut seen, o, "addrtype")?;
                    a.source |= parse_types(o.arg())?;
                    a.invert_source |= o.invert;
                }
                "dst-type" => {
                    once(&mut seen, o, "addrtype")?;
                    a.dest |= parse_types(o.arg())?;
                    a.invert_dest |= o.invert;
                }
                "limit-iface-in" | "limit-iface-out" if rev == 0 => {
                    return Err(format!(
                        "addrtype revision 0 has no option \"--{}\"",
                        o.name
                    ));
                }
                "limit-iface-in" => {
                    once(&mut seen, o, "addrtype")?;
                    no_invert(o, "addrtype")?;
                    a.limit_in = true;
                }
                "limit-iface-out" => {
                    once(&mut seen, o, "addrtype")?;
                    no_invert(o, "addrtype")?;
                    a.limit_out = true;
                }
                _ => return Err(super::unknown_option("addrtype", o)),
            }
        }
        if a.limit_in && a.limit_out {
            return Err(
                "addrtype: option \"--limit-iface-in\" cannot be used together with \"--limit-iface-out\".".into()
            );
        }
        if !seen.contains(&"src-type") && !seen.contains(&"dst-type") {
            return Err("addrtype: you must specify --src-type or --dst-type".into());
        }
        if rev == 0 {
            let mut p = Payload::of::<xt_addrtype_info>();
            p.u16(field::V0_SOURCE, a.source)
                .u16(field::V0_DEST, a.dest);
            p.u32(field::V0_INVERT_SOURCE, u32::from(a.invert_source));
            p.u32(field::V0_INVERT_DEST, u32::from(a.invert_dest));
            return Ok(p.finish());
        }
        let mut flags = 0;
        for (on, bit) in [
            (a.invert_source, XT_ADDRTYPE_INVERT_SOURCE),
            (a.invert_dest, XT_ADDRTYPE_INVERT_DEST),
            (a.limit_in, XT_ADDRTYPE_LIMIT_IFACE_IN),
            (a.limit_out, XT_ADDRTYPE_LIMIT_IFACE_OUT),
        ] {
            if on {
                flags |= bit;
            }
        }
        let mut p = Payload::of::<xt_addrtype_info_v1>();
        p.u16(field::SOURCE, a.source)
            .u16(field::DEST, a.dest)
            .u32(field::FLAGS, flags);
        Ok(p.finish())
    }

    fn save(&self, rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let a = if rev == 0 {
            let r = Reader::new(data, std::mem::size_of::<xt_addrtype_info>())?;
            Addrtype0 {
                source: r.u16(field::V0_SOURCE)?,
                dest: r.u16(field::V0_DEST)?,
                invert_source: r.u32(field::V0_INVERT_SOURCE)? != 0,
                invert_dest: r.u32(field::V0_INVERT_DEST)? != 0,
                limit_in: false,
                limit_out: false,
            }
        } else {
            let r = Reader::new(data, std::mem::size_of::<xt_addrtype_info_v1>())?;
            let flags = r.u32(field::FLAGS)?;
            Addrtype0 {
                source: r.u16(field::SOURCE)?,
                dest: r.u16(field::DEST)?,
                invert_source: flags & XT_ADDRTYPE_INVERT_SOURCE != 0,
                invert_dest: flags & XT_ADDRTYPE_INVERT_DEST != 0,
                limit_in: flags & XT_ADDRTYPE_LIMIT_IFACE_IN != 0,
                limit_out: flags & XT_ADDRTYPE_LIMIT_IFACE_OUT != 0,
            }
        };
        save_all(out, &a);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::rules::IpMatch;

    fn ov(name: &'static str, invert: bool, arg: Option<&str>) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: arg.map(|a| vec![a.to_string()]).unwrap_or_default().into(),
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
        let mut v = Addrtype.parse(rev, opts, &ctx)?;
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
        Addrtype.save(rev, data, &ctx, &mut out)?;
        Ok(out)
    }

    // Kernel capture after iptables-legacy-restore of
    // `-m addrtype --src-type LOCAL` (xt_addrtype_info_v1, 8 bytes):
    // 0400 source LOCAL | 0000 dest | 00000000 flags
    #[test]
    fn rev1_src_local() {
        let fixture = hex("0400 0000 00000000");
        assert_eq!(
            run(1, &[ov("src-type", false, Some("LOCAL"))]).unwrap(),
            fixture
        );
        assert_eq!(save(1, &fixture).unwrap(), " --src-type LOCAL");
    }

    // Kernel capture of `-m addrtype ! --src-type unicast,Br ! --dst-type
    // LOCAL,MULTICAST,x --limit-iface-out`:
    // 0a00 source UNICAST|BROADCAST | 2400 dest LOCAL|MULTICAST|XRESOLVE |
    // 0b000000 flags INVERT_SOURCE|INVERT_DEST|LIMIT_IFACE_OUT
    #[test]
    fn rev1_inverted_lists_and_limit_out() {
        let fixture = hex("0a00 2408 0b000000");
        let opts = [
            ov("src-type", true, Some("unicast,Br")),
            ov("dst-type", true, Some("LOCAL,MULTICAST,x")),
            ov("limit-iface-out", false, None),
        ];
        assert_eq!(run(1, &opts).unwrap(), fixture);
        assert_eq!(
            save(1, &fixture).unwrap(),
            " ! --src-type UNICAST,BROADCAST ! --dst-type LOCAL,MULTICAST,XRESOLVE --limit-iface-out"
        );
    }

    // Kernel capture of `-m addrtype --dst-type U --limit-iface-in`: `U` is
    // the first type it prefixes, UNSPEC.
    // 0000 source | 0100 dest UNSPEC | 04000000 flags LIMIT_IFACE_IN
    #[test]
    fn rev1_prefix_and_limit_in() {
        let fixture = hex("0000 0100 04000000");
        let opts = [
            ov("dst-type", false, Some("U")),
            ov("limit-iface-in", false, None),
        ];
        assert_eq!(run(1, &opts).unwrap(), fixture);
        assert_eq!(
            save(1, &fixture).unwrap(),
            " --dst-type UNSPEC --limit-iface-in"
        );
    }

    // Revision 0, captured from the kernel after iptables-legacy-restore with
    // revision 1 hidden from iptables, `-m addrtype ! --src-type LOCAL
    // --dst-type BLACKHOLE,THROW` (xt_addrtype_info, 12 bytes + pad):
    // 0400 source | 4002 dest | 01000000 invert_source | 00000000 invert_dest
    #[test]
    fn rev0_both() {
        let fixture = hex("0400 4002 01000000 00000000 00000000");
        let opts = [
            ov("src-type", true, Some("LOCAL")),
            ov("dst-type", false, Some("BLACKHOLE,THROW")),
        ];
        assert_eq!(run(0, &opts).unwrap(), fixture);
        assert_eq!(
            save(0, &fixture).unwrap(),
            " ! --src-type LOCAL --dst-type BLACKHOLE,THROW"
        );
    }

    #[test]
    fn refused() {
        let e = run(1, &[ov("src-type", false, Some("LOCAL,FOO,BAR"))]).unwrap_err();
        assert_eq!(e, "addrtype: bad type `FOO,BAR'");
        let e = run(1, &[ov("src-type", false, Some("LOCAL,"))]).unwrap_err();
        assert_eq!(e, "addrtype: bad type \"\"");
        assert!(run(1, &[ov("src-type", false, Some("LOCALS"))]).is_err());
        assert!(run(1, &[ov("limit-iface-in", false, None)])
            .unwrap_err()
            .contains("must specify"));
        assert!(run(1, &[]).unwrap_err().contains("must specify"));
        let both = [
            ov("src-type", false, Some("LOCAL")),
            ov("limit-iface-in", false, None),
            ov("limit-iface-out", false, None),
        ];
        assert!(run(1, &both)
            .unwrap_err()
            .contains("cannot be used together"));
        let inv = [
            ov("src-type", false, Some("LOCAL")),
            ov("limit-iface-in", true, None),
        ];
        assert!(run(1, &inv).unwrap_err().contains("cannot be inverted"));
        let twice = [
            ov("src-type", false, Some("LOCAL")),
            ov("src-type", false, Some("NAT")),
        ];
        assert!(run(1, &twice).unwrap_err().contains("only be used once"));
        let v0 = [
            ov("src-type", false, Some("LOCAL")),
            ov("limit-iface-in", false, None),
        ];
        assert!(run(0, &v0).is_err());
        assert!(save(1, &[0; 4]).is_err());
        assert!(save(0, &[0; 8]).is_err());
    }
}
