//! `-j LOG` (xt_LOG): log the packet to the kernel log.

use std::mem::offset_of;

use super::{
    no_invert, once, opt, parse_uint, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload,
    Reader, RuleContext,
};
use crate::sys::bindings::{
    xt_log_info, XT_LOG_IPOPT, XT_LOG_MACDECODE, XT_LOG_TCPOPT, XT_LOG_TCPSEQ, XT_LOG_UID,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Log];

mod field {
    use super::*;
    pub const LEVEL: usize = offset_of!(xt_log_info, level);
    pub const LOGFLAGS: usize = offset_of!(xt_log_info, logflags);
    pub const PREFIX: usize = offset_of!(xt_log_info, prefix);
    /// The prefix field's size, its NUL included (it ends the struct).
    pub const PREFIX_LEN: usize = std::mem::size_of::<xt_log_info>() - PREFIX;
}

/// LOG_WARNING: the level iptables puts in when none is given, and the one
/// its save leaves out.
const DEFAULT_LEVEL: u8 = 4;

/// The syslog names xtopt_parse_sysloglevel knows (exact, case-sensitive).
const LEVEL_NAMES: &[(&str, u8)] = &[
    ("alert", 1),
    ("crit", 2),
    ("debug", 7),
    ("emerg", 0),
    ("error", 3),
    ("info", 6),
    ("notice", 5),
    ("panic", 0),
    ("warning", 4),
];

/// The flag options, each with its logflags bit, in save order.
const FLAGS: &[(&str, u32)] = &[
    ("log-tcp-sequence", XT_LOG_TCPSEQ),
    ("log-tcp-options", XT_LOG_TCPOPT),
    ("log-ip-options", XT_LOG_IPOPT),
    ("log-uid", XT_LOG_UID),
    ("log-macdecode", XT_LOG_MACDECODE),
];

/// Parses a syslog level as libxtables does: a number 0..=7 (base 0), else
/// one of the syslog names.
pub(crate) fn parse_log_level(s: &str) -> ExtResult<u8> {
    if let Some(v) = parse_uint(s, 0, 7) {
        return Ok(v as u8);
    }
    LEVEL_NAMES
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            format!("log level \"{s}\" unknown (expected 0-7, or alert, crit, debug, emerg, error, info, notice, panic, warning)")
        })
}

/// Checks a prefix string as XTTYPE_STRING with `.min = 1` and the LOG/NFLOG
/// parsers do, and returns the bytes that fit in a field of `size` bytes
/// (what strncpy keeps: at most `size - 1`, then the NUL).
pub(crate) fn prefix_bytes(ext: &str, opt: &str, s: &str, size: usize) -> ExtResult<Vec<u8>> {
    if s.is_empty() {
        return Err(format!(
            "{ext}: --{opt}: Argument must have a minimum length of 1 characters"
        ));
    }
    if s.contains('\n') {
        return Err("Newlines not allowed in --log-prefix".into());
    }
    let b = crate::text::to_bytes(s);
    let b = &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())];
    Ok(b[..b.len().min(size - 1)].to_vec())
}

struct Log;

impl Codec for Log {
    fn name(&self) -> &'static str {
        "LOG"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn revisions(&self, _: crate::rules::Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("log-level", Arg::One),
            opt("log-prefix", Arg::One),
            opt("log-tcp-sequence", Arg::None),
            opt("log-tcp-options", Arg::None),
            opt("log-ip-options", Arg::None),
            opt("log-uid", Arg::None),
            opt("log-macdecode", Arg::None),
        ];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_log_info>();
        p.u8(field::LEVEL, DEFAULT_LEVEL);
        let mut flags = 0u8;
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "LOG")?;
            no_invert(o, "LOG")?;
            match o.name {
                "log-level" => {
                    p.u8(field::LEVEL, parse_log_level(o.arg())?);
                }
                "log-prefix" => {
                    let b = prefix_bytes("LOG", o.name, o.arg(), field::PREFIX_LEN)?;
                    p.bytes(field::PREFIX, &b);
                }
                name => {
                    let (_, bit) = FLAGS
                        .iter()
                        .find(|(n, _)| *n == name)
                        .ok_or_else(|| super::unknown_option("LOG", o))?;
                    flags |= *bit as u8;
                }
            }
        }
        p.u8(field::LOGFLAGS, flags);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_log_info>())?;
        let prefix = r.cstr(field::PREFIX, field::PREFIX_LEN)?;
        if !prefix.is_empty() {
            out.push_str(" --log-prefix");
            super::save_string(out, prefix);
        }
        let level = r.u8(field::LEVEL)?;
        if level != DEFAULT_LEVEL {
            out.push_str(&format!(" --log-level {level}"));
        }
        let flags = u32::from(r.u8(field::LOGFLAGS)?);
        for (name, bit) in FLAGS {
            if flags & bit != 0 {
                out.push_str(" --");
                out.push_str(name);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::rules::{Family, IpMatch};

    fn ov(name: &'static str, arg: Option<&str>) -> OptValue<'static> {
        OptValue {
            name,
            invert: false,
            args: arg.map(|a| vec![a.to_string()]).unwrap_or_default().into(),
        }
    }

    fn parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        Log.parse(0, opts, &ctx)
    }

    fn save(data: &[u8]) -> String {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Log.save(0, data, &ctx, &mut out).expect("save");
        out
    }

    // Captured from the kernel after iptables-legacy-restore: the 32-byte
    // xt_log_info after the xt_entry_target header (no padding needed).
    // `-j LOG`
    const PLAIN: &str = "04 00 \
        000000000000000000000000000000000000000000000000000000000000"; // level 4, no flags, prefix ""
                                                                       // `--log-prefix "test: " --log-level 1`
    const TEST_ALERT: &str = "01 00 \
        746573743a20 000000000000000000000000000000000000000000000000"; // level 1, prefix "test: "
                                                                        // `--log-prefix abc_DEF-09 --log-level alert`
    const BARE: &str = "01 00 \
        6162635f4445462d3039 0000000000000000000000000000000000000000"; // prefix "abc_DEF-09"
                                                                        // `--log-prefix "0123456789012345678901234567890123" --log-level warning`
    const LONG: &str = "04 00 \
        3031323334353637383930313233343536373839303132333435363738 00"; // cut to 29 bytes + NUL
                                                                        // `--log-level 0x7 --log-tcp-sequence --log-tcp-options --log-ip-options --log-uid --log-macdecode`
    const ALL_FLAGS: &str = "07 2f \
        000000000000000000000000000000000000000000000000000000000000"; // level 7, flags 0x2f
                                                                       // `--log-level panic --log-uid`
    const PANIC_UID: &str = "00 08 \
        000000000000000000000000000000000000000000000000000000000000"; // level 0, XT_LOG_UID
                                                                       // `--log-level error --log-macdecode`
    const ERROR_MAC: &str = "03 20 \
        000000000000000000000000000000000000000000000000000000000000"; // level 3, XT_LOG_MACDECODE
                                                                       // `--log-prefix "it's"`
    const QUOTE: &str = "04 00 \
        69742773 0000000000000000000000000000000000000000000000000000"; // prefix "it's"
                                                                        // `--log-prefix "a\\b"` (restore unescapes to a\b)
    const BACKSLASH: &str = "04 00 \
        615c62 000000000000000000000000000000000000000000000000000000"; // prefix "a\b"

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(parse(&[]).unwrap(), hex(PLAIN));
        assert_eq!(
            parse(&[ov("log-prefix", Some("test: ")), ov("log-level", Some("1"))]).unwrap(),
            hex(TEST_ALERT)
        );
        assert_eq!(
            parse(&[
                ov("log-prefix", Some("abc_DEF-09")),
                ov("log-level", Some("alert"))
            ])
            .unwrap(),
            hex(BARE)
        );
        assert_eq!(
            parse(&[
                ov("log-prefix", Some("0123456789012345678901234567890123")),
                ov("log-level", Some("warning"))
            ])
            .unwrap(),
            hex(LONG)
        );
        let all: Vec<OptValue> = std::iter::once(ov("log-level", Some("0x7")))
            .chain(FLAGS.iter().map(|(n, _)| ov(n, None)))
            .collect();
        assert_eq!(parse(&all).unwrap(), hex(ALL_FLAGS));
        assert_eq!(
            parse(&[ov("log-level", Some("panic")), ov("log-uid", None)]).unwrap(),
            hex(PANIC_UID)
        );
        assert_eq!(
            parse(&[ov("log-level", Some("error")), ov("log-macdecode", None)]).unwrap(),
            hex(ERROR_MAC)
        );
        assert_eq!(
            parse(&[ov("log-prefix", Some("it's"))]).unwrap(),
            hex(QUOTE)
        );
        assert_eq!(
            parse(&[ov("log-prefix", Some("a\\b"))]).unwrap(),
            hex(BACKSLASH)
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(save(&hex(PLAIN)), "");
        assert_eq!(
            save(&hex(TEST_ALERT)),
            " --log-prefix \"test: \" --log-level 1"
        );
        assert_eq!(save(&hex(BARE)), " --log-prefix abc_DEF-09 --log-level 1");
        assert_eq!(
            save(&hex(LONG)),
            " --log-prefix 01234567890123456789012345678"
        );
        assert_eq!(
            save(&hex(ALL_FLAGS)),
            " --log-level 7 --log-tcp-sequence --log-tcp-options --log-ip-options --log-uid --log-macdecode"
        );
        assert_eq!(save(&hex(PANIC_UID)), " --log-level 0 --log-uid");
        assert_eq!(save(&hex(ERROR_MAC)), " --log-level 3 --log-macdecode");
        assert_eq!(save(&hex(QUOTE)), " --log-prefix \"it\\'s\"");
        assert_eq!(save(&hex(BACKSLASH)), " --log-prefix \"a\\\\b\"");
    }

    #[test]
    fn levels_as_libxtables_reads_them() {
        for (s, v) in [
            (" 3", 3),
            ("+5", 5),
            ("06", 6),
            ("emerg", 0),
            ("crit", 2),
            ("notice", 5),
            ("info", 6),
        ] {
            assert_eq!(parse_log_level(s).unwrap(), v, "{s}");
        }
        for s in ["8", "-1", "Alert", "warn", "", "0x8", "3x"] {
            assert!(parse_log_level(s).is_err(), "{s}");
        }
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(parse(&[ov("log-level", Some("bad"))])
            .unwrap_err()
            .contains("unknown"));
        assert!(parse(&[ov("log-prefix", Some(""))])
            .unwrap_err()
            .contains("minimum length"));
        assert!(parse(&[ov("log-prefix", Some("a\nb"))])
            .unwrap_err()
            .contains("Newlines"));
        let twice = [ov("log-uid", None), ov("log-uid", None)];
        assert!(parse(&twice).unwrap_err().contains("only be used once"));
        let twice = [ov("log-level", Some("1")), ov("log-level", Some("2"))];
        assert!(parse(&twice).unwrap_err().contains("only be used once"));
        let inv = OptValue {
            invert: true,
            ..ov("log-uid", None)
        };
        assert!(parse(&[inv]).unwrap_err().contains("cannot be inverted"));
    }

    #[test]
    fn short_payload_is_an_error() {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        assert!(Log.save(0, &hex("0400"), &ctx, &mut String::new()).is_err());
    }
}
