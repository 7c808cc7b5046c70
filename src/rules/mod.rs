//! The model: one representation of a ruleset, for IPv4 and IPv6, that every
//! codec (restore text, save text, kernel blob) reads and writes.
//!
//! Extension payloads (`-m tcp --dport 22`, `-j LOG ...`) are kept as the
//! kernel's own bytes, tagged with the extension name and revision: the
//! registry in [`crate::ext`] turns options into those bytes and back.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Address family of a ruleset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4: `ip_tables`, `iptables-restore`.
    V4,
    /// IPv6: `ip6_tables`, `ip6tables-restore`.
    V6,
}

impl Family {
    /// The unspecified address of this family (`0.0.0.0` or `::`).
    pub fn any(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }
}

/// Packet and byte counters of a rule or a chain policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Counters {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// A verdict of the standard target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Let the packet through.
    Accept,
    /// Drop the packet.
    Drop,
    /// Queue to user space.
    Queue,
    /// Return to the calling chain.
    Return,
}

impl Verdict {
    /// The name iptables uses.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Accept => "ACCEPT",
            Verdict::Drop => "DROP",
            Verdict::Queue => "QUEUE",
            Verdict::Return => "RETURN",
        }
    }

    /// Parses `ACCEPT`, `DROP`, `QUEUE` or `RETURN`.
    pub fn from_name(name: &str) -> Option<Verdict> {
        Some(match name {
            "ACCEPT" => Verdict::Accept,
            "DROP" => Verdict::Drop,
            "QUEUE" => Verdict::Queue,
            "RETURN" => Verdict::Return,
            _ => return None,
        })
    }

    /// The kernel's encoding in a standard target (`-NF_x - 1`).
    pub fn kernel_value(self) -> i32 {
        match self {
            Verdict::Accept => -2,
            Verdict::Drop => -1,
            Verdict::Queue => -4,
            Verdict::Return => -5,
        }
    }

    /// Decodes a negative standard-target verdict.
    pub fn from_kernel(v: i32) -> Option<Verdict> {
        Some(match v {
            -2 => Verdict::Accept,
            -1 => Verdict::Drop,
            -4 => Verdict::Queue,
            -5 => Verdict::Return,
            _ => return None,
        })
    }
}

/// An interface name with its wildcard mask, as in `ipt_ip.iniface`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Interface {
    /// The name bytes, NUL-padded (IFNAMSIZ = 16).
    pub name: [u8; 16],
    /// 0xff for each byte that must match; `eth+` masks only `eth`.
    pub mask: [u8; 16],
}

impl Interface {
    /// True when the rule does not look at this interface.
    pub fn is_any(&self) -> bool {
        self.mask[0] == 0
    }

    /// Parses an `-i`/`-o` argument the way xtables_parse_interface does.
    pub fn parse(s: &str) -> Result<Interface, String> {
        let bytes = crate::text::to_bytes(s);
        let bytes = &bytes[..];
        if bytes.len() >= 16 {
            return Err(format!(
                "interface name `{s}' must be shorter than 16 characters"
            ));
        }
        if bytes.is_empty() {
            return Err("Empty interface is likely to be undesired".into());
        }
        // iptables only warns ("weird character in interface") and installs
        // the name, which then matches no interface (the kernel allows
        // neither in a name), and `-i "eth 0"` saves as `-i eth 0`, which
        // does not load again. Refused here instead, as physdev does, with
        // or without a trailing `+'.
        if let Some(&b) = bytes.iter().find(|&&b| b == b'/' || b == b' ') {
            return Err(format!(
                "interface name `{s}' has '{}', which no interface name can have \
                 (iptables would only warn and install a rule for an interface that cannot exist)",
                b as char
            ));
        }
        let mut iface = Interface::default();
        iface.name[..bytes.len()].copy_from_slice(bytes);
        if bytes.last() == Some(&b'+') {
            // The `+' stays in the name; only the bytes before it must match.
            for m in &mut iface.mask[..bytes.len() - 1] {
                *m = 0xff;
            }
        } else {
            // The mask includes the NUL terminator: an exact name match.
            for m in &mut iface.mask[..=bytes.len()] {
                *m = 0xff;
            }
        }
        Ok(iface)
    }

    /// Formats the interface as iptables-save does (`eth+` for a wildcard).
    pub fn to_save(&self) -> String {
        let mut s = Vec::new();
        for i in 0..16 {
            if self.mask[i] != 0 {
                if self.name[i] != 0 {
                    s.push(self.name[i]);
                }
            } else {
                if i > 0 && self.name[i - 1] != 0 {
                    s.push(b'+');
                }
                break;
            }
        }
        // The name bytes came from UTF-8 text (or from the kernel): keep
        // them as UTF-8, never re-read each byte as a character of its own.
        crate::text::from_bytes(&s).into_owned()
    }
}

/// Flag bits of the IP header match (`ipt_ip.flags`).
pub mod ip_flags {
    /// `-f`: second and further fragments (IPv4 only).
    pub const FRAG: u8 = 0x01;
    /// `-g`: the jump is a goto (IPv4 value; IPv6 uses [`GOTO6`]).
    pub const GOTO: u8 = 0x02;
    /// IPv6: a protocol was given.
    pub const PROTO6: u8 = 0x01;
    /// IPv6: the jump is a goto.
    pub const GOTO6: u8 = 0x04;
}

/// Inversion bits of the IP header match (`ipt_ip.invflags`).
pub mod inv_flags {
    /// `! -i`
    pub const VIA_IN: u8 = 0x01;
    /// `! -o`
    pub const VIA_OUT: u8 = 0x02;
    /// IPv4 `! --tos` (unused by iptables)
    pub const TOS: u8 = 0x04;
    /// `! -s`
    pub const SRCIP: u8 = 0x08;
    /// `! -d`
    pub const DSTIP: u8 = 0x10;
    /// IPv4 `! -f`
    pub const FRAG: u8 = 0x20;
    /// `! -p`
    pub const PROTO: u8 = 0x40;
}

/// The IP header part of a rule: addresses, interfaces, protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IpMatch {
    /// Source address (already masked).
    pub src: IpAddr,
    /// Source mask.
    pub src_mask: IpAddr,
    /// Destination address (already masked).
    pub dst: IpAddr,
    /// Destination mask.
    pub dst_mask: IpAddr,
    /// `-i`
    pub in_iface: Interface,
    /// `-o`
    pub out_iface: Interface,
    /// `-p` protocol number, 0 for any.
    pub proto: u16,
    /// IPv6 traffic class (unused by ip6tables, kept for round trips).
    pub tos: u8,
    /// [`ip_flags`] bits.
    pub flags: u8,
    /// [`inv_flags`] bits.
    pub invflags: u8,
}

impl IpMatch {
    /// A header match that matches every packet of the family.
    pub fn any(family: Family) -> IpMatch {
        IpMatch {
            src: family.any(),
            src_mask: family.any(),
            dst: family.any(),
            dst_mask: family.any(),
            in_iface: Interface::default(),
            out_iface: Interface::default(),
            proto: 0,
            tos: 0,
            flags: 0,
            invflags: 0,
        }
    }
}

/// An extension instance (match or target): the kernel's name, revision and
/// payload bytes. The payload length is a multiple of 8 (XT_ALIGN), padding zeroed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Extension {
    /// The kernel-side name (`conntrack` for `-m state`, `CT` for `-j NOTRACK`):
    /// borrowed from the extension's codec when parsed (no allocation per
    /// rule), owned when read from the kernel.
    pub name: std::borrow::Cow<'static, str>,
    /// The revision.
    pub revision: u8,
    /// The payload after the 32-byte `xt_entry_match`/`xt_entry_target` header.
    pub data: Vec<u8>,
}

/// What a rule does when it matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// No `-j`: count and fall through to the next rule.
    Fallthrough,
    /// A standard verdict.
    Verdict(Verdict),
    /// `-j CHAIN`: jump to a user chain.
    Jump(String),
    /// `-g CHAIN`: go to a user chain (no return here).
    Goto(String),
    /// A target extension (`-j LOG`, `-j DNAT`, ...).
    Extension(Extension),
}

/// A live kernel entry whose counters a new entry takes over on commit:
/// (entry index, base to subtract).
pub(crate) type Origin = (u32, Counters);

/// One rule. Equality looks at what the rule is (header match, matches,
/// target, counters), not at where its counters come from.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The IP header match.
    pub ip: IpMatch,
    /// Match extensions, in order.
    pub matches: Vec<Extension>,
    /// The target.
    pub target: Target,
    /// Counters to install the rule with.
    pub counters: Counters,
    /// Where this rule's counters come from on commit, as libiptc does it:
    /// the live kernel entry it was read from, minus a base (zero to carry
    /// the counters over; the counters read, after `-Z`, to keep only what
    /// arrived since).
    pub(crate) origin: Option<Origin>,
    /// The input line the rule came from, for error reports.
    pub(crate) line: Option<usize>,
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.same_rule(other) && self.counters == other.counters
    }
}

impl Eq for Rule {}

impl std::hash::Hash for Rule {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.ip.hash(state);
        self.matches.hash(state);
        self.target.hash(state);
        self.counters.hash(state);
    }
}

impl PartialEq for Chain {
    fn eq(&self, other: &Chain) -> bool {
        self.name == other.name
            && self.policy == other.policy
            && self.counters == other.counters
            && self.rules == other.rules
    }
}

impl Eq for Chain {}

impl Rule {
    /// A rule with no condition and the given target.
    pub fn new(family: Family, target: Target) -> Rule {
        Rule {
            ip: IpMatch::any(family),
            matches: Vec::new(),
            target,
            counters: Counters::default(),
            origin: None,
            line: None,
        }
    }

    /// The input line this rule was parsed from, if it came from text.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// True when both rules are the same apart from counters (iptables `-D` semantics).
    pub fn same_rule(&self, other: &Rule) -> bool {
        self.ip == other.ip && self.matches == other.matches && self.target == other.target
    }
}

/// A chain: built-in (with a policy) or user-defined.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The name.
    pub name: String,
    /// The policy of a built-in chain (`ACCEPT` or `DROP`); `None` for user chains.
    pub policy: Option<Verdict>,
    /// Policy counters (built-in chains).
    pub counters: Counters,
    /// The rules.
    pub rules: Vec<Rule>,
    /// The live policy entry and the counters read from it: on commit the
    /// policy keeps only what arrived since it was read (libiptc's
    /// COUNTER_MAP_ZEROED), unless the input sets the policy.
    pub(crate) origin: Option<Origin>,
}

impl Chain {
    /// A new user-defined chain.
    pub fn user(name: &str) -> Chain {
        Chain {
            name: name.to_string(),
            policy: None,
            counters: Counters::default(),
            rules: Vec::new(),
            origin: None,
        }
    }

    /// True for a built-in chain.
    pub fn is_builtin(&self) -> bool {
        self.policy.is_some()
    }
}

/// Netfilter hooks, in kernel order.
pub const HOOK_NAMES: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

/// The built-in chains (hook numbers) of a table that the kernel knows.
pub fn builtin_hooks(table: &str) -> Option<&'static [usize]> {
    Some(match table {
        "filter" | "security" => &[1, 2, 3],
        "nat" => &[0, 1, 3, 4],
        "mangle" => &[0, 1, 2, 3, 4],
        "raw" => &[0, 3],
        _ => return None,
    })
}

/// One table of a ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// `filter`, `nat`, `mangle`, `raw` or `security`.
    pub name: String,
    /// Built-in chains in hook order, then user chains in any order (the
    /// encoder sorts them as libiptc does).
    pub chains: Vec<Chain>,
}

impl Table {
    /// A table with its built-in chains, empty, policies ACCEPT (what the
    /// kernel creates on first use). `None` for an unknown table name.
    pub fn new(name: &str) -> Option<Table> {
        let hooks = builtin_hooks(name)?;
        let chains = hooks
            .iter()
            .map(|&h| Chain {
                name: HOOK_NAMES[h].to_string(),
                policy: Some(Verdict::Accept),
                counters: Counters::default(),
                rules: Vec::new(),
                origin: None,
            })
            .collect();
        Some(Table {
            name: name.to_string(),
            chains,
        })
    }

    /// Finds a chain by name.
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    /// Finds a chain by name, mutably.
    pub fn chain_mut(&mut self, name: &str) -> Option<&mut Chain> {
        self.chains.iter_mut().find(|c| c.name == name)
    }

    /// Chains in the order libiptc lays them out and iptables-save prints
    /// them: built-in chains in hook order, then user chains by strcmp.
    pub fn ordered_chains(&self) -> Vec<&Chain> {
        self.chain_order()
            .into_iter()
            .map(|i| &self.chains[i])
            .collect()
    }

    /// [`Table::ordered_chains`] as indices into `chains`.
    pub(crate) fn chain_order(&self) -> Vec<usize> {
        // Built-in chains first, by hook; then user chains by name in bytes.
        let keys: Vec<_> = self
            .chains
            .iter()
            .map(|c| {
                let hook = c.is_builtin().then(|| {
                    HOOK_NAMES
                        .iter()
                        .position(|h| *h == c.name)
                        .unwrap_or(usize::MAX)
                });
                chain_layout_key(hook, &c.name)
            })
            .collect();
        let mut order: Vec<usize> = (0..self.chains.len()).collect();
        // A table read from the kernel (a Session's) is in this order already.
        if !order.is_sorted_by(|&a, &b| keys[a] <= keys[b]) {
            order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
        }
        order
    }

    /// The number of rules that jump or go to `chain`.
    pub fn references(&self, chain: &str) -> usize {
        self.chains
            .iter()
            .flat_map(|c| &c.rules)
            .filter(|r| matches!(&r.target, Target::Jump(t) | Target::Goto(t) if t == chain))
            .count()
    }
}

/// Where a chain goes in a table blob, as a sort key: built-in chains
/// (`hook`: their hook) first, by hook; then user chains by name in bytes.
pub(crate) fn chain_layout_key(
    hook: Option<usize>,
    name: &str,
) -> (bool, usize, std::borrow::Cow<'_, [u8]>) {
    match hook {
        Some(h) => (false, h, std::borrow::Cow::Borrowed(&[][..])),
        None => (true, 0, crate::text::to_bytes(name)),
    }
}

/// A set of tables of one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    /// The family of every table.
    pub family: Family,
    /// The tables, in the order they are committed.
    pub tables: Vec<Table>,
}
