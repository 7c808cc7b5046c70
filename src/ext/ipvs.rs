//! `-m ipvs` (xt_ipvs): packets of IPVS connections, by virtual protocol,
//! address, port, direction, forwarding method and the port of the
//! controlling connection. Any option but `--ipvs` implies `--ipvs`.
//!
//! The kernel this crate is tested on has no xt_ipvs, so iptables itself
//! cannot load these rules there and no parity test is possible. The unit
//! tests' fixtures are the bytes iptables-legacy-restore 1.8.9 hands the
//! kernel (its IPT_SO_SET_REPLACE buffer, recorded with strace), and the
//! save tests follow libxt_ipvs's printer.

use std::mem::{offset_of, size_of};
use std::net::{Ipv4Addr, Ipv6Addr};

use super::conntrack::inet_ntop6;
use super::recent::{XtFlags, XtOpt, XTOPT_INVERT};
use super::{
    parse_uint, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    xt_ipvs_mtinfo, XT_IPVS_DIR, XT_IPVS_IPVS_PROPERTY, XT_IPVS_METHOD, XT_IPVS_ONCE_MASK,
    XT_IPVS_PROTO, XT_IPVS_VADDR, XT_IPVS_VPORT, XT_IPVS_VPORTCTL,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Ipvs];

mod field {
    use super::*;
    pub const VADDR: usize = offset_of!(xt_ipvs_mtinfo, vaddr);
    pub const VMASK: usize = offset_of!(xt_ipvs_mtinfo, vmask);
    pub const VPORT: usize = offset_of!(xt_ipvs_mtinfo, vport);
    pub const L4PROTO: usize = offset_of!(xt_ipvs_mtinfo, l4proto);
    pub const FWD_METHOD: usize = offset_of!(xt_ipvs_mtinfo, fwd_method);
    pub const VPORTCTL: usize = offset_of!(xt_ipvs_mtinfo, vportctl);
    pub const INVERT: usize = offset_of!(xt_ipvs_mtinfo, invert);
    pub const BITMASK: usize = offset_of!(xt_ipvs_mtinfo, bitmask);
    /// `union nf_inet_addr`.
    pub const ADDR_LEN: usize = VMASK - VADDR;
}

// Forwarding methods (IP_VS_CONN_F_* of linux/ip_vs.h, outside the
// bindings).
const IP_VS_CONN_F_MASQ: u8 = 0x0000;
const IP_VS_CONN_F_TUNNEL: u8 = 0x0002;
const IP_VS_CONN_F_DROUTE: u8 = 0x0003;
const METHODS: &[(&str, u8)] = &[
    ("GATE", IP_VS_CONN_F_DROUTE),
    ("IPIP", IP_VS_CONN_F_TUNNEL),
    ("MASQ", IP_VS_CONN_F_MASQ),
];

// Option ids: each is also the option's bit in `bitmask` / `invert`.
const O_IPVS: u8 = 0;
const O_VPROTO: u8 = 1;
const O_VADDR: u8 = 2;
const O_VPORT: u8 = 3;
const O_VDIR: u8 = 4;
const O_VMETHOD: u8 = 5;
const O_VPORTCTL: u8 = 6;
const TABLE: [XtOpt; 7] = [
    XtOpt::new("ipvs", O_IPVS, Arg::None, XTOPT_INVERT),
    XtOpt::new("vproto", O_VPROTO, Arg::One, XTOPT_INVERT),
    XtOpt::new("vaddr", O_VADDR, Arg::One, XTOPT_INVERT),
    XtOpt::new("vport", O_VPORT, Arg::One, XTOPT_INVERT),
    XtOpt::new("vdir", O_VDIR, Arg::One, 0),
    XtOpt::new("vmethod", O_VMETHOD, Arg::One, XTOPT_INVERT),
    XtOpt::new("vportctl", O_VPORTCTL, Arg::One, XTOPT_INVERT),
];
static SPECS: [OptSpec; 7] = XtOpt::specs(&TABLE);

/// xtables_parse_protocol: a number 0..=255, one of iptables' own names,
/// then /etc/protocols.
fn parse_protocol(s: &str) -> ExtResult<u8> {
    if let Some(v) = parse_uint(s, 0, 255) {
        return Ok(v as u8);
    }
    const NAMES: &[(&str, u8)] = &[
        ("tcp", 6),
        ("sctp", 132),
        ("udp", 17),
        ("udplite", 136),
        ("icmp", 1),
        ("ipv6-icmp", 58),
        ("icmpv6", 58),
        ("esp", 50),
        ("ah", 51),
        ("mobility-header", 135),
        ("ipv6-mh", 135),
        ("mh", 135),
        ("all", 0),
    ];
    if let Some((_, n)) = NAMES.iter().find(|(n, _)| *n == s) {
        return Ok(*n);
    }
    crate::netdb::protocol_by_name(s).ok_or_else(|| format!("unknown protocol \"{s}\" specified"))
}

/// glibc inet_aton (what getaddrinfo with AI_NUMERICHOST accepts for
/// IPv4): one to four parts in C notation, the last filling the bytes
/// left.
fn inet_aton(s: &str) -> Option<[u8; 4]> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut vals = Vec::with_capacity(4);
    for p in &parts {
        let b = p.as_bytes();
        if !b.first()?.is_ascii_digit() {
            return None;
        }
        let (radix, digits) = if b.len() > 1 && b[0] == b'0' && (b[1] | 0x20) == b'x' {
            (16, &p[2..])
        } else if b[0] == b'0' {
            (8, &p[..])
        } else {
            (10, &p[..])
        };
        if digits.is_empty() {
            return None;
        }
        vals.push(u32::from_str_radix(digits, radix).ok()?);
    }
    let (last, head) = vals.split_last()?;
    if head.iter().any(|v| *v > 0xff) {
        return None;
    }
    let room = 32 - 8 * head.len() as u32;
    if room < 32 && last >> room != 0 {
        return None;
    }
    let high = head
        .iter()
        .enumerate()
        .fold(0u32, |a, (i, v)| a | v << (24 - 8 * i));
    Some((high | last).to_be_bytes())
}

/// The prefix length of a contiguous mask (xtables_ipmask_to_cidr and its
/// IPv6 twin), `None` for a mask with holes.
fn mask_to_cidr(mask: &[u8]) -> Option<u32> {
    let bits = mask.iter().fold(0u128, |a, b| a << 8 | u128::from(*b)) << (128 - 8 * mask.len());
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then_some(ones)
}

/// XTTYPE_HOST: a name or address that resolves to exactly one address.
fn resolve(host: &str, family: Family) -> ExtResult<[u8; 16]> {
    let all: Vec<[u8; 16]> = match family {
        Family::V4 => crate::sys::resolve_ipv4(host)
            .unwrap_or_default()
            .iter()
            .map(|a| {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&a.octets());
                b
            })
            .collect(),
        Family::V6 => crate::sys::resolve_ipv6(host)
            .unwrap_or_default()
            .iter()
            .map(|a| a.octets())
            .collect(),
    };
    let first = *all
        .first()
        .ok_or_else(|| format!("ipvs: --vaddr: host/address `{host}' not found"))?;
    if all.iter().any(|a| *a != first) {
        return Err(format!("{host} resolves to more than one address"));
    }
    Ok(first)
}

/// XTTYPE_HOSTMASK: `host[/mask]`, the mask a prefix length or a full
/// mask. The address is kept unmasked. A host alone gets all 16 mask bytes
/// set; a prefix fills the mask from the front (an IPv4 one thus only the
/// first word); a mask with holes ends up all ones, as in libxtables. A
/// prefix longer than the address is refused.
fn parse_hostmask(arg: &str, family: Family) -> ExtResult<([u8; 16], [u8; 16])> {
    let (host, mask) = match arg.split_once('/') {
        Some((h, m)) => (h, Some(m)),
        None => (arg, None),
    };
    let addr = resolve(host, family)?;
    let Some(m) = mask else {
        return Ok((addr, [0xff; 16]));
    };
    let width = if family == Family::V4 { 32 } else { 128 };
    // iptables reads `/33` (for IPv4) as the dotted mask 0.0.0.33, which
    // has holes, and so silently as a host mask: refused here.
    if !m.is_empty() && m.bytes().all(|c| c.is_ascii_digit()) && parse_uint(m, 0, width).is_none() {
        return Err(format!(
            "ipvs: --vaddr: prefix length /{m} is out of range (0-{width})"
        ));
    }
    let len = match parse_uint(m, 0, width) {
        Some(l) => Some(l as u32),
        None => {
            let full: Vec<u8> = match family {
                Family::V4 => inet_aton(m).map(|a| a.to_vec()),
                Family::V6 => m.parse::<Ipv6Addr>().ok().map(|a| a.octets().to_vec()),
            }
            .ok_or_else(|| {
                format!(
                    "ipvs: bad value for option \"--vaddr\", neither a valid network mask nor valid CIDR (0-{width})."
                )
            })?;
            mask_to_cidr(&full)
        }
    };
    let bits = match len {
        Some(0) => [0u8; 16],
        Some(l) => (u128::MAX << (128 - l)).to_be_bytes(),
        None => [0xff; 16],
    };
    Ok((addr, bits))
}

/// ipvs_mt_dump_addr, numeric: the address and `/len`, a full mask when
/// it has holes, nothing for a host mask.
fn save_addr(out: &mut String, family: Family, addr: &[u8], mask: &[u8]) {
    let (a, m, cidr, width) = match family {
        Family::V4 => {
            let a = Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]);
            let m = Ipv4Addr::new(mask[0], mask[1], mask[2], mask[3]);
            (a.to_string(), m.to_string(), mask_to_cidr(&mask[..4]), 32)
        }
        Family::V6 => {
            let mut a = [0u8; 16];
            let mut m = [0u8; 16];
            a.copy_from_slice(addr);
            m.copy_from_slice(mask);
            (inet_ntop6(&a), inet_ntop6(&m), mask_to_cidr(mask), 128)
        }
    };
    out.push(' ');
    out.push_str(&a);
    match cidr {
        Some(l) if l == width => {}
        Some(l) => out.push_str(&format!("/{l}")),
        None => out.push_str(&format!("/{m}")),
    }
}

struct Ipvs;

impl Codec for Ipvs {
    fn name(&self) -> &'static str {
        "ipvs"
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

    fn parse(&self, _rev: u8, opts: &[OptValue], ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_ipvs_mtinfo>();
        let mut xf = XtFlags::default();
        let (mut bitmask, mut invert) = (0u8, 0u8);
        for o in opts {
            let id = xf.take("ipvs", &TABLE, o)?;
            let bad = || {
                format!(
                    "ipvs: Bad value for \"--{}\" option: \"{}\"",
                    o.name,
                    o.arg()
                )
            };
            match id {
                O_VPROTO => {
                    p.u8(field::L4PROTO, parse_protocol(o.arg())?);
                }
                O_VADDR => {
                    let (addr, mask) = parse_hostmask(o.arg(), ctx.family)?;
                    p.bytes(field::VADDR, &addr).bytes(field::VMASK, &mask);
                }
                O_VPORT => {
                    p.be16(field::VPORT, crate::netdb::port_by_name(o.arg())?);
                }
                O_VPORTCTL => {
                    p.be16(field::VPORTCTL, crate::netdb::port_by_name(o.arg())?);
                }
                O_VDIR => {
                    let dir = XT_IPVS_DIR as u8;
                    if o.arg().eq_ignore_ascii_case("ORIGINAL") {
                        invert &= !dir;
                    } else if o.arg().eq_ignore_ascii_case("REPLY") {
                        invert |= dir;
                    } else {
                        return Err(format!("{}: expected ORIGINAL or REPLY", bad()));
                    }
                }
                O_VMETHOD => {
                    let m = METHODS
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(o.arg()))
                        .ok_or_else(|| format!("{}: expected GATE, IPIP or MASQ", bad()))?;
                    p.u8(field::FWD_METHOD, m.1);
                }
                _ => {}
            }
            bitmask |= 1 << id;
            if o.invert {
                invert |= 1 << id;
            }
        }
        if opts.is_empty() {
            return Err("IPVS: At least one option is required".into());
        }
        if bitmask & XT_IPVS_ONCE_MASK as u8 != 0 {
            if invert & XT_IPVS_IPVS_PROPERTY as u8 != 0 {
                return Err("! --ipvs cannot be together with other options".into());
            }
            bitmask |= XT_IPVS_IPVS_PROPERTY as u8;
        }
        p.u8(field::BITMASK, bitmask).u8(field::INVERT, invert);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<xt_ipvs_mtinfo>())?;
        let bitmask = u32::from(r.u8(field::BITMASK)?);
        let invert = u32::from(r.u8(field::INVERT)?);
        let inv = |out: &mut String, bit: u32| {
            if invert & bit != 0 {
                out.push_str(" !");
            }
        };
        if bitmask == XT_IPVS_IPVS_PROPERTY {
            inv(out, XT_IPVS_IPVS_PROPERTY);
            out.push_str(" --ipvs");
        }
        if bitmask & XT_IPVS_PROTO != 0 {
            inv(out, XT_IPVS_PROTO);
            out.push_str(&format!(" --vproto {}", r.u8(field::L4PROTO)?));
        }
        if bitmask & XT_IPVS_VADDR != 0 {
            inv(out, XT_IPVS_VADDR);
            out.push_str(" --vaddr");
            let addr = r.bytes(field::VADDR, field::ADDR_LEN)?;
            let mask = r.bytes(field::VMASK, field::ADDR_LEN)?;
            save_addr(out, ctx.family, addr, mask);
        }
        if bitmask & XT_IPVS_VPORT != 0 {
            inv(out, XT_IPVS_VPORT);
            out.push_str(&format!(" --vport {}", r.be16(field::VPORT)?));
        }
        if bitmask & XT_IPVS_DIR != 0 {
            out.push_str(if invert & XT_IPVS_DIR != 0 {
                " --vdir REPLY"
            } else {
                " --vdir ORIGINAL"
            });
        }
        if bitmask & XT_IPVS_METHOD != 0 {
            inv(out, XT_IPVS_METHOD);
            let method = r.u8(field::FWD_METHOD)?;
            let name = METHODS
                .iter()
                .find(|(_, m)| *m == method)
                .map_or("UNKNOWN", |(n, _)| n);
            out.push_str(" --vmethod ");
            out.push_str(name);
        }
        if bitmask & XT_IPVS_VPORTCTL != 0 {
            inv(out, XT_IPVS_VPORTCTL);
            out.push_str(&format!(" --vportctl {}", r.be16(field::VPORTCTL)?));
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
        Ipvs.parse(0, opts, &ctx).map(|mut v| {
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
        Ipvs.save(0, data, &ctx, &mut out).map(|_| out)
    }

    // The bytes iptables-legacy-restore 1.8.9 passes to the kernel
    // (IPT_SO_SET_REPLACE, recorded with strace) for
    // `-m ipvs --vproto tcp --vaddr 1.2.3.4/24 --vport 80 --vdir REPLY ! --vmethod MASQ --vportctl 21`.
    const ALL: &str = "
        01020304 000000000000000000000000   # vaddr 1.2.3.4 (unmasked)
        ffffff00 000000000000000000000000   # vmask /24
        0050        # vport 80 (network order)
        06          # l4proto tcp
        00          # fwd_method IP_VS_CONN_F_MASQ
        0015        # vportctl 21
        30          # invert: DIR (REPLY) | METHOD
        7f          # bitmask: all options and IPVS_PROPERTY";

    // `-m ipvs ! --ipvs`
    const NOT_IPVS: &str = "
        00000000000000000000000000000000 00000000000000000000000000000000
        0000 00 00 0000
        01          # invert IPVS_PROPERTY
        01          # bitmask IPVS_PROPERTY";

    // `-m ipvs --vaddr 10.0.0.1 --vmethod GATE --vdir ORIGINAL`
    const HOST: &str = "
        0a000001 000000000000000000000000   # vaddr
        ffffffff ffffffffffffffffffffffff   # vmask: a host, all 16 bytes
        0000 00
        03          # fwd_method IP_VS_CONN_F_DROUTE
        0000
        00          # invert
        35          # bitmask PROPERTY|VADDR|DIR|METHOD";

    // ip6tables: `-m ipvs ! --vaddr 2001:db8::1/64 ! --vport 443 --vmethod IPIP`
    const V6: &str = "
        20010db8000000000000000000000001    # vaddr
        ffffffffffffffff0000000000000000    # vmask /64
        01bb        # vport 443
        00
        02          # fwd_method IP_VS_CONN_F_TUNNEL
        0000
        0c          # invert VADDR|VPORT
        2d          # bitmask PROPERTY|VADDR|VPORT|METHOD";

    // `-m ipvs --vaddr 1.2.3.4/255.0.255.0` (a mask with holes: all ones)
    const HOLES: &str = "
        01020304000000000000000000000000
        ffffffffffffffffffffffffffffffff
        0000 00 00 0000 00 05";

    #[test]
    fn parse_matches_iptables_bytes() {
        let opts = [
            ov("vproto", false, &["tcp"]),
            ov("vaddr", false, &["1.2.3.4/24"]),
            ov("vport", false, &["80"]),
            ov("vdir", false, &["REPLY"]),
            ov("vmethod", true, &["MASQ"]),
            ov("vportctl", false, &["21"]),
        ];
        assert_eq!(parse(Family::V4, &opts).unwrap(), fixture(ALL));
        let opts = [
            ov("vproto", false, &["6"]),
            ov("vaddr", false, &["1.2.3.4/255.255.255.0"]),
            ov("vport", false, &["http"]),
            ov("vdir", false, &["reply"]),
            ov("vmethod", true, &["masq"]),
            ov("vportctl", false, &["ftp"]),
        ];
        assert_eq!(parse(Family::V4, &opts).unwrap(), fixture(ALL));
        assert_eq!(
            parse(Family::V4, &[ov("ipvs", true, &[])]).unwrap(),
            fixture(NOT_IPVS)
        );
        let opts = [
            ov("vaddr", false, &["10.0.0.1"]),
            ov("vmethod", false, &["GATE"]),
            ov("vdir", false, &["ORIGINAL"]),
        ];
        assert_eq!(parse(Family::V4, &opts).unwrap(), fixture(HOST));
        let opts = [
            ov("vaddr", true, &["2001:db8::1/64"]),
            ov("vport", true, &["443"]),
            ov("vmethod", false, &["IPIP"]),
        ];
        assert_eq!(parse(Family::V6, &opts).unwrap(), fixture(V6));
        assert_eq!(
            parse(Family::V4, &[ov("vaddr", false, &["1.2.3.4/255.0.255.0"])]).unwrap(),
            fixture(HOLES)
        );
    }

    #[test]
    fn save_follows_libxt_ipvs() {
        assert_eq!(
            save(Family::V4, &fixture(ALL)).unwrap(),
            " --vproto 6 --vaddr 1.2.3.4/24 --vport 80 --vdir REPLY ! --vmethod MASQ --vportctl 21"
        );
        assert_eq!(save(Family::V4, &fixture(NOT_IPVS)).unwrap(), " ! --ipvs");
        assert_eq!(
            save(Family::V4, &fixture(HOST)).unwrap(),
            " --vaddr 10.0.0.1 --vdir ORIGINAL --vmethod GATE"
        );
        assert_eq!(
            save(Family::V6, &fixture(V6)).unwrap(),
            " ! --vaddr 2001:db8::1/64 ! --vport 443 --vmethod IPIP"
        );
        // A host mask of IPv4 is judged on its first word only.
        assert_eq!(
            save(Family::V4, &fixture(HOLES)).unwrap(),
            " --vaddr 1.2.3.4"
        );
        let mut odd = fixture(HOLES);
        odd[16..20].copy_from_slice(&[255, 0, 255, 0]);
        assert_eq!(
            save(Family::V4, &odd).unwrap(),
            " --vaddr 1.2.3.4/255.0.255.0"
        );
        let mut unknown = fixture(HOST);
        unknown[35] = 9;
        assert!(save(Family::V4, &unknown)
            .unwrap()
            .ends_with(" --vmethod UNKNOWN"));
    }

    #[test]
    fn bad_values_are_refused() {
        for o in [
            ov("vproto", false, &["nosuchproto"]),
            ov("vproto", false, &["256"]),
            ov("vaddr", false, &["1.2.3.4/33"]),
            ov("vaddr", false, &["1.2.3.4/x"]),
            ov("vaddr", false, &["no.such.host.invalid"]),
            ov("vport", false, &["70000"]),
            ov("vportctl", false, &["nosuchservice"]),
            ov("vdir", false, &["BOTH"]),
            ov("vdir", true, &["REPLY"]),
            ov("vmethod", false, &["NAT"]),
        ] {
            assert!(
                parse(Family::V4, std::slice::from_ref(&o)).is_err(),
                "{o:?} accepted"
            );
        }
        assert_eq!(
            parse(Family::V4, &[]).unwrap_err(),
            "IPVS: At least one option is required"
        );
        assert_eq!(
            parse(
                Family::V4,
                &[ov("ipvs", true, &[]), ov("vport", false, &["22"])]
            )
            .unwrap_err(),
            "! --ipvs cannot be together with other options"
        );
        assert!(parse(
            Family::V4,
            &[ov("vport", false, &["1"]), ov("vport", false, &["2"])]
        )
        .is_err());
        assert!(save(Family::V4, &[0; 36]).is_err(), "short payload");
    }
}
