//! The common shape of a rule line, read in one pass over its words.
//!
//! Most lines of a large ruleset are `-A CHAIN`, a few of `-s -d -p -i -o`,
//! `-m NAME` with the extension's own options spelled out, and `-j TARGET`.
//! [`lean_rule`] reads such a line without what the full parser
//! ([`super::parse_rule_line`]) needs for everything else: the vector of
//! words, getopt's abbreviations and search order, the checks that lead to
//! an error, and the [`super::Op`] built for the model. It takes a line
//! only when it is sure the full parser would read it the same way and
//! accept it; on anything else (an error, an abbreviation, a host name,
//! `-c`, a line that is not ASCII ...) it answers `None`, and the caller
//! hands the line to the full parser, which reports what is wrong.
//!
//! What it does take ends in the same calls as the full parser: the same
//! revision choice, each extension's own `parse`, [`IpMatch`] built the
//! same way. Tests and the fuzz target `direct` hold the two to the same
//! result.

use super::{address_item, parse_protocol, proto_to_name, AddressItem, Few};
use crate::ext::{self, Arg, Codec, Kind, OptValue, RevisionSource, RuleContext};
use crate::rules::{
    inv_flags, ip_flags, Counters, Extension, Family, Interface, IpMatch, Rule, Target, Verdict,
};
use std::net::IpAddr;

/// Where a lean rule jumps, for the caller to resolve against the chains
/// of its table (as the direct path resolves a [`super::TargetSpec`]).
pub(crate) enum LeanJump<'t> {
    /// No `-j`: the rule falls through.
    None,
    /// `-j ACCEPT` and the other verdicts.
    Verdict(Verdict),
    /// `-j NAME` or `-g NAME`: a user chain, or (with `-j`) a target
    /// extension, whose data is here when one of that name exists.
    Named {
        name: &'t str,
        goto: bool,
        ext: Option<Extension>,
    },
}

/// A rule line read by [`lean_rule`].
pub(crate) struct LeanRule<'t> {
    /// The chain of `-A`.
    pub(crate) chain: &'t str,
    /// The rule, its target left as [`Target::Fallthrough`].
    pub(crate) rule: Rule,
    /// Its jump.
    pub(crate) jump: LeanJump<'t>,
}

/// The words of a line as the lexer splits them, for the ASCII lines whose
/// words it would borrow unchanged: a word is a run without blanks and
/// quotes, or a whole quoted part without backslashes. `Err` at anything
/// else (the full parser handles it): a carriage return too, which is an
/// error the full parser words.
struct Words<'t> {
    line: &'t str,
    at: usize,
}

/// [`BYTES`]: a byte that ends an unquoted run.
const PLAIN: u8 = 1;
/// [`BYTES`]: a byte that ends a quoted run.
const QUOTED: u8 = 2;
/// [`BYTES`]: a byte that sends the line to the full parser.
const BAD: u8 = 4;

/// What each byte is to [`Words`] (one table look-up a byte: this runs
/// over every byte of every rule line).
static BYTES: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b' ' as usize] = PLAIN;
    t[b'\t' as usize] = PLAIN;
    t[b'\n' as usize] = PLAIN;
    t[b'"' as usize] = PLAIN | QUOTED;
    t[b'\\' as usize] = QUOTED | BAD;
    t[b'\r' as usize] = PLAIN | QUOTED | BAD;
    let mut c = 0x80;
    while c < 256 {
        t[c] = PLAIN | QUOTED | BAD;
        c += 1;
    }
    t
};

impl<'t> Words<'t> {
    /// The next word and whether it was quoted.
    fn next(&mut self) -> Result<Option<(&'t str, bool)>, ()> {
        let b = self.line.as_bytes();
        let mut i = self.at;
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n') {
            i += 1;
        }
        if i == b.len() {
            self.at = i;
            return Ok(None);
        }
        let quoted = b[i] == b'"';
        let start = i + usize::from(quoted);
        // Every byte of the line passes here or in the loop above.
        let stop = if quoted { QUOTED } else { PLAIN };
        i = start
            + b[start..]
                .iter()
                .position(|&c| BYTES[usize::from(c)] & stop != 0)
                .unwrap_or(b.len() - start);
        if i < b.len() && BYTES[usize::from(b[i])] & BAD != 0 {
            return Err(());
        }
        let word = &self.line[start..i];
        if quoted {
            // Unterminated: the full parser's error.
            if i == b.len() {
                return Err(());
            }
            i += 1;
        } else if i < b.len() && b[i] == b'"' {
            // A quoted part joined to the word.
            return Err(());
        }
        self.at = i;
        if word.len() > crate::restore::lexer::MAX_PARAM {
            return Err(());
        }
        Ok(Some((word, quoted)))
    }

    /// The next word, whatever it is (an option's argument).
    fn arg(&mut self) -> Option<&'t str> {
        self.next().ok().flatten().map(|w| w.0)
    }
}

/// An extension loaded on the line, in load order.
struct Loaded<'t> {
    codec: &'static dyn Codec,
    target: bool,
    opts: Few<OptValue<'t>, 2>,
}

/// Reads `line` (without its newline) of `table` if it has the common
/// shape; `None` to hand it to the full parser.
pub(crate) fn lean_rule<'t>(
    line: &'t str,
    table: &str,
    family: Family,
    revs: &dyn RevisionSource,
) -> Option<LeanRule<'t>> {
    // Columns, lengths and interface names as bytes need an ASCII line:
    // `Words` sees every byte.
    let mut words = Words { line, at: 0 };
    let mut chain = None;
    let mut invert = false;
    let mut invflags = 0u8;
    let mut proto: Option<(&str, u16)> = None;
    let mut proto_used = false;
    let (mut src, mut dst) = (None, None);
    let (mut in_iface, mut out_iface) = (None, None);
    let mut jump: Option<(&str, bool, Option<Verdict>)> = None;
    let mut loaded: Vec<Loaded> = Vec::with_capacity(4);
    while let Some((w, quoted)) = words.next().ok()? {
        if quoted {
            return None;
        }
        if let Some(name) = w.strip_prefix("--") {
            if name.is_empty() || name.contains('=') {
                return None;
            }
            // No extension has an option named as one of iptables' own (a
            // test holds the registry to it), which getopt would take
            // first: a name found here is the extension's.
            let mut found = find_option(&loaded, name);
            if found.is_none() {
                // One of iptables' own, or an abbreviation (getopt takes it
                // before the protocol's match is loaded), is the full
                // parser's.
                let prefix = |n: &str| n.starts_with(name);
                if super::BUILTIN.iter().any(|b| prefix(b.0))
                    || loaded
                        .iter()
                        .any(|l| l.codec.options().iter().any(|o| prefix(o.name)))
                    || proto_used
                {
                    return None;
                }
                // `-p tcp --dport 22`: the protocol's match, loaded once.
                let (pname, num) = proto?;
                let pname = match pname.parse::<u16>() {
                    Ok(_) => proto_to_name(num)?,
                    Err(_) => pname,
                };
                let codec = ext::by_name(Kind::Match, family, pname)?;
                proto_used = true;
                loaded.push(Loaded {
                    codec,
                    target: false,
                    opts: Few::default(),
                });
                found = find_option(&loaded, name);
            }
            let (k, j) = found?;
            let spec = loaded[k].codec.options()[j];
            let mut args = ext::Args::default();
            match spec.arg {
                Arg::None => {}
                Arg::One => args.push(words.arg()?),
                Arg::Two | Arg::Optional => return None,
            }
            let ov = OptValue {
                name: spec.name,
                invert: std::mem::take(&mut invert),
                args,
            };
            loaded[k].opts.push(ov);
            continue;
        }
        if w == "!" {
            if invert {
                return None;
            }
            invert = true;
            continue;
        }
        // A one-letter option (compared as bytes: this runs for every
        // word). `-!` is not one.
        let letter = match w.as_bytes() {
            [b'-', c] => *c,
            _ => return None,
        };
        match letter {
            b'A' if chain.is_none() && !invert => chain = Some(words.arg()?),
            b's' | b'd' => {
                let (slot, bit) = match letter {
                    b's' => (&mut src, inv_flags::SRCIP),
                    _ => (&mut dst, inv_flags::DSTIP),
                };
                if slot.is_some() {
                    return None;
                }
                invert_bit(&mut invert, &mut invflags, bit);
                let a = words.arg().filter(|&a| a != "!")?;
                *slot = Some(address(family, a)?);
            }
            b'p' if proto.is_none() => {
                invert_bit(&mut invert, &mut invflags, inv_flags::PROTO);
                let name = words.arg().filter(|&a| a != "!")?;
                if name.bytes().any(|b| b.is_ascii_uppercase()) {
                    return None;
                }
                let num = parse_protocol(name).ok()?;
                if num == 0 && invflags & inv_flags::PROTO != 0 {
                    return None;
                }
                proto = Some((name, num));
            }
            b'i' | b'o' => {
                let (slot, bit) = match letter {
                    b'i' => (&mut in_iface, inv_flags::VIA_IN),
                    _ => (&mut out_iface, inv_flags::VIA_OUT),
                };
                if slot.is_some() {
                    return None;
                }
                let a = words.arg().filter(|&a| !a.is_empty() && a != "!")?;
                invert_bit(&mut invert, &mut invflags, bit);
                *slot = Some(Interface::parse(a).ok()?);
            }
            b'm' if !invert => {
                let codec = ext::by_name(Kind::Match, family, words.arg()?)?;
                loaded.push(Loaded {
                    codec,
                    target: false,
                    opts: Few::default(),
                });
            }
            b'j' | b'g' if jump.is_none() && !invert => {
                let name = words.arg()?;
                if name.is_empty() || name.len() >= 29 || name.contains(char::is_whitespace) {
                    return None;
                }
                let goto = letter == b'g';
                let verdict = Verdict::from_name(name).filter(|_| !goto);
                if !goto && verdict.is_none() {
                    if let Some(codec) = ext::by_name(Kind::Target, family, name) {
                        loaded.push(Loaded {
                            codec,
                            target: true,
                            opts: Few::default(),
                        });
                    }
                }
                jump = Some((name, goto, verdict));
            }
            _ => return None,
        }
    }
    if invert {
        return None;
    }
    let chain = chain?;
    if chain.len() >= 29
        || (jump.is_some_and(|j| j.2 == Some(Verdict::Drop)) && table == "nat")
        || (out_iface.is_some() && matches!(chain, "PREROUTING" | "INPUT"))
        || (in_iface.is_some() && matches!(chain, "POSTROUTING" | "OUTPUT"))
    {
        return None;
    }
    let mut ip = IpMatch::any(family);
    ip.invflags = invflags;
    if let Some((_, num)) = proto {
        ip.proto = num;
        if family == Family::V6 {
            ip.flags |= ip_flags::PROTO6;
        }
    }
    ip.in_iface = in_iface.unwrap_or_default();
    ip.out_iface = out_iface.unwrap_or_default();
    let ctx = RuleContext {
        family,
        ip: &ip,
        table,
    };
    let parse = |l: &Loaded| -> Option<Extension> {
        let rev = ext::pick_revision(l.codec, family, revs)?;
        let data = l.codec.parse(rev, &l.opts, &ctx).ok()?;
        Some(ext::make_extension(l.codec, rev, data))
    };
    let mut matches = Vec::with_capacity(loaded.len());
    for l in loaded.iter().filter(|l| !l.target) {
        matches.push(parse(l)?);
    }
    let jump = match jump {
        None => LeanJump::None,
        Some((name, goto, verdict)) => match verdict {
            Some(v) => LeanJump::Verdict(v),
            None => LeanJump::Named {
                name,
                goto,
                ext: match loaded.iter().find(|l| l.target) {
                    Some(t) => Some(parse(t)?),
                    None => None,
                },
            },
        },
    };
    let any = (family.any(), family.any());
    (ip.src, ip.src_mask) = src.unwrap_or(any);
    (ip.dst, ip.dst_mask) = dst.unwrap_or(any);
    Some(LeanRule {
        chain,
        rule: Rule {
            ip,
            matches,
            target: Target::Fallthrough,
            counters: Counters::default(),
            origin: None,
            line: None,
        },
        jump,
    })
}

/// Takes a pending `!` into the option's bit of `invflags`.
fn invert_bit(invert: &mut bool, invflags: &mut u8, bit: u8) {
    if std::mem::take(invert) {
        *invflags |= bit;
    }
}

/// The newest loaded extension with an option named exactly `name`, and
/// the option's index (an older instance of an extension loaded again
/// has the options of the newer one, met first).
fn find_option(loaded: &[Loaded], name: &str) -> Option<(usize, usize)> {
    loaded.iter().enumerate().rev().find_map(|(k, l)| {
        l.codec
            .options()
            .iter()
            .position(|o| o.name == name)
            .map(|j| (k, j))
    })
}

/// One numeric address, as [`super::each_address`] reads it (masked, with
/// its mask); `None` for a list, a name, or an error.
fn address(family: Family, s: &str) -> Option<(IpAddr, IpAddr)> {
    if s.contains(',') {
        return None;
    }
    match address_item(family, s).ok()? {
        AddressItem::Numeric(a, m) => Some((a, m)),
        AddressItem::Name(..) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::AssumeLatest;
    use crate::restore::{Op, TargetSpec};

    /// What the full parser makes of `line`, as a lean rule would say it;
    /// `None` when it refuses the line or makes something else of it.
    fn full(line: &str, table: &str, family: Family) -> Option<(String, Rule, String)> {
        let Ok(Some(Op::Append { chain, mut rules })) =
            crate::restore::parse_rule(line, table, family, &AssumeLatest)
        else {
            return None;
        };
        if rules.len() != 1 {
            return None;
        }
        let spec = rules.remove(0);
        let jump = match spec.target {
            TargetSpec::None => "none".to_string(),
            TargetSpec::Verdict(v) => format!("verdict {v:?}"),
            TargetSpec::Named { name, goto, ext } => format!("{name} {goto} {ext:?}"),
        };
        let mut rule = spec.rule;
        rule.line = None;
        Some((chain, rule, jump))
    }

    fn lean(line: &str, table: &str, family: Family) -> Option<(String, Rule, String)> {
        let r = lean_rule(line, table, family, &AssumeLatest)?;
        let jump = match r.jump {
            LeanJump::None => "none".to_string(),
            LeanJump::Verdict(v) => format!("verdict {v:?}"),
            LeanJump::Named { name, goto, ext } => format!("{name} {goto} {ext:?}"),
        };
        Some((r.chain.to_string(), r.rule, jump))
    }

    /// Whatever the lean reader takes, the full parser reads the same way.
    fn agrees(line: &str, table: &str, family: Family) -> bool {
        let Some(l) = lean(line, table, family) else {
            return false;
        };
        let f = full(line, table, family);
        assert_eq!(
            Some(&l),
            f.as_ref(),
            "{family:?} {table}: `{line}' read otherwise by the full parser"
        );
        true
    }

    #[test]
    fn every_rule_line_of_the_rule_files_reads_as_the_full_parser_reads_it() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
        let (mut lines, mut taken) = (0, 0);
        for (dir, family) in [
            ("rules", Family::V4),
            ("rules6", Family::V6),
            ("rules-nokernel", Family::V4),
        ] {
            for (table, line) in rule_lines(&root.join(dir)) {
                lines += 1;
                taken += usize::from(agrees(&line, &table, family));
            }
        }
        // Most lines of the files have the common shape.
        assert!(taken * 2 > lines, "{taken} of {lines} lines taken");
    }

    /// The rule lines of the files in `dir` (`*.rules`), with their table.
    fn rule_lines(dir: &std::path::Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for f in std::fs::read_dir(dir).expect("rules directory") {
            let path = f.expect("entry").path();
            if path.extension().is_none_or(|x| x != "rules") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let mut table = "filter";
            for line in text.lines() {
                if let Some(t) = line.strip_prefix('*') {
                    table = t.trim();
                }
                if line.starts_with('-') || line.starts_with('[') {
                    out.push((table.to_string(), line.to_string()));
                }
            }
        }
        out
    }

    /// The same over the shared corpus of real rulesets, when it is there.
    #[test]
    fn the_corpus_rule_lines_read_as_the_full_parser_reads_them() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
        if !root.is_dir() {
            eprintln!("skipped: ../shared/corpus is not there");
            return;
        }
        let (mut lines, mut taken) = (0, 0);
        for (dir, family) in [("v4", Family::V4), ("v6", Family::V6)] {
            for (table, line) in rule_lines(&root.join(dir)) {
                lines += 1;
                taken += usize::from(agrees(&line, &table, family));
            }
        }
        assert!(taken * 2 > lines, "{taken} of {lines} lines taken");
    }

    #[test]
    fn no_extension_option_is_named_as_one_of_iptables_own() {
        for c in crate::ext::all_codecs() {
            for o in c.options() {
                assert!(
                    super::super::builtin_long(o.name).is_none(),
                    "{}: --{} is also iptables' own",
                    c.name(),
                    o.name
                );
            }
        }
    }

    #[test]
    fn what_it_takes_and_what_it_leaves() {
        let v4 = Family::V4;
        let taken = [
            "-A INPUT -s 10.0.0.0/8 -d 192.168.1.7 -p tcp -m tcp --dport 22 -j ACCEPT",
            "-A FORWARD ! -s 10.0.0.0/255.0.0.0 ! -p udp -i eth0 ! -o eth1+ -j DROP",
            "-A FORWARD -p tcp --dport 80 -j ACCEPT",
            "-A FORWARD -p 6 --sport 80 -j ACCEPT",
            "-A X -p tcp -m comment --comment x --dport 80 -m tcp --sport 1 -j ACCEPT",
            "-A X -m comment --comment \"a \t b\" -m comment --comment c -j Y",
            "-A X -m conntrack ! --ctstate NEW,ESTABLISHED -g Y",
            "-A X -s 1.2.3.4/0 -j LOG --log-prefix \"x: \" --log-level 4",
            "-A X -p tcp -m multiport --dports 80,443 -j REJECT --reject-with tcp-reset",
            "-A X -p tcp ! --syn -j MARK --set-xmark 0x4000/0x4000",
            "-A X",
        ];
        for line in taken {
            assert!(agrees(line, "filter", v4), "not taken: {line}");
        }
        let left = [
            // Errors, for the full parser to word.
            "-A X -s 1.2.3.4 -s 5.6.7.8",
            "-A X ! -m tcp",
            "-A X -j ACCEPT -j DROP",
            "-A X ! ! -s 1.2.3.4",
            "-A X -m helper -! --helper 0",
            "-A X -s 1.2.3.4 !",
            "-A INPUT -o eth0",
            "-A OUTPUT -i eth0",
            "-A X -p all --dport 22",
            "-A X ! -p all",
            "-A X -m nosuchmatch",
            "-A X -p tcp --dport",
            "-A X -i \"\"",
            "-A X --comment x",
            "-A X -j THIS-NAME-IS-MUCH-TOO-LONG-FOR-IT",
            "-A X -m comment --comment \"unterminated",
            "-A X -m comment --comment \"bad\\\"escape\"",
            "-A X -s 1.2.3.4\r",
            // Other forms.
            "-A X -p tcp -m multiport --dport 80",
            "-A X -m tcp --dpor 22",
            "-A X --source 1.2.3.4",
            "-A X -s 1.2.3.4,5.6.7.8",
            "-A X -s localhost",
            "-A X -pudp",
            "-A X -p TCP",
            "-A X -p tcp --dport=22",
            "-A X -p tcp -m tcp --tcp-flags SYN,ACK SYN",
            "-A X -c 1 2 -j ACCEPT",
            "[1:2] -A X -j ACCEPT",
            "-A X -4 -j ACCEPT",
            "-I X 1 -j ACCEPT",
            "-A X -m comment --comment \"é\"",
            "-A X ab\"c\"",
            "-A X \"-j\"ACCEPT",
        ];
        for line in left {
            assert!(lean(line, "filter", v4).is_none(), "taken: {line}");
        }
        // DROP is refused in nat; a goto DROP is a chain.
        assert!(lean("-A X -j DROP", "nat", v4).is_none());
        assert!(agrees("-A X -g DROP", "nat", v4));
        assert!(agrees("-A X -s 1.2.3.4 -j DROP", "filter", v4));
        // IPv6.
        let v6 = Family::V6;
        assert!(agrees(
            "-A X -s 2001:db8::/32 ! -p tcp -j ACCEPT",
            "filter",
            v6
        ));
        assert!(lean("-A X -s 2001:db8::1,::1 -j ACCEPT", "filter", v6).is_none());
        assert!(lean("-A X -s 1.2.3.4 -j ACCEPT", "filter", v6).is_none());
    }
}
