//! `-m rateest` (xt_rateest): compare the rate of a RATEEST estimator with
//! a fixed rate (absolute mode: `--rateest NAME`) or with another
//! estimator (relative mode: `--rateest1 A ... --rateest2 B`), in bytes or
//! packets per second, optionally as a difference (`--rateest-delta`).
//!
//! The estimators must exist when the rule is loaded: a RATEEST rule
//! (the target) creates them, earlier in the same restore or already in
//! the kernel.
//!
//! libxt_rateest uses the old parse interface: the rate after
//! `--rateest-bps[12]` / `--rateest-pps[12]` is optional and taken when
//! the next word does not start with `-` or `!`. Rates take the tc-style
//! units of iproute (`bit`, `kbit`, `KiBps`, ...; a bare number is bits
//! per second) and are stored in bytes per second.

use std::mem::{offset_of, size_of};

use super::{opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext};
use crate::rules::Family;
use crate::sys::bindings::{
    xt_rateest_match_info, IFNAMSIZ, XT_RATEEST_MATCH_ABS, XT_RATEEST_MATCH_BPS,
    XT_RATEEST_MATCH_DELTA, XT_RATEEST_MATCH_EQ, XT_RATEEST_MATCH_GT, XT_RATEEST_MATCH_INVERT,
    XT_RATEEST_MATCH_LT, XT_RATEEST_MATCH_PPS, XT_RATEEST_MATCH_REL,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Rateest];

mod field {
    use super::*;
    pub const NAME1: usize = offset_of!(xt_rateest_match_info, name1);
    pub const NAME2: usize = offset_of!(xt_rateest_match_info, name2);
    pub const FLAGS: usize = offset_of!(xt_rateest_match_info, flags);
    pub const MODE: usize = offset_of!(xt_rateest_match_info, mode);
    pub const BPS1: usize = offset_of!(xt_rateest_match_info, bps1);
    pub const PPS1: usize = offset_of!(xt_rateest_match_info, pps1);
    pub const BPS2: usize = offset_of!(xt_rateest_match_info, bps2);
    pub const PPS2: usize = offset_of!(xt_rateest_match_info, pps2);
}

const NAME_LEN: usize = IFNAMSIZ as usize;
const INVERT: u16 = XT_RATEEST_MATCH_INVERT as u16;
const ABS: u16 = XT_RATEEST_MATCH_ABS as u16;
const REL: u16 = XT_RATEEST_MATCH_REL as u16;
const DELTA: u16 = XT_RATEEST_MATCH_DELTA as u16;
const BPS: u16 = XT_RATEEST_MATCH_BPS as u16;
const PPS: u16 = XT_RATEEST_MATCH_PPS as u16;

const OPTIONS: &[OptSpec] = &[
    opt("rateest1", Arg::One),
    opt("rateest", Arg::One),
    opt("rateest2", Arg::One),
    opt("rateest-bps1", Arg::Optional),
    opt("rateest-pps1", Arg::Optional),
    opt("rateest-bps2", Arg::Optional),
    opt("rateest-pps2", Arg::Optional),
    opt("rateest-bps", Arg::Optional),
    opt("rateest-pps", Arg::Optional),
    opt("rateest-delta", Arg::None),
    opt("rateest-lt", Arg::None),
    opt("rateest-gt", Arg::None),
    opt("rateest-eq", Arg::None),
];

/// The rate units of iproute (and libxt_rateest), in bits per second;
/// matched without regard to case, in this order.
const SUFFIXES: &[(&str, f64)] = &[
    ("bit", 1.),
    ("Kibit", 1024.),
    ("kbit", 1000.),
    ("Mibit", 1024. * 1024.),
    ("mbit", 1000000.),
    ("Gibit", 1024. * 1024. * 1024.),
    ("gbit", 1000000000.),
    ("Tibit", 1024. * 1024. * 1024. * 1024.),
    ("tbit", 1000000000000.),
    ("Bps", 8.),
    ("KiBps", 8. * 1024.),
    ("KBps", 8000.),
    ("MiBps", 8. * 1024. * 1024.),
    ("MBps", 8000000.),
    ("GiBps", 8. * 1024. * 1024. * 1024.),
    ("GBps", 8000000000.),
    ("TiBps", 8. * 1024. * 1024. * 1024. * 1024.),
    ("TBps", 8000000000000.),
];

/// C `strtod` on a prefix of `s`: leading white space, a sign, then a
/// decimal number (digits, `.`, exponent), a hexadecimal one (`0x`, `p`
/// exponent), `inf`/`infinity` or `nan`. Returns the value and the rest;
/// `None` when no number starts the string.
pub(crate) fn c_strtod(s: &str) -> Option<(f64, &str)> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let b = t.as_bytes();
    let mut i = 0;
    let neg = match b.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let sign = |v: f64| if neg { -v } else { v };
    let rest = &t[i..];
    let lower = rest.to_ascii_lowercase();
    if lower.starts_with("infinity") {
        return Some((sign(f64::INFINITY), &rest[8..]));
    }
    if lower.starts_with("inf") {
        return Some((sign(f64::INFINITY), &rest[3..]));
    }
    if lower.starts_with("nan") {
        let mut end = 3;
        if let Some(close) = rest[3..].strip_prefix('(').and_then(|r| r.find(')')) {
            let inner = &rest[4..4 + close];
            if inner
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_')
            {
                end = 4 + close + 1;
            }
        }
        return Some((f64::NAN, &rest[end..]));
    }
    let rb = rest.as_bytes();
    let hex = rb.len() > 2
        && rb[0] == b'0'
        && (rb[1] | 0x20) == b'x'
        && (rb[2].is_ascii_hexdigit()
            || (rb[2] == b'.' && rb.get(3).is_some_and(|c| c.is_ascii_hexdigit())));
    if hex {
        let (v, used) = hex_float(&rest[2..]);
        return Some((sign(v), &rest[2 + used..]));
    }
    // Decimal: digits [. digits] [e [sign] digits], at least one digit.
    let digits = |from: usize| rb[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let int = digits(0);
    let mut end = int;
    let mut frac = 0;
    if rb.get(end) == Some(&b'.') {
        frac = digits(end + 1);
        end += 1 + frac;
    }
    if int + frac == 0 {
        return None;
    }
    if matches!(rb.get(end), Some(b'e' | b'E')) {
        let mut j = end + 1;
        if matches!(rb.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp = digits(j);
        if exp > 0 {
            end = j + exp;
        }
    }
    let text = &rest[..end];
    let v: f64 = text.parse().ok()?;
    Some((sign(v), &rest[end..]))
}

/// The hexadecimal part of strtod after `0x`: hex digits with an optional
/// point, then an optional binary exponent. Returns the value and the
/// bytes used.
fn hex_float(s: &str) -> (f64, usize) {
    let b = s.as_bytes();
    let mut mant: u128 = 0;
    let mut exp: i64 = 0;
    let mut i = 0;
    let mut seen_point = false;
    while i < b.len() {
        match b[i] {
            c if c.is_ascii_hexdigit() => {
                let d = u128::from((c as char).to_digit(16).unwrap_or(0));
                if mant >> 120 == 0 {
                    mant = mant << 4 | d;
                    if seen_point {
                        exp -= 4;
                    }
                } else if !seen_point {
                    exp += 4;
                }
            }
            b'.' if !seen_point => seen_point = true,
            _ => break,
        }
        i += 1;
    }
    if matches!(b.get(i), Some(b'p' | b'P')) {
        let mut j = i + 1;
        let neg = match b.get(j) {
            Some(b'-') => {
                j += 1;
                true
            }
            Some(b'+') => {
                j += 1;
                false
            }
            _ => false,
        };
        let n = b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n > 0 {
            let e: i64 = s[j..j + n].parse().unwrap_or(i64::MAX / 2);
            exp += if neg { -e } else { e };
            i = j + n;
        }
    }
    let v = mant as f64 * 2f64.powi(exp.clamp(-2000, 2000) as i32);
    (v, i)
}

/// rateest_get_rate: a number with an optional unit (none means bits per
/// second), in bytes per second. iptables stores a rate that does not fit
/// 32 bits as whatever the C conversion gives; such rates are refused
/// here.
pub(crate) fn parse_rate(s: &str) -> ExtResult<u32> {
    let bad = || {
        format!("rateest: could not parse rate `{s}': expected a number with an optional unit (bit, kbit, Mibit, Bps, KBps, ...)")
    };
    let (bps, rest) = c_strtod(s).ok_or_else(bad)?;
    let scale = if rest.is_empty() {
        1.
    } else {
        SUFFIXES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(rest))
            .map(|(_, f)| *f)
            .ok_or_else(bad)?
    };
    let rate = bps * scale / 8.;
    if !(0. ..4294967296.).contains(&rate) {
        return Err(format!(
            "rateest: rate `{s}' is out of range: at most 4294967295 bytes per second"
        ));
    }
    Ok(rate as u32)
}

/// rateest_print_rate, not numeric: bits per second, as Mbit from 10^9
/// on, Kbit from 10^6 on, else bit, rounded as printf's `%.0f` does.
fn save_rate(out: &mut String, rate: u32) {
    let tmp = f64::from(rate) * 8.;
    if tmp >= 1000. * 1000000. {
        out.push_str(&format!(" {:.0}Mbit", tmp / 1000000.));
    } else if tmp >= 1000. * 1000. {
        out.push_str(&format!(" {:.0}Kbit", tmp / 1000.));
    } else {
        out.push_str(&format!(" {tmp:.0}bit"));
    }
}

fn save_mode(out: &mut String, flags: u16, mode: u16) -> ExtResult<()> {
    if flags & INVERT != 0 {
        out.push_str(" !");
    }
    out.push_str(match u32::from(mode) {
        XT_RATEEST_MATCH_EQ => " --rateest-eq",
        XT_RATEEST_MATCH_LT => " --rateest-lt",
        XT_RATEEST_MATCH_GT => " --rateest-gt",
        // libxt_rateest exits (status 1) here.
        m => return Err(format!("rateest: unknown comparison mode {m}")),
    });
    Ok(())
}

/// __rateest_save_rate for bps (`numeric` false) or pps.
fn save_rates(
    out: &mut String,
    flags: u16,
    mode: u16,
    name: &str,
    r: [u32; 2],
    numeric: bool,
) -> ExtResult<()> {
    let rate = |out: &mut String, v: u32| {
        if numeric {
            out.push_str(&format!(" {v}"));
        } else {
            save_rate(out, v);
        }
    };
    if flags & DELTA != 0 {
        out.push_str(&format!(" --rateest-{name}1"));
        rate(out, r[0]);
        save_mode(out, flags, mode)?;
        out.push_str(&format!(" --rateest-{name}2"));
    } else {
        save_mode(out, flags, mode)?;
        out.push_str(&format!(" --rateest-{name}"));
    }
    if flags & (ABS | DELTA) != 0 {
        rate(out, r[1]);
    }
    Ok(())
}

struct Rateest;

impl Codec for Rateest {
    fn name(&self) -> &'static str {
        "rateest"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        OPTIONS
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_rateest_match_info>();
        let mut flags = 0u16;
        // Option ids already used (libxt_rateest's own `*flags`).
        let mut seen: Vec<&str> = Vec::new();
        for o in opts {
            // The canonical option of an alias, and its "can't be
            // inverted" name (None: `!` allowed).
            let (id, inv_name) = match o.name {
                "rateest1" | "rateest" => ("rateest1", Some("rateest")),
                "rateest2" => ("rateest2", Some("rateest")),
                "rateest-bps1" => ("rateest-bps1", Some("rateest-bps")),
                "rateest-pps1" => ("rateest-pps1", Some("rateest-pps")),
                "rateest-bps2" | "rateest-bps" => ("rateest-bps2", Some("rateest-bps")),
                "rateest-pps2" | "rateest-pps" => ("rateest-pps2", Some("rateest-pps")),
                "rateest-delta" => ("rateest-delta", Some("rateest-delta")),
                "rateest-lt" | "rateest-gt" | "rateest-eq" => (o.name, None),
                _ => return Err(super::unknown_option("rateest", o)),
            };
            if let (true, Some(n)) = (o.invert, inv_name) {
                return Err(format!("rateest: {n} can't be inverted"));
            }
            if seen.contains(&id) {
                return Err(match inv_name {
                    Some(_) => format!("rateest: can't specify --{id} twice"),
                    None => "rateest: can't specify lt/gt/eq twice".into(),
                });
            }
            seen.push(id);
            let arg = o.args.first().map(|a| &**a);
            match id {
                "rateest1" | "rateest2" => {
                    let off = if id == "rateest1" {
                        field::NAME1
                    } else {
                        flags |= REL;
                        field::NAME2
                    };
                    // strncpy of at most IFNAMSIZ - 1 bytes.
                    let name = o.arg_bytes();
                    p.bytes(off, &name[..name.len().min(NAME_LEN - 1)]);
                }
                "rateest-bps1" | "rateest-bps2" => {
                    flags |= BPS;
                    if let Some(a) = arg {
                        let off = if id == "rateest-bps1" {
                            field::BPS1
                        } else {
                            field::BPS2
                        };
                        p.u32(off, parse_rate(a)?);
                    }
                }
                "rateest-pps1" | "rateest-pps2" => {
                    flags |= PPS;
                    if let Some(a) = arg {
                        let v = super::parse_uint(a, 0, u32::MAX.into()).ok_or_else(|| {
                            format!("rateest: could not parse pps `{a}': expected 0 to 4294967295")
                        })?;
                        let off = if id == "rateest-pps1" {
                            field::PPS1
                        } else {
                            field::PPS2
                        };
                        p.u32(off, v as u32);
                    }
                }
                "rateest-delta" => flags |= DELTA,
                _ => {
                    let mode = match id {
                        "rateest-eq" => XT_RATEEST_MATCH_EQ,
                        "rateest-lt" => XT_RATEEST_MATCH_LT,
                        _ => XT_RATEEST_MATCH_GT,
                    };
                    p.u16(field::MODE, mode as u16);
                    if o.invert {
                        flags |= INVERT;
                    }
                }
            }
        }
        // iptables accepts a match without an estimator name (or with an
        // empty one) and saves it as `--rateest1 ` followed by the next
        // option, which then loads as the name; the kernel finds no
        // estimator without a name and refuses the rule anyway. Refused here.
        for (opt, off) in [("rateest1", field::NAME1), ("rateest2", field::NAME2)] {
            let required = opt == "rateest1" || flags & REL != 0;
            if required && p.as_bytes()[off] == 0 {
                return Err(format!(
                    "rateest: --{opt} needs an estimator name (the kernel finds no rate estimator without one)"
                ));
            }
        }
        if flags & REL == 0 {
            flags |= ABS;
        }
        p.u16(field::FLAGS, flags);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<xt_rateest_match_info>())?;
        let flags = r.u16(field::FLAGS)?;
        let mode = r.u16(field::MODE)?;
        let name1 = crate::text::from_bytes(r.cstr(field::NAME1, NAME_LEN)?).into_owned();
        let name2 = crate::text::from_bytes(r.cstr(field::NAME2, NAME_LEN)?).into_owned();
        let bps = [r.u32(field::BPS1)?, r.u32(field::BPS2)?];
        let pps = [r.u32(field::PPS1)?, r.u32(field::PPS2)?];
        let rates = |out: &mut String| -> ExtResult<()> {
            if flags & BPS != 0 {
                save_rates(out, flags, mode, "bps", bps, false)?;
            }
            if flags & PPS != 0 {
                save_rates(out, flags, mode, "pps", pps, true)?;
            }
            Ok(())
        };
        if flags & DELTA != 0 {
            out.push_str(" --rateest-delta");
        }
        if flags & REL != 0 {
            out.push_str(&format!(" --rateest1 {name1}"));
            rates(out)?;
            out.push_str(&format!(" --rateest2 {name2}"));
        } else {
            out.push_str(&format!(" --rateest {name1}"));
            rates(out)?;
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
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        Rateest.parse(0, opts, &ctx).map(|mut v| {
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
        Rateest.save(0, data, &ctx, &mut out).map(|_| out)
    }

    // Captured from the kernel after iptables-legacy-restore of
    // `-m rateest --rateest RE1 ! --rateest-gt --rateest-bps 5kbit` (with a
    // RATEEST estimator RE1 in place).
    const ABS_BPS: &str = "
        52453100000000000000000000000000    # name1 RE1
        00000000000000000000000000000000    # name2
        1300                                # flags INVERT|ABS|BPS
        0300                                # mode GT
        00000000                            # bps1
        00000000                            # pps1
        71020000                            # bps2 625 bytes/s
        00000000                            # pps2
        00000000                            # alignment of est1
        0000000000000000                    # est1 (kernel only, zeroed)
        0000000000000000                    # est2";

    // `-m rateest --rateest-delta --rateest1 RE1 --rateest-pps1 0 --rateest-lt --rateest-pps2 42 --rateest2 RE2`
    const DELTA_REL_PPS: &str = "
        52453100000000000000000000000000    # name1 RE1
        52453200000000000000000000000000    # name2 RE2
        2c00                                # flags REL|DELTA|PPS
        0200                                # mode LT
        00000000                            # bps1
        00000000                            # pps1 0
        00000000                            # bps2
        2a000000                            # pps2 42
        00000000                            # alignment of est1
        0000000000000000                    # est1
        0000000000000000                    # est2";

    // ip6tables: `-m rateest --rateest1 RE1 --rateest-eq --rateest-bps --rateest-pps --rateest2 RE2`
    const REL_BOTH_V6: &str = "
        52453100000000000000000000000000    # name1 RE1
        52453200000000000000000000000000    # name2 RE2
        3400                                # flags REL|BPS|PPS
        0100                                # mode EQ
        00000000 00000000 00000000 00000000 # rates: none given
        00000000                            # alignment of est1
        0000000000000000 0000000000000000   # est1, est2";

    #[test]
    fn parse_matches_kernel_bytes() {
        let opts = [
            ov("rateest", false, &["RE1"]),
            ov("rateest-gt", true, &[]),
            ov("rateest-bps", false, &["5kbit"]),
        ];
        assert_eq!(parse(Family::V4, &opts).unwrap(), fixture(ABS_BPS));
        let opts = [
            ov("rateest-delta", false, &[]),
            ov("rateest1", false, &["RE1"]),
            ov("rateest-pps1", false, &["0"]),
            ov("rateest-lt", false, &[]),
            ov("rateest-pps2", false, &["42"]),
            ov("rateest2", false, &["RE2"]),
        ];
        assert_eq!(parse(Family::V4, &opts).unwrap(), fixture(DELTA_REL_PPS));
        let opts = [
            ov("rateest1", false, &["RE1"]),
            ov("rateest-eq", false, &[]),
            ov("rateest-bps", false, &[]),
            ov("rateest-pps", false, &[]),
            ov("rateest2", false, &["RE2"]),
        ];
        assert_eq!(parse(Family::V6, &opts).unwrap(), fixture(REL_BOTH_V6));
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(
            save(Family::V4, &fixture(ABS_BPS)).unwrap(),
            " --rateest RE1 ! --rateest-gt --rateest-bps 5000bit"
        );
        assert_eq!(
            save(Family::V4, &fixture(DELTA_REL_PPS)).unwrap(),
            " --rateest-delta --rateest1 RE1 --rateest-pps1 0 --rateest-lt --rateest-pps2 42 --rateest2 RE2"
        );
        assert_eq!(
            save(Family::V6, &fixture(REL_BOTH_V6)).unwrap(),
            " --rateest1 RE1 --rateest-eq --rateest-bps --rateest-eq --rateest-pps --rateest2 RE2"
        );
    }

    #[test]
    fn rates_follow_libxt_rateest() {
        assert_eq!(parse_rate("8").unwrap(), 1);
        assert_eq!(parse_rate("8bit").unwrap(), 1);
        assert_eq!(parse_rate("1KiBps").unwrap(), 1024);
        assert_eq!(parse_rate("1.5mbit").unwrap(), 187500);
        assert_eq!(parse_rate(" 1e3Bps").unwrap(), 1000);
        assert_eq!(parse_rate("0x10").unwrap(), 2);
        assert_eq!(parse_rate("15").unwrap(), 1, "truncated, as C converts");
        assert_eq!(c_strtod("5e"), Some((5., "e")));
        assert_eq!(c_strtod(".5x"), Some((0.5, "x")));
        assert_eq!(c_strtod("0x1.8p1"), Some((3., "")));
        assert_eq!(c_strtod("x"), None);
        let mut out = String::new();
        for r in [
            0u32,
            1,
            124_999,
            125_000,
            125_062_500,
            125_000_000,
            u32::MAX,
        ] {
            save_rate(&mut out, r);
        }
        assert_eq!(
            out,
            " 0bit 8bit 999992bit 1000Kbit 1000Mbit 1000Mbit 34360Mbit"
        );
    }

    #[test]
    fn a_missing_or_empty_estimator_name_is_refused() {
        // iptables accepts both and saves `--rateest1 ` with nothing after it.
        let no_name1 = parse(
            Family::V4,
            &[
                ov("rateest2", false, &["RE2"]),
                ov("rateest-gt", false, &[]),
                ov("rateest-bps1", false, &["1gbit"]),
                ov("rateest-pps2", false, &["16"]),
            ],
        );
        assert!(no_name1
            .unwrap_err()
            .contains("--rateest1 needs an estimator name"));
        let empty_name2 = parse(
            Family::V4,
            &[
                ov("rateest1", false, &["RE1"]),
                ov("rateest2", false, &[""]),
                ov("rateest-gt", false, &[]),
                ov("rateest-bps1", false, &[]),
                ov("rateest-bps2", false, &[]),
            ],
        );
        assert!(empty_name2
            .unwrap_err()
            .contains("--rateest2 needs an estimator name"));
    }

    #[test]
    fn bad_values_are_refused() {
        for rate in [
            "x",
            "5kb",
            "5 kbit",
            "inf",
            "nan",
            "4294967296Bps",
            "1tbit0",
        ] {
            assert!(parse_rate(rate).is_err(), "{rate} accepted");
        }
        for (o, extra) in [
            (ov("rateest", true, &["RE1"]), None),
            (ov("rateest-bps", true, &[]), None),
            (ov("rateest-delta", true, &[]), None),
            (ov("rateest-pps", false, &["-1"]), None),
            (ov("rateest-pps", false, &["4294967296"]), None),
            (
                ov("rateest1", false, &["A"]),
                Some(ov("rateest", false, &["B"])),
            ),
            (
                ov("rateest-lt", false, &[]),
                Some(ov("rateest-lt", false, &[])),
            ),
            (
                ov("rateest-bps2", false, &[]),
                Some(ov("rateest-bps", false, &[])),
            ),
        ] {
            let mut opts = vec![o.clone()];
            opts.extend(extra);
            assert!(parse(Family::V4, &opts).is_err(), "{o:?} accepted");
        }
        let mut none = fixture(ABS_BPS);
        none[34] = 0;
        assert!(save(Family::V4, &none).is_err(), "mode NONE");
        assert!(save(Family::V4, &[0; 40]).is_err(), "short payload");
    }
}
