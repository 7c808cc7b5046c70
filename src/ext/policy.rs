//! `-m policy` (xt_policy): the IPsec policy that applied to the packet.
//!
//! `--dir in|out` (mandatory), `--pol none|ipsec`, `--strict`, then up to
//! four policy elements separated by `--next`, each with any of
//! `[!] --reqid ID`, `[!] --spi SPI`, `[!] --proto ah|esp|ipcomp`,
//! `[!] --mode transport|tunnel`, `[!] --tunnel-src ADDR[/MASK]`,
//! `[!] --tunnel-dst ADDR[/MASK]`.
//!
//! One revision (0), one struct for both families; only the tunnel
//! addresses differ (IPv4 in the first 4 bytes of each 16-byte field). The
//! kernel refuses `--dir out` in PREROUTING and INPUT, `--dir in` in OUTPUT
//! and POSTROUTING.
//!
//! Byte details kept from libxt_policy: the SPI is stored in host order
//! (though the field is `__be32`); tunnel addresses are not masked; a tunnel
//! address without a mask, or with a mask that is not a prefix, gets a mask
//! of sixteen 0xff bytes; a prefix length fills only the bytes it covers.

use std::mem::{offset_of, size_of};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::connlimit::{parse_plen4, plen_to_mask};
use super::conntrack::inet_ntop6;
use super::recent::{parse_int_opt, XtFlags, XtOpt, XTOPT_INVERT, XTOPT_MULTI};
use super::{
    parse_uint, save_inv, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    xt_policy_elem, xt_policy_elem__bindgen_ty_1__bindgen_ty_1, xt_policy_info, IPPROTO_AH,
    IPPROTO_COMP, IPPROTO_ESP, XT_POLICY_MATCH_IN, XT_POLICY_MATCH_NONE, XT_POLICY_MATCH_OUT,
    XT_POLICY_MATCH_STRICT, XT_POLICY_MAX_ELEM, XT_POLICY_MODE_TRANSPORT, XT_POLICY_MODE_TUNNEL,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Policy];

mod field {
    use super::*;
    pub const POL: usize = offset_of!(xt_policy_info, pol);
    pub const FLAGS: usize = offset_of!(xt_policy_info, flags);
    pub const LEN: usize = offset_of!(xt_policy_info, len);
    pub const ELEM_SIZE: usize = size_of::<xt_policy_elem>();
    /// The address block is an anonymous union/struct at the element's start.
    const ADDRS: usize = offset_of!(xt_policy_elem, __bindgen_anon_1);
    pub const SADDR: usize = ADDRS + offset_of!(xt_policy_elem__bindgen_ty_1__bindgen_ty_1, saddr);
    pub const SMASK: usize = ADDRS + offset_of!(xt_policy_elem__bindgen_ty_1__bindgen_ty_1, smask);
    pub const DADDR: usize = ADDRS + offset_of!(xt_policy_elem__bindgen_ty_1__bindgen_ty_1, daddr);
    pub const DMASK: usize = ADDRS + offset_of!(xt_policy_elem__bindgen_ty_1__bindgen_ty_1, dmask);
    pub const SPI: usize = offset_of!(xt_policy_elem, spi);
    pub const REQID: usize = offset_of!(xt_policy_elem, reqid);
    pub const PROTO: usize = offset_of!(xt_policy_elem, proto);
    pub const MODE: usize = offset_of!(xt_policy_elem, mode);
    pub const MATCH: usize = offset_of!(xt_policy_elem, match_);
    pub const INVERT: usize = offset_of!(xt_policy_elem, invert);
    /// `union xt_policy_addr`.
    pub const ADDR_LEN: usize = 16;
}

/// The bits of `struct xt_policy_spec` (`__u8 saddr:1, daddr:1, proto:1,
/// mode:1, spi:1, reqid:1`): GCC allocates bit-fields from the least
/// significant bit on little-endian targets (checked against bindgen's
/// accessors in a test).
mod spec {
    pub const SADDR: u8 = 1 << 0;
    pub const DADDR: u8 = 1 << 1;
    pub const PROTO: u8 = 1 << 2;
    pub const MODE: u8 = 1 << 3;
    pub const SPI: u8 = 1 << 4;
    pub const REQID: u8 = 1 << 5;
    pub const ANY: u8 = SADDR | DADDR | PROTO | MODE | SPI | REQID;
}

const MAX_ELEM: usize = XT_POLICY_MAX_ELEM as usize;

const O_DIRECTION: u8 = 0;
const O_POLICY: u8 = 1;
const O_STRICT: u8 = 2;
const O_REQID: u8 = 3;
const O_SPI: u8 = 4;
const O_PROTO: u8 = 5;
const O_MODE: u8 = 6;
const O_TUNNELSRC: u8 = 7;
const O_TUNNELDST: u8 = 8;
const O_NEXT: u8 = 9;
const F_STRICT: u32 = 1 << O_STRICT;
const MI: u8 = XTOPT_MULTI | XTOPT_INVERT;
/// libxt_policy's option table, in its order.
const TABLE: [XtOpt; 10] = [
    XtOpt::new("dir", O_DIRECTION, Arg::One, 0),
    XtOpt::new("pol", O_POLICY, Arg::One, 0),
    XtOpt::new("strict", O_STRICT, Arg::None, 0),
    XtOpt::new("reqid", O_REQID, Arg::One, MI),
    XtOpt::new("spi", O_SPI, Arg::One, MI),
    XtOpt::new("tunnel-src", O_TUNNELSRC, Arg::One, MI),
    XtOpt::new("tunnel-dst", O_TUNNELDST, Arg::One, MI),
    XtOpt::new("proto", O_PROTO, Arg::One, MI),
    XtOpt::new("mode", O_MODE, Arg::One, MI),
    XtOpt::new("next", O_NEXT, Arg::None, XTOPT_MULTI).also(F_STRICT),
];
static SPECS: [OptSpec; 10] = XtOpt::specs(&TABLE);

/// iptables' own protocol names, looked up before /etc/protocols
/// (xtables_chain_protos).
const CHAIN_PROTOS: &[(&str, u8)] = &[
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

/// xtables_parse_protocol (XTTYPE_PROTOCOL keeps the low 8 bits).
fn parse_protocol(s: &str) -> ExtResult<u8> {
    if let Some(v) = parse_uint(s, 0, 255) {
        return Ok(v as u8);
    }
    CHAIN_PROTOS
        .iter()
        .find(|(n, _)| *n == s)
        .map(|&(_, v)| v)
        .or_else(|| crate::netdb::protocol_by_name(s))
        .ok_or_else(|| format!("unknown protocol \"{s}\" specified"))
}

/// A tunnel address and its 16-byte mask, as libxtables' XTTYPE_HOSTMASK
/// leaves them.
fn parse_hostmask(family: Family, o: &OptValue) -> ExtResult<([u8; 16], [u8; 16])> {
    let arg = o.arg();
    let (host, plen) = match arg.split_once('/') {
        Some((h, p)) => (h, Some(p)),
        None => (arg, None),
    };
    let af = match family {
        Family::V4 => libc::AF_INET,
        _ => libc::AF_INET6,
    };
    let addrs = crate::sys::resolve(host, af)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            format!(
                "policy: --{}: host/address `{host}' not found (getaddrinfo failed)",
                o.name
            )
        })?;
    if addrs.iter().any(|a| *a != addrs[0]) {
        return Err(format!("{host} resolves to more than one address"));
    }
    let mut addr = [0u8; 16];
    match addrs[0] {
        IpAddr::V4(a) => addr[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => addr = a.octets(),
    }
    let Some(plen) = plen else {
        return Ok((addr, [0xff; 16]));
    };
    let plen_opt = OptValue {
        args: vec![plen.to_string()].into(),
        ..o.clone()
    };
    let mask = match family {
        Family::V4 => plen_to_mask(parse_plen4("policy", &plen_opt)?),
        _ => plen6_to_mask(parse_plen6(&plen_opt)?),
    };
    Ok((addr, mask))
}

/// XTTYPE_PLEN for IPv6: 0..=128, or a mask written as an address (255
/// when it is not a prefix).
fn parse_plen6(o: &OptValue) -> ExtResult<u8> {
    if let Some(v) = parse_uint(o.arg(), 0, 128) {
        return Ok(v as u8);
    }
    match o.arg().parse::<Ipv6Addr>() {
        Ok(m) => Ok(mask6_to_cidr(&m.octets()).map_or(255, |c| c as u8)),
        Err(_) => Err(format!(
            "policy: bad value for option \"--{}\", neither a valid network mask nor valid CIDR (0-128).",
            o.name
        )),
    }
}

/// xtopt_parse_plenmask for IPv6: the prefix as a 16-byte mask; a length
/// above 128 (from a mask that is not a prefix) leaves all bytes 0xff.
fn plen6_to_mask(hlen: u8) -> [u8; 16] {
    if hlen > 128 {
        return [0xff; 16];
    }
    let m = if hlen == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(hlen))
    };
    m.to_be_bytes()
}

/// xtables_ip6mask_to_cidr: the prefix length of a contiguous mask.
fn mask6_to_cidr(m: &[u8; 16]) -> Option<u32> {
    let v = u128::from_be_bytes(*m);
    let ones = v.leading_ones();
    (ones == 128 || v << ones == 0).then_some(ones)
}

/// xtables_ipmask_to_cidr: the prefix length of a contiguous IPv4 mask.
fn mask4_to_cidr(m: u32) -> Option<u32> {
    let ones = m.leading_ones();
    (ones == 32 || m << ones == 0).then_some(ones)
}

/// `ADDR[/MASK]` as xtables_ipaddr_to_numeric + xtables_ipmask_to_numeric
/// (or the ip6 ones) print it: no mask for a full one, `/N` for a prefix,
/// `/MASK-ADDRESS` otherwise.
fn format_hostmask(family: Family, addr: &[u8], mask: &[u8]) -> String {
    if family == Family::V4 {
        let a = Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]);
        let m = u32::from_be_bytes([mask[0], mask[1], mask[2], mask[3]]);
        match mask4_to_cidr(m) {
            Some(32) => a.to_string(),
            Some(c) => format!("{a}/{c}"),
            None => format!("{a}/{}", Ipv4Addr::from(m)),
        }
    } else {
        let mut a = [0u8; 16];
        a.copy_from_slice(&addr[..16]);
        let mut m = [0u8; 16];
        m.copy_from_slice(&mask[..16]);
        match mask6_to_cidr(&m) {
            Some(128) => inet_ntop6(&a),
            Some(c) => format!("{}/{c}", inet_ntop6(&a)),
            None => format!("{}/{}", inet_ntop6(&a), inet_ntop6(&m)),
        }
    }
}

/// Builds the payload from the options (libxt_policy's policy_parse and
/// policy_check, then the option table's checks).
fn parse_policy(family: Family, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
    let mut p = Payload::of::<xt_policy_info>();
    let mut xf = XtFlags::default();
    let mut flags = 0u16;
    let mut len = 0usize;
    let mut matched = [0u8; MAX_ELEM];
    let mut inverted = [0u8; MAX_ELEM];
    let mut mode = [0u8; MAX_ELEM];
    let elem = |len: usize| field::POL + len * field::ELEM_SIZE;
    for o in opts {
        let id = xf.take("policy", &TABLE, o)?;
        let e = elem(len);
        // Sets a match bit, refusing a second use in the same element.
        let (m, inv) = (&mut matched[len], &mut inverted[len]);
        let mut mark = |bit: u8, what: &str| -> ExtResult<()> {
            if *m & bit != 0 {
                return Err(format!("policy match: double --{what} option"));
            }
            *m |= bit;
            if o.invert {
                *inv |= bit;
            }
            Ok(())
        };
        match id {
            O_DIRECTION => {
                flags |= match o.arg() {
                    "in" => XT_POLICY_MATCH_IN,
                    "out" => XT_POLICY_MATCH_OUT,
                    s => return Err(format!("policy_match: invalid dir \"{s}\"")),
                } as u16;
            }
            O_POLICY => {
                flags |= match o.arg() {
                    "none" => XT_POLICY_MATCH_NONE,
                    "ipsec" => 0,
                    s => return Err(format!("policy match: invalid policy \"{s}\"")),
                } as u16;
            }
            O_STRICT => flags |= XT_POLICY_MATCH_STRICT as u16,
            O_REQID => {
                let v = parse_int_opt("policy", o, 0, u32::MAX.into())? as u32;
                mark(spec::REQID, "reqid")?;
                p.u32(e + field::REQID, v);
            }
            O_SPI => {
                let v = parse_int_opt("policy", o, 0, u32::MAX.into())? as u32;
                mark(spec::SPI, "spi")?;
                // Host order, as libxt_policy stores it.
                p.u32(e + field::SPI, v);
            }
            O_TUNNELSRC | O_TUNNELDST => {
                let (addr, mask) = parse_hostmask(family, o)?;
                let (bit, name, aoff, moff) = if id == O_TUNNELSRC {
                    (spec::SADDR, "tunnel-src", field::SADDR, field::SMASK)
                } else {
                    (spec::DADDR, "tunnel-dst", field::DADDR, field::DMASK)
                };
                mark(bit, name)?;
                p.bytes(e + aoff, &addr).bytes(e + moff, &mask);
            }
            O_PROTO => {
                let proto = parse_protocol(o.arg())?;
                // The double check comes before the protocol check.
                mark(spec::PROTO, "proto")?;
                if ![IPPROTO_AH, IPPROTO_ESP, IPPROTO_COMP].contains(&u32::from(proto)) {
                    return Err("policy match: protocol must be ah/esp/ipcomp".into());
                }
                p.u8(e + field::PROTO, proto);
            }
            O_MODE => {
                mark(spec::MODE, "mode")?;
                let m = match o.arg() {
                    "transport" => XT_POLICY_MODE_TRANSPORT,
                    "tunnel" => XT_POLICY_MODE_TUNNEL,
                    s => return Err(format!("policy match: invalid mode \"{s}\"")),
                } as u8;
                mode[len] = m;
                p.u8(e + field::MODE, m);
            }
            _ => {
                len += 1;
                if len == MAX_ELEM {
                    return Err("policy match: maximum policy depth reached".into());
                }
            }
        }
    }
    // policy_check
    if flags & (XT_POLICY_MATCH_IN | XT_POLICY_MATCH_OUT) as u16 == 0 {
        return Err("policy match: neither --dir in nor --dir out specified".into());
    }
    if flags & XT_POLICY_MATCH_NONE as u16 != 0 {
        if flags & XT_POLICY_MATCH_STRICT as u16 != 0 {
            return Err("policy match: policy none but --strict given".into());
        }
        if len != 0 {
            return Err("policy match: policy none but policy given".into());
        }
    } else {
        // No --next after the last element.
        len += 1;
    }
    for i in 0..len {
        if flags & XT_POLICY_MATCH_STRICT as u16 != 0 && matched[i] & spec::ANY == 0 {
            return Err(format!(
                "policy match: empty policy element {i}. --strict is in effect, but at least one of reqid, spi, tunnel-src, tunnel-dst, proto or mode is required."
            ));
        }
        let tunnel_mode = if inverted[i] & spec::MODE != 0 {
            mode[i] != XT_POLICY_MODE_TUNNEL as u8
        } else {
            mode[i] == XT_POLICY_MODE_TUNNEL as u8
        };
        // A mode other than transport/tunnel cannot be set from text.
        if matched[i] & (spec::SADDR | spec::DADDR) != 0 && !tunnel_mode {
            return Err(
                "policy match: --tunnel-src/--tunnel-dst is only valid in tunnel mode".into(),
            );
        }
    }
    xf.fcheck("policy", &TABLE)?;
    for i in 0..MAX_ELEM {
        p.u8(elem(i) + field::MATCH, matched[i])
            .u8(elem(i) + field::INVERT, inverted[i]);
    }
    p.u16(field::FLAGS, flags).u16(field::LEN, len as u16);
    Ok(p.finish())
}

/// policy4_save / policy6_save.
fn save_policy(family: Family, data: &[u8], out: &mut String) -> ExtResult<()> {
    let r = Reader::new(data, size_of::<xt_policy_info>())?;
    let flags = u32::from(r.u16(field::FLAGS)?);
    let len = usize::from(r.u16(field::LEN)?);
    if len > MAX_ELEM {
        return Err(format!(
            "policy: payload has {len} policy elements (at most {MAX_ELEM})"
        ));
    }
    out.push_str(if flags & XT_POLICY_MATCH_IN != 0 {
        " --dir in"
    } else {
        " --dir out"
    });
    out.push_str(if flags & XT_POLICY_MATCH_NONE != 0 {
        " --pol none"
    } else {
        " --pol ipsec"
    });
    if flags & XT_POLICY_MATCH_STRICT != 0 {
        out.push_str(" --strict");
    }
    for i in 0..len {
        let e = field::POL + i * field::ELEM_SIZE;
        let matched = r.u8(e + field::MATCH)?;
        let inverted = r.u8(e + field::INVERT)?;
        let mut item = |bit: u8, text: String| {
            if matched & bit != 0 {
                save_inv(out, inverted & bit != 0);
                out.push_str(&text);
            }
        };
        item(
            spec::REQID,
            format!(" --reqid {}", r.u32(e + field::REQID)?),
        );
        item(spec::SPI, format!(" --spi 0x{:x}", r.u32(e + field::SPI)?));
        let proto = r.u8(e + field::PROTO)?;
        item(
            spec::PROTO,
            match crate::netdb::protocol_name(proto) {
                Some(name) => format!(" --proto {name}"),
                None => format!(" --proto {proto}"),
            },
        );
        let mode = r.u8(e + field::MODE)?;
        item(
            spec::MODE,
            format!(
                " --mode {}",
                match u32::from(mode) {
                    XT_POLICY_MODE_TRANSPORT => "transport",
                    XT_POLICY_MODE_TUNNEL => "tunnel",
                    _ => "???",
                }
            ),
        );
        let addr = |off: usize| r.bytes(e + off, field::ADDR_LEN);
        item(
            spec::DADDR,
            format!(
                " --tunnel-dst {}",
                format_hostmask(family, addr(field::DADDR)?, addr(field::DMASK)?)
            ),
        );
        item(
            spec::SADDR,
            format!(
                " --tunnel-src {}",
                format_hostmask(family, addr(field::SADDR)?, addr(field::SMASK)?)
            ),
        );
        if i + 1 < len {
            out.push_str(" --next");
        }
    }
    Ok(())
}

struct Policy;

impl Codec for Policy {
    fn name(&self) -> &'static str {
        "policy"
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

    fn parse(&self, _rev: u8, opts: &[OptValue], ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        parse_policy(ctx.family, opts)
    }

    fn save(&self, _rev: u8, data: &[u8], ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        save_policy(ctx.family, data, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;
    use crate::sys::bindings::xt_policy_spec;

    fn ov(name: &'static str, invert: bool, args: &[&str]) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `--name arg` words into options; `!` before an option inverts it.
    fn opts(words: &str) -> Vec<OptValue<'static>> {
        let spec = |n: &str| TABLE.iter().find(|e| e.spec.name == n).unwrap().spec;
        let w: Vec<&str> = words.split_whitespace().collect();
        let mut v = Vec::new();
        let mut i = 0;
        while i < w.len() {
            let invert = w[i] == "!";
            if invert {
                i += 1;
            }
            let s = spec(w[i].trim_start_matches("--"));
            let args: Vec<&str> = if s.arg == Arg::One {
                i += 1;
                vec![w[i]]
            } else {
                vec![]
            };
            v.push(ov(s.name, invert, &args));
            i += 1;
        }
        v
    }

    fn parse(family: Family, words: &str) -> ExtResult<Vec<u8>> {
        let mut v = parse_policy(family, &opts(words))?;
        v.resize(xt_align(v.len()), 0);
        Ok(v)
    }

    fn save(family: Family, data: &[u8]) -> String {
        let mut out = String::new();
        save_policy(family, data, &mut out).unwrap();
        out
    }

    /// The 312-byte payload: zero except for the given runs (offset, hex).
    /// Element i starts at 76 * i; flags at 304, len at 306.
    fn sparse(runs: &[(usize, &str)]) -> Vec<u8> {
        let mut v = vec![0u8; 312];
        for &(off, h) in runs {
            let b = hex(h);
            v[off..off + b.len()].copy_from_slice(&b);
        }
        v
    }

    #[test]
    fn spec_bits_match_the_bindings() {
        let bit = |set: fn(&mut xt_policy_spec, u8)| {
            let mut s = xt_policy_spec::default();
            set(&mut s, 1);
            s._bitfield_1.get(0, 8) as u8
        };
        assert_eq!(bit(xt_policy_spec::set_saddr), spec::SADDR);
        assert_eq!(bit(xt_policy_spec::set_daddr), spec::DADDR);
        assert_eq!(bit(xt_policy_spec::set_proto), spec::PROTO);
        assert_eq!(bit(xt_policy_spec::set_mode), spec::MODE);
        assert_eq!(bit(xt_policy_spec::set_spi), spec::SPI);
        assert_eq!(bit(xt_policy_spec::set_reqid), spec::REQID);
        assert_eq!(field::ELEM_SIZE, 76);
    }

    // Kernel captures after iptables-legacy-restore (IPv4):
    // `--dir in --pol none`
    fn v4_none() -> Vec<u8> {
        sparse(&[(304, "0500 0000")]) // flags IN | NONE, len 0
    }

    // `--dir out --pol ipsec --strict --reqid 5 ! --spi 0x1234 --proto esp
    //  --mode tunnel --tunnel-src 10.1.2.3/8 ! --tunnel-dst 192.168.0.1
    //  --next ! --reqid 7 --proto ah ! --mode transport --next --proto 108
    //  --next --spi 1`
    const V4_FULL: &str = "--dir out --pol ipsec --strict --reqid 5 ! --spi 0x1234 --proto esp \
        --mode tunnel --tunnel-src 10.1.2.3/8 ! --tunnel-dst 192.168.0.1 --next ! --reqid 7 \
        --proto ah ! --mode transport --next --proto 108 --next --spi 1";
    fn v4_full() -> Vec<u8> {
        sparse(&[
            (0, "0a010203"),                          // e0 saddr 10.1.2.3 (not masked)
            (16, "ff000000"),                         // e0 smask /8: first 4 bytes only
            (32, "c0a80001"),                         // e0 daddr 192.168.0.1
            (48, "ffffffffffffffffffffffffffffffff"), // e0 dmask: no mask, all 16 bytes
            (64, "34120000"),                         // e0 spi 0x1234, host order
            (68, "05000000"),                         // e0 reqid 5
            (72, "32 01 3f 12"), // e0 proto 50, mode tunnel, match all six, invert spi|daddr
            (76 + 68, "07000000"), // e1 reqid 7
            (76 + 72, "33 00 2c 28"), // e1 proto 51, transport; match reqid|proto|mode; invert reqid|mode
            (152 + 72, "6c 00 04 00"), // e2 proto 108, match proto
            (228 + 64, "01000000"),   // e3 spi 1
            (228 + 74, "10 00"),      // e3 match spi
            (304, "0a00 0400"),       // flags OUT | STRICT, len 4
        ])
    }

    // `--dir out --mode tunnel --tunnel-src 1.2.3.4/255.255.0.255
    //  --tunnel-dst 5.6.7.8/0`: a mask that is not a prefix becomes all 0xff.
    fn v4_masks() -> Vec<u8> {
        sparse(&[
            (0, "01020304"),
            (16, "ffffffffffffffffffffffffffffffff"),
            (32, "05060708"),    // dmask /0: all zero
            (72, "00 01 0b 00"), // mode tunnel; match saddr|daddr|mode
            (304, "0200 0100"),  // flags OUT, len 1
        ])
    }

    // `--dir in --pol none --reqid 5`: the element is filled but len stays 0.
    fn v4_none_with_element() -> Vec<u8> {
        sparse(&[(68, "05000000"), (74, "20"), (304, "0500 0000")])
    }

    #[test]
    fn ipv4_parse_matches_kernel_bytes() {
        assert_eq!(parse(Family::V4, "--dir in --pol none").unwrap(), v4_none());
        assert_eq!(parse(Family::V4, V4_FULL).unwrap(), v4_full());
        assert_eq!(
            parse(
                Family::V4,
                "--dir out --mode tunnel --tunnel-src 1.2.3.4/255.255.0.255 --tunnel-dst 5.6.7.8/0"
            )
            .unwrap(),
            v4_masks()
        );
        assert_eq!(
            parse(Family::V4, "--dir in --pol none --reqid 5").unwrap(),
            v4_none_with_element()
        );
    }

    #[test]
    fn ipv4_save_matches_iptables_legacy_save() {
        assert_eq!(save(Family::V4, &v4_none()), " --dir in --pol none");
        assert_eq!(
            save(Family::V4, &v4_full()),
            " --dir out --pol ipsec --strict --reqid 5 ! --spi 0x1234 --proto esp --mode tunnel \
             ! --tunnel-dst 192.168.0.1 --tunnel-src 10.1.2.3/8 --next ! --reqid 7 --proto ah \
             ! --mode transport --next --proto ipcomp --next --spi 0x1"
        );
        assert_eq!(
            save(Family::V4, &v4_masks()),
            " --dir out --pol ipsec --mode tunnel --tunnel-dst 5.6.7.8/0 --tunnel-src 1.2.3.4"
        );
        assert_eq!(
            save(Family::V4, &v4_none_with_element()),
            " --dir in --pol none"
        );
    }

    // Kernel captures after ip6tables-legacy-restore:
    // `--dir out --pol ipsec --strict --reqid 5 ! --spi 0x1234 --proto esp
    //  --mode tunnel --tunnel-src 2001:db8::1/32 ! --tunnel-dst ::1 --next
    //  --proto ipcomp ! --mode transport --tunnel-dst fe80::/ffff:ffff::ff`
    const V6_FULL: &str = "--dir out --pol ipsec --strict --reqid 5 ! --spi 0x1234 --proto esp \
        --mode tunnel --tunnel-src 2001:db8::1/32 ! --tunnel-dst ::1 --next --proto ipcomp \
        ! --mode transport --tunnel-dst fe80::/ffff:ffff::ff";
    fn v6_full() -> Vec<u8> {
        sparse(&[
            (0, "20010db8000000000000000000000001"),       // e0 saddr
            (16, "ffffffff"),                              // e0 smask /32
            (32, "00000000000000000000000000000001"),      // e0 daddr ::1
            (48, "ffffffffffffffffffffffffffffffff"),      // e0 dmask: none given
            (64, "34120000 05000000"),                     // e0 spi (host order), reqid 5
            (72, "32 01 3f 12"),                           // e0 proto esp, tunnel, match, invert
            (76 + 32, "fe80"),                             // e1 daddr fe80::
            (76 + 48, "ffffffffffffffffffffffffffffffff"), // e1 dmask: not a prefix
            (76 + 72, "6c 00 0e 08"), // e1 proto ipcomp, transport; match daddr|proto|mode; invert mode
            (304, "0a00 0200"),       // flags OUT | STRICT, len 2
        ])
    }

    // `--dir in --mode tunnel --tunnel-src ::2/128 --tunnel-dst
    //  ::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe`
    fn v6_prefixes() -> Vec<u8> {
        sparse(&[
            (15, "02"),
            (16, "ffffffffffffffffffffffffffffffff"),
            (47, "01"),
            (48, "fffffffffffffffffffffffffffffffe"),
            (72, "00 01 0b 00"),
            (304, "0100 0100"),
        ])
    }

    #[test]
    fn ipv6_parse_matches_kernel_bytes() {
        assert_eq!(parse(Family::V6, V6_FULL).unwrap(), v6_full());
        assert_eq!(
            parse(
                Family::V6,
                "--dir in --mode tunnel --tunnel-src ::2/128 \
                 --tunnel-dst ::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"
            )
            .unwrap(),
            v6_prefixes()
        );
    }

    #[test]
    fn ipv6_save_matches_ip6tables_legacy_save() {
        assert_eq!(
            save(Family::V6, &v6_full()),
            " --dir out --pol ipsec --strict --reqid 5 ! --spi 0x1234 --proto esp --mode tunnel \
             ! --tunnel-dst ::1 --tunnel-src 2001:db8::1/32 --next --proto ipcomp \
             ! --mode transport --tunnel-dst fe80::"
        );
        assert_eq!(
            save(Family::V6, &v6_prefixes()),
            " --dir in --pol ipsec --mode tunnel --tunnel-dst ::1/127 --tunnel-src ::2"
        );
    }

    #[test]
    fn masks_that_are_not_prefixes_print_as_addresses() {
        let mut d = v4_masks();
        d[16..32].copy_from_slice(&hex("ff00ff00 000000000000000000000000"));
        assert!(save(Family::V4, &d).ends_with("--tunnel-src 1.2.3.4/255.0.255.0"));
    }

    #[test]
    fn bad_values_are_refused() {
        for (words, msg) in [
            ("--pol ipsec", "neither --dir in nor --dir out specified"),
            ("--dir up", "policy_match: invalid dir \"up\""),
            ("--dir in --pol maybe", "invalid policy \"maybe\""),
            ("--dir in --dir out", "can only be used once"),
            ("--dir in --mode bus", "invalid mode \"bus\""),
            ("--dir in --proto tcp", "protocol must be ah/esp/ipcomp"),
            ("--dir in --proto nosuch", "unknown protocol \"nosuch\" specified"),
            ("--dir in --reqid 1 --reqid 2", "double --reqid option"),
            ("--dir in --spi 1 --spi 2", "double --spi option"),
            ("--dir in --proto ah --proto esp", "double --proto option"),
            ("--dir in --mode tunnel --mode tunnel", "double --mode option"),
            ("--dir in --reqid -1", "bad value for option \"--reqid\""),
            ("--dir in --spi 4294967296", "bad value for option \"--spi\""),
            ("--dir in --pol none --strict", "policy none but --strict given"),
            ("--dir in --pol none --strict --reqid 1 --next", "policy none but"),
            ("--dir in --reqid 1 --next --reqid 2", "also requires \"--strict\""),
            ("--dir in --strict", "empty policy element 0"),
            ("--dir in --strict --reqid 1 --next", "empty policy element 1"),
            (
                "--dir in --strict --reqid 1 --next --reqid 2 --next --reqid 3 --next --reqid 4 --next",
                "maximum policy depth reached",
            ),
            ("--dir in --tunnel-src 1.2.3.4", "only valid in tunnel mode"),
            ("--dir in ! --mode tunnel --tunnel-dst 1.2.3.4", "only valid in tunnel mode"),
            ("--dir in --mode tunnel --tunnel-src 1.2.3.4/x", "neither a valid network mask"),
            ("--dir in --mode tunnel --tunnel-src no.such.host.invalid", "not found"),
        ] {
            let e = parse(Family::V4, words).unwrap_err();
            assert!(e.contains(msg), "{words}: {e}");
        }
        // As in iptables, `/33` reads as the address 0.0.0.33, a mask that is
        // not a prefix: all ones.
        assert_eq!(
            parse(Family::V4, "--dir in --mode tunnel --tunnel-src 1.2.3.4/33").unwrap()[16..32],
            [0xff; 16]
        );
        assert!(parse(Family::V4, "--dir in ! --strict")
            .unwrap_err()
            .contains("cannot be inverted"));
        assert!(
            parse(Family::V6, "--dir in --mode tunnel --tunnel-src ::1/129")
                .unwrap_err()
                .contains("(0-128)")
        );
        assert!(parse(Family::V6, "--dir in --mode tunnel --tunnel-src 1.2.3.4").is_err());
        let mut out = String::new();
        assert!(save_policy(Family::V4, &[0; 100], &mut out).is_err());
        let mut bad_len = v4_none();
        bad_len[306] = 5;
        assert!(save_policy(Family::V4, &bad_len, &mut out).is_err());
    }
}
