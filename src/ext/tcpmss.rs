//! `-m tcpmss` (xt_tcpmss): the MSS option of TCP SYN segments, a value or
//! an inclusive range, optionally negated. (The TCPMSS target is
//! `tcpmss_tg.rs`.)

use std::mem::offset_of;

use super::length::{parse_uint_range, save_u16_range};
use super::{
    once, opt, save_inv, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::{inv_flags, Family};
use crate::sys::bindings::xt_tcpmss_match_info;

pub(super) static CODECS: &[&dyn Codec] = &[&TcpMss];

mod field {
    use super::*;
    pub const MSS_MIN: usize = offset_of!(xt_tcpmss_match_info, mss_min);
    pub const MSS_MAX: usize = offset_of!(xt_tcpmss_match_info, mss_max);
    pub const INVERT: usize = offset_of!(xt_tcpmss_match_info, invert);
}

/// IPPROTO_TCP: xt_tcpmss is registered for TCP only.
const TCP: u16 = 6;

struct TcpMss;

impl Codec for TcpMss {
    fn name(&self) -> &'static str {
        "tcpmss"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[opt("mss", Arg::One)];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_tcpmss_match_info>();
        let mut seen = Vec::new();
        for o in opts {
            if o.name != "mss" {
                return Err(super::unknown_option("tcpmss", o));
            }
            once(&mut seen, o, "tcpmss")?;
            let v = parse_uint_range("tcpmss", o, u16::MAX.into())?;
            let min = v[0] as u16;
            let max = v.get(1).map_or(min, |&m| m as u16);
            if max < min {
                return Err("tcpmss: invalid range given".into());
            }
            p.u16(field::MSS_MIN, min).u16(field::MSS_MAX, max);
            p.u8(field::INVERT, o.invert.into());
        }
        if seen.is_empty() {
            return Err("tcpmss: option \"--mss\" must be specified".into());
        }
        // The kernel refuses the match in any rule that is not `-p tcp`.
        if ctx.ip.proto != TCP || ctx.ip.invflags & inv_flags::PROTO != 0 {
            return Err(
                "tcpmss: the tcpmss match needs `-p tcp' (the kernel allows it for TCP only)"
                    .into(),
            );
        }
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_tcpmss_match_info>())?;
        save_inv(out, r.u8(field::INVERT)? != 0);
        out.push_str(" --mss ");
        save_u16_range(out, r.u16(field::MSS_MIN)?, r.u16(field::MSS_MAX)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;
    use crate::rules::IpMatch;

    fn ov(name: &'static str, invert: bool, args: &[&str]) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Hex with `#` comments, as the fixtures below are written.
    fn fixture(s: &str) -> Vec<u8> {
        hex(&s
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .collect::<String>())
    }

    fn parse_with(proto: u16, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch {
            proto,
            ..IpMatch::any(Family::V4)
        };
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        TcpMss.parse(0, opts, &ctx).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        parse_with(TCP, opts)
    }

    fn save(data: &[u8]) -> String {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        TcpMss.save(0, data, &ctx, &mut out).unwrap();
        out
    }

    // Captured from the kernel after iptables-legacy-restore of
    // `-p tcp -m tcpmss ! --mss 1000:1500`.
    const RANGE_INVERTED: &str = "
        e803        # mss_min 1000 (host order)
        dc05        # mss_max 1500
        01          # invert
        000000      # padding to XT_ALIGN";

    // `-p tcp -m tcpmss --mss 1000` (from `-m length ... -m tcpmss --mss 1000`)
    const SINGLE: &str = "
        e803 e803   # 1000:1000
        00          # invert: no
        000000      # padding";

    // `-p tcp -m tcpmss --mss :536`
    const OPEN_LOW: &str = "
        0000 1802   # 0:536
        00 000000";

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(
            parse(&[ov("mss", true, &["1000:1500"])]).unwrap(),
            fixture(RANGE_INVERTED)
        );
        assert_eq!(
            parse(&[ov("mss", false, &["1000"])]).unwrap(),
            fixture(SINGLE)
        );
        assert_eq!(
            parse(&[ov("mss", false, &[":536"])]).unwrap(),
            fixture(OPEN_LOW)
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(save(&fixture(RANGE_INVERTED)), " ! --mss 1000:1500");
        assert_eq!(save(&fixture(SINGLE)), " --mss 1000");
        assert_eq!(save(&fixture(OPEN_LOW)), " --mss 0:536");
    }

    #[test]
    fn bad_values_are_refused() {
        for arg in ["1500:1000", "65536", "1:2:3", "-5", "abc", "5 "] {
            assert!(
                parse(&[ov("mss", false, &[arg])]).is_err(),
                "{arg} accepted"
            );
        }
        assert_eq!(
            parse(&[ov("mss", false, &["1500:1000"])]).unwrap_err(),
            "tcpmss: invalid range given"
        );
        assert!(parse(&[]).is_err(), "missing --mss accepted");
        assert!(parse(&[ov("mss", false, &["1"]), ov("mss", false, &["2"])]).is_err());
        assert!(
            parse_with(17, &[ov("mss", false, &["1"])]).is_err(),
            "accepted without -p tcp"
        );
    }
}
