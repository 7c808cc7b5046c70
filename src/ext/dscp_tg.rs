//! `-j DSCP` (xt_DSCP, `xt_DSCP_info`): set the DSCP field by number
//! (`--set-dscp`) or class name (`--set-dscp-class`). One revision, both
//! families; the kernel allows it in the mangle table only.

use std::mem::{offset_of, size_of};

use super::mark_tg::{check_exclusions, Excl};
use super::ttl_tg::parse_xt_uint;
use super::{
    no_invert, once, opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::sys::bindings::{xt_DSCP_info, XT_DSCP_MAX};

pub(super) static CODECS: &[&dyn Codec] = &[&DscpTarget];

mod field {
    use super::*;
    pub const DSCP: usize = offset_of!(xt_DSCP_info, dscp);
}

/// class_to_dscp, shared with the dscp match (one class table).
pub(crate) use super::dscp::class_to_dscp;

/// libxt_DSCP's table (set-dscp=0, set-dscp-class=1): each excludes the other.
const EXCL: &[Excl] = &[
    Excl {
        name: "set-dscp",
        id: 0,
        excl: 1 << 1,
    },
    Excl {
        name: "set-dscp-class",
        id: 1,
        excl: 1 << 0,
    },
];

struct DscpTarget;

impl Codec for DscpTarget {
    fn name(&self) -> &'static str {
        "DSCP"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn revisions(&self, _: crate::rules::Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[opt("set-dscp", Arg::One), opt("set-dscp-class", Arg::One)];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_DSCP_info>();
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "DSCP")?;
            no_invert(o, "DSCP")?;
            let v = match o.name {
                "set-dscp" => parse_xt_uint("DSCP", o, 0, XT_DSCP_MAX.into())? as u8,
                "set-dscp-class" => class_to_dscp(o.arg())?,
                _ => return Err(super::unknown_option("DSCP", o)),
            };
            p.u8(field::DSCP, v);
        }
        if seen.is_empty() {
            return Err("DSCP target: Parameter --set-dscp is required".into());
        }
        check_exclusions("DSCP", EXCL, &seen)?;
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<xt_DSCP_info>())?;
        out.push_str(&format!(" --set-dscp {:#04x}", r.u8(field::DSCP)?));
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
            args: vec![arg.to_string()].into(),
        }
    }

    fn with_ctx<T>(f: impl FnOnce(&RuleContext) -> T) -> T {
        let ip = IpMatch::any(Family::V6);
        f(&RuleContext {
            family: Family::V6,
            ip: &ip,
            table: "mangle",
        })
    }

    fn parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        with_ctx(|c| DscpTarget.parse(0, opts, c))
    }

    fn save(data: &[u8]) -> String {
        let mut out = String::new();
        with_ctx(|c| DscpTarget.save(0, data, c, &mut out)).expect("save");
        out
    }

    // Captured from the kernel after iptables-legacy-restore and
    // ip6tables-legacy-restore (same bytes): xt_DSCP_info is the one byte
    // `dscp`.
    const CASES: &[(&str, &str, &str, &str)] = &[
        // option, argument, kernel bytes, iptables-legacy-save
        ("set-dscp", "0", "00", " --set-dscp 0x00"),
        ("set-dscp", "63", "3f", " --set-dscp 0x3f"),
        ("set-dscp", "0x2e", "2e", " --set-dscp 0x2e"),
        ("set-dscp", "010", "08", " --set-dscp 0x08"),
        ("set-dscp-class", "EF", "2e", " --set-dscp 0x2e"),
        ("set-dscp-class", "af41", "22", " --set-dscp 0x22"),
        ("set-dscp-class", "CS0", "00", " --set-dscp 0x00"),
        ("set-dscp-class", "cs7", "38", " --set-dscp 0x38"),
        ("set-dscp-class", "BE", "00", " --set-dscp 0x00"),
        ("set-dscp-class", "AF11", "0a", " --set-dscp 0x0a"),
        ("set-dscp-class", "AF23", "16", " --set-dscp 0x16"),
        ("set-dscp-class", "AF33", "1e", " --set-dscp 0x1e"),
        ("set-dscp-class", "AF43", "26", " --set-dscp 0x26"),
        ("set-dscp-class", "CS6", "30", " --set-dscp 0x30"),
        // a class name followed by anything is that class
        ("set-dscp-class", "EFX", "2e", " --set-dscp 0x2e"),
        ("set-dscp-class", "cs12", "08", " --set-dscp 0x08"),
    ];

    #[test]
    fn parse_matches_kernel_bytes() {
        for (name, arg, bytes, _) in CASES {
            assert_eq!(
                parse(&[ov(name, arg)]).unwrap(),
                hex(bytes),
                "--{name} {arg}"
            );
        }
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        for (name, arg, bytes, text) in CASES {
            assert_eq!(save(&hex(bytes)), *text, "--{name} {arg}");
        }
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(
            parse(&[]).unwrap_err(),
            "DSCP target: Parameter --set-dscp is required"
        );
        assert_eq!(
            parse(&[ov("set-dscp", "64")]).unwrap_err(),
            "DSCP: bad value for option \"--set-dscp\", or out of range (0-63)."
        );
        assert!(parse(&[ov("set-dscp", "EF")]).is_err());
        for bad in ["AF1", "E", "", "XX"] {
            assert_eq!(
                parse(&[ov("set-dscp-class", bad)]).unwrap_err(),
                format!("Invalid DSCP value `{bad}': expected one of CS0..CS7, BE, AF11..AF43, EF")
            );
        }
        assert_eq!(
            parse(&[ov("set-dscp-class", "EF"), ov("set-dscp", "1")]).unwrap_err(),
            "DSCP: option \"--set-dscp\" cannot be used together with \"--set-dscp-class\"."
        );
        assert!(parse(&[ov("set-dscp", "1"), ov("set-dscp", "2")])
            .unwrap_err()
            .contains("only be used once"));
        let inv = OptValue {
            invert: true,
            ..ov("set-dscp", "1")
        };
        assert!(parse(&[inv]).unwrap_err().contains("cannot be inverted"));
        assert!(with_ctx(|c| DscpTarget.save(0, &[], c, &mut String::new())).is_err());
    }
}
