//! `-m connlimit` (xt_connlimit revision 1, IPv4 and IPv6): the number of
//! connections per address group. Options: `[!] --connlimit-upto N`,
//! `[!] --connlimit-above N`, `--connlimit-mask LEN`, `--connlimit-saddr`,
//! `--connlimit-daddr`.
//!
//! iptables 1.8.9 also has revision 0 (no --connlimit-saddr/daddr), which
//! current kernels lack; it is not implemented.
//!
//! This file also holds libxtables' XTTYPE_PLEN and XTTYPE_PLENMASK for
//! both families (shared with hashlimit), including glibc's inet_aton rules
//! for an IPv4 mask written as an address.

use std::mem::offset_of;
use std::net::Ipv6Addr;

use super::recent::{parse_int_opt, XtFlags, XtOpt, XTOPT_INVERT};
use super::{
    parse_uint, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{xt_connlimit_info, XT_CONNLIMIT_DADDR, XT_CONNLIMIT_INVERT};

pub(super) static CODECS: &[&dyn Codec] = &[&Connlimit(Family::V4), &Connlimit(Family::V6)];

mod field {
    use super::*;
    /// union nf_inet_addr mask (v4_mask is its first 4 bytes).
    pub const MASK: usize = offset_of!(xt_connlimit_info, __bindgen_anon_1);
    pub const LIMIT: usize = offset_of!(xt_connlimit_info, limit);
    pub const FLAGS: usize = offset_of!(xt_connlimit_info, flags);
    /// Where the kernel-private part (`data`) starts: userspace leaves it zero.
    pub const DATA: usize = offset_of!(xt_connlimit_info, data);
}

/// sizeof(union nf_inet_addr).
const MASK_LEN: usize = 16;

// ---------------------------------------------------------------------------
// XTTYPE_PLEN / XTTYPE_PLENMASK (IPv4)

/// C strtoul with base 0 on a part of an inet_aton address; returns the
/// value (None on overflow) and the bytes consumed.
fn strtoul_c(b: &[u8]) -> (Option<u64>, usize) {
    let (radix, mut i) =
        if b.len() > 2 && b[0] == b'0' && (b[1] | 0x20) == b'x' && b[2].is_ascii_hexdigit() {
            (16, 2)
        } else if b.first() == Some(&b'0') {
            (8, 0)
        } else {
            (10, 0)
        };
    let mut v = Some(0u64);
    while i < b.len() {
        let Some(d) = (b[i] as char).to_digit(radix) else {
            break;
        };
        v = v
            .and_then(|v| v.checked_mul(u64::from(radix)))
            .and_then(|v| v.checked_add(u64::from(d)));
        i += 1;
    }
    (v, i)
}

/// glibc's __inet_aton_exact (what getaddrinfo with AI_NUMERICHOST accepts
/// for AF_INET): `a.b.c.d`, `a.b.c` (c 16 bits), `a.b` (b 24 bits) or `a`
/// (32 bits), each part in C notation (`0x` hex, leading `0` octal).
pub(crate) fn inet_aton_exact(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    let mut parts: Vec<u64> = Vec::new();
    let mut pos = 0;
    loop {
        if !b.get(pos).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        let (v, used) = strtoul_c(&b[pos..]);
        let v = v.filter(|&v| v <= 0xffff_ffff)?;
        pos += used;
        if b.get(pos) == Some(&b'.') {
            if parts.len() > 2 || v > 0xff {
                return None;
            }
            parts.push(v);
            pos += 1;
        } else {
            parts.push(v);
            break;
        }
    }
    if pos != b.len() {
        return None;
    }
    let last = *parts.last()?;
    let lead = &parts[..parts.len() - 1];
    const MAX: [u64; 4] = [0xffff_ffff, 0xff_ffff, 0xffff, 0xff];
    if last > MAX[lead.len()] {
        return None;
    }
    let mut word = 0u32;
    for (i, &p) in lead.iter().enumerate() {
        word |= (p as u32) << (24 - 8 * i);
    }
    Some(word | last as u32)
}

/// xtables_ipmask_to_cidr, stored as libxtables' `uint8_t hlen`: the prefix
/// length of a contiguous mask, 255 (from -1) otherwise.
fn mask_to_hlen(mask: u32) -> u8 {
    (0..=32u32)
        .rev()
        .find(|&i| (if i == 0 { 0 } else { u32::MAX << (32 - i) }) == mask)
        .map_or(255, |i| i as u8)
}

/// XTTYPE_PLEN for IPv4: a prefix length 0..=32, or a mask written as an
/// address (a non-contiguous one gives 255, as in libxtables).
pub(crate) fn parse_plen4(ext: &str, o: &OptValue) -> ExtResult<u8> {
    if let Some(v) = parse_uint(o.arg(), 0, 32) {
        return Ok(v as u8);
    }
    match inet_aton_exact(o.arg()) {
        Some(mask) => Ok(mask_to_hlen(mask)),
        None => Err(format!(
            "{ext}: bad value for option \"--{}\", neither a valid network mask nor valid CIDR (0-32).",
            o.name
        )),
    }
}

/// XTTYPE_PLEN for IPv6: a prefix length 0..=128, or a mask written as an
/// IPv6 address (inet_pton; a non-contiguous one gives 255, as the
/// `uint8_t` libxtables stores xtables_ip6mask_to_cidr's -1 in).
pub(crate) fn parse_plen6(ext: &str, o: &OptValue) -> ExtResult<u8> {
    if let Some(v) = parse_uint(o.arg(), 0, 128) {
        return Ok(v as u8);
    }
    match o.arg().parse::<Ipv6Addr>() {
        Ok(mask) => {
            let m = u128::from(mask);
            let ones = m.leading_ones();
            Ok(if m.checked_shl(ones).unwrap_or(0) == 0 {
                ones as u8
            } else {
                255
            })
        }
        Err(_) => Err(format!(
            "{ext}: bad value for option \"--{}\", neither a valid network mask nor valid CIDR (0-128).",
            o.name
        )),
    }
}

/// XTTYPE_PLEN for the rule's family.
pub(crate) fn parse_plen(ext: &str, o: &OptValue, family: Family) -> ExtResult<u8> {
    match family {
        Family::V4 => parse_plen4(ext, o),
        Family::V6 => parse_plen6(ext, o),
    }
}

/// XTTYPE_PLENMASK: the 16-byte nf_inet_addr mask libxtables writes, the
/// same shifting for both families (an IPv4 length up to 32 sets only the
/// first word; a length it cannot express, 255, leaves all 16 bytes 0xff).
pub(crate) fn plen_to_mask(hlen: u8) -> [u8; MASK_LEN] {
    match hlen {
        0 => [0; MASK_LEN],
        1..=128 => (u128::MAX << (128 - u32::from(hlen))).to_be_bytes(),
        _ => [0xff; MASK_LEN],
    }
}

/// count_bits4 of libxt_connlimit: 32 minus the bit length of the inverted
/// mask, i.e. the number of leading one bits (any bits after a gap ignored).
fn count_bits4(mask: u32) -> u32 {
    (!mask).leading_zeros()
}

/// count_bits6 of libxt_connlimit: 128 minus the summed bit lengths of the
/// four inverted words (for a prefix mask, its length).
fn count_bits6(mask: &[u8]) -> u32 {
    let used: u32 = mask
        .chunks(4)
        .map(|w| 32 - (!u32::from_be_bytes([w[0], w[1], w[2], w[3]])).leading_zeros())
        .sum();
    128 - used
}

// ---------------------------------------------------------------------------
// connlimit

const O_UPTO: u8 = 0;
const O_ABOVE: u8 = 1;
const O_MASK: u8 = 2;
const O_SADDR: u8 = 3;
const O_DADDR: u8 = 4;
const F_UPTO: u32 = 1 << O_UPTO;
const F_ABOVE: u32 = 1 << O_ABOVE;
const F_SADDR: u32 = 1 << O_SADDR;
const F_DADDR: u32 = 1 << O_DADDR;

const TABLE_ARR: [XtOpt; 5] = [
    XtOpt::new("connlimit-upto", O_UPTO, Arg::One, XTOPT_INVERT).excl(F_ABOVE),
    XtOpt::new("connlimit-above", O_ABOVE, Arg::One, XTOPT_INVERT).excl(F_UPTO),
    XtOpt::new("connlimit-mask", O_MASK, Arg::One, 0),
    XtOpt::new("connlimit-saddr", O_SADDR, Arg::None, 0).excl(F_DADDR),
    XtOpt::new("connlimit-daddr", O_DADDR, Arg::None, 0).excl(F_SADDR),
];
static SPECS: [OptSpec; 5] = XtOpt::specs(&TABLE_ARR);

/// The match, for one family.
struct Connlimit(Family);

impl Codec for Connlimit {
    fn name(&self) -> &'static str {
        "connlimit"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn families(&self) -> &'static [Family] {
        match self.0 {
            Family::V4 => &[Family::V4],
            Family::V6 => &[Family::V6],
        }
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[1]
    }
    fn options(&self) -> &'static [OptSpec] {
        &SPECS
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        // Only the part before the kernel's private pointer is ours.
        let mut p = Payload::new(field::DATA);
        // connlimit_init: the whole mask union 0xff.
        p.bytes(field::MASK, &[0xff; MASK_LEN]);
        let mut xf = XtFlags::default();
        let mut flags = 0u32;
        for o in opts {
            match xf.take("connlimit", &TABLE_ARR, o)? {
                id @ (O_UPTO | O_ABOVE) => {
                    p.u32(
                        field::LIMIT,
                        parse_int_opt("connlimit", o, 0, u32::MAX.into())? as u32,
                    );
                    // upto means "not above": the kernel's invert flag.
                    if (id == O_UPTO) != o.invert {
                        flags |= XT_CONNLIMIT_INVERT;
                    }
                }
                O_MASK => {
                    p.bytes(
                        field::MASK,
                        &plen_to_mask(parse_plen("connlimit", o, self.0)?),
                    );
                }
                O_SADDR => flags &= !XT_CONNLIMIT_DADDR,
                _ => flags |= XT_CONNLIMIT_DADDR,
            }
        }
        if !xf.any(F_UPTO | F_ABOVE) {
            return Err("You must specify \"--connlimit-above\" or \"--connlimit-upto\".".into());
        }
        xf.fcheck("connlimit", &TABLE_ARR)?;
        p.u32(field::FLAGS, flags);
        let mut data = p.finish();
        data.resize(std::mem::size_of::<xt_connlimit_info>(), 0);
        Ok(data)
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, field::DATA)?;
        let flags = r.u32(field::FLAGS)?;
        let limit = r.u32(field::LIMIT)?;
        if flags & XT_CONNLIMIT_INVERT != 0 {
            out.push_str(&format!(" --connlimit-upto {limit}"));
        } else {
            out.push_str(&format!(" --connlimit-above {limit}"));
        }
        let bits = match self.0 {
            Family::V4 => count_bits4(r.be32(field::MASK)?),
            Family::V6 => count_bits6(r.bytes(field::MASK, MASK_LEN)?),
        };
        out.push_str(&format!(" --connlimit-mask {bits}"));
        if flags & XT_CONNLIMIT_DADDR != 0 {
            out.push_str(" --connlimit-daddr");
        } else {
            out.push_str(" --connlimit-saddr");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::recent::testkit::{parse, save};
    use super::super::testutil::hex;
    use super::*;

    // Captured from the kernel after iptables-legacy-restore 1.8.9
    // (xt_connlimit_info; the kernel's `data` pointer reads back as zero).

    /// `-m connlimit --connlimit-above 3`
    fn above() -> Vec<u8> {
        hex(concat!(
            "ffffffffffffffffffffffffffffffff", // mask: the whole union 0xff
            "03000000",                         // limit 3
            "00000000",                         // flags: above, saddr
            "0000000000000000",                 // data (kernel private)
        ))
    }

    /// `-m connlimit ! --connlimit-upto 5 --connlimit-mask 24 --connlimit-daddr`
    fn mask24_daddr() -> Vec<u8> {
        hex(concat!(
            "ffffff00000000000000000000000000", // mask /24, rest of the union zero
            "05000000",                         // limit 5
            "02000000",                         // flags DADDR (not INVERT: "! upto" is above)
            "0000000000000000",                 // data
        ))
    }

    /// `-m connlimit --connlimit-upto 9 --connlimit-mask 255.0.255.0`
    fn odd_mask() -> Vec<u8> {
        hex(concat!(
            "ffffffffffffffffffffffffffffffff", // not a prefix: left all 0xff
            "09000000",                         // limit 9
            "01000000",                         // flags INVERT (upto)
            "0000000000000000",                 // data
        ))
    }

    #[test]
    fn parse_matches_kernel() {
        assert_eq!(
            parse(&Connlimit(Family::V4), 1, "--connlimit-above 3").unwrap(),
            above()
        );
        assert_eq!(
            parse(
                &Connlimit(Family::V4),
                1,
                "! --connlimit-upto 5 --connlimit-mask 24 --connlimit-daddr"
            )
            .unwrap(),
            mask24_daddr()
        );
        assert_eq!(
            parse(
                &Connlimit(Family::V4),
                1,
                "--connlimit-above 5 --connlimit-mask 0xffffff00 --connlimit-daddr"
            )
            .unwrap(),
            mask24_daddr()
        );
        assert_eq!(
            parse(
                &Connlimit(Family::V4),
                1,
                "--connlimit-upto 9 --connlimit-mask 255.0.255.0"
            )
            .unwrap(),
            odd_mask()
        );
        // 33 is no prefix length, but 0.0.0.33 is a (non-contiguous) mask.
        assert_eq!(
            parse(
                &Connlimit(Family::V4),
                1,
                "--connlimit-upto 9 --connlimit-mask 33"
            )
            .unwrap(),
            odd_mask()
        );
    }

    #[test]
    fn save_matches_iptables() {
        assert_eq!(
            save(&Connlimit(Family::V4), 1, &above()),
            " --connlimit-above 3 --connlimit-mask 32 --connlimit-saddr"
        );
        assert_eq!(
            save(&Connlimit(Family::V4), 1, &mask24_daddr()),
            " --connlimit-above 5 --connlimit-mask 24 --connlimit-daddr"
        );
        assert_eq!(
            save(&Connlimit(Family::V4), 1, &odd_mask()),
            " --connlimit-upto 9 --connlimit-mask 32 --connlimit-saddr"
        );
    }

    #[test]
    fn inet_aton_forms() {
        assert_eq!(inet_aton_exact("255.255.255.0"), Some(0xffff_ff00));
        assert_eq!(inet_aton_exact("0xffffff00"), Some(0xffff_ff00));
        assert_eq!(inet_aton_exact("255.16777215"), Some(0xffff_ffff));
        assert_eq!(inet_aton_exact("255.255.65280"), Some(0xffff_ff00));
        assert_eq!(inet_aton_exact("0377.0.0.0"), Some(0xff00_0000));
        assert_eq!(inet_aton_exact("33"), Some(33));
        assert_eq!(inet_aton_exact("255.255.255.256"), None);
        assert_eq!(inet_aton_exact("1.2.3.4.5"), None);
        assert_eq!(inet_aton_exact("08"), None);
        assert_eq!(inet_aton_exact("0x"), None);
        assert_eq!(inet_aton_exact("1."), None);
        assert_eq!(inet_aton_exact(" 1"), None);
        assert_eq!(inet_aton_exact("4294967296"), None);
        assert_eq!(mask_to_hlen(0), 0);
        assert_eq!(mask_to_hlen(u32::MAX), 32);
        assert_eq!(mask_to_hlen(0xff00_ff00), 255);
    }

    #[test]
    fn bad_values_are_refused() {
        let bad = |s: &str| parse(&Connlimit(Family::V4), 1, s).unwrap_err();
        assert_eq!(
            bad("--connlimit-mask 24"),
            "You must specify \"--connlimit-above\" or \"--connlimit-upto\"."
        );
        assert_eq!(
            bad("--connlimit-upto 1 --connlimit-above 2"),
            "connlimit: option \"--connlimit-upto\" cannot be used together with \"--connlimit-above\"."
        );
        assert_eq!(
            bad("--connlimit-above 1 --connlimit-saddr --connlimit-daddr"),
            "connlimit: option \"--connlimit-saddr\" cannot be used together with \"--connlimit-daddr\"."
        );
        for m in ["255.255.255.256", "foo", "-1"] {
            assert_eq!(
                bad(&format!("--connlimit-above 1 --connlimit-mask {m}")),
                "connlimit: bad value for option \"--connlimit-mask\", neither a valid network mask nor valid CIDR (0-32)."
            );
        }
        assert_eq!(
            bad("--connlimit-above 4294967296"),
            "connlimit: bad value for option \"--connlimit-above\", or out of range (0-4294967295)."
        );
        assert_eq!(
            bad("--connlimit-above 1 ! --connlimit-mask 8"),
            "connlimit: option \"--connlimit-mask\" cannot be inverted."
        );
        assert_eq!(
            bad("--connlimit-above 1 --connlimit-above 1"),
            "connlimit: option \"--connlimit-above\" can only be used once."
        );
    }
    mod v6 {
        //! IPv6, captured from the kernel after ip6tables-legacy-restore 1.8.9.
        use super::super::super::recent::testkit::{parse6, save6};
        use super::*;

        const C: Connlimit = Connlimit(Family::V6);

        #[test]
        fn parse_and_save_match_ip6tables() {
            for (line, fixture, saved) in [
                (
                    "--connlimit-above 3",
                    concat!(
                        "ffffffffffffffffffffffffffffffff", // mask: /128 (init, all 0xff)
                        "03000000",                         // limit 3
                        "00000000",                         // flags: above, saddr
                        "0000000000000000",                 // data (kernel private)
                    ),
                    " --connlimit-above 3 --connlimit-mask 128 --connlimit-saddr",
                ),
                (
                    "! --connlimit-upto 5 --connlimit-mask 64 --connlimit-daddr",
                    concat!(
                        "ffffffffffffffff0000000000000000", // mask /64
                        "05000000",                         // limit 5
                        "02000000",                         // flags DADDR
                        "0000000000000000",                 // data
                    ),
                    " --connlimit-above 5 --connlimit-mask 64 --connlimit-daddr",
                ),
                (
                    "--connlimit-upto 9 --connlimit-mask ffff::ffff",
                    concat!(
                        "ffffffffffffffffffffffffffffffff", // holes: all 0xff
                        "09000000",                         // limit 9
                        "01000000",                         // flags INVERT (upto)
                        "0000000000000000",                 // data
                    ),
                    " --connlimit-upto 9 --connlimit-mask 128 --connlimit-saddr",
                ),
                (
                    "--connlimit-upto 9 --connlimit-mask ffff:ffff:ffff::",
                    concat!(
                        "ffffffffffff00000000000000000000", // mask /48
                        "09000000",                         // limit 9
                        "01000000",                         // flags INVERT
                        "0000000000000000",                 // data
                    ),
                    " --connlimit-upto 9 --connlimit-mask 48 --connlimit-saddr",
                ),
                (
                    "--connlimit-upto 9 --connlimit-mask 0",
                    concat!(
                        "00000000000000000000000000000000", // mask /0
                        "09000000",                         // limit 9
                        "01000000",                         // flags INVERT
                        "0000000000000000",                 // data
                    ),
                    " --connlimit-upto 9 --connlimit-mask 0 --connlimit-saddr",
                ),
                (
                    "--connlimit-upto 9 --connlimit-mask 33",
                    concat!(
                        "ffffffff800000000000000000000000", // mask /33
                        "09000000",                         // limit 9
                        "01000000",                         // flags INVERT
                        "0000000000000000",                 // data
                    ),
                    " --connlimit-upto 9 --connlimit-mask 33 --connlimit-saddr",
                ),
            ] {
                assert_eq!(parse6(&C, 1, line).unwrap(), hex(fixture), "{line}");
                assert_eq!(save6(&C, 1, &hex(fixture)), saved, "{line}");
            }
        }

        #[test]
        fn count_bits6_follows_libxt_connlimit() {
            // A mask with holes (written by another tool): per word bit lengths.
            // Inverted words: 0000ffff (16 bits long), 0, ffffffff (32), 0.
            assert_eq!(
                count_bits6(&hex("ffff0000ffffffff00000000ffffffff")),
                128 - 48
            );
        }

        #[test]
        fn bad_values_are_refused() {
            assert_eq!(
                parse6(&C, 1, "--connlimit-above 1 --connlimit-mask 129").unwrap_err(),
                "connlimit: bad value for option \"--connlimit-mask\", neither a valid network mask nor valid CIDR (0-128)."
            );
            assert!(parse6(&C, 1, "--connlimit-above 1 --connlimit-mask 255.255.0.0").is_err());
            assert!(parse6(&C, 1, "--connlimit-mask 64").is_err());
        }
    }
}
