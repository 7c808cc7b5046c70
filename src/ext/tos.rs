//! `-m tos` (xt_dscp's tos match): the IPv4 TOS / IPv6 traffic class byte
//! against `value[/mask]` or a symbolic name, optionally negated.
//!
//! Revision 1 (both families) stores value and mask; revision 0 (IPv4
//! only, `struct ipt_tos_info`) stores a value alone and so takes no mask
//! other than 0xff. iptables 1.8.9 uses revision 1 when the kernel has it.
//!
//! Also home of [`parse_tos_mask`], libxtables' XTTYPE_TOSMASK parser,
//! which the TOS target takes its values with as well.

use std::mem::{offset_of, size_of};

use super::recent::{XtFlags, XtOpt, XTOPT_INVERT, XTOPT_MAND};
use super::{
    save_inv, strtoul_prefix, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::xt_tos_match_info;

pub(super) static CODECS: &[&dyn Codec] = &[&Tos];

/// `struct ipt_tos_info` (revision 0). No uapi header has it any more;
/// iptables' libxt_tos.c declares it itself, with this layout.
#[repr(C)]
#[allow(dead_code)] // read through offset_of! only
struct IptTosInfo {
    tos: u8,
    invert: u8,
}

mod field {
    use super::*;
    pub const TOS_MASK: usize = offset_of!(xt_tos_match_info, tos_mask);
    pub const TOS_VALUE: usize = offset_of!(xt_tos_match_info, tos_value);
    pub const INVERT: usize = offset_of!(xt_tos_match_info, invert);
    pub const V0_TOS: usize = offset_of!(IptTosInfo, tos);
    pub const V0_INVERT: usize = offset_of!(IptTosInfo, invert);
}

const O_TOS: u8 = 0;
const TABLE: [XtOpt; 1] = [XtOpt::new(
    "tos",
    O_TOS,
    Arg::One,
    XTOPT_INVERT | XTOPT_MAND,
)];
static SPECS: [OptSpec; 1] = XtOpt::specs(&TABLE);

/// tos_values.c: the RFC 1349 names (matched without regard to case).
const SYMBOLS: &[(&str, u8)] = &[
    ("Minimize-Delay", 0x10),
    ("Maximize-Throughput", 0x08),
    ("Maximize-Reliability", 0x04),
    ("Minimize-Cost", 0x02),
    ("Normal-Service", 0x00),
];

/// xtables_strtoui with an end pointer: a number (base 0) at the start of
/// `s` that is at most `max`, and the text after it.
fn number_prefix(s: &str, max: u64) -> Option<(u64, &str)> {
    if s.trim_start_matches(|c: char| c.is_ascii_whitespace())
        .starts_with('-')
    {
        return None;
    }
    strtoul_prefix(s).filter(|&(v, _)| v <= max)
}

/// XTTYPE_TOSMASK (xtopt_parse_tosmask): `value[/mask]` with numbers of at
/// most 0xff (a value alone gets mask 0xff), or one of the symbolic names,
/// which gets `symbol_mask` (the option's `.max`: 0x3f for the tos match
/// revision 1, 0xff for revision 0). Returns (value, mask).
pub(crate) fn parse_tos_mask(arg: &str, symbol_mask: u8) -> ExtResult<(u8, u8)> {
    let illegal =
        || format!("Illegal value: \"{arg}\": expected VALUE[/MASK] with numbers 0..0xff");
    if let Some((value, rest)) = number_prefix(arg, 0xff) {
        let (mask, rest) = match rest.strip_prefix('/') {
            Some(m) => number_prefix(m, 0xff).ok_or_else(illegal)?,
            None => (0xff, rest),
        };
        if !rest.is_empty() {
            return Err(illegal());
        }
        return Ok((value as u8, mask as u8));
    }
    SYMBOLS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(arg))
        .map(|(_, v)| (*v, symbol_mask))
        .ok_or_else(|| {
            format!(
                "Symbolic name \"{arg}\" is unknown: expected a number or one of Minimize-Delay, Maximize-Throughput, Maximize-Reliability, Minimize-Cost, Normal-Service"
            )
        })
}

struct Tos;

impl Codec for Tos {
    fn name(&self) -> &'static str {
        "tos"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn revisions(&self, family: Family) -> &'static [u8] {
        match family {
            Family::V4 => &[1, 0],
            Family::V6 => &[1],
        }
    }
    fn options(&self) -> &'static [OptSpec] {
        &SPECS
    }

    fn parse(&self, rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut xf = XtFlags::default();
        let mut p = if rev == 0 {
            Payload::of::<IptTosInfo>()
        } else {
            Payload::of::<xt_tos_match_info>()
        };
        for o in opts {
            xf.take("tos", &TABLE, o)?;
            if rev == 0 {
                let (value, mask) = parse_tos_mask(o.arg(), 0xff)?;
                if mask != 0xff {
                    return Err(
                        "tos: Your kernel is too old to support anything besides /0xFF as a mask."
                            .into(),
                    );
                }
                p.u8(field::V0_TOS, value);
                if o.invert {
                    p.u8(field::V0_INVERT, 1);
                }
            } else {
                let (value, mask) = parse_tos_mask(o.arg(), 0x3f)?;
                p.u8(field::TOS_VALUE, value).u8(field::TOS_MASK, mask);
                if o.invert {
                    p.u8(field::INVERT, 1);
                }
            }
        }
        xf.fcheck("tos", &TABLE)?;
        Ok(p.finish())
    }

    fn save(&self, rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        if rev == 0 {
            let r = Reader::new(data, size_of::<IptTosInfo>())?;
            save_inv(out, r.u8(field::V0_INVERT)? != 0);
            out.push_str(&format!(" --tos 0x{:02x}", r.u8(field::V0_TOS)?));
        } else {
            let r = Reader::new(data, size_of::<xt_tos_match_info>())?;
            save_inv(out, r.u8(field::INVERT)? != 0);
            out.push_str(&format!(
                " --tos 0x{:02x}/0x{:02x}",
                r.u8(field::TOS_VALUE)?,
                r.u8(field::TOS_MASK)?
            ));
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
            name: "tos",
            invert,
            args: vec![arg.to_string()].into(),
        }
    }

    fn fixture(s: &str) -> Vec<u8> {
        hex(&s
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .collect::<String>())
    }

    fn parse(family: Family, rev: u8, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        Tos.parse(rev, opts, &ctx).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(family: Family, rev: u8, data: &[u8]) -> ExtResult<String> {
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Tos.save(rev, data, &ctx, &mut out).map(|_| out)
    }

    // Captured from the kernel after iptables-legacy-restore of
    // `-m tos ! --tos 0x10/0x3f` (revision 1).
    const MASKED_INV: &str = "
        3f          # tos_mask
        10          # tos_value
        01          # invert
        0000000000  # padding to XT_ALIGN";

    // `-m tos --tos Maximize-Throughput`: a name takes mask 0x3f.
    const SYMBOL: &str = "
        3f          # tos_mask
        08          # tos_value
        00          # invert: no
        0000000000  # padding";

    // ip6tables: `-m tos --tos 0xb8` (a value alone gets mask 0xff).
    const V6_PLAIN: &str = "
        ff          # tos_mask
        b8          # tos_value
        00          # invert: no
        0000000000  # padding";

    // Revision 0 (`struct ipt_tos_info`): iptables 1.8.9 never writes it
    // while the kernel has revision 1, so no kernel capture exists; the
    // bytes follow the struct (tos, invert) for `! --tos 0x10`.
    const V0: &str = "
        10          # tos
        01          # invert
        000000000000 # padding";

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(
            parse(Family::V4, 1, &[ov(true, "0x10/0x3f")]).unwrap(),
            fixture(MASKED_INV)
        );
        assert_eq!(
            parse(Family::V4, 1, &[ov(false, "maximize-throughput")]).unwrap(),
            fixture(SYMBOL)
        );
        assert_eq!(
            parse(Family::V6, 1, &[ov(false, "0xb8")]).unwrap(),
            fixture(V6_PLAIN)
        );
        assert_eq!(
            parse(Family::V4, 0, &[ov(true, "Minimize-Delay")]).unwrap(),
            fixture(V0)
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(
            save(Family::V4, 1, &fixture(MASKED_INV)).unwrap(),
            " ! --tos 0x10/0x3f"
        );
        assert_eq!(
            save(Family::V4, 1, &fixture(SYMBOL)).unwrap(),
            " --tos 0x08/0x3f"
        );
        assert_eq!(
            save(Family::V6, 1, &fixture(V6_PLAIN)).unwrap(),
            " --tos 0xb8/0xff"
        );
        assert_eq!(save(Family::V4, 0, &fixture(V0)).unwrap(), " ! --tos 0x10");
    }

    #[test]
    fn tosmask_follows_libxtables() {
        assert_eq!(parse_tos_mask("16", 0x3f).unwrap(), (16, 0xff));
        assert_eq!(parse_tos_mask(" 0x10/010", 0x3f).unwrap(), (0x10, 8));
        assert_eq!(parse_tos_mask("normal-service", 0x3f).unwrap(), (0, 0x3f));
        assert_eq!(parse_tos_mask("Minimize-Cost", 0xff).unwrap(), (2, 0xff));
    }

    #[test]
    fn bad_values_are_refused() {
        for arg in ["256", "-1", "0x10/", "0x10/256", "1/2/3", "5x", "Fast", ""] {
            assert!(
                parse(Family::V4, 1, &[ov(false, arg)]).is_err(),
                "{arg} accepted"
            );
        }
        // Revision 0 has no mask.
        assert!(parse(Family::V4, 0, &[ov(false, "0x10/0x3f")]).is_err());
        assert!(parse(Family::V4, 0, &[ov(false, "0x10/0xff")]).is_ok());
        assert_eq!(
            parse(Family::V4, 1, &[]).unwrap_err(),
            "tos: option \"--tos\" must be specified"
        );
        assert!(parse(Family::V4, 1, &[ov(false, "1"), ov(false, "2")]).is_err());
        assert!(save(Family::V4, 1, &[0x3f, 0x10]).is_err(), "short payload");
    }
}
