//! `-m string` (xt_string): search the packet for a byte pattern with one of
//! the kernel's textsearch algorithms (`bm`, `kmp`).
//!
//! Revision 1 (what iptables 1.8.9 picks) keeps the inversion in a flags
//! byte that also carries `--icase`; revision 0 has only an invert byte at
//! the same offset and no `--icase`.

use std::mem::offset_of;

use super::{
    once, opt, parse_uint, save_quoted, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload,
    Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    xt_string_info, XT_STRING_FLAG_IGNORECASE, XT_STRING_FLAG_INVERT, XT_STRING_MAX_ALGO_NAME_SIZE,
    XT_STRING_MAX_PATTERN_SIZE,
};

pub(super) static CODECS: &[&dyn Codec] = &[&StringMatch];

mod field {
    use super::*;
    pub const FROM_OFFSET: usize = offset_of!(xt_string_info, from_offset);
    pub const TO_OFFSET: usize = offset_of!(xt_string_info, to_offset);
    pub const ALGO: usize = offset_of!(xt_string_info, algo);
    pub const PATTERN: usize = offset_of!(xt_string_info, pattern);
    pub const PATLEN: usize = offset_of!(xt_string_info, patlen);
    /// `u.v0.invert` (revision 0) or `u.v1.flags` (revision 1): one byte.
    pub const FLAGS: usize = offset_of!(xt_string_info, u);
}

const PATTERN_MAX: usize = XT_STRING_MAX_PATTERN_SIZE as usize;
const ALGO_MAX: usize = XT_STRING_MAX_ALGO_NAME_SIZE as usize;

/// parse_hex_string of libxt_string: text with `|hex hex|` blocks (spaces
/// allowed after the opening `|` and between byte pairs) and `\c` for a
/// literal character outside them. Follows the C loop step by step,
/// including its leniencies (a character right after a closing `|` is
/// always taken literally).
fn parse_hex_string(s: &str) -> ExtResult<Vec<u8>> {
    let b = crate::text::to_bytes(s);
    let b = &b[..];
    let slen = b.len();
    // The C code may look one or two bytes ahead; past the end it sees NUL.
    let at = |k: usize| b.get(k).copied().unwrap_or(0);
    if slen == 0 {
        return Err("STRING must contain at least one char".into());
    }
    let (mut i, mut hex_f, mut literal_f) = (0usize, false, false);
    let mut out = Vec::with_capacity(PATTERN_MAX);
    while i < slen {
        if out.len() >= PATTERN_MAX {
            return Err(format!("STRING too long \"{s}\""));
        }
        if b[i] == b'\\' && !hex_f {
            literal_f = true;
        } else if b[i] == b'\\' {
            return Err("Cannot include literals in hex data".into());
        } else if b[i] == b'|' {
            if hex_f {
                hex_f = false;
            } else {
                hex_f = true;
                // Skip white space just after the opening `|`.
                while at(i + 1) == b' ' {
                    i += 1;
                }
            }
            if i + 1 >= slen {
                break;
            }
            i += 1;
        }
        if literal_f {
            if i + 1 >= slen {
                return Err("Bad literal placement at end of string".into());
            }
            out.push(b[i + 1]);
            i += 2;
            literal_f = false;
        } else if hex_f {
            if i + 1 >= slen {
                return Err("Odd number of hex digits".into());
            }
            if i + 2 >= slen {
                // A hex block must end with `|`.
                return Err("Invalid hex block".into());
            }
            for c in [b[i], b[i + 1]] {
                if !c.is_ascii_hexdigit() {
                    return Err(format!("Invalid hex char '{}'", c as char));
                }
            }
            let hi = (b[i] as char).to_digit(16).unwrap_or(0);
            let lo = (b[i + 1] as char).to_digit(16).unwrap_or(0);
            out.push((hi << 4 | lo) as u8);
            i += if at(i + 2) == b' ' { 3 } else { 2 };
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// is_hex_string of libxt_string: print as hex when a byte is not
/// printable ASCII or the pattern ends in a backslash.
fn needs_hex(pattern: &[u8]) -> bool {
    pattern.iter().any(|&c| !(0x20..0x7f).contains(&c)) || pattern.last() == Some(&b'\\')
}

struct StringMatch;

impl Codec for StringMatch {
    fn name(&self) -> &'static str {
        "string"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[1, 0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("from", Arg::One),
            opt("to", Arg::One),
            opt("algo", Arg::One),
            opt("icase", Arg::None),
            opt("string", Arg::One),
            opt("hex-string", Arg::One),
        ];
        O
    }

    fn parse(&self, rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_string_info>();
        let mut seen = Vec::new();
        let (mut from, mut to) = (0u16, u16::MAX);
        let mut flags = 0u8;
        let mut patlen = 0usize;
        for o in opts {
            once(&mut seen, o, "string")?;
            if o.invert && !matches!(o.name, "string" | "hex-string") {
                return Err(format!(
                    "string: option \"--{}\" cannot be inverted.",
                    o.name
                ));
            }
            match o.name {
                "from" | "to" => {
                    let v = parse_uint(o.arg(), 0, u16::MAX.into()).ok_or_else(|| {
                        format!(
                            "string: bad value for option \"--{}\", or out of range (0-65535).",
                            o.name
                        )
                    })? as u16;
                    if o.name == "from" {
                        from = v;
                    } else {
                        to = v;
                    }
                }
                "algo" => {
                    // XTTYPE_STRING into char[16]: cut to 15 bytes, NUL-terminated.
                    let a = o.arg_bytes();
                    let a = &a[..a.len().min(ALGO_MAX - 1)];
                    p.bytes(field::ALGO, &[0; ALGO_MAX]).bytes(field::ALGO, a);
                }
                "string" | "hex-string" => {
                    let pattern = if o.name == "string" {
                        let s = o.arg_bytes();
                        if s.len() > PATTERN_MAX {
                            return Err(format!("STRING too long \"{}\"", o.arg()));
                        }
                        s.to_vec()
                    } else {
                        parse_hex_string(o.arg())?
                    };
                    p.bytes(field::PATTERN, &[0; PATTERN_MAX]);
                    p.bytes(field::PATTERN, &pattern);
                    patlen = pattern.len();
                    p.u8(field::PATLEN, patlen as u8);
                    if o.invert {
                        flags |= XT_STRING_FLAG_INVERT as u8;
                    }
                }
                "icase" => {
                    if rev == 0 {
                        return Err("Kernel doesn't support --icase".into());
                    }
                    flags |= XT_STRING_FLAG_IGNORECASE as u8;
                }
                _ => return Err(super::unknown_option("string", o)),
            }
        }
        let has = |n: &str| seen.contains(&n);
        if !has("string") && !has("hex-string") {
            return Err("STRING match: You must specify `--string' or `--hex-string'".into());
        }
        if !has("algo") {
            return Err("string: option \"--algo\" must be specified".into());
        }
        if has("string") && has("hex-string") {
            return Err(
                "string: option \"--string\" cannot be used together with \"--hex-string\".".into(),
            );
        }
        // What iptables leaves to the kernel, which answers EINVAL.
        if from > to {
            return Err(format!(
                "string: --from {from} is beyond --to {to} (the kernel refuses it)"
            ));
        }
        if patlen == 0 {
            return Err("string: the pattern is empty (the kernel refuses it)".into());
        }
        // Revision 0's invert byte and revision 1's flags share the offset;
        // INVERT is 1 in both.
        p.u16(field::FROM_OFFSET, from).u16(field::TO_OFFSET, to);
        p.u8(field::FLAGS, flags);
        Ok(p.finish())
    }

    fn save(&self, rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, field::FLAGS + 1)?;
        let patlen = usize::from(r.u8(field::PATLEN)?);
        if patlen > PATTERN_MAX {
            return Err(format!(
                "string: pattern length {patlen} exceeds {PATTERN_MAX}"
            ));
        }
        let pattern = r.bytes(field::PATTERN, patlen)?;
        let flags = r.u8(field::FLAGS)?;
        let invert = if rev == 0 {
            flags != 0
        } else {
            flags & XT_STRING_FLAG_INVERT as u8 != 0
        };
        if invert {
            out.push_str(" !");
        }
        if needs_hex(pattern) {
            out.push_str(" --hex-string \"|");
            for c in pattern {
                out.push_str(&format!("{c:02x}"));
            }
            out.push_str("|\"");
        } else {
            out.push_str(" --string");
            save_quoted(out, pattern);
        }
        let algo = r.cstr(field::ALGO, ALGO_MAX)?;
        out.push_str(" --algo ");
        out.push_str(&crate::text::from_bytes(algo));
        let from = r.u16(field::FROM_OFFSET)?;
        if from != 0 {
            out.push_str(&format!(" --from {from}"));
        }
        let to = r.u16(field::TO_OFFSET)?;
        if to != u16::MAX {
            out.push_str(&format!(" --to {to}"));
        }
        if rev > 0 && flags & XT_STRING_FLAG_IGNORECASE as u8 != 0 {
            out.push_str(" --icase");
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

    fn parse(rev: u8, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        StringMatch.parse(rev, opts, &ctx).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(rev: u8, data: &[u8]) -> String {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        StringMatch.save(rev, data, &ctx, &mut out).unwrap();
        out
    }

    /// A pattern field: the given bytes, NUL-filled to 128.
    fn pattern_field(hex_bytes: &str) -> String {
        format!("{hex_bytes}{}", "0".repeat(256 - hex_bytes.len()))
    }

    // Captured from the kernel (revision 1) after iptables-legacy-restore of
    // `-m string --algo bm --string "GET /"`.
    fn get_slash() -> Vec<u8> {
        fixture(&format!(
            "
            0000            # from_offset 0
            ffff            # to_offset 65535
            626d0000000000000000000000000000    # algo \"bm\"
            {}              # pattern \"GET /\"
            05              # patlen 5
            00              # u.v1.flags: none
            0000            # padding before the 8-aligned pointer
            0000000000000000    # config pointer (kernel-private, zeroed)",
            pattern_field("474554202f")
        ))
    }

    // `-m string --algo kmp ! --hex-string "|41 42|C|0d0a|" --from 10 --to 200 --icase`
    fn hex_icase() -> Vec<u8> {
        fixture(&format!(
            "
            0a00            # from_offset 10
            c800            # to_offset 200
            6b6d7000000000000000000000000000    # algo \"kmp\"
            {}              # pattern 41 42 43 0d 0a
            05              # patlen 5
            03              # flags INVERT|IGNORECASE
            0000 0000000000000000",
            pattern_field("4142430d0a")
        ))
    }

    // `-m string --algo bm --hex-string "|41||42|"`: the `|` after a closing
    // `|` is taken literally, so the pattern is "A|42".
    fn odd_bars() -> Vec<u8> {
        fixture(&format!(
            "0000 ffff 626d0000000000000000000000000000 {} 04 00 0000 0000000000000000",
            pattern_field("417c3432")
        ))
    }

    // `-m string --algo bm --string "ab\\"` (restore-file quoting: `ab\`);
    // saved as hex because it ends in a backslash.
    fn backslash() -> Vec<u8> {
        fixture(&format!(
            "0000 ffff 626d0000000000000000000000000000 {} 03 00 0000 0000000000000000",
            pattern_field("61625c")
        ))
    }

    #[test]
    fn parse_matches_kernel_bytes() {
        let algo_bm = ov("algo", false, &["bm"]);
        assert_eq!(
            parse(1, &[algo_bm.clone(), ov("string", false, &["GET /"])]).unwrap(),
            get_slash()
        );
        assert_eq!(
            parse(
                1,
                &[
                    ov("algo", false, &["kmp"]),
                    ov("hex-string", true, &["|41 42|C|0d0a|"]),
                    ov("from", false, &["10"]),
                    ov("to", false, &["200"]),
                    ov("icase", false, &[]),
                ]
            )
            .unwrap(),
            hex_icase()
        );
        assert_eq!(
            parse(
                1,
                &[algo_bm.clone(), ov("hex-string", false, &["|41||42|"])]
            )
            .unwrap(),
            odd_bars()
        );
        assert_eq!(
            parse(1, &[algo_bm, ov("string", false, &["ab\\"])]).unwrap(),
            backslash()
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(save(1, &get_slash()), " --string \"GET /\" --algo bm");
        assert_eq!(
            save(1, &hex_icase()),
            " ! --hex-string \"|4142430d0a|\" --algo kmp --from 10 --to 200 --icase"
        );
        assert_eq!(save(1, &odd_bars()), " --string \"A|42\" --algo bm");
        assert_eq!(
            save(1, &backslash()),
            " --hex-string \"|61625c|\" --algo bm"
        );
    }

    #[test]
    fn revision_0_has_an_invert_byte_and_no_icase() {
        let opts = [ov("algo", false, &["bm"]), ov("string", true, &["GET /"])];
        let v0 = parse(0, &opts).unwrap();
        assert_eq!(v0[field::FLAGS], 1);
        assert_eq!(save(0, &v0), " ! --string \"GET /\" --algo bm");
        let icase = [
            ov("algo", false, &["bm"]),
            ov("string", false, &["x"]),
            ov("icase", false, &[]),
        ];
        assert!(parse(0, &icase).is_err());
    }

    #[test]
    fn hex_string_syntax() {
        let h = |s: &str| parse_hex_string(s);
        assert_eq!(h("a\\|b").unwrap(), b"a|b");
        assert_eq!(h("|  41 42|").unwrap(), b"AB");
        assert_eq!(h("x|41|").unwrap(), b"xA");
        assert_eq!(h("A|").unwrap(), b"A");
        assert_eq!(h("||").unwrap_err(), "Odd number of hex digits");
        assert_eq!(h("|4").unwrap_err(), "Odd number of hex digits");
        assert_eq!(h("|41").unwrap_err(), "Invalid hex block");
        assert_eq!(h("|4g|").unwrap_err(), "Invalid hex char 'g'");
        assert_eq!(h("|\\41|").unwrap_err(), "Invalid hex char '\\'");
        assert_eq!(
            h("ab\\").unwrap_err(),
            "Bad literal placement at end of string"
        );
        assert_eq!(h("").unwrap_err(), "STRING must contain at least one char");
        // The length check runs before each step, so 128 hex bytes and then
        // the closing `|` is already too long (as in iptables 1.8.9).
        assert!(h(&format!("|{}|", "41".repeat(128))).is_err());
        assert_eq!(h(&format!("|{}|B", "41".repeat(127))).unwrap().len(), 128);
        assert_eq!(h("|41||42|").unwrap(), b"A|42");
    }

    #[test]
    fn bad_values_are_refused() {
        let algo = ov("algo", false, &["bm"]);
        let s = ov("string", false, &["x"]);
        let bad: Vec<Vec<OptValue>> = vec![
            vec![s.clone()],
            vec![algo.clone()],
            vec![algo.clone(), s.clone(), ov("hex-string", false, &["|41|"])],
            vec![algo.clone(), ov("string", false, &[&"x".repeat(129)])],
            vec![algo.clone(), ov("string", false, &[""])],
            vec![algo.clone(), s.clone(), ov("from", false, &["65536"])],
            vec![algo.clone(), s.clone(), ov("to", false, &["-1"])],
            vec![
                algo.clone(),
                s.clone(),
                ov("from", false, &["10"]),
                ov("to", false, &["5"]),
            ],
            vec![algo.clone(), s.clone(), ov("from", true, &["1"])],
            vec![algo.clone(), s.clone(), ov("string", false, &["y"])],
            vec![algo.clone(), algo.clone(), s.clone()],
        ];
        for opts in &bad {
            assert!(parse(1, opts).is_err(), "{opts:?} accepted");
        }
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut long = get_slash();
        long[field::PATLEN] = 200;
        assert!(StringMatch
            .save(1, &long, &ctx, &mut String::new())
            .is_err());
        assert!(StringMatch
            .save(1, &[0; 100], &ctx, &mut String::new())
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
        let alphabet = b"|\\ 0aF9g";
        for _ in 0..20000 {
            let n = (noise(&mut seed) % 12) as usize;
            let s: String = (0..n)
                .map(|_| alphabet[(noise(&mut seed) % alphabet.len() as u64) as usize] as char)
                .collect();
            let _ = parse_hex_string(&s);
        }
        for _ in 0..2000 {
            let mut data = vec![0u8; std::mem::size_of::<xt_string_info>()];
            data.iter_mut().for_each(|b| *b = noise(&mut seed) as u8);
            for rev in [0, 1] {
                let _ = StringMatch.save(rev, &data, &ctx(), &mut String::new());
            }
        }
    }
}
