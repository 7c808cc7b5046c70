//! `-m time` (xt_time): match on the date, the time of day, the day of the
//! month and the day of the week.
//!
//! libxt_time's parsing is reproduced with its C-library leniencies, since
//! they decide the kernel bytes: numbers are read with `strtoul` (white
//! space, signs and wrap-around included), a date is normalised as
//! `mktime` in UTC does (`2020-02-31` is 2 March), a `--monthdays` item is
//! cut to 2 characters and a `--weekdays` item to 3, and a numeric weekday
//! sets bit `n mod 32` of a mask that is then cut to 8 bits (x86-64
//! behaviour of the C shift). iptables 1.8.9 has no `--days` option.

use std::mem::offset_of;

use super::{opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext};
use crate::rules::Family;
use crate::sys::bindings::{
    xt_time_info, XT_TIME_ALL_MONTHDAYS, XT_TIME_ALL_WEEKDAYS, XT_TIME_CONTIGUOUS,
    XT_TIME_LOCAL_TZ, XT_TIME_MAX_DAYTIME, XT_TIME_MIN_DAYTIME,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Time];

mod field {
    use super::*;
    pub const DATE_START: usize = offset_of!(xt_time_info, date_start);
    pub const DATE_STOP: usize = offset_of!(xt_time_info, date_stop);
    pub const DAYTIME_START: usize = offset_of!(xt_time_info, daytime_start);
    pub const DAYTIME_STOP: usize = offset_of!(xt_time_info, daytime_stop);
    pub const MONTHDAYS: usize = offset_of!(xt_time_info, monthdays_match);
    pub const WEEKDAYS: usize = offset_of!(xt_time_info, weekdays_match);
    pub const FLAGS: usize = offset_of!(xt_time_info, flags);
}

/// The default `date_stop`: INT_MAX (2038-01-19T03:14:07), which
/// iptables-save prints nevertheless.
const DATE_STOP_DEFAULT: u32 = i32::MAX as u32;

const WEEK_DAYS: [&str; 8] = ["", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// C's isspace in the "C" locale.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// C `strtoul(s, &end, base)` with a 64-bit `unsigned long`, for base 10
/// or 0. Returns the value and the unread rest; with no digits the rest is
/// all of `s` and the value 0.
fn c_strtoul(s: &[u8], base: u32) -> (u64, &[u8]) {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let neg = s.get(i) == Some(&b'-');
    if matches!(s.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    let mut radix = base;
    if base == 0 {
        radix = 10;
        if s.get(i) == Some(&b'0') {
            radix = 8;
            if matches!(s.get(i + 1), Some(b'x' | b'X'))
                && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
            {
                radix = 16;
                i += 2;
            }
        }
    }
    let start = i;
    let (mut v, mut overflow) = (0u64, false);
    while let Some(d) = s.get(i).and_then(|&c| (c as char).to_digit(radix)) {
        match v
            .checked_mul(u64::from(radix))
            .and_then(|x| x.checked_add(u64::from(d)))
        {
            Some(x) => v = x,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start {
        return (0, s);
    }
    let v = if overflow {
        u64::MAX
    } else if neg {
        v.wrapping_neg()
    } else {
        v
    };
    (v, &s[i..])
}

/// strtoul into an `unsigned int`, as libxt_time assigns it.
fn strtou32(s: &[u8], base: u32) -> (u32, &[u8]) {
    let (v, rest) = c_strtoul(s, base);
    (v as u32, rest)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1..=12).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The date of a day number since 1970-01-01: (year, month 1..=12, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// time_parse_date: `YYYY[-MM[-DD[Thh[:mm[:ss]]]]]`, as seconds since the
/// epoch in UTC (mktime with TZ=UTC, out-of-range days and months rolled
/// over).
fn parse_date(arg: &str) -> ExtResult<u32> {
    let bad =
        || format!("Invalid date \"{arg}\" specified. Should be YYYY[-MM[-DD[Thh[:mm[:ss]]]]]");
    // (separator that may follow, upper bound) for month, day, hour, minute, second.
    const PARTS: [(u8, u32); 5] = [(b'-', 12), (b'T', 31), (b':', 23), (b':', 59), (0, 59)];
    let (year, mut e) = strtou32(arg.as_bytes(), 10);
    if !matches!(e.first(), Some(b'-') | None) || !(1970..=2038).contains(&year) {
        return Err(bad());
    }
    let mut vals = [1u32, 1, 0, 0, 0];
    for (k, (sep, max)) in PARTS.iter().enumerate() {
        if e.is_empty() {
            break;
        }
        let (v, rest) = strtou32(&e[1..], 10);
        let ok_end = rest.is_empty() || (*sep != 0 && rest[0] == *sep);
        if !ok_end || v > *max {
            return Err(bad());
        }
        vals[k] = v;
        e = rest;
    }
    let [month, day, hour, minute, second] = vals.map(i64::from);
    let m0 = month - 1;
    let y = i64::from(year) + m0.div_euclid(12);
    let days = days_from_civil(y, m0.rem_euclid(12) + 1, 1) + day - 1;
    let t = days * 86400 + hour * 3600 + minute * 60 + second;
    if t < 0 {
        return Err(format!("mktime returned an error (date \"{arg}\")"));
    }
    Ok(t as u32)
}

/// time_parse_minutes: `hh:mm[:ss]` as seconds since midnight.
fn parse_daytime(arg: &str) -> ExtResult<u32> {
    let bad = |at: &[u8]| {
        format!(
            "invalid time \"{}\" specified, should be hh:mm[:ss] format and within the boundaries",
            String::from_utf8_lossy(at)
        )
    };
    let s = arg.as_bytes();
    let (hour, e) = strtou32(s, 10);
    if e.first() != Some(&b':') || hour > 23 {
        return Err(bad(s));
    }
    let s = &e[1..];
    let (minute, e) = strtou32(s, 10);
    if !matches!(e.first(), Some(b':') | None) || minute > 59 {
        return Err(bad(s));
    }
    let mut second = 0;
    if !e.is_empty() {
        let s = &e[1..];
        let (v, e) = strtou32(s, 10);
        if !e.is_empty() || v > 59 {
            return Err(bad(s));
        }
        second = v;
    }
    Ok(3600 * hour + 60 * minute + second)
}

/// my_strseg: the comma-separated items of `arg`, each cut to `max` bytes
/// (the size of libxt_time's buffer less its NUL). Stops at an empty rest,
/// so a trailing comma adds nothing but an inner empty item is kept.
fn segments(arg: &str, max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = arg.as_bytes();
    while !rest.is_empty() {
        let (item, next) = match rest.iter().position(|&c| c == b',') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        out.push(&item[..item.len().min(max)]);
        rest = next;
    }
    out
}

/// time_parse_monthdays.
fn parse_monthdays(arg: &str) -> ExtResult<u32> {
    let mut ret = 0u32;
    for day in segments(arg, 2) {
        let (i, err) = strtou32(day, 0);
        if !err.is_empty() || i > 31 {
            return Err(format!(
                "{} is not a valid day for --monthdays",
                String::from_utf8_lossy(day)
            ));
        }
        ret |= 1 << i;
    }
    Ok(ret)
}

/// time_parse_weekdays.
fn parse_weekdays(arg: &str) -> ExtResult<u32> {
    let mut ret = 0u32;
    for day in segments(arg, 3) {
        let (i, err) = strtou32(day, 0);
        if err.is_empty() {
            if i == 0 {
                return Err("No, the week does NOT begin with Sunday.".into());
            }
            // `1 << i` on x86-64 shifts by i mod 32.
            ret |= 1u32.wrapping_shl(i);
            continue;
        }
        let mut valid = false;
        for (n, name) in WEEK_DAYS.iter().enumerate().skip(1) {
            if day.len() >= 2 && day[..2] == name.as_bytes()[..2] {
                ret |= 1 << n;
                valid = true;
            }
        }
        if !valid {
            return Err(format!(
                "{} is not a valid day specifier",
                String::from_utf8_lossy(day)
            ));
        }
    }
    Ok(ret)
}

/// time_print_date with a command: ` --datestart 2020-03-02T01:02:03`.
fn save_date(out: &mut String, opt: &str, date: u32) {
    if date == 0 {
        return;
    }
    let t = i64::from(date);
    let (y, m, d) = civil_from_days(t.div_euclid(86400));
    let s = t.rem_euclid(86400);
    out.push_str(&format!(
        " --{opt} {y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    ));
}

fn save_daytime(out: &mut String, opt: &str, t: u32) {
    let (h, m, s) = (t / 3600, t / 60 % 60, t % 60);
    out.push_str(&format!(" --{opt} {h:02}:{m:02}:{s:02}"));
}

struct Time;

impl Codec for Time {
    fn name(&self) -> &'static str {
        "time"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("datestart", Arg::One),
            opt("datestop", Arg::One),
            opt("timestart", Arg::One),
            opt("timestop", Arg::One),
            opt("contiguous", Arg::None),
            opt("weekdays", Arg::One),
            opt("monthdays", Arg::One),
            opt("localtz", Arg::None),
            opt("utc", Arg::None),
            opt("kerneltz", Arg::None),
        ];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut seen = Vec::new();
        let (mut date_start, mut date_stop) = (0u32, DATE_STOP_DEFAULT);
        let (mut day_start, mut day_stop) = (XT_TIME_MIN_DAYTIME, XT_TIME_MAX_DAYTIME);
        let (mut monthdays, mut weekdays) = (XT_TIME_ALL_MONTHDAYS, XT_TIME_ALL_WEEKDAYS);
        let mut flags = 0u32;
        for o in opts {
            super::once(&mut seen, o, "time")?;
            if o.invert && !matches!(o.name, "weekdays" | "monthdays") {
                return Err(format!("time: option \"--{}\" cannot be inverted.", o.name));
            }
            match o.name {
                "datestart" => date_start = parse_date(o.arg())?,
                "datestop" => date_stop = parse_date(o.arg())?,
                "timestart" => day_start = parse_daytime(o.arg())?,
                "timestop" => day_stop = parse_daytime(o.arg())?,
                "contiguous" => flags |= XT_TIME_CONTIGUOUS,
                // --localtz is the old name of --kerneltz (iptables warns).
                "localtz" | "kerneltz" => flags |= XT_TIME_LOCAL_TZ,
                "utc" => {}
                "monthdays" => {
                    monthdays = parse_monthdays(o.arg())?;
                    if o.invert {
                        monthdays ^= XT_TIME_ALL_MONTHDAYS;
                    }
                }
                "weekdays" => {
                    weekdays = parse_weekdays(o.arg())?;
                    if o.invert {
                        weekdays ^= XT_TIME_ALL_WEEKDAYS;
                    }
                }
                _ => return Err(super::unknown_option("time", o)),
            }
        }
        let has = |n: &str| seen.contains(&n);
        if has("contiguous") && day_start < day_stop {
            return Err(
                "time: --contiguous only makes sense when stoptime is smaller than starttime"
                    .into(),
            );
        }
        for (a, b) in [("localtz", "utc"), ("utc", "kerneltz")] {
            if has(a) && has(b) {
                return Err(format!(
                    "time: option \"--{a}\" cannot be used together with \"--{b}\"."
                ));
            }
        }
        let mut p = Payload::of::<xt_time_info>();
        p.u32(field::DATE_START, date_start)
            .u32(field::DATE_STOP, date_stop)
            .u32(field::DAYTIME_START, day_start)
            .u32(field::DAYTIME_STOP, day_stop)
            .u32(field::MONTHDAYS, monthdays)
            // weekdays_match is a __u8: the C assignment keeps the low byte.
            .u8(field::WEEKDAYS, weekdays as u8)
            .u8(field::FLAGS, flags as u8);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, field::FLAGS + 1)?;
        let (day_start, day_stop) = (r.u32(field::DAYTIME_START)?, r.u32(field::DAYTIME_STOP)?);
        if day_start != XT_TIME_MIN_DAYTIME || day_stop != XT_TIME_MAX_DAYTIME {
            save_daytime(out, "timestart", day_start);
            save_daytime(out, "timestop", day_stop);
        }
        let monthdays = r.u32(field::MONTHDAYS)?;
        if monthdays != XT_TIME_ALL_MONTHDAYS {
            let days: Vec<String> = (1..=31)
                .filter(|i| monthdays & (1 << i) != 0)
                .map(|i: u32| i.to_string())
                .collect();
            out.push_str(" --monthdays ");
            out.push_str(&days.join(","));
        }
        let weekdays = u32::from(r.u8(field::WEEKDAYS)?);
        if weekdays != XT_TIME_ALL_WEEKDAYS {
            let days: Vec<&str> = (1..=7)
                .filter(|i| weekdays & (1 << i) != 0)
                .map(|i| WEEK_DAYS[i])
                .collect();
            out.push_str(" --weekdays ");
            out.push_str(&days.join(","));
        }
        save_date(out, "datestart", r.u32(field::DATE_START)?);
        save_date(out, "datestop", r.u32(field::DATE_STOP)?);
        let flags = u32::from(r.u8(field::FLAGS)?);
        if flags & XT_TIME_LOCAL_TZ != 0 {
            out.push_str(" --kerneltz");
        }
        if flags & XT_TIME_CONTIGUOUS != 0 {
            out.push_str(" --contiguous");
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

    /// Hex with `#` comments, as the fixtures below are written.
    fn fixture(s: &str) -> Vec<u8> {
        hex(&s
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .collect::<String>())
    }

    fn parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        Time.parse(0, opts, &ctx).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(data: &[u8]) -> String {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Time.save(0, data, &ctx, &mut out).unwrap();
        out
    }

    // Captured from the kernel after iptables-legacy-restore of
    // `-m time --timestart 23:00 --timestop 1:00:01 --contiguous --kerneltz`.
    const NIGHT: &str = "
        00000000    # date_start 0 (host order)
        ffffff7f    # date_stop INT_MAX
        70430100    # daytime_start 82800 (23:00:00)
        110e0000    # daytime_stop 3601 (01:00:01)
        feffffff    # monthdays_match: all
        fe          # weekdays_match: all
        03          # flags LOCAL_TZ|CONTIGUOUS
        0000        # padding to XT_ALIGN";

    // `-m time --datestart 2020-0 --datestop 2038-12-31T23:59:59`
    // (month 0 rolls back to December 2019).
    const DATES: &str = "
        8002e35d    # date_start 1575158400 = 2019-12-01T00:00:00
        ff4ac981    # date_stop 2177452799 = 2038-12-31T23:59:59
        00000000    # daytime_start
        7f510100    # daytime_stop 86399
        feffffff fe 00 0000";

    // `-m time --datestart "2020-02-31T1:2:3"` (rolls over into March)
    const FEB31: &str = "
        0b5b5c5e    # date_start 1583110923 = 2020-03-02T01:02:03
        ffffff7f 00000000 7f510100 feffffff fe 00 0000";

    // `-m time --monthdays 123,1,,0`: "12" (items are cut to 2 chars), 1,
    // and 0 twice (the empty item reads as 0).
    const MONTHDAYS: &str = "
        00000000 ffffff7f 00000000 7f510100
        03100000    # monthdays_match bits 0, 1, 12
        fe 00 0000";

    // `-m time --weekdays 7,Mo,Tuesday`
    const WEEKDAYS: &str = "
        00000000 ffffff7f 00000000 7f510100 feffffff
        86          # weekdays_match Mon|Tue|Sun
        00 0000";

    // `-m time --weekdays 33`: 1 << 33 is 1 << 1 on x86-64: Monday.
    const WEEKDAY_33: &str = "
        00000000 ffffff7f 00000000 7f510100 feffffff 02 00 0000";

    // `-m time --weekdays 8`: bit 8 does not fit the u8 mask, none is left.
    const WEEKDAY_8: &str = "
        00000000 ffffff7f 00000000 7f510100 feffffff 00 00 0000";

    // `-m time --localtz` (flags LOCAL_TZ, saved as --kerneltz)
    const LOCALTZ: &str = "
        00000000 ffffff7f 00000000 7f510100 feffffff fe 01 0000";

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(
            parse(&[
                ov("timestart", false, &["23:00"]),
                ov("timestop", false, &["1:00:01"]),
                ov("contiguous", false, &[]),
                ov("kerneltz", false, &[]),
            ])
            .unwrap(),
            fixture(NIGHT)
        );
        assert_eq!(
            parse(&[
                ov("datestart", false, &["2020-0"]),
                ov("datestop", false, &["2038-12-31T23:59:59"]),
            ])
            .unwrap(),
            fixture(DATES)
        );
        assert_eq!(
            parse(&[ov("datestart", false, &["2020-02-31T1:2:3"])]).unwrap(),
            fixture(FEB31)
        );
        assert_eq!(
            parse(&[ov("monthdays", false, &["123,1,,0"])]).unwrap(),
            fixture(MONTHDAYS)
        );
        assert_eq!(
            parse(&[ov("weekdays", false, &["7,Mo,Tuesday"])]).unwrap(),
            fixture(WEEKDAYS)
        );
        assert_eq!(
            parse(&[ov("weekdays", false, &["33"])]).unwrap(),
            fixture(WEEKDAY_33)
        );
        assert_eq!(
            parse(&[ov("weekdays", false, &["8"])]).unwrap(),
            fixture(WEEKDAY_8)
        );
        assert_eq!(
            parse(&[ov("localtz", false, &[])]).unwrap(),
            fixture(LOCALTZ)
        );
        // `! --weekdays -1` inverts an empty u8 mask: all days again.
        assert_eq!(
            parse(&[ov("weekdays", true, &["-1"])]).unwrap(),
            parse(&[ov("utc", false, &[])]).unwrap()
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        let stop = " --datestop 2038-01-19T03:14:07";
        assert_eq!(
            save(&fixture(NIGHT)),
            format!(" --timestart 23:00:00 --timestop 01:00:01{stop} --kerneltz --contiguous")
        );
        assert_eq!(
            save(&fixture(DATES)),
            " --datestart 2019-12-01T00:00:00 --datestop 2038-12-31T23:59:59"
        );
        assert_eq!(
            save(&fixture(FEB31)),
            format!(" --datestart 2020-03-02T01:02:03{stop}")
        );
        assert_eq!(
            save(&fixture(MONTHDAYS)),
            format!(" --monthdays 1,12{stop}")
        );
        assert_eq!(
            save(&fixture(WEEKDAYS)),
            format!(" --weekdays Mon,Tue,Sun{stop}")
        );
        assert_eq!(save(&fixture(WEEKDAY_33)), format!(" --weekdays Mon{stop}"));
        assert_eq!(save(&fixture(WEEKDAY_8)), format!(" --weekdays {stop}"));
        assert_eq!(save(&fixture(LOCALTZ)), format!("{stop} --kerneltz"));
    }

    #[test]
    fn c_number_and_date_rules() {
        assert_eq!(c_strtoul(b" +12x", 10), (12, &b"x"[..]));
        assert_eq!(c_strtoul(b"-1", 10).0, u64::MAX);
        assert_eq!(c_strtoul(b"0x1f", 0), (31, &b""[..]));
        assert_eq!(c_strtoul(b"0x", 0), (0, &b"x"[..]));
        assert_eq!(c_strtoul(b"x", 0), (0, &b"x"[..]));
        assert_eq!(c_strtoul(b"99999999999999999999", 10).0, u64::MAX);
        // 4294967297 wraps to 1 in an unsigned int: January.
        assert_eq!(parse_date("2021-4294967297").unwrap(), 1609459200);
        assert_eq!(parse_date("1970").unwrap(), 0);
        for (d, n) in [
            (0, (1970, 1, 1)),
            (18322, (2020, 3, 1)),
            (-1, (1969, 12, 31)),
        ] {
            assert_eq!(civil_from_days(d), n);
            assert_eq!(days_from_civil(n.0, n.1, n.2), d);
        }
    }

    #[test]
    fn bad_values_are_refused() {
        let bad: &[&[OptValue]] = &[
            &[ov("datestart", false, &["1969"])],
            &[ov("datestart", false, &["2039"])],
            &[ov("datestart", false, &["1970-01-00"])],
            &[ov("datestart", false, &["2020-13"])],
            &[ov("datestart", false, &["2020-01-01 10:00"])],
            &[ov("datestop", false, &["2020-01-01T24"])],
            &[ov("datestop", false, &["2020-01-01T10:60"])],
            &[ov("datestop", false, &["2020-01-01T10:00:60"])],
            &[ov("timestart", false, &["12"])],
            &[ov("timestart", false, &["24:00"])],
            &[ov("timestop", false, &["12:60"])],
            &[ov("timestop", false, &["12:00:00:00"])],
            &[ov("monthdays", false, &["32"])],
            &[ov("monthdays", false, &["1a"])],
            &[ov("weekdays", false, &["0"])],
            &[ov("weekdays", false, &["Mx"])],
            &[ov("weekdays", false, &["1,,2"])],
            &[ov("contiguous", false, &[])],
            &[ov("localtz", false, &[]), ov("utc", false, &[])],
            &[ov("utc", false, &[]), ov("kerneltz", false, &[])],
            &[ov("timestart", true, &["10:00"])],
            &[ov("utc", true, &[])],
            &[
                ov("weekdays", false, &["Mon"]),
                ov("weekdays", false, &["Tue"]),
            ],
        ];
        for opts in bad {
            assert!(parse(opts).is_err(), "{opts:?} accepted");
        }
        assert!(!Time.options().iter().any(|o| o.name == "days"));
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        assert!(Time.save(0, &[0; 20], &ctx, &mut String::new()).is_err());
    }

    /// A small deterministic generator (xorshift) for the robustness tests.
    fn noise(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    fn ctx() -> RuleContext<'static> {
        static IP: std::sync::OnceLock<IpMatch> = std::sync::OnceLock::new();
        RuleContext {
            family: Family::V4,
            ip: IP.get_or_init(|| IpMatch::any(Family::V4)),
            table: "filter",
        }
    }

    #[test]
    fn never_panics() {
        let mut seed = 0x9e3779b97f4a7c15u64;
        let alphabet = b"0129-T: ,x+M";
        for _ in 0..20000 {
            let n = (noise(&mut seed) % 14) as usize;
            let s: String = (0..n)
                .map(|_| alphabet[(noise(&mut seed) % alphabet.len() as u64) as usize] as char)
                .collect();
            let _ = (parse_date(&s), parse_daytime(&s));
            let _ = (parse_monthdays(&s), parse_weekdays(&s));
        }
        for _ in 0..2000 {
            let mut data = vec![0u8; std::mem::size_of::<xt_time_info>()];
            data.iter_mut().for_each(|b| *b = noise(&mut seed) as u8);
            let _ = Time.save(0, &data, &ctx(), &mut String::new());
        }
    }
}
