//! `-m limit` (xt_limit): a token bucket, `--limit RATE[/UNIT] --limit-burst N`.
//!
//! The kernel struct holds the average as a period in units of
//! 1/XT_LIMIT_SCALE seconds per packet; everything after `burst` is the
//! kernel's own state and is sent as zeros (the kernel hides it on readback).

use std::mem::offset_of;

use super::{
    no_invert, once, opt, parse_uint, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload,
    Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{xt_rateinfo, XT_LIMIT_SCALE};

pub(super) static CODECS: &[&dyn Codec] = &[&Limit];

mod field {
    use super::*;
    pub const AVG: usize = offset_of!(xt_rateinfo, avg);
    pub const BURST: usize = offset_of!(xt_rateinfo, burst);
}

/// The rate used when only `--limit-burst` is given (XT_LIMIT_AVG).
const DEFAULT_RATE: &str = "3/hour";
/// The burst used when `--limit-burst` is not given (XT_LIMIT_BURST).
const DEFAULT_BURST: u32 = 5;
/// libxt_limit's bound on `--limit-burst`.
const MAX_BURST: u64 = 10000;

/// Units accepted after `/`, by unique prefix in this order, with seconds each.
const UNITS: &[(&str, u32)] = &[
    ("second", 1),
    ("minute", 60),
    ("hour", 60 * 60),
    ("day", 24 * 60 * 60),
];

/// Units printed by save, largest first, with their period in scale units.
const SAVE_UNITS: &[(&str, u32)] = &[
    ("day", XT_LIMIT_SCALE * 24 * 60 * 60),
    ("hour", XT_LIMIT_SCALE * 60 * 60),
    ("min", XT_LIMIT_SCALE * 60),
    ("sec", XT_LIMIT_SCALE),
];

/// C `atoi`: optional blanks and sign, then decimal digits up to the first
/// other character; the long result is truncated to `int` as C does.
pub(crate) fn c_atoi(s: &str) -> i32 {
    let t = s.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b' || c == '\x0c');
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits = &t[..t
        .bytes()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(t.len())];
    // strtol saturates at LONG_MIN/LONG_MAX before atoi's cast to int.
    let v: i64 = match digits.parse::<u128>() {
        Ok(v) if !neg && v > i64::MAX as u128 => i64::MAX,
        Ok(v) if neg && v > i64::MAX as u128 + 1 => i64::MIN,
        Ok(v) if neg => (v as i128).wrapping_neg() as i64,
        Ok(v) => v as i64,
        Err(_) if digits.is_empty() => 0,
        Err(_) => {
            if neg {
                i64::MIN
            } else {
                i64::MAX
            }
        }
    };
    v as i32
}

/// libxt_limit's parse_rate: `N[/unit]` to a period in 1/XT_LIMIT_SCALE s.
/// `None` for a malformed rate; an error for one too fast to represent.
pub(crate) fn parse_rate(rate: &str) -> ExtResult<Option<u32>> {
    let mut mult = 1u32;
    if let Some((_, unit)) = rate.split_once('/') {
        if unit.is_empty() {
            return Ok(None);
        }
        let found = UNITS.iter().find(|(name, _)| {
            unit.len() <= name.len() && name[..unit.len()].eq_ignore_ascii_case(unit)
        });
        match found {
            Some((_, m)) => mult = *m,
            None => return Ok(None),
        }
    }
    let r = c_atoi(rate) as u32;
    if r == 0 {
        return Ok(None);
    }
    let period = XT_LIMIT_SCALE * mult / r;
    if period == 0 {
        return Err(format!("Rate too fast \"{rate}\""));
    }
    Ok(Some(period))
}

/// libxt_limit's print_rate: the largest unit that divides evenly enough.
pub(crate) fn save_rate(out: &mut String, period: u32) {
    if period == 0 {
        out.push_str(" inf");
        return;
    }
    let mut i = 1;
    while i < SAVE_UNITS.len() {
        let m = SAVE_UNITS[i].1;
        if period > m || m / period < m % period {
            break;
        }
        i += 1;
    }
    let (name, m) = SAVE_UNITS[i - 1];
    out.push_str(&format!(" {}/{name}", m / period));
}

struct Limit;

impl Codec for Limit {
    fn name(&self) -> &'static str {
        "limit"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V4, Family::V6]
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[opt("limit", Arg::One), opt("limit-burst", Arg::One)];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut avg = parse_rate(DEFAULT_RATE)?.unwrap_or_default();
        let mut burst = DEFAULT_BURST;
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "limit")?;
            no_invert(o, "limit")?;
            match o.name {
                "limit" => {
                    avg =
                        parse_rate(o.arg())?.ok_or_else(|| format!("bad rate \"{}\"'", o.arg()))?;
                }
                "limit-burst" => {
                    burst = parse_uint(o.arg(), 0, MAX_BURST).ok_or_else(|| {
                        format!("limit: bad value for option \"--limit-burst\", or out of range (0-{MAX_BURST}).")
                    })? as u32;
                }
                _ => return Err(super::unknown_option("limit", o)),
            }
        }
        let mut p = Payload::of::<xt_rateinfo>();
        p.u32(field::AVG, avg).u32(field::BURST, burst);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, field::BURST + 4)?;
        out.push_str(" --limit");
        save_rate(out, r.u32(field::AVG)?);
        let burst = r.u32(field::BURST)?;
        if burst != DEFAULT_BURST {
            out.push_str(&format!(" --limit-burst {burst}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::rules::IpMatch;

    fn ov(name: &'static str, args: &[&str]) -> OptValue<'static> {
        OptValue {
            name,
            invert: false,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn run(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        Limit.parse(0, opts, &ctx)
    }

    fn save(data: &[u8]) -> ExtResult<String> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Limit.save(0, data, &ctx, &mut out)?;
        Ok(out)
    }

    /// Fixtures captured from the kernel after iptables-legacy-restore
    /// (xt_rateinfo, 40 bytes: avg u32, burst u32, then kernel state that
    /// the kernel hides on readback: prev, credit, credit_cap, cost, master).
    fn rateinfo(avg: &str, burst: &str) -> Vec<u8> {
        hex(&format!("{avg}{burst}{}", "00".repeat(32)))
    }

    // `-m limit --limit 3/min`: avg 600000/3 = 200000 (0x00030d40), burst 5.
    #[test]
    fn per_minute_default_burst() {
        let fixture = rateinfo("400d0300", "05000000");
        assert_eq!(run(&[ov("limit", &["3/min"])]).unwrap(), fixture);
        assert_eq!(save(&fixture).unwrap(), " --limit 3/min");
    }

    // `-m limit --limit 10/second --limit-burst 20`: avg 1000 (0x3e8), burst 20.
    #[test]
    fn per_second_with_burst() {
        let fixture = rateinfo("e8030000", "14000000");
        assert_eq!(
            run(&[ov("limit", &["10/second"]), ov("limit-burst", &["20"])]).unwrap(),
            fixture
        );
        assert_eq!(save(&fixture).unwrap(), " --limit 10/sec --limit-burst 20");
    }

    // `-m limit --limit-burst 7`: the default rate 3/hour (12000000 = 0xb71b00).
    #[test]
    fn default_rate() {
        let fixture = rateinfo("001bb700", "07000000");
        assert_eq!(run(&[ov("limit-burst", &["7"])]).unwrap(), fixture);
        assert_eq!(save(&fixture).unwrap(), " --limit 3/hour --limit-burst 7");
    }

    // `-m limit --limit 7/d`: 864000000/7 = 123428571 (0x075b5edb); saved as 7/day.
    #[test]
    fn per_day_prefix() {
        let fixture = rateinfo("db5e5b07", "05000000");
        assert_eq!(run(&[ov("limit", &["7/d"])]).unwrap(), fixture);
        assert_eq!(save(&fixture).unwrap(), " --limit 7/day");
    }

    // `-m limit --limit 90/minute`: 600000/90 = 6666 (0x1a0a); saved as 90/min.
    #[test]
    fn per_minute_long_unit() {
        let fixture = rateinfo("0a1a0000", "05000000");
        assert_eq!(run(&[ov("limit", &["90/minute"])]).unwrap(), fixture);
        assert_eq!(save(&fixture).unwrap(), " --limit 90/min");
    }

    // `-m limit --limit " 4xyz/H"`: atoi reads 4, unit prefix H is hour:
    // 36000000/4 = 9000000 (0x895440).
    #[test]
    fn atoi_rate_and_unit_prefix() {
        let fixture = rateinfo("40548900", "05000000");
        assert_eq!(run(&[ov("limit", &[" 4xyz/H"])]).unwrap(), fixture);
        assert_eq!(save(&fixture).unwrap(), " --limit 4/hour");
    }

    // `-m limit --limit 10000 --limit-burst 0x10`: avg 1, burst 16.
    #[test]
    fn fastest_rate_and_hex_burst() {
        let fixture = rateinfo("01000000", "10000000");
        assert_eq!(
            run(&[ov("limit", &["10000"]), ov("limit-burst", &["0x10"])]).unwrap(),
            fixture
        );
        assert_eq!(
            save(&fixture).unwrap(),
            " --limit 10000/sec --limit-burst 16"
        );
    }

    #[test]
    fn refused() {
        for bad in ["0/sec", "abc", "5/", "5/fortnight", "5/seconds"] {
            assert!(
                run(&[ov("limit", &[bad])])
                    .unwrap_err()
                    .contains("bad rate"),
                "{bad}"
            );
        }
        for fast in ["10001", "-3", "99999999999/s"] {
            assert!(
                run(&[ov("limit", &[fast])])
                    .unwrap_err()
                    .contains("Rate too fast"),
                "{fast}"
            );
        }
        assert!(run(&[ov("limit-burst", &["10001"])])
            .unwrap_err()
            .contains("out of range"));
        assert!(run(&[ov("limit-burst", &["-1"])])
            .unwrap_err()
            .contains("out of range"));
        let twice = [ov("limit", &["1/s"]), ov("limit", &["2/s"])];
        assert!(run(&twice).unwrap_err().contains("only be used once"));
        let inv = [OptValue {
            name: "limit",
            invert: true,
            args: vec!["1/s"].into(),
        }];
        assert!(run(&inv).unwrap_err().contains("cannot be inverted"));
        assert!(save(&[0; 4]).is_err());
    }

    #[test]
    fn atoi_like_c() {
        assert_eq!(c_atoi(" 12abc"), 12);
        assert_eq!(c_atoi("-3"), -3);
        assert_eq!(c_atoi("x"), 0);
        assert_eq!(c_atoi("99999999999999999999"), -1);
    }
}
