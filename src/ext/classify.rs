//! `-j CLASSIFY` (xt_CLASSIFY, `xt_classify_target_info`): set
//! skb->priority to a tc class `MAJOR:MINOR`. One revision, both families;
//! the kernel allows it in the mangle table only.

use std::mem::{offset_of, size_of};

use super::{
    no_invert, once, opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::sys::bindings::xt_classify_target_info;

pub(super) static CODECS: &[&dyn Codec] = &[&Classify];

mod field {
    use super::*;
    pub const PRIORITY: usize = offset_of!(xt_classify_target_info, priority);
}

/// One `%x` conversion of glibc's scanf: leading white space, an optional
/// sign, an optional `0x` (taken even when no digit follows), hex digits.
/// The value is strtoul's (saturating at u64::MAX, negated for `-`), cut
/// to 32 bits as scanf stores it in an `unsigned int`. Returns the value
/// and the rest, or `None` when nothing converts.
fn scan_hex(s: &str) -> Option<(u32, &str)> {
    let s = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let b = s.as_bytes();
    let (prefixed, s) = if b.len() >= 2 && b[0] == b'0' && (b[1] | 0x20) == b'x' {
        (true, &s[2..])
    } else {
        (false, s)
    };
    let end = s
        .bytes()
        .position(|c| !c.is_ascii_hexdigit())
        .unwrap_or(s.len());
    if end == 0 && !prefixed {
        return None;
    }
    let v = match u64::from_str_radix(&s[..end], 16) {
        Ok(v) if neg => v.wrapping_neg(),
        Ok(v) => v,
        Err(_) if end == 0 => 0,
        Err(_) => u64::MAX,
    };
    Some((v as u32, &s[end..]))
}

/// `sscanf(s, "%x:%x")` must convert both numbers; anything after the
/// second is ignored, as in iptables. The class is TC_H_MAKE(major << 16,
/// minor).
fn parse_class(s: &str) -> ExtResult<u32> {
    let bad = || format!("Bad class value \"{s}\"");
    let (major, rest) = scan_hex(s).ok_or_else(bad)?;
    let rest = rest.strip_prefix(':').ok_or_else(bad)?;
    let (minor, _) = scan_hex(rest).ok_or_else(bad)?;
    Ok((major << 16) | (minor & 0xffff))
}

struct Classify;

impl Codec for Classify {
    fn name(&self) -> &'static str {
        "CLASSIFY"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn revisions(&self, _: crate::rules::Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[opt("set-class", Arg::One)];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_classify_target_info>();
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "CLASSIFY")?;
            no_invert(o, "CLASSIFY")?;
            match o.name {
                "set-class" => p.u32(field::PRIORITY, parse_class(o.arg())?),
                _ => return Err(super::unknown_option("CLASSIFY", o)),
            };
        }
        if seen.is_empty() {
            return Err("CLASSIFY: option \"--set-class\" must be specified".into());
        }
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<xt_classify_target_info>())?;
        let prio = r.u32(field::PRIORITY)?;
        out.push_str(&format!(
            " --set-class {:04x}:{:04x}",
            prio >> 16,
            prio & 0xffff
        ));
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

    fn ctx_do<T>(f: impl FnOnce(&RuleContext) -> T) -> T {
        let ip = IpMatch::any(Family::V4);
        f(&RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "mangle",
        })
    }

    fn parse(arg: &str) -> ExtResult<Vec<u8>> {
        ctx_do(|c| Classify.parse(0, &[ov("set-class", arg)], c))
    }

    fn save(data: &[u8]) -> String {
        let mut out = String::new();
        ctx_do(|c| Classify.save(0, data, c, &mut out)).expect("save");
        out
    }

    // Captured from the kernel after iptables-legacy-restore (IPv6: same
    // bytes): xt_classify_target_info is the u32 priority, host order.
    const CASES: &[(&str, &str, &str)] = &[
        // --set-class argument, kernel bytes, iptables-legacy-save
        ("1:10", "10000100", " --set-class 0001:0010"),
        ("0:0", "00000000", " --set-class 0000:0000"),
        ("ffff:ffff", "ffffffff", " --set-class ffff:ffff"),
        ("0x1:0x2", "02000100", " --set-class 0001:0002"),
        ("10:abcd", "cdab1000", " --set-class 0010:abcd"),
        // scanf ignores what follows the second number
        ("1:2junk", "02000100", " --set-class 0001:0002"),
        // the major number keeps its low 16 bits, the minor too
        ("12345:1", "01004523", " --set-class 2345:0001"),
        ("1:123456", "56340100", " --set-class 0001:3456"),
        // white space before each number, signs
        (" 2: 3", "03000200", " --set-class 0002:0003"),
        ("+4:-1", "ffff0400", " --set-class 0004:ffff"),
    ];

    #[test]
    fn parse_matches_kernel_bytes() {
        for (arg, bytes, _) in CASES {
            assert_eq!(parse(arg).unwrap(), hex(bytes), "{arg}");
        }
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        for (arg, bytes, text) in CASES {
            assert_eq!(save(&hex(bytes)), *text, "{arg}");
        }
    }

    #[test]
    fn scanf_corner_cases() {
        // Checked against glibc's sscanf("%x:%x").
        assert_eq!(parse("0x:1").unwrap(), hex("01000000"));
        assert_eq!(parse("-0x1:2").unwrap(), hex("0200ffff"));
        assert_eq!(parse("99999999999999999999:1").unwrap(), hex("0100ffff"));
        assert_eq!(parse("1:0xg").unwrap(), hex("00000100"));
    }

    #[test]
    fn bad_input_is_refused() {
        for bad in ["1", "1:", ":1", "1 :2", "x:1", "1:-", "", "0x 1:2"] {
            assert_eq!(
                parse(bad).unwrap_err(),
                format!("Bad class value \"{bad}\""),
                "{bad}"
            );
        }
        let empty: &[OptValue] = &[];
        assert!(ctx_do(|c| Classify.parse(0, empty, c))
            .unwrap_err()
            .contains("must be specified"));
        let twice = [ov("set-class", "1:1"), ov("set-class", "1:2")];
        assert!(ctx_do(|c| Classify.parse(0, &twice, c))
            .unwrap_err()
            .contains("only be used once"));
        let inv = [OptValue {
            invert: true,
            ..ov("set-class", "1:1")
        }];
        assert!(ctx_do(|c| Classify.parse(0, &inv, c))
            .unwrap_err()
            .contains("cannot be inverted"));
        assert!(ctx_do(|c| Classify.save(0, &[1, 2], c, &mut String::new())).is_err());
    }
}
