//! Extensions: one codec per match or target, each in its own file.
//!
//! A codec turns the options of `-m NAME ...` or `-j NAME ...` into the
//! kernel's payload bytes for a chosen revision ([`Codec::parse`]) and turns
//! payload bytes back into iptables-save text ([`Codec::save`]). The registry
//! finds codecs by the name a user types and by the name the kernel stores.

use crate::rules::{Extension, Family, IpMatch};

mod addrtype;
mod ah;
mod audit;
mod bpf;
mod cgroup;
mod checksum;
mod classify;
mod cluster;
mod comment;
mod connbytes;
mod connlabel;
mod connlimit;
mod connmark;
mod connmark_tg;
mod connsecmark;
mod conntrack;
mod cpu;
mod ct;
mod dccp;
mod devgroup;
mod dscp;
mod dscp_tg;
mod dst;
mod ecn;
mod ecn_tg;
mod esp;
mod eui64;
mod frag;
mod hashlimit;
mod hbh;
mod helper;
mod hl;
mod hl_tg;
mod hmark;
mod icmp;
mod icmp6;
mod idletimer;
mod ipcomp;
mod iprange;
mod ipv6header;
mod ipvs;
mod l2tp;
mod led;
mod length;
mod limit;
mod log;
mod mac;
mod mark;
mod mark_tg;
mod mh;
mod multiport;
mod nat;
mod netmap;
mod nfacct;
mod nflog;
mod nfqueue;
mod npt;
mod osf;
mod owner;
mod physdev;
mod pkttype;
mod policy;
mod quota;
mod rateest;
mod rateest_tg;
mod realm;
mod recent;
mod reject;
mod rpfilter;
mod rt;
mod sctp;
mod secmark;
mod set;
mod set_tg;
mod socket;
mod srh;
mod statistic;
mod string;
mod synproxy;
mod tcp;
mod tcpmss;
mod tcpmss_tg;
mod tcpoptstrip;
mod tee;
mod time;
mod tos;
mod tos_tg;
mod tproxy;
mod trace;
mod ttl;
mod ttl_tg;
mod u32;
mod udp;

pub mod payload;
pub use payload::{Payload, Reader};

use crate::fasthash::FastMap as HashMap;
use std::borrow::Cow;
use std::sync::OnceLock;

/// Match or target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `-m NAME`
    Match,
    /// `-j NAME`
    Target,
}

/// How many arguments an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// A flag: `--syn`.
    None,
    /// One argument: `--dport 22`.
    One,
    /// Two arguments: `--tcp-flags SYN,ACK SYN`.
    Two,
    /// An optional argument, taken when the next word does not start with `-` or `!`.
    Optional,
}

/// One option an extension accepts (the name without the leading `--`).
#[derive(Debug, Clone, Copy)]
pub struct OptSpec {
    /// Long name, e.g. `dport`.
    pub name: &'static str,
    /// Arguments.
    pub arg: Arg,
}

/// Shorthand for building option tables.
pub const fn opt(name: &'static str, arg: Arg) -> OptSpec {
    OptSpec { name, arg }
}

/// An option as given on a rule line, ready for a codec.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OptValue<'a> {
    /// The option's canonical name from the codec's table (an abbreviation
    /// typed by the user is resolved to this).
    pub name: &'static str,
    /// `!` stood before it.
    pub invert: bool,
    /// Its arguments (0, 1 or 2).
    pub args: Args<'a>,
}

impl OptValue<'_> {
    /// The first argument, or an empty string for a flag.
    pub fn arg(&self) -> &str {
        self.args.first().map_or("", |a| a)
    }

    /// The first argument as the bytes it stands for (text fields: names,
    /// prefixes, comments, patterns; see [`crate::text`]).
    pub fn arg_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        crate::text::to_bytes(self.arg())
    }
}

/// The arguments of an option, borrowed from the rule line where they can
/// be: a rule's options are parsed without an allocation each. Reads as a
/// slice of `Cow<str>`.
#[derive(Debug, Clone, Default)]
pub struct Args<'a>(ArgList<'a>);

#[derive(Debug, Clone)]
enum ArgList<'a> {
    /// Up to two (every option of every extension).
    Inline([Cow<'a, str>; 2], usize),
    /// More, which only a caller building options itself can make.
    Spilled(Vec<Cow<'a, str>>),
}

impl Default for ArgList<'_> {
    fn default() -> Self {
        ArgList::Inline(Default::default(), 0)
    }
}

impl<'a> Args<'a> {
    /// Adds an argument.
    pub fn push(&mut self, arg: impl Into<Cow<'a, str>>) {
        let arg = arg.into();
        match &mut self.0 {
            ArgList::Inline(list, len) if *len < list.len() => {
                list[*len] = arg;
                *len += 1;
            }
            ArgList::Inline(list, _) => {
                let mut v: Vec<Cow<'a, str>> = list.iter_mut().map(std::mem::take).collect();
                v.push(arg);
                self.0 = ArgList::Spilled(v);
            }
            ArgList::Spilled(v) => v.push(arg),
        }
    }
}

impl<'a> std::ops::Deref for Args<'a> {
    type Target = [Cow<'a, str>];

    fn deref(&self) -> &Self::Target {
        match &self.0 {
            ArgList::Inline(list, len) => &list[..*len],
            ArgList::Spilled(v) => v,
        }
    }
}

impl PartialEq for Args<'_> {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

impl Eq for Args<'_> {}

impl<'a, S: Into<Cow<'a, str>>> FromIterator<S> for Args<'a> {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut args = Args::default();
        for a in iter {
            args.push(a);
        }
        args
    }
}

impl<'a, S: Into<Cow<'a, str>>> From<Vec<S>> for Args<'a> {
    fn from(v: Vec<S>) -> Self {
        v.into_iter().collect()
    }
}

/// What a codec may need to know about the rule it is in.
#[derive(Debug, Clone)]
pub struct RuleContext<'a> {
    /// IPv4 or IPv6.
    pub family: Family,
    /// The IP header part of the rule (`-p`, `-s`, ...).
    pub ip: &'a IpMatch,
    /// The table the rule is in (`nat`, `filter`, ...).
    pub table: &'a str,
}

/// Error text from a codec; the parser adds file, line and column.
pub type ExtResult<T> = Result<T, String>;

/// A codec for one extension name (and its aliases' parse side).
pub trait Codec: Sync {
    /// The name a user types after `-m`/`-j`.
    fn name(&self) -> &'static str;
    /// Match or target.
    fn kind(&self) -> Kind;
    /// The families this codec serves.
    fn families(&self) -> &'static [Family] {
        &[Family::V4, Family::V6]
    }
    /// The name the kernel knows (differs for aliases: `state` → `conntrack`).
    fn kernel_name(&self) -> &'static str {
        self.name()
    }
    /// True for an alias whose payloads are saved by another codec.
    fn is_alias(&self) -> bool {
        false
    }
    /// The revisions iptables 1.8.9 has for this name and family, highest first.
    fn revisions(&self, family: Family) -> &'static [u8];
    /// The options it accepts.
    fn options(&self) -> &'static [OptSpec];
    /// Builds the payload for `revision` from the options, in the order given.
    /// The returned bytes are the kernel struct (any length; the registry pads).
    fn parse(&self, revision: u8, opts: &[OptValue], ctx: &RuleContext) -> ExtResult<Vec<u8>>;
    /// Appends the iptables-save text of a payload: each option with a leading
    /// space, as iptables prints it after `-m NAME` / `-j NAME`.
    fn save(&self, revision: u8, data: &[u8], ctx: &RuleContext, out: &mut String)
        -> ExtResult<()>;
    /// The name to print after `-m`/`-j` for this payload (an alias may apply).
    fn save_name(&self, _revision: u8, _data: &[u8]) -> &'static str {
        self.name()
    }
}

pub(crate) fn all_codecs() -> impl Iterator<Item = &'static dyn Codec> {
    [
        tcp::CODECS,
        udp::CODECS,
        icmp::CODECS,
        multiport::CODECS,
        conntrack::CODECS,
        comment::CODECS,
        limit::CODECS,
        mark::CODECS,
        mark_tg::CODECS,
        connmark::CODECS,
        connmark_tg::CODECS,
        addrtype::CODECS,
        mac::CODECS,
        iprange::CODECS,
        recent::CODECS,
        owner::CODECS,
        pkttype::CODECS,
        hashlimit::CODECS,
        connlimit::CODECS,
        string::CODECS,
        statistic::CODECS,
        sctp::CODECS,
        length::CODECS,
        rpfilter::CODECS,
        nfacct::CODECS,
        time::CODECS,
        tcpmss::CODECS,
        tcpmss_tg::CODECS,
        reject::CODECS,
        log::CODECS,
        nflog::CODECS,
        nat::CODECS,
        tproxy::CODECS,
        ct::CODECS,
        checksum::CODECS,
        icmp6::CODECS,
        hl::CODECS,
        hl_tg::CODECS,
        ipv6header::CODECS,
        frag::CODECS,
        rt::CODECS,
        hbh::CODECS,
        dst::CODECS,
        mh::CODECS,
        eui64::CODECS,
        srh::CODECS,
        netmap::CODECS,
        npt::CODECS,
        set::CODECS,
        physdev::CODECS,
        policy::CODECS,
        u32::CODECS,
        socket::CODECS,
        helper::CODECS,
        quota::CODECS,
        cpu::CODECS,
        cgroup::CODECS,
        devgroup::CODECS,
        realm::CODECS,
        esp::CODECS,
        ah::CODECS,
        ipcomp::CODECS,
        dccp::CODECS,
        ecn::CODECS,
        dscp::CODECS,
        tos::CODECS,
        ttl::CODECS,
        connbytes::CODECS,
        connlabel::CODECS,
        cluster::CODECS,
        rateest::CODECS,
        bpf::CODECS,
        l2tp::CODECS,
        osf::CODECS,
        ipvs::CODECS,
        set_tg::CODECS,
        nfqueue::CODECS,
        tee::CODECS,
        audit::CODECS,
        classify::CODECS,
        hmark::CODECS,
        idletimer::CODECS,
        secmark::CODECS,
        connsecmark::CODECS,
        synproxy::CODECS,
        tcpoptstrip::CODECS,
        trace::CODECS,
        led::CODECS,
        dscp_tg::CODECS,
        tos_tg::CODECS,
        ttl_tg::CODECS,
        ecn_tg::CODECS,
        rateest_tg::CODECS,
    ]
    .into_iter()
    .flatten()
    .copied()
}

/// Finds the codec for a name typed after `-m` (Kind::Match) or `-j` (Kind::Target).
pub fn by_name(kind: Kind, family: Family, name: &str) -> Option<&'static dyn Codec> {
    // The index's keys are 'static; HashMap is covariant in its key.
    let index: &HashMap<(Kind, &str), Vec<&'static dyn Codec>> = &registry_index().by_name;
    index
        .get(&(kind, name))?
        .iter()
        .copied()
        .find(|c| c.families().contains(&family))
}

/// Finds the codec that saves a kernel extension of this name.
pub fn by_kernel_name(kind: Kind, family: Family, name: &str) -> Option<&'static dyn Codec> {
    let index: &HashMap<(Kind, &str), Vec<&'static dyn Codec>> = &registry_index().by_kernel_name;
    index
        .get(&(kind, name))?
        .iter()
        .copied()
        .find(|c| c.families().contains(&family))
}

/// The registry by name, built once: the parser and the decoder look an
/// extension up for every match and target of every rule.
struct RegistryIndex {
    by_name: HashMap<(Kind, &'static str), Vec<&'static dyn Codec>>,
    by_kernel_name: HashMap<(Kind, &'static str), Vec<&'static dyn Codec>>,
}

fn registry_index() -> &'static RegistryIndex {
    static INDEX: OnceLock<RegistryIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut ix = RegistryIndex {
            by_name: HashMap::default(),
            by_kernel_name: HashMap::default(),
        };
        // Registry order is kept within each name: the first match wins, as
        // with a linear search.
        for c in all_codecs() {
            ix.by_name.entry((c.kind(), c.name())).or_default().push(c);
            if !c.is_alias() {
                ix.by_kernel_name
                    .entry((c.kind(), c.kernel_name()))
                    .or_default()
                    .push(c);
            }
        }
        ix
    })
}

/// Every codec, for documentation and tests.
pub fn codecs() -> Vec<&'static dyn Codec> {
    all_codecs().collect()
}

/// Rounds up to the kernel's XT_ALIGN (8 on every 64-bit and most 32-bit ABIs).
pub const fn xt_align(n: usize) -> usize {
    (n + 7) & !7
}

/// Builds an [`Extension`] from a codec's payload, padding to XT_ALIGN.
pub fn make_extension(codec: &dyn Codec, revision: u8, mut data: Vec<u8>) -> Extension {
    data.resize(xt_align(data.len()), 0);
    Extension {
        name: std::borrow::Cow::Borrowed(codec.kernel_name()),
        revision,
        data,
    }
}

// ---------------------------------------------------------------------------
// Parsing helpers shared by the codecs (libxtables equivalents).

/// strtoul with base 0 (`0x` hex, leading `0` octal), as xtables_strtoui
/// uses it. Returns the value and the unparsed rest; `None` when no digit
/// was read or the value overflows.
pub fn strtoul_prefix(s: &str) -> Option<(u64, &str)> {
    let t = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let t = t.strip_prefix('+').unwrap_or(t);
    let b = t.as_bytes();
    let (radix, start) =
        if b.len() > 2 && b[0] == b'0' && (b[1] | 0x20) == b'x' && b[2].is_ascii_hexdigit() {
            (16, 2)
        } else if b.first() == Some(&b'0') {
            (8, 0)
        } else {
            (10, 0)
        };
    let digits = &t[start..];
    let end = digits
        .bytes()
        .position(|c| !(c as char).is_digit(radix))
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let v = u64::from_str_radix(&digits[..end], radix).ok()?;
    Some((v, &digits[end..]))
}

/// xtables_strtoui: the whole string must be a number within `min..=max`.
pub fn parse_uint(s: &str, min: u64, max: u64) -> Option<u64> {
    let (v, rest) = strtoul_prefix(s)?;
    (rest.is_empty() && v >= min && v <= max).then_some(v)
}

/// xtables_parse_port: a number or a service name for the protocol.
pub fn parse_port(s: &str, proto: &str) -> ExtResult<u16> {
    if let Some(v) = parse_uint(s, 0, 65535) {
        return Ok(v as u16);
    }
    crate::netdb::service_port(s, proto)
        .ok_or_else(|| format!("invalid port/service `{s}' specified"))
}

/// A `lo:hi`, `lo:`, `:hi` or single port range (tcp/udp/sctp style).
pub fn parse_port_range(s: &str, proto: &str) -> ExtResult<[u16; 2]> {
    match s.split_once(':') {
        None => {
            let p = parse_port(s, proto)?;
            Ok([p, p])
        }
        Some((lo, hi)) => {
            let lo = if lo.is_empty() {
                0
            } else {
                parse_port(lo, proto)?
            };
            let hi = if hi.is_empty() {
                0xffff
            } else {
                parse_port(hi, proto)?
            };
            if lo > hi {
                return Err("invalid portrange (min > max)".into());
            }
            Ok([lo, hi])
        }
    }
}

/// Rejects a second use of an option that may appear once.
pub fn once(seen: &mut Vec<&'static str>, o: &OptValue, ext: &str) -> ExtResult<()> {
    if seen.contains(&o.name) {
        return Err(format!(
            "{ext}: option \"--{}\" can only be used once.",
            o.name
        ));
    }
    seen.push(o.name);
    Ok(())
}

/// Rejects `!` before an option that cannot be inverted.
pub fn no_invert(o: &OptValue, ext: &str) -> ExtResult<()> {
    if o.invert {
        return Err(format!(
            "{ext}: option \"--{}\" cannot be inverted.",
            o.name
        ));
    }
    Ok(())
}

/// Appends ` !` when `inv` is set (the save-side idiom of every extension).
pub fn save_inv(out: &mut String, inv: bool) {
    if inv {
        out.push_str(" !");
    }
}

/// Prints a string as xtables_save_string does: bare when it is made only of
/// letters, digits, `_` and `-` (and is not empty); otherwise in double quotes
/// with `"`, `\\` and `'` escaped by a backslash.
pub fn save_string(out: &mut String, s: &[u8]) {
    let plain = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-';
    out.push(' ');
    if !s.is_empty() && s.iter().all(plain) {
        out.push_str(&crate::text::from_bytes(s));
        return;
    }
    out.push('"');
    let mut buf = Vec::with_capacity(s.len() + 2);
    for &b in s {
        if b == b'"' || b == b'\\' || b == b'\'' {
            buf.push(b'\\');
        }
        buf.push(b);
    }
    out.push_str(&crate::text::from_bytes(&buf));
    out.push('"');
}

/// Prints a string always in double quotes with `"` and `\\` escaped (the
/// quoting of libxt_string and of a few other extensions' own printers).
pub fn save_quoted(out: &mut String, s: &[u8]) {
    let mut buf = Vec::with_capacity(s.len() + 3);
    buf.extend_from_slice(b" \"");
    for &b in s {
        if b == b'"' || b == b'\\' {
            buf.push(b'\\');
        }
        buf.push(b);
    }
    buf.push(b'"');
    out.push_str(&crate::text::from_bytes(&buf));
}

/// An unknown option reached a codec (a parser bug or a stale table).
pub fn unknown_option(ext: &str, o: &OptValue) -> String {
    format!("{ext}: unknown option \"--{}\"", o.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_read_as_the_slice_they_were_given_as() {
        let line = String::from("--tcp-flags SYN,ACK SYN");
        let mut borrowed = Args::default();
        assert!(borrowed.is_empty());
        borrowed.push(&line[12..19]);
        borrowed.push(&line[20..]);
        let owned: Args = vec!["SYN,ACK".to_string(), "SYN".to_string()].into();
        assert_eq!(borrowed, owned);
        assert_eq!(&borrowed[..], ["SYN,ACK", "SYN"]);
        let o = OptValue {
            name: "tcp-flags",
            invert: false,
            args: borrowed.clone(),
        };
        assert_eq!(o.arg(), "SYN,ACK");
        // More than two (only a caller building options can): kept in order.
        let mut many = borrowed;
        many.push("x");
        many.push(String::from("y"));
        assert_eq!(&many[..], ["SYN,ACK", "SYN", "x", "y"]);
        assert_ne!(many, owned);
        let none = OptValue {
            name: "syn",
            invert: false,
            args: Args::default(),
        };
        assert_eq!(none.arg(), "");
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Helpers for codec unit tests: decode hex captured from the kernel.

    /// Parses a hex string (whitespace ignored).
    pub fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex fixture"))
            .collect()
    }
}

/// Answers which extension revisions the running kernel supports.
pub trait RevisionSource {
    /// True when the kernel supports `revision` of `name` (kernel name).
    fn supported(&self, family: Family, kind: Kind, name: &str, revision: u8) -> bool;

    /// The same source, when it may be asked from several threads at once
    /// (the parser then parses a large input on several cores). `None`, the
    /// default, keeps parsing on the calling thread.
    fn as_sync(&self) -> Option<&(dyn RevisionSource + Sync)> {
        None
    }
}

/// Assumes the kernel supports every revision (what iptables does when it
/// may not ask, e.g. without CAP_NET_ADMIN): the highest one is chosen.
#[derive(Debug, Clone, Copy, Default)]
pub struct AssumeLatest;

impl RevisionSource for AssumeLatest {
    fn supported(&self, _: Family, _: Kind, _: &str, _: u8) -> bool {
        true
    }
    fn as_sync(&self) -> Option<&(dyn RevisionSource + Sync)> {
        Some(self)
    }
}

/// Remembers the answers of a shared source for one thread, so that the
/// threads of a parallel parse do not take turns at its lock for every
/// extension of every rule.
pub(crate) struct LocalRevisions<'a> {
    inner: &'a (dyn RevisionSource + Sync),
    known: std::cell::RefCell<Vec<KnownRevision>>,
}

/// One answer: family, kind, revision, extension name, supported.
type KnownRevision = (Family, Kind, u8, String, bool);

impl<'a> LocalRevisions<'a> {
    pub(crate) fn new(inner: &'a (dyn RevisionSource + Sync)) -> Self {
        LocalRevisions {
            inner,
            known: Default::default(),
        }
    }
}

impl RevisionSource for LocalRevisions<'_> {
    fn supported(&self, family: Family, kind: Kind, name: &str, revision: u8) -> bool {
        let hit = self
            .known
            .borrow()
            .iter()
            .find(|(f, k, r, n, _)| *f == family && *k == kind && *r == revision && n == name)
            .map(|e| e.4);
        hit.unwrap_or_else(|| {
            let ok = self.inner.supported(family, kind, name, revision);
            self.known
                .borrow_mut()
                .push((family, kind, revision, name.to_string(), ok));
            ok
        })
    }
}

/// What to tell a user whose kernel lacks the `kind` extension `name`
/// (kernel name): that its module seems missing, and the module name the
/// kernel itself asks for (`ipt_NAME`, `ip6t_NAME`; every x_tables module
/// answers to it).
pub fn missing_module_hint(family: Family, kind: Kind, name: &str) -> String {
    let prefix = match family {
        Family::V4 => "ipt",
        Family::V6 => "ip6t",
    };
    let what = match kind {
        Kind::Match => "match",
        Kind::Target => "target",
    };
    format!(
        "the kernel has no `{name}' {what} extension: its module is missing or not loaded (try `modprobe {prefix}_{name}')"
    )
}

/// The revision iptables 1.8.9 would use: the highest it knows that the
/// kernel supports. `None` when the kernel supports none of them.
pub fn pick_revision(codec: &dyn Codec, family: Family, src: &dyn RevisionSource) -> Option<u8> {
    codec
        .revisions(family)
        .iter()
        .copied()
        .find(|&r| src.supported(family, codec.kind(), codec.kernel_name(), r))
}
