//! `-j TPROXY` (xt_TPROXY): hand a packet to a local socket without
//! changing it, optionally marking it.
//!
//! iptables 1.8.9 has revisions 1 (`xt_tproxy_target_info_v1`, a 16-byte
//! `union nf_inet_addr`) and 0 (`xt_tproxy_target_info`, a 4-byte address)
//! for IPv4, and revision 1 only for IPv6 (`--on-ip` an IPv6 address). The
//! kernel accepts it in the mangle table's PREROUTING chain with `-p tcp`
//! or `-p udp`; it checks that itself, as for iptables.

use std::mem::{offset_of, size_of};
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{
    no_invert, once, opt, strtoul_prefix, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload,
    Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{xt_tproxy_target_info, xt_tproxy_target_info_v1};

pub(super) static CODECS: &[&dyn Codec] = &[&Tproxy(Family::V4), &Tproxy(Family::V6)];

mod field {
    use super::*;

    /// `xt_tproxy_target_info` (revision 0).
    pub mod v0 {
        use super::*;
        pub const MARK_MASK: usize = offset_of!(xt_tproxy_target_info, mark_mask);
        pub const MARK_VALUE: usize = offset_of!(xt_tproxy_target_info, mark_value);
        pub const LADDR: usize = offset_of!(xt_tproxy_target_info, laddr);
        pub const LPORT: usize = offset_of!(xt_tproxy_target_info, lport);
    }

    /// `xt_tproxy_target_info_v1` (revision 1); `laddr` is a
    /// `union nf_inet_addr` whose first four bytes hold the IPv4 address.
    pub mod v1 {
        use super::*;
        pub const MARK_MASK: usize = offset_of!(xt_tproxy_target_info_v1, mark_mask);
        pub const MARK_VALUE: usize = offset_of!(xt_tproxy_target_info_v1, mark_value);
        pub const LADDR: usize = offset_of!(xt_tproxy_target_info_v1, laddr);
        pub const LPORT: usize = offset_of!(xt_tproxy_target_info_v1, lport);
    }
}

/// XTTYPE_MARKMASK32 (xtables_parse_val_mask without names): `VALUE` or
/// `VALUE/MASK`, each a 32-bit number in any C base; the mask defaults to
/// all ones.
pub(crate) fn parse_mark_mask(ext: &str, opt: &str, arg: &str) -> ExtResult<(u32, u32)> {
    let bad = || format!("{ext}: bad integer value for option \"--{opt}\", or out of range.");
    let garbage = || format!("{ext}: trailing garbage after value for option \"--{opt}\".");
    let (val, rest) = strtoul_prefix(arg)
        .filter(|&(v, _)| v <= u64::from(u32::MAX))
        .ok_or_else(bad)?;
    if rest.is_empty() {
        return Ok((val as u32, u32::MAX));
    }
    let Some(m) = rest.strip_prefix('/') else {
        return Err(garbage());
    };
    let (mask, rest) = strtoul_prefix(m)
        .filter(|&(v, _)| v <= u64::from(u32::MAX))
        .ok_or_else(bad)?;
    if !rest.is_empty() {
        return Err(garbage());
    }
    Ok((val as u32, mask as u32))
}

/// XTTYPE_PORT: see [`crate::netdb::port_by_name`].
pub(crate) fn parse_gai_port(arg: &str) -> ExtResult<u16> {
    crate::netdb::port_by_name(arg)
}

/// XTTYPE_HOST for IPv4: a dotted quad (inet_aton forms too) or a host name
/// that resolves to exactly one address.
pub(crate) fn parse_host_v4(arg: &str) -> ExtResult<Ipv4Addr> {
    let addrs = crate::sys::resolve_ipv4(arg)
        .ok_or_else(|| format!("getaddrinfo: cannot resolve \"{arg}\""))?;
    let first = *addrs
        .first()
        .ok_or_else(|| format!("getaddrinfo: no IPv4 address for \"{arg}\""))?;
    if addrs.iter().any(|a| *a != first) {
        return Err(format!("{arg} resolves to more than one address"));
    }
    Ok(first)
}

/// XTTYPE_HOST for IPv6: an address or a host name that resolves to
/// exactly one IPv6 address.
pub(crate) fn parse_host_v6(arg: &str) -> ExtResult<Ipv6Addr> {
    let addrs = crate::sys::resolve_ipv6(arg)
        .ok_or_else(|| format!("getaddrinfo: cannot resolve \"{arg}\""))?;
    let first = *addrs
        .first()
        .ok_or_else(|| format!("getaddrinfo: no IPv6 address for \"{arg}\""))?;
    if addrs.iter().any(|a| *a != first) {
        return Err(format!("{arg} resolves to more than one address"));
    }
    Ok(first)
}

/// The parsed options, common to both revisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TproxyInfo {
    mark_value: u32,
    mark_mask: u32,
    /// `union nf_inet_addr`; revision 0 holds the first four bytes only.
    laddr: [u8; 16],
    lport: u16,
}

/// TPROXY for one family.
struct Tproxy(Family);

impl Tproxy {
    fn decode(rev: u8, data: &[u8]) -> ExtResult<TproxyInfo> {
        let (need, mask, value, laddr, lport) = match rev {
            0 => (
                size_of::<xt_tproxy_target_info>(),
                field::v0::MARK_MASK,
                field::v0::MARK_VALUE,
                field::v0::LADDR,
                field::v0::LPORT,
            ),
            1 => (
                size_of::<xt_tproxy_target_info_v1>(),
                field::v1::MARK_MASK,
                field::v1::MARK_VALUE,
                field::v1::LADDR,
                field::v1::LPORT,
            ),
            _ => return Err(format!("TPROXY: revision {rev} is not supported")),
        };
        let r = Reader::new(data, need)?;
        let alen = if rev == 0 { 4 } else { 16 };
        let mut a = [0u8; 16];
        a[..alen].copy_from_slice(r.bytes(laddr, alen)?);
        Ok(TproxyInfo {
            mark_mask: r.u32(mask)?,
            mark_value: r.u32(value)?,
            laddr: a,
            lport: r.be16(lport)?,
        })
    }
}

impl Codec for Tproxy {
    fn name(&self) -> &'static str {
        "TPROXY"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn families(&self) -> &'static [Family] {
        match self.0 {
            Family::V4 => &[Family::V4],
            Family::V6 => &[Family::V6],
        }
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        match self.0 {
            Family::V4 => &[1, 0],
            Family::V6 => &[1],
        }
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("on-port", Arg::One),
            opt("on-ip", Arg::One),
            opt("tproxy-mark", Arg::One),
        ];
        O
    }

    fn parse(&self, rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut info = TproxyInfo {
            mark_value: 0,
            mark_mask: 0,
            laddr: [0; 16],
            lport: 0,
        };
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "TPROXY")?;
            no_invert(o, "TPROXY")?;
            match o.name {
                "on-port" => info.lport = parse_gai_port(o.arg())?,
                "on-ip" => match self.0 {
                    Family::V4 => {
                        info.laddr[..4].copy_from_slice(&parse_host_v4(o.arg())?.octets())
                    }
                    Family::V6 => info.laddr = parse_host_v6(o.arg())?.octets(),
                },
                "tproxy-mark" => {
                    (info.mark_value, info.mark_mask) = parse_mark_mask("TPROXY", o.name, o.arg())?
                }
                _ => return Err(super::unknown_option("TPROXY", o)),
            }
        }
        if !seen.contains(&"on-port") {
            return Err("TPROXY: option \"--on-port\" must be specified".into());
        }
        let (mut p, mask, value, laddr, lport) = match rev {
            0 if self.0 == Family::V4 => (
                Payload::of::<xt_tproxy_target_info>(),
                field::v0::MARK_MASK,
                field::v0::MARK_VALUE,
                field::v0::LADDR,
                field::v0::LPORT,
            ),
            1 => (
                Payload::of::<xt_tproxy_target_info_v1>(),
                field::v1::MARK_MASK,
                field::v1::MARK_VALUE,
                field::v1::LADDR,
                field::v1::LPORT,
            ),
            _ => return Err(format!("TPROXY: revision {rev} is not supported")),
        };
        // IPv4 revision 1: the rest of the 16-byte address stays zero.
        let alen = if rev == 0 { 4 } else { 16 };
        p.u32(mask, info.mark_mask)
            .u32(value, info.mark_value)
            .bytes(laddr, &info.laddr[..alen])
            .be16(lport, info.lport);
        Ok(p.finish())
    }

    fn save(&self, rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        if self.0 == Family::V6 && rev != 1 {
            return Err(format!("TPROXY: revision {rev} is not supported for IPv6"));
        }
        let i = Tproxy::decode(rev, data)?;
        let a = i.laddr;
        let laddr = match self.0 {
            Family::V4 => Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string(),
            Family::V6 => super::conntrack::inet_ntop6(&a),
        };
        out.push_str(&format!(
            " --on-port {} --on-ip {laddr} --tproxy-mark {:#x}/{:#x}",
            i.lport, i.mark_value, i.mark_mask
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Revision 1 fixtures are target payloads (after the 32-byte
    //! `xt_entry_target` header) dumped from the kernel after
    //! iptables-legacy-restore 1.8.9 loaded the rule shown, in mangle
    //! PREROUTING. iptables 1.8.9 never sends revision 0 to a kernel that
    //! has revision 1, so that fixture is written from xt_TPROXY.h.

    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;
    use crate::rules::IpMatch;

    fn o(name: &'static str, arg: &str) -> OptValue<'static> {
        OptValue {
            name,
            invert: false,
            args: vec![arg.to_string()].into(),
        }
    }

    fn parse(rev: u8, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch {
            proto: 6,
            ..IpMatch::any(Family::V4)
        };
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "mangle",
        };
        let mut v = Tproxy(Family::V4).parse(rev, opts, &ctx)?;
        v.resize(xt_align(v.len()), 0);
        Ok(v)
    }

    fn save(rev: u8, data: &[u8]) -> ExtResult<String> {
        let ip = IpMatch {
            proto: 6,
            ..IpMatch::any(Family::V4)
        };
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "mangle",
        };
        let mut out = String::new();
        Tproxy(Family::V4).save(rev, data, &ctx, &mut out)?;
        Ok(out)
    }

    #[test]
    fn v1_all_options() {
        // -p udp -j TPROXY --on-port 65535 --on-ip localhost --tproxy-mark 010/0x10
        let fixture = hex(concat!(
            "10000000",                         // mark_mask 0x10 (host order)
            "08000000",                         // mark_value 010 = 8
            "7f000001000000000000000000000000", // laddr 127.0.0.1 (union nf_inet_addr)
            "ffff",                             // lport 65535 (network order)
            "0000",                             // struct padding, zero
            "00000000",                         // XT_ALIGN padding, zero
        ));
        let opts = [
            o("on-port", "65535"),
            o("on-ip", "localhost"),
            o("tproxy-mark", "010/0x10"),
        ];
        assert_eq!(parse(1, &opts).unwrap(), fixture);
        assert_eq!(
            save(1, &fixture).unwrap(),
            " --on-port 65535 --on-ip 127.0.0.1 --tproxy-mark 0x8/0x10"
        );
    }

    #[test]
    fn v1_port_only() {
        // -p tcp -j TPROXY --on-port 3128
        let fixture = hex(concat!(
            "00000000",                         // mark_mask 0
            "00000000",                         // mark_value 0
            "00000000000000000000000000000000", // laddr unset
            "0c38",                             // lport 3128
            "0000",                             // struct padding
            "00000000",                         // XT_ALIGN padding
        ));
        assert_eq!(parse(1, &[o("on-port", "3128")]).unwrap(), fixture);
        assert_eq!(
            save(1, &fixture).unwrap(),
            " --on-port 3128 --on-ip 0.0.0.0 --tproxy-mark 0x0/0x0"
        );
    }

    #[test]
    fn v0_layout() {
        let fixture = hex(concat!(
            "ff000000", // mark_mask 0xff
            "01000000", // mark_value 1
            "c0000201", // laddr 192.0.2.1
            "0050",     // lport 80
            "0000",     // struct padding
        ));
        let opts = [
            o("on-port", "http"),
            o("on-ip", "192.0.2.1"),
            o("tproxy-mark", "0x1/0xff"),
        ];
        assert_eq!(parse(0, &opts).unwrap(), fixture);
        assert_eq!(
            save(0, &fixture).unwrap(),
            " --on-port 80 --on-ip 192.0.2.1 --tproxy-mark 0x1/0xff"
        );
    }

    #[test]
    fn port_follows_getaddrinfo() {
        // What iptables-legacy-restore 1.8.9 stored for these --on-port values.
        for (arg, port) in [(" 80", 80), ("+80", 80), ("080", 80), ("", 0), ("tftp", 69)] {
            assert_eq!(parse_gai_port(arg), Ok(port), "{arg:?}");
        }
        // iptables would cut these to 16 bits (4464, 0); we refuse them.
        for arg in ["70000", "65536", "-1"] {
            assert!(
                parse_gai_port(arg).unwrap_err().contains("out of range"),
                "{arg:?}"
            );
        }
        for arg in ["0x50", "80x", "no-such-service"] {
            assert!(
                parse_gai_port(arg)
                    .unwrap_err()
                    .contains("does not resolve to anything"),
                "{arg:?}"
            );
        }
    }

    #[test]
    fn refuses_bad_values() {
        let err = |opts: &[OptValue]| parse(1, opts).unwrap_err();
        assert!(err(&[o("on-ip", "1.2.3.4")]).contains("\"--on-port\" must be specified"));
        assert!(err(&[o("on-port", "1"), o("on-port", "2")]).contains("can only be used once"));
        assert!(err(&[OptValue {
            invert: true,
            ..o("on-port", "1")
        }])
        .contains("cannot be inverted"));
        assert!(err(&[o("on-port", "1"), o("tproxy-mark", "1/2/3")]).contains("trailing garbage"));
        assert!(err(&[o("on-port", "1"), o("tproxy-mark", "0x100000000")])
            .contains("bad integer value"));
        assert!(err(&[o("on-port", "1"), o("tproxy-mark", "-1")]).contains("bad integer value"));
        assert!(err(&[o("on-port", "1"), o("tproxy-mark", "1/")]).contains("bad integer value"));
        assert!(err(&[o("on-port", "1"), o("on-ip", "1.2.3.4.5")]).contains("getaddrinfo"));
        assert!(save(1, &[0; 8]).is_err());
    }
    mod v6 {
        //! IPv6 (revision 1 only): fixtures captured from the kernel after
        //! ip6tables-legacy-restore 1.8.9, mangle PREROUTING.
        use super::*;

        fn ctx_ip() -> IpMatch {
            IpMatch {
                proto: 6,
                ..IpMatch::any(Family::V6)
            }
        }

        fn parse6(rev: u8, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
            let ip = ctx_ip();
            let ctx = RuleContext {
                family: Family::V6,
                ip: &ip,
                table: "mangle",
            };
            let mut v = Tproxy(Family::V6).parse(rev, opts, &ctx)?;
            v.resize(xt_align(v.len()), 0);
            Ok(v)
        }

        fn save6(rev: u8, data: &[u8]) -> ExtResult<String> {
            let ip = ctx_ip();
            let ctx = RuleContext {
                family: Family::V6,
                ip: &ip,
                table: "mangle",
            };
            let mut out = String::new();
            Tproxy(Family::V6).save(rev, data, &ctx, &mut out)?;
            Ok(out)
        }

        #[test]
        fn revisions() {
            assert_eq!(Tproxy(Family::V6).revisions(Family::V6), &[1]);
            assert_eq!(Tproxy(Family::V6).families(), &[Family::V6]);
        }

        #[test]
        fn all_options() {
            // -p udp -j TPROXY --on-port 65535 --on-ip ::1 --tproxy-mark 010/0x10
            let fixture = hex(concat!(
                "10000000",                         // mark_mask 0x10
                "08000000",                         // mark_value 8
                "00000000000000000000000000000001", // laddr ::1
                "ffff",                             // lport 65535
                "0000",                             // struct padding
                "00000000",                         // XT_ALIGN padding
            ));
            let opts = [
                o("on-port", "65535"),
                o("on-ip", "::1"),
                o("tproxy-mark", "010/0x10"),
            ];
            assert_eq!(parse6(1, &opts).unwrap(), fixture);
            assert_eq!(
                save6(1, &fixture).unwrap(),
                " --on-port 65535 --on-ip ::1 --tproxy-mark 0x8/0x10"
            );
            // -p tcp -j TPROXY --on-ip 2001:db8::1.2.3.4 --on-port http --tproxy-mark 0x1
            let fixture = hex(concat!(
                "ffffffff",                         // mark_mask: all ones by default
                "01000000",                         // mark_value 1
                "20010db8000000000000000001020304", // laddr 2001:db8::102:304
                "0050",                             // lport 80
                "0000",                             // struct padding
                "00000000",                         // XT_ALIGN padding
            ));
            let opts = [
                o("on-ip", "2001:db8::1.2.3.4"),
                o("on-port", "http"),
                o("tproxy-mark", "0x1"),
            ];
            assert_eq!(parse6(1, &opts).unwrap(), fixture);
            assert_eq!(
                save6(1, &fixture).unwrap(),
                " --on-port 80 --on-ip 2001:db8::102:304 --tproxy-mark 0x1/0xffffffff"
            );
        }

        #[test]
        fn port_only() {
            // -p tcp -j TPROXY --on-port 3128
            let fixture = hex(concat!(
                "00000000",                         // mark_mask 0
                "00000000",                         // mark_value 0
                "00000000000000000000000000000000", // laddr unset
                "0c38",                             // lport 3128
                "0000",                             // struct padding
                "00000000",                         // XT_ALIGN padding
            ));
            assert_eq!(parse6(1, &[o("on-port", "3128")]).unwrap(), fixture);
            assert_eq!(
                save6(1, &fixture).unwrap(),
                " --on-port 3128 --on-ip :: --tproxy-mark 0x0/0x0"
            );
        }

        #[test]
        fn refuses_bad_values() {
            assert!(parse6(1, &[o("on-port", "1"), o("on-ip", "1.2.3.4")])
                .unwrap_err()
                .contains("getaddrinfo"));
            assert!(parse6(1, &[o("on-port", "1"), o("on-ip", "::1::2")])
                .unwrap_err()
                .contains("getaddrinfo"));
            assert!(parse6(0, &[o("on-port", "1")]).is_err());
            assert!(save6(0, &[0; 16]).is_err());
            assert!(save6(1, &[0; 16]).is_err());
        }
    }
}
