//! `-m statistic` (xt_statistic): match a random share of packets, or every
//! nth packet.
//!
//! The probability is stored as a fixed-point u32, `lround(p * 2^31)`, and
//! saved as `printf("%.11f", v / 2^31)`: both are reproduced exactly here
//! (C `strtod` syntax, round half away from zero on the way in, exact
//! decimal expansion rounded half to even on the way out).

use std::mem::offset_of;

use super::{
    once, opt, parse_uint, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    xt_statistic_info, xt_statistic_info__bindgen_ty_1 as StatisticUnion,
    xt_statistic_info__bindgen_ty_1__bindgen_ty_1 as RandomInfo,
    xt_statistic_info__bindgen_ty_1__bindgen_ty_2 as NthInfo,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Statistic];

mod field {
    use super::*;
    pub const MODE: usize = offset_of!(xt_statistic_info, mode);
    pub const FLAGS: usize = offset_of!(xt_statistic_info, flags);
    const U: usize = offset_of!(xt_statistic_info, u);
    pub const PROBABILITY: usize = U + offset_of!(RandomInfo, probability);
    pub const EVERY: usize = U + offset_of!(NthInfo, every);
    pub const PACKET: usize = U + offset_of!(NthInfo, packet);
    /// Beyond iptables' userspacesize, but the kernel hands it back as given.
    pub const COUNT: usize = U + offset_of!(NthInfo, count);
    // The probability and `every` are the same bytes of the union.
    const _: () = assert!(PROBABILITY == EVERY);
    const _: () = assert!(std::mem::size_of::<StatisticUnion>() == std::mem::size_of::<NthInfo>());
}

// enum xt_statistic_mode / xt_statistic_flags (xt_statistic.h); named enums
// are outside the bindgen allowlist.
const MODE_RANDOM: u16 = 0;
const MODE_NTH: u16 = 1;
const FLAG_INVERT: u16 = 0x1;

/// 2^31: the fixed-point scale of the probability.
const SCALE: f64 = 2147483648.0;

/// C's isspace in the "C" locale.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// A hexadecimal floating constant (after `0x`), as strtod reads it; `None`
/// when the text is not entirely one.
fn parse_hex_float(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    let (mut mant, mut exp, mut digits, mut sticky) = (0u128, 0i64, 0usize, false);
    let mut seen_point = false;
    while i < b.len() {
        let c = b[i];
        if c == b'.' && !seen_point {
            seen_point = true;
        } else if let Some(d) = (c as char).to_digit(16) {
            digits += 1;
            if mant >> 120 == 0 {
                mant = mant << 4 | u128::from(d);
                if seen_point {
                    exp -= 4;
                }
            } else {
                sticky |= d != 0;
                if !seen_point {
                    exp += 4;
                }
            }
        } else {
            break;
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() {
        if b[i] | 0x20 != b'p' {
            return None;
        }
        let e = &s[i + 1..];
        let (neg, e) = match e.as_bytes().first() {
            Some(b'-') => (true, &e[1..]),
            Some(b'+') => (false, &e[1..]),
            _ => (false, e),
        };
        if e.is_empty() || !e.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let v: i64 = e.parse().unwrap_or(i64::MAX / 4).min(1 << 20);
        exp += if neg { -v } else { v };
    }
    let mant = (mant | u128::from(sticky)) as f64;
    Some(mant * 2f64.powi(exp.clamp(-1100, 1100) as i32))
}

/// strtod over the whole argument ("C" locale): leading white space, a
/// sign, then a decimal or hexadecimal constant, `inf`, `infinity`, `nan` or
/// `nan(chars)`. `None` when strtod would stop before the end.
pub(crate) fn parse_c_double(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(|c: char| c.is_ascii() && is_c_space(c as u8));
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let lower = body.to_ascii_lowercase();
    let v = if lower == "inf" || lower == "infinity" {
        f64::INFINITY
    } else if lower == "nan"
        || (lower.starts_with("nan(")
            && lower.ends_with(')')
            && lower[4..lower.len() - 1]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_'))
    {
        f64::NAN
    } else if let Some(hex) = lower.strip_prefix("0x") {
        parse_hex_float(hex)?
    } else {
        // One sign only: Rust's parser would take a second one.
        let ok = !body.is_empty()
            && !body.starts_with(['+', '-'])
            && body
                .bytes()
                .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'));
        if !ok {
            return None;
        }
        body.parse::<f64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// `lround(0x80000000 * p)` as libxt_statistic stores a probability.
fn probability_to_fixed(p: f64) -> u32 {
    // lround rounds half away from zero, as f64::round does; the result is
    // a long truncated to u32 (NaN gives 0 on x86-64, as here).
    (p * SCALE).round() as i64 as u32
}

/// `printf("%.11f", v / 2^31)`: the exact binary value rounded to 11
/// decimals, ties to even (glibc's behaviour in the default rounding mode).
fn format_probability(v: u32) -> String {
    const DIGITS: u128 = 100_000_000_000; // 10^11
    let num = u128::from(v) * DIGITS;
    let (mut q, r) = (num >> 31, num & ((1 << 31) - 1));
    let half = 1u128 << 30;
    if r > half || (r == half && q & 1 == 1) {
        q += 1;
    }
    format!("{}.{:011}", q / DIGITS, q % DIGITS)
}

struct Statistic;

impl Codec for Statistic {
    fn name(&self) -> &'static str {
        "statistic"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("mode", Arg::One),
            opt("probability", Arg::One),
            opt("every", Arg::One),
            opt("packet", Arg::One),
        ];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_statistic_info>();
        let mut seen = Vec::new();
        let (mut mode, mut flags) = (MODE_RANDOM, 0u16);
        // Probability and every share one u32 in the kernel struct.
        let (mut first, mut packet) = (0u32, 0u32);
        for o in opts {
            once(&mut seen, o, "statistic")?;
            if o.invert {
                if !matches!(o.name, "probability" | "every") {
                    return Err(format!(
                        "statistic: option \"--{}\" cannot be inverted.",
                        o.name
                    ));
                }
                flags |= FLAG_INVERT;
            }
            match o.name {
                "mode" => {
                    mode = match o.arg() {
                        "random" => MODE_RANDOM,
                        "nth" => MODE_NTH,
                        m => return Err(format!("Bad mode \"{m}\"")),
                    }
                }
                "probability" => {
                    let v = parse_c_double(o.arg())
                        .filter(|v| !(*v < 0.0 || *v > 1.0))
                        .ok_or(
                            "statistic: bad value for option \"--probability\", or out of range (0-1).",
                        )?;
                    first = probability_to_fixed(v);
                }
                "every" => {
                    let v = parse_uint(o.arg(), 1, u32::MAX.into()).ok_or(
                        "statistic: bad value for option \"--every\", or out of range (1-4294967295).",
                    )?;
                    first = v as u32 - 1;
                }
                "packet" => {
                    packet = parse_uint(o.arg(), 0, u32::MAX.into()).ok_or(
                        "statistic: bad value for option \"--packet\", or out of range (0-4294967295).",
                    )? as u32;
                }
                _ => return Err(super::unknown_option("statistic", o)),
            }
        }
        let has = |n: &str| seen.contains(&n);
        // statistic_check, then the generic mandatory/exclusion checks.
        if mode == MODE_RANDOM && !has("probability") {
            return Err("--probability must be specified when using random mode".into());
        }
        if mode == MODE_NTH && !has("every") && !has("packet") {
            return Err("--every and --packet must be specified when using nth mode".into());
        }
        if packet > first {
            return Err("the --packet p must be 0 <= p <= n-1".into());
        }
        if !has("mode") {
            return Err("statistic: option \"--mode\" must be specified".into());
        }
        for other in ["every", "packet"] {
            if has("probability") && has(other) {
                return Err(format!(
                    "statistic: option \"--probability\" cannot be used together with \"--{other}\"."
                ));
            }
        }
        if has("every") != has("packet") {
            let (a, b) = if has("every") {
                ("every", "packet")
            } else {
                ("packet", "every")
            };
            return Err(format!(
                "statistic: option \"--{a}\" also requires \"--{b}\"."
            ));
        }
        p.u16(field::MODE, mode).u16(field::FLAGS, flags);
        // In random mode this writes the probability (PROBABILITY and EVERY
        // are the same bytes) and copies it into count, as libxt_statistic's
        // final check does with `count = every - packet`.
        p.u32(field::EVERY, first).u32(field::PACKET, packet);
        p.u32(field::COUNT, first - packet);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, field::COUNT + 4)?;
        let inv = if r.u16(field::FLAGS)? & FLAG_INVERT != 0 {
            " !"
        } else {
            ""
        };
        match r.u16(field::MODE)? {
            MODE_RANDOM => {
                let v = format_probability(r.u32(field::PROBABILITY)?);
                out.push_str(&format!(" --mode random{inv} --probability {v}"));
            }
            MODE_NTH => {
                let every = r.u32(field::EVERY)?.wrapping_add(1);
                let packet = r.u32(field::PACKET)?;
                out.push_str(&format!(
                    " --mode nth{inv} --every {every} --packet {packet}"
                ));
            }
            // libxt_statistic prints nothing for a mode it does not know.
            _ => {}
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
        Statistic.parse(0, opts, &ctx).map(|mut v| {
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
        Statistic.save(0, data, &ctx, &mut out).unwrap();
        out
    }

    fn random(p: &str, invert: bool) -> Vec<u8> {
        parse(&[
            ov("mode", false, &["random"]),
            ov("probability", invert, &[p]),
        ])
        .unwrap()
    }

    // Captured from the kernel after iptables-legacy-restore of
    // `-m statistic --mode nth ! --every 3 --packet 2`.
    const NTH_INVERTED: &str = "
        0100        # mode NTH (host order)
        0100        # flags INVERT
        02000000    # every - 1 = 2
        02000000    # packet 2
        00000000    # count = (every - 1) - packet
        0000000000000000    # master pointer (kernel-private)";

    // `-m statistic --mode random --probability 0.5`
    const HALF: &str = "
        0000        # mode RANDOM
        0000        # flags
        00000040    # probability 0x40000000 = 0.5 * 2^31
        00000000    # packet
        00000040    # count: libxt_statistic copies every - packet = probability
        0000000000000000";

    // `-m statistic --mode random ! --probability nan`
    const NAN_INVERTED: &str = "
        0000 0100   # RANDOM, INVERT
        00000000    # lround(NaN) truncated: 0
        00000000 00000000 0000000000000000";

    // `-m statistic --mode random --probability 0x1p-12`
    const TIE: &str = "
        0000 0000
        00000800    # 2^19: 1/4096, printed 0.00024414062 (tie to even)
        00000000
        00000800    # count
        0000000000000000";

    // `-m statistic --mode random --probability " 0.3"`
    const POINT3: &str = "
        0000 0000
        66666626    # lround(0.3 * 2^31) = 0x26666666
        00000000
        66666626
        0000000000000000";

    // `-m statistic --mode random --probability 1`
    const ONE: &str = "
        0000 0000
        00000080    # 2^31
        00000000
        00000080
        0000000000000000";

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(
            parse(&[
                ov("mode", false, &["nth"]),
                ov("every", true, &["3"]),
                ov("packet", false, &["2"]),
            ])
            .unwrap(),
            fixture(NTH_INVERTED)
        );
        assert_eq!(random("0.5", false), fixture(HALF));
        assert_eq!(random("nan", true), fixture(NAN_INVERTED));
        assert_eq!(random("0x1p-12", false), fixture(TIE));
        assert_eq!(random(" 0.3", false), fixture(POINT3));
        assert_eq!(random("1", false), fixture(ONE));
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(
            save(&fixture(NTH_INVERTED)),
            " --mode nth ! --every 3 --packet 2"
        );
        assert_eq!(
            save(&fixture(HALF)),
            " --mode random --probability 0.50000000000"
        );
        assert_eq!(
            save(&fixture(NAN_INVERTED)),
            " --mode random ! --probability 0.00000000000"
        );
        assert_eq!(
            save(&fixture(TIE)),
            " --mode random --probability 0.00024414062"
        );
        assert_eq!(
            save(&fixture(POINT3)),
            " --mode random --probability 0.29999999981"
        );
        assert_eq!(
            save(&fixture(ONE)),
            " --mode random --probability 1.00000000000"
        );
    }

    #[test]
    fn probability_text_matches_printf() {
        assert_eq!(format_probability(0), "0.00000000000");
        assert_eq!(format_probability(u32::MAX), "1.99999999953");
        assert_eq!(format_probability(1), "0.00000000047");
        // 3 * 2^19 / 2^31 = 0.000732421875: a tie rounded up to even.
        assert_eq!(format_probability(3 << 19), "0.00073242188");
        assert_eq!(probability_to_fixed(0.25), 1 << 29);
        assert_eq!(probability_to_fixed(-0.0), 0);
    }

    #[test]
    fn strtod_syntax() {
        assert_eq!(parse_c_double("1e-1"), Some(0.1));
        assert_eq!(parse_c_double(".5"), Some(0.5));
        assert_eq!(parse_c_double("5."), Some(5.0));
        assert_eq!(parse_c_double("0X.8P1"), Some(1.0));
        assert_eq!(parse_c_double("-0"), Some(-0.0));
        assert!(parse_c_double("NaN(x1)").unwrap().is_nan());
        for bad in [
            "", " ", ".", "1e", "0x", "0.5 ", "1,5", "0x1p", "nanx", "--0", "+-1", "-+nan",
        ] {
            assert_eq!(parse_c_double(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn bad_values_are_refused() {
        let bad: &[&[OptValue]] = &[
            &[
                ov("mode", false, &["Random"]),
                ov("probability", false, &["0.1"]),
            ],
            &[
                ov("mode", false, &["random"]),
                ov("probability", false, &["1.5"]),
            ],
            &[
                ov("mode", false, &["random"]),
                ov("probability", false, &["inf"]),
            ],
            &[
                ov("mode", false, &["random"]),
                ov("probability", false, &["-0.1"]),
            ],
            &[ov("mode", false, &["random"])],
            &[ov("probability", false, &["0.1"])],
            &[
                ov("mode", true, &["random"]),
                ov("probability", false, &["0.1"]),
            ],
            &[ov("mode", false, &["nth"]), ov("every", false, &["3"])],
            &[ov("mode", false, &["nth"]), ov("packet", false, &["0"])],
            &[
                ov("mode", false, &["nth"]),
                ov("every", false, &["0"]),
                ov("packet", false, &["0"]),
            ],
            &[
                ov("mode", false, &["nth"]),
                ov("every", false, &["3"]),
                ov("packet", false, &["3"]),
            ],
            &[
                ov("mode", false, &["nth"]),
                ov("every", false, &["3"]),
                ov("packet", true, &["1"]),
            ],
            &[
                ov("mode", false, &["nth"]),
                ov("every", false, &["4294967296"]),
                ov("packet", false, &["0"]),
            ],
            &[
                ov("mode", false, &["random"]),
                ov("probability", false, &["0.1"]),
                ov("every", false, &["2"]),
                ov("packet", false, &["0"]),
            ],
            &[
                ov("mode", false, &["random"]),
                ov("mode", false, &["random"]),
                ov("probability", false, &["0.1"]),
            ],
        ];
        for opts in bad {
            assert!(parse(opts).is_err(), "{opts:?} accepted");
        }
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        assert!(Statistic
            .save(0, &[0; 8], &ctx, &mut String::new())
            .is_err());
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
        let alphabet = b"0x1.pPe+-naif() ";
        for _ in 0..20000 {
            let n = (noise(&mut seed) % 10) as usize;
            let s: String = (0..n)
                .map(|_| alphabet[(noise(&mut seed) % alphabet.len() as u64) as usize] as char)
                .collect();
            let _ = parse_c_double(&s);
        }
        for _ in 0..2000 {
            let mut data = vec![0u8; std::mem::size_of::<xt_statistic_info>()];
            data.iter_mut().for_each(|b| *b = noise(&mut seed) as u8);
            data[field::MODE] &= 1;
            let _ = Statistic.save(0, &data, &ctx(), &mut String::new());
        }
    }
}
