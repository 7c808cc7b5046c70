//! `-j TPROXY` (xt_TPROXY, IPv4): hand a packet to a local socket without
//! changing it, optionally marking it.
//!
//! iptables 1.8.9 has revisions 1 (`xt_tproxy_target_info_v1`, a 16-byte
//! `union nf_inet_addr`) and 0 (`xt_tproxy_target_info`, a 4-byte address)
//! for IPv4. The kernel accepts it in the mangle table's PREROUTING chain
//! with `-p tcp` or `-p udp`; it checks that itself, as for iptables.

use std::mem::{offset_of, size_of};
use std::net::Ipv4Addr;

use super::{
    no_invert, once, opt, strtoul_prefix, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload,
    Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{xt_tproxy_target_info, xt_tproxy_target_info_v1};

pub(super) static CODECS: &[&dyn Codec] = &[&Tproxy];

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

/// The parsed options, common to both revisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TproxyInfo {
    mark_value: u32,
    mark_mask: u32,
    laddr: Ipv4Addr,
    lport: u16,
}

struct Tproxy;

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
        Ok(TproxyInfo {
            mark_mask: r.u32(mask)?,
            mark_value: r.u32(value)?,
            laddr: Ipv4Addr::from(r.be32(laddr)?),
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
        &[Family::V4]
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[1, 0]
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
            laddr: Ipv4Addr::UNSPECIFIED,
            lport: 0,
        };
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "TPROXY")?;
            no_invert(o, "TPROXY")?;
            match o.name {
                "on-port" => info.lport = parse_gai_port(o.arg())?,
                "on-ip" => info.laddr = parse_host_v4(o.arg())?,
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
            0 => (
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
        // Revision 1: the rest of the 16-byte address stays zero.
        p.u32(mask, info.mark_mask)
            .u32(value, info.mark_value)
            .bytes(laddr, &info.laddr.octets())
            .be16(lport, info.lport);
        Ok(p.finish())
    }

    fn save(&self, rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let i = Tproxy::decode(rev, data)?;
        out.push_str(&format!(
            " --on-port {} --on-ip {} --tproxy-mark {:#x}/{:#x}",
            i.lport, i.laddr, i.mark_value, i.mark_mask
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

    fn o(name: &'static str, arg: &str) -> OptValue {
        OptValue {
            name,
            invert: false,
            args: vec![arg.to_string()],
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
        let mut v = Tproxy.parse(rev, opts, &ctx)?;
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
        Tproxy.save(rev, data, &ctx, &mut out)?;
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
}
