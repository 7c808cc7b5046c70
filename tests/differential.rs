//! Differential testing against iptables-legacy-restore 1.8.9.
//!
//! Rule lines are generated from the vocabulary of the repository's own
//! rule files (tests/rules/*.rules, tests/rules6/*.rules): every `-A` line
//! is split into its base options (`-p`, `-s`, ...) and per-extension option
//! groups, and new rules are made by recombining them — random subsets and
//! orders of an extension's options, values taken from other rules of the
//! same option — with occasional mutations (a negation added or removed, a
//! value replaced by an out-of-range number, an empty string or a
//! neighbouring option's value, a duplicate option, the protocol removed or
//! changed, the table changed, a match dropped or one borrowed from another
//! rule). The generator is deterministic (fixed seed, own PRNG).
//!
//! Rules are taken in batches (per table). Each batch gets a fresh pair of
//! namespaces, set up with the `# setup:` commands of the rule files it
//! draws from; every rule of the batch is then loaded on its own, as a
//! one-rule file appended (`-n`), by iptables-legacy-restore in one and by
//! the library in the other. Both must refuse it, or both must accept it —
//! and then the rules both accepted are loaded again as one file with
//! `common::compare` (fresh namespaces), which requires identical kernel
//! bytes and save text; a failing set is bisected down to the single rule.
//! Where iptables accepts a value it silently mangles and we refuse it on
//! purpose, the refusal must be on the allow-list [`DELIBERATE`] and our
//! message must name the rule's line. A disagreement is retried once,
//! alone, in new namespaces (IDLETIMER timers are kernel-global, and a
//! deleted namespace's tables are torn down only later).
//!
//! Size: `IPTA_DIFF_CASES` IPv4 cases (default 4000) and half as many IPv6
//! ones, the two families in parallel: about 40 seconds on 2 cores. Rules
//! are loaded in batches of `IPTA_DIFF_BATCH` (24) per pair of namespaces.
//! `IPTA_DIFF_SEED` picks another seed, `IPTA_DIFF_HEAT=N` multiplies the
//! mutation rates, `IPTA_DIFF_PRINT` lists the
//! generated rules, `IPTA_DIFF_ONLY=TEXT` keeps the rules containing TEXT.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::{compare, repo_rules, Netns, Step};
use iptables_atomic::ext::{by_name, Arg, Kind};
use iptables_atomic::restore::lexer::split_words;
use iptables_atomic::Family;

// ---------------------------------------------------------------------------
// Deliberate refusals

/// Values iptables 1.8.9 accepts but silently mangles, which the library
/// refuses on purpose (each refusal is commented where it is made; grep
/// the sources for "refuse"). An entry is the pieces of our error message
/// that identify the refusal, and what iptables would have done. Such a
/// refusal is allowed only when iptables accepted the rule and our error
/// names the rule's line.
const DELIBERATE: &[(&[&str], &str)] = &[
    // src/netdb.rs port_by_name (tcp, udp, sctp, dccp, multiport,
    // conntrack, NAT, REDIRECT, TPROXY, ...).
    (
        &["is out of range: ports are 0 to 65535"],
        "port numbers above 65535: xtables_getportbyname keeps the low 16 bits (70000 -> 4464)",
    ),
    // src/ext/srh.rs: the -eq/-lt/-gt forms of one field share a byte.
    (
        &["srh: ", "share one field of the kernel's struct"],
        "two different values for one srh field: libip6t_srh keeps the last for both",
    ),
    // src/ext/synproxy.rs.
    (
        &["SYNPROXY: bad value for option \"--wscale\", or out of range (0-255)."],
        "SYNPROXY --wscale above 255: read as u32, cut to 8 bits",
    ),
    (
        &["SYNPROXY: bad value for option \"--mss\", or out of range (0-65535)."],
        "SYNPROXY --mss above 65535: read as u32, cut to 16 bits",
    ),
    // src/ext/hbh.rs (hbh and dst): option type and length are cut to 8 bits.
    (
        &["hbh: ", "is out of range (0-255)"],
        "hbh --hbh-opts TYPE:LEN above 255 or negative: cut to 8 bits",
    ),
    (
        &["dst: ", "is out of range (0-255)"],
        "dst --dst-opts TYPE:LEN above 255 or negative: cut to 8 bits",
    ),
    // src/ext/rateest.rs: rates above 32 bits of bytes per second.
    (
        &["rateest: rate `", "is out of range: at most 4294967295 bytes per second"],
        "rateest rates that do not fit 32 bits: whatever the C conversion gives",
    ),
    // src/ext/rateest_tg.rs.
    (
        &["RATEEST: name `", "' is longer than 15 characters"],
        "RATEEST --rateest-name longer than 15 bytes: cut to 15",
    ),
    (
        &["RATEEST: ", "is out of range: 0 to 4294967295 microseconds"],
        "RATEEST times that do not fit 32 bits of microseconds (or negative): undefined in C",
    ),
    // src/ext/idletimer.rs.
    (
        &["IDLETIMER: label `", "' is longer than 27 characters"],
        "IDLETIMER --label longer than 27 bytes: cut to 27",
    ),
    // src/ext/physdev.rs: an empty bridge port name.
    (
        &["physdev: --physdev-", " needs an interface name"],
        "physdev with an empty port name: accepted with a warning; its save text does not load again",
    ),
    (
        &["physdev: interface name `", "which no interface name can have"],
        "physdev port names with `/' or a blank: accepted with a warning; saved unquoted, so the save text does not load again",
    ),
    // src/rules/mod.rs Interface::parse: -i / -o with `/' or a blank.
    (
        &["interface name `", "which no interface name can have (iptables would only warn"],
        "-i / -o names with `/' or a blank: iptables warns and installs a name no interface can have",
    ),
    // src/ext/bpf.rs: sscanf-read numbers cut to their field's width.
    (
        &["bpf: error at instr ", "(0..65535, 0..255, 0..255, 0..4294967295)"],
        "bpf bytecode numbers out of their field's range: cut to the field's width",
    ),
    // src/ext/helper.rs.
    (
        &["helper: helper name `", "' is too long: at most 29 bytes"],
        "helper names longer than 29 bytes: cut to 29 (no helper has such a name)",
    ),
    // src/restore/parser.rs: `-h` / `--help` (here `--help` where
    // `--helper` was meant). iptables-restore prints the help text and
    // exits 0 at that line, leaving the table of that block (and the rest
    // of the file) uninstalled: a success status for a file it did not load.
    (
        &["-h prints help; it has no place in a restore file"],
        "-h / --help: iptables-restore prints help and exits 0 without installing the table",
    ),
    // src/ext/tee.rs.
    (
        &["TEE: interface name `", "' must be shorter than 16 characters"],
        "TEE --oif names longer than 15 bytes: cut to 15 (no interface has such a name)",
    ),
    // src/ext/connlabel.rs.
    (
        &["connlabel: label ", "is out of range: bits are 0 to 127"],
        "connlabel numbers above 127: cut to 16 bits, a bit the kernel does not have",
    ),
];

// ---------------------------------------------------------------------------
// A small deterministic PRNG (splitmix64), so the cases never depend on a
// crate's version.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// True with probability `pct` percent.
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

// ---------------------------------------------------------------------------
// The vocabulary: rule lines split into option groups.

/// One argument as written (quoted or not).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Word {
    text: String,
    quoted: bool,
}

/// One option: `[!] --name ARGS...`.
#[derive(Clone, Debug)]
struct Opt {
    inv: bool,
    /// With its dashes: `-p`, `--dport`.
    name: String,
    args: Vec<Word>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum GroupKind {
    /// Options of the protocol's match, loaded by `-p tcp` alone.
    Implicit,
    /// `-m NAME`.
    Match,
    /// `-j NAME` / `-g NAME`.
    Target,
}

#[derive(Clone, Debug)]
struct Group {
    kind: GroupKind,
    /// `-j` or `-g` for a target, `-m` otherwise.
    flag: String,
    name: String,
    opts: Vec<Opt>,
}

impl Group {
    /// The vocabulary key: implicit and explicit use of a match share one.
    fn key(&self) -> (bool, String) {
        (self.kind == GroupKind::Target, self.name.clone())
    }
}

#[derive(Clone, Debug)]
struct Template {
    /// Index into the family's rule files.
    file: usize,
    table: String,
    chain: String,
    base: Vec<Opt>,
    matches: Vec<Group>,
    target: Option<Group>,
    /// User chains declared in the template's table block.
    user_chains: Vec<String>,
}

struct Vocab {
    family: Family,
    files: Vec<String>,
    /// `# setup:` commands of each file.
    setup: Vec<Vec<String>>,
    templates: Vec<Template>,
    /// Per extension: every option occurrence, with the file it is from.
    ext_opts: HashMap<(bool, String), Vec<(Opt, usize)>>,
    /// Every match group seen (for borrowing one into another rule).
    all_matches: Vec<(Group, usize)>,
    protocols: Vec<String>,
    /// Mutation rate multiplier (`IPTA_DIFF_HEAT`, default 1).
    heat: u64,
}

const BASE_ONE: &[(&str, &str)] = &[
    ("-p", "-p"),
    ("--protocol", "-p"),
    ("-s", "-s"),
    ("--source", "-s"),
    ("--src", "-s"),
    ("-d", "-d"),
    ("--destination", "-d"),
    ("--dst", "-d"),
    ("-i", "-i"),
    ("--in-interface", "-i"),
    ("-o", "-o"),
    ("--out-interface", "-o"),
];

fn proto_match_name(family: Family, proto: &str) -> Option<String> {
    let p = proto.to_ascii_lowercase();
    let name = match p.as_str() {
        "6" => "tcp",
        "17" => "udp",
        "1" => "icmp",
        "132" => "sctp",
        "33" => "dccp",
        "58" => "icmpv6",
        "50" => "esp",
        "51" => "ah",
        "135" => "mh",
        other => other,
    };
    by_name(Kind::Match, family, name).map(|_| name.to_string())
}

/// How many argument words an extension option takes, by its codec's table
/// (exact name, else a unique prefix).
fn ext_arity(family: Family, kind: Kind, ext: &str, opt: &str) -> Option<Arg> {
    let codec = by_name(kind, family, ext)?;
    let name = opt.trim_start_matches('-');
    if let Some(o) = codec.options().iter().find(|o| o.name == name) {
        return Some(o.arg);
    }
    let pre: Vec<_> = codec
        .options()
        .iter()
        .filter(|o| o.name.starts_with(name))
        .collect();
    (pre.len() == 1).then(|| pre[0].arg)
}

fn is_option_word(w: &str) -> bool {
    w.starts_with('-') || w == "!"
}

/// Splits one `-A CHAIN ...` line. None for lines this generator does not
/// use as templates (counters, `-4`/`-6`, unknown words).
fn split_rule(family: Family, words: &[Word]) -> Option<(String, Template)> {
    let mut it = 0usize;
    let mut chain = None;
    let mut base = Vec::new();
    let mut matches: Vec<Group> = Vec::new();
    let mut target: Option<Group> = None;
    let mut proto: Option<String> = None;
    let mut implicit_loaded = false;
    let mut inv = false;
    while it < words.len() {
        let w = &words[it];
        it += 1;
        let t = w.text.as_str();
        if t == "!" && !w.quoted {
            inv = true;
            continue;
        }
        if t == "-A" || t == "--append" {
            chain = Some(words.get(it)?.text.clone());
            it += 1;
            continue;
        }
        if let Some((_, canon)) = BASE_ONE.iter().find(|(n, _)| *n == t) {
            let arg = words.get(it)?.clone();
            it += 1;
            if *canon == "-p" {
                proto = Some(arg.text.clone());
            }
            base.push(Opt {
                inv,
                name: canon.to_string(),
                args: vec![arg],
            });
            inv = false;
            continue;
        }
        if t == "-f" || t == "--fragment" {
            base.push(Opt {
                inv,
                name: "-f".into(),
                args: vec![],
            });
            inv = false;
            continue;
        }
        if t == "-m" || t == "--match" {
            let name = words.get(it)?.text.clone();
            it += 1;
            matches.push(Group {
                kind: GroupKind::Match,
                flag: "-m".into(),
                name,
                opts: vec![],
            });
            continue;
        }
        if t == "-j" || t == "--jump" || t == "-g" || t == "--goto" {
            let name = words.get(it)?.text.clone();
            it += 1;
            let flag = if t.contains('g') { "-g" } else { "-j" };
            target = Some(Group {
                kind: GroupKind::Target,
                flag: flag.into(),
                name,
                opts: vec![],
            });
            continue;
        }
        if !t.starts_with("--") {
            return None;
        }
        // An extension option: the owner is the most recently loaded
        // extension that knows it (the target, then matches backwards),
        // else the protocol's match, loaded implicitly.
        let (name, attached) = match t.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (t.to_string(), None),
        };
        let mut owner: Option<(Option<usize>, Arg)> = None;
        if let Some(tg) = &target {
            if let Some(a) = ext_arity(family, Kind::Target, &tg.name, &name) {
                owner = Some((None, a));
            }
        }
        if owner.is_none() {
            for (i, m) in matches.iter().enumerate().rev() {
                if let Some(a) = ext_arity(family, Kind::Match, &m.name, &name) {
                    owner = Some((Some(i), a));
                    break;
                }
            }
        }
        if owner.is_none() && !implicit_loaded {
            if let Some(pm) = proto.as_deref().and_then(|p| proto_match_name(family, p)) {
                if let Some(a) = ext_arity(family, Kind::Match, &pm, &name) {
                    implicit_loaded = true;
                    matches.push(Group {
                        kind: GroupKind::Implicit,
                        flag: "-m".into(),
                        name: pm,
                        opts: vec![],
                    });
                    owner = Some((Some(matches.len() - 1), a));
                }
            }
        }
        let (idx, arity) = owner?;
        let mut args = Vec::new();
        match (arity, attached) {
            (_, Some(v)) => args.push(Word {
                text: v,
                quoted: false,
            }),
            (Arg::None, None) => {}
            (Arg::One, None) => {
                args.push(words.get(it)?.clone());
                it += 1;
            }
            (Arg::Two, None) => {
                args.push(words.get(it)?.clone());
                args.push(words.get(it + 1)?.clone());
                it += 2;
            }
            (Arg::Optional, None) => {
                if let Some(n) = words.get(it) {
                    if !is_option_word(&n.text) {
                        args.push(n.clone());
                        it += 1;
                    }
                }
            }
        }
        let opt = Opt { inv, name, args };
        inv = false;
        match idx {
            None => target.as_mut().expect("target").opts.push(opt),
            Some(i) => matches[i].opts.push(opt),
        }
    }
    if inv {
        return None;
    }
    let chain = chain?;
    Some((
        chain.clone(),
        Template {
            file: 0,
            table: String::new(),
            chain,
            base,
            matches,
            target,
            user_chains: vec![],
        },
    ))
}

fn load_vocab(dir: &str, family: Family) -> Vocab {
    let mut v = Vocab {
        family,
        files: vec![],
        setup: vec![],
        templates: vec![],
        ext_opts: HashMap::new(),
        all_matches: vec![],
        protocols: vec![],
        heat: std::env::var("IPTA_DIFF_HEAT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1),
    };
    let mut protocols = BTreeSet::new();
    for path in repo_rules(dir) {
        let text = iptables_atomic::text::from_bytes(&std::fs::read(&path).expect("read rules"))
            .into_owned();
        let fi = v.files.len();
        v.files.push(path.display().to_string());
        v.setup.push(
            text.lines()
                .filter_map(|l| l.strip_prefix("# setup: "))
                .map(str::to_string)
                .collect(),
        );
        let mut table = String::new();
        let mut block: Vec<Template> = Vec::new();
        let mut chains: Vec<String> = Vec::new();
        for line in text.lines() {
            if let Some(t) = line.strip_prefix('*') {
                table = t.trim().to_string();
                block.clear();
                chains.clear();
            } else if let Some(c) = line.strip_prefix(':') {
                let mut f = c.split_whitespace();
                if let (Some(name), Some("-")) = (f.next(), f.next()) {
                    chains.push(name.to_string());
                }
            } else if line == "COMMIT" {
                for mut t in block.drain(..) {
                    t.user_chains = chains.clone();
                    v.templates.push(t);
                }
            } else if line.starts_with("-A ") {
                let Ok(ws) = split_words(line) else { continue };
                let words: Vec<Word> = ws
                    .into_iter()
                    .map(|w| Word {
                        text: w.text.into_owned(),
                        quoted: w.quoted,
                    })
                    .collect();
                let Some((_, mut t)) = split_rule(family, &words) else {
                    continue;
                };
                t.file = fi;
                t.table = table.clone();
                for b in &t.base {
                    if b.name == "-p" {
                        protocols.insert(b.args[0].text.clone());
                    }
                }
                for g in t.matches.iter().chain(t.target.iter()) {
                    for o in &g.opts {
                        v.ext_opts.entry(g.key()).or_default().push((o.clone(), fi));
                    }
                }
                for m in &t.matches {
                    if m.kind == GroupKind::Match {
                        v.all_matches.push((m.clone(), fi));
                    }
                }
                block.push(t);
            }
        }
    }
    v.protocols = protocols.into_iter().collect();
    v
}

// ---------------------------------------------------------------------------
// Generation

/// A generated rule.
#[derive(Clone, Debug)]
struct Case {
    table: String,
    /// The rule line (`-A CHAIN ...`).
    line: String,
    user_chains: Vec<String>,
    /// Rule files whose setup commands it may need.
    files: BTreeSet<usize>,
}

const TABLES: &[(&str, &[&str])] = &[
    ("filter", &["INPUT", "FORWARD", "OUTPUT"]),
    ("nat", &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]),
    (
        "mangle",
        &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
    ),
    ("raw", &["PREROUTING", "OUTPUT"]),
    ("security", &["INPUT", "FORWARD", "OUTPUT"]),
];

const BUILTIN_CHAINS: &[&str] = &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

/// Numbers just past the limits of the kernel's field widths, and odd forms.
const ODD_NUMBERS: &[&str] = &[
    "0",
    "-1",
    "128",
    "129",
    "255",
    "256",
    "33",
    "65535",
    "65536",
    "70000",
    "2147483648",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "0x100",
    "1e3",
];

fn quote(w: &Word) -> String {
    let t = &w.text;
    let plain = !t.is_empty()
        && !w.quoted
        && !t
            .chars()
            .any(|c| c == ' ' || c == '\t' || c == '"' || c == '\\');
    if plain {
        return t.clone();
    }
    let mut s = String::from("\"");
    for c in t.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

fn emit_opt(out: &mut String, o: &Opt) {
    if o.inv {
        out.push_str(" !");
    }
    out.push(' ');
    out.push_str(&o.name);
    for a in &o.args {
        out.push(' ');
        out.push_str(&quote(a));
    }
}

/// Replaces one run of digits in `s` (or all of `s`) with an odd number.
fn odd_number(rng: &mut Rng, s: &str) -> String {
    let num = *rng.pick(ODD_NUMBERS);
    let runs: Vec<(usize, usize)> = {
        let b = s.as_bytes();
        let mut v = vec![];
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_digit() {
                let st = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                v.push((st, i));
            } else {
                i += 1;
            }
        }
        v
    };
    if runs.is_empty() || rng.chance(20) {
        return num.to_string();
    }
    let (a, b) = *rng.pick(&runs);
    format!("{}{}{}", &s[..a], num, &s[b..])
}

/// The same value written differently, or almost the same value: another
/// base, a sign, a stray character, a range edge, much longer.
fn reform(rng: &mut Rng, s: &str) -> String {
    let digits = s.find(|c: char| c.is_ascii_digit());
    match rng.below(9) {
        0 | 1 if digits.is_some() => {
            // The first number in hex or octal.
            let st = digits.unwrap_or(0);
            let end = s[st..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(s.len(), |e| st + e);
            match s[st..end].parse::<u64>() {
                Ok(v) if rng.chance(50) => format!("{}{v:#x}{}", &s[..st], &s[end..]),
                Ok(v) => format!("{}0{v:o}{}", &s[..st], &s[end..]),
                Err(_) => s.to_string(),
            }
        }
        2 => format!("+{s}"),
        3 => format!("{s}{}", rng.pick(&["x", ",", ":", "/", "-", " ", "."])),
        4 => format!("{}{s}", rng.pick(&[" ", "-", ",", ":", "!"])),
        5 => s.repeat(1 + 300 / (s.len() + 1)),
        6 => match s.split_once(':') {
            Some((a, b)) => format!("{b}:{a}"),
            None => format!("{s}:{s}"),
        },
        7 => s.chars().take(s.len().saturating_sub(1).max(1)).collect(),
        _ => s.replace(',', ",,"),
    }
}

impl Vocab {
    /// A recombination of an extension's options.
    fn recombine(&self, rng: &mut Rng, g: &Group, files: &mut BTreeSet<usize>) -> Vec<Opt> {
        let Some(pool) = self.ext_opts.get(&g.key()) else {
            return g.opts.clone();
        };
        let mut names: Vec<&str> = pool.iter().map(|(o, _)| o.name.as_str()).collect();
        names.sort();
        names.dedup();
        rng.shuffle(&mut names);
        let want = 1 + rng.below(names.len().min(4));
        let mut opts = Vec::new();
        for name in names.into_iter().take(want) {
            let same: Vec<&(Opt, usize)> = pool.iter().filter(|(o, _)| o.name == name).collect();
            let (a, fa) = rng.pick(&same);
            let (b, fb) = rng.pick(&same);
            files.insert(*fa);
            files.insert(*fb);
            // Negation from one rule, the value from another.
            let mut o = a.clone();
            if b.args.len() == a.args.len() {
                o.args = b.args.clone();
            }
            opts.push(o);
        }
        opts
    }

    /// Small mutations of an option list.
    fn mutate_opts(&self, rng: &mut Rng, g: &Group, opts: &mut Vec<Opt>) {
        let pool = self.ext_opts.get(&g.key());
        let mut i = 0;
        while i < opts.len() {
            if rng.chance(6 * self.heat) {
                opts[i].inv = !opts[i].inv;
            }
            if !opts[i].args.is_empty() && rng.chance(7 * self.heat) {
                let k = rng.below(opts[i].args.len());
                let old = opts[i].args[k].text.clone();
                opts[i].args[k] = Word {
                    text: odd_number(rng, &old),
                    quoted: false,
                };
            }
            if !opts[i].args.is_empty() && rng.chance(2 * self.heat) {
                let k = rng.below(opts[i].args.len());
                opts[i].args[k] = Word {
                    text: String::new(),
                    quoted: true,
                };
            }
            if !opts[i].args.is_empty() && rng.chance(6 * self.heat) {
                let k = rng.below(opts[i].args.len());
                let t = reform(rng, &opts[i].args[k].text);
                opts[i].args[k].text = t;
            }
            if let Some(pool) = pool {
                if !opts[i].args.is_empty() && rng.chance(4 * self.heat) {
                    // A neighbouring option's value (same number of words).
                    let n = opts[i].args.len();
                    let others: Vec<&Opt> = pool
                        .iter()
                        .map(|(o, _)| o)
                        .filter(|o| o.name != opts[i].name && o.args.len() == n)
                        .collect();
                    if !others.is_empty() {
                        opts[i].args = rng.pick(&others).args.clone();
                    }
                }
            }
            if !opts[i].args.is_empty() && rng.chance(2 * self.heat) {
                // Any value of any extension.
                let (ext, _) = rng.pick(&self.all_matches);
                let vals: Vec<&Word> = ext.opts.iter().flat_map(|o| o.args.iter()).collect();
                if !vals.is_empty() {
                    let k = rng.below(opts[i].args.len());
                    opts[i].args[k] = (*rng.pick(&vals)).clone();
                }
            }
            if !opts[i].args.is_empty() && rng.chance(2 * self.heat) {
                // Letter case changed.
                let k = rng.below(opts[i].args.len());
                let t = &opts[i].args[k].text;
                opts[i].args[k].text = if t.chars().any(|c| c.is_ascii_lowercase()) {
                    t.to_ascii_uppercase()
                } else {
                    t.to_ascii_lowercase()
                };
            }
            if opts[i].name.len() > 5 && rng.chance(3 * self.heat) {
                // An abbreviation (getopt_long takes a unique prefix).
                let n = 4 + rng.below(opts[i].name.len() - 4);
                opts[i].name.truncate(n);
            }
            if opts[i].args.len() == 1 && rng.chance(2 * self.heat) {
                // `--name=value`.
                let a = opts[i].args.remove(0);
                opts[i].name = format!("{}={}", opts[i].name, quote(&a));
            }
            if rng.chance(3 * self.heat) {
                let dup = opts[i].clone();
                opts.insert(i + 1, dup);
                i += 1;
            }
            i += 1;
        }
        if opts.len() > 1 && rng.chance(5 * self.heat) {
            rng.shuffle(opts);
        }
    }

    fn generate(&self, rng: &mut Rng) -> Case {
        let t = rng.pick(&self.templates).clone();
        let mut files = BTreeSet::from([t.file]);
        let mut table = t.table.clone();
        let mut chain = t.chain.clone();
        // The table changed to another (where the target may not be allowed).
        if rng.chance(5 * self.heat) {
            let (nt, chains) = *rng.pick(TABLES);
            table = nt.to_string();
            if BUILTIN_CHAINS.contains(&chain.as_str()) && !chains.contains(&chain.as_str()) {
                chain = rng.pick(chains).to_string();
            }
        }
        // Base options: the protocol removed or changed, a negation toggled.
        let mut base = t.base.clone();
        if let Some(p) = base.iter().position(|o| o.name == "-p") {
            if rng.chance(5 * self.heat) {
                base.remove(p);
            } else if rng.chance(7 * self.heat) && !self.protocols.is_empty() {
                base[p].args[0] = Word {
                    text: rng.pick(&self.protocols).clone(),
                    quoted: false,
                };
            }
        } else if rng.chance(4 * self.heat) && !self.protocols.is_empty() {
            base.insert(
                0,
                Opt {
                    inv: false,
                    name: "-p".into(),
                    args: vec![Word {
                        text: rng.pick(&self.protocols).clone(),
                        quoted: false,
                    }],
                },
            );
        }
        for o in &mut base {
            if rng.chance(2 * self.heat) {
                o.inv = !o.inv;
            }
            let Some(a) = o.args.first_mut() else {
                continue;
            };
            if rng.chance(3 * self.heat) {
                a.text = match o.name.as_str() {
                    // Odd masks and lists.
                    "-s" | "-d" => match rng.below(3) {
                        0 => format!(
                            "{}/{}",
                            a.text.split('/').next().unwrap_or(""),
                            rng.pick(&[
                                "0",
                                "1",
                                "31",
                                "32",
                                "33",
                                "64",
                                "127",
                                "128",
                                "129",
                                "-1",
                                "255.0.255.0",
                                "0.0.0.0",
                                "ffff::",
                                "::",
                                "08",
                                "0x10",
                                ""
                            ])
                        ),
                        1 => format!("{},{}", a.text, a.text),
                        _ => reform(rng, &a.text),
                    },
                    // Wildcards, lengths at IFNAMSIZ, odd characters.
                    "-i" | "-o" => rng
                        .pick(&[
                            "+",
                            "eth+",
                            "a234567890abcde",
                            "a234567890abcdef",
                            "a234567890abcd+",
                            "eth 0",
                            "eth/0",
                            "eth:0",
                            "!eth0",
                            "eth0!",
                        ])
                        .to_string(),
                    _ => reform(rng, &a.text),
                };
            }
        }
        let mut matches = t.matches.clone();
        if !matches.is_empty() && rng.chance(5 * self.heat) {
            let k = rng.below(matches.len());
            matches.remove(k);
        }
        if rng.chance(8 * self.heat) && !self.all_matches.is_empty() {
            let (m, f) = rng.pick(&self.all_matches).clone();
            files.insert(f);
            let k = rng.below(matches.len() + 1);
            matches.insert(k, m);
        }
        let mut target = t.target.clone();
        for g in matches.iter_mut().chain(target.iter_mut()) {
            if rng.chance(50) {
                g.opts = self.recombine(rng, g, &mut files);
            }
            let gc = g.clone();
            self.mutate_opts(rng, &gc, &mut g.opts);
            // An implicit match written out as `-m NAME`.
            if g.kind == GroupKind::Implicit && rng.chance(10) {
                g.kind = GroupKind::Match;
            }
        }
        let mut line = format!("-A {chain}");
        for o in &base {
            emit_opt(&mut line, o);
        }
        // Implicit options follow the base options (before any -m), as the
        // protocol's match loads where its first option appears.
        let (implicit, explicit): (Vec<&Group>, Vec<&Group>) =
            matches.iter().partition(|g| g.kind == GroupKind::Implicit);
        for g in implicit {
            for o in &g.opts {
                emit_opt(&mut line, o);
            }
        }
        for g in explicit {
            line.push_str(&format!(" -m {}", g.name));
            for o in &g.opts {
                emit_opt(&mut line, o);
            }
        }
        if let Some(g) = &target {
            line.push_str(&format!(
                " {} {}",
                g.flag,
                quote(&Word {
                    text: g.name.clone(),
                    quoted: false
                })
            ));
            for o in &g.opts {
                emit_opt(&mut line, o);
            }
        }
        let mut user_chains = t.user_chains.clone();
        if !BUILTIN_CHAINS.contains(&chain.as_str()) && !user_chains.contains(&chain) {
            user_chains.push(chain.clone());
        }
        Case {
            table,
            line,
            user_chains,
            files,
        }
    }
}

// ---------------------------------------------------------------------------
// Running

fn rules_file(table: &str, chains: &[String], lines: &[&str]) -> (String, Vec<usize>) {
    let mut s = format!("*{table}\n");
    let mut n = 1;
    for c in chains {
        s.push_str(&format!(":{c} - [0:0]\n"));
        n += 1;
    }
    let mut at = Vec::new();
    for l in lines {
        s.push_str(l);
        s.push('\n');
        n += 1;
        at.push(n);
    }
    s.push_str("COMMIT\n");
    (s, at)
}

fn union_chains(cases: &[&Case]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for c in cases {
        for ch in &c.user_chains {
            if !v.contains(ch) {
                v.push(ch.clone());
            }
        }
    }
    v
}

/// The rule as iptables-legacy-save prints it: the last rule of its chain.
fn legacy_saved(ns: &Netns, family: Family, case: &Case) -> String {
    let chain = case.line.split_whitespace().nth(1).unwrap_or("");
    let (_, out, _) = ns.run(&[common::legacy(family, "save"), "-t", &case.table], b"");
    out.lines()
        .rfind(|l| l.starts_with(&format!("-A {chain} ")))
        .unwrap_or("(nothing)")
        .to_string()
}

enum Outcome {
    Accepted,
    Refused,
    Deliberate(&'static str),
    Disagree(String),
}

struct Runner<'a> {
    vocab: &'a Vocab,
    disagreements: Vec<String>,
    both_accepted: usize,
    both_refused: usize,
    /// Disagreements that went away when retried alone.
    retried: usize,
    /// Deliberate refusals met, by reason.
    deliberate: BTreeMap<&'static str, usize>,
}

impl Runner<'_> {
    fn setup_cmds(&self, cases: &[&Case]) -> Vec<String> {
        let files: BTreeSet<usize> = cases.iter().flat_map(|c| c.files.iter().copied()).collect();
        let mut v: Vec<String> = Vec::new();
        for f in files {
            for c in &self.vocab.setup[f] {
                if !v.contains(c) {
                    v.push(c.clone());
                }
            }
        }
        v
    }

    fn fresh_pair(&self, setup: &[String]) -> (Netns, Netns) {
        let r = Netns::new("dref");
        let c = Netns::new("dcand");
        for ns in [&r, &c] {
            for cmd in setup {
                let (rc, _, err) = ns.run(&["sh", "-c", cmd], b"");
                assert_eq!(rc, 0, "setup `{cmd}` in {}: {err}", ns.name);
            }
        }
        (r, c)
    }

    /// Loads one rule (appending, `-n`) into `r` with iptables-legacy and
    /// into `c` with the library.
    fn load_one(&self, r: &Netns, c: &Netns, case: &Case) -> Outcome {
        let family = self.vocab.family;
        let (text, at) = rules_file(&case.table, &case.user_chains, &[&case.line]);
        let line_no = at[0];
        let (rc, _, err) = r.run(&[common::legacy(family, "restore"), "-n"], text.as_bytes());
        let ours = iptables_atomic::Restorer::new(family)
            .netns(c.name.clone())
            .noflush(true)
            .restore_str(&text);
        match (rc == 0, ours) {
            (true, Ok(_)) => Outcome::Accepted,
            (false, Err(_)) => Outcome::Refused,
            (true, Err(e)) => {
                let msg = e.to_string();
                let allowed = DELIBERATE
                    .iter()
                    .find(|(needles, _)| needles.iter().all(|n| msg.contains(n)));
                match allowed {
                    Some((_, why)) if e.line() == Some(line_no) => Outcome::Deliberate(why),
                    _ => Outcome::Disagree(format!(
                        "iptables accepts, we refuse:\n{text}  iptables saves (last rule of the chain): {}\n  ours: {msg}",
                        legacy_saved(r, family, case)
                    )),
                }
            }
            (false, Ok(_)) => Outcome::Disagree(format!(
                "iptables refuses, we accept:\n{text}  iptables: {}",
                err.trim()
            )),
        }
    }

    /// Loads each rule on its own into one pair of namespaces; returns the
    /// rules both accepted.
    fn triage<'c>(&mut self, cases: &[&'c Case]) -> Vec<&'c Case> {
        let setup = self.setup_cmds(cases);
        let (mut r, mut c) = self.fresh_pair(&setup);
        let mut accepted = Vec::new();
        for case in cases {
            let mut outcome = self.load_one(&r, &c, case);
            if let Outcome::Disagree(first) = outcome {
                // Kernel state outside the namespaces (IDLETIMER timers are
                // global, and a deleted namespace's tables go away only
                // later) can tell the two sides apart for a moment: retry
                // once, alone, in new namespaces.
                drop((r, c));
                std::thread::sleep(std::time::Duration::from_millis(300));
                (r, c) = self.fresh_pair(&setup);
                outcome = self.load_one(&r, &c, case);
                if matches!(outcome, Outcome::Disagree(_)) {
                    outcome = Outcome::Disagree(first);
                } else {
                    self.retried += 1;
                }
                (r, c) = self.fresh_pair(&setup);
            }
            match outcome {
                Outcome::Accepted => accepted.push(*case),
                Outcome::Refused => self.both_refused += 1,
                Outcome::Deliberate(why) => *self.deliberate.entry(why).or_default() += 1,
                Outcome::Disagree(d) => self.disagreements.push(d),
            }
        }
        accepted
    }

    /// Does each side accept this file (fresh namespaces)?
    fn verdicts(&self, cases: &[&Case]) -> (bool, bool) {
        let family = self.vocab.family;
        let (r, c) = self.fresh_pair(&self.setup_cmds(cases));
        let lines: Vec<&str> = cases.iter().map(|c| c.line.as_str()).collect();
        let (text, _) = rules_file(&cases[0].table, &union_chains(cases), &lines);
        let (rc, _, _) = r.run(&[common::legacy(family, "restore")], text.as_bytes());
        let ours = iptables_atomic::Restorer::new(family)
            .netns(c.name.clone())
            .restore_str(&text);
        (rc == 0, ours.is_ok())
    }

    /// Rules both accepted one by one, loaded together by `compare`; a
    /// failing set is bisected down to the single rule.
    fn compare_set(&mut self, cases: &[&Case]) {
        if cases.is_empty() {
            return;
        }
        let lines: Vec<&str> = cases.iter().map(|c| c.line.as_str()).collect();
        let (text, _) = rules_file(&cases[0].table, &union_chains(cases), &lines);
        let setup_cmds = self.setup_cmds(cases);
        let setup = |ns: &Netns| {
            for cmd in &setup_cmds {
                let (rc, _, err) = ns.run(&["sh", "-c", cmd], b"");
                assert_eq!(rc, 0, "setup `{cmd}` in {}: {err}", ns.name);
            }
        };
        let res = compare(
            self.vocab.family,
            &setup,
            &[Step {
                text: &text,
                noflush: false,
                counters: false,
            }],
        );
        let Err(e) = res else {
            self.both_accepted += cases.len();
            return;
        };
        if cases.len() == 1 {
            std::thread::sleep(std::time::Duration::from_millis(300));
            if compare(
                self.vocab.family,
                &setup,
                &[Step {
                    text: &text,
                    noflush: false,
                    counters: false,
                }],
            )
            .is_ok()
            {
                self.retried += 1;
                self.both_accepted += 1;
            } else {
                self.disagreements
                    .push(format!("both accept, but differ:\n{text}  {e}"));
            }
            return;
        }
        let before = self.disagreements.len();
        let (a, b) = cases.split_at(cases.len() / 2);
        let accepted_before = self.both_accepted;
        self.compare_set(a);
        self.compare_set(b);
        if self.disagreements.len() == before {
            // Each half is fine: the rules interact (a jump loop, say).
            // That is only a disagreement if one side accepts the whole.
            match self.verdicts(cases) {
                (false, false) => {}
                _ => {
                    self.both_accepted = accepted_before;
                    self.disagreements.push(format!(
                        "rules that pass alone differ together:\n{text}  {e}"
                    ));
                }
            }
        }
    }
}

fn run_family(dir: &str, family: Family, default_cases: usize) {
    let cases: usize = std::env::var("IPTA_DIFF_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(|n: usize| if family == Family::V6 { n / 2 } else { n })
        .unwrap_or(default_cases);
    let seed: u64 = std::env::var("IPTA_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x1b7a_b1e5);
    let batch: usize = std::env::var("IPTA_DIFF_BATCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    let vocab = load_vocab(dir, family);
    assert!(
        vocab.templates.len() > 100,
        "too few template rules in tests/{dir}: {}",
        vocab.templates.len()
    );
    let mut rng = Rng(seed ^ if family == Family::V6 { 0x66 } else { 0x44 });
    let mut generated: Vec<Case> = (0..cases).map(|_| vocab.generate(&mut rng)).collect();
    // IPTA_DIFF_ONLY=TEXT: only the cases whose line contains TEXT.
    if let Ok(only) = std::env::var("IPTA_DIFF_ONLY") {
        generated.retain(|c| c.line.contains(&only));
    }
    if std::env::var_os("IPTA_DIFF_PRINT").is_some() {
        for c in &generated {
            eprintln!("*{} {}", c.table, c.line);
        }
    }
    let mut by_table: BTreeMap<&str, Vec<&Case>> = BTreeMap::new();
    for c in &generated {
        by_table.entry(c.table.as_str()).or_default().push(c);
    }
    let mut runner = Runner {
        vocab: &vocab,
        disagreements: vec![],
        both_accepted: 0,
        both_refused: 0,
        retried: 0,
        deliberate: BTreeMap::new(),
    };
    for list in by_table.values() {
        for chunk in list.chunks(batch) {
            let accepted = runner.triage(chunk);
            runner.compare_set(&accepted);
        }
    }
    eprintln!(
        "{dir}: {cases} generated rules from {} templates: {} accepted by both and identical, \
         {} refused by both, {} deliberate refusals {:?}, {} passed when retried, {} disagreements",
        vocab.templates.len(),
        runner.both_accepted,
        runner.both_refused,
        runner.deliberate.values().sum::<usize>(),
        runner.deliberate,
        runner.retried,
        runner.disagreements.len()
    );
    assert!(
        runner.disagreements.is_empty(),
        "{} disagreements with iptables-legacy:\n\n{}",
        runner.disagreements.len(),
        runner.disagreements.join("\n\n")
    );
}

#[test]
fn generated_ipv4_rules_agree_with_iptables_legacy() {
    run_family("rules", Family::V4, 4000);
}

#[test]
fn generated_ipv6_rules_agree_with_ip6tables_legacy() {
    run_family("rules6", Family::V6, 2000);
}
