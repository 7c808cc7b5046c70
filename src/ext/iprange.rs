//! `-m iprange` (xt_iprange revision 1, IPv4 and IPv6): source and/or
//! destination address within an inclusive range, `[!] --src-range A[-B]`
//! and `[!] --dst-range A[-B]`.
//!
//! iptables 1.8.9 also ships revision 0 (`ipt_iprange_info`, IPv4 only),
//! but kernels have dropped it, so no table can hold it; it is not
//! implemented. IPv4 addresses follow xtables_numeric_to_ipaddr (C number
//! parts, missing parts zero); IPv6 ones inet_pton / inet_ntop.

use std::mem::offset_of;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::recent::{XtFlags, XtOpt, XTOPT_INVERT};
use super::{
    parse_uint, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::xt_iprange_mtinfo;

pub(super) static CODECS: &[&dyn Codec] = &[&Iprange(Family::V4), &Iprange(Family::V6)];

mod field {
    use super::*;
    pub const SRC_MIN: usize = offset_of!(xt_iprange_mtinfo, src_min);
    pub const SRC_MAX: usize = offset_of!(xt_iprange_mtinfo, src_max);
    pub const DST_MIN: usize = offset_of!(xt_iprange_mtinfo, dst_min);
    pub const DST_MAX: usize = offset_of!(xt_iprange_mtinfo, dst_max);
    pub const FLAGS: usize = offset_of!(xt_iprange_mtinfo, flags);
}

// Flags of linux/netfilter/xt_iprange.h (an anonymous enum).
const IPRANGE_SRC: u8 = 1 << 0;
const IPRANGE_DST: u8 = 1 << 1;
const IPRANGE_SRC_INV: u8 = 1 << 4;
const IPRANGE_DST_INV: u8 = 1 << 5;

const O_SRC_RANGE: u8 = 0;
const O_DST_RANGE: u8 = 1;
const TABLE_ARR: [XtOpt; 2] = [
    XtOpt::new("src-range", O_SRC_RANGE, Arg::One, XTOPT_INVERT),
    XtOpt::new("dst-range", O_DST_RANGE, Arg::One, XTOPT_INVERT),
];
static SPECS: [OptSpec; 2] = XtOpt::specs(&TABLE_ARR);

/// xtables_numeric_to_ipaddr: a dotted quad whose parts are C numbers
/// 0..=255; missing trailing parts are zero (`10.1` is 10.1.0.0). Like
/// libxtables, only the first 19 bytes of the text are looked at.
pub(crate) fn numeric_to_ipaddr(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    let b = &b[..b.len().min(19)];
    let text = String::from_utf8_lossy(b);
    let parts: Vec<&str> = text.splitn(4, '.').collect();
    let mut octets = [0u8; 4];
    for (i, part) in parts.iter().enumerate() {
        octets[i] = parse_uint(part, 0, 255)? as u8;
    }
    Some(Ipv4Addr::from(octets))
}

/// `A` or `A-B` (split at the first `-`), each a numeric address, as
/// `union nf_inet_addr` bytes (an IPv4 address fills the first four).
fn parse_range(arg: &str, opt: &str, family: Family) -> ExtResult<[[u8; 16]; 2]> {
    let (from, to) = arg.split_once('-').unwrap_or((arg, arg));
    let one = |s: &str| {
        let mut a = [0u8; 16];
        let ok = match family {
            Family::V4 => numeric_to_ipaddr(s).map(|v| a[..4].copy_from_slice(&v.octets())),
            // xtables_numeric_to_ip6addr: inet_pton.
            Family::V6 => s.parse::<Ipv6Addr>().ok().map(|v| a = v.octets()),
        };
        ok.map(|_| a)
            .ok_or_else(|| format!("iprange: Bad value for \"{opt}\" option: \"{s}\""))
    };
    Ok([one(from)?, one(to)?])
}

/// The match, for one family.
struct Iprange(Family);

impl Codec for Iprange {
    fn name(&self) -> &'static str {
        "iprange"
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
        let mut p = Payload::of::<xt_iprange_mtinfo>();
        let mut xf = XtFlags::default();
        let mut flags = 0u8;
        for o in opts {
            let id = xf.take("iprange", &TABLE_ARR, o)?;
            let (min, max, flag, inv, opt) = if id == O_SRC_RANGE {
                (
                    field::SRC_MIN,
                    field::SRC_MAX,
                    IPRANGE_SRC,
                    IPRANGE_SRC_INV,
                    "--src-range",
                )
            } else {
                (
                    field::DST_MIN,
                    field::DST_MAX,
                    IPRANGE_DST,
                    IPRANGE_DST_INV,
                    "--dst-range",
                )
            };
            let [lo, hi] = parse_range(o.arg(), opt, self.0)?;
            // An IPv4 address fills the first 4 bytes of nf_inet_addr; the
            // rest stays zero.
            p.bytes(min, &lo).bytes(max, &hi);
            flags |= flag;
            if o.invert {
                flags |= inv;
            }
        }
        if !xf.any(u32::MAX) {
            return Err("iprange match: You must specify `--src-range' or `--dst-range'".into());
        }
        p.u8(field::FLAGS, flags);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_iprange_mtinfo>())?;
        let flags = r.u8(field::FLAGS)?;
        let addr = |off: usize| -> ExtResult<String> {
            let b = r.bytes(off, 16)?;
            Ok(match self.0 {
                Family::V4 => Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
                Family::V6 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(b);
                    super::conntrack::inet_ntop6(&a)
                }
            })
        };
        for (flag, inv, name, min, max) in [
            (
                IPRANGE_SRC,
                IPRANGE_SRC_INV,
                "src-range",
                field::SRC_MIN,
                field::SRC_MAX,
            ),
            (
                IPRANGE_DST,
                IPRANGE_DST_INV,
                "dst-range",
                field::DST_MIN,
                field::DST_MAX,
            ),
        ] {
            if flags & flag != 0 {
                if flags & inv != 0 {
                    out.push_str(" !");
                }
                out.push_str(&format!(" --{name} {}-{}", addr(min)?, addr(max)?));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::recent::testkit::{parse, save, zeros};
    use super::super::testutil::hex;
    use super::*;

    // Captured from the kernel after iptables-legacy-restore 1.8.9
    // (xt_iprange_mtinfo: four nf_inet_addr of 16 bytes, then flags).

    /// `-m iprange --src-range 10.0.0.1-10.0.0.100`
    fn src() -> Vec<u8> {
        hex(&[
            "0a000001",
            &zeros(12), // src_min 10.0.0.1
            "0a000064",
            &zeros(12), // src_max 10.0.0.100
            &zeros(16), // dst_min unused
            &zeros(16), // dst_max unused
            "01",       // flags IPRANGE_SRC
            &zeros(7),  // padding
        ]
        .concat())
    }

    /// `-m iprange ! --src-range 10.1-10.2 ! --dst-range 1.2.3.4`
    fn both_inverted() -> Vec<u8> {
        hex(&[
            "0a010000",
            &zeros(12), // src_min 10.1.0.0
            "0a020000",
            &zeros(12), // src_max 10.2.0.0
            "01020304",
            &zeros(12), // dst_min 1.2.3.4
            "01020304",
            &zeros(12), // dst_max 1.2.3.4
            "33",       // flags SRC | DST | SRC_INV | DST_INV
            &zeros(7),  // padding
        ]
        .concat())
    }

    #[test]
    fn parse_matches_kernel() {
        assert_eq!(
            parse(&Iprange(Family::V4), 1, "--src-range 10.0.0.1-10.0.0.100").unwrap(),
            src()
        );
        assert_eq!(
            parse(
                &Iprange(Family::V4),
                1,
                "! --src-range 10.1-10.2 ! --dst-range 1.2.3.4"
            )
            .unwrap(),
            both_inverted()
        );
        // Addresses in C notation.
        assert_eq!(
            parse(
                &Iprange(Family::V4),
                1,
                "--src-range 0x0a.0.0.01-012.0.0.0x64"
            )
            .unwrap(),
            src()
        );
    }

    #[test]
    fn save_matches_iptables() {
        assert_eq!(
            save(&Iprange(Family::V4), 1, &src()),
            " --src-range 10.0.0.1-10.0.0.100"
        );
        assert_eq!(
            save(&Iprange(Family::V4), 1, &both_inverted()),
            " ! --src-range 10.1.0.0-10.2.0.0 ! --dst-range 1.2.3.4-1.2.3.4"
        );
    }

    #[test]
    fn numeric_addresses() {
        assert_eq!(numeric_to_ipaddr("10"), Some(Ipv4Addr::new(10, 0, 0, 0)));
        assert_eq!(numeric_to_ipaddr("1.2.3"), Some(Ipv4Addr::new(1, 2, 3, 0)));
        assert_eq!(
            numeric_to_ipaddr("010.0x10.0.1"),
            Some(Ipv4Addr::new(8, 16, 0, 1))
        );
        assert_eq!(numeric_to_ipaddr("1.2.3.4.5"), None);
        assert_eq!(numeric_to_ipaddr("1.2.3.256"), None);
        assert_eq!(numeric_to_ipaddr("08.1.1.1"), None);
        assert_eq!(numeric_to_ipaddr("host"), None);
        // libxtables reads only the first 19 bytes.
        assert_eq!(
            numeric_to_ipaddr("1.1.1.0000000000001"),
            Some(Ipv4Addr::new(1, 1, 1, 1))
        );
        assert_eq!(
            numeric_to_ipaddr("1.1.1.00000000000001"),
            Some(Ipv4Addr::new(1, 1, 1, 0))
        );
    }

    #[test]
    fn bad_values_are_refused() {
        assert_eq!(
            parse(&Iprange(Family::V4), 1, "").unwrap_err(),
            "iprange match: You must specify `--src-range' or `--dst-range'"
        );
        assert_eq!(
            parse(&Iprange(Family::V4), 1, "--src-range 1.2.3.4-").unwrap_err(),
            "iprange: Bad value for \"--src-range\" option: \"\""
        );
        assert_eq!(
            parse(
                &Iprange(Family::V4),
                1,
                "--dst-range 1.2.3.4-5.6.7.8-9.9.9.9"
            )
            .unwrap_err(),
            "iprange: Bad value for \"--dst-range\" option: \"5.6.7.8-9.9.9.9\""
        );
        assert_eq!(
            parse(
                &Iprange(Family::V4),
                1,
                "--src-range 1.1.1.1 --src-range 2.2.2.2"
            )
            .unwrap_err(),
            "iprange: option \"--src-range\" can only be used once."
        );
    }
    mod v6 {
        //! IPv6, captured from the kernel after ip6tables-legacy-restore 1.8.9.
        use super::super::super::recent::testkit::{parse6, save6};
        use super::*;

        /// `-m iprange --src-range 2001:db8::1-2001:db8::100`
        fn src() -> Vec<u8> {
            hex(&[
                "20010db8000000000000000000000001", // src_min 2001:db8::1
                "20010db8000000000000000000000100", // src_max 2001:db8::100
                &zeros(16),                         // dst_min unused
                &zeros(16),                         // dst_max unused
                "01",                               // flags IPRANGE_SRC
                &zeros(7),                          // padding
            ]
            .concat())
        }

        /// `-m iprange ! --src-range ::1.2.3.4-::ffff:1.2.3.4 ! --dst-range fe80::1`
        fn both_inverted() -> Vec<u8> {
            hex(&[
                "00000000000000000000000001020304", // src_min ::1.2.3.4
                "00000000000000000000ffff01020304", // src_max ::ffff:1.2.3.4
                "fe800000000000000000000000000001", // dst_min fe80::1
                "fe800000000000000000000000000001", // dst_max fe80::1
                "33",                               // flags SRC|DST|SRC_INV|DST_INV
                &zeros(7),                          // padding
            ]
            .concat())
        }

        #[test]
        fn parse_matches_kernel() {
            let c = Iprange(Family::V6);
            assert_eq!(
                parse6(&c, 1, "--src-range 2001:db8::1-2001:db8::100").unwrap(),
                src()
            );
            assert_eq!(
                parse6(
                    &c,
                    1,
                    "! --src-range ::1.2.3.4-::ffff:1.2.3.4 ! --dst-range fe80::1"
                )
                .unwrap(),
                both_inverted()
            );
        }

        #[test]
        fn save_matches_ip6tables() {
            let c = Iprange(Family::V6);
            assert_eq!(
                save6(&c, 1, &src()),
                " --src-range 2001:db8::1-2001:db8::100"
            );
            assert_eq!(
                save6(&c, 1, &both_inverted()),
                " ! --src-range ::1.2.3.4-::ffff:1.2.3.4 ! --dst-range fe80::1-fe80::1"
            );
        }

        #[test]
        fn bad_values_are_refused() {
            let c = Iprange(Family::V6);
            assert_eq!(
                parse6(&c, 1, "--src-range 10.0.0.1").unwrap_err(),
                "iprange: Bad value for \"--src-range\" option: \"10.0.0.1\""
            );
            assert_eq!(
                parse6(&c, 1, "--dst-range ::1-").unwrap_err(),
                "iprange: Bad value for \"--dst-range\" option: \"\""
            );
            assert!(parse6(&c, 1, "--dst-range host.example").is_err());
            assert!(parse6(&c, 1, "").is_err());
        }
    }
}
