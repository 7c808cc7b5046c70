//! `-j TTL` (ipt_TTL, `ipt_TTL_info`): set, decrement or increment the
//! IPv4 time-to-live. One revision, IPv4 only (IPv6 has `-j HL`); the
//! kernel allows it in the mangle table only.

use std::mem::{offset_of, size_of};

use super::mark_tg::{check_exclusions, Excl};
use super::{
    no_invert, once, opt, parse_uint, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload,
    Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{ipt_TTL_info, IPT_TTL_DEC, IPT_TTL_INC, IPT_TTL_SET};

pub(super) static CODECS: &[&dyn Codec] = &[&Ttl];

mod field {
    use super::*;
    pub const MODE: usize = offset_of!(ipt_TTL_info, mode);
    pub const TTL: usize = offset_of!(ipt_TTL_info, ttl);
}

/// An XTTYPE_UINT8/16/32 argument as xtopt_parse_int reads it: the whole
/// string a number (base 0) within `min..=max`, else libxtables' message.
pub(crate) fn parse_xt_uint(ext: &str, o: &OptValue, min: u64, max: u64) -> ExtResult<u64> {
    parse_uint(o.arg(), min, max).ok_or_else(|| {
        format!(
            "{ext}: bad value for option \"--{}\", or out of range ({min}-{max}).",
            o.name
        )
    })
}

/// libxt_TTL's option table (set=0, inc=1, dec=2): each excludes all.
const F_ANY: u32 = 0b111;
const EXCL: &[Excl] = &[
    Excl {
        name: "ttl-set",
        id: 0,
        excl: F_ANY,
    },
    Excl {
        name: "ttl-dec",
        id: 2,
        excl: F_ANY,
    },
    Excl {
        name: "ttl-inc",
        id: 1,
        excl: F_ANY,
    },
];

struct Ttl;

impl Codec for Ttl {
    fn name(&self) -> &'static str {
        "TTL"
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
            opt("ttl-set", Arg::One),
            opt("ttl-dec", Arg::One),
            opt("ttl-inc", Arg::One),
        ];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<ipt_TTL_info>();
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "TTL")?;
            no_invert(o, "TTL")?;
            let (mode, min) = match o.name {
                "ttl-set" => (IPT_TTL_SET, 0),
                "ttl-dec" => (IPT_TTL_DEC, 1),
                "ttl-inc" => (IPT_TTL_INC, 1),
                _ => return Err(super::unknown_option("TTL", o)),
            };
            let v = parse_xt_uint("TTL", o, min, 255)?;
            p.u8(field::MODE, mode as u8).u8(field::TTL, v as u8);
        }
        if seen.is_empty() {
            return Err("TTL: You must specify an action".into());
        }
        check_exclusions("TTL", EXCL, &seen)?;
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<ipt_TTL_info>())?;
        match u32::from(r.u8(field::MODE)?) {
            IPT_TTL_SET => out.push_str(" --ttl-set"),
            IPT_TTL_DEC => out.push_str(" --ttl-dec"),
            IPT_TTL_INC => out.push_str(" --ttl-inc"),
            // iptables prints the bare value for an unknown mode.
            _ => {}
        }
        out.push_str(&format!(" {}", r.u8(field::TTL)?));
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

    fn parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        with_ctx(|c| Ttl.parse(0, opts, c))
    }

    fn save(data: &[u8]) -> String {
        let mut out = String::new();
        with_ctx(|c| Ttl.save(0, data, c, &mut out)).expect("save");
        out
    }

    // Captured from the kernel after iptables-legacy-restore: ipt_TTL_info
    // is mode (0 set, 1 inc, 2 dec) then ttl.
    const CASES: &[(&str, &str, &str, &str)] = &[
        // option, argument, kernel bytes, iptables-legacy-save
        ("ttl-set", "64", "0040", " --ttl-set 64"),
        ("ttl-set", "0", "0000", " --ttl-set 0"),
        ("ttl-set", "255", "00ff", " --ttl-set 255"),
        ("ttl-dec", "1", "0201", " --ttl-dec 1"),
        ("ttl-dec", "255", "02ff", " --ttl-dec 255"),
        ("ttl-inc", "1", "0101", " --ttl-inc 1"),
        ("ttl-inc", "0x10", "0110", " --ttl-inc 16"),
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
        assert_eq!(save(&hex("0707")), " 7");
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(parse(&[]).unwrap_err(), "TTL: You must specify an action");
        assert_eq!(
            parse(&[ov("ttl-dec", "0")]).unwrap_err(),
            "TTL: bad value for option \"--ttl-dec\", or out of range (1-255)."
        );
        assert!(parse(&[ov("ttl-inc", "0")]).is_err());
        assert_eq!(
            parse(&[ov("ttl-set", "256")]).unwrap_err(),
            "TTL: bad value for option \"--ttl-set\", or out of range (0-255)."
        );
        assert!(parse(&[ov("ttl-set", "-1")]).is_err());
        assert!(parse(&[ov("ttl-set", "1x")]).is_err());
        assert_eq!(
            parse(&[ov("ttl-inc", "1"), ov("ttl-set", "2")]).unwrap_err(),
            "TTL: option \"--ttl-set\" cannot be used together with \"--ttl-inc\"."
        );
        assert_eq!(
            parse(&[ov("ttl-inc", "1"), ov("ttl-dec", "2")]).unwrap_err(),
            "TTL: option \"--ttl-dec\" cannot be used together with \"--ttl-inc\"."
        );
        assert!(parse(&[ov("ttl-set", "1"), ov("ttl-set", "2")])
            .unwrap_err()
            .contains("only be used once"));
        let inv = OptValue {
            invert: true,
            ..ov("ttl-set", "1")
        };
        assert!(parse(&[inv]).unwrap_err().contains("cannot be inverted"));
        assert!(with_ctx(|c| Ttl.save(0, &[0], c, &mut String::new())).is_err());
    }
}
