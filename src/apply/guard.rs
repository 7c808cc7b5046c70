//! The lockout guard's evaluator: which verdicts can one flow meet in a
//! ruleset?
//!
//! `apply` uses it to refuse a ruleset that would cut off the SSH session it
//! runs in. [`evaluate`] walks a chain as the kernel's `ipt_do_table` does —
//! rule by rule, into user chains and back, to the policy of the built-in
//! chain — deciding each rule's IP header match and each match extension from
//! its payload bytes. What cannot be decided from the [`Flow`] alone (`-m
//! recent`, `-m limit`, an interface the flow does not name, ...) forks the
//! walk: both ways are followed, so the answer is every verdict the flow
//! *can* meet, and each one other than ACCEPT comes with the [`Path`] that
//! leads to it.
//!
//! The module is pure: no kernel, no I/O. Payloads are read through
//! [`Reader`] at `offset_of!` offsets of the bindgen structs, so a short or
//! corrupt payload makes a match undecidable, never a panic.
//!
//! What the packet is assumed to be:
//!
//! * not a fragment (`-f` never matches, `! -f` always does);
//! * TCP flags from the conntrack state: an ESTABLISHED (or reply) packet has
//!   ACK set and SYN, FIN, RST clear; a NEW or RELATED one has SYN only;
//!   PSH, URG, ECE and CWR are unknown except that a SYN carries no PSH/URG;
//! * tracked by conntrack, in the given state, with no NAT known (a
//!   `--ctstate SNAT/DNAT` that decides the match is undecidable);
//! * the packet mark and the connection mark as [`Flow::mark`] and
//!   [`Flow::connmark`] say (0 by default); unknown once the table has a
//!   `-j MARK` or `-j CONNMARK` rule, since the walk does not track them.
//!
//! ```
//! use iptables_atomic::apply::{build_table, guard::{evaluate, Flow, Outcome}};
//! use iptables_atomic::ext::AssumeLatest;
//! use iptables_atomic::restore::{parse, RestoreOptions};
//! use iptables_atomic::{Family, Table};
//!
//! let text = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
//!             -A INPUT -p tcp --dport 80 -j ACCEPT\nCOMMIT\n";
//! let script = parse(text, &RestoreOptions::new(Family::V4), &AssumeLatest).unwrap();
//! let table = build_table(&script, false, Table::new("filter").unwrap()).unwrap();
//! let flow = Flow::from_ssh_connection("198.51.100.7 50022 203.0.113.1 22").unwrap();
//! let eval = evaluate(&table, "INPUT", &flow);
//! assert!(eval.outcomes.contains(&Outcome::Drop));
//! assert_eq!(eval.paths[0].to_string(), "policy DROP of INPUT");
//! ```

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::mem::{offset_of, size_of};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::raw::c_ulong;
use std::rc::Rc;

use crate::ext::Reader;
use crate::rules::{
    inv_flags, ip_flags, Extension, Family, Interface, Rule, Table, Target, Verdict,
};
use crate::sys::bindings::{
    xt_addrtype_info, xt_addrtype_info_v1, xt_connmark_mtinfo1, xt_conntrack_mtinfo1,
    xt_conntrack_mtinfo2, xt_conntrack_mtinfo3, xt_iprange_mtinfo, xt_mark_mtinfo1, xt_multiport,
    xt_multiport_v1, xt_state_info, xt_tcp, xt_udp, IFNAMSIZ, IPPROTO_DCCP, IPPROTO_ICMP,
    IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, XT_ADDRTYPE_ANYCAST,
    XT_ADDRTYPE_BROADCAST, XT_ADDRTYPE_INVERT_DEST, XT_ADDRTYPE_INVERT_SOURCE, XT_ADDRTYPE_LOCAL,
    XT_ADDRTYPE_MULTICAST, XT_ADDRTYPE_UNICAST, XT_ADDRTYPE_UNREACHABLE, XT_ADDRTYPE_UNSPEC,
    XT_ADDRTYPE_XRESOLVE, XT_CONNTRACK_DIRECTION, XT_CONNTRACK_EXPIRES, XT_CONNTRACK_ORIGDST,
    XT_CONNTRACK_ORIGDST_PORT, XT_CONNTRACK_ORIGSRC, XT_CONNTRACK_ORIGSRC_PORT, XT_CONNTRACK_PROTO,
    XT_CONNTRACK_REPLDST, XT_CONNTRACK_REPLDST_PORT, XT_CONNTRACK_REPLSRC,
    XT_CONNTRACK_REPLSRC_PORT, XT_CONNTRACK_STATE, XT_CONNTRACK_STATE_ALIAS, XT_CONNTRACK_STATUS,
    XT_MULTIPORT_DESTINATION, XT_MULTIPORT_EITHER, XT_MULTIPORT_SOURCE, XT_MULTI_PORTS,
    XT_TCP_INV_DSTPT, XT_TCP_INV_FLAGS, XT_TCP_INV_SRCPT, XT_UDP_INV_DSTPT, XT_UDP_INV_SRCPT,
};

/// How deep user-chain jumps may nest before the walk gives up (the kernel
/// refuses loops when the table is loaded; this guards a model built in code).
pub const MAX_DEPTH: usize = 64;

/// At most this many [`Path`]s are kept per outcome.
pub const MAX_PATHS: usize = 8;

/// At most this many assumptions are listed per path (the rest are counted).
const MAX_ASSUMED: usize = 8;

// ---------------------------------------------------------------------------
// The flow.

/// The conntrack state of the flow's packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CtState {
    /// The first packet of a connection (a TCP SYN).
    New,
    /// A packet of a connection that has seen traffic both ways.
    Established,
    /// The first packet of a connection an existing one expects (a TCP SYN).
    Related,
}

impl CtState {
    fn name(self) -> &'static str {
        match self {
            CtState::New => "NEW",
            CtState::Established => "ESTABLISHED",
            CtState::Related => "RELATED",
        }
    }
}

/// One packet of a session, as the ruleset sees it.
///
/// Build one with [`Flow::parse`], [`Flow::from_ssh_connection`] or
/// [`Flow::new`], then adjust the fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Flow {
    /// IPv4 or IPv6 (the family of `src` and `dst`).
    pub family: Family,
    /// The layer-4 protocol number (6 for TCP).
    pub proto: u8,
    /// Source address.
    pub src: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub dport: u16,
    /// The interface the packet came in on; `None` when not known (rules
    /// with `-i` are then undecidable), `Some("")` when there is none (a
    /// locally generated packet).
    pub in_iface: Option<String>,
    /// The interface the packet goes out on, as `in_iface`.
    pub out_iface: Option<String>,
    /// The conntrack state.
    pub state: CtState,
    /// The packet mark (`-m mark`); `None` when not known.
    pub mark: Option<u32>,
    /// The connection mark (`-m connmark`); `None` when not known.
    pub connmark: Option<u32>,
}

/// Protocols that carry ports where `-m multiport` and [`Flow::parse`] look.
const PORT_PROTOCOLS: [(&str, u32); 5] = [
    ("tcp", IPPROTO_TCP),
    ("udp", IPPROTO_UDP),
    ("udplite", IPPROTO_UDPLITE),
    ("sctp", IPPROTO_SCTP),
    ("dccp", IPPROTO_DCCP),
];

fn is_port_protocol(proto: u8) -> bool {
    PORT_PROTOCOLS.iter().any(|(_, p)| *p == u32::from(proto))
}

/// An IPv4-mapped IPv6 address as IPv4 (what goes on the wire).
fn unmap(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

fn family_of(a: &IpAddr) -> Family {
    match a {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

/// `ADDR:PORT` or `[ADDR6]:PORT`.
fn parse_endpoint(s: &str) -> Result<(IpAddr, u16), String> {
    let (addr, port) = if let Some(rest) = s.strip_prefix('[') {
        let (a, p) = rest
            .split_once("]:")
            .ok_or_else(|| format!("`{s}': expected [IPV6]:PORT"))?;
        (a, p)
    } else {
        s.rsplit_once(':')
            .ok_or_else(|| format!("`{s}': expected ADDRESS:PORT"))?
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("`{addr}' is not an IP address"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{port}' is not a port number"))?;
    Ok((addr, port))
}

impl Flow {
    /// A flow with no interfaces known, ESTABLISHED, marks 0.
    pub fn new(proto: u8, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Flow {
        Flow {
            family: family_of(&src),
            proto,
            src,
            sport,
            dst,
            dport,
            in_iface: None,
            out_iface: None,
            state: CtState::Established,
            mark: Some(0),
            connmark: Some(0),
        }
    }

    /// Parses `PROTO:SRC:SPORT->DST:DPORT` (the `--keep` syntax), e.g.
    /// `tcp:198.51.100.7:50022->203.0.113.1:22` or
    /// `tcp:[2001:db8::7]:50022->[2001:db8::1]:22`. PROTO is `tcp`, `udp`,
    /// `udplite`, `sctp`, `dccp` or a number. The flow is ESTABLISHED.
    pub fn parse(spec: &str) -> Result<Flow, String> {
        let (proto, rest) = spec
            .split_once(':')
            .ok_or_else(|| format!("`{spec}': expected PROTO:SRC:SPORT->DST:DPORT"))?;
        let proto = match PORT_PROTOCOLS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(proto))
        {
            Some((_, p)) => *p as u8,
            None => proto
                .parse::<u8>()
                .map_err(|_| format!("`{proto}' is not a protocol (tcp, udp, ... or a number)"))?,
        };
        let (src, dst) = rest
            .split_once("->")
            .ok_or_else(|| format!("`{spec}': expected PROTO:SRC:SPORT->DST:DPORT"))?;
        let (src, sport) = parse_endpoint(src.trim())?;
        let (dst, dport) = parse_endpoint(dst.trim())?;
        if family_of(&src) != family_of(&dst) {
            return Err(format!("`{spec}': the addresses are of different families"));
        }
        Ok(Flow::new(proto, src, sport, dst, dport))
    }

    /// The inbound packet of the SSH session described by the value of
    /// `SSH_CONNECTION` (`CLIENT_IP CLIENT_PORT SERVER_IP SERVER_PORT`):
    /// TCP, client to server, ESTABLISHED. A `%zone` on a link-local
    /// address names the incoming interface; IPv4-mapped addresses become
    /// IPv4. `None` when the value does not have that form.
    pub fn from_ssh_connection(value: &str) -> Option<Flow> {
        let words: Vec<&str> = value.split_whitespace().collect();
        let [client, cport, server, sport] = words[..] else {
            return None;
        };
        let mut zone = None;
        let mut addr = |s: &str| -> Option<IpAddr> {
            let (a, z) = match s.split_once('%') {
                Some((a, z)) => (a, Some(z)),
                None => (s, None),
            };
            if let Some(z) = z.filter(|z| !z.is_empty()) {
                zone = Some(z.to_string());
            }
            a.parse().ok().map(unmap)
        };
        let (src, dst) = (addr(client)?, addr(server)?);
        if family_of(&src) != family_of(&dst) {
            return None;
        }
        let mut flow = Flow::new(
            IPPROTO_TCP as u8,
            src,
            cport.parse().ok()?,
            dst,
            sport.parse().ok()?,
        );
        flow.in_iface = zone;
        Some(flow)
    }

    /// The packet going the other way (for OUTPUT): addresses, ports and
    /// interfaces swapped; the reply of a NEW or RELATED packet is
    /// ESTABLISHED (conntrack's view of a SYN-ACK), though its TCP flags are
    /// then taken as an established segment's (ACK without SYN).
    pub fn reply(&self) -> Flow {
        Flow {
            family: self.family,
            proto: self.proto,
            src: self.dst,
            sport: self.dport,
            dst: self.src,
            dport: self.sport,
            in_iface: self.out_iface.clone(),
            out_iface: self.in_iface.clone(),
            state: CtState::Established,
            mark: self.mark,
            connmark: self.connmark,
        }
    }
}

fn fmt_endpoint(a: &IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

impl fmt::Display for Flow {
    /// `tcp:198.51.100.7:50022->203.0.113.1:22 (ESTABLISHED)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match PORT_PROTOCOLS
            .iter()
            .find(|(_, p)| *p == u32::from(self.proto))
        {
            Some((n, _)) => write!(f, "{n}:")?,
            None => write!(f, "{}:", self.proto)?,
        }
        write!(
            f,
            "{}->{} ({})",
            fmt_endpoint(&self.src, self.sport),
            fmt_endpoint(&self.dst, self.dport),
            self.state.name()
        )
    }
}

// ---------------------------------------------------------------------------
// The answer.

/// Where a walk can end.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// ACCEPT: a rule's verdict, a NAT target, or the policy.
    Accept,
    /// DROP: a rule's verdict or the policy.
    Drop,
    /// `-j REJECT`.
    Reject,
    /// The walk left a user chain that was given to [`evaluate`] (its
    /// caller decides).
    Return,
    /// Any other end: `QUEUE`, `NFQUEUE`, an unknown terminal target (by
    /// name), or a walk the kernel would not make (`loop`, `too deep`,
    /// `missing chain`).
    Other(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Accept => f.write_str("ACCEPT"),
            Outcome::Drop => f.write_str("DROP"),
            Outcome::Reject => f.write_str("REJECT"),
            Outcome::Return => f.write_str("RETURN"),
            Outcome::Other(name) => f.write_str(name),
        }
    }
}

/// How the walk reaches one outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Path {
    /// The outcome reached.
    pub outcome: Outcome,
    /// The chain where it is decided.
    pub chain: String,
    /// The rule that decides it, numbered from 1 as `iptables -D CHAIN N`
    /// counts; `None` for the chain's policy.
    pub rule: Option<usize>,
    /// The input line of that rule ([`Rule::line`]), when it came from text.
    pub line: Option<usize>,
    /// What decides it: `policy DROP of INPUT`, `rule 3 of INPUT (line 12) drops`.
    pub why: String,
    /// The jumps taken to get there, outermost first:
    /// `rule 2 of INPUT (line 7) -j svc` (`-g` for a goto).
    pub via: Vec<String>,
    /// The undecidable matches on the way and which way the walk took them:
    /// `rule 1 of INPUT (line 5): -m recent cannot be decided: followed as matching`.
    pub assumed: Vec<String>,
    /// How many more assumptions there were than `assumed` lists.
    pub more_assumed: usize,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why)?;
        if !self.via.is_empty() {
            write!(f, " (via {})", self.via.join(", "))?;
        }
        if !self.assumed.is_empty() {
            write!(f, ", if {}", self.assumed.join("; "))?;
            if self.more_assumed > 0 {
                write!(f, " (and {} more)", self.more_assumed)?;
            }
        }
        Ok(())
    }
}

/// Every verdict a flow can meet in a chain, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Evaluation {
    /// The possible outcomes.
    pub outcomes: BTreeSet<Outcome>,
    /// For each possible outcome other than ACCEPT, how it is reached (at
    /// most [`MAX_PATHS`] per outcome).
    pub paths: Vec<Path>,
}

impl Evaluation {
    /// True when ACCEPT is the only possible outcome.
    pub fn always_accepts(&self) -> bool {
        self.outcomes.len() == 1 && self.outcomes.contains(&Outcome::Accept)
    }
}

// ---------------------------------------------------------------------------
// Three-valued matching.

/// Whether a rule (or a part of it) matches the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    /// Cannot be decided from the flow; why.
    Maybe(String),
}

impl Tri {
    fn from_bool(b: bool) -> Tri {
        if b {
            Tri::Yes
        } else {
            Tri::No
        }
    }

    /// Logical AND: any No wins, then any Maybe (reasons joined).
    fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Maybe(a), Tri::Maybe(b)) => Tri::Maybe(format!("{a}, {b}")),
            (Tri::Maybe(a), Tri::Yes) | (Tri::Yes, Tri::Maybe(a)) => Tri::Maybe(a),
            (Tri::Yes, Tri::Yes) => Tri::Yes,
        }
    }

    /// XOR with an inversion flag.
    fn invert(self, inv: bool) -> Tri {
        match (self, inv) {
            (Tri::Yes, true) => Tri::No,
            (Tri::No, true) => Tri::Yes,
            (t, _) => t,
        }
    }

    /// Maybe when the reading failed.
    fn read(name: &str, r: Result<Tri, String>) -> Tri {
        r.unwrap_or_else(|e| Tri::Maybe(format!("-m {name} cannot be read ({e})")))
    }
}

fn addr_bits(a: &IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(*a)),
        IpAddr::V6(a) => u128::from(*a),
    }
}

/// `(addr & mask) == rule_addr`, as ip_packet_match compares.
fn masked_eq(addr: &IpAddr, mask: &IpAddr, rule: &IpAddr) -> bool {
    addr_bits(addr) & addr_bits(mask) == addr_bits(rule)
}

/// ifname_compare_aligned against a known name, or Maybe.
fn iface_matches(rule: &Interface, inv: bool, flow: Option<&str>, opt: &str) -> Tri {
    if rule.mask.iter().all(|m| *m == 0) {
        // Every name compares equal under an empty mask.
        return Tri::Yes.invert(inv);
    }
    let bang = if inv { "! " } else { "" };
    let name = rule.to_save();
    let Some(flow) = flow else {
        return Tri::Maybe(format!(
            "{bang}{opt} {name}: the flow's interface is not known"
        ));
    };
    let bytes = flow.as_bytes();
    let mut padded = [0u8; IFNAMSIZ as usize];
    if bytes.len() >= padded.len() {
        return Tri::Maybe(format!(
            "{bang}{opt} {name}: `{flow}' is not an interface name"
        ));
    }
    padded[..bytes.len()].copy_from_slice(bytes);
    let equal = padded
        .iter()
        .zip(&rule.name)
        .zip(&rule.mask)
        .all(|((a, b), m)| (a ^ b) & m == 0);
    Tri::from_bool(equal).invert(inv)
}

/// ip_packet_match / ip6_packet_match.
fn header_matches(rule: &Rule, flow: &Flow) -> Tri {
    let ip = &rule.ip;
    if family_of(&ip.src) != flow.family {
        return Tri::No;
    }
    let inv = |bit: u8| ip.invflags & bit != 0;
    let src = masked_eq(&flow.src, &ip.src_mask, &ip.src) ^ inv(inv_flags::SRCIP);
    let dst = masked_eq(&flow.dst, &ip.dst_mask, &ip.dst) ^ inv(inv_flags::DSTIP);
    if !src || !dst {
        return Tri::No;
    }
    let proto = match flow.family {
        Family::V4 => {
            let frag = ip.flags & ip_flags::FRAG != 0;
            // The flow's packet is never a second fragment.
            if frag ^ inv(inv_flags::FRAG) {
                return Tri::No;
            }
            ip.proto == 0 || ((ip.proto == u16::from(flow.proto)) ^ inv(inv_flags::PROTO))
        }
        Family::V6 => {
            if ip.flags & ip_flags::PROTO6 == 0 || ip.proto == u16::from(flow.proto) {
                ip.flags & ip_flags::PROTO6 == 0 || !inv(inv_flags::PROTO)
            } else {
                ip.proto == 0 || inv(inv_flags::PROTO)
            }
        }
    };
    if !proto {
        return Tri::No;
    }
    iface_matches(
        &ip.in_iface,
        inv(inv_flags::VIA_IN),
        flow.in_iface.as_deref(),
        "-i",
    )
    .and(iface_matches(
        &ip.out_iface,
        inv(inv_flags::VIA_OUT),
        flow.out_iface.as_deref(),
        "-o",
    ))
}

// ---------------------------------------------------------------------------
// Match extensions.

/// What the walk knows besides the flow.
struct Context<'a> {
    flow: &'a Flow,
    /// The packet mark, unless a `-j MARK`/`-j CONNMARK` in the table may change it.
    mark: Option<u32>,
    /// The connection mark, unless a `-j CONNMARK` may change it.
    connmark: Option<u32>,
}

/// TCP header flag bits (byte 13 of the header).
mod tcp_flag {
    pub const FIN: u8 = 1 << 0;
    pub const SYN: u8 = 1 << 1;
    pub const RST: u8 = 1 << 2;
    pub const PSH: u8 = 1 << 3;
    pub const ACK: u8 = 1 << 4;
    pub const URG: u8 = 1 << 5;
    // ECE (1 << 6) and CWR (1 << 7) are never known: ECN may set them.
}

/// Conntrack state bits as xt_conntrack and xt_state test them:
/// `1 << (ctinfo % IP_CT_IS_REPLY + 1)` with nf_conntrack_common.h's
/// `IP_CT_ESTABLISHED = 0, IP_CT_RELATED = 1, IP_CT_NEW = 2`; bindgen cannot
/// evaluate these macros.
mod ct_state {
    const IP_CT_NUMBER: u32 = 5;
    const fn bit(ctinfo: u32) -> u16 {
        1 << (ctinfo % 3 + 1)
    }
    pub const ESTABLISHED: u16 = bit(0);
    pub const RELATED: u16 = bit(1);
    pub const NEW: u16 = bit(2);
    pub const SNAT: u16 = 1 << (IP_CT_NUMBER + 1);
    pub const DNAT: u16 = 1 << (IP_CT_NUMBER + 2);
}

fn state_bit(s: CtState) -> u16 {
    match s {
        CtState::New => ct_state::NEW,
        CtState::Established => ct_state::ESTABLISHED,
        CtState::Related => ct_state::RELATED,
    }
}

/// Decides one match extension.
fn ext_matches(ext: &Extension, ctx: &Context) -> Tri {
    let flow = ctx.flow;
    let name: &str = &ext.name;
    let data = ext.data.as_slice();
    let undecidable = || Tri::Maybe(format!("-m {name} cannot be decided"));
    match name {
        "comment" => Tri::Yes,
        "tcp" => Tri::read(name, tcp_matches(data, flow)),
        "udp" => Tri::read(name, udp_matches(data, flow)),
        "multiport" => Tri::read(name, multiport_matches(ext.revision, data, flow)),
        "conntrack" => Tri::read(name, conntrack_matches(ext.revision, data, flow)),
        "state" => Tri::read(name, state_matches(data, flow)),
        "iprange" => Tri::read(name, iprange_matches(data, flow)),
        "addrtype" => Tri::read(name, addrtype_matches(ext.revision, data, flow)),
        "mark" => Tri::read(name, mark_matches(name, ext.revision, data, ctx.mark)),
        "connmark" => Tri::read(name, mark_matches(name, ext.revision, data, ctx.connmark)),
        "icmp" if flow.proto != IPPROTO_ICMP as u8 => Tri::No,
        "icmp6" if flow.proto != IPPROTO_ICMPV6 as u8 => Tri::No,
        _ => undecidable(),
    }
}

/// `(lo <= port <= hi) ^ inv`.
fn port_in(range: [u16; 2], port: u16, inv: bool) -> bool {
    (range[0] <= port && port <= range[1]) ^ inv
}

mod tcp_field {
    use super::*;
    pub const SPTS: usize = offset_of!(xt_tcp, spts);
    pub const DPTS: usize = offset_of!(xt_tcp, dpts);
    pub const OPTION: usize = offset_of!(xt_tcp, option);
    pub const FLG_MASK: usize = offset_of!(xt_tcp, flg_mask);
    pub const FLG_CMP: usize = offset_of!(xt_tcp, flg_cmp);
    pub const INVFLAGS: usize = offset_of!(xt_tcp, invflags);
}

/// `[lo, hi]` host-order ports at `off`.
fn port_range(r: &Reader, off: usize) -> Result<[u16; 2], String> {
    Ok([r.u16(off)?, r.u16(off + size_of::<u16>())?])
}

/// xt_tcp's tcp_mt with the flags the state implies.
fn tcp_matches(data: &[u8], flow: &Flow) -> Result<Tri, String> {
    if flow.proto != IPPROTO_TCP as u8 {
        return Ok(Tri::No);
    }
    let r = Reader::new(data, size_of::<xt_tcp>())?;
    let inv = u32::from(r.u8(tcp_field::INVFLAGS)?);
    let ports = port_in(
        port_range(&r, tcp_field::SPTS)?,
        flow.sport,
        inv & XT_TCP_INV_SRCPT != 0,
    ) && port_in(
        port_range(&r, tcp_field::DPTS)?,
        flow.dport,
        inv & XT_TCP_INV_DSTPT != 0,
    );
    if !ports {
        return Ok(Tri::No);
    }
    let (mask, cmp) = (r.u8(tcp_field::FLG_MASK)?, r.u8(tcp_field::FLG_CMP)?);
    // (known bits, their values): everything else may be either.
    use tcp_flag::*;
    let (known, set) = match flow.state {
        CtState::Established => (FIN | SYN | RST | ACK, ACK),
        CtState::New | CtState::Related => (FIN | SYN | RST | ACK | PSH | URG, SYN),
    };
    let unknown = mask & !known;
    let mut seen = [false; 2];
    // Every value of the unknown bits under the mask (at most 4 bits).
    let mut sub = unknown;
    loop {
        let flags = set | sub;
        let m = ((flags & mask) == cmp) ^ (inv & XT_TCP_INV_FLAGS != 0);
        seen[usize::from(m)] = true;
        if sub == 0 {
            break;
        }
        sub = (sub - 1) & unknown;
    }
    let flags = match seen {
        [false, true] => Tri::Yes,
        [true, false] => Tri::No,
        _ => Tri::Maybe(format!(
            "-m tcp --tcp-flags cannot be decided for a {} packet",
            flow.state.name()
        )),
    };
    let option = if r.u8(tcp_field::OPTION)? != 0 {
        Tri::Maybe("-m tcp --tcp-option cannot be decided".into())
    } else {
        Tri::Yes
    };
    Ok(flags.and(option))
}

mod udp_field {
    use super::*;
    pub const SPTS: usize = offset_of!(xt_udp, spts);
    pub const DPTS: usize = offset_of!(xt_udp, dpts);
    pub const INVFLAGS: usize = offset_of!(xt_udp, invflags);
}

/// xt_udp's udp_mt (UDP and UDP-Lite).
fn udp_matches(data: &[u8], flow: &Flow) -> Result<Tri, String> {
    if flow.proto != IPPROTO_UDP as u8 && flow.proto != IPPROTO_UDPLITE as u8 {
        return Ok(Tri::No);
    }
    let r = Reader::new(data, size_of::<xt_udp>())?;
    let inv = u32::from(r.u8(udp_field::INVFLAGS)?);
    Ok(Tri::from_bool(
        port_in(
            port_range(&r, udp_field::SPTS)?,
            flow.sport,
            inv & XT_UDP_INV_SRCPT != 0,
        ) && port_in(
            port_range(&r, udp_field::DPTS)?,
            flow.dport,
            inv & XT_UDP_INV_DSTPT != 0,
        ),
    ))
}

mod multiport_field {
    use super::*;
    pub const FLAGS: usize = offset_of!(xt_multiport_v1, flags);
    pub const COUNT: usize = offset_of!(xt_multiport_v1, count);
    pub const PORTS: usize = offset_of!(xt_multiport_v1, ports);
    pub const PFLAGS: usize = offset_of!(xt_multiport_v1, pflags);
    pub const INVERT: usize = offset_of!(xt_multiport_v1, invert);
    pub const V0_FLAGS: usize = offset_of!(xt_multiport, flags);
    pub const V0_COUNT: usize = offset_of!(xt_multiport, count);
    pub const V0_PORTS: usize = offset_of!(xt_multiport, ports);
}

/// xt_multiport's ports_match_v0 / ports_match_v1.
fn multiport_matches(rev: u8, data: &[u8], flow: &Flow) -> Result<Tri, String> {
    if !is_port_protocol(flow.proto) {
        return Ok(Tri::Maybe(format!(
            "-m multiport: protocol {} has no ports the flow describes",
            flow.proto
        )));
    }
    let slots = XT_MULTI_PORTS as usize;
    let (r, flags, count, ports_at, pflags_at, invert) = match rev {
        0 => {
            let r = Reader::new(data, size_of::<xt_multiport>())?;
            let (f, c) = (
                r.u8(multiport_field::V0_FLAGS)?,
                r.u8(multiport_field::V0_COUNT)?,
            );
            (r, f, c, multiport_field::V0_PORTS, None, false)
        }
        1 => {
            let r = Reader::new(data, size_of::<xt_multiport_v1>())?;
            let (f, c) = (r.u8(multiport_field::FLAGS)?, r.u8(multiport_field::COUNT)?);
            let inv = r.u8(multiport_field::INVERT)? != 0;
            (
                r,
                f,
                c,
                multiport_field::PORTS,
                Some(multiport_field::PFLAGS),
                inv,
            )
        }
        _ => return Err(format!("revision {rev} is not known")),
    };
    let count = usize::from(count);
    if count > slots {
        return Err(format!("{count} ports in {slots} slots"));
    }
    let (src, dst) = (flow.sport, flow.dport);
    let hit = |lo: u16, hi: u16| -> Result<bool, String> {
        let within = |p: u16| lo <= p && p <= hi;
        Ok(match u32::from(flags) {
            XT_MULTIPORT_SOURCE => within(src),
            XT_MULTIPORT_DESTINATION => within(dst),
            XT_MULTIPORT_EITHER => within(src) || within(dst),
            other => return Err(format!("direction {other} is not known")),
        })
    };
    let port = |i: usize| r.u16(ports_at + i * size_of::<u16>());
    let mut i = 0;
    while i < count {
        let lo = port(i)?;
        let range = match pflags_at {
            Some(at) => r.u8(at + i)? != 0,
            None => false,
        };
        let hi = if range {
            i += 1;
            if i >= slots {
                return Err("a range runs past the last port slot".into());
            }
            port(i)?
        } else {
            lo
        };
        if hit(lo, hi)? {
            return Ok(Tri::from_bool(!invert));
        }
        i += 1;
    }
    Ok(Tri::from_bool(invert))
}

/// Where one conntrack revision (1 to 3) keeps the fields the guard reads.
struct CtLayout {
    size: usize,
    l4proto: usize,
    match_flags: usize,
    invert_flags: usize,
    state_mask: usize,
    /// Revision 1 keeps the state mask in one byte.
    mask_u8: bool,
}

macro_rules! ct_layout {
    ($t:ty, $mask_u8:expr) => {
        CtLayout {
            size: size_of::<$t>(),
            l4proto: offset_of!($t, l4proto),
            match_flags: offset_of!($t, match_flags),
            invert_flags: offset_of!($t, invert_flags),
            state_mask: offset_of!($t, state_mask),
            mask_u8: $mask_u8,
        }
    };
}

const CT_LAYOUTS: [CtLayout; 3] = [
    ct_layout!(xt_conntrack_mtinfo1, true),
    ct_layout!(xt_conntrack_mtinfo2, false),
    ct_layout!(xt_conntrack_mtinfo3, false),
];

/// Conntrack fields the flow does not describe: (flag, option).
const CT_UNDECIDABLE: [(u32, &str); 11] = [
    (XT_CONNTRACK_ORIGSRC, "--ctorigsrc"),
    (XT_CONNTRACK_ORIGDST, "--ctorigdst"),
    (XT_CONNTRACK_REPLSRC, "--ctreplsrc"),
    (XT_CONNTRACK_REPLDST, "--ctrepldst"),
    (XT_CONNTRACK_STATUS, "--ctstatus"),
    (XT_CONNTRACK_EXPIRES, "--ctexpire"),
    (XT_CONNTRACK_ORIGSRC_PORT, "--ctorigsrcport"),
    (XT_CONNTRACK_ORIGDST_PORT, "--ctorigdstport"),
    (XT_CONNTRACK_REPLSRC_PORT, "--ctreplsrcport"),
    (XT_CONNTRACK_REPLDST_PORT, "--ctrepldstport"),
    (XT_CONNTRACK_DIRECTION, "--ctdir"),
];

/// Whether a state mask holds the flow's state; the NAT bits are not known.
fn state_in_mask(mask: u16, flow: &Flow, what: &str) -> Tri {
    if mask & state_bit(flow.state) != 0 {
        Tri::Yes
    } else if mask & (ct_state::SNAT | ct_state::DNAT) != 0 {
        Tri::Maybe(format!("{what} SNAT/DNAT cannot be decided"))
    } else {
        Tri::No
    }
}

/// xt_conntrack's conntrack_mt (revisions 1 to 3; `-m state` is revision
/// 3 with the alias flag).
fn conntrack_matches(rev: u8, data: &[u8], flow: &Flow) -> Result<Tri, String> {
    let l = match rev {
        1..=3 => &CT_LAYOUTS[usize::from(rev) - 1],
        _ => return Err(format!("revision {rev} is not known to the kernel")),
    };
    let r = Reader::new(data, l.size)?;
    let flags = u32::from(r.u16(l.match_flags)?);
    let inv = u32::from(r.u16(l.invert_flags)?);
    let mut result = Tri::Yes;
    if flags & XT_CONNTRACK_STATE != 0 {
        let mask = if l.mask_u8 {
            u16::from(r.u8(l.state_mask)?)
        } else {
            r.u16(l.state_mask)?
        };
        let what = if flags & XT_CONNTRACK_STATE_ALIAS != 0 {
            "-m state --state"
        } else {
            "-m conntrack --ctstate"
        };
        result = state_in_mask(mask, flow, what).invert(inv & XT_CONNTRACK_STATE != 0);
    }
    if flags & XT_CONNTRACK_PROTO != 0 {
        let same = r.u16(l.l4proto)? == u16::from(flow.proto);
        result = result.and(Tri::from_bool(same).invert(inv & XT_CONNTRACK_PROTO != 0));
    }
    for (flag, opt) in CT_UNDECIDABLE {
        if flags & flag != 0 {
            result = result.and(Tri::Maybe(format!("-m conntrack {opt} cannot be decided")));
        }
    }
    Ok(result)
}

/// xt_state's state_mt (the kernel's own `state` match; inversion is the
/// complemented mask).
fn state_matches(data: &[u8], flow: &Flow) -> Result<Tri, String> {
    let r = Reader::new(data, size_of::<xt_state_info>())?;
    let mask = r.u32(offset_of!(xt_state_info, statemask))?;
    Ok(state_in_mask(mask as u16, flow, "-m state --state"))
}

mod iprange_field {
    use super::*;
    pub const SRC_MIN: usize = offset_of!(xt_iprange_mtinfo, src_min);
    pub const SRC_MAX: usize = offset_of!(xt_iprange_mtinfo, src_max);
    pub const DST_MIN: usize = offset_of!(xt_iprange_mtinfo, dst_min);
    pub const DST_MAX: usize = offset_of!(xt_iprange_mtinfo, dst_max);
    pub const FLAGS: usize = offset_of!(xt_iprange_mtinfo, flags);
}

// Flags of linux/netfilter/xt_iprange.h (an anonymous enum bindgen does not keep).
const IPRANGE_SRC: u8 = 1 << 0;
const IPRANGE_DST: u8 = 1 << 1;
const IPRANGE_SRC_INV: u8 = 1 << 4;
const IPRANGE_DST_INV: u8 = 1 << 5;

/// An `nf_inet_addr` as a number (IPv4 in its first 4 bytes), big-endian.
fn inet_addr(r: &Reader, off: usize, family: Family) -> Result<u128, String> {
    Ok(match family {
        Family::V4 => u128::from(r.be32(off)?),
        Family::V6 => {
            let mut a = [0u8; size_of::<u128>()];
            a.copy_from_slice(r.bytes(off, size_of::<u128>())?);
            u128::from_be_bytes(a)
        }
    })
}

/// xt_iprange's iprange_mt4 / iprange_mt6.
fn iprange_matches(data: &[u8], flow: &Flow) -> Result<Tri, String> {
    let r = Reader::new(data, size_of::<xt_iprange_mtinfo>())?;
    let flags = r.u8(iprange_field::FLAGS)?;
    let within = |addr: &IpAddr, lo: usize, hi: usize, inv: u8| -> Result<bool, String> {
        let a = addr_bits(addr);
        let inside = inet_addr(&r, lo, flow.family)? <= a && a <= inet_addr(&r, hi, flow.family)?;
        Ok(inside ^ (flags & inv != 0))
    };
    if flags & IPRANGE_SRC != 0
        && !within(
            &flow.src,
            iprange_field::SRC_MIN,
            iprange_field::SRC_MAX,
            IPRANGE_SRC_INV,
        )?
    {
        return Ok(Tri::No);
    }
    if flags & IPRANGE_DST != 0
        && !within(
            &flow.dst,
            iprange_field::DST_MIN,
            iprange_field::DST_MAX,
            IPRANGE_DST_INV,
        )?
    {
        return Ok(Tri::No);
    }
    Ok(Tri::Yes)
}

mod addrtype_field {
    use super::*;
    pub const SOURCE: usize = offset_of!(xt_addrtype_info_v1, source);
    pub const DEST: usize = offset_of!(xt_addrtype_info_v1, dest);
    pub const FLAGS: usize = offset_of!(xt_addrtype_info_v1, flags);
    pub const V0_SOURCE: usize = offset_of!(xt_addrtype_info, source);
    pub const V0_DEST: usize = offset_of!(xt_addrtype_info, dest);
    pub const V0_INVERT_SOURCE: usize = offset_of!(xt_addrtype_info, invert_source);
    pub const V0_INVERT_DEST: usize = offset_of!(xt_addrtype_info, invert_dest);
}

/// The route types an IPv4 address can have without knowing the routes:
/// `0.0.0.0/8` and `255.255.255.255` are BROADCAST and `224.0.0.0/4`
/// MULTICAST before any lookup (`__inet_dev_addr_type`); anything else is
/// what the routes say, except UNSPEC and MULTICAST — and not BROADCAST
/// either for TCP, which runs between unicast addresses only.
fn ipv4_types(a: Ipv4Addr, proto: u8) -> u32 {
    if a.octets()[0] == 0 || a.is_broadcast() {
        XT_ADDRTYPE_BROADCAST
    } else if a.is_multicast() {
        XT_ADDRTYPE_MULTICAST
    } else {
        let every = (XT_ADDRTYPE_XRESOLVE << 1) - 1;
        let mut t = every & !(XT_ADDRTYPE_UNSPEC | XT_ADDRTYPE_MULTICAST);
        if proto == IPPROTO_TCP as u8 {
            t &= !XT_ADDRTYPE_BROADCAST;
        }
        t
    }
}

/// addrtype_mt_v1's match_type for IPv4: the one type the address has must
/// be in the mask.
fn ipv4_type_matches(a: Ipv4Addr, proto: u8, mask: u32) -> Tri {
    let possible = ipv4_types(a, proto);
    if possible & mask == 0 {
        Tri::No
    } else if possible & !mask == 0 {
        Tri::Yes
    } else {
        Tri::Maybe("-m addrtype cannot be decided without the routes".into())
    }
}

/// addrtype_mt6's match_type6: address-class tests, then a route lookup
/// for LOCAL, ANYCAST and UNREACHABLE.
fn ipv6_type_matches(a: Ipv6Addr, mask: u32) -> Tri {
    let multicast = a.is_multicast();
    let any = a.is_unspecified();
    let unicast = !multicast && !any && a.to_ipv4_mapped().is_none();
    if (mask & XT_ADDRTYPE_MULTICAST != 0 && !multicast)
        || (mask & XT_ADDRTYPE_UNICAST != 0 && !unicast)
        || (mask & XT_ADDRTYPE_UNSPEC != 0 && !any)
    {
        return Tri::No;
    }
    if mask & (XT_ADDRTYPE_LOCAL | XT_ADDRTYPE_ANYCAST | XT_ADDRTYPE_UNREACHABLE) != 0 {
        return Tri::Maybe("-m addrtype cannot be decided without the routes".into());
    }
    Tri::Yes
}

fn type_matches(a: &IpAddr, proto: u8, mask: u16) -> Tri {
    match a {
        IpAddr::V4(a) => ipv4_type_matches(*a, proto, u32::from(mask)),
        IpAddr::V6(a) => ipv6_type_matches(*a, u32::from(mask)),
    }
}

/// xt_addrtype's addrtype_mt_v0 / addrtype_mt_v1.
fn addrtype_matches(rev: u8, data: &[u8], flow: &Flow) -> Result<Tri, String> {
    let (source, dest, inv_src, inv_dst) = match rev {
        0 => {
            let r = Reader::new(data, size_of::<xt_addrtype_info>())?;
            (
                r.u16(addrtype_field::V0_SOURCE)?,
                r.u16(addrtype_field::V0_DEST)?,
                r.u32(addrtype_field::V0_INVERT_SOURCE)? != 0,
                r.u32(addrtype_field::V0_INVERT_DEST)? != 0,
            )
        }
        1 => {
            let r = Reader::new(data, size_of::<xt_addrtype_info_v1>())?;
            let flags = r.u32(addrtype_field::FLAGS)?;
            (
                r.u16(addrtype_field::SOURCE)?,
                r.u16(addrtype_field::DEST)?,
                flags & XT_ADDRTYPE_INVERT_SOURCE != 0,
                flags & XT_ADDRTYPE_INVERT_DEST != 0,
            )
        }
        _ => return Err(format!("revision {rev} is not known")),
    };
    let mut result = Tri::Yes;
    if source != 0 {
        result = type_matches(&flow.src, flow.proto, source).invert(inv_src);
    }
    if dest != 0 {
        result = result.and(type_matches(&flow.dst, flow.proto, dest).invert(inv_dst));
    }
    Ok(result)
}

/// Revision 0 of mark and connmark (`struct xt_mark_info`, gone from the
/// kernel headers; libxt_mark.c keeps it).
#[repr(C)]
struct MarkInfoV0 {
    mark: c_ulong,
    mask: c_ulong,
    invert: u8,
}

mod mark_field {
    use super::*;
    pub const MARK: usize = offset_of!(xt_mark_mtinfo1, mark);
    pub const MASK: usize = offset_of!(xt_mark_mtinfo1, mask);
    pub const INVERT: usize = offset_of!(xt_mark_mtinfo1, invert);
    pub const V0_MARK: usize = offset_of!(MarkInfoV0, mark);
    pub const V0_MASK: usize = offset_of!(MarkInfoV0, mask);
    pub const V0_INVERT: usize = offset_of!(MarkInfoV0, invert);
}

// connmark revision 1 is read with mark's offsets.
const _: () = {
    assert!(size_of::<xt_connmark_mtinfo1>() == size_of::<xt_mark_mtinfo1>());
    assert!(offset_of!(xt_connmark_mtinfo1, mark) == mark_field::MARK);
    assert!(offset_of!(xt_connmark_mtinfo1, mask) == mark_field::MASK);
    assert!(offset_of!(xt_connmark_mtinfo1, invert) == mark_field::INVERT);
};

/// xt_mark's mark_mt / xt_connmark's connmark_mt: `(mark & mask) == value`.
fn mark_matches(name: &str, rev: u8, data: &[u8], mark: Option<u32>) -> Result<Tri, String> {
    let (value, mask, invert) = match rev {
        0 => {
            let r = Reader::new(data, size_of::<MarkInfoV0>())?;
            let ulong = |off: usize| -> Result<c_ulong, String> {
                let mut a = [0u8; size_of::<c_ulong>()];
                a.copy_from_slice(r.bytes(off, size_of::<c_ulong>())?);
                Ok(c_ulong::from_ne_bytes(a))
            };
            (
                ulong(mark_field::V0_MARK)?,
                ulong(mark_field::V0_MASK)?,
                r.u8(mark_field::V0_INVERT)? != 0,
            )
        }
        1 => {
            let r = Reader::new(data, size_of::<xt_mark_mtinfo1>())?;
            (
                c_ulong::from(r.u32(mark_field::MARK)?),
                c_ulong::from(r.u32(mark_field::MASK)?),
                r.u8(mark_field::INVERT)? != 0,
            )
        }
        _ => return Err(format!("revision {rev} is not known")),
    };
    let Some(mark) = mark else {
        return Ok(Tri::Maybe(format!("-m {name}: the mark is not known")));
    };
    Ok(Tri::from_bool((c_ulong::from(mark) & mask) == value).invert(invert))
}

/// The whole rule: header, then each match in order.
fn rule_matches(rule: &Rule, ctx: &Context) -> Tri {
    let mut result = header_matches(rule, ctx.flow);
    for m in &rule.matches {
        if result == Tri::No {
            break;
        }
        result = result.and(ext_matches(m, ctx));
    }
    result
}

// ---------------------------------------------------------------------------
// Targets.

/// Target extensions that return XT_CONTINUE: the walk goes on.
const CONTINUING: &[&str] = &[
    "LOG",
    "NFLOG",
    "ULOG",
    "MARK",
    "CONNMARK",
    "CT",
    "TCPMSS",
    "CHECKSUM",
    "CLASSIFY",
    "DSCP",
    "TOS",
    "TTL",
    "HL",
    "ECN",
    "SECMARK",
    "CONNSECMARK",
    "IDLETIMER",
    "LED",
    "RATEEST",
    "TCPOPTSTRIP",
    "TRACE",
    "AUDIT",
    "SET",
    "TEE",
    "HMARK",
    "SNPT",
    "DNPT",
];

/// NAT targets: NF_ACCEPT once the mapping is set up.
const NAT_TARGETS: &[&str] = &["SNAT", "DNAT", "MASQUERADE", "REDIRECT", "NETMAP"];

/// What a rule's target does to the walk.
enum Effect<'a> {
    /// Count and go on to the next rule.
    Continue,
    /// End the walk: (outcome, what the rule does, for the path).
    End(Outcome, String),
    /// Back to the calling chain.
    Return,
    /// Into a user chain and back.
    Jump(&'a str),
    /// Into a user chain, returning to this chain's caller.
    Goto(&'a str),
}

fn effect(target: &Target) -> Effect<'_> {
    match target {
        Target::Fallthrough => Effect::Continue,
        Target::Verdict(Verdict::Accept) => Effect::End(Outcome::Accept, "accepts".into()),
        Target::Verdict(Verdict::Drop) => Effect::End(Outcome::Drop, "drops".into()),
        Target::Verdict(Verdict::Queue) => {
            Effect::End(Outcome::Other("QUEUE".into()), "queues (-j QUEUE)".into())
        }
        Target::Verdict(Verdict::Return) => Effect::Return,
        Target::Jump(c) => Effect::Jump(c),
        Target::Goto(c) => Effect::Goto(c),
        Target::Extension(e) => {
            let name: &str = &e.name;
            if name == "REJECT" {
                Effect::End(Outcome::Reject, "rejects".into())
            } else if CONTINUING.contains(&name) {
                Effect::Continue
            } else if NAT_TARGETS.contains(&name) {
                Effect::End(Outcome::Accept, format!("accepts (-j {name})"))
            } else {
                Effect::End(Outcome::Other(name.into()), format!("ends in -j {name}"))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The walk.

/// Undecidable matches a branch of the walk took, capped at MAX_ASSUMED.
#[derive(Debug, Clone, Default)]
struct Assumed {
    items: Vec<Rc<str>>,
    more: usize,
}

impl Assumed {
    fn count(&self) -> usize {
        self.items.len() + self.more
    }

    fn with(&self, item: Rc<str>) -> Assumed {
        let mut a = self.clone();
        a.push(item);
        a
    }

    fn push(&mut self, item: Rc<str>) {
        if self.items.len() < MAX_ASSUMED {
            self.items.push(item);
        } else {
            self.more += 1;
        }
    }

    fn then(&self, other: &Assumed) -> Assumed {
        let mut a = self.clone();
        for i in &other.items {
            a.push(i.clone());
        }
        a.more += other.more;
        a
    }

    /// The one with fewer assumptions (the surer way to get somewhere).
    fn fewer(a: Option<Assumed>, b: Assumed) -> Assumed {
        match a {
            Some(a) if a.count() <= b.count() => a,
            _ => b,
        }
    }
}

/// One end of the walk of a chain, relative to that chain's entry.
#[derive(Debug, Clone)]
struct End {
    outcome: Outcome,
    chain: Rc<str>,
    rule: Option<usize>,
    line: Option<usize>,
    why: String,
    via: Vec<Rc<str>>,
    assumed: Assumed,
}

/// Everything the walk of one chain can come to.
#[derive(Debug, Clone, Default)]
struct ChainResult {
    outcomes: BTreeSet<Outcome>,
    /// Ends other than ACCEPT, at most MAX_PATHS per outcome.
    ends: Vec<End>,
    /// `Some` when the chain can return to its caller, with the assumptions
    /// of the surest way to do so.
    returns: Option<Assumed>,
}

impl ChainResult {
    fn add(&mut self, end: End) {
        self.outcomes.insert(end.outcome.clone());
        if end.outcome != Outcome::Accept
            && self
                .ends
                .iter()
                .filter(|e| e.outcome == end.outcome)
                .count()
                < MAX_PATHS
        {
            self.ends.push(end);
        }
    }

    fn returns(&mut self, assumed: Assumed) {
        self.returns = Some(Assumed::fewer(self.returns.take(), assumed));
    }
}

/// `rule 3 of INPUT (line 12)`.
fn rule_ref(chain: &str, index: usize, rule: &Rule) -> String {
    match rule.line() {
        Some(l) => format!("rule {} of {chain} (line {l})", index + 1),
        None => format!("rule {} of {chain}", index + 1),
    }
}

struct Walker<'a> {
    table: &'a Table,
    ctx: Context<'a>,
    memo: HashMap<&'a str, Rc<ChainResult>>,
    /// The chains being walked, outermost first.
    active: Vec<&'a str>,
}

impl<'a> Walker<'a> {
    /// Walks a chain that `here` jumps or goes to (memoized: the walk of a
    /// chain does not depend on its caller). A loop, a depth beyond
    /// MAX_DEPTH or a missing chain is an error: (outcome name, why).
    fn call(
        &mut self,
        name: &'a str,
        here: &str,
    ) -> Result<Rc<ChainResult>, (&'static str, String)> {
        if let Some(r) = self.memo.get(name) {
            return Ok(r.clone());
        }
        if self.active.contains(&name) {
            return Err((
                "loop",
                format!("{here} jumps back to {name}: a loop (the kernel refuses such a table)"),
            ));
        }
        if self.active.len() >= MAX_DEPTH {
            return Err((
                "too deep",
                format!("{here} jumps to {name}, more than {MAX_DEPTH} chains deep"),
            ));
        }
        if self.table.chain(name).is_none() {
            return Err((
                "missing chain",
                format!("{here} jumps to {name}, which does not exist"),
            ));
        }
        let r = Rc::new(self.walk(name));
        self.memo.insert(name, r.clone());
        Ok(r)
    }

    /// Walks one chain from its first rule, as if called.
    fn walk(&mut self, name: &'a str) -> ChainResult {
        let table = self.table;
        let mut res = ChainResult::default();
        let Some(chain) = table.chain(name) else {
            return res;
        };
        self.active.push(name);
        let cname: Rc<str> = Rc::from(name);
        // The assumptions of the branch that goes on to the next rule.
        let mut cur = Some(Assumed::default());
        for (i, rule) in chain.rules.iter().enumerate() {
            let Some(before) = cur.take() else { break };
            let (taken, skipped) = match rule_matches(rule, &self.ctx) {
                Tri::No => {
                    cur = Some(before);
                    continue;
                }
                Tri::Yes => (before.clone(), None),
                Tri::Maybe(why) => {
                    let at = rule_ref(name, i, rule);
                    (
                        before.with(Rc::from(format!("{at}: {why}: followed as matching"))),
                        Some(
                            before.with(Rc::from(format!("{at}: {why}: followed as not matching"))),
                        ),
                    )
                }
            };
            let here = rule_ref(name, i, rule);
            // Where the matched branch goes on from, if it does.
            let mut next: Option<Assumed> = None;
            match effect(&rule.target) {
                Effect::Continue => {
                    // Both branches go on: nothing to assume.
                    cur = Some(before);
                    continue;
                }
                Effect::End(outcome, does) => res.add(End {
                    outcome,
                    chain: cname.clone(),
                    rule: Some(i + 1),
                    line: rule.line(),
                    why: format!("{here} {does}"),
                    via: Vec::new(),
                    assumed: taken,
                }),
                Effect::Return => res.returns(taken),
                Effect::Jump(to) | Effect::Goto(to) => {
                    let goto = matches!(rule.target, Target::Goto(_));
                    let sub = match self.call(to, &here) {
                        Ok(sub) => sub,
                        Err((outcome, why)) => {
                            res.add(End {
                                outcome: Outcome::Other(outcome.into()),
                                chain: cname.clone(),
                                rule: Some(i + 1),
                                line: rule.line(),
                                why,
                                via: Vec::new(),
                                assumed: taken,
                            });
                            cur = skipped;
                            continue;
                        }
                    };
                    let hop: Rc<str> = Rc::from(if goto {
                        format!("{here} -g {to}")
                    } else {
                        format!("{here} -j {to}")
                    });
                    res.outcomes.extend(sub.outcomes.iter().cloned());
                    for e in &sub.ends {
                        let mut e = e.clone();
                        e.via.insert(0, hop.clone());
                        e.assumed = taken.then(&e.assumed);
                        res.add(e);
                    }
                    if let Some(ra) = &sub.returns {
                        if goto {
                            res.returns(taken.then(ra));
                        } else {
                            next = Some(taken.then(ra));
                        }
                    }
                }
            }
            cur = match (skipped, next) {
                (None, next) => next,
                (Some(s), None) => Some(s),
                (Some(s), Some(n)) => Some(Assumed::fewer(Some(n), s)),
            };
        }
        if let Some(end) = cur {
            res.returns(end);
        }
        self.active.pop();
        res
    }
}

/// Every verdict `flow` can meet when it enters `chain` of `table`, and how.
///
/// The walk follows the kernel: rules in order, jumps into user chains and
/// back (RETURN or the end of the chain), gotos that return to the caller's
/// caller, non-terminating targets (LOG, MARK, CT, ...) that go on, and the
/// policy at the end of a built-in chain (RETURN there also reaches the
/// policy). A rule that cannot be decided forks the walk both ways. When
/// `chain` is a user chain, leaving it gives [`Outcome::Return`]. A chain
/// the table does not have gives ACCEPT (the table is not on that hook).
///
/// `table` must be of `flow.family`: rules of the other family never match.
pub fn evaluate(table: &Table, chain: &str, flow: &Flow) -> Evaluation {
    let sets = |name: &str| {
        table
            .chains
            .iter()
            .flat_map(|c| &c.rules)
            .any(|r| matches!(&r.target, Target::Extension(e) if e.name == name))
    };
    let connmark_changes = sets("CONNMARK");
    let ctx = Context {
        flow,
        mark: flow.mark.filter(|_| !sets("MARK") && !connmark_changes),
        connmark: flow.connmark.filter(|_| !connmark_changes),
    };
    let Some(entry) = table.chain(chain) else {
        return Evaluation {
            outcomes: BTreeSet::from([Outcome::Accept]),
            paths: Vec::new(),
        };
    };
    let mut walker = Walker {
        table,
        ctx,
        memo: HashMap::new(),
        active: Vec::new(),
    };
    let mut res = walker.walk(&entry.name);
    if let Some(assumed) = res.returns.take() {
        let (outcome, why) = match entry.policy {
            Some(p) => {
                let outcome = match p {
                    Verdict::Accept | Verdict::Return => Outcome::Accept,
                    Verdict::Drop => Outcome::Drop,
                    Verdict::Queue => Outcome::Other("QUEUE".into()),
                };
                (outcome, format!("policy {} of {}", p.name(), entry.name))
            }
            None => (Outcome::Return, format!("the end of {}", entry.name)),
        };
        res.add(End {
            outcome,
            chain: Rc::from(entry.name.as_str()),
            rule: None,
            line: None,
            why,
            via: Vec::new(),
            assumed,
        });
    }
    Evaluation {
        outcomes: res.outcomes,
        paths: res
            .ends
            .into_iter()
            .map(|e| Path {
                outcome: e.outcome,
                chain: e.chain.to_string(),
                rule: e.rule,
                line: e.line,
                why: e.why,
                via: e.via.iter().map(|v| v.to_string()).collect(),
                assumed: e.assumed.items.iter().map(|a| a.to_string()).collect(),
                more_assumed: e.assumed.more,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::build_table;
    use crate::ext::{AssumeLatest, Kind, RevisionSource};
    use crate::restore::{parse, RestoreOptions};

    /// A filter table from iptables-restore text (the rules only; chains
    /// `INPUT` (policy as given), `FORWARD`, `OUTPUT` are declared here).
    fn filter_with(family: Family, policy: &str, rules: &str, revs: &dyn RevisionSource) -> Table {
        let text = format!(
            "*filter\n:INPUT {policy} [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n{rules}COMMIT\n"
        );
        let script = parse(&text, &RestoreOptions::new(family), revs).expect("rules parse");
        build_table(&script, false, Table::new("filter").unwrap()).expect("table builds")
    }

    fn filter(policy: &str, rules: &str) -> Table {
        filter_with(Family::V4, policy, rules, &AssumeLatest)
    }

    fn ssh() -> Flow {
        Flow::from_ssh_connection("198.51.100.7 50022 203.0.113.1 22").unwrap()
    }

    fn outcomes(table: &Table, flow: &Flow) -> Vec<Outcome> {
        evaluate(table, "INPUT", flow)
            .outcomes
            .into_iter()
            .collect()
    }

    use Outcome::{Accept, Drop, Reject};

    const ESTABLISHED: &str = "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n";

    #[test]
    fn policy_drop_cuts_the_session() {
        let t = filter("DROP", "-A INPUT -p tcp --dport 80 -j ACCEPT\n");
        let e = evaluate(&t, "INPUT", &ssh());
        assert_eq!(e.outcomes, BTreeSet::from([Drop]));
        assert_eq!(e.paths.len(), 1);
        let p = &e.paths[0];
        assert_eq!(
            (p.outcome.clone(), p.chain.as_str(), p.rule),
            (Drop, "INPUT", None)
        );
        assert_eq!(p.to_string(), "policy DROP of INPUT");
        assert!(!e.always_accepts());
    }

    #[test]
    fn ctstate_established_keeps_it() {
        let t = filter(
            "DROP",
            &format!("-A INPUT -p tcp --dport 80 -j ACCEPT\n{ESTABLISHED}"),
        );
        let e = evaluate(&t, "INPUT", &ssh());
        assert!(e.always_accepts(), "{e:?}");
        assert!(e.paths.is_empty());
        // ! --ctstate ESTABLISHED does not match it.
        let t = filter(
            "ACCEPT",
            "-A INPUT -m conntrack ! --ctstate ESTABLISHED -j DROP\n",
        );
        assert_eq!(outcomes(&t, &ssh()), [Accept]);
        // --ctproto is decided too.
        let t = filter(
            "DROP",
            "-A INPUT -m conntrack --ctstate ESTABLISHED --ctproto udp -j ACCEPT\n",
        );
        assert_eq!(outcomes(&t, &ssh()), [Drop]);
    }

    /// The kernel's own `state` match (xt_state), built by its codec.
    fn xt_state(states: &str) -> Extension {
        let codec = crate::ext::by_kernel_name(Kind::Match, Family::V4, "state").unwrap();
        let opts = [crate::ext::OptValue {
            name: "state",
            invert: false,
            args: vec![states].into(),
        }];
        let ip = crate::rules::IpMatch::any(Family::V4);
        let ctx = crate::ext::RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let data = codec.parse(0, &opts, &ctx).unwrap();
        crate::ext::make_extension(codec, 0, data)
    }

    #[test]
    fn state_match_both_ways() {
        let mut t = filter("DROP", "-A INPUT -m state --state ESTABLISHED -j ACCEPT\n");
        let mut new = ssh();
        new.state = CtState::New;
        let m = &t.chain("INPUT").unwrap().rules[0].matches[0];
        assert_eq!((&*m.name, m.revision), ("conntrack", 3));
        assert_eq!(outcomes(&t, &ssh()), [Accept]);
        assert_eq!(outcomes(&t, &new), [Drop]);
        // The same with the kernel's xt_state.
        t.chain_mut("INPUT").unwrap().rules[0].matches[0] = xt_state("ESTABLISHED");
        assert_eq!(outcomes(&t, &ssh()), [Accept]);
        assert_eq!(outcomes(&t, &new), [Drop]);
        t.chain_mut("INPUT").unwrap().rules[0].matches[0] = xt_state("NEW,RELATED");
        assert_eq!(outcomes(&t, &ssh()), [Drop]);
        assert_eq!(outcomes(&t, &new), [Accept]);
    }

    #[test]
    fn source_drop_before_the_accept() {
        let t = filter(
            "DROP",
            &format!("-A INPUT -s 198.51.100.0/24 -j DROP\n{ESTABLISHED}"),
        );
        let e = evaluate(&t, "INPUT", &ssh());
        assert_eq!(e.outcomes, BTreeSet::from([Drop]));
        let p = &e.paths[0];
        assert_eq!((p.rule, p.line), (Some(1), Some(5)));
        assert_eq!(p.to_string(), "rule 1 of INPUT (line 5) drops");
        // From elsewhere the session is kept.
        let other = Flow::parse("tcp:192.0.2.9:40000->203.0.113.1:22").unwrap();
        assert_eq!(outcomes(&t, &other), [Accept]);
    }

    #[test]
    fn inverted_source() {
        let t = filter("ACCEPT", "-A INPUT ! -s 198.51.100.0/24 -j DROP\n");
        assert_eq!(outcomes(&t, &ssh()), [Accept]);
        let other = Flow::parse("tcp:192.0.2.9:40000->203.0.113.1:22").unwrap();
        assert_eq!(outcomes(&t, &other), [Drop]);
        let t = filter("ACCEPT", "-A INPUT ! -d 203.0.113.1 -j DROP\n");
        assert_eq!(outcomes(&t, &ssh()), [Accept]);
        let t = filter(
            "ACCEPT",
            "-A INPUT ! -p tcp -j DROP\n-A INPUT -p udp -j DROP\n",
        );
        assert_eq!(outcomes(&t, &ssh()), [Accept]);
    }

    #[test]
    fn unknown_interface_goes_both_ways() {
        let t = filter(
            "ACCEPT",
            &format!("-A INPUT -i eth0 -j DROP\n{ESTABLISHED}"),
        );
        let e = evaluate(&t, "INPUT", &ssh());
        assert_eq!(e.outcomes, BTreeSet::from([Accept, Drop]));
        let p = &e.paths[0];
        assert_eq!(p.rule, Some(1));
        assert!(
            p.assumed[0].contains("-i eth0: the flow's interface is not known"),
            "{p}"
        );
        assert!(p.assumed[0].ends_with("followed as matching"), "{p}");

        let mut flow = ssh();
        flow.in_iface = Some("eth0".into());
        assert_eq!(outcomes(&t, &flow), [Drop]);
        flow.in_iface = Some("eth1".into());
        assert_eq!(outcomes(&t, &flow), [Accept]);
        // Wildcards and inversion.
        let t = filter("ACCEPT", "-A INPUT -i eth+ -j DROP\n");
        assert_eq!(outcomes(&t, &flow), [Drop]);
        let t = filter("ACCEPT", "-A INPUT ! -i eth+ -j DROP\n");
        assert_eq!(outcomes(&t, &flow), [Accept]);
        let t = filter("ACCEPT", "-A INPUT -i eth -j DROP\n");
        assert_eq!(outcomes(&t, &flow), [Accept]);
        // No interface at all (OUTPUT's in-interface).
        flow.in_iface = Some(String::new());
        let t = filter("ACCEPT", "-A INPUT -i eth+ -j DROP\n");
        assert_eq!(outcomes(&t, &flow), [Accept]);
    }

    #[test]
    fn recent_is_followed_both_ways() {
        let t = filter(
            "DROP",
            &format!("-A INPUT -m recent --name bad --rcheck -j DROP\n{ESTABLISHED}"),
        );
        let e = evaluate(&t, "INPUT", &ssh());
        assert_eq!(e.outcomes, BTreeSet::from([Accept, Drop]));
        assert_eq!(e.paths.len(), 1);
        assert_eq!(
            e.paths[0].to_string(),
            "rule 1 of INPUT (line 5) drops, if rule 1 of INPUT (line 5): \
             -m recent cannot be decided: followed as matching"
        );
        // A non-terminating target after an undecidable match assumes nothing.
        let t = filter(
            "DROP",
            &format!("-A INPUT -m limit --limit 1/s -j LOG\n{ESTABLISHED}"),
        );
        assert_eq!(outcomes(&t, &ssh()), [Accept]);
    }

    #[test]
    fn policy_reached_only_past_an_undecidable_rule() {
        let t = filter("DROP", "-A INPUT -m recent --name ok --rcheck -j ACCEPT\n");
        let e = evaluate(&t, "INPUT", &ssh());
        assert_eq!(e.outcomes, BTreeSet::from([Accept, Drop]));
        assert_eq!(e.paths[0].why, "policy DROP of INPUT");
        assert!(e.paths[0].assumed[0].ends_with("followed as not matching"));
    }

    #[test]
    fn user_chain_with_return() {
        let rules = ":svc - [0:0]\n\
                     -A INPUT -j svc\n\
                     -A svc -s 10.0.0.0/8 -j RETURN\n\
                     -A svc -p tcp --dport 22 -j ACCEPT\n";
        let t = filter("DROP", rules);
        assert_eq!(outcomes(&t, &ssh()), [Accept]);
        let inside = Flow::parse("tcp:10.1.2.3:40000->203.0.113.1:22").unwrap();
        let e = evaluate(&t, "INPUT", &inside);
        assert_eq!(e.outcomes, BTreeSet::from([Drop]));
        assert_eq!(e.paths[0].why, "policy DROP of INPUT");
        // A drop inside the chain names the jump that got there.
        let t = filter(
            "ACCEPT",
            ":svc - [0:0]\n-A INPUT -j svc\n-A svc -p tcp --dport 22 -j DROP\n",
        );
        let e = evaluate(&t, "INPUT", &ssh());
        assert_eq!(e.outcomes, BTreeSet::from([Drop]));
        assert_eq!(
            e.paths[0].to_string(),
            "rule 1 of svc (line 7) drops (via rule 1 of INPUT (line 6) -j svc)"
        );
        // The user chain on its own ends in Return.
        assert_eq!(
            evaluate(&t, "svc", &inside).outcomes,
            BTreeSet::from([Drop])
        );
        let t = filter("DROP", rules);
        assert_eq!(
            evaluate(&t, "svc", &inside).outcomes,
            BTreeSet::from([Outcome::Return])
        );
    }

    #[test]
    fn return_in_a_builtin_chain_reaches_the_policy() {
        let t = filter("DROP", &format!("-A INPUT -p tcp -j RETURN\n{ESTABLISHED}"));
        assert_eq!(outcomes(&t, &ssh()), [Drop]);
    }

    #[test]
    fn goto_returns_to_the_callers_caller() {
        let chains = ":A - [0:0]\n:B - [0:0]\n-A INPUT -j A\n-A INPUT -j ACCEPT\n";
        let t = filter(
            "DROP",
            &format!("{chains}-A A -g B\n-A A -j DROP\n-A B -p udp -j DROP\n"),
        );
        assert_eq!(outcomes(&t, &ssh()), [Accept]);
        // With -j instead, B returns into A, which drops.
        let t = filter(
            "DROP",
            &format!("{chains}-A A -j B\n-A A -j DROP\n-A B -p udp -j DROP\n"),
        );
        assert_eq!(outcomes(&t, &ssh()), [Drop]);
        // A goto from the built-in chain returns to its policy.
        let t = filter("DROP", ":B - [0:0]\n-A INPUT -g B\n-A INPUT -j ACCEPT\n");
        let e = evaluate(&t, "INPUT", &ssh());
        assert_eq!(e.outcomes, BTreeSet::from([Drop]));
        assert_eq!(e.paths[0].why, "policy DROP of INPUT");
    }

    #[test]
    fn undecidable_jump_continues_both_ways() {
        let rules = ":X - [0:0]\n\
                     -A INPUT -m recent --name x --rcheck -j X\n\
                     -A INPUT -p tcp --dport 22 -j ACCEPT\n\
                     -A X -j REJECT\n";
        let t = filter("DROP", rules);
        let e = evaluate(&t, "INPUT", &ssh());
        assert_eq!(e.outcomes, BTreeSet::from([Accept, Reject]));
        let p = &e.paths[0];
        assert_eq!(p.via, ["rule 1 of INPUT (line 6) -j X"]);
        assert_eq!(p.assumed.len(), 1);
    }

    #[test]
    fn reject_and_other_targets() {
        let t = filter(
            "ACCEPT",
            "-A INPUT -p tcp --dport 22 -j REJECT --reject-with tcp-reset\n",
        );
        assert_eq!(outcomes(&t, &ssh()), [Reject]);
        let t = filter("ACCEPT", "-A INPUT -p tcp -j NFQUEUE --queue-num 3\n");
        let e = evaluate(&t, "INPUT", &ssh());
        assert_eq!(
            e.outcomes,
            BTreeSet::from([Outcome::Other("NFQUEUE".into())])
        );
        assert_eq!(
            e.paths[0].why,
            "rule 1 of INPUT (line 5) ends in -j NFQUEUE"
        );
        let t = filter("ACCEPT", "-A INPUT -j QUEUE\n");
        assert_eq!(outcomes(&t, &ssh()), [Outcome::Other("QUEUE".into())]);
        // Non-terminating targets go on.
        let t = filter(
            "DROP",
            &format!(
                "-A INPUT -j LOG\n-A INPUT -j MARK --set-mark 1\n-A INPUT -j NFLOG\n{ESTABLISHED}"
            ),
        );
        assert_eq!(outcomes(&t, &ssh()), [Accept]);
    }

    #[test]
    fn multiport_ports_ranges_inversion() {
        let cases = [
            ("--dports 80,443,22", Accept),
            ("--dports 1000:2000,20:30", Accept),
            ("--dports 80,443", Drop),
            ("! --dports 80,443", Accept),
            ("! --dports 22", Drop),
            ("--sports 50022", Accept),
            ("--ports 50000:50100", Accept),
            ("--ports 23,24", Drop),
        ];
        for (opts, want) in cases {
            let rule = format!("-A INPUT -p tcp -m multiport {opts} -j ACCEPT\n");
            let t = filter("DROP", &rule);
            assert_eq!(outcomes(&t, &ssh()), [want], "{opts}");
        }
    }

    /// Revisions for a kernel with only multiport revision 0.
    struct MultiportV0;
    impl RevisionSource for MultiportV0 {
        fn supported(&self, _: Family, _: Kind, name: &str, rev: u8) -> bool {
            name != "multiport" || rev == 0
        }
    }

    #[test]
    fn multiport_revision_0() {
        for (opts, want) in [
            ("--dports 80,22", Accept),
            ("--sports 22", Drop),
            ("--ports 22", Accept),
        ] {
            let rule = format!("-A INPUT -p tcp -m multiport {opts} -j ACCEPT\n");
            let t = filter_with(Family::V4, "DROP", &rule, &MultiportV0);
            assert_eq!(t.chain("INPUT").unwrap().rules[0].matches[0].revision, 0);
            assert_eq!(outcomes(&t, &ssh()), [want], "{opts}");
        }
    }

    #[test]
    fn new_login_dropped_while_established_kept() {
        let rules =
            format!("{ESTABLISHED}-A INPUT -p tcp --syn --dport 22 -s 10.0.0.0/8 -j ACCEPT\n");
        let t = filter("DROP", &rules);
        assert_eq!(outcomes(&t, &ssh()), [Accept]);
        let mut new = ssh();
        new.state = CtState::New;
        let e = evaluate(&t, "INPUT", &new);
        assert_eq!(e.outcomes, BTreeSet::from([Drop]));
        assert_eq!(e.paths[0].why, "policy DROP of INPUT");
        let mut inside = Flow::parse("tcp:10.0.0.5:40000->203.0.113.1:22").unwrap();
        inside.state = CtState::New;
        assert_eq!(outcomes(&t, &inside), [Accept]);
    }

    #[test]
    fn tcp_flags_from_the_state() {
        let mut new = ssh();
        new.state = CtState::New;
        let cases = [
            // (options, established, new)
            ("--syn", Accept, Drop),
            ("! --syn", Drop, Accept),
            ("--tcp-flags SYN,RST SYN,RST", Accept, Accept),
            ("--tcp-flags ACK ACK", Drop, Accept),
            ("--tcp-flags ALL NONE", Accept, Accept),
            ("--tcp-flags ALL SYN", Accept, Drop),
        ];
        for (opts, est, syn) in cases {
            let t = filter(
                "ACCEPT",
                &format!("-A INPUT -p tcp -m tcp {opts} -j DROP\n"),
            );
            assert_eq!(outcomes(&t, &ssh()), [est], "{opts} established");
            assert_eq!(outcomes(&t, &new), [syn], "{opts} new");
        }
        // PSH and URG of an established segment are not known.
        let t = filter("ACCEPT", "-A INPUT -p tcp --tcp-flags ALL ACK -j DROP\n");
        assert_eq!(outcomes(&t, &ssh()), [Accept, Drop]);
        // Ports and their inversion.
        let t = filter(
            "ACCEPT",
            "-A INPUT -p tcp ! --dport 22 -j DROP\n-A INPUT -p tcp --sport 50000:50100 -j REJECT\n",
        );
        assert_eq!(outcomes(&t, &ssh()), [Reject]);
    }

    #[test]
    fn udp_and_icmp_never_match_tcp() {
        let t = filter(
            "ACCEPT",
            "-A INPUT -p udp --dport 22 -j DROP\n-A INPUT -p icmp --icmp-type echo-request -j DROP\n",
        );
        assert_eq!(outcomes(&t, &ssh()), [Accept]);
        let dns = Flow::parse("udp:192.0.2.1:53->203.0.113.1:5353").unwrap();
        let t = filter("ACCEPT", "-A INPUT -p udp --sport 53 -j DROP\n");
        assert_eq!(outcomes(&t, &dns), [Drop]);
    }

    #[test]
    fn comment_iprange_addrtype_mark() {
        let t = filter(
            "DROP",
            "-A INPUT -m comment --comment \"ssh in\" -p tcp --dport 22 -j ACCEPT\n",
        );
        assert_eq!(outcomes(&t, &ssh()), [Accept]);
        let t = filter(
            "ACCEPT",
            "-A INPUT -m iprange --src-range 198.51.100.1-198.51.100.10 -j DROP\n",
        );
        assert_eq!(outcomes(&t, &ssh()), [Drop]);
        let t = filter(
            "ACCEPT",
            "-A INPUT -m iprange ! --src-range 198.51.100.1-198.51.100.10 -j DROP\n",
        );
        assert_eq!(outcomes(&t, &ssh()), [Accept]);
        let t = filter(
            "ACCEPT",
            "-A INPUT -m iprange --dst-range 203.0.113.2-203.0.113.9 -j DROP\n",
        );
        assert_eq!(outcomes(&t, &ssh()), [Accept]);

        let t = filter(
            "ACCEPT",
            "-A INPUT -m addrtype --dst-type MULTICAST -j DROP\n",
        );
        assert_eq!(outcomes(&t, &ssh()), [Accept]);
        let t = filter(
            "ACCEPT",
            "-A INPUT -m addrtype --src-type BROADCAST -j DROP\n",
        );
        assert_eq!(outcomes(&t, &ssh()), [Accept]);
        let t = filter(
            "ACCEPT",
            "-A INPUT -m addrtype ! --dst-type MULTICAST -j DROP\n",
        );
        assert_eq!(outcomes(&t, &ssh()), [Drop]);
        let t = filter("ACCEPT", "-A INPUT -m addrtype --dst-type LOCAL -j DROP\n");
        assert_eq!(outcomes(&t, &ssh()), [Accept, Drop]);

        let t = filter("ACCEPT", "-A INPUT -m mark --mark 0x1 -j DROP\n");
        assert_eq!(outcomes(&t, &ssh()), [Accept]);
        let t = filter("ACCEPT", "-A INPUT -m mark ! --mark 0x1 -j DROP\n");
        assert_eq!(outcomes(&t, &ssh()), [Drop]);
        let t = filter("ACCEPT", "-A INPUT -m connmark --mark 0x0/0xff -j DROP\n");
        assert_eq!(outcomes(&t, &ssh()), [Drop]);
        // A MARK target in the table makes the mark unknown.
        let t = filter(
            "ACCEPT",
            "-A INPUT -j MARK --set-mark 1\n-A INPUT -m mark --mark 0x1 -j DROP\n",
        );
        assert_eq!(outcomes(&t, &ssh()), [Accept, Drop]);
        let mut unknown = ssh();
        unknown.mark = None;
        let t = filter("ACCEPT", "-A INPUT -m mark --mark 0x1 -j DROP\n");
        assert_eq!(outcomes(&t, &unknown), [Accept, Drop]);
    }

    #[test]
    fn ipv6() {
        let flow = Flow::parse("tcp:[2001:db8:1::7]:50022->[2001:db8::1]:22").unwrap();
        assert_eq!(flow.family, Family::V6);
        let t = filter_with(
            Family::V6,
            "DROP",
            "-A INPUT -s 2001:db8:1::/48 -p tcp -m tcp --dport 22 -j ACCEPT\n",
            &AssumeLatest,
        );
        assert_eq!(outcomes(&t, &flow), [Accept]);
        let t = filter_with(
            Family::V6,
            "ACCEPT",
            "-A INPUT ! -p tcp -j DROP\n-A INPUT -p udp -j DROP\n",
            &AssumeLatest,
        );
        assert_eq!(outcomes(&t, &flow), [Accept]);
        let t = filter_with(
            Family::V6,
            "ACCEPT",
            "-A INPUT -p tcp -j DROP\n",
            &AssumeLatest,
        );
        assert_eq!(outcomes(&t, &flow), [Drop]);
        let t = filter_with(
            Family::V6,
            "DROP",
            "-A INPUT -m addrtype --dst-type UNICAST -j ACCEPT\n",
            &AssumeLatest,
        );
        assert_eq!(outcomes(&t, &flow), [Accept]);
        // The IPv4 flow never matches an IPv6 rule.
        let t = filter_with(Family::V6, "ACCEPT", "-A INPUT -j DROP\n", &AssumeLatest);
        assert_eq!(outcomes(&t, &ssh()), [Accept]);
    }

    #[test]
    fn loops_and_missing_chains_do_not_hang() {
        let mut t = Table::new("filter").unwrap();
        let mut a = crate::rules::Chain::user("A");
        a.rules
            .push(Rule::new(Family::V4, Target::Jump("A".into())));
        t.chains.push(a);
        t.chain_mut("INPUT")
            .unwrap()
            .rules
            .push(Rule::new(Family::V4, Target::Jump("A".into())));
        t.chain_mut("INPUT")
            .unwrap()
            .rules
            .push(Rule::new(Family::V4, Target::Goto("nowhere".into())));
        let e = evaluate(&t, "INPUT", &ssh());
        assert_eq!(e.outcomes, BTreeSet::from([Outcome::Other("loop".into())]));
        // Deep nesting stops at MAX_DEPTH.
        let mut t = Table::new("filter").unwrap();
        for i in 0..MAX_DEPTH + 5 {
            let mut c = crate::rules::Chain::user(&format!("c{i}"));
            c.rules
                .push(Rule::new(Family::V4, Target::Jump(format!("c{}", i + 1))));
            t.chains.push(c);
        }
        t.chain_mut("INPUT")
            .unwrap()
            .rules
            .push(Rule::new(Family::V4, Target::Jump("c0".into())));
        let e = evaluate(&t, "INPUT", &ssh());
        assert!(
            e.outcomes.contains(&Outcome::Other("too deep".into())),
            "{e:?}"
        );
        // A missing chain.
        let mut t = Table::new("filter").unwrap();
        t.chain_mut("INPUT")
            .unwrap()
            .rules
            .push(Rule::new(Family::V4, Target::Goto("nowhere".into())));
        assert_eq!(
            outcomes(&t, &ssh()),
            [Outcome::Other("missing chain".into())]
        );
        // A chain the table does not have.
        assert!(evaluate(&t, "PREROUTING", &ssh()).always_accepts());
    }

    #[test]
    fn no_panic_on_any_payload() {
        let names = [
            "tcp",
            "udp",
            "multiport",
            "conntrack",
            "state",
            "iprange",
            "addrtype",
            "mark",
            "connmark",
            "comment",
            "icmp",
            "recent",
        ];
        for family in [Family::V4, Family::V6] {
            let flow = match family {
                Family::V4 => ssh(),
                Family::V6 => Flow::parse("udp:[::1]:1->[ff02::1]:2").unwrap(),
            };
            for name in names {
                for revision in 0..5 {
                    for len in 0..200 {
                        for fill in [0x00u8, 0xa5, 0xff] {
                            let mut rule = Rule::new(family, Target::Verdict(Verdict::Drop));
                            rule.matches.push(Extension {
                                name: name.into(),
                                revision,
                                data: vec![fill; len],
                            });
                            let mut t = Table::new("filter").unwrap();
                            t.chain_mut("INPUT").unwrap().rules.push(rule);
                            let e = evaluate(&t, "INPUT", &flow);
                            assert!(!e.outcomes.is_empty());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn paths_are_capped() {
        let mut rules = String::new();
        for _ in 0..3 * MAX_PATHS {
            rules.push_str("-A INPUT -m recent --name x --rcheck -j DROP\n");
        }
        let e = evaluate(&filter("DROP", &rules), "INPUT", &ssh());
        assert_eq!(e.outcomes, BTreeSet::from([Drop]));
        assert_eq!(e.paths.len(), MAX_PATHS);
        let last = &e.paths[MAX_PATHS - 1];
        assert_eq!(last.assumed.len(), MAX_ASSUMED);
    }

    #[test]
    fn flow_parse() {
        let f = Flow::parse("tcp:198.51.100.7:50022->203.0.113.1:22").unwrap();
        assert_eq!(f, ssh());
        assert_eq!(
            f.to_string(),
            "tcp:198.51.100.7:50022->203.0.113.1:22 (ESTABLISHED)"
        );
        let f = Flow::parse("UDP:[2001:db8::7]:53->[2001:db8::1]:5353").unwrap();
        assert_eq!(
            (f.proto, f.family, f.sport, f.dport),
            (17, Family::V6, 53, 5353)
        );
        assert_eq!(
            f.to_string(),
            "udp:[2001:db8::7]:53->[2001:db8::1]:5353 (ESTABLISHED)"
        );
        assert_eq!(Flow::parse("47:10.0.0.1:0->10.0.0.2:0").unwrap().proto, 47);
        for bad in [
            "",
            "tcp",
            "tcp:1.2.3.4:5",
            "tcp:1.2.3.4->5.6.7.8:22",
            "tcp:1.2.3.4:70000->5.6.7.8:22",
            "tcp:1.2.3.4:1->[::1]:22",
            "foo:1.2.3.4:1->5.6.7.8:22",
            "tcp:[::1:1->[::1]:22",
            "tcp:example.org:1->5.6.7.8:22",
        ] {
            assert!(Flow::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flow_from_ssh_connection_and_reply() {
        let f = ssh();
        assert_eq!(
            (f.proto, f.src, f.sport, f.dst, f.dport, f.state),
            (
                6,
                "198.51.100.7".parse().unwrap(),
                50022,
                "203.0.113.1".parse().unwrap(),
                22,
                CtState::Established
            )
        );
        let r = f.reply();
        assert_eq!(
            (r.src, r.sport, r.dst, r.dport),
            (f.dst, f.dport, f.src, f.sport)
        );
        assert_eq!(r.reply(), f);
        let z = Flow::from_ssh_connection("fe80::7%eth0 50022 fe80::1%eth0 22").unwrap();
        assert_eq!(
            (z.family, z.in_iface.as_deref()),
            (Family::V6, Some("eth0"))
        );
        assert_eq!(z.reply().out_iface.as_deref(), Some("eth0"));
        let m =
            Flow::from_ssh_connection("::ffff:198.51.100.7 50022 ::ffff:203.0.113.1 22").unwrap();
        assert_eq!(m, f);
        for bad in [
            "",
            "1.2.3.4 1 5.6.7.8",
            "1.2.3.4 x 5.6.7.8 22",
            "1.2.3.4 1 ::1 22",
            "a b c d e",
        ] {
            assert!(Flow::from_ssh_connection(bad).is_none(), "{bad}");
        }
        // OUTPUT: the reply, with a rule on the server's port.
        let t = filter("ACCEPT", "");
        let mut t2 = t.clone();
        t2.chain_mut("OUTPUT").unwrap().policy = Some(Verdict::Drop);
        assert_eq!(
            evaluate(&t2, "OUTPUT", &f.reply()).outcomes,
            BTreeSet::from([Drop])
        );
        let t = filter("ACCEPT", "-A OUTPUT -p tcp --sport 22 -j DROP\n");
        assert_eq!(
            evaluate(&t, "OUTPUT", &f.reply()).outcomes,
            BTreeSet::from([Drop])
        );
        assert_eq!(
            evaluate(&t, "OUTPUT", &f).outcomes,
            BTreeSet::from([Accept])
        );
    }
}
