//! `-m u32` (xt_u32): tests on 32-bit words read from the packet,
//! `[!] --u32 TESTS`.
//!
//! One revision (0) for both families. The grammar (libxt_u32):
//!
//! ```text
//! tests    := location "=" value | tests "&&" location "=" value
//! value    := range | value "," range
//! range    := number | number ":" number
//! location := number | location operator number
//! operator := "&" | "<<" | ">>" | "@"
//! ```
//!
//! Numbers are C numbers (`0x` hex, leading `0` octal) up to 4294967295;
//! blanks may stand between the tokens. At most 10 tests, each with at most
//! 10 location numbers and 10 value ranges.

use std::mem::{offset_of, size_of};

use super::recent::{XtFlags, XtOpt, XTOPT_INVERT, XTOPT_MAND};
use super::{
    save_inv, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    xt_u32, xt_u32_location_element, xt_u32_test, xt_u32_value_element, XT_U32_AND, XT_U32_AT,
    XT_U32_LEFTSH, XT_U32_MAXSIZE, XT_U32_RIGHTSH,
};

pub(super) static CODECS: &[&dyn Codec] = &[&U32];

mod field {
    use super::*;
    pub const TESTS: usize = offset_of!(xt_u32, tests);
    pub const NTESTS: usize = offset_of!(xt_u32, ntests);
    pub const INVERT: usize = offset_of!(xt_u32, invert);
    pub const TEST_SIZE: usize = size_of::<xt_u32_test>();
    pub const LOCATION: usize = offset_of!(xt_u32_test, location);
    pub const VALUE: usize = offset_of!(xt_u32_test, value);
    pub const NNUMS: usize = offset_of!(xt_u32_test, nnums);
    pub const NVALUES: usize = offset_of!(xt_u32_test, nvalues);
    pub const LOC_SIZE: usize = size_of::<xt_u32_location_element>();
    pub const LOC_NUMBER: usize = offset_of!(xt_u32_location_element, number);
    pub const LOC_NEXTOP: usize = offset_of!(xt_u32_location_element, nextop);
    pub const VAL_SIZE: usize = size_of::<xt_u32_value_element>();
    pub const VAL_MIN: usize = offset_of!(xt_u32_value_element, min);
    pub const VAL_MAX: usize = offset_of!(xt_u32_value_element, max);
}

/// XT_U32_MAXSIZE: tests per match, numbers per location, ranges per value.
const MAXSIZE: usize = XT_U32_MAXSIZE as usize;
/// The arrays have one spare slot (`[XT_U32_MAXSIZE + 1]`).
const SLOTS: usize = MAXSIZE + 1;

const O_U32: u8 = 0;
const TABLE: [XtOpt; 1] = [XtOpt::new(
    "u32",
    O_U32,
    Arg::One,
    XTOPT_MAND | XTOPT_INVERT,
)];
static SPECS: [OptSpec; 1] = XtOpt::specs(&TABLE);

/// One test: location numbers with the operator before each (the first
/// has none), and value ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct U32Test {
    /// (operator before it, number); the first operator is unused (0).
    pub location: Vec<(u8, u32)>,
    /// (min, max) ranges.
    pub value: Vec<(u32, u32)>,
}

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// xtables_strtoui(s, &end, .., 0, UINT32_MAX) as libxt_u32's parse_number
/// uses it: C blanks and a `+` may lead, no `-`; base 0; returns the value
/// and the bytes consumed.
fn c_number(s: &[u8]) -> Option<(u32, usize)> {
    let mut i = 0;
    while s.get(i).is_some_and(|&b| is_c_space(b)) {
        i += 1;
    }
    match s.get(i) {
        Some(b'-') => return None,
        Some(b'+') => i += 1,
        _ => {}
    }
    let radix = if s.get(i) == Some(&b'0')
        && s.get(i + 1).is_some_and(|b| b | 0x20 == b'x')
        && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    {
        i += 2;
        16
    } else if s.get(i) == Some(&b'0') {
        8
    } else {
        10
    };
    let start = i;
    let mut v: u64 = 0;
    while let Some(d) = s.get(i).and_then(|&b| (b as char).to_digit(radix)) {
        v = v.checked_mul(u64::from(radix))?.checked_add(u64::from(d))?;
        i += 1;
    }
    if i == start {
        return None;
    }
    Some((u32::try_from(v).ok()?, i))
}

/// Parses a u32 test string exactly as libxt_u32's u32_parse (same limits,
/// same messages with the character position).
pub(crate) fn parse_tests(arg: &str) -> ExtResult<Vec<U32Test>> {
    let s = arg.as_bytes();
    let at = |pos: usize| -> u8 { s.get(pos).copied().unwrap_or(0) };
    let number = |pos: &mut usize| -> ExtResult<u32> {
        let (v, used) = c_number(&s[*pos..])
            .ok_or_else(|| format!("u32: at char {}: not a number or out of range", *pos))?;
        *pos += used;
        Ok(v)
    };
    let mut tests = vec![U32Test::default()];
    let mut looking_for_values = false;
    let mut pos = 0;
    loop {
        while is_c_space(at(pos)) {
            pos += 1;
        }
        let ct = tests.last_mut().expect("at least one test");
        if at(pos) == 0 {
            if !looking_for_values {
                return Err("u32: abrupt end of input after location specifier".into());
            }
            if ct.value.is_empty() {
                return Err("u32: test ended with no value specified".into());
            }
            if tests.len() > MAXSIZE {
                return Err(format!("u32: at char {pos}: too many \"&&\"s"));
            }
            return Ok(tests);
        }
        if !looking_for_values {
            if at(pos) == b'=' {
                if ct.location.is_empty() {
                    return Err(format!("u32: at char {pos}: location spec missing"));
                }
                pos += 1;
                looking_for_values = true;
                continue;
            }
            let mut op = 0u8;
            if !ct.location.is_empty() {
                op = match at(pos) {
                    b'&' => XT_U32_AND,
                    b'<' | b'>' => {
                        let c = at(pos);
                        pos += 1;
                        if at(pos) != c {
                            return Err(format!(
                                "u32: at char {pos}: a second '{}' was expected",
                                c as char
                            ));
                        }
                        if c == b'<' {
                            XT_U32_LEFTSH
                        } else {
                            XT_U32_RIGHTSH
                        }
                    }
                    b'@' => XT_U32_AT,
                    _ => return Err(format!("u32: at char {pos}: operator expected")),
                } as u8;
                pos += 1;
            }
            let n = number(&mut pos)?;
            ct.location.push((op, n));
            if ct.location.len() > MAXSIZE {
                return Err(format!("u32: at char {pos}: too many operators"));
            }
        } else if at(pos) == b'&' {
            pos += 1;
            if at(pos) != b'&' {
                return Err(format!("u32: at char {pos}: a second '&' was expected"));
            }
            if ct.value.is_empty() {
                return Err(format!("u32: at char {pos}: value spec missing"));
            }
            tests.push(U32Test::default());
            if tests.len() > SLOTS {
                return Err(format!("u32: at char {pos}: too many \"&&\"s"));
            }
            pos += 1;
            looking_for_values = false;
        } else {
            if !ct.value.is_empty() {
                if at(pos) != b',' {
                    return Err(format!("u32: at char {pos}: expected \",\" or \"&&\""));
                }
                pos += 1;
            }
            let min = number(&mut pos)?;
            while is_c_space(at(pos)) {
                pos += 1;
            }
            let max = if at(pos) == b':' {
                pos += 1;
                number(&mut pos)?
            } else {
                min
            };
            ct.value.push((min, max));
            if ct.value.len() > MAXSIZE {
                return Err(format!("u32: at char {pos}: too many \",\"s"));
            }
        }
    }
}

/// Writes the tests into an xt_u32 payload.
fn encode(tests: &[U32Test], invert: bool) -> Vec<u8> {
    let mut p = Payload::of::<xt_u32>();
    for (t, test) in tests.iter().enumerate() {
        let base = field::TESTS + t * field::TEST_SIZE;
        for (i, &(op, number)) in test.location.iter().enumerate() {
            let off = base + field::LOCATION + i * field::LOC_SIZE;
            p.u32(off + field::LOC_NUMBER, number)
                .u8(off + field::LOC_NEXTOP, op);
        }
        for (i, &(min, max)) in test.value.iter().enumerate() {
            let off = base + field::VALUE + i * field::VAL_SIZE;
            p.u32(off + field::VAL_MIN, min)
                .u32(off + field::VAL_MAX, max);
        }
        p.u8(base + field::NNUMS, test.location.len() as u8)
            .u8(base + field::NVALUES, test.value.len() as u8);
    }
    p.u8(field::NTESTS, tests.len() as u8)
        .u8(field::INVERT, u8::from(invert));
    p.finish()
}

/// Reads the tests back (counts above the array sizes are refused: the
/// kernel never holds them).
fn decode(data: &[u8]) -> ExtResult<(Vec<U32Test>, bool)> {
    let r = Reader::new(data, size_of::<xt_u32>())?;
    let ntests = usize::from(r.u8(field::NTESTS)?);
    let corrupt = |what: &str, n: usize| format!("u32: payload has {n} {what} (at most {SLOTS})");
    if ntests > SLOTS {
        return Err(corrupt("tests", ntests));
    }
    let mut tests = Vec::with_capacity(ntests);
    for t in 0..ntests {
        let base = field::TESTS + t * field::TEST_SIZE;
        let nnums = usize::from(r.u8(base + field::NNUMS)?);
        let nvalues = usize::from(r.u8(base + field::NVALUES)?);
        if nnums > SLOTS || nvalues > SLOTS {
            return Err(corrupt("numbers or ranges in a test", nnums.max(nvalues)));
        }
        let mut test = U32Test::default();
        for i in 0..nnums {
            let off = base + field::LOCATION + i * field::LOC_SIZE;
            test.location.push((
                r.u8(off + field::LOC_NEXTOP)?,
                r.u32(off + field::LOC_NUMBER)?,
            ));
        }
        for i in 0..nvalues {
            let off = base + field::VALUE + i * field::VAL_SIZE;
            test.value
                .push((r.u32(off + field::VAL_MIN)?, r.u32(off + field::VAL_MAX)?));
        }
        tests.push(test);
    }
    Ok((tests, r.u8(field::INVERT)? != 0))
}

/// u32_dump: the tests in hex, in double quotes, with a leading space.
fn dump(out: &mut String, tests: &[U32Test]) {
    out.push_str(" \"");
    for (t, test) in tests.iter().enumerate() {
        if t > 0 {
            out.push_str("&&");
        }
        for (i, &(op, number)) in test.location.iter().enumerate() {
            if i > 0 {
                out.push_str(match u32::from(op) {
                    XT_U32_AND => "&",
                    XT_U32_LEFTSH => "<<",
                    XT_U32_RIGHTSH => ">>",
                    XT_U32_AT => "@",
                    _ => "",
                });
            }
            out.push_str(&format!("0x{number:x}"));
        }
        out.push('=');
        for (i, &(min, max)) in test.value.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if min == max {
                out.push_str(&format!("0x{min:x}"));
            } else {
                out.push_str(&format!("0x{min:x}:0x{max:x}"));
            }
        }
    }
    out.push('"');
}

struct U32;

impl Codec for U32 {
    fn name(&self) -> &'static str {
        "u32"
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
        &SPECS
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut xf = XtFlags::default();
        let mut parsed = None;
        for o in opts {
            xf.take("u32", &TABLE, o)?;
            parsed = Some((parse_tests(o.arg())?, o.invert));
        }
        xf.fcheck("u32", &TABLE)?;
        let (tests, invert) = parsed.unwrap_or_default();
        Ok(encode(&tests, invert))
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let (tests, invert) = decode(data)?;
        save_inv(out, invert);
        out.push_str(" --u32");
        dump(out, &tests);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::xt_align;
    use crate::rules::IpMatch;

    fn ov(invert: bool, arg: &str) -> OptValue<'static> {
        OptValue {
            name: "u32",
            invert,
            args: vec![arg.to_string()].into(),
        }
    }

    fn parse(family: Family, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        let mut v = U32.parse(0, opts, &ctx)?;
        v.resize(xt_align(v.len()), 0);
        Ok(v)
    }

    fn save(data: &[u8]) -> ExtResult<String> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        U32.save(0, data, &ctx, &mut out)?;
        Ok(out)
    }

    /// The 1984-byte payload as the kernel holds it: zero except for the
    /// given runs (offset, hex bytes).
    fn sparse(runs: &[(usize, &str)]) -> Vec<u8> {
        let mut v = vec![0u8; 1984];
        for &(off, h) in runs {
            let b = crate::ext::testutil::hex(h);
            v[off..off + b.len()].copy_from_slice(&b);
        }
        v
    }

    // Kernel capture after iptables-legacy-restore of
    // `-m u32 --u32 "0>>22&0x3C@12>>26&0x3C@0=0x12345678"` (every other byte 0).
    // Test 0 is at 0: location[i] (8 bytes: number, nextop, pad) at 8*i,
    // value[i] (min, max) at 88 + 8*i, nnums at 176, nvalues at 177;
    // ntests at 1980, invert at 1981.
    fn ip_payload_word() -> Vec<u8> {
        sparse(&[
            (0, "00000000 00"),        // location[0]: 0
            (8, "16000000 02"),        // >> 22
            (16, "3c000000 00"),       // & 0x3c
            (24, "0c000000 03"),       // @ 12
            (32, "1a000000 02"),       // >> 26
            (40, "3c000000 00"),       // & 0x3c
            (48, "00000000 03"),       // @ 0
            (88, "78563412 78563412"), // value[0]: 0x12345678
            (176, "07 01"),            // nnums 7, nvalues 1
            (1980, "01 00"),           // ntests 1, invert no
        ])
    }

    // Kernel capture of `-m u32 ! --u32 "6&0xFF=1,6:17,0x20:0x30&&  4 &
    // 0x1FFF = 0 && 0<<3=5"`; test 1 starts at 180, test 2 at 360.
    fn three_tests_inverted() -> Vec<u8> {
        sparse(&[
            (0, "06000000 00"),         // t0 location: 6
            (8, "ff000000 00"),         //   & 0xff
            (88, "01000000 01000000"),  // t0 values: 1
            (96, "06000000 11000000"),  //   6:17
            (104, "20000000 30000000"), //   0x20:0x30
            (176, "02 03"),             // t0 nnums 2, nvalues 3
            (180, "04000000 00"),       // t1 location: 4
            (188, "ff1f0000 00"),       //   & 0x1fff
            (268, "00000000 00000000"), // t1 value: 0
            (356, "02 01"),             // t1 nnums 2, nvalues 1
            (360, "00000000 00"),       // t2 location: 0
            (368, "03000000 01"),       //   << 3
            (448, "05000000 05000000"), // t2 value: 5
            (536, "02 01"),             // t2 nnums 2, nvalues 1
            (1980, "03 01"),            // ntests 3, invert yes
        ])
    }

    // Kernel capture of `-m u32 --u32 " 0x10 @ 010 = 4294967295 : 0xffffffff "`.
    fn blanks_and_bases() -> Vec<u8> {
        sparse(&[
            (0, "10000000"),           // location: 0x10
            (8, "08000000 03"),        //   @ 010 (octal 8)
            (88, "ffffffff ffffffff"), // value: 0xffffffff
            (176, "02 01"),
            (1980, "01 00"),
        ])
    }

    // Kernel capture of the longest test iptables takes:
    // `--u32 "0&1&2&3&4&5&6&7&8&9=1,2,3,4,5,6,7,8,9,10"`.
    fn ten_numbers_ten_values() -> Vec<u8> {
        let mut runs = vec![(176, "0a 0a"), (1980, "01 00")];
        // location[i]: number i, nextop 0 (XT_U32_AND; unused for i = 0)
        let nums: Vec<String> = (0..10u32)
            .map(|i| format!("{:08x}00", i.swap_bytes()))
            .collect();
        // value[i]: i+1 : i+1
        let vals: Vec<String> = (1..=10u32)
            .map(|i| format!("{0:08x}{0:08x}", i.swap_bytes()))
            .collect();
        for (i, n) in nums.iter().enumerate() {
            runs.push((8 * i, n.as_str()));
        }
        for (i, v) in vals.iter().enumerate() {
            runs.push((88 + 8 * i, v.as_str()));
        }
        sparse(&runs)
    }

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(
            parse(
                Family::V4,
                &[ov(false, "0>>22&0x3C@12>>26&0x3C@0=0x12345678")]
            )
            .unwrap(),
            ip_payload_word()
        );
        assert_eq!(
            parse(
                Family::V6,
                &[ov(
                    true,
                    "6&0xFF=1,6:17,0x20:0x30&&  4 & 0x1FFF = 0 && 0<<3=5"
                )]
            )
            .unwrap(),
            three_tests_inverted()
        );
        assert_eq!(
            parse(
                Family::V4,
                &[ov(false, " 0x10 @ 010 = 4294967295 : 0xffffffff ")]
            )
            .unwrap(),
            blanks_and_bases()
        );
        assert_eq!(
            parse(
                Family::V4,
                &[ov(false, "0&1&2&3&4&5&6&7&8&9=1,2,3,4,5,6,7,8,9,10")]
            )
            .unwrap(),
            ten_numbers_ten_values()
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(
            save(&ip_payload_word()).unwrap(),
            " --u32 \"0x0>>0x16&0x3c@0xc>>0x1a&0x3c@0x0=0x12345678\""
        );
        assert_eq!(
            save(&three_tests_inverted()).unwrap(),
            " ! --u32 \"0x6&0xff=0x1,0x6:0x11,0x20:0x30&&0x4&0x1fff=0x0&&0x0<<0x3=0x5\""
        );
        assert_eq!(
            save(&blanks_and_bases()).unwrap(),
            " --u32 \"0x10@0x8=0xffffffff\""
        );
        assert_eq!(
            save(&ten_numbers_ten_values()).unwrap(),
            " --u32 \"0x0&0x1&0x2&0x3&0x4&0x5&0x6&0x7&0x8&0x9=0x1,0x2,0x3,0x4,0x5,0x6,0x7,0x8,0x9,0xa\""
        );
    }

    #[test]
    fn ten_tests_is_the_limit() {
        let ten: Vec<String> = (1..=10).map(|i| format!("{i}={i}")).collect();
        let tests = parse_tests(&ten.join("&&")).unwrap();
        assert_eq!(tests.len(), 10);
        let eleven = format!("{}&&11=11", ten.join("&&"));
        assert_eq!(
            parse_tests(&eleven).unwrap_err(),
            format!("u32: at char {}: too many \"&&\"s", eleven.len())
        );
        let twelve = format!("{eleven}&&12=12");
        // The 11th `&&` itself is refused, at its second `&`.
        assert_eq!(
            parse_tests(&twelve).unwrap_err(),
            format!("u32: at char {}: too many \"&&\"s", eleven.len() + 1)
        );
    }

    #[test]
    fn bad_values_are_refused() {
        for (bad, msg) in [
            ("", "u32: abrupt end of input after location specifier"),
            ("0", "u32: abrupt end of input after location specifier"),
            ("0=", "u32: test ended with no value specified"),
            ("=1", "u32: at char 0: location spec missing"),
            ("0 1=1", "u32: at char 2: operator expected"),
            ("0<1=1", "u32: at char 2: a second '<' was expected"),
            ("0>1=1", "u32: at char 2: a second '>' was expected"),
            ("0=1&2=2", "u32: at char 4: a second '&' was expected"),
            ("0=&&1=1", "u32: at char 3: value spec missing"),
            ("0=1 2", "u32: at char 4: expected \",\" or \"&&\""),
            ("0=-1", "u32: at char 2: not a number or out of range"),
            (
                "0=4294967296",
                "u32: at char 2: not a number or out of range",
            ),
            ("0&x=1", "u32: at char 2: not a number or out of range"),
            ("0=1:", "u32: at char 4: not a number or out of range"),
            (
                "0&1&2&3&4&5&6&7&8&9&10=1",
                "u32: at char 22: too many operators",
            ),
            (
                "0=1,2,3,4,5,6,7,8,9,10,11",
                "u32: at char 25: too many \",\"s",
            ),
        ] {
            assert_eq!(parse_tests(bad).unwrap_err(), msg, "{bad:?}");
        }
        assert!(parse(Family::V4, &[])
            .unwrap_err()
            .contains("must be specified"));
        assert!(parse(Family::V4, &[ov(false, "0=0"), ov(false, "0=0")])
            .unwrap_err()
            .contains("only be used once"));
        assert!(save(&[0; 100]).is_err());
        let mut corrupt = ip_payload_word();
        corrupt[1980] = 12;
        assert!(save(&corrupt).is_err());
    }
}
