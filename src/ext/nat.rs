//! `-j DNAT`, `-j SNAT`, `-j MASQUERADE`, `-j REDIRECT` (libxt_NAT, IPv4).
//!
//! All four carry one NAT range. iptables 1.8.9 ships these IPv4 revisions:
//!
//! | target     | revisions | payload                                            |
//! |------------|-----------|----------------------------------------------------|
//! | DNAT       | 2, 0      | `nf_nat_range2` / `nf_nat_ipv4_multi_range_compat` |
//! | SNAT       | 0         | `nf_nat_ipv4_multi_range_compat`                   |
//! | MASQUERADE | 0         | `nf_nat_ipv4_multi_range_compat`                   |
//! | REDIRECT   | 0         | `nf_nat_ipv4_multi_range_compat`                   |
//!
//! (SNAT/DNAT revision 1, `nf_nat_range`, is IPv6-only in iptables 1.8.9.)
//! Options are parsed into a [`NatRange`] as libxt_NAT's `parse_to` /
//! `parse_ports` do, then written in the chosen revision's layout.

use std::mem::{offset_of, size_of};
use std::net::Ipv4Addr;

use super::{
    no_invert, once, opt, strtoul_prefix, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload,
    Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    nf_conntrack_man_proto, nf_nat_ipv4_multi_range_compat, nf_nat_ipv4_range, nf_nat_range2,
    IPPROTO_DCCP, IPPROTO_ICMP, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, NF_NAT_RANGE_MAP_IPS,
    NF_NAT_RANGE_PERSISTENT, NF_NAT_RANGE_PROTO_OFFSET, NF_NAT_RANGE_PROTO_RANDOM,
    NF_NAT_RANGE_PROTO_RANDOM_FULLY, NF_NAT_RANGE_PROTO_SPECIFIED,
};

pub(super) static CODECS: &[&dyn Codec] = &[
    &Nat(Which::Dnat),
    &Nat(Which::Snat),
    &Nat(Which::Masquerade),
    &Nat(Which::Redirect),
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

    /// `nf_nat_range2` (DNAT revision 2).
    pub mod v2 {
        use super::*;
        pub const FLAGS: usize = offset_of!(nf_nat_range2, flags);
        pub const MIN_ADDR: usize = offset_of!(nf_nat_range2, min_addr);
        pub const MAX_ADDR: usize = offset_of!(nf_nat_range2, max_addr);
        pub const MIN_PORT: usize = offset_of!(nf_nat_range2, min_proto) + PORT;
        pub const MAX_PORT: usize = offset_of!(nf_nat_range2, max_proto) + PORT;
        pub const BASE_PORT: usize = offset_of!(nf_nat_range2, base_proto) + PORT;
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

/// inet_pton(AF_INET): exactly four decimal parts, no leading zeros.
/// (Rust's parser has the same rules.)
fn parse_v4(s: &str) -> ExtResult<Ipv4Addr> {
    s.parse::<Ipv4Addr>()
        .map_err(|_| format!("Bad IP address \"{s}\""))
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

    /// libxt_NAT's `parse_to` for IPv4: `[ADDR[-ADDR]][:PORTSPEC]`.
    pub(crate) fn parse_to(&mut self, arg: &str, portok: bool) -> ExtResult<()> {
        if arg.contains('[') {
            return Err("Invalid address format".into());
        }
        // One colon is the port part; more mean an IPv6 address.
        let colon = arg.find(':').filter(|&c| !arg[c + 1..].contains(':'));
        let mut addr = arg;
        if let Some(c) = colon {
            self.parse_ports(&arg[c + 1..], portok)?;
            // iptables skips the address when the colon is the first byte,
            // or the third (meant for "[]:PORT").
            if c == 0 || c == 2 {
                return Ok(());
            }
            addr = &arg[..c];
        }
        self.flags |= NF_NAT_RANGE_MAP_IPS;
        let (lo, hi) = match addr.split_once('-') {
            Some((lo, hi)) => (parse_v4(lo)?, parse_v4(hi)?),
            None => {
                let ip = parse_v4(addr)?;
                (ip, ip)
            }
        };
        set_v4(&mut self.min_addr, lo);
        set_v4(&mut self.max_addr, hi);
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

    /// Writes `nf_nat_range2` (DNAT revision 2).
    fn encode_v2(&self) -> Vec<u8> {
        use field::v2::*;
        let mut p = Payload::of::<nf_nat_range2>();
        p.u32(FLAGS, self.flags)
            .bytes(MIN_ADDR, &self.min_addr)
            .bytes(MAX_ADDR, &self.max_addr)
            .be16(MIN_PORT, self.min_port)
            .be16(MAX_PORT, self.max_port)
            .be16(BASE_PORT, self.base_port);
        p.finish()
    }

    /// Reads `nf_nat_range2`.
    fn decode_v2(data: &[u8]) -> ExtResult<NatRange> {
        use field::v2::*;
        let r = Reader::new(data, size_of::<nf_nat_range2>())?;
        let mut n = NatRange {
            flags: r.u32(FLAGS)?,
            ..NatRange::default()
        };
        n.min_addr.copy_from_slice(r.bytes(MIN_ADDR, ADDR_LEN)?);
        n.max_addr.copy_from_slice(r.bytes(MAX_ADDR, ADDR_LEN)?);
        n.min_port = r.be16(MIN_PORT)?;
        n.max_port = r.be16(MAX_PORT)?;
        n.base_port = r.be16(BASE_PORT)?;
        Ok(n)
    }

    /// libxt_NAT's `sprint_range` for IPv4.
    fn range_text(&self) -> String {
        let mut s = String::new();
        if self.flags & NF_NAT_RANGE_MAP_IPS != 0 {
            s.push_str(&v4_of(&self.min_addr).to_string());
            if self.min_addr != self.max_addr {
                s.push('-');
                s.push_str(&v4_of(&self.max_addr).to_string());
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
    fn save(&self, out: &mut String, rangeopt: &str, skip_colon: bool) {
        let text = self.range_text();
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

/// One of the four NAT targets.
struct Nat(Which);

impl Nat {
    /// The option holding the range, and whether save drops its leading colon.
    fn range_option(&self) -> (&'static str, bool) {
        match self.0 {
            Which::Dnat => ("to-destination", false),
            Which::Snat => ("to-source", false),
            Which::Masquerade | Which::Redirect => ("to-ports", true),
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
        &[Family::V4]
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        match self.0 {
            Which::Dnat => &[2, 0],
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
                "to-destination" | "to-source" => range.parse_to(o.arg(), portok)?,
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
        match rev {
            0 => {
                // DNAT_fcheck (DNAT and REDIRECT): revision 0 has no base port.
                if matches!(self.0, Which::Dnat | Which::Redirect)
                    && range.flags & NF_NAT_RANGE_PROTO_OFFSET != 0
                {
                    return Err("Shifted portmap ranges not supported with this kernel".into());
                }
                Ok(range.encode_v0())
            }
            2 if self.0 == Which::Dnat => Ok(range.encode_v2()),
            _ => Err(format!("{name}: revision {rev} is not supported")),
        }
    }

    fn save(&self, rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let range = match rev {
            0 => NatRange::decode_v0(data)?,
            2 if self.0 == Which::Dnat => NatRange::decode_v2(data)?,
            _ => return Err(format!("{}: revision {rev} is not supported", self.name())),
        };
        let (rangeopt, skip_colon) = self.range_option();
        range.save(out, rangeopt, skip_colon);
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

    fn o(name: &'static str, arg: &str) -> OptValue {
        OptValue {
            name,
            invert: false,
            args: if arg.is_empty() {
                vec![]
            } else {
                vec![arg.to_string()]
            },
        }
    }

    fn codec(w: Which) -> Nat {
        Nat(w)
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
}
