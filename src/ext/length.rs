//! `-m length` (xt_length): the length of the layer-3 packet, a value or an
//! inclusive range, optionally negated.
//!
//! Also home of [`parse_uint_range`], libxtables' XTTYPE_*RC parser, which
//! `tcpmss` shares.

use std::mem::offset_of;

use super::{
    opt, save_inv, strtoul_prefix, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::xt_length_info;

pub(super) static CODECS: &[&dyn Codec] = &[&Length];

mod field {
    use super::*;
    pub const MIN: usize = offset_of!(xt_length_info, min);
    pub const MAX: usize = offset_of!(xt_length_info, max);
    pub const INVERT: usize = offset_of!(xt_length_info, invert);
}

/// XTTYPE_UINT8RC/16RC/32RC as libxtables parses them (xtopt_parse_mint):
/// up to two `:`-separated numbers (base 0, as strtoumax), each at most
/// `lmax`; an empty first part means 0, an empty second part means `lmax`.
/// Returns the values given (one or two), like `cb->val.uXX_range` with
/// `cb->nvals`.
pub(crate) fn parse_uint_range(ext: &str, o: &OptValue, lmax: u64) -> ExtResult<Vec<u64>> {
    const MAXITER: usize = 2;
    let mut vals = Vec::with_capacity(MAXITER);
    let mut arg = o.arg();
    loop {
        if vals.len() == MAXITER {
            return Err(format!(
                "{ext}: Too many components for option \"--{}\" (max: {MAXITER})",
                o.name
            ));
        }
        let (value, end) = if arg.is_empty() || arg.starts_with(':') {
            (if vals.len() == 1 { lmax } else { 0 }, arg)
        } else {
            let negative = arg
                .trim_start_matches(|c: char| c.is_ascii_whitespace())
                .starts_with('-');
            match strtoul_prefix(arg).filter(|&(v, _)| !negative && v <= lmax) {
                Some((v, end)) => {
                    if !end.is_empty() && !end.starts_with(':') {
                        return Err(format!(
                            "{ext}: Argument to \"--{}\" has unexpected characters near \"{end}\".",
                            o.name
                        ));
                    }
                    (v, end)
                }
                None => {
                    return Err(format!(
                        "{ext}: bad value for option \"--{}\" near \"{arg}\", or out of range (0-{lmax}).",
                        o.name
                    ))
                }
            }
        };
        vals.push(value);
        match end.strip_prefix(':') {
            Some(rest) => arg = rest,
            None => return Ok(vals),
        }
    }
}

/// Prints `N` or `N:M` as length and tcpmss do.
pub(crate) fn save_u16_range(out: &mut String, min: u16, max: u16) {
    if min == max {
        out.push_str(&min.to_string());
    } else {
        out.push_str(&format!("{min}:{max}"));
    }
}

struct Length;

impl Codec for Length {
    fn name(&self) -> &'static str {
        "length"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[opt("length", Arg::One)];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_length_info>();
        let mut seen = Vec::new();
        for o in opts {
            if o.name != "length" {
                return Err(super::unknown_option("length", o));
            }
            super::once(&mut seen, o, "length")?;
            let v = parse_uint_range("length", o, u16::MAX.into())?;
            // libxt_length takes the range as given: min > max is not refused.
            let min = v[0] as u16;
            let max = v.get(1).copied().unwrap_or(v[0]) as u16;
            p.u16(field::MIN, min).u16(field::MAX, max);
            p.u8(field::INVERT, o.invert.into());
        }
        if seen.is_empty() {
            return Err("length: option \"--length\" must be specified".into());
        }
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_length_info>())?;
        save_inv(out, r.u8(field::INVERT)? != 0);
        out.push_str(" --length ");
        save_u16_range(out, r.u16(field::MIN)?, r.u16(field::MAX)?);
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
        Length.parse(0, opts, &ctx).map(|mut v| {
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
        Length.save(0, data, &ctx, &mut out).unwrap();
        out
    }

    // Captured from the kernel after iptables-legacy-restore of
    // `-m length ! --length 100:200`.
    const RANGE_INVERTED: &str = "
        6400        # min 100 (host order)
        c800        # max 200
        01          # invert
        000000      # padding to XT_ALIGN";

    // `-m length --length 1500`
    const SINGLE: &str = "
        dc05        # min 1500
        dc05        # max 1500
        00          # invert: no
        000000      # padding";

    // `-m length --length 9:` (an open range ends at 65535)
    const OPEN: &str = "
        0900 ffff 00 000000";

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(
            parse(&[ov("length", true, &["100:200"])]).unwrap(),
            fixture(RANGE_INVERTED)
        );
        assert_eq!(
            parse(&[ov("length", false, &["1500"])]).unwrap(),
            fixture(SINGLE)
        );
        assert_eq!(
            parse(&[ov("length", false, &["9:"])]).unwrap(),
            fixture(OPEN)
        );
        assert_eq!(
            parse(&[ov("length", false, &["0x5dc"])]).unwrap(),
            fixture(SINGLE)
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(save(&fixture(RANGE_INVERTED)), " ! --length 100:200");
        assert_eq!(save(&fixture(SINGLE)), " --length 1500");
        assert_eq!(save(&fixture(OPEN)), " --length 9:65535");
    }

    #[test]
    fn bad_values_are_refused() {
        for arg in ["65536", "1:2:3", "-1", "x", "5x", "1:70000", "::"] {
            assert!(
                parse(&[ov("length", false, &[arg])]).is_err(),
                "{arg} accepted"
            );
        }
        assert!(parse(&[]).is_err(), "missing --length accepted");
        assert!(parse(&[ov("length", false, &["1"]), ov("length", false, &["2"])]).is_err());
        assert!(save_short().is_err());
    }

    fn save_short() -> ExtResult<()> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        Length.save(0, &[0, 1], &ctx, &mut String::new())
    }

    #[test]
    fn range_parser_follows_libxtables() {
        let o = |a: &str| ov("length", false, &[a]);
        assert_eq!(parse_uint_range("length", &o(":7"), 65535).unwrap(), [0, 7]);
        assert_eq!(
            parse_uint_range("length", &o("7:"), 65535).unwrap(),
            [7, 65535]
        );
        assert_eq!(parse_uint_range("length", &o(""), 65535).unwrap(), [0]);
        assert_eq!(parse_uint_range("length", &o(" 010"), 65535).unwrap(), [8]);
        assert_eq!(
            parse_uint_range("length", &o("5x"), 65535).unwrap_err(),
            "length: Argument to \"--length\" has unexpected characters near \"x\"."
        );
        assert_eq!(
            parse_uint_range("length", &o("1:2:3"), 65535).unwrap_err(),
            "length: Too many components for option \"--length\" (max: 2)"
        );
    }
}
