//! `-j DNAT`, `-j SNAT`, `-j MASQUERADE`, `-j REDIRECT` (libxt_NAT, IPv4
//! and IPv6).
//!
//! All four carry one NAT range. iptables 1.8.9 ships these revisions:
//!
//! | target     | IPv4 revisions | IPv6 revisions | payload                      |
//! |------------|----------------|----------------|------------------------------|
//! | DNAT       | 2, 0           | 2, 1           | `nf_nat_range2` / 0: compat, 1: `nf_nat_range` |
//! | SNAT       | 0              | 1              | compat / `nf_nat_range`      |
//! | MASQUERADE | 0              | 0              | compat / `nf_nat_range`      |
//! | REDIRECT   | 0              | 0              | compat / `nf_nat_range`      |
//!
//! ("compat" is `nf_nat_ipv4_multi_range_compat`, IPv4 only; every IPv6
//! revision below 2 is `nf_nat_range`.) Options are parsed into a
//! [`NatRange`] as libxt_NAT's `parse_to` / `parse_ports` do, then written
//! in the chosen revision's layout.

use std::mem::{offset_of, size_of};
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{
    no_invert, once, opt, strtoul_prefix, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload,
    Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    nf_conntrack_man_proto, nf_nat_ipv4_multi_range_compat, nf_nat_ipv4_range, nf_nat_range,
    nf_nat_range2, IPPROTO_DCCP, IPPROTO_ICMP, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP,
    NF_NAT_RANGE_MAP_IPS, NF_NAT_RANGE_PERSISTENT, NF_NAT_RANGE_PROTO_OFFSET,
    NF_NAT_RANGE_PROTO_RANDOM, NF_NAT_RANGE_PROTO_RANDOM_FULLY, NF_NAT_RANGE_PROTO_SPECIFIED,
};

pub(super) static CODECS: &[&dyn Codec] = &[
    &Nat(Which::Dnat, Family::V4),
    &Nat(Which::Snat, Family::V4),
    &Nat(Which::Masquerade, Family::V4),
    &Nat(Which::Redirect, Family::V4),
    &Nat(Which::Dnat, Family::V6),
    &Nat(Which::Snat, Family::V6),
    &Nat(Which::Masquerade, Family::V6),
    &Nat(Which::Redirect, Family::V6),
];

/// Byte offsets in the two layouts.
mod field {
    use super::*;

    /// The port inside `union nf_conntrack_man_proto` (`all`, which
    /// overlays `tcp.port`, `udp.port`, `sctp.port`, `dccp.port`).
    const PORT: usize = offset_of!(nf_conntrack_man_proto, all);

    /// `nf_nat_ipv4_multi_range_compat` (revision 0).
    pub mod v0 {
        use super::*;
        pub const RANGESIZE: usize = offset_of!(nf_nat_ipv4_multi_range_compat, rangesize);
        const RANGE: usize = offset_of!(nf_nat_ipv4_multi_range_compat, range);
        pub const FLAGS: usize = RANGE + offset_of!(nf_nat_ipv4_range, flags);
        pub const MIN_IP: usize = RANGE + offset_of!(nf_nat_ipv4_range, min_ip);
        pub const MAX_IP: usize = RANGE + offset_of!(nf_nat_ipv4_range, max_ip);
        pub const MIN_PORT: usize = RANGE + offset_of!(nf_nat_ipv4_range, min) + PORT;
        pub const MAX_PORT: usize = RANGE + offset_of!(nf_nat_ipv4_range, max) + PORT;
    }

    /// `nf_nat_range` (IPv6 revisions 0 and 1).
    pub mod v1 {
        use super::*;
        pub const FLAGS: usize = offset_of!(nf_nat_range, flags);
        pub const MIN_ADDR: usize = offset_of!(nf_nat_range, min_addr);
        pub const MAX_ADDR: usize = offset_of!(nf_nat_range, max_addr);
        pub const MIN_PORT: usize = offset_of!(nf_nat_range, min_proto) + PORT;
        pub const MAX_PORT: usize = offset_of!(nf_nat_range, max_proto) + PORT;
    }

    /// `nf_nat_range2` (DNAT revision 2): `nf_nat_range`'s fields at the
    /// same offsets, then the base port.
    pub mod v2 {
        use super::*;
        pub const BASE_PORT: usize = offset_of!(nf_nat_range2, base_proto) + PORT;
        const _: () = {
            assert!(offset_of!(nf_nat_range2, flags) == v1::FLAGS);
            assert!(offset_of!(nf_nat_range2, min_addr) == v1::MIN_ADDR);
            assert!(offset_of!(nf_nat_range2, max_addr) == v1::MAX_ADDR);
            assert!(offset_of!(nf_nat_range2, min_proto) + PORT == v1::MIN_PORT);
            assert!(offset_of!(nf_nat_range2, max_proto) + PORT == v1::MAX_PORT);
        };
    }
}

/// Size of `union nf_inet_addr`.
const ADDR_LEN: usize = 16;

/// One NAT range, as libxt_NAT holds it (`struct nf_nat_range2`), with
/// ports in host order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct NatRange {
    /// `NF_NAT_RANGE_*` flags.
    pub flags: u32,
    /// `union nf_inet_addr` bytes; IPv4 uses the first four.
    pub min_addr: [u8; ADDR_LEN],
    /// Upper address.
    pub max_addr: [u8; ADDR_LEN],
    /// Lowest port.
    pub min_port: u16,
    /// Highest port.
    pub max_port: u16,
    /// `/BASE` of a shifted port map (`NF_NAT_RANGE_PROTO_OFFSET`).
    pub base_port: u16,
}

fn set_v4(addr: &mut [u8; ADDR_LEN], ip: Ipv4Addr) {
    addr[..4].copy_from_slice(&ip.octets());
}

fn v4_of(addr: &[u8; ADDR_LEN]) -> Ipv4Addr {
    Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])
}

/// xtables_service_to_port(name, NULL): getservbyname with any protocol,
/// which knows names only (`"80"` is no service name).
fn service_port(name: &str) -> Option<u16> {
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    crate::netdb::port_by_name(name).ok()
}

/// xtables_strtoui with an end pointer: the number at the start of `s`
/// within `min..=max`, and the rest.
fn leading_uint(s: &str, min: u64, max: u64) -> Option<(u64, &str)> {
    let (v, rest) = strtoul_prefix(s)?;
    (v >= min && v <= max).then_some((v, rest))
}

/// inet_pton(AF_INET): exactly four decimal parts, no leading zeros;
/// inet_pton(AF_INET6). (Rust's parsers have the same rules as glibc's.)
/// The address comes back as `union nf_inet_addr` bytes.
fn parse_addr(s: &str, family: Family) -> ExtResult<[u8; ADDR_LEN]> {
    let bad = || format!("Bad IP address \"{s}\"");
    let mut a = [0u8; ADDR_LEN];
    match family {
        Family::V4 => set_v4(&mut a, s.parse::<Ipv4Addr>().map_err(|_| bad())?),
        Family::V6 => a = s.parse::<Ipv6Addr>().map_err(|_| bad())?.octets(),
    }
    Ok(a)
}

/// inet_ntop of a `union nf_inet_addr` for the family (glibc's IPv6 forms).
pub(crate) fn addr_text(a: &[u8; ADDR_LEN], family: Family) -> String {
    match family {
        Family::V4 => v4_of(a).to_string(),
        Family::V6 => super::conntrack::inet_ntop6(a),
    }
}

impl NatRange {
    /// libxt_NAT's `parse_ports`: `PORT`, `PORT-PORT` or `PORT-PORT/BASE`.
    pub(crate) fn parse_ports(&mut self, arg: &str, portok: bool) -> ExtResult<()> {
        if !portok {
            return Err("Need TCP, UDP, SCTP or DCCP with port specification".into());
        }
        self.flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
        let (port, end) = match leading_uint(arg, 0, 0xffff) {
            Some((p, end)) => (p as u16, end),
            None => (
                service_port(arg).ok_or_else(|| format!("Port `{arg}' not valid"))?,
                "",
            ),
        };
        let arg = match end.chars().next() {
            None => {
                self.min_port = port;
                self.max_port = port;
                return Ok(());
            }
            Some('-') => &end[1..],
            Some(':') => return Err("Invalid port:port syntax - use dash".into()),
            Some(_) => return Err(format!("Garbage after port value: `{end}'")),
        };
        // A range: no service names here.
        let (maxport, end) =
            leading_uint(arg, 0, 0xffff).ok_or_else(|| format!("Port `{arg}' not valid"))?;
        let maxport = maxport as u16;
        if maxport < port {
            return Err(format!("Port range `{arg}' funky"));
        }
        self.min_port = port;
        self.max_port = maxport;
        let arg = match end.chars().next() {
            None => return Ok(()),
            Some('/') => &end[1..],
            Some(_) => return Err(format!("Garbage after port range: `{end}'")),
        };
        // iptables ignores anything after the base's digits.
        let base = match leading_uint(arg, 1, 0xffff) {
            Some((b, _)) => b as u16,
            None => service_port(arg).ok_or_else(|| format!("Port `{arg}' not valid"))?,
        };
        self.flags |= NF_NAT_RANGE_PROTO_OFFSET;
        self.base_port = base;
        Ok(())
    }

    /// libxt_NAT's `parse_to`: `[ADDR[-ADDR]][:PORTSPEC]`, and for IPv6
    /// also `[ADDR[-ADDR]][:PORTSPEC]` with the addresses in brackets.
    ///
    /// As in iptables, the brackets enclose the whole address range
    /// (`[a-b]:p`); `[a]-[b]:p` is refused (its second colon is read as the
    /// port part), and anything between `]` and the next `:` is ignored.
    pub(crate) fn parse_to(&mut self, arg: &str, portok: bool, family: Family) -> ExtResult<()> {
        let (addr, colon) = match arg.find('[') {
            Some(open) => {
                let start = open + 1;
                let close = match (arg[start..].find(']'), family) {
                    (Some(c), Family::V6) => start + c,
                    _ => return Err("Invalid address format".into()),
                };
                let colon = arg[close + 1..].find(':').map(|c| close + 1 + c);
                (&arg[start..close], colon)
            }
            None => {
                // One colon is the port part; more mean an IPv6 address.
                let colon = arg.find(':').filter(|&c| !arg[c + 1..].contains(':'));
                (colon.map_or(arg, |c| &arg[..c]), colon)
            }
        };
        if let Some(c) = colon {
            self.parse_ports(&arg[c + 1..], portok)?;
            // iptables skips the address when the colon is the first byte,
            // or the third (meant for "[]:PORT").
            if c == 0 || c == 2 {
                return Ok(());
            }
        }
        self.flags |= NF_NAT_RANGE_MAP_IPS;
        let (lo, hi) = match addr.split_once('-') {
            Some((lo, hi)) => (parse_addr(lo, family)?, parse_addr(hi, family)?),
            None => {
                let ip = parse_addr(addr, family)?;
                (ip, ip)
            }
        };
        self.min_addr = lo;
        self.max_addr = hi;
        Ok(())
    }

    /// Writes `nf_nat_ipv4_multi_range_compat` with one range (revision 0).
    /// The base port has no place in this layout and is dropped, as
    /// iptables drops it.
    fn encode_v0(&self) -> Vec<u8> {
        use field::v0::*;
        let mut p = Payload::of::<nf_nat_ipv4_multi_range_compat>();
        p.u32(RANGESIZE, 1)
            .u32(FLAGS, self.flags)
            .bytes(MIN_IP, &self.min_addr[..4])
            .bytes(MAX_IP, &self.max_addr[..4])
            .be16(MIN_PORT, self.min_port)
            .be16(MAX_PORT, self.max_port);
        p.finish()
    }

    /// Reads revision 0 (`RANGE2_INIT_FROM_IPV4_MRC`: first range only).
    fn decode_v0(data: &[u8]) -> ExtResult<NatRange> {
        use field::v0::*;
        let r = Reader::new(data, size_of::<nf_nat_ipv4_multi_range_compat>())?;
        let mut n = NatRange {
            flags: r.u32(FLAGS)?,
            ..NatRange::default()
        };
        n.min_addr[..4].copy_from_slice(r.bytes(MIN_IP, 4)?);
        n.max_addr[..4].copy_from_slice(r.bytes(MAX_IP, 4)?);
        n.min_port = r.be16(MIN_PORT)?;
        n.max_port = r.be16(MAX_PORT)?;
        Ok(n)
    }

    /// Writes `nf_nat_range` (IPv6 revisions 0 and 1; the base port has no
    /// place in it and is dropped, as iptables drops it) or, with `base`,
    /// `nf_nat_range2` (DNAT revision 2), which is `nf_nat_range` plus the
    /// base port at its end.
    fn encode_range(&self, base: bool) -> Vec<u8> {
        use field::v1::*;
        let mut p = if base {
            Payload::of::<nf_nat_range2>()
        } else {
            Payload::of::<nf_nat_range>()
        };
        p.u32(FLAGS, self.flags)
            .bytes(MIN_ADDR, &self.min_addr)
            .bytes(MAX_ADDR, &self.max_addr)
            .be16(MIN_PORT, self.min_port)
            .be16(MAX_PORT, self.max_port);
        if base {
            p.be16(field::v2::BASE_PORT, self.base_port);
        }
        p.finish()
    }

    /// Reads `nf_nat_range` (`RANGE2_INIT_FROM_RANGE`: no base port) or,
    /// with `base`, `nf_nat_range2`.
    fn decode_range(data: &[u8], base: bool) -> ExtResult<NatRange> {
        use field::v1::*;
        let size = if base {
            size_of::<nf_nat_range2>()
        } else {
            size_of::<nf_nat_range>()
        };
        let r = Reader::new(data, size)?;
        let mut n = NatRange {
            flags: r.u32(FLAGS)?,
            ..NatRange::default()
        };
        n.min_addr.copy_from_slice(r.bytes(MIN_ADDR, ADDR_LEN)?);
        n.max_addr.copy_from_slice(r.bytes(MAX_ADDR, ADDR_LEN)?);
        n.min_port = r.be16(MIN_PORT)?;
        n.max_port = r.be16(MAX_PORT)?;
        if base {
            n.base_port = r.be16(field::v2::BASE_PORT)?;
        }
        Ok(n)
    }

    /// libxt_NAT's `sprint_range`: IPv6 addresses go in brackets when a
    /// port part follows.
    fn range_text(&self, family: Family) -> String {
        let brackets = family == Family::V6 && self.flags & NF_NAT_RANGE_PROTO_SPECIFIED != 0;
        let mut s = String::new();
        if self.flags & NF_NAT_RANGE_MAP_IPS != 0 {
            if brackets {
                s.push('[');
            }
            s.push_str(&addr_text(&self.min_addr, family));
            if self.min_addr != self.max_addr {
                s.push('-');
                s.push_str(&addr_text(&self.max_addr, family));
            }
            if brackets {
                s.push(']');
            }
        }
        if self.flags & NF_NAT_RANGE_PROTO_SPECIFIED != 0 {
            s.push_str(&format!(":{}", self.min_port));
            if self.max_port != self.min_port {
                s.push_str(&format!("-{}", self.max_port));
            }
            if self.flags & NF_NAT_RANGE_PROTO_OFFSET != 0 {
                s.push_str(&format!("/{}", self.base_port));
            }
        }
        s
    }

    /// libxt_NAT's `__NAT_print` in save mode.
    fn save(&self, out: &mut String, family: Family, rangeopt: &str, skip_colon: bool) {
        let text = self.range_text(family);
        if !text.is_empty() {
            let text = if skip_colon {
                text.strip_prefix(':').unwrap_or(&text)
            } else {
                &text
            };
            out.push_str(&format!(" --{rangeopt} {text}"));
        }
        for (bit, name) in [
            (NF_NAT_RANGE_PROTO_RANDOM, "random"),
            (NF_NAT_RANGE_PROTO_RANDOM_FULLY, "random-fully"),
            (NF_NAT_RANGE_PERSISTENT, "persistent"),
        ] {
            if self.flags & bit != 0 {
                out.push_str(&format!(" --{name}"));
            }
        }
    }
}

/// Protocols for which libxt_NAT accepts a port part.
fn port_ok(ctx: &RuleContext) -> bool {
    [
        IPPROTO_TCP,
        IPPROTO_UDP,
        IPPROTO_SCTP,
        IPPROTO_DCCP,
        IPPROTO_ICMP,
    ]
    .iter()
    .any(|&p| u32::from(ctx.ip.proto) == p)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Dnat,
    Snat,
    Masquerade,
    Redirect,
}

/// One of the four NAT targets, for one family.
struct Nat(Which, Family);

/// The payload layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `nf_nat_ipv4_multi_range_compat`
    Compat,
    /// `nf_nat_range`
    Range,
    /// `nf_nat_range2`
    Range2,
}

impl Nat {
    /// The option holding the range, and whether save drops its leading colon.
    fn range_option(&self) -> (&'static str, bool) {
        match self.0 {
            Which::Dnat => ("to-destination", false),
            Which::Snat => ("to-source", false),
            Which::Masquerade | Which::Redirect => ("to-ports", true),
        }
    }

    /// The layout of a revision, or `None` for one iptables 1.8.9 lacks.
    fn layout(&self, rev: u8) -> Option<Layout> {
        match (self.1, self.0, rev) {
            (_, Which::Dnat, 2) => Some(Layout::Range2),
            (Family::V4, _, 0) => Some(Layout::Compat),
            (Family::V6, Which::Dnat | Which::Snat, 1) => Some(Layout::Range),
            (Family::V6, Which::Masquerade | Which::Redirect, 0) => Some(Layout::Range),
            _ => None,
        }
    }
}

impl Codec for Nat {
    fn name(&self) -> &'static str {
        match self.0 {
            Which::Dnat => "DNAT",
            Which::Snat => "SNAT",
            Which::Masquerade => "MASQUERADE",
            Which::Redirect => "REDIRECT",
        }
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn families(&self) -> &'static [Family] {
        match self.1 {
            Family::V4 => &[Family::V4],
            Family::V6 => &[Family::V6],
        }
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        match (self.1, self.0) {
            (Family::V4, Which::Dnat) => &[2, 0],
            (Family::V6, Which::Dnat) => &[2, 1],
            (Family::V6, Which::Snat) => &[1],
            _ => &[0],
        }
    }
    fn options(&self) -> &'static [OptSpec] {
        const DNAT: &[OptSpec] = &[
            opt("to-destination", Arg::One),
            opt("random", Arg::None),
            opt("persistent", Arg::None),
        ];
        const SNAT: &[OptSpec] = &[
            opt("to-source", Arg::One),
            opt("random", Arg::None),
            opt("random-fully", Arg::None),
            opt("persistent", Arg::None),
        ];
        const MASQUERADE: &[OptSpec] = &[
            opt("to-ports", Arg::One),
            opt("random", Arg::None),
            opt("random-fully", Arg::None),
        ];
        const REDIRECT: &[OptSpec] = &[opt("to-ports", Arg::One), opt("random", Arg::None)];
        match self.0 {
            Which::Dnat => DNAT,
            Which::Snat => SNAT,
            Which::Masquerade => MASQUERADE,
            Which::Redirect => REDIRECT,
        }
    }

    fn parse(&self, rev: u8, opts: &[OptValue], ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let name = self.name();
        let portok = port_ok(ctx);
        let mut range = NatRange::default();
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, name)?;
            no_invert(o, name)?;
            match o.name {
                "to-destination" | "to-source" => range.parse_to(o.arg(), portok, self.1)?,
                "to-ports" => range.parse_ports(o.arg(), portok)?,
                "random" => range.flags |= NF_NAT_RANGE_PROTO_RANDOM,
                "random-fully" => range.flags |= NF_NAT_RANGE_PROTO_RANDOM_FULLY,
                "persistent" => range.flags |= NF_NAT_RANGE_PERSISTENT,
                _ => return Err(super::unknown_option(name, o)),
            }
        }
        let (rangeopt, _) = self.range_option();
        if matches!(self.0, Which::Dnat | Which::Snat) && !seen.contains(&rangeopt) {
            return Err(format!("{name}: option \"--{rangeopt}\" must be specified"));
        }
        let unsupported = || format!("{name}: revision {rev} is not supported");
        let layout = self.layout(rev).ok_or_else(unsupported)?;
        // DNAT_fcheck / DNAT_fcheck6 (DNAT and REDIRECT below revision 2):
        // these layouts have no base port. SNAT and MASQUERADE have no such
        // check; their base port is dropped.
        if layout != Layout::Range2
            && matches!(self.0, Which::Dnat | Which::Redirect)
            && range.flags & NF_NAT_RANGE_PROTO_OFFSET != 0
        {
            return Err("Shifted portmap ranges not supported with this kernel".into());
        }
        Ok(match layout {
            Layout::Compat => range.encode_v0(),
            Layout::Range => range.encode_range(false),
            Layout::Range2 => range.encode_range(true),
        })
    }

    fn save(&self, rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let range = match self.layout(rev) {
            Some(Layout::Compat) => NatRange::decode_v0(data)?,
            Some(Layout::Range) => NatRange::decode_range(data, false)?,
            Some(Layout::Range2) => NatRange::decode_range(data, true)?,
            None => return Err(format!("{}: revision {rev} is not supported", self.name())),
        };
        let (rangeopt, skip_colon) = self.range_option();
        range.save(out, self.1, rangeopt, skip_colon);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Fixtures are target payloads (after the 32-byte `xt_entry_target`
    //! header) dumped from the kernel after iptables-legacy-restore 1.8.9
    //! loaded the rule shown, in the nat table.

    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;
    use crate::rules::IpMatch;

    fn ip(proto: u32) -> IpMatch {
        IpMatch {
            proto: proto as u16,
            ..IpMatch::any(Family::V4)
        }
    }

    fn o(name: &'static str, arg: &str) -> OptValue<'static> {
        OptValue {
            name,
            invert: false,
            args: if arg.is_empty() {
                Default::default()
            } else {
                vec![arg.to_string()].into()
            },
        }
    }

    fn codec(w: Which) -> Nat {
        Nat(w, Family::V4)
    }

    /// Parses as the registry would: payload padded to XT_ALIGN.
    fn parse(w: Which, rev: u8, proto: u32, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = ip(proto);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "nat",
        };
        let mut v = codec(w).parse(rev, opts, &ctx)?;
        v.resize(xt_align(v.len()), 0);
        Ok(v)
    }

    fn save(w: Which, rev: u8, data: &[u8]) -> String {
        let ip = ip(IPPROTO_TCP);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "nat",
        };
        let mut out = String::new();
        codec(w).save(rev, data, &ctx, &mut out).expect("save");
        out
    }

    /// `-p tcp -j DNAT --to-destination 10.0.0.1-10.0.0.3:1024-2000/80 --random --persistent`
    /// (revision 2, `nf_nat_range2`).
    fn dnat_v2_full() -> Vec<u8> {
        hex(concat!(
            "2f000000", // flags: MAP_IPS|PROTO_SPECIFIED|RANDOM|PERSISTENT|OFFSET
            "0a000001000000000000000000000000", // min_addr 10.0.0.1 (union nf_inet_addr)
            "0a000003000000000000000000000000", // max_addr 10.0.0.3
            "0400",     // min_proto 1024 (network order)
            "07d0",     // max_proto 2000
            "0050",     // base_proto 80
            "0000",     // struct padding, zero
            "00000000", // XT_ALIGN padding, zero
        ))
    }

    #[test]
    fn dnat_v2_range_ports_base_flags() {
        let opts = [
            o("to-destination", "10.0.0.1-10.0.0.3:1024-2000/http"),
            o("random", ""),
            o("persistent", ""),
        ];
        assert_eq!(
            parse(Which::Dnat, 2, IPPROTO_TCP, &opts).unwrap(),
            dnat_v2_full()
        );
        assert_eq!(
            save(Which::Dnat, 2, &dnat_v2_full()),
            " --to-destination 10.0.0.1-10.0.0.3:1024-2000/80 --random --persistent"
        );
    }

    #[test]
    fn dnat_v2_single_address() {
        // `-j DNAT --to-destination 10.0.0.4`: flags MAP_IPS, min = max.
        let fixture = hex(concat!(
            "01000000",                         // flags: MAP_IPS
            "0a000004000000000000000000000000", // min_addr 10.0.0.4
            "0a000004000000000000000000000000", // max_addr 10.0.0.4
            "0000",                             // min_proto
            "0000",                             // max_proto
            "0000",                             // base_proto
            "0000",                             // struct padding
            "00000000",                         // XT_ALIGN padding
        ));
        assert_eq!(
            parse(Which::Dnat, 2, 0, &[o("to-destination", "10.0.0.4")]).unwrap(),
            fixture
        );
        assert_eq!(save(Which::Dnat, 2, &fixture), " --to-destination 10.0.0.4");
    }

    #[test]
    fn dnat_v2_colon_at_third_byte_drops_address() {
        // `-p tcp -j DNAT --to-destination 12:80`: iptables takes a colon at
        // offset 2 for "[]:PORT" and keeps only the port (saved as ":80").
        let fixture = hex(concat!(
            "02000000",                         // flags: PROTO_SPECIFIED
            "00000000000000000000000000000000", // min_addr unset
            "00000000000000000000000000000000", // max_addr unset
            "0050",                             // min_proto 80
            "0050",                             // max_proto 80
            "0000",                             // base_proto
            "0000",                             // struct padding
            "00000000",                         // XT_ALIGN padding
        ));
        assert_eq!(
            parse(Which::Dnat, 2, IPPROTO_TCP, &[o("to-destination", "12:80")]).unwrap(),
            fixture
        );
        assert_eq!(save(Which::Dnat, 2, &fixture), " --to-destination :80");
    }

    /// `-p tcp -j SNAT --to-source 10.0.0.1-10.0.0.3:1024-2000 --random --persistent`
    /// (`nf_nat_ipv4_multi_range_compat`, the layout of every revision 0).
    fn compat_range() -> Vec<u8> {
        hex(concat!(
            "01000000", // rangesize 1
            "0f000000", // range[0].flags: MAP_IPS|PROTO_SPECIFIED|RANDOM|PERSISTENT
            "0a000001", // min_ip 10.0.0.1
            "0a000003", // max_ip 10.0.0.3
            "0400",     // min 1024 (network order)
            "07d0",     // max 2000
            "00000000", // XT_ALIGN padding, zero
        ))
    }

    #[test]
    fn snat_v0() {
        let opts = [
            o("to-source", "10.0.0.1-10.0.0.3:1024-2000"),
            o("random", ""),
            o("persistent", ""),
        ];
        assert_eq!(
            parse(Which::Snat, 0, IPPROTO_TCP, &opts).unwrap(),
            compat_range()
        );
        assert_eq!(
            save(Which::Snat, 0, &compat_range()),
            " --to-source 10.0.0.1-10.0.0.3:1024-2000 --random --persistent"
        );
    }

    #[test]
    fn dnat_v0() {
        // Revision 0 has the SNAT layout; the same range gives the same bytes.
        let opts = [
            o("to-destination", "10.0.0.1-10.0.0.3:1024-2000"),
            o("random", ""),
            o("persistent", ""),
        ];
        assert_eq!(
            parse(Which::Dnat, 0, IPPROTO_TCP, &opts).unwrap(),
            compat_range()
        );
        assert_eq!(
            save(Which::Dnat, 0, &compat_range()),
            " --to-destination 10.0.0.1-10.0.0.3:1024-2000 --random --persistent"
        );
    }

    #[test]
    fn snat_v0_all_flags() {
        // `-p tcp -j SNAT --to-source 192.0.2.1-192.0.2.10:1024-2048 --random --random-fully --persistent`
        let fixture = hex(concat!(
            "01000000", // rangesize 1
            "1f000000", // range[0].flags: MAP_IPS|PROTO_SPECIFIED|RANDOM|PERSISTENT|RANDOM_FULLY
            "c0000201", // min_ip 192.0.2.1
            "c000020a", // max_ip 192.0.2.10
            "0400",     // min port 1024 (network order)
            "0800",     // max port 2048
            "00000000", // XT_ALIGN padding, zero
        ));
        let opts = [
            o("to-source", "192.0.2.1-192.0.2.10:1024-2048"),
            o("random", ""),
            o("random-fully", ""),
            o("persistent", ""),
        ];
        assert_eq!(parse(Which::Snat, 0, IPPROTO_TCP, &opts).unwrap(), fixture);
        assert_eq!(
            save(Which::Snat, 0, &fixture),
            " --to-source 192.0.2.1-192.0.2.10:1024-2048 --random --random-fully --persistent"
        );
    }

    #[test]
    fn snat_v0_base_port_is_lost() {
        // `-p tcp -j SNAT --to-source 192.0.2.1:1000-2000/1500`: the OFFSET
        // flag (0x20) is kept, the base is not; iptables saves "/0".
        let fixture = hex(concat!(
            "01000000", // rangesize 1
            "23000000", // range[0].flags: MAP_IPS|PROTO_SPECIFIED|OFFSET
            "c0000201", // min_ip 192.0.2.1
            "c0000201", // max_ip 192.0.2.1
            "03e8",     // min port 1000 (network order)
            "07d0",     // max port 2000
            "00000000", // XT_ALIGN padding, zero
        ));
        assert_eq!(
            parse(
                Which::Snat,
                0,
                IPPROTO_TCP,
                &[o("to-source", "192.0.2.1:1000-2000/1500")]
            )
            .unwrap(),
            fixture
        );
        assert_eq!(
            save(Which::Snat, 0, &fixture),
            " --to-source 192.0.2.1:1000-2000/0"
        );
    }

    #[test]
    fn masquerade() {
        // `-p tcp -j MASQUERADE --to-ports 1000-2000/1500` (saved with "/0").
        let fixture = hex(concat!(
            "01000000", // rangesize 1
            "22000000", // range[0].flags: PROTO_SPECIFIED|OFFSET
            "00000000", // min_ip unset
            "00000000", // max_ip unset
            "03e8",     // min port 1000 (network order)
            "07d0",     // max port 2000
            "00000000", // XT_ALIGN padding, zero
        ));
        assert_eq!(
            parse(
                Which::Masquerade,
                0,
                IPPROTO_TCP,
                &[o("to-ports", "1000-2000/1500")]
            )
            .unwrap(),
            fixture
        );
        assert_eq!(
            save(Which::Masquerade, 0, &fixture),
            " --to-ports 1000-2000/0"
        );
        // `-j MASQUERADE --random --random-fully`: flags 0x14, no range.
        let fixture = hex(concat!(
            "01000000", // rangesize 1
            "14000000", // range[0].flags: RANDOM|RANDOM_FULLY
            "00000000", // min_ip unset
            "00000000", // max_ip unset
            "0000",     // min port unset
            "0000",     // max port unset
            "00000000", // XT_ALIGN padding, zero
        ));
        assert_eq!(
            parse(
                Which::Masquerade,
                0,
                0,
                &[o("random", ""), o("random-fully", "")]
            )
            .unwrap(),
            fixture
        );
        assert_eq!(
            save(Which::Masquerade, 0, &fixture),
            " --random --random-fully"
        );
    }

    #[test]
    fn redirect() {
        // `-p udp -j REDIRECT --to-ports 8080 --random`: flags 0x06.
        let fixture = hex(concat!(
            "01000000", // rangesize 1
            "06000000", // range[0].flags: PROTO_SPECIFIED|RANDOM
            "00000000", // min_ip unset
            "00000000", // max_ip unset
            "1f90",     // min port 8080 (network order)
            "1f90",     // max port 8080
            "00000000", // XT_ALIGN padding, zero
        ));
        assert_eq!(
            parse(
                Which::Redirect,
                0,
                IPPROTO_UDP,
                &[o("to-ports", "8080"), o("random", "")]
            )
            .unwrap(),
            fixture
        );
        assert_eq!(
            save(Which::Redirect, 0, &fixture),
            " --to-ports 8080 --random"
        );
        // `-p tcp -j REDIRECT`: only rangesize.
        let fixture = hex(concat!(
            "01000000", // rangesize 1
            "00000000", // range[0].flags: none
            "00000000", // min_ip unset
            "00000000", // max_ip unset
            "0000",     // min port unset
            "0000",     // max port unset
            "00000000", // XT_ALIGN padding, zero
        ));
        assert_eq!(
            parse(Which::Redirect, 0, IPPROTO_TCP, &[]).unwrap(),
            fixture
        );
        assert_eq!(save(Which::Redirect, 0, &fixture), "");
    }

    #[test]
    fn refuses_bad_values() {
        let err = |w, rev, proto, opts: &[OptValue]| parse(w, rev, proto, opts).unwrap_err();
        let tcp = IPPROTO_TCP;
        assert!(
            err(Which::Dnat, 2, 0, &[o("to-destination", "1.2.3.4:80")]).contains("Need TCP, UDP")
        );
        assert!(err(Which::Redirect, 0, 0, &[o("to-ports", "80")]).contains("Need TCP, UDP"));
        assert!(
            err(Which::Dnat, 2, tcp, &[o("to-destination", "1.2.3.4:80:90")])
                .contains("Bad IP address")
        );
        assert!(err(Which::Redirect, 0, tcp, &[o("to-ports", "80:90")]).contains("use dash"));
        assert!(
            err(Which::Dnat, 2, tcp, &[o("to-destination", "1.2.3.4:90-80")]).contains("funky")
        );
        assert!(
            err(Which::Dnat, 2, tcp, &[o("to-destination", "1.2.3.4:80x")])
                .contains("Garbage after port value")
        );
        assert!(err(
            Which::Dnat,
            2,
            tcp,
            &[o("to-destination", "1.2.3.4:80-90x")]
        )
        .contains("Garbage after port range"));
        assert!(
            err(Which::Dnat, 2, tcp, &[o("to-destination", "1.2.3.4:70000")])
                .contains("Port `70000' not valid")
        );
        assert!(err(
            Which::Dnat,
            2,
            tcp,
            &[o("to-destination", "1.2.3.4:80-http")]
        )
        .contains("not valid"));
        assert!(err(
            Which::Dnat,
            2,
            tcp,
            &[o("to-destination", "1.2.3.4:80-90/0")]
        )
        .contains("not valid"));
        assert!(err(Which::Dnat, 2, tcp, &[o("to-destination", "1.2.3.4:")]).contains("not valid"));
        assert!(
            err(Which::Dnat, 2, 0, &[o("to-destination", "1.2.3.256")]).contains("Bad IP address")
        );
        assert!(
            err(Which::Dnat, 2, 0, &[o("to-destination", "01.2.3.4")]).contains("Bad IP address")
        );
        assert!(err(Which::Dnat, 2, 0, &[o("to-destination", "1.2.3.4-")])
            .contains("Bad IP address \"\""));
        assert!(err(Which::Dnat, 2, 0, &[o("to-destination", "[1.2.3.4]")])
            .contains("Invalid address format"));
        assert!(
            err(Which::Snat, 0, 0, &[o("to-source", "host.example")]).contains("Bad IP address")
        );
        // Mandatory options, options used twice, `!`.
        assert!(err(Which::Dnat, 2, 0, &[o("random", "")])
            .contains("\"--to-destination\" must be specified"));
        assert!(err(Which::Snat, 0, 0, &[]).contains("\"--to-source\" must be specified"));
        let twice = [
            o("to-destination", "1.2.3.4"),
            o("to-destination", "1.2.3.5"),
        ];
        assert!(err(Which::Dnat, 2, 0, &twice).contains("can only be used once"));
        assert!(
            err(Which::Masquerade, 0, 0, &[o("random", ""), o("random", "")])
                .contains("can only be used once")
        );
        let inv = OptValue {
            invert: true,
            ..o("to-source", "1.2.3.4")
        };
        assert!(err(Which::Snat, 0, 0, &[inv]).contains("cannot be inverted"));
        // Revision 0 of DNAT and REDIRECT cannot carry a base port.
        assert!(
            err(Which::Dnat, 0, tcp, &[o("to-destination", "1.2.3.4:1-2/3")])
                .contains("Shifted portmap")
        );
        assert!(err(Which::Redirect, 0, tcp, &[o("to-ports", "1-2/3")]).contains("Shifted portmap"));
    }

    #[test]
    fn short_payload_is_an_error() {
        let ip = ip(0);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "nat",
        };
        let mut out = String::new();
        assert!(codec(Which::Dnat)
            .save(2, &compat_range(), &ctx, &mut out)
            .is_err());
        assert!(codec(Which::Snat)
            .save(0, &[1, 0, 0], &ctx, &mut out)
            .is_err());
    }
    mod v6 {
        //! IPv6 fixtures, captured from the kernel after
        //! ip6tables-legacy-restore 1.8.9 loaded the rule shown (nat table).
        use super::*;

        fn ip6(proto: u32) -> IpMatch {
            IpMatch {
                proto: proto as u16,
                ..IpMatch::any(Family::V6)
            }
        }

        fn parse6(w: Which, rev: u8, proto: u32, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
            let ip = ip6(proto);
            let ctx = RuleContext {
                family: Family::V6,
                ip: &ip,
                table: "nat",
            };
            let mut v = Nat(w, Family::V6).parse(rev, opts, &ctx)?;
            v.resize(xt_align(v.len()), 0);
            Ok(v)
        }

        fn save6(w: Which, rev: u8, data: &[u8]) -> String {
            let ip = ip6(IPPROTO_TCP);
            let ctx = RuleContext {
                family: Family::V6,
                ip: &ip,
                table: "nat",
            };
            let mut out = String::new();
            Nat(w, Family::V6)
                .save(rev, data, &ctx, &mut out)
                .expect("save");
            out
        }

        #[test]
        fn revisions_and_families() {
            let d = Nat(Which::Dnat, Family::V6);
            assert_eq!(d.revisions(Family::V6), &[2, 1]);
            assert_eq!(d.families(), &[Family::V6]);
            assert_eq!(Nat(Which::Snat, Family::V6).revisions(Family::V6), &[1]);
            assert_eq!(
                Nat(Which::Masquerade, Family::V6).revisions(Family::V6),
                &[0]
            );
            assert_eq!(Nat(Which::Redirect, Family::V6).revisions(Family::V6), &[0]);
        }

        #[test]
        fn dnat_v2_bracketed_address_and_port() {
            // `-p tcp -j DNAT --to-destination [2001:db8::1]:80`
            let fixture = hex(concat!(
                "03000000",                         // flags: MAP_IPS|PROTO_SPECIFIED
                "20010db8000000000000000000000001", // min_addr 2001:db8::1
                "20010db8000000000000000000000001", // max_addr 2001:db8::1
                "0050",                             // min_proto 80 (network order)
                "0050",                             // max_proto 80
                "0000",                             // base_proto
                "0000",                             // struct padding
                "00000000",                         // XT_ALIGN padding
            ));
            let opts = [o("to-destination", "[2001:db8::1]:80")];
            assert_eq!(parse6(Which::Dnat, 2, IPPROTO_TCP, &opts).unwrap(), fixture);
            assert_eq!(
                save6(Which::Dnat, 2, &fixture),
                " --to-destination [2001:db8::1]:80"
            );
        }

        #[test]
        fn dnat_v2_range_ports_base() {
            // `-p tcp -j DNAT --to-destination [2001:db8::1-2001:db8::5]:80-90/100`
            let fixture = hex(concat!(
                "23000000",                         // flags: MAP_IPS|PROTO_SPECIFIED|OFFSET
                "20010db8000000000000000000000001", // min_addr 2001:db8::1
                "20010db8000000000000000000000005", // max_addr 2001:db8::5
                "0050",                             // min_proto 80
                "005a",                             // max_proto 90
                "0064",                             // base_proto 100
                "0000",                             // struct padding
                "00000000",                         // XT_ALIGN padding
            ));
            let opts = [o("to-destination", "[2001:db8::1-2001:db8::5]:80-90/100")];
            assert_eq!(parse6(Which::Dnat, 2, IPPROTO_TCP, &opts).unwrap(), fixture);
            assert_eq!(
                save6(Which::Dnat, 2, &fixture),
                " --to-destination [2001:db8::1-2001:db8::5]:80-90/100"
            );
        }

        #[test]
        fn dnat_v2_range_without_port_has_no_brackets() {
            // `-j DNAT --to-destination 2001:db8::1-2001:db8::5`
            let fixture = hex(concat!(
                "01000000",                         // flags: MAP_IPS
                "20010db8000000000000000000000001", // min_addr 2001:db8::1
                "20010db8000000000000000000000005", // max_addr 2001:db8::5
                "0000",                             // min_proto
                "0000",                             // max_proto
                "0000",                             // base_proto
                "0000",                             // struct padding
                "00000000",                         // XT_ALIGN padding
            ));
            for arg in ["2001:db8::1-2001:db8::5", "[2001:db8::1-2001:db8::5]"] {
                assert_eq!(
                    parse6(Which::Dnat, 2, 0, &[o("to-destination", arg)]).unwrap(),
                    fixture
                );
            }
            assert_eq!(
                save6(Which::Dnat, 2, &fixture),
                " --to-destination 2001:db8::1-2001:db8::5"
            );
        }

        #[test]
        fn dnat_v2_port_only() {
            // `-p udp -j DNAT --to-destination []:53`, saved as ":53".
            let fixture = hex(concat!(
                "02000000",                         // flags: PROTO_SPECIFIED
                "00000000000000000000000000000000", // min_addr unset
                "00000000000000000000000000000000", // max_addr unset
                "0035",                             // min_proto 53
                "0035",                             // max_proto 53
                "0000",                             // base_proto
                "0000",                             // struct padding
                "00000000",                         // XT_ALIGN padding
            ));
            for arg in ["[]:53", ":53"] {
                assert_eq!(
                    parse6(Which::Dnat, 2, IPPROTO_UDP, &[o("to-destination", arg)]).unwrap(),
                    fixture
                );
            }
            assert_eq!(save6(Which::Dnat, 2, &fixture), " --to-destination :53");
        }

        #[test]
        fn dnat_v2_ipv4_compatible_address_and_flags() {
            // `-p tcp -j DNAT --to-destination [::1.2.3.4]:53 --random --persistent`:
            // glibc prints the address in its dotted form.
            let fixture = hex(concat!(
                "0f000000",                         // flags: MAP_IPS|PROTO_SPECIFIED|RANDOM|PERSISTENT
                "00000000000000000000000001020304", // min_addr ::1.2.3.4
                "00000000000000000000000001020304", // max_addr ::1.2.3.4
                "0035",                             // min_proto 53
                "0035",                             // max_proto 53
                "0000",                             // base_proto
                "0000",                             // struct padding
                "00000000",                         // XT_ALIGN padding
            ));
            let opts = [
                o("to-destination", "[::1.2.3.4]:53"),
                o("random", ""),
                o("persistent", ""),
            ];
            assert_eq!(parse6(Which::Dnat, 2, IPPROTO_TCP, &opts).unwrap(), fixture);
            assert_eq!(
                save6(Which::Dnat, 2, &fixture),
                " --to-destination [::1.2.3.4]:53 --random --persistent"
            );
        }

        /// `-p tcp -j SNAT --to-source [2001:db8::1]:1000-2000/5 --random
        /// --random-fully --persistent` (SNAT revision 1, `nf_nat_range`; 40
        /// bytes, no XT_ALIGN padding). DNAT revision 1 has the same layout.
        fn range_v1() -> Vec<u8> {
            hex(concat!(
                "3f000000", // flags: MAP_IPS|PROTO_SPECIFIED|RANDOM|PERSISTENT|RANDOM_FULLY|OFFSET
                "20010db8000000000000000000000001", // min_addr 2001:db8::1
                "20010db8000000000000000000000001", // max_addr 2001:db8::1
                "03e8",     // min_proto 1000
                "07d0",     // max_proto 2000 (the base port has no place)
            ))
        }

        #[test]
        fn snat_v1_drops_the_base_port() {
            let opts = [
                o("to-source", "[2001:db8::1]:1000-2000/5"),
                o("random", ""),
                o("random-fully", ""),
                o("persistent", ""),
            ];
            assert_eq!(
                parse6(Which::Snat, 1, IPPROTO_TCP, &opts).unwrap(),
                range_v1()
            );
            assert_eq!(
                save6(Which::Snat, 1, &range_v1()),
                " --to-source [2001:db8::1]:1000-2000/0 --random --random-fully --persistent"
            );
        }

        #[test]
        fn dnat_v1() {
            // Without the base port (refused by revision 1) and --random-fully
            // (no DNAT option), the SNAT layout above.
            let mut fixture = range_v1();
            fixture[0] = 0x0f; // MAP_IPS|PROTO_SPECIFIED|RANDOM|PERSISTENT
            let opts = [
                o("to-destination", "[2001:db8::1]:1000-2000"),
                o("random", ""),
                o("persistent", ""),
            ];
            assert_eq!(parse6(Which::Dnat, 1, IPPROTO_TCP, &opts).unwrap(), fixture);
            assert_eq!(
                save6(Which::Dnat, 1, &fixture),
                " --to-destination [2001:db8::1]:1000-2000 --random --persistent"
            );
            let shifted = [o("to-destination", "[2001:db8::1]:1-2/3")];
            assert!(parse6(Which::Dnat, 1, IPPROTO_TCP, &shifted)
                .unwrap_err()
                .contains("Shifted portmap"));
        }

        #[test]
        fn snat_v1_single_address() {
            // `-j SNAT --to-source 2001:db8::1`
            let fixture = hex(concat!(
                "01000000",                         // flags: MAP_IPS
                "20010db8000000000000000000000001", // min_addr
                "20010db8000000000000000000000001", // max_addr
                "0000",                             // min_proto
                "0000",                             // max_proto
            ));
            assert_eq!(
                parse6(Which::Snat, 1, 0, &[o("to-source", "2001:db8::1")]).unwrap(),
                fixture
            );
            assert_eq!(save6(Which::Snat, 1, &fixture), " --to-source 2001:db8::1");
        }

        #[test]
        fn redirect_and_masquerade() {
            // `-p tcp -j REDIRECT --to-ports 8080-8090 --random`
            let fixture = hex(concat!(
                "06000000",                         // flags: PROTO_SPECIFIED|RANDOM
                "00000000000000000000000000000000", // min_addr unset
                "00000000000000000000000000000000", // max_addr unset
                "1f90",                             // min_proto 8080
                "1f9a",                             // max_proto 8090
            ));
            let opts = [o("to-ports", "8080-8090"), o("random", "")];
            assert_eq!(
                parse6(Which::Redirect, 0, IPPROTO_TCP, &opts).unwrap(),
                fixture
            );
            assert_eq!(
                save6(Which::Redirect, 0, &fixture),
                " --to-ports 8080-8090 --random"
            );
            let shifted = [o("to-ports", "1-2/3")];
            assert!(parse6(Which::Redirect, 0, IPPROTO_TCP, &shifted)
                .unwrap_err()
                .contains("Shifted portmap"));
            // `-j MASQUERADE`: all zero.
            let fixture = hex(&"00".repeat(40));
            assert_eq!(parse6(Which::Masquerade, 0, 0, &[]).unwrap(), fixture);
            assert_eq!(save6(Which::Masquerade, 0, &fixture), "");
            // `-p udp -j MASQUERADE --to-ports 1000-2000/7 --random --random-fully`
            let fixture = hex(concat!(
                "36000000",                         // flags: PROTO_SPECIFIED|RANDOM|RANDOM_FULLY|OFFSET
                "00000000000000000000000000000000", // min_addr unset
                "00000000000000000000000000000000", // max_addr unset
                "03e8",                             // min_proto 1000
                "07d0",                             // max_proto 2000
            ));
            let opts = [
                o("to-ports", "1000-2000/7"),
                o("random", ""),
                o("random-fully", ""),
            ];
            assert_eq!(
                parse6(Which::Masquerade, 0, IPPROTO_UDP, &opts).unwrap(),
                fixture
            );
            assert_eq!(
                save6(Which::Masquerade, 0, &fixture),
                " --to-ports 1000-2000/0 --random --random-fully"
            );
        }

        #[test]
        fn refuses_bad_values() {
            let err = |w, rev, proto, arg: &str| {
                let name = if w == Which::Snat {
                    "to-source"
                } else {
                    "to-destination"
                };
                parse6(w, rev, proto, &[o(name, arg)]).unwrap_err()
            };
            let tcp = IPPROTO_TCP;
            // iptables reads the second colon of "[a]-[b]:p" as the port part.
            assert!(
                err(Which::Dnat, 2, tcp, "[2001:db8::1]-[2001:db8::5]:80").contains("not valid")
            );
            assert!(err(Which::Dnat, 2, tcp, "[2001:db8::1:80").contains("Invalid address format"));
            assert!(err(Which::Dnat, 2, tcp, "1.2.3.4:80").contains("Bad IP address \"1.2.3.4\""));
            assert!(err(Which::Dnat, 2, 0, "2001:db8::g").contains("Bad IP address"));
            assert!(err(Which::Dnat, 2, 0, "[]").contains("Bad IP address \"\""));
            assert!(err(Which::Dnat, 2, 0, "[::1]:80").contains("Need TCP, UDP"));
            assert!(err(Which::Snat, 1, tcp, "[::1]:90-80").contains("funky"));
            assert!(err(Which::Snat, 1, 0, "::1-").contains("Bad IP address"));
            assert!(err(Which::Snat, 1, 0, "host.example").contains("Bad IP address"));
            // Revisions iptables 1.8.9 lacks for IPv6.
            assert!(parse6(Which::Snat, 0, 0, &[o("to-source", "::1")]).is_err());
            assert!(parse6(Which::Dnat, 0, 0, &[o("to-destination", "::1")]).is_err());
            assert!(parse6(Which::Redirect, 1, 0, &[]).is_err());
        }
    }
}
