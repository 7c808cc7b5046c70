//! `-j REJECT` (ipt_REJECT, IPv4): drop the packet and answer with an ICMP
//! error or a TCP reset.

use std::mem::offset_of;

use super::{
    once, opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::{inv_flags, Family};
use crate::sys::bindings::{
    ipt_reject_info, ipt_reject_with, IPPROTO_TCP, IPT_ICMP_ADMIN_PROHIBITED,
    IPT_ICMP_HOST_PROHIBITED, IPT_ICMP_HOST_UNREACHABLE, IPT_ICMP_NET_PROHIBITED,
    IPT_ICMP_NET_UNREACHABLE, IPT_ICMP_PORT_UNREACHABLE, IPT_ICMP_PROT_UNREACHABLE, IPT_TCP_RESET,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Reject];

mod field {
    use super::*;
    pub const WITH: usize = offset_of!(ipt_reject_info, with);
}

/// One reply type: the name iptables saves, the alias it also accepts.
struct RejectType {
    name: &'static str,
    alias: &'static str,
    with: ipt_reject_with,
}

const fn t(name: &'static str, alias: &'static str, with: ipt_reject_with) -> RejectType {
    RejectType { name, alias, with }
}

/// libipt_REJECT's table, in its order (the first prefix match wins).
/// IPT_ICMP_ECHOREPLY (4) is absent there: iptables refuses it and the
/// kernel too.
const TYPES: &[RejectType] = &[
    t(
        "icmp-net-unreachable",
        "net-unreach",
        IPT_ICMP_NET_UNREACHABLE,
    ),
    t(
        "icmp-host-unreachable",
        "host-unreach",
        IPT_ICMP_HOST_UNREACHABLE,
    ),
    t(
        "icmp-proto-unreachable",
        "proto-unreach",
        IPT_ICMP_PROT_UNREACHABLE,
    ),
    t(
        "icmp-port-unreachable",
        "port-unreach",
        IPT_ICMP_PORT_UNREACHABLE,
    ),
    t("icmp-net-prohibited", "net-prohib", IPT_ICMP_NET_PROHIBITED),
    t(
        "icmp-host-prohibited",
        "host-prohib",
        IPT_ICMP_HOST_PROHIBITED,
    ),
    t("tcp-reset", "tcp-rst", IPT_TCP_RESET),
    t(
        "icmp-admin-prohibited",
        "admin-prohib",
        IPT_ICMP_ADMIN_PROHIBITED,
    ),
];

/// True when `word` starts with `typed`, ignoring ASCII case (strncasecmp
/// with the length of what was typed).
fn is_prefix(typed: &str, word: &str) -> bool {
    word.len() >= typed.len()
        && word.as_bytes()[..typed.len()].eq_ignore_ascii_case(typed.as_bytes())
}

/// Resolves a `--reject-with` argument as libipt_REJECT does: the first
/// entry whose name or alias starts with it (case-insensitive), so `icmp`
/// means icmp-net-unreachable and `tcp` tcp-reset.
fn parse_type(s: &str) -> ExtResult<ipt_reject_with> {
    TYPES
        .iter()
        .find(|t| is_prefix(s, t.name) || is_prefix(s, t.alias))
        .map(|t| t.with)
        .ok_or_else(|| {
            if is_prefix(s, "echo-reply") || is_prefix(s, "echoreply") {
                "--reject-with echo-reply no longer supported".to_string()
            } else {
                format!("unknown reject type \"{s}\"")
            }
        })
}

struct Reject;

impl Codec for Reject {
    fn name(&self) -> &'static str {
        "REJECT"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V4]
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[opt("reject-with", Arg::One)];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut with = IPT_ICMP_PORT_UNREACHABLE;
        let mut seen = Vec::new();
        for o in opts {
            match o.name {
                "reject-with" => {
                    once(&mut seen, o, "REJECT")?;
                    super::no_invert(o, "REJECT")?;
                    with = parse_type(o.arg())?;
                }
                _ => return Err(super::unknown_option("REJECT", o)),
            }
        }
        // The kernel (reject_tg_check) refuses a TCP reset for anything but
        // `-p tcp`; say so here rather than fail at commit.
        if with == IPT_TCP_RESET
            && (ctx.ip.proto != IPPROTO_TCP as u16 || ctx.ip.invflags & inv_flags::PROTO != 0)
        {
            return Err("REJECT: --reject-with tcp-reset requires `-p tcp' (the kernel refuses it otherwise)".into());
        }
        // The kernel takes REJECT in the filter table only.
        if ctx.table != "filter" {
            return Err(format!(
                "REJECT: the kernel allows this target in the filter table only, not in {}",
                ctx.table
            ));
        }
        let mut p = Payload::of::<ipt_reject_info>();
        p.u32(field::WITH, with);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<ipt_reject_info>())?;
        let with = r.u32(field::WITH)?;
        let t = TYPES
            .iter()
            .find(|t| t.with == with)
            .ok_or_else(|| format!("unknown reject type {with}"))?;
        out.push_str(" --reject-with ");
        out.push_str(t.name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::rules::IpMatch;

    fn ov(name: &'static str, arg: &str) -> OptValue {
        OptValue {
            name,
            invert: false,
            args: vec![arg.to_string()],
        }
    }

    fn parse_with(ip: &IpMatch, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ctx = RuleContext {
            family: Family::V4,
            ip,
            table: "filter",
        };
        // The registry pads to XT_ALIGN as the kernel stores it.
        Reject
            .parse(0, opts, &ctx)
            .map(|d| crate::ext::make_extension(&Reject, 0, d).data)
    }

    fn save(data: &[u8]) -> String {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Reject.save(0, data, &ctx, &mut out).expect("save");
        out
    }

    fn tcp() -> IpMatch {
        IpMatch {
            proto: 6,
            ..IpMatch::any(Family::V4)
        }
    }

    // Captured from the kernel after iptables-legacy-restore (payload after
    // the 32-byte xt_entry_target header): the 4-byte ipt_reject_info, then
    // 4 bytes of XT_ALIGN padding the kernel keeps zeroed.
    // `-j REJECT`: with = 3 (IPT_ICMP_PORT_UNREACHABLE, the default)
    const DEFAULT: &str = "03000000 00000000";
    // `--reject-with icmp-host-prohibited`: with = 6
    const HOST_PROHIB: &str = "06000000 00000000";
    // `-p tcp --reject-with tcp-rst`: with = 7 (IPT_TCP_RESET)
    const TCP_RESET: &str = "07000000 00000000";
    // `--reject-with admin`: with = 8 (IPT_ICMP_ADMIN_PROHIBITED)
    const ADMIN: &str = "08000000 00000000";
    // `--reject-with icmp`: with = 0 (first prefix match: icmp-net-unreachable)
    const NET_UNREACH: &str = "00000000 00000000";
    // `--reject-with net-p`: with = 5 (icmp-net-prohibited)
    const NET_PROHIB: &str = "05000000 00000000";

    #[test]
    fn parse_matches_kernel_bytes() {
        let any = IpMatch::any(Family::V4);
        assert_eq!(parse_with(&any, &[]).unwrap(), hex(DEFAULT));
        assert_eq!(
            parse_with(&any, &[ov("reject-with", "icmp-host-prohibited")]).unwrap(),
            hex(HOST_PROHIB)
        );
        assert_eq!(
            parse_with(&tcp(), &[ov("reject-with", "tcp-rst")]).unwrap(),
            hex(TCP_RESET)
        );
        assert_eq!(
            parse_with(&any, &[ov("reject-with", "admin")]).unwrap(),
            hex(ADMIN)
        );
        assert_eq!(
            parse_with(&any, &[ov("reject-with", "icmp")]).unwrap(),
            hex(NET_UNREACH)
        );
        assert_eq!(
            parse_with(&any, &[ov("reject-with", "")]).unwrap(),
            hex(NET_UNREACH)
        );
        assert_eq!(
            parse_with(&any, &[ov("reject-with", "net-p")]).unwrap(),
            hex(NET_PROHIB)
        );
        assert_eq!(
            parse_with(&any, &[ov("reject-with", "PORT-UNREACH")]).unwrap(),
            hex(DEFAULT)
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(save(&hex(DEFAULT)), " --reject-with icmp-port-unreachable");
        assert_eq!(
            save(&hex(HOST_PROHIB)),
            " --reject-with icmp-host-prohibited"
        );
        assert_eq!(save(&hex(TCP_RESET)), " --reject-with tcp-reset");
        assert_eq!(save(&hex(ADMIN)), " --reject-with icmp-admin-prohibited");
        assert_eq!(
            save(&hex(NET_UNREACH)),
            " --reject-with icmp-net-unreachable"
        );
        assert_eq!(save(&hex(NET_PROHIB)), " --reject-with icmp-net-prohibited");
    }

    #[test]
    fn every_name_and_alias_round_trips() {
        for t in TYPES {
            let ip = if t.with == IPT_TCP_RESET {
                tcp()
            } else {
                IpMatch::any(Family::V4)
            };
            for name in [t.name, t.alias] {
                let data = parse_with(&ip, &[ov("reject-with", name)]).unwrap();
                assert_eq!(save(&data), format!(" --reject-with {}", t.name));
            }
        }
    }

    #[test]
    fn bad_input_is_refused() {
        let any = IpMatch::any(Family::V4);
        assert!(parse_with(&any, &[ov("reject-with", "icmp-foo")])
            .unwrap_err()
            .contains("unknown reject type"));
        assert!(parse_with(&any, &[ov("reject-with", "echo-reply")])
            .unwrap_err()
            .contains("no longer supported"));
        let twice = [
            ov("reject-with", "tcp-reset"),
            ov("reject-with", "tcp-reset"),
        ];
        assert!(parse_with(&tcp(), &twice)
            .unwrap_err()
            .contains("only be used once"));
        let inv = OptValue {
            invert: true,
            ..ov("reject-with", "tcp-reset")
        };
        assert!(parse_with(&tcp(), &[inv])
            .unwrap_err()
            .contains("cannot be inverted"));
        assert!(parse_with(&any, &[ov("reject-with", "tcp-reset")])
            .unwrap_err()
            .contains("-p tcp"));
        let not_tcp = IpMatch {
            invflags: inv_flags::PROTO,
            ..tcp()
        };
        assert!(parse_with(&not_tcp, &[ov("reject-with", "tcp-reset")]).is_err());
        let ctx = RuleContext {
            family: Family::V4,
            ip: &any,
            table: "mangle",
        };
        assert!(Reject
            .parse(0, &[], &ctx)
            .unwrap_err()
            .contains("filter table only"));
    }

    #[test]
    fn bad_payloads_give_errors() {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        assert!(Reject.save(0, &hex("04000000"), &ctx, &mut out).is_err());
        assert!(Reject.save(0, &hex("09000000"), &ctx, &mut out).is_err());
        assert!(Reject.save(0, &hex("0300"), &ctx, &mut out).is_err());
    }
}
