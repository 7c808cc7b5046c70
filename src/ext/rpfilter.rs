//! `-m rpfilter` (ipt_rpfilter / ip6t_rpfilter): reverse-path filtering.
//! The kernel accepts it only in the `raw` and `mangle` tables, in chains
//! reached from PREROUTING.

use std::mem::offset_of;

use super::{
    no_invert, once, opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    xt_rpfilter_info, XT_RPFILTER_ACCEPT_LOCAL, XT_RPFILTER_INVERT, XT_RPFILTER_LOOSE,
    XT_RPFILTER_VALID_MARK,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Rpfilter];

mod field {
    use super::*;
    pub const FLAGS: usize = offset_of!(xt_rpfilter_info, flags);
}

/// The options in the order iptables prints them, with their flag bits.
const FLAGS: &[(&str, u32)] = &[
    ("loose", XT_RPFILTER_LOOSE),
    ("validmark", XT_RPFILTER_VALID_MARK),
    ("accept-local", XT_RPFILTER_ACCEPT_LOCAL),
    ("invert", XT_RPFILTER_INVERT),
];

struct Rpfilter;

impl Codec for Rpfilter {
    fn name(&self) -> &'static str {
        "rpfilter"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("loose", Arg::None),
            opt("validmark", Arg::None),
            opt("accept-local", Arg::None),
            opt("invert", Arg::None),
        ];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut flags = 0u8;
        let mut seen = Vec::new();
        for o in opts {
            let (_, bit) = FLAGS
                .iter()
                .find(|(n, _)| *n == o.name)
                .ok_or_else(|| super::unknown_option("rpfilter", o))?;
            once(&mut seen, o, "rpfilter")?;
            no_invert(o, "rpfilter")?;
            flags |= *bit as u8;
        }
        // ipt_rpfilter's checkentry: any other table is refused with EINVAL.
        if ctx.table != "raw" && ctx.table != "mangle" {
            return Err(format!(
                "rpfilter: only valid in the `raw' or `mangle' table (PREROUTING), not `{}'",
                ctx.table
            ));
        }
        let mut p = Payload::of::<xt_rpfilter_info>();
        p.u8(field::FLAGS, flags);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_rpfilter_info>())?;
        let flags = u32::from(r.u8(field::FLAGS)?);
        for (name, bit) in FLAGS {
            if flags & bit != 0 {
                out.push_str(" --");
                out.push_str(name);
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

    fn ov(name: &'static str, invert: bool) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: Default::default(),
        }
    }

    /// Hex with `#` comments, as the fixtures below are written.
    fn fixture(s: &str) -> Vec<u8> {
        hex(&s
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .collect::<String>())
    }

    fn parse_in(table: &str, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table,
        };
        Rpfilter.parse(0, opts, &ctx).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(data: &[u8]) -> String {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "raw",
        };
        let mut out = String::new();
        Rpfilter.save(0, data, &ctx, &mut out).unwrap();
        out
    }

    // Captured from the kernel after iptables-legacy-restore of
    // `*raw -A PREROUTING -m rpfilter --invert --accept-local --validmark --loose`.
    const ALL: &str = "
        0f              # flags LOOSE|VALID_MARK|ACCEPT_LOCAL|INVERT
        00000000000000  # padding to XT_ALIGN";

    // `*mangle -A PREROUTING -m rpfilter`
    const NONE: &str = "
        00              # flags: none (strict mode)
        00000000000000  # padding";

    // `*raw -A PREROUTING -m rpfilter --validmark --invert`
    const MARK_INVERT: &str = "
        0a              # flags VALID_MARK|INVERT
        00000000000000  # padding";

    #[test]
    fn parse_matches_kernel_bytes() {
        let all = [
            ov("invert", false),
            ov("accept-local", false),
            ov("validmark", false),
            ov("loose", false),
        ];
        assert_eq!(parse_in("raw", &all).unwrap(), fixture(ALL));
        assert_eq!(parse_in("mangle", &[]).unwrap(), fixture(NONE));
        assert_eq!(
            parse_in("raw", &[ov("validmark", false), ov("invert", false)]).unwrap(),
            fixture(MARK_INVERT)
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(
            save(&fixture(ALL)),
            " --loose --validmark --accept-local --invert"
        );
        assert_eq!(save(&fixture(NONE)), "");
        assert_eq!(save(&fixture(MARK_INVERT)), " --validmark --invert");
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse_in("filter", &[]).is_err(), "filter table accepted");
        assert!(parse_in("nat", &[ov("loose", false)]).is_err());
        assert!(
            parse_in("raw", &[ov("loose", true)]).is_err(),
            "! --loose accepted"
        );
        assert!(parse_in("raw", &[ov("loose", false), ov("loose", false)]).is_err());
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "raw",
        };
        assert!(Rpfilter.save(0, &[], &ctx, &mut String::new()).is_err());
    }
}
