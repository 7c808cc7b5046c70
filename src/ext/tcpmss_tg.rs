//! `-j TCPMSS` (xt_TCPMSS, `xt_tcpmss_info`): rewrite the MSS option of TCP
//! SYN segments, to a fixed value or clamped to the path MTU.
//!
//! The kernel takes it only in a rule with `-p tcp` (not inverted) and a tcp
//! match on SYN (`--syn` or `--tcp-flags … SYN`), and `--clamp-mss-to-pmtu`
//! only in FORWARD, OUTPUT and POSTROUTING; it checks that itself at commit.

use std::mem::offset_of;

use super::{
    no_invert, once, opt, parse_uint, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload,
    Reader, RuleContext,
};
use crate::rules::{inv_flags, Family};
use crate::sys::bindings::{xt_tcpmss_info, IPPROTO_TCP, XT_TCPMSS_CLAMP_PMTU};

pub(super) static CODECS: &[&dyn Codec] = &[&TcpmssTarget];

mod field {
    use super::*;
    pub const MSS: usize = offset_of!(xt_tcpmss_info, mss);
}

/// The largest `--set-mss`: 65535 less the IP header (`struct iphdr`, 20
/// bytes; IPv6: the 40-byte fixed header), as libxt_TCPMSS bounds it.
fn max_mss(family: Family) -> u16 {
    match family {
        Family::V4 => u16::MAX - 20,
        Family::V6 => u16::MAX - 40,
    }
}

struct TcpmssTarget;

impl Codec for TcpmssTarget {
    fn name(&self) -> &'static str {
        "TCPMSS"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("set-mss", Arg::One),
            opt("clamp-mss-to-pmtu", Arg::None),
        ];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_tcpmss_info>();
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "TCPMSS")?;
            no_invert(o, "TCPMSS")?;
            // The two are meant to exclude each other, but libxt_TCPMSS does
            // not enforce it: the last one given wins.
            let mss = match o.name {
                "set-mss" => {
                    let max = max_mss(ctx.family);
                    parse_uint(o.arg(), 0, u64::from(max)).ok_or_else(|| {
                        format!("TCPMSS: bad value for option \"--set-mss\", or out of range (0-{max}).")
                    })? as u16
                }
                "clamp-mss-to-pmtu" => XT_TCPMSS_CLAMP_PMTU as u16,
                _ => return Err(super::unknown_option("TCPMSS", o)),
            };
            p.u16(field::MSS, mss);
        }
        if seen.is_empty() {
            return Err("TCPMSS target: At least one parameter is required".into());
        }
        // The kernel refuses the target outside `-p tcp` (xt_check_target).
        if ctx.ip.proto != IPPROTO_TCP as u16 || ctx.ip.invflags & inv_flags::PROTO != 0 {
            return Err(
                "TCPMSS: the target needs `-p tcp' (the kernel refuses it otherwise)".into(),
            );
        }
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_tcpmss_info>())?;
        let mss = r.u16(field::MSS)?;
        if u32::from(mss) == XT_TCPMSS_CLAMP_PMTU {
            out.push_str(" --clamp-mss-to-pmtu");
        } else {
            out.push_str(&format!(" --set-mss {mss}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::rules::IpMatch;

    fn ov(name: &'static str, arg: Option<&str>) -> OptValue<'static> {
        OptValue {
            name,
            invert: false,
            args: arg.map(|a| vec![a.to_string()]).unwrap_or_default().into(),
        }
    }

    fn tcp(family: Family) -> IpMatch {
        IpMatch {
            proto: 6,
            ..IpMatch::any(family)
        }
    }

    fn parse_in(family: Family, ip: &IpMatch, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ctx = RuleContext {
            family,
            ip,
            table: "mangle",
        };
        // Padded to XT_ALIGN as the registry and the kernel have it.
        TcpmssTarget
            .parse(0, opts, &ctx)
            .map(|d| crate::ext::make_extension(&TcpmssTarget, 0, d).data)
    }

    fn parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        parse_in(Family::V4, &tcp(Family::V4), opts)
    }

    fn save(data: &[u8]) -> String {
        let ip = tcp(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "mangle",
        };
        let mut out = String::new();
        TcpmssTarget.save(0, data, &ctx, &mut out).expect("save");
        out
    }

    // Captured from the kernel after iptables-legacy-restore (rules with
    // `-p tcp --syn` or `--tcp-flags SYN,RST SYN`): mss u16, then 6 bytes of
    // XT_ALIGN padding.
    const CASES: &[(&str, Option<&str>, &str, &str)] = &[
        (
            "clamp-mss-to-pmtu",
            None,
            "ffff 000000000000",
            " --clamp-mss-to-pmtu",
        ), // XT_TCPMSS_CLAMP_PMTU
        (
            "set-mss",
            Some("1400"),
            "7805 000000000000",
            " --set-mss 1400",
        ),
        (
            "set-mss",
            Some("65515"),
            "ebff 000000000000",
            " --set-mss 65515",
        ),
        ("set-mss", Some("0"), "0000 000000000000", " --set-mss 0"),
        (
            "set-mss",
            Some("0x100"),
            "0001 000000000000",
            " --set-mss 256",
        ),
    ];

    #[test]
    fn parse_matches_kernel_bytes() {
        for (name, arg, bytes, _) in CASES {
            assert_eq!(
                parse(&[ov(name, *arg)]).unwrap(),
                hex(bytes),
                "{name} {arg:?}"
            );
        }
        // Captured: both given, the last wins.
        let both = [ov("set-mss", Some("1")), ov("clamp-mss-to-pmtu", None)];
        assert_eq!(parse(&both).unwrap(), hex("ffff 000000000000"));
        let both = [ov("clamp-mss-to-pmtu", None), ov("set-mss", Some("1"))];
        assert_eq!(parse(&both).unwrap(), hex("0100 000000000000"));
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        for (name, arg, bytes, text) in CASES {
            assert_eq!(save(&hex(bytes)), *text, "{name} {arg:?}");
        }
    }

    #[test]
    fn bad_input_is_refused() {
        let err = |opts: &[OptValue]| parse(opts).unwrap_err();
        assert_eq!(
            err(&[]),
            "TCPMSS target: At least one parameter is required"
        );
        assert_eq!(
            err(&[ov("set-mss", Some("65516"))]),
            "TCPMSS: bad value for option \"--set-mss\", or out of range (0-65515)."
        );
        assert!(err(&[ov("set-mss", Some("-1"))]).contains("out of range"));
        assert!(err(&[ov("set-mss", Some("1")), ov("set-mss", Some("2"))])
            .contains("only be used once"));
        let inv = OptValue {
            invert: true,
            ..ov("clamp-mss-to-pmtu", None)
        };
        assert!(err(&[inv]).contains("cannot be inverted"));
        let any = IpMatch::any(Family::V4);
        assert!(parse_in(Family::V4, &any, &[ov("set-mss", Some("1"))])
            .unwrap_err()
            .contains("-p tcp"));
        let not_tcp = IpMatch {
            invflags: inv_flags::PROTO,
            ..tcp(Family::V4)
        };
        assert!(parse_in(Family::V4, &not_tcp, &[ov("set-mss", Some("1"))]).is_err());
        // IPv6 leaves room for its 40-byte header.
        assert!(parse_in(
            Family::V6,
            &tcp(Family::V6),
            &[ov("set-mss", Some("65496"))]
        )
        .is_err());
        assert!(parse_in(
            Family::V6,
            &tcp(Family::V6),
            &[ov("set-mss", Some("65495"))]
        )
        .is_ok());
    }

    #[test]
    fn short_payload_is_an_error() {
        let ip = tcp(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "mangle",
        };
        assert!(TcpmssTarget
            .save(0, &hex("ff"), &ctx, &mut String::new())
            .is_err());
    }
}
