//! `-j RATEEST` (xt_RATEEST, `xt_rateest_target_info`): feed a named rate
//! estimator. The interval and the averaging time are given as times and
//! stored as the kernel's exponents (`interval` −2..=3 for 250 ms..8 s,
//! `ewma_log`). One revision, both families. The kernel's estimator pointer
//! after them lies beyond the target's user size and reads back as zero.

use std::mem::{offset_of, size_of};

use super::{
    no_invert, once, opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::sys::bindings::xt_rateest_target_info;

pub(super) static CODECS: &[&dyn Codec] = &[&RateEstTarget];

mod field {
    use super::*;
    pub const NAME: usize = offset_of!(xt_rateest_target_info, name);
    pub const NAME_LEN: usize = 16;
    /// `__s8`: log2 of the interval in quarter seconds.
    pub const INTERVAL: usize = offset_of!(xt_rateest_target_info, interval);
    pub const EWMA_LOG: usize = offset_of!(xt_rateest_target_info, ewma_log);
    /// Where the kernel-only part starts (the user size).
    pub const USER: usize = offset_of!(xt_rateest_target_info, est);
}

/// Microseconds per second, libxt_RATEEST's TIME_UNITS_PER_SEC.
const UNITS: f64 = 1_000_000.0;

/// The longest prefix of `s` that C's strtod converts, and its value
/// (leading white space, sign, decimal or hexadecimal digits with a point
/// and exponent, `inf`, `infinity`, `nan`). `None` when nothing converts.
pub(crate) fn strtod_prefix(s: &str) -> Option<(f64, &str)> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let sign = |v: f64| if neg { -v } else { v };
    let lower = t.to_ascii_lowercase();
    for (word, v) in [
        ("infinity", f64::INFINITY),
        ("inf", f64::INFINITY),
        ("nan", f64::NAN),
    ] {
        if lower.starts_with(word) {
            return Some((sign(v), &t[word.len()..]));
        }
    }
    let b = t.as_bytes();
    let digits = |from: usize, hex: bool| {
        b[from..]
            .iter()
            .take_while(|c| {
                if hex {
                    c.is_ascii_hexdigit()
                } else {
                    c.is_ascii_digit()
                }
            })
            .count()
    };
    let hex = b.len() > 2 && b[0] == b'0' && (b[1] | 0x20) == b'x' && {
        let i = digits(2, true);
        i > 0 || (b.get(2) == Some(&b'.') && digits(3, true) > 0)
    };
    let start = if hex { 2 } else { 0 };
    let int_len = digits(start, hex);
    let mut end = start + int_len;
    let mut frac_len = 0;
    if b.get(end) == Some(&b'.') {
        frac_len = digits(end + 1, hex);
        if int_len + frac_len > 0 {
            end += 1 + frac_len;
        }
    }
    if int_len + frac_len == 0 {
        return None;
    }
    let mantissa_end = end;
    // An exponent counts only when digits follow it.
    let exp_char = if hex { b'p' } else { b'e' };
    let mut exp = 0i32;
    if b.get(end).map(|c| c | 0x20) == Some(exp_char) {
        let mut j = end + 1;
        let eneg = match b.get(j) {
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
        let n = digits(j, false);
        if n > 0 {
            let e: i32 = t[j..j + n].parse().unwrap_or(i32::MAX);
            exp = if eneg { -e } else { e };
            end = j + n;
        }
    }
    let value = if hex {
        let m: String = t[start..mantissa_end]
            .chars()
            .filter(|c| *c != '.')
            .collect();
        let mut v = 0f64;
        for c in m.chars() {
            v = v * 16.0 + f64::from(c.to_digit(16)?);
        }
        v * 2f64.powi(exp.saturating_sub(4 * frac_len as i32))
    } else {
        let text = format!("{}e{}", &t[..mantissa_end], exp);
        text.parse::<f64>().ok()?
    };
    Some((sign(value), &t[end..]))
}

/// RATEEST_get_time: a number of microseconds, or of seconds, milliseconds
/// or microseconds with a unit. iptables then stores the double in an
/// unsigned int; values that do not fit (negative, too large, NaN) are
/// undefined there and refused here.
fn parse_time(s: &str, what: &str) -> ExtResult<u32> {
    let bad = || format!("RATEEST: bad {what} value \"{s}\"");
    let (t, unit) = strtod_prefix(s).ok_or_else(bad)?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" => 1.0,
        "s" | "sec" | "secs" => UNITS,
        "ms" | "msec" | "msecs" => UNITS / 1000.0,
        "us" | "usec" | "usecs" => 1.0,
        _ => return Err(bad()),
    };
    let t = t * scale;
    if !(0.0..4_294_967_296.0).contains(&t) {
        return Err(format!(
            "RATEEST: {what} value \"{s}\" is out of range: 0 to 4294967295 microseconds"
        ));
    }
    Ok(t as u32)
}

/// RATEEST_final_check: the kernel's exponents from the two times.
fn exponents(interval: u32, ewma: u32) -> ExtResult<(i8, u8)> {
    let i = (0..=5u32)
        .find(|i| interval <= (1 << i) * 250_000)
        .ok_or("RATEEST: interval value is too large")?;
    let mut e = 1u32;
    while e < 32 {
        // `1 << 31` is INT_MIN in C.
        let d = if e == 31 {
            -2_147_483_648.0
        } else {
            f64::from(1u32 << e)
        };
        let w = 1.0 - 1.0 / d;
        if f64::from(interval) / -w.ln() > f64::from(ewma) {
            break;
        }
        e += 1;
    }
    e -= 1;
    if e == 0 || e >= 31 {
        return Err("RATEEST: ewmalog value is out of range".into());
    }
    Ok((i as i8 - 2, e as u8))
}

/// RATEEST_print_time.
fn print_time(out: &mut String, t: u32) {
    let f = f64::from(t);
    if f >= UNITS {
        out.push_str(&format!(" {:.1}s", f / UNITS));
    } else if f >= UNITS / 1000.0 {
        out.push_str(&format!(" {:.1}ms", f / (UNITS / 1000.0)));
    } else {
        out.push_str(&format!(" {t}us"));
    }
}

struct RateEstTarget;

impl Codec for RateEstTarget {
    fn name(&self) -> &'static str {
        "RATEEST"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn revisions(&self, _: crate::rules::Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("rateest-name", Arg::One),
            opt("rateest-interval", Arg::One),
            opt("rateest-ewmalog", Arg::One),
        ];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_rateest_target_info>();
        let (mut interval, mut ewma) = (0u32, 0u32);
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "RATEEST")?;
            no_invert(o, "RATEEST")?;
            match o.name {
                "rateest-name" => {
                    // iptables cuts a longer name to 15 bytes; refused here.
                    if o.arg_bytes().len() >= field::NAME_LEN {
                        return Err(format!(
                            "RATEEST: name `{}' is longer than {} characters",
                            o.arg(),
                            field::NAME_LEN - 1
                        ));
                    }
                    p.bytes(field::NAME, &o.arg_bytes());
                }
                "rateest-interval" => interval = parse_time(o.arg(), "interval")?,
                "rateest-ewmalog" => ewma = parse_time(o.arg(), "ewmalog")?,
                _ => return Err(super::unknown_option("RATEEST", o)),
            }
        }
        // The final check runs before the mandatory-option check, as in
        // iptables (so a missing time reports a range error).
        let (i, e) = exponents(interval, ewma)?;
        for mand in ["rateest-name", "rateest-interval", "rateest-ewmalog"] {
            if !seen.contains(&mand) {
                return Err(format!("RATEEST: option \"--{mand}\" must be specified"));
            }
        }
        p.u8(field::INTERVAL, i as u8).u8(field::EWMA_LOG, e);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, field::USER)?;
        let name = r.cstr(field::NAME, field::NAME_LEN)?;
        let shift = i32::from(r.u8(field::INTERVAL)? as i8) + 2;
        let ewma = u32::from(r.u8(field::EWMA_LOG)?);
        if !(0..31).contains(&shift) || ewma > 31 {
            return Err(format!(
                "RATEEST: interval {} / ewmalog {ewma} out of range",
                shift - 2
            ));
        }
        // iptables' int and unsigned arithmetic, wrapping as it does.
        let interval = (1_000_000i32.wrapping_shl(shift as u32) / 4) as u32;
        let ewma_time = interval.wrapping_mul(1u32 << ewma);
        out.push_str(" --rateest-name ");
        out.push_str(&crate::text::from_bytes(name));
        out.push_str(" --rateest-interval");
        print_time(out, interval);
        out.push_str(" --rateest-ewmalog");
        print_time(out, ewma_time);
        Ok(())
    }
}

const _: () = assert!(size_of::<xt_rateest_target_info>() > field::USER);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::rules::{Family, IpMatch};

    fn opts(line: &str) -> Vec<OptValue<'static>> {
        let w: Vec<&str> = line.split_whitespace().collect();
        w.chunks(2)
            .map(|c| OptValue {
                name: match c[0] {
                    "--rateest-name" => "rateest-name",
                    "--rateest-interval" => "rateest-interval",
                    _ => "rateest-ewmalog",
                },
                invert: false,
                args: vec![c[1].to_string()].into(),
            })
            .collect()
    }

    fn with_ctx<T>(f: impl FnOnce(&RuleContext) -> T) -> T {
        let ip = IpMatch::any(Family::V4);
        f(&RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "mangle",
        })
    }

    fn parse(line: &str) -> ExtResult<Vec<u8>> {
        with_ctx(|c| RateEstTarget.parse(0, &opts(line), c))
    }

    fn save(data: &[u8]) -> String {
        let mut out = String::new();
        with_ctx(|c| RateEstTarget.save(0, data, c, &mut out)).expect("save");
        out
    }

    /// name[16], interval (s8), ewma_log, then zeros to the struct size.
    fn info(name_hex: &str, tail: &str) -> Vec<u8> {
        let mut v = hex(name_hex);
        v.resize(16, 0);
        v.extend(hex(tail));
        v.resize(size_of::<xt_rateest_target_info>(), 0);
        v
    }

    // Captured from the kernel after iptables-legacy-restore (and
    // ip6tables-legacy-restore: same bytes).
    const CASES: &[(&str, &str, &str, &str)] = &[
        // options, name bytes, interval+ewma_log, iptables-legacy-save
        (
            "--rateest-name eth0 --rateest-interval 250ms --rateest-ewmalog 1s",
            "65746830",
            "fe02",
            " --rateest-name eth0 --rateest-interval 250.0ms --rateest-ewmalog 1.0s",
        ),
        (
            "--rateest-name eth0 --rateest-interval 0.25s --rateest-ewmalog 1000msec",
            "65746830",
            "fe02",
            " --rateest-name eth0 --rateest-interval 250.0ms --rateest-ewmalog 1.0s",
        ),
        (
            "--rateest-name a1 --rateest-interval 1sec --rateest-ewmalog 8secs",
            "6131",
            "0003",
            " --rateest-name a1 --rateest-interval 1.0s --rateest-ewmalog 8.0s",
        ),
        (
            "--rateest-name a2 --rateest-interval 500msecs --rateest-ewmalog 2s",
            "6132",
            "ff02",
            " --rateest-name a2 --rateest-interval 500.0ms --rateest-ewmalog 2.0s",
        ),
        (
            "--rateest-ewmalog 64s --rateest-interval 8s --rateest-name a3",
            "6133",
            "0303",
            " --rateest-name a3 --rateest-interval 8.0s --rateest-ewmalog 64.0s",
        ),
        (
            "--rateest-name a4 --rateest-interval 2S --rateest-ewmalog 9s",
            "6134",
            "0102",
            " --rateest-name a4 --rateest-interval 2.0s --rateest-ewmalog 8.0s",
        ),
        (
            "--rateest-name a5 --rateest-interval 100000us --rateest-ewmalog 1500000usec",
            "6135",
            "fe03",
            " --rateest-name a5 --rateest-interval 250.0ms --rateest-ewmalog 2.0s",
        ),
        (
            "--rateest-name a6 --rateest-interval 250000 --rateest-ewmalog 600000usecs",
            "6136",
            "fe01",
            " --rateest-name a6 --rateest-interval 250.0ms --rateest-ewmalog 500.0ms",
        ),
        (
            "--rateest-name a7 --rateest-interval 4e6 --rateest-ewmalog 1.5e1s",
            "6137",
            "0202",
            " --rateest-name a7 --rateest-interval 4.0s --rateest-ewmalog 16.0s",
        ),
        (
            "--rateest-name fifteen-chars-x --rateest-interval 1s --rateest-ewmalog 3.3s",
            "6669667465656e2d63686172732d78",
            "0001",
            " --rateest-name fifteen-chars-x --rateest-interval 1.0s --rateest-ewmalog 2.0s",
        ),
    ];

    #[test]
    fn parse_matches_kernel_bytes() {
        for (line, name, tail, _) in CASES {
            assert_eq!(parse(line).unwrap(), info(name, tail), "{line}");
        }
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        for (line, name, tail, text) in CASES {
            assert_eq!(save(&info(name, tail)), *text, "{line}");
        }
    }

    #[test]
    fn strtod_forms() {
        assert_eq!(strtod_prefix("1.5e1s"), Some((15.0, "s")));
        assert_eq!(strtod_prefix(" +2."), Some((2.0, "")));
        assert_eq!(strtod_prefix(".5ms"), Some((0.5, "ms")));
        assert_eq!(strtod_prefix("0x10"), Some((16.0, "")));
        assert_eq!(strtod_prefix("0x1p3s"), Some((8.0, "s")));
        assert_eq!(strtod_prefix("1e"), Some((1.0, "e")));
        assert_eq!(strtod_prefix("0xg"), Some((0.0, "xg")));
        assert_eq!(strtod_prefix("."), None);
        assert_eq!(strtod_prefix("s"), None);
        assert!(strtod_prefix("inf").unwrap().0.is_infinite());
    }

    #[test]
    fn bad_input_is_refused() {
        let n = "--rateest-name x";
        assert_eq!(
            parse(&format!("{n} --rateest-interval 1h --rateest-ewmalog 1s")).unwrap_err(),
            "RATEEST: bad interval value \"1h\""
        );
        assert_eq!(
            parse(&format!("{n} --rateest-interval 1s --rateest-ewmalog x")).unwrap_err(),
            "RATEEST: bad ewmalog value \"x\""
        );
        assert_eq!(
            parse(&format!("{n} --rateest-interval 9s --rateest-ewmalog 100s")).unwrap_err(),
            "RATEEST: interval value is too large"
        );
        assert_eq!(
            parse(&format!("{n} --rateest-interval 1s --rateest-ewmalog 1s")).unwrap_err(),
            "RATEEST: ewmalog value is out of range"
        );
        // A missing time fails the range check first, as in iptables.
        assert_eq!(
            parse(&format!("{n} --rateest-interval 1s")).unwrap_err(),
            "RATEEST: ewmalog value is out of range"
        );
        assert_eq!(
            parse("--rateest-interval 1s --rateest-ewmalog 4s").unwrap_err(),
            "RATEEST: option \"--rateest-name\" must be specified"
        );
        assert_eq!(
            parse(&format!("{n} --rateest-interval -1s --rateest-ewmalog 4s")).unwrap_err(),
            "RATEEST: interval value \"-1s\" is out of range: 0 to 4294967295 microseconds"
        );
        assert!(
            parse(&format!("{n} --rateest-interval nan --rateest-ewmalog 4s"))
                .unwrap_err()
                .contains("out of range")
        );
        assert!(parse(&format!(
            "{n} --rateest-interval 1s --rateest-ewmalog 4295s"
        ))
        .unwrap_err()
        .contains("out of range"));
        assert!(parse(
            "--rateest-name sixteen-chars-xx --rateest-interval 1s --rateest-ewmalog 4s"
        )
        .unwrap_err()
        .contains("longer than 15"));
        assert!(parse(&format!("{n} {n}"))
            .unwrap_err()
            .contains("only be used once"));
        assert!(with_ctx(|c| RateEstTarget.save(0, &[0; 17], c, &mut String::new())).is_err());
    }
}
