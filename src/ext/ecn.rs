//! `-m ecn` (xt_ecn): the ECN bits of the TCP header (CWR, ECE) and the ECN
//! codepoint of the IPv4 / IPv6 header, each optionally negated.
//!
//! The kernel refuses the TCP bits unless the rule matches `-p tcp`; the
//! codec leaves that check to the kernel, as iptables does.

use std::mem::{offset_of, size_of};

use super::recent::{parse_int_opt, XtFlags, XtOpt, XTOPT_INVERT};
use super::{
    save_inv, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    xt_ecn_info, XT_ECN_OP_MATCH_CWR, XT_ECN_OP_MATCH_ECE, XT_ECN_OP_MATCH_IP,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Ecn];

mod field {
    use super::*;
    pub const OPERATION: usize = offset_of!(xt_ecn_info, operation);
    pub const INVERT: usize = offset_of!(xt_ecn_info, invert);
    pub const IP_ECT: usize = offset_of!(xt_ecn_info, ip_ect);
}

const O_CWR: u8 = 0;
const O_ECE: u8 = 1;
const O_IP_ECT: u8 = 2;
const TABLE: [XtOpt; 3] = [
    XtOpt::new("ecn-tcp-cwr", O_CWR, Arg::None, XTOPT_INVERT),
    XtOpt::new("ecn-tcp-ece", O_ECE, Arg::None, XTOPT_INVERT),
    XtOpt::new("ecn-ip-ect", O_IP_ECT, Arg::One, XTOPT_INVERT),
];
static SPECS: [OptSpec; 3] = XtOpt::specs(&TABLE);

const CWR: u8 = XT_ECN_OP_MATCH_CWR as u8;
const ECE: u8 = XT_ECN_OP_MATCH_ECE as u8;
const IP: u8 = XT_ECN_OP_MATCH_IP as u8;

struct Ecn;

impl Codec for Ecn {
    fn name(&self) -> &'static str {
        "ecn"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        &SPECS
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_ecn_info>();
        let (mut operation, mut invert) = (0u8, 0u8);
        let mut xf = XtFlags::default();
        for o in opts {
            let bit = match xf.take("ecn", &TABLE, o)? {
                O_CWR => CWR,
                O_ECE => ECE,
                _ => {
                    let ect = parse_int_opt("ecn", o, 0, 3)?;
                    p.u8(field::IP_ECT, ect as u8);
                    IP
                }
            };
            operation |= bit;
            if o.invert {
                invert |= bit;
            }
        }
        if opts.is_empty() {
            return Err("ECN match: some option required".into());
        }
        p.u8(field::OPERATION, operation).u8(field::INVERT, invert);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<xt_ecn_info>())?;
        let (op, inv) = (r.u8(field::OPERATION)?, r.u8(field::INVERT)?);
        // libxt_ecn's order: ECE before CWR, then the IP codepoint.
        if op & ECE != 0 {
            save_inv(out, inv & ECE != 0);
            out.push_str(" --ecn-tcp-ece");
        }
        if op & CWR != 0 {
            save_inv(out, inv & CWR != 0);
            out.push_str(" --ecn-tcp-cwr");
        }
        if op & IP != 0 {
            save_inv(out, inv & IP != 0);
            out.push_str(&format!(" --ecn-ip-ect {}", r.u8(field::IP_ECT)?));
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

    fn ov(name: &'static str, invert: bool, args: &[&str]) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn fixture(s: &str) -> Vec<u8> {
        hex(&s
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .collect::<String>())
    }

    fn parse(family: Family, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch {
            proto: 6,
            ..IpMatch::any(family)
        };
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        Ecn.parse(0, opts, &ctx).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(family: Family, data: &[u8]) -> ExtResult<String> {
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Ecn.save(0, data, &ctx, &mut out).map(|_| out)
    }

    // Captured from the kernel after iptables-legacy-restore of
    // `-p tcp -m ecn ! --ecn-tcp-cwr --ecn-tcp-ece ! --ecn-ip-ect 3`.
    const ALL: &str = "
        31          # operation: CWR|ECE|IP
        21          # invert: CWR|IP
        03          # ip_ect 3
        00          # proto.tcp.ect
        00000000    # padding to XT_ALIGN";

    // ip6tables: `-m ecn --ecn-ip-ect 0`.
    const ECT0_V6: &str = "
        01          # operation: IP
        00          # invert
        00          # ip_ect 0
        00          # proto.tcp.ect
        00000000    # padding";

    // `-p tcp -m ecn ! --ecn-tcp-ece`
    const ECE_INV: &str = "10 10 00 00 00000000";

    #[test]
    fn parse_matches_kernel_bytes() {
        let opts = [
            ov("ecn-tcp-cwr", true, &[]),
            ov("ecn-tcp-ece", false, &[]),
            ov("ecn-ip-ect", true, &["3"]),
        ];
        assert_eq!(parse(Family::V4, &opts).unwrap(), fixture(ALL));
        assert_eq!(
            parse(Family::V6, &[ov("ecn-ip-ect", false, &["0"])]).unwrap(),
            fixture(ECT0_V6)
        );
        assert_eq!(
            parse(Family::V4, &[ov("ecn-tcp-ece", true, &[])]).unwrap(),
            fixture(ECE_INV)
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(
            save(Family::V4, &fixture(ALL)).unwrap(),
            " --ecn-tcp-ece ! --ecn-tcp-cwr ! --ecn-ip-ect 3"
        );
        assert_eq!(
            save(Family::V6, &fixture(ECT0_V6)).unwrap(),
            " --ecn-ip-ect 0"
        );
        assert_eq!(
            save(Family::V4, &fixture(ECE_INV)).unwrap(),
            " ! --ecn-tcp-ece"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        for arg in ["4", "-1", "x", "1x", ""] {
            assert!(
                parse(Family::V4, &[ov("ecn-ip-ect", false, &[arg])]).is_err(),
                "{arg} accepted"
            );
        }
        assert_eq!(
            parse(Family::V4, &[]).unwrap_err(),
            "ECN match: some option required"
        );
        assert!(parse(
            Family::V4,
            &[ov("ecn-tcp-cwr", false, &[]), ov("ecn-tcp-cwr", false, &[])]
        )
        .is_err());
        assert!(save(Family::V4, &[0x31, 0]).is_err(), "short payload");
    }
}
