//! `-j SYNPROXY` (xt_SYNPROXY, `nf_synproxy_info`): answer TCP handshakes
//! with SYN cookies on behalf of the server, advertising the given TCP
//! options. One revision, both families; the kernel wants `-p tcp`.

use std::mem::{offset_of, size_of};

use super::ttl_tg::parse_xt_uint;
use super::{
    no_invert, once, opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::sys::bindings::{
    nf_synproxy_info, XT_SYNPROXY_OPT_ECN, XT_SYNPROXY_OPT_MSS, XT_SYNPROXY_OPT_SACK_PERM,
    XT_SYNPROXY_OPT_TIMESTAMP, XT_SYNPROXY_OPT_WSCALE,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Synproxy];

mod field {
    use super::*;
    pub const OPTIONS: usize = offset_of!(nf_synproxy_info, options);
    pub const WSCALE: usize = offset_of!(nf_synproxy_info, wscale);
    pub const MSS: usize = offset_of!(nf_synproxy_info, mss);
}

struct Synproxy;

impl Codec for Synproxy {
    fn name(&self) -> &'static str {
        "SYNPROXY"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn revisions(&self, _: crate::rules::Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("sack-perm", Arg::None),
            opt("timestamp", Arg::None),
            opt("wscale", Arg::One),
            opt("mss", Arg::One),
            opt("ecn", Arg::None),
        ];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<nf_synproxy_info>();
        let mut flags = 0u32;
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "SYNPROXY")?;
            no_invert(o, "SYNPROXY")?;
            flags |= match o.name {
                "sack-perm" => XT_SYNPROXY_OPT_SACK_PERM,
                "timestamp" => XT_SYNPROXY_OPT_TIMESTAMP,
                "ecn" => XT_SYNPROXY_OPT_ECN,
                // iptables reads both as u32 and silently keeps the low
                // 8 (wscale) or 16 (mss) bits; larger values are refused
                // here instead.
                "wscale" => {
                    p.u8(field::WSCALE, parse_xt_uint("SYNPROXY", o, 0, 255)? as u8);
                    XT_SYNPROXY_OPT_WSCALE
                }
                "mss" => {
                    p.u16(field::MSS, parse_xt_uint("SYNPROXY", o, 0, 65535)? as u16);
                    XT_SYNPROXY_OPT_MSS
                }
                _ => return Err(super::unknown_option("SYNPROXY", o)),
            };
        }
        p.u8(field::OPTIONS, flags as u8);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<nf_synproxy_info>())?;
        let flags = u32::from(r.u8(field::OPTIONS)?);
        if flags & XT_SYNPROXY_OPT_SACK_PERM != 0 {
            out.push_str(" --sack-perm");
        }
        if flags & XT_SYNPROXY_OPT_TIMESTAMP != 0 {
            out.push_str(" --timestamp");
        }
        if flags & XT_SYNPROXY_OPT_WSCALE != 0 {
            out.push_str(&format!(" --wscale {}", r.u8(field::WSCALE)?));
        }
        if flags & XT_SYNPROXY_OPT_MSS != 0 {
            out.push_str(&format!(" --mss {}", r.u16(field::MSS)?));
        }
        if flags & XT_SYNPROXY_OPT_ECN != 0 {
            out.push_str(" --ecn");
        }
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
            args: if arg.is_empty() {
                Default::default()
            } else {
                vec![arg.to_string()].into()
            },
        }
    }

    fn with_ctx<T>(f: impl FnOnce(&RuleContext) -> T) -> T {
        let mut ip = IpMatch::any(Family::V4);
        ip.proto = 6;
        f(&RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        })
    }

    fn parse(opts: &[(&'static str, &str)]) -> ExtResult<Vec<u8>> {
        let opts: Vec<OptValue> = opts.iter().map(|(n, a)| ov(n, a)).collect();
        with_ctx(|c| Synproxy.parse(0, &opts, c))
    }

    fn save(data: &[u8]) -> String {
        let mut out = String::new();
        with_ctx(|c| Synproxy.save(0, data, c, &mut out)).expect("save");
        out
    }

    // Captured from the kernel after iptables-legacy-restore and
    // ip6tables-legacy-restore (same bytes): nf_synproxy_info is options
    // (0x01 mss, 0x02 wscale, 0x04 sack-perm, 0x08 timestamp, 0x10 ecn),
    // wscale, mss (host order).
    type Case = (
        &'static [(&'static str, &'static str)],
        &'static str,
        &'static str,
    );
    const CASES: &[Case] = &[
        (
            &[
                ("sack-perm", ""),
                ("timestamp", ""),
                ("wscale", "7"),
                ("mss", "1460"),
            ],
            "0f07b405",
            " --sack-perm --timestamp --wscale 7 --mss 1460",
        ),
        (&[], "00000000", ""),
        (&[("ecn", "")], "10000000", " --ecn"),
        (
            &[("mss", "0x5b4"), ("wscale", "0")],
            "0300b405",
            " --wscale 0 --mss 1460",
        ),
        (
            &[
                ("timestamp", ""),
                ("ecn", ""),
                ("sack-perm", ""),
                ("wscale", "14"),
                ("mss", "65535"),
            ],
            "1f0effff",
            " --sack-perm --timestamp --wscale 14 --mss 65535 --ecn",
        ),
        (&[("mss", "536")], "01001802", " --mss 536"),
    ];

    #[test]
    fn parse_matches_kernel_bytes() {
        for (o, bytes, text) in CASES {
            assert_eq!(parse(o).unwrap(), hex(bytes), "{text}");
        }
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        for (_, bytes, text) in CASES {
            assert_eq!(save(&hex(bytes)), *text);
        }
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(
            parse(&[("wscale", "256")]).unwrap_err(),
            "SYNPROXY: bad value for option \"--wscale\", or out of range (0-255)."
        );
        assert!(parse(&[("mss", "65536")])
            .unwrap_err()
            .contains("(0-65535)"));
        assert!(parse(&[("mss", "x")]).is_err());
        assert!(parse(&[("ecn", ""), ("ecn", "")])
            .unwrap_err()
            .contains("only be used once"));
        let inv = [OptValue {
            invert: true,
            ..ov("ecn", "")
        }];
        assert!(with_ctx(|c| Synproxy.parse(0, &inv, c))
            .unwrap_err()
            .contains("cannot be inverted"));
        assert!(with_ctx(|c| Synproxy.save(0, &[1, 2], c, &mut String::new())).is_err());
    }
}
