//! `-j NFLOG` (xt_NFLOG, `xt_nflog_info`): hand the packet to nfnetlink_log.

use std::mem::offset_of;

use super::log::prefix_bytes;
use super::mark_tg::{check_exclusions, parse_u32, Excl};
use super::{
    no_invert, once, opt, parse_uint, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload,
    Reader, RuleContext,
};
use crate::sys::bindings::{xt_nflog_info, XT_NFLOG_DEFAULT_THRESHOLD, XT_NFLOG_F_COPY_LEN};

pub(super) static CODECS: &[&dyn Codec] = &[&Nflog];

mod field {
    use super::*;
    pub const LEN: usize = offset_of!(xt_nflog_info, len);
    pub const GROUP: usize = offset_of!(xt_nflog_info, group);
    pub const THRESHOLD: usize = offset_of!(xt_nflog_info, threshold);
    pub const FLAGS: usize = offset_of!(xt_nflog_info, flags);
    pub const PREFIX: usize = offset_of!(xt_nflog_info, prefix);
    /// The prefix field's size, its NUL included (it ends the struct).
    pub const PREFIX_LEN: usize = std::mem::size_of::<xt_nflog_info>() - PREFIX;
}

/// libxt_NFLOG's option table (ids: group=0, prefix=1, range=2, size=3,
/// threshold=4): `--nflog-range` and `--nflog-size` both set `len` and
/// exclude each other.
const EXCL: &[Excl] = &[
    Excl {
        name: "nflog-group",
        id: 0,
        excl: 0,
    },
    Excl {
        name: "nflog-prefix",
        id: 1,
        excl: 0,
    },
    Excl {
        name: "nflog-range",
        id: 2,
        excl: 1 << 3,
    },
    Excl {
        name: "nflog-size",
        id: 3,
        excl: 1 << 2,
    },
    Excl {
        name: "nflog-threshold",
        id: 4,
        excl: 0,
    },
];

fn parse_u16(opt: &str, s: &str) -> ExtResult<u16> {
    parse_uint(s, 0, u64::from(u16::MAX))
        .map(|v| v as u16)
        .ok_or_else(|| {
            format!("NFLOG: bad value for option \"--{opt}\", or out of range (0-65535).")
        })
}

struct Nflog;

impl Codec for Nflog {
    fn name(&self) -> &'static str {
        "NFLOG"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn revisions(&self, _: crate::rules::Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("nflog-group", Arg::One),
            opt("nflog-prefix", Arg::One),
            opt("nflog-range", Arg::One),
            opt("nflog-size", Arg::One),
            opt("nflog-threshold", Arg::One),
        ];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_nflog_info>();
        p.u16(field::THRESHOLD, XT_NFLOG_DEFAULT_THRESHOLD as u16);
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "NFLOG")?;
            no_invert(o, "NFLOG")?;
            match o.name {
                "nflog-group" => {
                    p.u16(field::GROUP, parse_u16(o.name, o.arg())?);
                }
                "nflog-prefix" => {
                    let b = prefix_bytes("NFLOG", o.name, o.arg(), field::PREFIX_LEN)?;
                    p.bytes(field::PREFIX, &b);
                }
                "nflog-range" | "nflog-size" => {
                    p.u32(field::LEN, parse_u32("NFLOG", o.name, o.arg())?);
                }
                "nflog-threshold" => {
                    p.u16(field::THRESHOLD, parse_u16(o.name, o.arg())?);
                }
                _ => return Err(super::unknown_option("NFLOG", o)),
            }
        }
        check_exclusions("NFLOG", EXCL, &seen)?;
        // NFLOG_check: only --nflog-size makes the kernel honour `len`
        // (--nflog-range never worked; iptables warns and keeps it).
        if seen.contains(&"nflog-size") {
            p.u16(field::FLAGS, XT_NFLOG_F_COPY_LEN as u16);
        }
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_nflog_info>())?;
        let prefix = r.cstr(field::PREFIX, field::PREFIX_LEN)?;
        if !prefix.is_empty() {
            out.push_str(" --nflog-prefix");
            super::save_string(out, prefix);
        }
        let group = r.u16(field::GROUP)?;
        if group != 0 {
            out.push_str(&format!(" --nflog-group {group}"));
        }
        let len = r.u32(field::LEN)?;
        if u32::from(r.u16(field::FLAGS)?) & XT_NFLOG_F_COPY_LEN != 0 {
            out.push_str(&format!(" --nflog-size {len}"));
        } else if len != 0 {
            out.push_str(&format!(" --nflog-range {len}"));
        }
        let threshold = r.u16(field::THRESHOLD)?;
        if u32::from(threshold) != XT_NFLOG_DEFAULT_THRESHOLD {
            out.push_str(&format!(" --nflog-threshold {threshold}"));
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
            args: vec![arg.to_string()].into(),
        }
    }

    fn parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        Nflog.parse(0, opts, &ctx)
    }

    fn save(data: &[u8]) -> String {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Nflog.save(0, data, &ctx, &mut out).expect("save");
        out
    }

    /// A fixture: len | group | threshold | flags | pad, then the 64-byte
    /// prefix (given as its text; the rest of the field is zero).
    fn fixture(head: &str, prefix: &str) -> Vec<u8> {
        let mut v = hex(head);
        let mut p = prefix.as_bytes().to_vec();
        p.resize(64, 0);
        v.extend(p);
        v
    }

    // Captured from the kernel after iptables-legacy-restore: the 80-byte
    // xt_nflog_info after the target header.
    //   len u32 | group u16 | threshold u16 | flags u16 | pad u16 | prefix[64]
    const X63: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    fn cases() -> Vec<(Vec<OptValue<'static>>, Vec<u8>, String)> {
        vec![
            // `-j NFLOG`
            (vec![], fixture("00000000 0000 0000 0000 0000", ""), String::new()),
            // `--nflog-group 1`
            (vec![ov("nflog-group", "1")], fixture("00000000 0100 0000 0000 0000", ""), " --nflog-group 1".into()),
            // `--nflog-group 65535 --nflog-prefix "hello world" --nflog-size 128 --nflog-threshold 10`
            (
                vec![
                    ov("nflog-group", "65535"),
                    ov("nflog-prefix", "hello world"),
                    ov("nflog-size", "128"),
                    ov("nflog-threshold", "10"),
                ],
                fixture("80000000 ffff 0a00 0100 0000", "hello world"),
                " --nflog-prefix \"hello world\" --nflog-group 65535 --nflog-size 128 --nflog-threshold 10".into(),
            ),
            // `--nflog-range 4294967295`: len set, COPY_LEN flag not
            (
                vec![ov("nflog-range", "4294967295")],
                fixture("ffffffff 0000 0000 0000 0000", ""),
                " --nflog-range 4294967295".into(),
            ),
            // `--nflog-size 0`: flags = XT_NFLOG_F_COPY_LEN
            (vec![ov("nflog-size", "0")], fixture("00000000 0000 0000 0100 0000", ""), " --nflog-size 0".into()),
            // `--nflog-prefix x{66}yz`: cut to 63 bytes + NUL
            (
                vec![ov("nflog-prefix", &format!("{X63}xxxyz"))],
                fixture("00000000 0000 0000 0000 0000", X63),
                format!(" --nflog-prefix {X63}"),
            ),
            // `--nflog-threshold 0x10 --nflog-group 010 --nflog-prefix pre_fix`
            (
                vec![ov("nflog-threshold", "0x10"), ov("nflog-group", "010"), ov("nflog-prefix", "pre_fix")],
                fixture("00000000 0800 1000 0000 0000", "pre_fix"),
                " --nflog-prefix pre_fix --nflog-group 8 --nflog-threshold 16".into(),
            ),
            // `--nflog-group 0 --nflog-threshold 0`: all defaults
            (
                vec![ov("nflog-group", "0"), ov("nflog-threshold", "0")],
                fixture("00000000 0000 0000 0000 0000", ""),
                String::new(),
            ),
        ]
    }

    #[test]
    fn parse_matches_kernel_bytes() {
        for (opts, bytes, text) in cases() {
            assert_eq!(parse(&opts).unwrap(), bytes, "{text}");
        }
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        for (_, bytes, text) in cases() {
            assert_eq!(save(&bytes), text);
        }
        // Captured: `--nflog-prefix "''"` (quotes are plain characters to
        // iptables-restore outside double quotes).
        assert_eq!(
            save(&fixture("00000000 0000 0000 0000 0000", "''")),
            " --nflog-prefix \"\\'\\'\""
        );
    }

    #[test]
    fn bad_input_is_refused() {
        let err = |opts: &[OptValue]| parse(opts).unwrap_err();
        assert_eq!(
            err(&[ov("nflog-size", "1"), ov("nflog-range", "2")]),
            "NFLOG: option \"--nflog-range\" cannot be used together with \"--nflog-size\"."
        );
        assert_eq!(
            err(&[ov("nflog-group", "65536")]),
            "NFLOG: bad value for option \"--nflog-group\", or out of range (0-65535)."
        );
        assert!(err(&[ov("nflog-threshold", "65536")]).contains("out of range"));
        assert!(err(&[ov("nflog-size", "4294967296")]).contains("out of range"));
        assert!(err(&[ov("nflog-range", "-1")]).contains("out of range"));
        assert!(err(&[ov("nflog-prefix", "")]).contains("minimum length"));
        assert!(err(&[ov("nflog-prefix", "a\nb")]).contains("Newlines"));
        assert!(
            err(&[ov("nflog-group", "1"), ov("nflog-group", "2")]).contains("only be used once")
        );
        let inv = OptValue {
            invert: true,
            ..ov("nflog-group", "1")
        };
        assert!(err(&[inv]).contains("cannot be inverted"));
    }

    #[test]
    fn short_payload_is_an_error() {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        assert!(Nflog
            .save(
                0,
                &hex("00000000 0100 0000 0000 0000"),
                &ctx,
                &mut String::new()
            )
            .is_err());
    }
}
