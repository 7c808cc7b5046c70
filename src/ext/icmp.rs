//! `-m icmp` (ipt_icmp, IPv4): ICMP type and code.
//! Loaded implicitly by `-p icmp --icmp-type ...`.

use std::mem::offset_of;

use super::{
    once, opt, save_inv, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{ipt_icmp, IPT_ICMP_INV};

pub(super) static CODECS: &[&dyn Codec] = &[&Icmp];

mod field {
    use super::*;
    pub const TYPE: usize = offset_of!(ipt_icmp, type_);
    pub const CODE: usize = offset_of!(ipt_icmp, code);
    pub const INVFLAGS: usize = offset_of!(ipt_icmp, invflags);
}

/// An ICMP type name with its code range (libxt_icmp.h's table).
pub(crate) struct IcmpName {
    pub name: &'static str,
    pub ty: u8,
    pub code: [u8; 2],
}

const fn n(name: &'static str, ty: u8, lo: u8, hi: u8) -> IcmpName {
    IcmpName {
        name,
        ty,
        code: [lo, hi],
    }
}

pub(crate) const ICMP_NAMES: &[IcmpName] = &[
    n("any", 0xff, 0, 0xff),
    n("echo-reply", 0, 0, 0xff),
    n("pong", 0, 0, 0xff),
    n("destination-unreachable", 3, 0, 0xff),
    n("network-unreachable", 3, 0, 0),
    n("host-unreachable", 3, 1, 1),
    n("protocol-unreachable", 3, 2, 2),
    n("port-unreachable", 3, 3, 3),
    n("fragmentation-needed", 3, 4, 4),
    n("source-route-failed", 3, 5, 5),
    n("network-unknown", 3, 6, 6),
    n("host-unknown", 3, 7, 7),
    n("network-prohibited", 3, 9, 9),
    n("host-prohibited", 3, 10, 10),
    n("TOS-network-unreachable", 3, 11, 11),
    n("TOS-host-unreachable", 3, 12, 12),
    n("communication-prohibited", 3, 13, 13),
    n("host-precedence-violation", 3, 14, 14),
    n("precedence-cutoff", 3, 15, 15),
    n("source-quench", 4, 0, 0xff),
    n("redirect", 5, 0, 0xff),
    n("network-redirect", 5, 0, 0),
    n("host-redirect", 5, 1, 1),
    n("TOS-network-redirect", 5, 2, 2),
    n("TOS-host-redirect", 5, 3, 3),
    n("echo-request", 8, 0, 0xff),
    n("ping", 8, 0, 0xff),
    n("router-advertisement", 9, 0, 0xff),
    n("router-solicitation", 10, 0, 0xff),
    n("time-exceeded", 11, 0, 0xff),
    n("ttl-exceeded", 11, 0, 0xff),
    n("ttl-zero-during-transit", 11, 0, 0),
    n("ttl-zero-during-reassembly", 11, 1, 1),
    n("parameter-problem", 12, 0, 0xff),
    n("ip-header-bad", 12, 0, 0),
    n("required-option-missing", 12, 1, 1),
    n("timestamp-request", 13, 0, 0xff),
    n("timestamp-reply", 14, 0, 0xff),
    n("address-mask-request", 17, 0, 0xff),
    n("address-mask-reply", 18, 0, 0xff),
];

/// `N` or `N:M` with numbers 0..=255; returns the pair and the rest.
fn parse_range(s: &str) -> Option<([u8; 2], &str)> {
    let (lo, rest) = super::strtoul_prefix(s)?;
    if lo > 255 {
        return None;
    }
    if let Some(r) = rest.strip_prefix(':') {
        let (hi, rest) = super::strtoul_prefix(r)?;
        if hi > 255 {
            return None;
        }
        return Some(([lo as u8, hi as u8], rest));
    }
    Some(([lo as u8, lo as u8], rest))
}

/// Parses a type as libxt_icmp.h does: a unique case-insensitive prefix of a
/// name, or `TYPE[/CODE]` with numeric parts. Returns (type, code range).
pub(crate) fn parse_icmp_type(names: &[IcmpName], what: &str, s: &str) -> ExtResult<(u8, [u8; 2])> {
    let mut found: Option<&IcmpName> = None;
    for c in names {
        if c.name.len() >= s.len() && c.name[..s.len()].eq_ignore_ascii_case(s) {
            if let Some(prev) = found {
                return Err(format!(
                    "Ambiguous {what} type `{s}': `{}' or `{}'?",
                    prev.name, c.name
                ));
            }
            found = Some(c);
        }
    }
    if let Some(c) = found {
        return Ok((c.ty, c.code));
    }
    let (types, rest) = parse_range(s).ok_or_else(|| format!("Unknown {what} type `{s}'"))?;
    let code = if rest.is_empty() {
        [0, 0xff]
    } else if let Some(r) = rest.strip_prefix('/') {
        let (code, rest) = parse_range(r).ok_or_else(|| format!("Unknown {what} code `{s}'"))?;
        if let Some(c) = rest.chars().next() {
            return Err(format!("unknown character {c}"));
        }
        code
    } else {
        return Err(format!(
            "unknown character {}",
            rest.chars().next().unwrap_or(' ')
        ));
    };
    if types[0] != types[1] {
        return Err(format!("{what} type range not supported"));
    }
    Ok((types[0], code))
}

struct Icmp;

impl Codec for Icmp {
    fn name(&self) -> &'static str {
        "icmp"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V4]
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[opt("icmp-type", Arg::One)];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<ipt_icmp>();
        p.u8(field::TYPE, 0xff).u8(field::CODE + 1, 0xff);
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "icmp")?;
            let (ty, code) = parse_icmp_type(ICMP_NAMES, "ICMP", o.arg())?;
            p.u8(field::TYPE, ty)
                .u8(field::CODE, code[0])
                .u8(field::CODE + 1, code[1]);
            if o.invert {
                p.u8(field::INVFLAGS, IPT_ICMP_INV as u8);
            }
        }
        if seen.is_empty() {
            return Err("icmp: option \"--icmp-type\" must be specified".into());
        }
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<ipt_icmp>())?;
        save_inv(out, r.u8(field::INVFLAGS)? & IPT_ICMP_INV as u8 != 0);
        let ty = r.u8(field::TYPE)?;
        if ty == 0xff {
            out.push_str(" --icmp-type any");
        } else {
            out.push_str(&format!(" --icmp-type {ty}"));
            let (lo, hi) = (r.u8(field::CODE)?, r.u8(field::CODE + 1)?);
            if lo != 0 || hi != 0xff {
                out.push_str(&format!("/{lo}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;
    use crate::rules::IpMatch;

    fn ov(invert: bool, arg: &str) -> OptValue<'static> {
        OptValue {
            name: "icmp-type",
            invert,
            args: vec![arg.to_string()].into(),
        }
    }

    fn ctx_ip() -> IpMatch {
        IpMatch {
            proto: 1,
            ..IpMatch::any(Family::V4)
        }
    }

    // Captured from the kernel after iptables-legacy-restore of
    // `-p icmp -m icmp ! --icmp-type 3/4` and `--icmp-type echo-request`.
    fn fixture_inv_3_4() -> Vec<u8> {
        hex(concat!("03", "0404", "01", "00000000")) // type 3, code 4..4, invflags INV, padding
    }
    fn fixture_echo_request() -> Vec<u8> {
        hex(concat!("08", "00ff", "00", "00000000")) // type 8, code 0..255, no inversion, padding
    }

    fn parse(o: OptValue) -> Result<Vec<u8>, String> {
        let ip = ctx_ip();
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        Icmp.parse(0, &[o], &ctx).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(parse(ov(true, "3/4")).unwrap(), fixture_inv_3_4());
        assert_eq!(
            parse(ov(false, "echo-request")).unwrap(),
            fixture_echo_request()
        );
        assert_eq!(
            parse(ov(false, "ECHO-REQ")).unwrap(),
            fixture_echo_request(),
            "unique prefix, any case"
        );
        assert_eq!(parse(ov(false, "8")).unwrap(), fixture_echo_request());
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        let ip = ctx_ip();
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Icmp.save(0, &fixture_inv_3_4(), &ctx, &mut out).unwrap();
        assert_eq!(out, " ! --icmp-type 3/4");
        out.clear();
        Icmp.save(0, &fixture_echo_request(), &ctx, &mut out)
            .unwrap();
        assert_eq!(out, " --icmp-type 8");
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in ["echo", "256", "3/x", "3:4", "nosuch", "3/4/5"] {
            assert!(parse(ov(false, bad)).is_err(), "{bad} accepted");
        }
    }
}
