//! The iptables-restore file parser and the rule-line parser (a re-statement
//! of iptables 1.8.9's `do_parse` over the words of one line).

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

mod lean;

pub(crate) use lean::{lean_rule, LeanJump};

use super::lexer::{split_words, Word};
use super::{Block, Command, Op, RestoreOptions, RuleSpec, Script, TargetSpec};
use crate::error::{Error, Location, Result};
use crate::ext::{self, Arg, Codec, Kind, OptValue, RevisionSource, RuleContext};
use crate::rules::{
    inv_flags, ip_flags, Counters, Family, Interface, IpMatch, Rule, Target, Verdict,
};

pub(super) struct LineCtx<'a> {
    pub(super) file: &'a str,
    pub(super) line: usize,
    /// The line's text (to count columns in bytes of the input).
    pub(super) text: &'a str,
}

impl LineCtx<'_> {
    /// `column` counted in bytes of the input, where every byte that is not
    /// UTF-8 is one column (it is one character of the escape range here).
    fn byte_column(&self, column: usize) -> usize {
        if column == 0 {
            0
        } else {
            crate::text::byte_column(self.text, column - 1)
        }
    }
    fn err(&self, column: usize, message: impl Into<String>) -> Error {
        Error::Parse {
            at: Location {
                file: self.file.to_string(),
                line: self.line,
                column: self.byte_column(column),
            },
            message: message.into(),
        }
    }
    fn fail(&self, column: usize, message: impl Into<String>) -> Error {
        Error::Apply {
            at: Location {
                file: self.file.to_string(),
                line: self.line,
                column: self.byte_column(column),
            },
            message: message.into(),
            exit_code: 1,
        }
    }
}

/// The longest line accepted (iptables-restore reads lines into a 10 KiB
/// buffer and splits longer ones; we refuse anything over 64 KiB outright).
pub const MAX_LINE: usize = 64 * 1024;

/// Parses a whole restore file. Every rule is parsed and encoded, so any
/// error in the input is found before anything is applied.
pub fn parse(text: &str, opts: &RestoreOptions, revs: &dyn RevisionSource) -> Result<Script> {
    match parse_partial(text, opts, revs) {
        (script, None) => Ok(script),
        (_, Some(e)) => Err(e),
    }
}

/// Parses as far as the first error: returns what parsed before it (the
/// block being read at the error included, without its COMMIT) and the
/// error. Callers use the partial script to find an earlier failure that
/// iptables-restore, which works line by line, would have reported first.
pub fn parse_partial(
    text: &str,
    opts: &RestoreOptions,
    revs: &dyn RevisionSource,
) -> (Script, Option<Error>) {
    let mut script = Script {
        family: opts.family,
        file_name: opts.file_name.clone(),
        blocks: Vec::new(),
    };
    let mut current: Option<Block> = None;
    let mut ahead = parse_ahead(text, opts, revs).into_iter().peekable();
    let res = parse_lines(text, opts, revs, &mut ahead, &mut script, &mut current);
    match res {
        Ok(()) => (script, None),
        Err(e) => {
            if let Some(b) = current {
                script.blocks.push(b);
            }
            (script, Some(e))
        }
    }
}

/// A rule line parsed ahead of the walk through the file: its line number,
/// the table it was parsed for, and the outcome.
type Ahead<'t> = (usize, &'t str, Result<Option<Op>>);

/// Inputs smaller than this are parsed on the calling thread only.
pub(crate) const PARALLEL_BYTES: usize = 256 * 1024;

/// Parses the rule lines of a large input on every core (at most 4), ahead
/// of [`parse_lines`], which walks the file in order as before and takes
/// each rule line's outcome from here: what is reported, and in which order,
/// does not change. Empty when the input is small, there is one core, or
/// `revs` cannot be shared between threads.
fn parse_ahead<'t>(
    text: &'t str,
    opts: &RestoreOptions,
    revs: &dyn RevisionSource,
) -> Vec<Ahead<'t>> {
    if text.len() < PARALLEL_BYTES {
        return Vec::new();
    }
    let threads = worker_threads();
    let shared = match revs.as_sync() {
        Some(s) if threads > 1 => s,
        _ => return Vec::new(),
    };
    // The rule lines and their tables, found the way parse_lines finds
    // them (it checks the structure; a line taken for a rule here that is
    // not one there is simply not used).
    let mut todo: Vec<(usize, &str, &str)> = Vec::new();
    let mut table: Option<&str> = None;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        if line.is_empty() || line.starts_with('#') || line.starts_with(':') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('*') {
            table = rest
                .split([' ', '\t'])
                .find(|s| !s.is_empty())
                .filter(|t| opts.table.as_deref().is_none_or(|only| only == *t));
            continue;
        }
        if line == "COMMIT" {
            table = None;
            continue;
        }
        if let Some(t) = table {
            if line.len() <= MAX_LINE && !line.contains('\0') {
                todo.push((i + 1, raw, t));
            }
        }
    }
    if todo.len() < 2 * threads {
        return Vec::new();
    }
    // Each thread parses a run of lines up to its first error (the walk
    // stops there, or earlier).
    let run = |part: std::ops::Range<usize>, revs: &dyn RevisionSource| -> Vec<Ahead<'t>> {
        let mut out = Vec::with_capacity(part.len());
        for &(line_no, raw, table) in &todo[part] {
            let lc = LineCtx {
                file: &opts.file_name,
                line: line_no,
                text: raw,
            };
            let line = raw.strip_suffix('\n').unwrap_or(raw);
            let r = parse_rule_line(&lc, line, table, opts, revs);
            let failed = r.is_err();
            out.push((line_no, table, r));
            if failed {
                break;
            }
        }
        out
    };
    // A thread that could not finish leaves its lines to the walk.
    in_parallel(todo.len(), threads, shared, run)
        .into_iter()
        .flatten()
        .flatten()
        .collect()
}

/// Threads for a large parse: every core, at most 4.
pub(super) fn worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Runs `run` over `len` items split into `threads` contiguous ranges, the
/// first on the calling thread, each with its own cache in front of the
/// shared revision answers. The results in order; `None` for a thread that
/// panicked.
pub(super) fn in_parallel<T: Send>(
    len: usize,
    threads: usize,
    shared: &(dyn RevisionSource + Sync),
    run: impl Fn(std::ops::Range<usize>, &dyn RevisionSource) -> T + Sync,
) -> Vec<Option<T>> {
    let chunk = len.div_ceil(threads.max(1)).max(1);
    let ranges: Vec<_> = (0..len)
        .step_by(chunk)
        .map(|s| s..(s + chunk).min(len))
        .collect();
    on_threads(ranges.len(), shared, |i, revs| run(ranges[i].clone(), revs))
}

/// Runs `run(i, …)` for each `i` below `threads`, `i` = 0 on the calling
/// thread, each with its own cache in front of the shared revision
/// answers. The results in order of `i`; `None` for a thread that
/// panicked.
pub(super) fn on_threads<T: Send>(
    threads: usize,
    shared: &(dyn RevisionSource + Sync),
    run: impl Fn(usize, &dyn RevisionSource) -> T + Sync,
) -> Vec<Option<T>> {
    if threads == 0 {
        return Vec::new();
    }
    let run = &run;
    std::thread::scope(|s| {
        let handles: Vec<_> = (1..threads)
            .map(|i| s.spawn(move || run(i, &crate::ext::LocalRevisions::new(shared))))
            .collect();
        let mut out = vec![Some(run(0, &crate::ext::LocalRevisions::new(shared)))];
        out.extend(handles.into_iter().map(|h| h.join().ok()));
        out
    })
}

fn parse_lines<'t>(
    text: &'t str,
    opts: &RestoreOptions,
    revs: &dyn RevisionSource,
    ahead: &mut std::iter::Peekable<std::vec::IntoIter<Ahead<'t>>>,
    script: &mut Script,
    current: &mut Option<Block>,
) -> Result<()> {
    let mut skipping = false;
    let lines = text.split_inclusive('\n');
    let mut line_no = 0usize;
    for raw in lines {
        line_no += 1;
        let lc = LineCtx {
            file: &opts.file_name,
            line: line_no,
            text: raw,
        };
        let has_newline = raw.ends_with('\n');
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        if line.contains('\0') {
            return Err(lc.err(
                line.find('\0').unwrap_or(0) + 1,
                "NUL byte in the input: this is not a text rules file",
            ));
        }
        if line.len() > MAX_LINE {
            return Err(lc.err(
                1,
                format!(
                    "line of {} bytes: lines longer than {} KiB are refused (is this a rules file?)",
                    line.len(),
                    MAX_LINE / 1024
                ),
            ));
        }
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if skipping {
            // -T: everything of other tables is skipped until the next `*table`.
            if let Some(name) = line.strip_prefix('*') {
                let name = name
                    .split([' ', '\t'])
                    .find(|s| !s.is_empty())
                    .unwrap_or("");
                if opts.table.as_deref() == Some(name) {
                    skipping = false;
                    *current = Some(start_block(&lc, name, opts)?);
                }
            }
            continue;
        }
        if current.is_some() && line == "COMMIT" {
            if !has_newline {
                return Err(lc.err(
                    1,
                    "COMMIT is the last line and has no newline after it; iptables-restore refuses this \
                     (`Bad argument COMMIT'): end the file with a newline",
                ));
            }
            let block = current.take().expect("checked above");
            script.blocks.push(block);
            continue;
        }
        if let Some(rest) = line.strip_prefix('*') {
            if let Some(b) = current.as_ref() {
                return Err(lc.err(
                    1,
                    format!(
                        "`*{}' starts a new table, but table `{}' from line {} has no COMMIT yet",
                        rest.trim(),
                        b.table,
                        b.line
                    ),
                ));
            }
            let name = rest
                .split([' ', '\t'])
                .find(|s| !s.is_empty())
                .ok_or_else(|| lc.fail(2, "table name invalid"))?;
            if let Some(t) = &opts.table {
                if t != name {
                    skipping = true;
                    continue;
                }
            }
            *current = Some(start_block(&lc, name, opts)?);
            continue;
        }
        let Some(block) = current.as_mut() else {
            let what = if line == "COMMIT" {
                "COMMIT without a table"
            } else {
                "this line is outside any `*table' block"
            };
            return Err(lc.fail(1, format!("{what}: expected `*TABLE' first")));
        };
        if let Some(rest) = line.strip_prefix(':') {
            block.commands.push(Command {
                line: line_no,
                op: parse_chain_line(&lc, rest, opts)?,
            });
            continue;
        }
        while ahead.next_if(|a| a.0 < line_no).is_some() {}
        let parsed = match ahead.next_if(|a| a.0 == line_no) {
            Some((_, table, r)) if table == block.table => r,
            _ => parse_rule_line(&lc, line, &block.table, opts, revs),
        };
        if let Some(op) = parsed? {
            block.commands.push(Command { line: line_no, op });
        }
    }
    if let Some(b) = current.as_ref() {
        let lc = LineCtx {
            file: &opts.file_name,
            line: line_no + 1,
            text: "",
        };
        return Err(lc.fail(
            0,
            format!(
                "COMMIT expected: table `{}' opened at line {} is never committed",
                b.table, b.line
            ),
        ));
    }
    Ok(())
}

fn start_block(lc: &LineCtx, name: &str, opts: &RestoreOptions) -> Result<Block> {
    if crate::rules::builtin_hooks(name).is_none() {
        return Err(lc.fail(
            2,
            format!("unknown table `{name}': expected filter, nat, mangle, raw or security"),
        ));
    }
    let _ = opts;
    Ok(Block {
        table: name.to_string(),
        line: lc.line,
        commands: Vec::new(),
    })
}

pub(super) fn parse_chain_line(lc: &LineCtx, rest: &str, opts: &RestoreOptions) -> Result<Op> {
    let mut fields = rest.split([' ', '\t']).filter(|s| !s.is_empty());
    let name = fields.next().ok_or_else(|| {
        lc.fail(
            2,
            "chain name invalid: expected `:NAME POLICY [packets:bytes]'",
        )
    })?;
    if crate::text::byte_len(name) >= 29 {
        return Err(lc.err(2, format!("Invalid chain name `{name}' (28 chars max)")));
    }
    let policy = fields.next().ok_or_else(|| {
        lc.fail(
            2 + name.len(),
            format!("policy invalid: expected `:{name} POLICY' with ACCEPT, DROP or `-'"),
        )
    })?;
    let mut counters = Counters::default();
    if policy != "-" && opts.counters {
        let c = fields.next().unwrap_or("");
        counters = parse_bracket_counters(c).ok_or_else(|| {
            lc.err(
                rest.find(c).map(|p| p + 2).unwrap_or(0),
                format!("invalid policy counters for chain '{name}': expected [PACKETS:BYTES]"),
            )
        })?;
    }
    Ok(Op::DeclareChain {
        name: name.to_string(),
        policy: policy.to_string(),
        counters,
    })
}

/// `[p:b]` as sscanf("[%llu:%llu]") reads it.
fn parse_bracket_counters(s: &str) -> Option<Counters> {
    let inner = s.strip_prefix('[')?;
    let (p, rest) = leading_u64(inner)?;
    let rest = rest.strip_prefix(':')?;
    let (b, _) = leading_u64(rest)?;
    Some(Counters {
        packets: p,
        bytes: b,
    })
}

/// `%llu`: optional blanks, optional sign, decimal digits.
fn leading_u64(s: &str) -> Option<(u64, &str)> {
    let t = s.trim_start();
    let t = t.strip_prefix('+').unwrap_or(t);
    let end = t
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(t.len());
    if end == 0 {
        return None;
    }
    Some((t[..end].parse().ok()?, &t[end..]))
}

// ---------------------------------------------------------------------------
// Rule lines

#[derive(Clone, Copy, PartialEq, Eq)]
enum Has {
    No,
    Required,
    Optional,
}

/// iptables' own options: long name, short letter, argument.
const BUILTIN: &[(&str, char, Has)] = &[
    ("append", 'A', Has::Required),
    ("delete", 'D', Has::Required),
    ("check", 'C', Has::Required),
    ("insert", 'I', Has::Required),
    ("replace", 'R', Has::Required),
    ("list", 'L', Has::Optional),
    ("list-rules", 'S', Has::Optional),
    ("flush", 'F', Has::Optional),
    ("zero", 'Z', Has::Optional),
    ("new-chain", 'N', Has::Required),
    ("delete-chain", 'X', Has::Optional),
    ("rename-chain", 'E', Has::Required),
    ("policy", 'P', Has::Required),
    ("source", 's', Has::Required),
    ("destination", 'd', Has::Required),
    ("src", 's', Has::Required),
    ("dst", 'd', Has::Required),
    ("protocol", 'p', Has::Required),
    ("in-interface", 'i', Has::Required),
    ("jump", 'j', Has::Required),
    ("table", 't', Has::Required),
    ("match", 'm', Has::Required),
    ("numeric", 'n', Has::No),
    ("out-interface", 'o', Has::Required),
    ("verbose", 'v', Has::No),
    ("wait", 'w', Has::Optional),
    ("wait-interval", 'W', Has::Optional),
    ("exact", 'x', Has::No),
    ("fragments", 'f', Has::No),
    ("version", 'V', Has::No),
    ("help", 'h', Has::Optional),
    ("line-numbers", '0', Has::No),
    ("modprobe", 'M', Has::Required),
    ("set-counters", 'c', Has::Required),
    ("goto", 'g', Has::Required),
    ("ipv4", '4', Has::No),
    ("ipv6", '6', Has::No),
];

/// The index in [`BUILTIN`] of the long option named exactly `name`.
fn builtin_long(name: &str) -> Option<usize> {
    static INDEX: std::sync::OnceLock<crate::fasthash::FastMap<&'static str, usize>> =
        std::sync::OnceLock::new();
    INDEX
        .get_or_init(|| {
            let mut index = crate::fasthash::FastMap::default();
            for (i, b) in BUILTIN.iter().enumerate() {
                // The first of a name, as a search in order finds it.
                index.entry(b.0).or_insert(i);
            }
            index
        })
        .get(name)
        .copied()
}

fn short_has(c: char) -> Option<Has> {
    Some(match c {
        'A' | 'C' | 'D' | 'E' | 'I' | 'M' | 'N' | 'P' | 'R' | 'c' | 'd' | 'i' | 'j' | 'o' | 'p'
        | 's' | 't' | 'g' | 'm' => Has::Required,
        'F' | 'L' | 'X' | 'Z' | 'S' | 'W' | 'h' | 'w' => Has::Optional,
        'V' | '4' | '6' | 'f' | 'n' | 'v' | 'x' => Has::No,
        _ => return None,
    })
}

/// Up to `N` values held inline, more in a vector: a rule's extensions, and
/// the options of each, are a handful, parsed without an allocation each.
/// Reads as a slice.
#[derive(Debug, Clone)]
enum Few<T, const N: usize> {
    Inline([T; N], usize),
    Spilled(Vec<T>),
}

impl<T: Default, const N: usize> Default for Few<T, N> {
    fn default() -> Self {
        Few::Inline(std::array::from_fn(|_| T::default()), 0)
    }
}

impl<T: Default, const N: usize> Few<T, N> {
    fn push(&mut self, v: T) {
        match self {
            Few::Inline(list, len) if *len < N => {
                list[*len] = v;
                *len += 1;
            }
            Few::Inline(list, _) => {
                let mut all: Vec<T> = Vec::with_capacity(2 * N);
                all.extend(list.iter_mut().map(std::mem::take));
                all.push(v);
                *self = Few::Spilled(all);
            }
            Few::Spilled(all) => all.push(v),
        }
    }
}

impl<T, const N: usize> std::ops::Deref for Few<T, N> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            Few::Inline(list, len) => &list[..*len],
            Few::Spilled(all) => all,
        }
    }
}

struct Loaded<'w> {
    codec: &'static dyn Codec,
    opts: Few<OptValue<'w>, 2>,
    /// Column of `-m NAME` / `-j NAME` (or of the option that loaded it).
    col: usize,
    /// Column of each option in `opts`.
    opt_cols: Few<usize, 2>,
}

impl Loaded<'_> {
    fn new(codec: &'static dyn Codec, col: usize) -> Self {
        Loaded {
            codec,
            opts: Few::default(),
            col,
            opt_cols: Few::default(),
        }
    }

    /// The column a codec's error is most likely about: the option whose
    /// argument or name the message quotes, else the extension itself.
    fn locate(&self, msg: &str) -> usize {
        for (o, col) in self.opts.iter().zip(self.opt_cols.iter()) {
            if o.args.iter().any(|a| !a.is_empty() && msg.contains(&**a)) {
                return *col;
            }
        }
        for (o, col) in self.opts.iter().zip(self.opt_cols.iter()) {
            if msg.contains(&format!("--{}", o.name)) {
                return *col;
            }
        }
        self.col
    }
}

/// The builtin options a rule line set (`-p`, `-s`, `-j` ...), in the order
/// given; each at most once (a second one is refused before it is added).
#[derive(Default)]
struct SeenOptions {
    list: [char; 16],
    len: usize,
}

impl SeenOptions {
    fn contains(&self, c: char) -> bool {
        self.list[..self.len].contains(&c)
    }

    fn push(&mut self, c: char) {
        // Only the few flags set_option takes, each once: far below 16.
        if self.len < self.list.len() {
            self.list[self.len] = c;
            self.len += 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = char> + '_ {
        self.list[..self.len].iter().copied()
    }
}

/// What a rule line says, its text borrowed from the line's words.
#[derive(Default)]
struct RuleState<'w> {
    command: Option<(char, usize)>,
    chain: Option<&'w str>,
    rulenum: Option<usize>,
    policy: Option<&'w str>,
    newname: Option<&'w str>,
    options: SeenOptions,
    invflags: u8,
    flags: u8,
    proto: Option<(Cow<'w, str>, u16, usize)>,
    src: Option<(&'w str, usize)>,
    dst: Option<(&'w str, usize)>,
    in_iface: Interface,
    out_iface: Interface,
    jump: Option<(&'w str, bool, usize)>,
    counters: Option<Counters>,
    /// Matches in load order; the target (if an extension) separately.
    matches: Vec<Loaded<'w>>,
    target: Option<Loaded<'w>>,
    /// Load order for option lookup: (is_target, index into matches).
    load_order: Few<Option<usize>, 4>,
    proto_used: bool,
    skip_line: bool,
}

/// Which extension (or builtin) an option name refers to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum OptRef {
    Builtin(usize),
    Ext(Option<usize>, usize),
}

impl RuleState<'_> {
    fn ext_codec(&self, owner: Option<usize>) -> &'static dyn Codec {
        match owner {
            None => self.target.as_ref().expect("target loaded").codec,
            Some(i) => self.matches[i].codec,
        }
    }

    /// Resolves a long option name as getopt_long does over iptables' merged
    /// table: own options first, then extensions, most recently loaded first;
    /// an exact name wins, otherwise a unique prefix.
    fn lookup_long(
        &self,
        name: &str,
        family: Family,
    ) -> std::result::Result<Option<OptRef>, String> {
        // A match loaded again (`-m comment ... -m comment`) is a clone in
        // iptables: its options are in getopt's table once, and go to the
        // newest instance (libxtables marks the older ones completed). So an
        // abbreviation of them is not ambiguous: only the newest instance of
        // each extension is listed.
        let key = |owner: Option<usize>| (owner.is_none(), self.ext_codec(owner).name());
        let order = &self.load_order;
        // Newest first; an extension loaded again later is skipped here.
        let newest = move || {
            (0..order.len())
                .rev()
                .filter(move |&k| !order[k + 1..].iter().any(|&o| key(o) == key(order[k])))
                .map(move |k| order[k])
        };
        // Walked twice without collecting: this runs for every long option
        // of every rule.
        let all = || {
            BUILTIN
                .iter()
                .enumerate()
                // ip6tables has no `--fragments` (only the short `-f`, which
                // it refuses): `--fr` is then a unique prefix of, say, `--from`.
                .filter(move |(_, (n, _, _))| !(family == Family::V6 && *n == "fragments"))
                .map(|(i, (n, _, _))| (OptRef::Builtin(i), *n))
                .chain(newest().flat_map(move |owner| {
                    self.ext_codec(owner)
                        .options()
                        .iter()
                        .enumerate()
                        .map(move |(j, o)| (OptRef::Ext(owner, j), o.name))
                }))
        };
        // An exact name: iptables' own (found by hash: this runs for every
        // long option of every rule), else the extensions' in the order
        // above.
        let builtin =
            builtin_long(name).filter(|&i| !(family == Family::V6 && BUILTIN[i].0 == "fragments"));
        if let Some(i) = builtin {
            return Ok(Some(OptRef::Builtin(i)));
        }
        // Newest first: an older instance of an extension loaded again has
        // the same options as the newer one met before it, so the plain
        // load order (reversed) finds what `newest` would.
        for &owner in order.iter().rev() {
            let opts = self.ext_codec(owner).options();
            if let Some(j) = opts.iter().position(|o| o.name == name) {
                return Ok(Some(OptRef::Ext(owner, j)));
            }
        }
        let mut prefixed = all().filter(|(_, n)| n.starts_with(name));
        let Some((first, _)) = prefixed.next() else {
            return Ok(None);
        };
        // Synonyms of one builtin (same letter) are not ambiguous.
        let same = |r: &OptRef| match (r, first) {
            (OptRef::Builtin(a), OptRef::Builtin(b)) => BUILTIN[*a].1 == BUILTIN[b].1,
            _ => *r == first,
        };
        if prefixed.all(|(r, _)| same(&r)) {
            return Ok(Some(first));
        }
        let names: Vec<String> = all()
            .filter(|(_, n)| n.starts_with(name))
            .map(|(_, n)| format!("--{n}"))
            .collect();
        Err(format!(
            "option `--{name}' is ambiguous: it could be {}",
            names.join(", ")
        ))
    }
}

struct Cursor<'w> {
    words: &'w [Word<'w>],
    i: usize,
}

impl Cursor<'_> {
    /// xs_has_arg: a next word that does not start with `-` or `!`.
    fn has_positional(&self) -> bool {
        self.words
            .get(self.i)
            .is_some_and(|w| !w.text.starts_with('-') && !w.text.starts_with('!'))
    }
}

fn line_err(lc: &LineCtx, col: usize, msg: impl Into<String>) -> Error {
    lc.err(col, msg)
}

/// Parses one rule line of `table` (for callers that build rules from text:
/// `-A INPUT -p tcp --dport 22 -j ACCEPT`). Returns `None` for a line that
/// iptables-restore skips (`-6` in an IPv4 file).
pub fn parse_rule(
    line: &str,
    table: &str,
    family: Family,
    revs: &dyn RevisionSource,
) -> Result<Option<Op>> {
    let opts = RestoreOptions {
        counters: true,
        ..RestoreOptions::new(family)
    };
    let lc = LineCtx {
        file: "<rule>",
        line: 1,
        text: line,
    };
    parse_rule_line(&lc, line, table, &opts, revs)
}

pub(super) fn parse_rule_line(
    lc: &LineCtx,
    line: &str,
    table: &str,
    opts: &RestoreOptions,
    revs: &dyn RevisionSource,
) -> Result<Option<Op>> {
    let mut rest = line;
    let mut offset = 0usize;
    let mut file_counters = None;
    if line.starts_with('[') {
        let close = line
            .find(']')
            .ok_or_else(|| lc.err(1, "Bad line: need ] after the rule counters [PACKETS:BYTES"))?;
        let inner = &line[1..close];
        let (p, b) = inner
            .split_once(':')
            .ok_or_else(|| lc.err(2, "Bad line: need : in the rule counters [PACKETS:BYTES]"))?;
        if opts.counters {
            let p = leading_u64(p).filter(|(_, r)| r.is_empty()).map(|(v, _)| v);
            let b = leading_u64(b).filter(|(_, r)| r.is_empty()).map(|(v, _)| v);
            match (p, b) {
                (Some(p), Some(b)) => {
                    file_counters = Some(Counters {
                        packets: p,
                        bytes: b,
                    })
                }
                _ => return Err(lc.err(2, "counters not numeric: expected [PACKETS:BYTES]")),
            }
        }
        rest = &line[close + 1..];
        offset = close + 1;
    }
    let mut words = split_words(rest).map_err(|(c, m)| lc.err(c + offset, m))?;
    // One search of the line; its words only when it has a carriage return.
    let has_cr = rest.as_bytes().contains(&b'\r');
    for w in &mut words {
        w.column += offset;
        if has_cr && w.text.contains('\r') {
            return Err(lc.err(
                w.column,
                "carriage return in the line: the file has DOS line endings, which iptables-restore does not accept",
            ));
        }
    }
    if words.is_empty() {
        return Err(lc.err(
            1,
            "no command specified: expected -A, -I, -D, -R, -N, -X, -F, -Z, -P or -E",
        ));
    }
    let mut st = RuleState::default();
    if let Some(c) = file_counters {
        st.counters = Some(c);
    }
    let mut cur = Cursor {
        words: &words,
        i: 0,
    };
    let mut invert: Option<usize> = None;
    let family = opts.family;

    while cur.i < words.len() {
        let w = &words[cur.i];
        cur.i += 1;
        let text: &str = &w.text;
        if text == "!" && !w.quoted {
            if invert.is_some() {
                return Err(line_err(lc, w.column, "multiple consecutive ! not allowed"));
            }
            invert = Some(w.column);
            continue;
        }
        if let Some(long) = text.strip_prefix("--").filter(|l| !l.is_empty()) {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let mut retried = false;
            loop {
                let r = st
                    .lookup_long(name, family)
                    .map_err(|m| line_err(lc, w.column, m))?;
                match r {
                    Some(OptRef::Builtin(i)) => {
                        let (lname, short, has) = BUILTIN[i];
                        if attached.is_some() {
                            refuse_attached(lc, w, short)?;
                        }
                        let arg = take_arg(lc, &mut cur, w, has, attached, ("--", lname))?;
                        builtin_option(
                            lc,
                            &mut st,
                            &mut cur,
                            short,
                            arg,
                            invert.take(),
                            w.column,
                            table,
                            opts,
                        )?;
                        break;
                    }
                    Some(OptRef::Ext(owner, j)) => {
                        let codec = st.ext_codec(owner);
                        let spec = codec.options()[j];
                        let mut args = ext::Args::default();
                        match spec.arg {
                            // No iptables extension has a getopt optional
                            // argument: the `Optional` ones (rateest's
                            // --rateest-bps and friends) are getopt flags
                            // whose parser takes the next word itself, so
                            // `--rateest-pps=5` is refused like a flag's.
                            Arg::None | Arg::Optional if attached.is_some() => {
                                return Err(line_err(
                                    lc,
                                    w.column,
                                    format!("option `--{}' doesn't allow an argument", spec.name),
                                ));
                            }
                            Arg::None => {}
                            Arg::One => args.push(
                                take_arg(
                                    lc,
                                    &mut cur,
                                    w,
                                    Has::Required,
                                    attached,
                                    ("--", spec.name),
                                )?
                                .unwrap_or_default(),
                            ),
                            Arg::Two => {
                                args.push(
                                    take_arg(
                                        lc,
                                        &mut cur,
                                        w,
                                        Has::Required,
                                        attached,
                                        ("--", spec.name),
                                    )?
                                    .unwrap_or_default(),
                                );
                                if !cur.has_positional() {
                                    return Err(line_err(
                                        lc,
                                        w.column,
                                        format!("--{} requires two args.", spec.name),
                                    ));
                                }
                                args.push(&*words[cur.i].text);
                                cur.i += 1;
                            }
                            Arg::Optional => {
                                if cur.has_positional() {
                                    args.push(&*words[cur.i].text);
                                    cur.i += 1;
                                }
                            }
                        }
                        let invert_col = invert.take();
                        let ov = OptValue {
                            name: spec.name,
                            invert: invert_col.is_some(),
                            args,
                        };
                        let loaded = match owner {
                            None => st.target.as_mut().expect("target loaded"),
                            Some(m) => &mut st.matches[m],
                        };
                        loaded.opts.push(ov);
                        loaded.opt_cols.push(invert_col.unwrap_or(w.column));
                        break;
                    }
                    None => {
                        if !retried && load_proto(&mut st, family, w.column) {
                            retried = true;
                            continue;
                        }
                        return Err(line_err(
                            lc,
                            w.column,
                            format!("unknown option \"--{name}\""),
                        ));
                    }
                }
            }
            continue;
        }
        if text.len() > 1 && text.starts_with('-') && !text.starts_with("--") {
            let flags = &text[1..];
            let mut k = 0;
            while let Some(c) = flags[k..].chars().next() {
                k += c.len_utf8();
                let has = short_has(c)
                    .ok_or_else(|| line_err(lc, w.column, format!("unknown option \"-{c}\"")))?;
                let attached = &flags[k..];
                let arg = match has {
                    Has::No => None,
                    _ if !attached.is_empty() => {
                        refuse_attached(lc, w, c)?;
                        k = flags.len();
                        Some(attached)
                    }
                    _ => take_arg(
                        lc,
                        &mut cur,
                        w,
                        has,
                        None,
                        ("-", c.encode_utf8(&mut [0u8; 4])),
                    )?,
                };
                builtin_option(
                    lc,
                    &mut st,
                    &mut cur,
                    c,
                    arg,
                    invert.take(),
                    w.column,
                    table,
                    opts,
                )?;
                if st.skip_line {
                    return Ok(None);
                }
            }
            continue;
        }
        if text == "--" {
            return Err(line_err(
                lc,
                w.column,
                "`--' ends the options, but a rule line has nothing after them",
            ));
        }
        return Err(line_err(lc, w.column, format!("Bad argument `{text}': expected an option (words that are not options may only follow the option that takes them)")));
    }
    if st.skip_line {
        return Ok(None);
    }
    if let Some(col) = invert {
        return Err(line_err(lc, col, "nothing appropriate following !"));
    }
    finish(lc, st, table, opts, revs).map(Some)
}

/// getopt's argument rules: `Required` takes the attached text or the next
/// word, whatever it looks like; `Optional` only attached text or a next
/// word that does not start with `-` or `!` (xs_has_arg).
fn take_arg<'w>(
    lc: &LineCtx,
    cur: &mut Cursor<'w>,
    w: &Word,
    has: Has,
    attached: Option<&'w str>,
    what: (&str, &str),
) -> Result<Option<&'w str>> {
    // The option as written (`--dport`, `-p`), spelled out only for an error.
    let what = || format!("{}{}", what.0, what.1);
    match has {
        Has::No => {
            if attached.is_some() {
                return Err(lc.err(
                    w.column,
                    format!("option `{}' doesn't allow an argument", what()),
                ));
            }
            Ok(None)
        }
        Has::Required => {
            if let Some(a) = attached {
                return Ok(Some(a));
            }
            let next = cur.words.get(cur.i).ok_or_else(|| {
                lc.err(
                    w.column,
                    format!("option \"{}\" requires an argument", what()),
                )
            })?;
            cur.i += 1;
            Ok(Some(&next.text))
        }
        Has::Optional => {
            if attached.is_some() {
                return Ok(attached);
            }
            Ok(None)
        }
    }
}

/// Loads the protocol's match implicitly (`-p tcp --dport 22`), once per rule.
fn load_proto(st: &mut RuleState, family: Family, col: usize) -> bool {
    if st.proto_used {
        return false;
    }
    let Some((name, num, _)) = &st.proto else {
        return false;
    };
    let pname = match name.parse::<u16>() {
        Ok(_) => proto_to_name(*num),
        Err(_) => Some(&name[..]),
    };
    let Some(pname) = pname else { return false };
    let Some(codec) = ext::by_name(Kind::Match, family, pname) else {
        return false;
    };
    st.proto_used = true;
    st.matches.push(Loaded::new(codec, col));
    st.load_order.push(Some(st.matches.len() - 1));
    true
}

/// iptables' own protocol names (xtables_chain_protos), looked up before
/// /etc/protocols in both directions.
const CHAIN_PROTOS: &[(&str, u16)] = &[
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

/// The name iptables prints for a protocol number: xtables_chain_protos
/// first, then /etc/protocols.
pub(crate) fn proto_to_name(num: u16) -> Option<&'static str> {
    if let Some((n, _)) = CHAIN_PROTOS.iter().find(|(_, p)| *p == num) {
        return Some(n);
    }
    u8::try_from(num).ok().and_then(crate::netdb::protocol_name)
}

/// xtables_parse_protocol.
fn parse_protocol(s: &str) -> std::result::Result<u16, String> {
    if let Some(v) = ext::parse_uint(s, 0, 255) {
        return Ok(v as u16);
    }
    if let Some((_, n)) = CHAIN_PROTOS.iter().find(|(n, _)| *n == s) {
        return Ok(*n);
    }
    crate::netdb::protocol_by_name(s)
        .map(u16::from)
        .ok_or_else(|| format!("unknown protocol \"{s}\" specified"))
}

/// iptables reads the value of -p, -s, -d, -i, -o and -j from the next
/// word of the command line, not from text attached to the option (`-ptcp`,
/// `--protocol=tcp`), so it fails on those forms: so do we, more clearly.
fn refuse_attached(lc: &LineCtx, w: &Word, c: char) -> Result<()> {
    if "psdioj".contains(c) {
        return Err(lc.err(
            w.column,
            format!("`{}': iptables does not accept a value attached to -{c}; write `-{c} VALUE' with a space", w.text),
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn builtin_option<'w>(
    lc: &LineCtx,
    st: &mut RuleState<'w>,
    cur: &mut Cursor<'w>,
    c: char,
    arg: Option<&'w str>,
    invert: Option<usize>,
    col: usize,
    table: &str,
    opts: &RestoreOptions,
) -> Result<()> {
    let family = opts.family;
    let command = |st: &mut RuleState, c: char| -> Result<()> {
        if invert.is_some() {
            return Err(lc.err(col, "unexpected '!' flag before a command"));
        }
        if let Some((prev, _)) = st.command {
            return Err(lc.err(col, format!("Cannot use -{c} with -{prev}")));
        }
        st.command = Some((c, col));
        Ok(())
    };
    let set_option = |st: &mut RuleState, c: char, inv_bit: u8| -> Result<()> {
        if st.options.contains(c) {
            return Err(lc.err(col, format!("multiple -{c} flags not allowed")));
        }
        st.options.push(c);
        if invert.is_some() {
            if inv_bit == 0 {
                return Err(lc.err(col, format!("cannot have ! before -{c}")));
            }
            st.invflags |= inv_bit;
        }
        Ok(())
    };
    let intra = |a: Option<&str>, c: char| -> Result<()> {
        if a == Some("!") {
            return Err(lc.err(
                col,
                format!("`-{c} ! ARG' (negation after the option) is not accepted by iptables 1.8; write `! -{c} ARG'"),
            ));
        }
        Ok(())
    };
    let positional = |cur: &mut Cursor<'w>| -> Option<&'w str> {
        if cur.has_positional() {
            cur.i += 1;
            Some(&cur.words[cur.i - 1].text)
        } else {
            None
        }
    };
    let rulenum = |s: &str| -> Result<usize> {
        ext::parse_uint(s, 1, i32::MAX as u64)
            .map(|v| v as usize)
            .ok_or_else(|| lc.err(col, format!("Invalid rule number `{s}'")))
    };
    match c {
        'A' | 'C' => {
            command(st, c)?;
            st.chain = arg;
        }
        'D' => {
            command(st, c)?;
            st.chain = arg;
            if let Some(n) = positional(cur) {
                st.rulenum = Some(rulenum(n)?);
            }
        }
        'R' => {
            command(st, c)?;
            st.chain = arg;
            let n = positional(cur).ok_or_else(|| lc.err(col, "-R requires a rule number"))?;
            st.rulenum = Some(rulenum(n)?);
        }
        'I' => {
            command(st, c)?;
            st.chain = arg;
            st.rulenum = Some(match positional(cur) {
                Some(n) => rulenum(n)?,
                None => 1,
            });
        }
        'F' | 'X' | 'Z' => {
            command(st, c)?;
            st.chain = arg.or_else(|| positional(cur));
            if c == 'Z' {
                if let Some(n) = positional(cur) {
                    st.rulenum = Some(rulenum(n)?);
                }
            }
        }
        'L' | 'S' => {
            return Err(lc.err(
                col,
                format!("-{c} lists rules; it has no place in a restore file"),
            ));
        }
        'N' => {
            command(st, c)?;
            let name = arg.unwrap_or_default();
            valid_new_chain_name(lc, col, name, family)?;
            st.chain = Some(name);
        }
        'E' => {
            command(st, c)?;
            st.chain = arg;
            st.newname = Some(
                positional(cur)
                    .ok_or_else(|| lc.err(col, "-E requires old-chain-name and new-chain-name"))?,
            );
        }
        'P' => {
            command(st, c)?;
            st.chain = arg;
            st.policy = Some(
                positional(cur).ok_or_else(|| lc.err(col, "-P requires a chain and a policy"))?,
            );
        }
        'h' => return Err(lc.err(col, "-h prints help; it has no place in a restore file")),
        'V' => {
            return Err(lc.err(
                col,
                "-V prints the version; it has no place in a restore file",
            ))
        }
        'p' => {
            intra(arg, c)?;
            set_option(st, 'p', inv_flags::PROTO)?;
            let name = arg.unwrap_or_default();
            let name: Cow<str> = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(name.to_ascii_lowercase())
            } else {
                Cow::Borrowed(name)
            };
            let num = parse_protocol(&name).map_err(|m| lc.err(col, m))?;
            if num == 0 && st.invflags & inv_flags::PROTO != 0 {
                return Err(lc.err(col, "rule would never match protocol"));
            }
            st.proto = Some((name, num, col));
        }
        's' => {
            intra(arg, c)?;
            set_option(st, 's', inv_flags::SRCIP)?;
            st.src = Some((arg.unwrap_or_default(), col));
        }
        'd' => {
            intra(arg, c)?;
            set_option(st, 'd', inv_flags::DSTIP)?;
            st.dst = Some((arg.unwrap_or_default(), col));
        }
        'i' | 'o' => {
            let a = arg.unwrap_or_default();
            if a.is_empty() {
                return Err(lc.err(col, "Empty interface is likely to be undesired"));
            }
            intra(Some(a), c)?;
            set_option(
                st,
                c,
                if c == 'i' {
                    inv_flags::VIA_IN
                } else {
                    inv_flags::VIA_OUT
                },
            )?;
            let iface = Interface::parse(a).map_err(|m| lc.err(col, m))?;
            if c == 'i' {
                st.in_iface = iface;
            } else {
                st.out_iface = iface;
            }
        }
        'f' => {
            if family == Family::V6 {
                return Err(lc.err(col, "`-f' is not supported in IPv6, use -m frag instead"));
            }
            set_option(st, 'f', inv_flags::FRAG)?;
            st.flags |= ip_flags::FRAG;
        }
        'j' | 'g' => {
            set_option(st, 'j', 0)?;
            let name = arg.unwrap_or_default();
            if name.is_empty() {
                return Err(lc.err(col, "Invalid target name (too short)"));
            }
            if crate::text::byte_len(name) >= 29 {
                return Err(lc.err(col, format!("Invalid target name `{name}' (28 chars max)")));
            }
            if name.contains(char::is_whitespace) {
                return Err(lc.err(col, format!("Invalid target name `{name}'")));
            }
            if c == 'j' && Verdict::from_name(name).is_none() {
                if let Some(codec) = ext::by_name(Kind::Target, family, name) {
                    st.target = Some(Loaded::new(codec, col));
                    st.load_order.push(None);
                }
            }
            st.jump = Some((name, c == 'g', col));
        }
        'm' => {
            if invert.is_some() {
                return Err(lc.err(col, "unexpected ! flag before --match"));
            }
            let name = arg.unwrap_or_default();
            let codec = ext::by_name(Kind::Match, family, name).ok_or_else(|| {
                lc.err(col, format!("Couldn't load match `{name}': no such match extension is known to iptables-atomic"))
            })?;
            st.matches.push(Loaded::new(codec, col));
            st.load_order.push(Some(st.matches.len() - 1));
        }
        'c' => {
            set_option(st, 'c', 0)?;
            let a = arg.unwrap_or_default();
            let (p, b) = match a.split_once(',') {
                Some((p, b)) => (p, b),
                None => (
                    a,
                    positional(cur)
                        .ok_or_else(|| lc.err(col, "-c requires packet and byte counter"))?,
                ),
            };
            let p = leading_u64(p)
                .map(|v| v.0)
                .ok_or_else(|| lc.err(col, "-c packet counter not numeric"))?;
            let b = leading_u64(b)
                .map(|v| v.0)
                .ok_or_else(|| lc.err(col, "-c byte counter not numeric"))?;
            if opts.counters {
                st.counters = Some(Counters {
                    packets: p,
                    bytes: b,
                });
            } else {
                st.counters.get_or_insert(Counters {
                    packets: p,
                    bytes: b,
                });
            }
        }
        '4' => {
            if family == Family::V6 {
                st.skip_line = true;
            }
        }
        '6' => {
            if family == Family::V4 {
                st.skip_line = true;
            }
        }
        't' => {
            return Err(lc.err(
                col,
                "The -t option cannot be used in iptables-restore: the table comes from `*TABLE'",
            ))
        }
        'w' | 'W' => {
            return Err(lc.err(col, format!("You cannot use `-{c}' from iptables-restore")))
        }
        'n' => set_option(st, 'n', 0)?,
        'v' | 'x' | '0' | 'M' => {}
        _ => return Err(lc.err(col, format!("unknown option \"-{c}\""))),
    }
    let _ = table;
    Ok(())
}

fn valid_new_chain_name(lc: &LineCtx, col: usize, name: &str, family: Family) -> Result<()> {
    if crate::text::byte_len(name) >= 29 {
        return Err(lc.err(
            col,
            format!("chain name `{name}' too long (must be under 29 chars)"),
        ));
    }
    if name.starts_with('-') || name.starts_with('!') {
        return Err(lc.err(
            col,
            format!("chain name not allowed to start with `{}'", &name[..1]),
        ));
    }
    if Verdict::from_name(name).is_some() || ext::by_name(Kind::Target, family, name).is_some() {
        return Err(lc.err(col, "chain name may not clash with target name"));
    }
    if name.contains(char::is_whitespace) {
        return Err(lc.err(col, format!("Invalid chain name `{name}'")));
    }
    Ok(())
}

fn finish(
    lc: &LineCtx,
    st: RuleState,
    table: &str,
    opts: &RestoreOptions,
    revs: &dyn RevisionSource,
) -> Result<Op> {
    let family = opts.family;
    let (cmd, cmd_col) = st.command.ok_or_else(|| {
        lc.err(
            1,
            "no command specified: expected -A, -I, -D, -R, -N, -X, -F, -Z, -P or -E",
        )
    })?;
    let has_rule = matches!(cmd, 'A' | 'C' | 'I' | 'R') || (cmd == 'D' && st.rulenum.is_none());
    if table == "nat"
        && (st.policy == Some("DROP") || st.jump.is_some_and(|(n, g, _)| n == "DROP" && !g))
    {
        return Err(lc.err(cmd_col, "The \"nat\" table is not intended for filtering, the use of DROP is therefore inhibited."));
    }
    if !has_rule {
        if let Some(o) = st.options.iter().find(|&o| o != 'c' || cmd != 'P') {
            return Err(lc.err(cmd_col, format!("Illegal option `-{o}' with this command")));
        }
    }
    let chain = st.chain;
    let chain_ref = || chain.unwrap_or_default().to_string();
    if let Some(c) = chain {
        if crate::text::byte_len(c) >= 29 {
            return Err(lc.err(
                cmd_col,
                format!("chain name `{c}' too long (must be under 29 chars)"),
            ));
        }
    }
    if !has_rule {
        return Ok(match cmd {
            'D' => Op::DeleteNum {
                chain: chain_ref(),
                num: st.rulenum.unwrap_or(1),
            },
            'N' => Op::NewChain(chain_ref()),
            'X' => Op::DeleteChain(chain.map(str::to_string)),
            'F' => Op::Flush(chain.map(str::to_string)),
            'Z' => Op::Zero(chain.map(str::to_string), st.rulenum),
            'P' => Op::Policy {
                chain: chain_ref(),
                policy: st.policy.unwrap_or_default().to_string(),
                counters: st.counters.filter(|_| opts.counters),
            },
            'E' => Op::Rename {
                old: chain_ref(),
                new: st.newname.unwrap_or_default().to_string(),
            },
            _ => return Err(lc.err(cmd_col, format!("-{cmd} is not supported here"))),
        });
    }
    let c = chain_ref();
    if st.options.contains('o') && (c == "PREROUTING" || c == "INPUT") {
        return Err(lc.err(cmd_col, format!("Can't use -o with {c}")));
    }
    if st.options.contains('i') && (c == "POSTROUTING" || c == "OUTPUT") {
        return Err(lc.err(cmd_col, format!("Can't use -i with {c}")));
    }

    // The IP header part.
    let mut ip = IpMatch::any(family);
    ip.invflags = st.invflags;
    ip.flags = st.flags;
    if let Some((_, num, _)) = &st.proto {
        ip.proto = *num;
        if family == Family::V6 {
            ip.flags |= ip_flags::PROTO6;
        }
    }
    // The goto flag is derived from the target when the rule is encoded.
    ip.in_iface = st.in_iface;
    ip.out_iface = st.out_iface;

    let srcs = Addresses::of(family, st.src.map(|s| s.0))
        .map_err(|m| lc.err(st.src.map_or(cmd_col, |s| s.1), m))?;
    let dsts = Addresses::of(family, st.dst.map(|d| d.0))
        .map_err(|m| lc.err(st.dst.map_or(cmd_col, |d| d.1), m))?;
    if (srcs.len() > 1 || dsts.len() > 1)
        && st.invflags & (inv_flags::SRCIP | inv_flags::DSTIP) != 0
    {
        return Err(lc.err(
            cmd_col,
            "! not allowed with multiple source or destination IP addresses",
        ));
    }
    if cmd == 'R' && (srcs.len() != 1 || dsts.len() != 1) {
        return Err(lc.err(
            cmd_col,
            "Replacement rule does not specify a unique address",
        ));
    }

    // Extensions, with the revision iptables would pick.
    let ctx = RuleContext {
        family,
        ip: &ip,
        table,
    };
    let mut matches = Vec::with_capacity(st.matches.len());
    for m in &st.matches {
        // The input is fine; the kernel lacks the extension (iptables-restore
        // exits 1 here too, when the kernel refuses the table).
        let rev = ext::pick_revision(m.codec, family, revs).ok_or_else(|| {
            lc.fail(
                cmd_col,
                format!(
                    "Couldn't load match `{}': {}",
                    m.codec.name(),
                    ext::missing_module_hint(family, Kind::Match, m.codec.kernel_name())
                ),
            )
        })?;
        let data = m
            .codec
            .parse(rev, &m.opts[..], &ctx)
            .map_err(|msg| lc.err(m.locate(&msg), msg))?;
        matches.push(ext::make_extension(m.codec, rev, data));
    }
    let target = match st.jump {
        None => TargetSpec::None,
        Some((name, goto, _)) => {
            if let (Some(v), false) = (Verdict::from_name(name), goto) {
                TargetSpec::Verdict(v)
            } else {
                let ext = match &st.target {
                    Some(t) => {
                        let rev = ext::pick_revision(t.codec, family, revs).ok_or_else(|| {
                            lc.fail(
                                cmd_col,
                                format!(
                                    "Couldn't load target `{name}': {}",
                                    ext::missing_module_hint(
                                        family,
                                        Kind::Target,
                                        t.codec.kernel_name()
                                    )
                                ),
                            )
                        })?;
                        let data = t
                            .codec
                            .parse(rev, &t.opts[..], &ctx)
                            .map_err(|msg| lc.err(t.locate(&msg), msg))?;
                        Some(ext::make_extension(t.codec, rev, data))
                    }
                    None => None,
                };
                TargetSpec::Named {
                    name: name.to_string(),
                    ext,
                    goto,
                }
            }
        }
    };

    let counters = st.counters.filter(|_| opts.counters).unwrap_or_default();
    let mut rules = Vec::with_capacity(srcs.len() * dsts.len());
    let (mut matches, mut target) = (Some(matches), Some(target));
    let last = srcs.len() * dsts.len() - 1;
    for (i, (s, sm)) in srcs.iter().enumerate() {
        for (j, (d, dm)) in dsts.iter().enumerate() {
            let mut ip = ip.clone();
            ip.src = *s;
            ip.src_mask = *sm;
            ip.dst = *d;
            ip.dst_mask = *dm;
            // The last (usually the only) address pair takes the extensions
            // without a copy.
            let (m, t) = if i * dsts.len() + j == last {
                (
                    matches.take().unwrap_or_default(),
                    target.take().unwrap_or(TargetSpec::None),
                )
            } else {
                (
                    matches.clone().unwrap_or_default(),
                    target.clone().unwrap_or(TargetSpec::None),
                )
            };
            let rule = Rule {
                ip,
                matches: m,
                target: Target::Fallthrough,
                counters,
                origin: None,
                line: Some(lc.line),
            };
            rules.push(RuleSpec { rule, target: t });
        }
    }
    Ok(match cmd {
        'A' => Op::Append { chain: c, rules },
        'C' => Op::Check { chain: c, rules },
        'I' => Op::Insert {
            chain: c,
            num: st.rulenum.unwrap_or(1),
            rules,
        },
        'D' => Op::Delete { chain: c, rules },
        'R' => Op::Replace {
            chain: c,
            num: st.rulenum.unwrap_or(1),
            rule: Box::new(rules.remove(0)),
        },
        _ => unreachable!("has_rule covers A, C, I, D, R"),
    })
}

// ---------------------------------------------------------------------------
// Addresses

/// The addresses of a `-s`/`-d` argument: the first, then any others (a
/// comma list, a name with several addresses). Kept without a vector for
/// the usual single address.
struct Addresses {
    first: (IpAddr, IpAddr),
    more: Vec<(IpAddr, IpAddr)>,
}

impl Addresses {
    /// The addresses of `s`, or of any address when the rule gives none.
    fn of(family: Family, s: Option<&str>) -> std::result::Result<Addresses, String> {
        let any = (family.any(), family.any());
        let Some(s) = s else {
            return Ok(Addresses {
                first: any,
                more: Vec::new(),
            });
        };
        let mut first = None;
        let mut more = Vec::new();
        each_address(family, s, &mut |a, m| match first {
            None => first = Some((a, m)),
            Some(_) => more.push((a, m)),
        })?;
        Ok(Addresses {
            // A name resolves to at least one address or is an error.
            first: first.unwrap_or(any),
            more,
        })
    }

    fn len(&self) -> usize {
        1 + self.more.len()
    }

    fn iter(&self) -> impl Iterator<Item = &(IpAddr, IpAddr)> {
        std::iter::once(&self.first).chain(&self.more)
    }
}

/// Parses a comma list of `ADDR[/MASK]` as iptables does; host names expand
/// to every address they resolve to. Each address (masked) and its mask is
/// given to `found`.
fn each_address(
    family: Family,
    s: &str,
    found: &mut dyn FnMut(IpAddr, IpAddr),
) -> std::result::Result<(), String> {
    for item in s.split(',') {
        match address_item(family, item)? {
            AddressItem::Numeric(a, m) => found(a, m),
            AddressItem::Name(host, IpAddr::V4(m)) => {
                for a in resolve4(host)? {
                    found(
                        IpAddr::V4(Ipv4Addr::from(u32::from(a) & u32::from(m))),
                        IpAddr::V4(m),
                    );
                }
            }
            AddressItem::Name(host, IpAddr::V6(m)) => {
                for a in resolve6(host)? {
                    found(
                        IpAddr::V6(Ipv6Addr::from(u128::from(a) & u128::from(m))),
                        IpAddr::V6(m),
                    );
                }
            }
        }
    }
    Ok(())
}

/// One `ADDR[/MASK]` of a `-s`/`-d` list, as iptables reads it.
enum AddressItem<'a> {
    /// A numeric address (masked), and its mask.
    Numeric(IpAddr, IpAddr),
    /// A host name to resolve, and the mask for its addresses.
    Name(&'a str, IpAddr),
}

/// Reads one item of a `-s`/`-d` list (a mask of 0 makes any host the
/// zero address, as iptables does).
fn address_item(family: Family, item: &str) -> std::result::Result<AddressItem<'_>, String> {
    let item = item.trim_start();
    let (host, mask) = match item.rfind('/') {
        Some(p) => (&item[..p], Some(&item[p + 1..])),
        None => (item, None),
    };
    Ok(match family {
        Family::V4 => {
            let mask = parse_mask4(mask)?;
            let m = IpAddr::V4(Ipv4Addr::from(mask));
            let host = if mask == 0 { "0.0.0.0" } else { host };
            match numeric4(host, false) {
                Some(a) => AddressItem::Numeric(IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask)), m),
                None => AddressItem::Name(host, m),
            }
        }
        Family::V6 => {
            let mask = parse_mask6(mask)?;
            let m = IpAddr::V6(Ipv6Addr::from(mask));
            let host = if mask == 0 { "::" } else { host };
            match host.parse::<Ipv6Addr>() {
                Ok(a) => AddressItem::Numeric(IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask)), m),
                Err(_) => AddressItem::Name(host, m),
            }
        }
    })
}

/// xtables_numeric_to_ipaddr: dotted quad, missing trailing parts are 0
/// ("10" is 10.0.0.0); each part a number 0..=255 in C notation.
fn numeric4(s: &str, is_mask: bool) -> Option<Ipv4Addr> {
    if is_mask && s.bytes().filter(|&b| b == b'.').count() < 3 {
        return None;
    }
    let mut b = [0u8; 4];
    for (i, p) in s.splitn(4, '.').enumerate() {
        b[i] = ext::parse_uint(p, 0, 255)? as u8;
    }
    Some(Ipv4Addr::from(b))
}

fn parse_mask4(mask: Option<&str>) -> std::result::Result<u32, String> {
    let Some(m) = mask else { return Ok(u32::MAX) };
    if let Some(a) = numeric4(m, true) {
        return Ok(u32::from(a));
    }
    let bits = ext::parse_uint(m, 0, 32).ok_or_else(|| {
        format!("invalid mask `{m}' specified: expected 0 to 32 or a dotted mask")
    })?;
    Ok(if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    })
}

/// The addresses of host name `host` (a numeric address is the caller's).
fn resolve4(host: &str) -> std::result::Result<Vec<Ipv4Addr>, String> {
    match crate::sys::resolve_ipv4(host) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(format!("host/network `{host}' not found")),
    }
}

fn parse_mask6(mask: Option<&str>) -> std::result::Result<u128, String> {
    let Some(m) = mask else { return Ok(u128::MAX) };
    if let Ok(a) = m.parse::<Ipv6Addr>() {
        return Ok(u128::from(a));
    }
    let bits = ext::parse_uint(m, 0, 128).ok_or_else(|| {
        format!("invalid mask `{m}' specified: expected 0 to 128 or an IPv6 mask")
    })?;
    Ok(if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    })
}

/// The addresses of host name `host` (a numeric address is the caller's).
fn resolve6(host: &str) -> std::result::Result<Vec<Ipv6Addr>, String> {
    match crate::sys::resolve_ipv6(host) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(format!("host/network `{host}' not found")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_reads_as_the_slice_it_was_given() {
        let mut few: Few<String, 2> = Few::default();
        assert!(few.is_empty());
        let all: Vec<String> = (0..5).map(|i| i.to_string()).collect();
        for (n, v) in all.iter().enumerate() {
            few.push(v.clone());
            assert_eq!(&few[..], &all[..=n]);
        }
        assert!(matches!(few, Few::Spilled(_)));
    }
    use crate::ext::{AssumeLatest, Kind};

    /// Every revision, like [`AssumeLatest`], but not shareable between
    /// threads: the parse stays on the calling thread.
    struct OneThread;

    impl RevisionSource for OneThread {
        fn supported(&self, _: Family, _: Kind, _: &str, _: u8) -> bool {
            true
        }
    }

    /// About 600 KB: two tables, the second one large, and `bad` lines
    /// (line number, text) put in place of generated ones.
    fn input(bad: &[(usize, &str)]) -> String {
        let mut lines = vec![
            "*raw".to_string(),
            ":PREROUTING ACCEPT [0:0]".into(),
            "-A PREROUTING -p udp --dport 53 -j CT --notrack".into(),
            "COMMIT".into(),
            "# the big one".into(),
            "*filter".into(),
            ":INPUT DROP [0:0]".into(),
            ":FORWARD DROP [0:0]".into(),
            ":OUTPUT ACCEPT [0:0]".into(),
            ":SVC - [0:0]".into(),
        ];
        for i in 0..6000 {
            lines.push(format!(
                "-A SVC -s 10.{}.{}.0/24 -p tcp -m multiport --dports 80,443 -m comment --comment \"svc \\\"{i}\\\"\" -j ACCEPT",
                i / 256,
                i % 256
            ));
            if i % 1000 == 0 {
                lines.push(String::new());
                lines.push(":X{i} - [0:0]".replace("{i}", &i.to_string()));
            }
        }
        lines.push("-A INPUT -j SVC".into());
        lines.push("COMMIT".into());
        for &(at, text) in bad {
            lines[at - 1] = text.to_string();
        }
        let mut text = lines.join("\n");
        text.push('\n');
        assert!(text.len() >= PARALLEL_BYTES);
        text
    }

    fn both(text: &str) -> (Result<Script>, Result<Script>) {
        let opts = RestoreOptions::new(Family::V4);
        (
            parse(text, &opts, &AssumeLatest),
            parse(text, &opts, &OneThread),
        )
    }

    #[test]
    fn a_large_input_parses_the_same_on_several_threads() {
        let text = input(&[]);
        assert!(
            !parse_ahead(&text, &RestoreOptions::new(Family::V4), &AssumeLatest).is_empty()
                || std::thread::available_parallelism().map_or(true, |n| n.get() < 2)
        );
        let (many, one) = both(&text);
        let many = many.expect("parses");
        assert_eq!(many.blocks.len(), 2);
        assert_eq!(many, one.expect("parses"));
    }

    #[test]
    fn the_first_error_in_the_file_is_the_one_reported() {
        // Errors in both halves of the rule lines, and a structural error
        // after them: the earliest wins, whichever thread saw it.
        for bad in [
            vec![(5000, "-A SVC -p tcp --dport 99999 -j ACCEPT")],
            vec![
                (1200, "-A SVC --bogus"),
                (5000, "-A SVC -p tcp --dport 99999 -j ACCEPT"),
            ],
            vec![
                (5000, "-A SVC -p tcp --dport 99999 -j ACCEPT"),
                (3000, "*nat"),
            ],
            vec![
                (2, "-A PREROUTING -m nosuchmatch"),
                (5000, "-A SVC --bogus"),
            ],
        ] {
            let text = input(&bad);
            let (many, one) = both(&text);
            let (many, one) = (many.unwrap_err(), one.unwrap_err());
            assert_eq!(many.to_string(), one.to_string());
            let first = bad.iter().map(|b| b.0).min().unwrap();
            assert_eq!(many.line(), Some(first), "{many}");
            // What parsed before the error is the same too.
            let opts = RestoreOptions::new(Family::V4);
            assert_eq!(
                parse_partial(&text, &opts, &AssumeLatest).0,
                parse_partial(&text, &opts, &OneThread).0
            );
        }
    }

    #[test]
    fn restore_t_skips_other_tables_on_every_thread() {
        let text = input(&[]);
        let opts = RestoreOptions {
            table: Some("raw".into()),
            ..RestoreOptions::new(Family::V4)
        };
        let many = parse(&text, &opts, &AssumeLatest).expect("parses");
        assert_eq!(many, parse(&text, &opts, &OneThread).expect("parses"));
        assert_eq!(many.blocks.len(), 1);
        assert_eq!(many.blocks[0].table, "raw");
    }
}
