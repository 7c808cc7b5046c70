//! `-j TOS` (xt_DSCP's TOS target): set bits of the IPv4 TOS / IPv6
//! traffic class.
//!
//! * Revision 1 (`xt_tos_target_info`, both families): a (value, mask)
//!   pair — the kernel clears the mask bits and XORs the value in. Every
//!   form (`--set-tos`, `--and-tos` …) becomes such a pair, saved as
//!   `--set-tos VALUE/MASK`.
//! * Revision 0 (IPv4 only, `ipt_tos_target_info`: one byte, the new TOS)
//!   only knows `--set-tos` without a mask. Linux dropped it long ago (this
//!   kernel lists TOS revision 1 only), so no kernel capture exists; it is
//!   encoded and saved as iptables 1.8.9's libxt_TOS does.
//!
//! The kernel allows TOS in the mangle table only.

use std::mem::{offset_of, size_of};

use super::mark_tg::{check_exclusions, Excl};
use super::ttl_tg::parse_xt_uint;
use super::{
    no_invert, once, opt, strtoul_prefix, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload,
    Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::xt_tos_target_info;

pub(super) static CODECS: &[&dyn Codec] = &[&TosTarget];

/// Revision 0's payload, as libxt_TOS declares it (no uapi header has it).
#[repr(C)]
struct ipt_tos_target_info {
    tos: u8,
}

mod field {
    use super::*;
    pub const V0_TOS: usize = offset_of!(ipt_tos_target_info, tos);
    pub const VALUE: usize = offset_of!(xt_tos_target_info, tos_value);
    pub const MASK: usize = offset_of!(xt_tos_target_info, tos_mask);
}

/// The TOS names of tos_values.c / libxtables (matched in any case).
pub(crate) const TOS_NAMES: &[(&str, u8)] = &[
    ("Minimize-Delay", 0x10),
    ("Maximize-Throughput", 0x08),
    ("Maximize-Reliability", 0x04),
    ("Minimize-Cost", 0x02),
    ("Normal-Service", 0x00),
];

/// xtables_strtoui with an end pointer: a number at the start of `s`
/// within 0..=255, and the rest.
fn u8_prefix(s: &str) -> Option<(u8, &str)> {
    if s.trim_start_matches(|c: char| c.is_ascii_whitespace())
        .starts_with('-')
    {
        return None;
    }
    let (v, rest) = strtoul_prefix(s)?;
    Some((u8::try_from(v).ok()?, rest))
}

/// XTTYPE_TOSMASK (xtopt_parse_tosmask): `VALUE[/MASK]` in numbers (the
/// mask defaults to 0xff), or a TOS name, which takes `name_mask`.
pub(crate) fn parse_tos_mask(s: &str, name_mask: u8) -> ExtResult<(u8, u8)> {
    let illegal = || format!("Illegal value: \"{s}\"");
    if let Some((value, rest)) = u8_prefix(s) {
        if rest.is_empty() {
            return Ok((value, 0xff));
        }
        let m = rest.strip_prefix('/').ok_or_else(illegal)?;
        let (mask, rest) = u8_prefix(m).ok_or_else(illegal)?;
        if !rest.is_empty() {
            return Err(illegal());
        }
        return Ok((value, mask));
    }
    TOS_NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
        .map(|(_, v)| (*v, name_mask))
        .ok_or_else(|| format!("Symbolic name \"{s}\" is unknown"))
}

/// libxt_TOS revision 1's table (set=0, and=1, or=2, xor=3): each
/// excludes all.
const F_ANY: u32 = 0b1111;
const EXCL: &[Excl] = &[
    Excl {
        name: "set-tos",
        id: 0,
        excl: F_ANY,
    },
    Excl {
        name: "and-tos",
        id: 1,
        excl: F_ANY,
    },
    Excl {
        name: "or-tos",
        id: 2,
        excl: F_ANY,
    },
    Excl {
        name: "xor-tos",
        id: 3,
        excl: F_ANY,
    },
];

struct TosTarget;

impl Codec for TosTarget {
    fn name(&self) -> &'static str {
        "TOS"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn revisions(&self, family: Family) -> &'static [u8] {
        match family {
            Family::V4 => &[1, 0],
            Family::V6 => &[1],
        }
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("set-tos", Arg::One),
            opt("and-tos", Arg::One),
            opt("or-tos", Arg::One),
            opt("xor-tos", Arg::One),
        ];
        O
    }

    fn parse(&self, rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let (mut value, mut mask) = (0u8, 0u8);
        let mut seen = Vec::new();
        for o in opts {
            if rev == 0 && o.name != "set-tos" {
                return Err(format!(
                    "TOS: option \"--{}\" needs revision 1, which the kernel lacks",
                    o.name
                ));
            }
            once(&mut seen, o, "TOS")?;
            no_invert(o, "TOS")?;
            (value, mask) = match o.name {
                // A name sets the low six bits in revision 1, all in revision 0.
                "set-tos" => parse_tos_mask(o.arg(), if rev == 0 { 0xff } else { 0x3f })?,
                "and-tos" => (0, !(parse_xt_uint("TOS", o, 0, 255)? as u8)),
                "or-tos" => {
                    let v = parse_xt_uint("TOS", o, 0, 255)? as u8;
                    (v, v)
                }
                "xor-tos" => (parse_xt_uint("TOS", o, 0, 255)? as u8, 0),
                _ => return Err(super::unknown_option("TOS", o)),
            };
            if rev == 0 && mask != 0xff {
                return Err("tos match: Your kernel is too old to support anything besides /0xFF as a mask.".into());
            }
        }
        if seen.is_empty() {
            return Err("TOS: An action is required".into());
        }
        check_exclusions("TOS", EXCL, &seen)?;
        if rev == 0 {
            let mut p = Payload::of::<ipt_tos_target_info>();
            p.u8(field::V0_TOS, value);
            return Ok(p.finish());
        }
        let mut p = Payload::of::<xt_tos_target_info>();
        p.u8(field::VALUE, value).u8(field::MASK, mask);
        Ok(p.finish())
    }

    fn save(&self, rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        if rev == 0 {
            let r = Reader::new(data, size_of::<ipt_tos_target_info>())?;
            out.push_str(&format!(" --set-tos {:#04x}", r.u8(field::V0_TOS)?));
            return Ok(());
        }
        let r = Reader::new(data, size_of::<xt_tos_target_info>())?;
        out.push_str(&format!(
            " --set-tos {:#04x}/{:#04x}",
            r.u8(field::VALUE)?,
            r.u8(field::MASK)?
        ));
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
            args: vec![arg.to_string()].into(),
        }
    }

    fn with_ctx<T>(f: impl FnOnce(&RuleContext) -> T) -> T {
        let ip = IpMatch::any(Family::V4);
        f(&RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "mangle",
        })
    }

    fn parse(rev: u8, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        with_ctx(|c| TosTarget.parse(rev, opts, c))
    }

    fn save(rev: u8, data: &[u8]) -> String {
        let mut out = String::new();
        with_ctx(|c| TosTarget.save(rev, data, c, &mut out)).expect("save");
        out
    }

    // Captured from the kernel after iptables-legacy-restore and
    // ip6tables-legacy-restore (same bytes), revision 1:
    // xt_tos_target_info is tos_value, tos_mask.
    const CASES: &[(&str, &str, &str, &str)] = &[
        // option, argument, kernel bytes, iptables-legacy-save
        ("set-tos", "0x10", "10ff", " --set-tos 0x10/0xff"),
        ("set-tos", "0x10/0x3f", "103f", " --set-tos 0x10/0x3f"),
        ("set-tos", "255/0", "ff00", " --set-tos 0xff/0x00"),
        ("set-tos", "0/0xff", "00ff", " --set-tos 0x00/0xff"),
        ("set-tos", "Minimize-Delay", "103f", " --set-tos 0x10/0x3f"),
        (
            "set-tos",
            "maximize-throughput",
            "083f",
            " --set-tos 0x08/0x3f",
        ),
        (
            "set-tos",
            "Maximize-Reliability",
            "043f",
            " --set-tos 0x04/0x3f",
        ),
        ("set-tos", "MINIMIZE-COST", "023f", " --set-tos 0x02/0x3f"),
        ("set-tos", "Normal-Service", "003f", " --set-tos 0x00/0x3f"),
        ("and-tos", "0x0f", "00f0", " --set-tos 0x00/0xf0"),
        ("and-tos", "0", "00ff", " --set-tos 0x00/0xff"),
        ("or-tos", "0x10", "1010", " --set-tos 0x10/0x10"),
        ("or-tos", "255", "ffff", " --set-tos 0xff/0xff"),
        ("xor-tos", "0x01", "0100", " --set-tos 0x01/0x00"),
        ("xor-tos", "017", "0f00", " --set-tos 0x0f/0x00"),
    ];

    #[test]
    fn parse_matches_kernel_bytes() {
        for (name, arg, bytes, _) in CASES {
            assert_eq!(
                parse(1, &[ov(name, arg)]).unwrap(),
                hex(bytes),
                "--{name} {arg}"
            );
        }
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        for (name, arg, bytes, text) in CASES {
            assert_eq!(save(1, &hex(bytes)), *text, "--{name} {arg}");
        }
    }

    // Revision 0 is not in this kernel: bytes and text follow libxt_TOS
    // (tos_tg_parse_v0 / tos_tg_save_v0), not a capture.
    #[test]
    fn revision_0() {
        assert_eq!(parse(0, &[ov("set-tos", "0x10")]).unwrap(), hex("10"));
        assert_eq!(parse(0, &[ov("set-tos", "0x08/0xff")]).unwrap(), hex("08"));
        assert_eq!(
            parse(0, &[ov("set-tos", "minimize-cost")]).unwrap(),
            hex("02")
        );
        assert_eq!(save(0, &hex("10")), " --set-tos 0x10");
        assert!(parse(0, &[ov("set-tos", "0x10/0x3f")])
            .unwrap_err()
            .contains("besides /0xFF"));
        assert!(parse(0, &[ov("and-tos", "1")]).is_err());
        assert_eq!(TosTarget.revisions(Family::V6), &[1]);
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(parse(1, &[]).unwrap_err(), "TOS: An action is required");
        assert_eq!(
            parse(1, &[ov("set-tos", "256")]).unwrap_err(),
            "Symbolic name \"256\" is unknown"
        );
        assert_eq!(
            parse(1, &[ov("set-tos", "0x10x")]).unwrap_err(),
            "Illegal value: \"0x10x\""
        );
        assert_eq!(
            parse(1, &[ov("set-tos", "1/256")]).unwrap_err(),
            "Illegal value: \"1/256\""
        );
        assert!(parse(1, &[ov("set-tos", "1/")]).is_err());
        assert!(parse(1, &[ov("set-tos", "1/2/3")]).is_err());
        assert!(parse(1, &[ov("set-tos", "Lowdelay")]).is_err());
        assert_eq!(
            parse(1, &[ov("and-tos", "256")]).unwrap_err(),
            "TOS: bad value for option \"--and-tos\", or out of range (0-255)."
        );
        assert_eq!(
            parse(1, &[ov("or-tos", "1"), ov("set-tos", "1")]).unwrap_err(),
            "TOS: option \"--set-tos\" cannot be used together with \"--or-tos\"."
        );
        assert!(parse(1, &[ov("or-tos", "1"), ov("or-tos", "1")])
            .unwrap_err()
            .contains("only be used once"));
        let inv = OptValue {
            invert: true,
            ..ov("set-tos", "1")
        };
        assert!(parse(1, &[inv]).unwrap_err().contains("cannot be inverted"));
        assert!(with_ctx(|c| TosTarget.save(1, &[1], c, &mut String::new())).is_err());
    }
}
