//! `-j ECN` (ipt_ECN, `ipt_ECN_info`): rewrite the ECN bits of the IPv4
//! header and the TCP CWR/ECE flags. One revision, IPv4 only; the kernel
//! allows it in the mangle table only, and the TCP operations only in
//! rules for `-p tcp`.

use std::mem::{offset_of, size_of};

use super::mark_tg::{check_exclusions, Excl};
use super::ttl_tg::parse_xt_uint;
use super::{
    no_invert, once, opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    ipt_ECN_info, IPT_ECN_OP_SET_CWR, IPT_ECN_OP_SET_ECE, IPT_ECN_OP_SET_IP,
};

pub(super) static CODECS: &[&dyn Codec] = &[&EcnTarget];

mod field {
    use super::*;
    pub const OPERATION: usize = offset_of!(ipt_ECN_info, operation);
    pub const IP_ECT: usize = offset_of!(ipt_ECN_info, ip_ect);
    /// The `proto.tcp` bit-field byte: `ece:1, cwr:1`, which GCC lays out
    /// from the lowest bit (the kernel capture of `--ecn-tcp-cwr 1` holds 0x02).
    pub const TCP_BITS: usize = offset_of!(ipt_ECN_info, proto);
    pub const ECE: u8 = 0x01;
    pub const CWR: u8 = 0x02;
}

const OP_ECE: u8 = IPT_ECN_OP_SET_ECE as u8;
const OP_CWR: u8 = IPT_ECN_OP_SET_CWR as u8;
const OP_IP: u8 = IPT_ECN_OP_SET_IP as u8;

/// libipt_ECN's table (tcp-remove=0, tcp-cwr=1, tcp-ece=2, ip-ect=3):
/// `--ecn-tcp-remove` and the two TCP bits exclude each other.
const EXCL: &[Excl] = &[
    Excl {
        name: "ecn-tcp-remove",
        id: 0,
        excl: (1 << 1) | (1 << 2),
    },
    Excl {
        name: "ecn-tcp-cwr",
        id: 1,
        excl: 1 << 0,
    },
    Excl {
        name: "ecn-tcp-ece",
        id: 2,
        excl: 1 << 0,
    },
    Excl {
        name: "ecn-ip-ect",
        id: 3,
        excl: 0,
    },
];

struct EcnTarget;

impl Codec for EcnTarget {
    fn name(&self) -> &'static str {
        "ECN"
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
        const O: &[OptSpec] = &[
            opt("ecn-tcp-remove", Arg::None),
            opt("ecn-tcp-cwr", Arg::One),
            opt("ecn-tcp-ece", Arg::One),
            opt("ecn-ip-ect", Arg::One),
        ];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let (mut op, mut ect, mut tcp) = (0u8, 0u8, 0u8);
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "ECN")?;
            no_invert(o, "ECN")?;
            match o.name {
                "ecn-tcp-remove" => {
                    op = OP_ECE | OP_CWR;
                    tcp = 0;
                }
                "ecn-tcp-cwr" => {
                    let v = parse_xt_uint("ECN", o, 0, 1)?;
                    op |= OP_CWR;
                    tcp = if v == 1 {
                        tcp | field::CWR
                    } else {
                        tcp & !field::CWR
                    };
                }
                "ecn-tcp-ece" => {
                    let v = parse_xt_uint("ECN", o, 0, 1)?;
                    op |= OP_ECE;
                    tcp = if v == 1 {
                        tcp | field::ECE
                    } else {
                        tcp & !field::ECE
                    };
                }
                "ecn-ip-ect" => {
                    ect = parse_xt_uint("ECN", o, 0, 3)? as u8;
                    op |= OP_IP;
                }
                _ => return Err(super::unknown_option("ECN", o)),
            }
        }
        if seen.is_empty() {
            return Err("ECN target: An operation is required".into());
        }
        check_exclusions("ECN", EXCL, &seen)?;
        let mut p = Payload::of::<ipt_ECN_info>();
        p.u8(field::OPERATION, op)
            .u8(field::IP_ECT, ect)
            .u8(field::TCP_BITS, tcp);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<ipt_ECN_info>())?;
        let op = r.u8(field::OPERATION)?;
        let tcp = r.u8(field::TCP_BITS)?;
        let (ece, cwr) = (tcp & field::ECE != 0, tcp & field::CWR != 0);
        if op == OP_ECE | OP_CWR && !ece && !cwr {
            out.push_str(" --ecn-tcp-remove");
            return Ok(());
        }
        if op & OP_ECE != 0 {
            out.push_str(&format!(" --ecn-tcp-ece {}", u8::from(ece)));
        }
        if op & OP_CWR != 0 {
            out.push_str(&format!(" --ecn-tcp-cwr {}", u8::from(cwr)));
        }
        if op & OP_IP != 0 {
            out.push_str(&format!(" --ecn-ip-ect {}", r.u8(field::IP_ECT)?));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::rules::IpMatch;

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
            table: "mangle",
        })
    }

    fn parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        with_ctx(|c| EcnTarget.parse(0, opts, c))
    }

    fn save(data: &[u8]) -> String {
        let mut out = String::new();
        with_ctx(|c| EcnTarget.save(0, data, c, &mut out)).expect("save");
        out
    }

    // Captured from the kernel after iptables-legacy-restore: ipt_ECN_info
    // is operation (0x01 ip, 0x10 ece, 0x20 cwr), ip_ect, then the TCP
    // bit-field byte (0x01 ece, 0x02 cwr).
    type Case = (
        &'static [(&'static str, &'static str)],
        &'static str,
        &'static str,
    );
    const CASES: &[Case] = &[
        // options, kernel bytes, iptables-legacy-save
        (&[("ecn-tcp-remove", "")], "300000", " --ecn-tcp-remove"),
        (&[("ecn-tcp-cwr", "1")], "200002", " --ecn-tcp-cwr 1"),
        (&[("ecn-tcp-ece", "1")], "100001", " --ecn-tcp-ece 1"),
        // both bits cleared is the same as --ecn-tcp-remove
        (
            &[("ecn-tcp-cwr", "0"), ("ecn-tcp-ece", "0")],
            "300000",
            " --ecn-tcp-remove",
        ),
        (
            &[("ecn-tcp-cwr", "1"), ("ecn-tcp-ece", "0")],
            "300002",
            " --ecn-tcp-ece 0 --ecn-tcp-cwr 1",
        ),
        (
            &[
                ("ecn-tcp-ece", "1"),
                ("ecn-tcp-cwr", "1"),
                ("ecn-ip-ect", "2"),
            ],
            "310203",
            " --ecn-tcp-ece 1 --ecn-tcp-cwr 1 --ecn-ip-ect 2",
        ),
        (&[("ecn-ip-ect", "0")], "010000", " --ecn-ip-ect 0"),
        (&[("ecn-ip-ect", "1")], "010100", " --ecn-ip-ect 1"),
        (&[("ecn-ip-ect", "3")], "010300", " --ecn-ip-ect 3"),
        (
            &[("ecn-tcp-remove", ""), ("ecn-ip-ect", "1")],
            "310100",
            " --ecn-tcp-ece 0 --ecn-tcp-cwr 0 --ecn-ip-ect 1",
        ),
    ];

    fn opts(case: &[(&'static str, &str)]) -> Vec<OptValue<'static>> {
        case.iter().map(|(n, a)| ov(n, a)).collect()
    }

    #[test]
    fn parse_matches_kernel_bytes() {
        for (o, bytes, text) in CASES {
            assert_eq!(parse(&opts(o)).unwrap(), hex(bytes), "{text}");
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
            parse(&[]).unwrap_err(),
            "ECN target: An operation is required"
        );
        assert_eq!(
            parse(&[ov("ecn-tcp-cwr", "2")]).unwrap_err(),
            "ECN: bad value for option \"--ecn-tcp-cwr\", or out of range (0-1)."
        );
        assert_eq!(
            parse(&[ov("ecn-ip-ect", "4")]).unwrap_err(),
            "ECN: bad value for option \"--ecn-ip-ect\", or out of range (0-3)."
        );
        assert_eq!(
            parse(&[ov("ecn-tcp-ece", "1"), ov("ecn-tcp-remove", "")]).unwrap_err(),
            "ECN: option \"--ecn-tcp-remove\" cannot be used together with \"--ecn-tcp-ece\"."
        );
        assert!(parse(&[ov("ecn-ip-ect", "1"), ov("ecn-ip-ect", "1")])
            .unwrap_err()
            .contains("only be used once"));
        let inv = OptValue {
            invert: true,
            ..ov("ecn-tcp-remove", "")
        };
        assert!(parse(&[inv]).unwrap_err().contains("cannot be inverted"));
        assert!(with_ctx(|c| EcnTarget.save(0, &[0x30], c, &mut String::new())).is_err());
    }
}
