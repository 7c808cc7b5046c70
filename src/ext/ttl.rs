//! `-m ttl` (ipt_ttl, IPv4 only): the TTL equal to (`--ttl-eq`, or its
//! synonym `--ttl`), not equal to (`! --ttl-eq`), less than or greater than
//! a value. Exactly one of them per match.

use std::mem::{offset_of, size_of};

use super::recent::{parse_int_opt, XtFlags, XtOpt, XTOPT_INVERT};
use super::{Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext};
use crate::rules::Family;

pub(super) static CODECS: &[&dyn Codec] = &[&Ttl];

/// `struct ipt_ttl_info` of <linux/netfilter_ipv4/ipt_ttl.h>. The bindings
/// lack it: ipt_TTL.h (the target) uses the same include guard and is read
/// first, so this layout is copied here.
#[repr(C)]
#[allow(dead_code)] // read through offset_of! only
struct IptTtlInfo {
    mode: u8,
    ttl: u8,
}

mod field {
    use super::*;
    pub const MODE: usize = offset_of!(IptTtlInfo, mode);
    pub const TTL: usize = offset_of!(IptTtlInfo, ttl);
}

// The modes of ipt_ttl.h (same guard problem as the struct).
const IPT_TTL_EQ: u8 = 0;
const IPT_TTL_NE: u8 = 1;
const IPT_TTL_LT: u8 = 2;
const IPT_TTL_GT: u8 = 3;

const O_TTL_EQ: u8 = 0;
const O_TTL_LT: u8 = 1;
const O_TTL_GT: u8 = 2;
const F_ANY: u32 = (1 << O_TTL_EQ) | (1 << O_TTL_LT) | (1 << O_TTL_GT);
/// libipt_ttl's table, in its order. `--ttl` shares the id of `--ttl-eq`,
/// which comes first, so libxtables treats it as `--ttl-eq` (negation
/// included).
const TABLE: [XtOpt; 4] = [
    XtOpt::new("ttl-lt", O_TTL_LT, Arg::One, 0).excl(F_ANY),
    XtOpt::new("ttl-gt", O_TTL_GT, Arg::One, 0).excl(F_ANY),
    XtOpt::new("ttl-eq", O_TTL_EQ, Arg::One, XTOPT_INVERT).excl(F_ANY),
    XtOpt::new("ttl", O_TTL_EQ, Arg::One, 0).excl(F_ANY),
];
static SPECS: [OptSpec; 4] = XtOpt::specs(&TABLE);

struct Ttl;

impl Codec for Ttl {
    fn name(&self) -> &'static str {
        "ttl"
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
        &SPECS
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<IptTtlInfo>();
        let mut xf = XtFlags::default();
        for o in opts {
            let mode = match xf.take("ttl", &TABLE, o)? {
                O_TTL_EQ if o.invert => IPT_TTL_NE,
                O_TTL_EQ => IPT_TTL_EQ,
                O_TTL_LT => IPT_TTL_LT,
                _ => IPT_TTL_GT,
            };
            let ttl = parse_int_opt("ttl", o, 0, u8::MAX.into())?;
            p.u8(field::MODE, mode).u8(field::TTL, ttl as u8);
        }
        if !xf.any(F_ANY) {
            return Err(
                "TTL match: You must specify one of `--ttl-eq', `--ttl-lt', `--ttl-gt'".into(),
            );
        }
        xf.fcheck("ttl", &TABLE)?;
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<IptTtlInfo>())?;
        out.push_str(match r.u8(field::MODE)? {
            IPT_TTL_EQ => " --ttl-eq",
            IPT_TTL_NE => " ! --ttl-eq",
            IPT_TTL_LT => " --ttl-lt",
            IPT_TTL_GT => " --ttl-gt",
            // libipt_ttl prints no option for an unknown mode.
            _ => "",
        });
        out.push_str(&format!(" {}", r.u8(field::TTL)?));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;
    use crate::rules::IpMatch;

    fn ov(name: &'static str, invert: bool, arg: &str) -> OptValue<'static> {
        OptValue {
            name,
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

    fn ctx_parts() -> IpMatch {
        IpMatch::any(Family::V4)
    }

    fn parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = ctx_parts();
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        Ttl.parse(0, opts, &ctx).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(data: &[u8]) -> ExtResult<String> {
        let ip = ctx_parts();
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Ttl.save(0, data, &ctx, &mut out).map(|_| out)
    }

    // Captured from the kernel after iptables-legacy-restore of
    // `-m ttl ! --ttl-eq 64`.
    const NE: &str = "
        01          # mode IPT_TTL_NE
        40          # ttl 64
        000000000000 # padding to XT_ALIGN";

    // `-m ttl --ttl-lt 255`
    const LT: &str = "
        02          # mode IPT_TTL_LT
        ff          # ttl 255
        000000000000 # padding";

    // `-m ttl --ttl-gt 0`
    const GT: &str = "03 00 000000000000";

    // `-m ttl --ttl 1` (the synonym of --ttl-eq)
    const EQ: &str = "00 01 000000000000";

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(parse(&[ov("ttl-eq", true, "64")]).unwrap(), fixture(NE));
        assert_eq!(parse(&[ov("ttl", true, "0x40")]).unwrap(), fixture(NE));
        assert_eq!(parse(&[ov("ttl-lt", false, "255")]).unwrap(), fixture(LT));
        assert_eq!(parse(&[ov("ttl-gt", false, "0")]).unwrap(), fixture(GT));
        assert_eq!(parse(&[ov("ttl", false, "1")]).unwrap(), fixture(EQ));
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(save(&fixture(NE)).unwrap(), " ! --ttl-eq 64");
        assert_eq!(save(&fixture(LT)).unwrap(), " --ttl-lt 255");
        assert_eq!(save(&fixture(GT)).unwrap(), " --ttl-gt 0");
        assert_eq!(save(&fixture(EQ)).unwrap(), " --ttl-eq 1");
        assert_eq!(save(&[9, 7]).unwrap(), " 7", "unknown mode");
    }

    #[test]
    fn bad_values_are_refused() {
        for arg in ["256", "-1", "x", "1x", ""] {
            assert!(
                parse(&[ov("ttl-eq", false, arg)]).is_err(),
                "{arg} accepted"
            );
        }
        assert!(parse(&[ov("ttl-lt", true, "5")]).is_err(), "! --ttl-lt");
        assert!(parse(&[ov("ttl-gt", true, "5")]).is_err(), "! --ttl-gt");
        assert!(parse(&[]).is_err());
        assert!(parse(&[ov("ttl-eq", false, "1"), ov("ttl", false, "2")]).is_err());
        assert_eq!(
            parse(&[ov("ttl-lt", false, "1"), ov("ttl-gt", false, "2")]).unwrap_err(),
            "ttl: option \"--ttl-lt\" cannot be used together with \"--ttl-gt\"."
        );
        assert!(save(&[0]).is_err(), "short payload");
    }
}
