//! `-m connbytes` (xt_connbytes): the packets, bytes or average packet
//! size a connection has seen so far, in one or both directions, against
//! a range `from[:to]`.
//!
//! A negated range is stored with its ends swapped (from > to), which is
//! how the kernel and iptables-save tell it; `! --connbytes N:N` therefore
//! cannot be told from `--connbytes N:N` and saves without the `!`, as in
//! iptables.

use std::mem::{offset_of, size_of};

use super::length::parse_uint_range;
use super::recent::{XtFlags, XtOpt, XTOPT_INVERT, XTOPT_MAND};
use super::{Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext};
use crate::rules::Family;
use crate::sys::bindings::{
    xt_connbytes_info, XT_CONNBYTES_AVGPKT, XT_CONNBYTES_BYTES, XT_CONNBYTES_DIR_BOTH,
    XT_CONNBYTES_DIR_ORIGINAL, XT_CONNBYTES_DIR_REPLY, XT_CONNBYTES_PKTS,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Connbytes];

mod field {
    use super::*;
    pub const FROM: usize = offset_of!(xt_connbytes_info, count.from);
    pub const TO: usize = offset_of!(xt_connbytes_info, count.to);
    pub const WHAT: usize = offset_of!(xt_connbytes_info, what);
    pub const DIRECTION: usize = offset_of!(xt_connbytes_info, direction);
}

const O_CONNBYTES: u8 = 0;
const O_DIR: u8 = 1;
const O_MODE: u8 = 2;
const TABLE: [XtOpt; 3] = [
    XtOpt::new(
        "connbytes",
        O_CONNBYTES,
        Arg::One,
        XTOPT_MAND | XTOPT_INVERT,
    ),
    XtOpt::new("connbytes-dir", O_DIR, Arg::One, XTOPT_MAND),
    XtOpt::new("connbytes-mode", O_MODE, Arg::One, XTOPT_MAND),
];
static SPECS: [OptSpec; 3] = XtOpt::specs(&TABLE);

const DIRECTIONS: &[(&str, u32)] = &[
    ("original", XT_CONNBYTES_DIR_ORIGINAL),
    ("reply", XT_CONNBYTES_DIR_REPLY),
    ("both", XT_CONNBYTES_DIR_BOTH),
];
const MODES: &[(&str, u32)] = &[
    ("packets", XT_CONNBYTES_PKTS),
    ("bytes", XT_CONNBYTES_BYTES),
    ("avgpkt", XT_CONNBYTES_AVGPKT),
];

/// A name from a table, compared exactly (libxt_connbytes uses strcmp).
fn lookup(table: &[(&str, u32)], arg: &str, what: &str) -> ExtResult<u8> {
    table
        .iter()
        .find(|(n, _)| *n == arg)
        .map(|(_, v)| *v as u8)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            format!(
                "Unknown --connbytes-{what} `{arg}': expected one of {}",
                names.join(", ")
            )
        })
}

fn name_of(table: &[(&'static str, u32)], v: u8) -> &'static str {
    table
        .iter()
        .find(|(_, n)| *n == u32::from(v))
        .map_or("unknown", |(n, _)| n)
}

struct Connbytes;

impl Codec for Connbytes {
    fn name(&self) -> &'static str {
        "connbytes"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        &SPECS
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_connbytes_info>();
        let mut xf = XtFlags::default();
        for o in opts {
            match xf.take("connbytes", &TABLE, o)? {
                O_CONNBYTES => {
                    let v = parse_uint_range("connbytes", o, u64::MAX)?;
                    let from = v[0];
                    let to = v.get(1).copied().unwrap_or(u64::MAX);
                    if to < from {
                        return Err(format!("{from} should be less than {to}"));
                    }
                    let (from, to) = if o.invert { (to, from) } else { (from, to) };
                    p.u64(field::FROM, from).u64(field::TO, to);
                }
                O_DIR => {
                    p.u8(field::DIRECTION, lookup(DIRECTIONS, o.arg(), "dir")?);
                }
                _ => {
                    p.u8(field::WHAT, lookup(MODES, o.arg(), "mode")?);
                }
            }
        }
        xf.fcheck("connbytes", &TABLE)?;
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<xt_connbytes_info>())?;
        let (mut from, mut to) = (r.u64(field::FROM)?, r.u64(field::TO)?);
        if from > to {
            out.push_str(" !");
            std::mem::swap(&mut from, &mut to);
        }
        out.push_str(&format!(" --connbytes {from}"));
        if to != 0 && to < u64::MAX {
            out.push_str(&format!(":{to}"));
        }
        out.push_str(" --connbytes-mode ");
        out.push_str(name_of(MODES, r.u8(field::WHAT)?));
        out.push_str(" --connbytes-dir ");
        out.push_str(name_of(DIRECTIONS, r.u8(field::DIRECTION)?));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;
    use crate::rules::IpMatch;

    fn ov(name: &'static str, invert: bool, arg: &str) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: vec![arg.to_string()].into(),
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
        Connbytes.parse(0, opts, &ctx).map(|mut v| {
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
        Connbytes.save(0, data, &ctx, &mut out).map(|_| out)
    }

    fn opts(range: &str, invert: bool, dir: &str, mode: &str) -> Vec<OptValue<'static>> {
        vec![
            ov("connbytes", invert, range),
            ov("connbytes-dir", false, dir),
            ov("connbytes-mode", false, mode),
        ]
    }

    // Captured from the kernel after iptables-legacy-restore of
    // `-m connbytes --connbytes 10:100 --connbytes-dir both --connbytes-mode bytes`.
    const RANGE: &str = "
        0a00000000000000    # count.from 10 (host order)
        6400000000000000    # count.to 100
        01                  # what XT_CONNBYTES_BYTES
        02                  # direction XT_CONNBYTES_DIR_BOTH
        000000000000        # padding to XT_ALIGN";

    // `-m connbytes ! --connbytes 1000 --connbytes-dir original --connbytes-mode avgpkt`:
    // the open range 1000..max, swapped for the negation.
    const OPEN_INV: &str = "
        ffffffffffffffff    # count.from: u64 max
        e803000000000000    # count.to 1000
        02                  # what XT_CONNBYTES_AVGPKT
        00                  # direction XT_CONNBYTES_DIR_ORIGINAL
        000000000000        # padding";

    // ip6tables: `-m connbytes --connbytes :5 --connbytes-dir reply --connbytes-mode packets`
    const V6: &str = "
        0000000000000000    # count.from 0
        0500000000000000    # count.to 5
        00                  # what XT_CONNBYTES_PKTS
        01                  # direction XT_CONNBYTES_DIR_REPLY
        000000000000        # padding";

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(
            parse(Family::V4, &opts("10:100", false, "both", "bytes")).unwrap(),
            fixture(RANGE)
        );
        assert_eq!(
            parse(Family::V4, &opts("1000", true, "original", "avgpkt")).unwrap(),
            fixture(OPEN_INV)
        );
        assert_eq!(
            parse(Family::V4, &opts("1000:", true, "original", "avgpkt")).unwrap(),
            fixture(OPEN_INV)
        );
        assert_eq!(
            parse(Family::V6, &opts(":5", false, "reply", "packets")).unwrap(),
            fixture(V6)
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(
            save(Family::V4, &fixture(RANGE)).unwrap(),
            " --connbytes 10:100 --connbytes-mode bytes --connbytes-dir both"
        );
        assert_eq!(
            save(Family::V4, &fixture(OPEN_INV)).unwrap(),
            " ! --connbytes 1000 --connbytes-mode avgpkt --connbytes-dir original"
        );
        assert_eq!(
            save(Family::V6, &fixture(V6)).unwrap(),
            " --connbytes 0:5 --connbytes-mode packets --connbytes-dir reply"
        );
        let mut odd = fixture(RANGE);
        odd[16] = 9;
        odd[17] = 9;
        assert_eq!(
            save(Family::V4, &odd).unwrap(),
            " --connbytes 10:100 --connbytes-mode unknown --connbytes-dir unknown"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        for (range, dir, mode) in [
            ("100:10", "both", "bytes"),
            ("-1", "both", "bytes"),
            ("18446744073709551616", "both", "bytes"),
            ("1:2:3", "both", "bytes"),
            ("x", "both", "bytes"),
            ("1", "Both", "bytes"),
            ("1", "both", "byte"),
        ] {
            assert!(
                parse(Family::V4, &opts(range, false, dir, mode)).is_err(),
                "{range} {dir} {mode} accepted"
            );
        }
        let mut missing = opts("1", false, "both", "bytes");
        missing.pop();
        assert_eq!(
            parse(Family::V4, &missing).unwrap_err(),
            "connbytes: option \"--connbytes-mode\" must be specified"
        );
        assert!(parse(Family::V4, &[ov("connbytes-dir", true, "both")]).is_err());
        assert!(save(Family::V4, &[0; 16]).is_err(), "short payload");
    }
}
