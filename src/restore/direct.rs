//! The direct path of a restore: text → kernel blob, without the model.
//!
//! Most restore files are what iptables-save and kube-proxy write: per table
//! the chain declarations, then `-A` lines, then `COMMIT`. For those, each
//! rule line is parsed and encoded at once (on every core, at most 4, for a
//! large input; a line of the common shape by the one-pass reader
//! `parser::lean`, any other by the full rule parser) and kept, per thread
//! and table, as its kernel entry without the entry's zero words ([`pack`]:
//! a fifth of the bytes); each table is
//! then laid out from those (a large one on every core too, each thread
//! writing its own run of chains), the largest first, and the rules of a
//! table are dropped once it is. Nothing of a rule but its kernel bytes is
//! kept, which is what makes a large restore cheap in memory (and, where
//! fresh memory is costly, in time): at 100k rules the peak is the two
//! tables, the live one kept for a rollback and little else.
//!
//! Anything else — `-n`, `-T`, other commands (`-I`, `-D`, `-N`, `-P` …),
//! a declaration after a rule, a table in two blocks, a built-in chain
//! without a declared policy — and every error, is left to the model path
//! ([`encode_text`] answers `None`), which then reports it exactly as
//! before. The bytes are the model path's own: the same encoders write them
//! (`blob::encode`), and tests compare the two.

use std::ops::Range;

use super::parser::{
    lean_rule, on_threads, parse_chain_line, parse_rule_line, worker_threads, LeanJump, LineCtx,
    MAX_LINE, PARALLEL_BYTES,
};
use super::{Op, RestoreOptions, TargetSpec};
use crate::blob::encode::{
    append_rule, write_fixed, CounterSlot, EncodedTable, Fixed, MAX_TABLE_BYTES,
};
use crate::blob::layout::REPLACE_ROOM;
use crate::blob::pack::{pack, unpack_into};
use crate::ext::RevisionSource;
use crate::fasthash::FastMap;
use crate::rules::{builtin_hooks, Counters, Extension, Family, Rule, Target, Verdict, HOOK_NAMES};

/// One `*table … COMMIT` block as scanned.
struct Block<'t> {
    table: &'t str,
    /// Chains: the table's built-in ones first (hook order), then the
    /// declared user chains in declaration order.
    chains: Vec<ChainDecl<'t>>,
    /// Its rule lines, as a range of the scan's rule lines.
    rules: Range<usize>,
}

struct ChainDecl<'t> {
    name: std::borrow::Cow<'t, str>,
    /// The hook of a built-in chain.
    hook: Option<usize>,
    /// Policy and its counters (built-in chains, once declared).
    policy: Option<(Verdict, Counters)>,
}

/// One encoded rule in a thread's buffer (16 bytes: a 100k-rule file keeps
/// 100k of them until its tables are laid out).
struct Encoded {
    /// Its chain (index in its block's chains).
    chain: u32,
    /// Where its packed bytes start in the part's segments
    /// ([`Segments::at`]).
    start: u32,
    /// Its entry's size.
    len: u16,
    /// Where its verdict is, in the entry, when `fix` says one is to be
    /// written.
    verdict_at: u16,
    /// [`NO_FIX`], [`FIX_NEXT`] (falls through: the next entry), or the
    /// chain it jumps or goes to.
    fix: u32,
}

const _: () = assert!(std::mem::size_of::<Encoded>() == 16);

/// The rule's verdict is written already.
const NO_FIX: u32 = u32::MAX;
/// The rule falls through: its verdict is the offset of the next entry.
const FIX_NEXT: u32 = u32::MAX - 1;

/// What one thread encoded of one block: its rules in file order, packed
/// (see [`pack`]), and with `-c` their counters.
#[derive(Default)]
struct Part {
    bytes: Segments,
    rules: Vec<Encoded>,
    counters: Vec<Counters>,
}

/// Packed entries, one after the other, in buffers of [`SEGMENT`] bytes
/// taken as they are needed (an entry starts in a segment at an offset
/// below `SEGMENT`): what a thread will encode of a block is not
/// known in advance, and a buffer is never grown (which would copy it and
/// touch its memory twice) nor given room it may not use (which costs
/// resident memory where it is backed by huge pages).
#[derive(Default)]
struct Segments(Vec<Vec<u8>>);

/// A segment's size (a larger entry, up to 65535 bytes and its bitmap,
/// has one of its own).
const SEGMENT: usize = 1 << SEGMENT_BITS;
const SEGMENT_BITS: u32 = 16;

impl Segments {
    /// Packs `entry` after the others; where it starts (for [`at`]).
    ///
    /// [`at`]: Segments::at
    fn push(&mut self, entry: &[u8]) -> Option<u32> {
        let room = entry.len() + entry.len().div_ceil(64);
        match self.0.last() {
            Some(seg) if SEGMENT.saturating_sub(seg.len()) >= room => {}
            _ => self.0.push(Vec::with_capacity(SEGMENT.max(room))),
        }
        let n = self.0.len() - 1;
        let seg = self.0.last_mut()?;
        let start = u32::try_from(n << SEGMENT_BITS | seg.len()).ok()?;
        pack(entry, seg);
        Some(start)
    }

    /// The packed entry that starts at `start` (and what follows it).
    fn at(&self, start: u32) -> &[u8] {
        let start = start as usize;
        &self.0[start >> SEGMENT_BITS][start & (SEGMENT - 1)..]
    }
}

/// The tables of `text`, in the order of their blocks, encoded without the
/// model (each built from empty, as a restore without `-n` builds it):
/// what [`crate::Restorer::restore_str`] installs for a plain file.
/// `None` when the input is not of the plain kind this path takes (per
/// table the chain declarations, every built-in chain's policy among them,
/// then `-A` lines; no `-n`, no `-T`) or has any error: then
/// [`crate::restore::parse`] and [`crate::apply::build_table`] give the
/// tables or say what is wrong.
pub fn encode_text(
    text: &str,
    opts: &RestoreOptions,
    revs: &dyn RevisionSource,
) -> Option<Vec<EncodedTable>> {
    encode(text, opts, revs, PARALLEL_LAYOUT_BYTES)
}

/// A table of the input with its rules parsed and encoded
/// ([`parse_text`]), to be laid out ([`Pending::lay_out`]) when it is
/// about to be installed: a large table can then be laid out while the
/// one before it is installed.
pub(crate) struct Pending<'t> {
    block: Block<'t>,
    rules: BlockRules,
    /// The size of its entries.
    size: usize,
}

impl Pending<'_> {
    /// The table's name.
    pub(crate) fn name(&self) -> &str {
        self.block.table
    }

    /// The size of its entries, laid out.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Lays the table out: on every core when `alone` (nothing else runs
    /// then), on this thread only otherwise.
    pub(crate) fn lay_out(self, opts: &RestoreOptions, alone: bool) -> Option<EncodedTable> {
        self.lay_out_from(
            opts,
            if alone {
                PARALLEL_LAYOUT_BYTES
            } else {
                usize::MAX
            },
        )
    }

    /// Lays the table out, on several threads from `parallel_from` bytes.
    fn lay_out_from(self, opts: &RestoreOptions, parallel_from: usize) -> Option<EncodedTable> {
        let enc = lay_out(opts, &self.block, &self.rules, parallel_from)?;
        debug_assert_eq!(enc.entries().len(), self.size, "{}", self.block.table);
        Some(enc)
    }
}

/// A table of the input, laid out, or to be laid out later
/// ([`Pending::lay_out`]).
pub(crate) enum Prepared<'t> {
    Laid(EncodedTable),
    Later(Pending<'t>),
}

impl Prepared<'_> {
    /// The table's name.
    pub(crate) fn name(&self) -> &str {
        match self {
            Prepared::Laid(enc) => &enc.name,
            Prepared::Later(p) => p.name(),
        }
    }
}

/// Lays out now, on every core, the tables of `pending` that `later` does
/// not mark; the others stay to be laid out later. The largest first, and
/// each table's encoded rules dropped once it is laid out: the other
/// tables are then made while only their own (smaller) encoded rules
/// wait, not the largest table's too. `None` when a table does not lay
/// out.
pub(crate) fn lay_out_now<'t>(
    pending: Vec<Pending<'t>>,
    opts: &RestoreOptions,
    later: &[bool],
) -> Option<Vec<Prepared<'t>>> {
    lay_out_now_from(pending, opts, later, PARALLEL_LAYOUT_BYTES)
}

/// [`lay_out_now`], on several threads from `parallel_from` bytes.
fn lay_out_now_from<'t>(
    pending: Vec<Pending<'t>>,
    opts: &RestoreOptions,
    later: &[bool],
    parallel_from: usize,
) -> Option<Vec<Prepared<'t>>> {
    let now = |i: usize| !later.get(i).copied().unwrap_or(false);
    let mut order: Vec<usize> = (0..pending.len()).filter(|&i| now(i)).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(pending[i].size));
    let mut pending: Vec<Option<Pending>> = pending.into_iter().map(Some).collect();
    let mut laid: Vec<Option<EncodedTable>> = pending.iter().map(|_| None).collect();
    for i in order {
        laid[i] = Some(pending[i].take()?.lay_out_from(opts, parallel_from)?);
    }
    pending
        .into_iter()
        .zip(laid)
        .map(|(p, laid)| match laid {
            Some(enc) => Some(Prepared::Laid(enc)),
            None => p.map(Prepared::Later),
        })
        .collect()
}

/// The tables of `text`, in the order of their blocks, parsed and encoded
/// but not laid out; `after_parse` is called once the text is no longer
/// read. `None` as for [`encode_text`] (a table too large for the kernel
/// among them: a table that is here lays out).
pub(crate) fn parse_text<'t>(
    text: &'t str,
    opts: &RestoreOptions,
    revs: &dyn RevisionSource,
    after_parse: &dyn Fn(),
) -> Option<Vec<Pending<'t>>> {
    if opts.noflush || opts.table.is_some() {
        return None;
    }
    let (blocks, lines) = scan(text, opts)?;
    let indexes = blocks.iter().map(chain_index).collect::<Option<Vec<_>>>()?;
    let rules = encode_rules(&blocks, &indexes, &lines, opts, revs)?;
    // What the layout does not need goes before it makes the tables.
    drop(lines);
    drop(indexes);
    after_parse();
    blocks
        .into_iter()
        .zip(rules)
        .map(|(block, rules)| {
            let size = entries_size(opts.family, &block, &rules);
            (size <= MAX_TABLE_BYTES).then_some(Pending { block, rules, size })
        })
        .collect()
}

/// The size of the entries of block `b`'s table, laid out.
fn entries_size(family: Family, b: &Block, rules: &BlockRules) -> usize {
    let fixed: usize = b
        .chains
        .iter()
        .map(|c| match (c.hook, c.policy) {
            (None, _) => Fixed::Head(&c.name).size(family) + Fixed::Tail.size(family),
            (Some(_), Some((v, _))) => Fixed::Policy(v).size(family),
            (Some(_), None) => Fixed::Tail.size(family),
        })
        .sum();
    let rules: usize = rules
        .runs
        .iter()
        .flat_map(|(pi, r)| rules.parts[*pi].rules[r.clone()].iter())
        .map(|r| r.len as usize)
        .sum();
    fixed + rules + Fixed::End.size(family)
}

/// The tables [`encode_text`] would encode, in the order it would (the
/// names of the `*table` lines), found without scanning the rest: to read
/// the live tables while the rules are parsed. An input the direct path
/// does not take may name others.
pub(crate) fn table_names(text: &str) -> Vec<&str> {
    // A `*` is rare in a rule file: each found by memchr (not a split of
    // every line), kept when it starts a line.
    let bytes = text.as_bytes();
    text.match_indices('*')
        .filter(|&(at, _)| at == 0 || bytes[at - 1] == b'\n')
        .filter_map(|(at, _)| {
            let rest = &text[at + 1..];
            rest[..rest.find('\n').unwrap_or(rest.len())]
                .trim_end_matches('\r')
                .split([' ', '\t'])
                .find(|s| !s.is_empty())
        })
        .collect()
}

/// [`encode_text`], with the size of table from which it is laid out on
/// several threads.
fn encode(
    text: &str,
    opts: &RestoreOptions,
    revs: &dyn RevisionSource,
    parallel_layout_from: usize,
) -> Option<Vec<EncodedTable>> {
    let pending = parse_text(text, opts, revs, &|| {})?;
    lay_out_now_from(pending, opts, &[], parallel_layout_from)?
        .into_iter()
        .map(|p| match p {
            Prepared::Laid(enc) => Some(enc),
            Prepared::Later(_) => None,
        })
        .collect()
}

/// Walks the file: blocks, declarations, and the rule lines (line number,
/// text with its newline). `None` at anything this path does not take.
#[allow(clippy::type_complexity)]
fn scan<'t>(
    text: &'t str,
    opts: &RestoreOptions,
) -> Option<(Vec<Block<'t>>, Vec<(usize, &'t str)>)> {
    if text.as_bytes().contains(&0) {
        return None;
    }
    let mut blocks: Vec<Block> = Vec::new();
    let mut lines = Vec::with_capacity(text.len() / 64);
    let mut open: Option<Block> = None;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        if line.len() > MAX_LINE {
            return None;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('*') {
            let name = rest.split([' ', '\t']).find(|s| !s.is_empty())?;
            let hooks = builtin_hooks(name)?;
            if open.is_some() || blocks.iter().any(|b| b.table == name) {
                return None;
            }
            open = Some(Block {
                table: name,
                chains: hooks
                    .iter()
                    .map(|&h| ChainDecl {
                        name: HOOK_NAMES[h].into(),
                        hook: Some(h),
                        policy: None,
                    })
                    .collect(),
                rules: lines.len()..lines.len(),
            });
            continue;
        }
        let block = open.as_mut()?;
        if line == "COMMIT" {
            if !raw.ends_with('\n')
                || block
                    .chains
                    .iter()
                    .any(|c| c.hook.is_some() && c.policy.is_none())
            {
                return None;
            }
            block.rules.end = lines.len();
            blocks.push(open.take()?);
            continue;
        }
        if let Some(rest) = line.strip_prefix(':') {
            if block.rules.start != lines.len() {
                // A declaration after a rule of the block.
                return None;
            }
            let lc = LineCtx {
                file: &opts.file_name,
                line: i + 1,
                text: raw,
            };
            let Op::DeclareChain {
                name,
                policy,
                counters,
            } = parse_chain_line(&lc, rest, opts).ok()?
            else {
                return None;
            };
            // A user chain declared twice is found by chain_index.
            match block
                .chains
                .iter_mut()
                .take_while(|c| c.hook.is_some())
                .find(|c| c.name == name)
            {
                Some(c) => {
                    c.policy = match policy.as_str() {
                        "ACCEPT" => Some((Verdict::Accept, counters)),
                        "DROP" => Some((Verdict::Drop, counters)),
                        "-" => c.policy,
                        _ => return None,
                    }
                }
                None if policy == "-" => block.chains.push(ChainDecl {
                    name: name.into(),
                    hook: None,
                    policy: None,
                }),
                None => return None,
            }
            continue;
        }
        lines.push((i + 1, raw));
    }
    if open.is_some() {
        return None;
    }
    Some((blocks, lines))
}

/// A block's chains by name (index in its `chains`), made once the whole
/// block is read (at its size: a map grown while it is filled would touch
/// fresh memory at every step). `None` when a chain is declared twice.
fn chain_index<'b>(b: &'b Block) -> Option<FastMap<&'b str, u32>> {
    let mut index = FastMap::with_capacity_and_hasher(b.chains.len(), Default::default());
    for (i, c) in b.chains.iter().enumerate() {
        if index.insert(&*c.name, i as u32).is_some() {
            return None;
        }
    }
    Some(index)
}

/// What the threads encoded of one block: each thread's part, and the runs
/// of rules that make the block in file order (a part, a range of its
/// rules).
#[derive(Default)]
struct BlockRules {
    parts: Vec<Part>,
    runs: Vec<(usize, Range<usize>)>,
}

/// Parses and encodes every rule line, on several threads for a large
/// input: per block, what the threads encoded of it.
///
/// The lines are cut into chunks that the threads take in turn, each as
/// it is done with the one before: a thread that starts late (the core
/// busy with the read of the live tables) or meets slower lines does
/// fewer, and the threads end together.
fn encode_rules(
    blocks: &[Block],
    indexes: &[FastMap<&str, u32>],
    lines: &[(usize, &str)],
    opts: &RestoreOptions,
    revs: &dyn RevisionSource,
) -> Option<Vec<BlockRules>> {
    let threads =
        if lines.len() >= 64 && lines.iter().map(|l| l.1.len()).sum::<usize>() >= PARALLEL_BYTES {
            worker_threads()
        } else {
            1
        };
    let chunk = (lines.len() / (threads * 24)).max(64);
    let chunks: Vec<Range<usize>> = (0..lines.len())
        .step_by(chunk)
        .map(|s| s..(s + chunk).min(lines.len()))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    // One thread: its parts, and the runs it encoded (chunk, block, range
    // of its part's rules).
    type Done = (Vec<Part>, Vec<(usize, usize, Range<usize>)>);
    let run = |revs: &dyn RevisionSource| -> Option<Done> {
        use std::sync::atomic::Ordering::Relaxed;
        // Room for a share and a half of each block's rules: a thread that
        // starts first may take most of a small block.
        let room = |b: &Block| b.rules.len() * 3 / (2 * threads) + 64;
        let mut parts: Vec<Part> = blocks
            .iter()
            .map(|b| Part {
                bytes: Segments::default(),
                rules: Vec::with_capacity(room(b)),
                counters: Vec::with_capacity(if opts.counters { room(b) } else { 0 }),
            })
            .collect();
        let mut done = Vec::new();
        let mut entry = Vec::with_capacity(4096);
        while !failed.load(Relaxed) {
            let c = next.fetch_add(1, Relaxed);
            let Some(range) = chunks.get(c) else {
                break;
            };
            let mut bi = blocks.partition_point(|b| b.rules.end <= range.start);
            let mut from = parts.get(bi).map_or(0, |p| p.rules.len());
            for at in range.clone() {
                while !blocks[bi].rules.contains(&at) {
                    done.push((c, bi, from..parts[bi].rules.len()));
                    bi += 1;
                    from = parts[bi].rules.len();
                }
                let (b, idx, part) = (&blocks[bi], &indexes[bi], &mut parts[bi]);
                if encode_line(b, idx, lines[at], opts, revs, &mut entry, part).is_none() {
                    failed.store(true, Relaxed);
                    return None;
                }
            }
            if let Some(p) = parts.get(bi) {
                done.push((c, bi, from..p.rules.len()));
            }
        }
        Some((parts, done))
    };
    let shared = revs.as_sync().filter(|_| threads > 1);
    let per_thread: Vec<Done> = match shared {
        None => vec![run(revs)?],
        Some(shared) => on_threads(threads, shared, |_, revs| run(revs))
            .into_iter()
            .map(Option::flatten)
            .collect::<Option<Vec<_>>>()?,
    };
    // The runs of each block in file order (chunk order: a chunk's runs are
    // in order, and a block's rules in a chunk are one run).
    let mut all: Vec<(usize, usize, usize, Range<usize>)> = Vec::new();
    let mut by_block: Vec<BlockRules> = blocks.iter().map(|_| BlockRules::default()).collect();
    for (t, (parts, done)) in per_thread.into_iter().enumerate() {
        all.extend(done.into_iter().map(|(c, bi, r)| (c, bi, t, r)));
        for (bi, part) in parts.into_iter().enumerate() {
            by_block[bi].parts.push(part);
        }
    }
    all.sort_unstable_by_key(|&(c, bi, _, _)| (c, bi));
    for (_, bi, t, r) in all {
        if !r.is_empty() {
            by_block[bi].runs.push((t, r));
        }
    }
    Some(by_block)
}

/// Parses and encodes one rule line of block `b` into `part` (`entry` is
/// scratch room). `None` at anything the direct path leaves to the model
/// path: an error, another command, a jump it does not take.
fn encode_line(
    b: &Block,
    idx: &FastMap<&str, u32>,
    (line_no, raw): (usize, &str),
    opts: &RestoreOptions,
    revs: &dyn RevisionSource,
    entry: &mut Vec<u8>,
    part: &mut Part,
) -> Option<()> {
    let lc = LineCtx {
        file: &opts.file_name,
        line: line_no,
        text: raw,
    };
    let line = raw.strip_suffix('\n').unwrap_or(raw);
    // The common shape of line, read in one pass; the full parser for the
    // rest (and for every error).
    if let Some(lean) = lean_rule(line, b.table, opts.family, revs) {
        let chain = *idx.get(lean.chain)?;
        let (target, fix) = match lean.jump {
            LeanJump::None => (Target::Fallthrough, FIX_NEXT),
            LeanJump::Verdict(v) => (Target::Verdict(v), NO_FIX),
            LeanJump::Named { name, goto, ext } => resolve(b, idx, name, goto, ext)?,
        };
        let mut rule = lean.rule;
        rule.target = target;
        rule.line = Some(line_no);
        return put_rule(chain, &rule, fix, opts, entry, part);
    }
    let Op::Append { chain, rules } = (match parse_rule_line(&lc, line, b.table, opts, revs) {
        Ok(Some(op)) => op,
        Ok(None) => return Some(()),
        Err(_) => return None,
    }) else {
        return None;
    };
    let chain = *idx.get(chain.as_str())?;
    for spec in rules {
        let mut rule = spec.rule;
        let fix;
        (rule.target, fix) = match spec.target {
            TargetSpec::None => (Target::Fallthrough, FIX_NEXT),
            TargetSpec::Verdict(v) => (Target::Verdict(v), NO_FIX),
            TargetSpec::Named { name, ext, goto } => resolve(b, idx, &name, goto, ext)?,
        };
        put_rule(chain, &rule, fix, opts, entry, part)?;
    }
    Some(())
}

/// The target of a rule that names one (`-j NAME`, `-g NAME`), and the
/// chain its verdict is fixed to once laid out: a user chain of the
/// block, else (`-j` only) the target extension. `None` for what the
/// direct path leaves to the model path (a built-in chain, an unknown
/// name).
fn resolve(
    b: &Block,
    idx: &FastMap<&str, u32>,
    name: &str,
    goto: bool,
    ext: Option<Extension>,
) -> Option<(Target, u32)> {
    Some(match idx.get(name) {
        Some(&c) if b.chains[c as usize].hook.is_some() => return None,
        // The chain's name is not needed: its offset is written at layout.
        Some(&c) if goto => (Target::Goto(String::new()), c),
        Some(&c) => (Target::Jump(String::new()), c),
        None if goto => return None,
        None => (Target::Extension(ext?), NO_FIX),
    })
}

/// Encodes `rule` (of chain `chain`) into `part` (`entry` is scratch room).
fn put_rule(
    chain: u32,
    rule: &Rule,
    fix: u32,
    opts: &RestoreOptions,
    entry: &mut Vec<u8>,
    part: &mut Part,
) -> Option<()> {
    entry.clear();
    let verdict_at = append_rule(entry, opts.family, rule)
        .ok()?
        .map(u16::try_from)
        .transpose()
        .ok()?;
    let start = part.bytes.push(entry)?;
    part.rules.push(Encoded {
        chain,
        start,
        // append_rule refuses an entry above 65535 bytes.
        len: u16::try_from(entry.len()).ok()?,
        verdict_at: verdict_at.unwrap_or(0),
        fix: if verdict_at.is_some() { fix } else { NO_FIX },
    });
    if opts.counters {
        part.counters.push(rule.counters);
    }
    Some(())
}

/// From this size of table on, its entries are written on several
/// threads (each its own run of chains, into its own part of the buffer).
/// Writing a large table is mostly faulting in and clearing its fresh
/// pages, which the threads share.
const PARALLEL_LAYOUT_BYTES: usize = 4 << 20;

/// Lays out a block's table from its encoded rules (`parts`: what each
/// thread encoded of it): built-in chains in hook order (rules, policy),
/// user chains by name (head, rules, tail), the final ERROR entry; jumps
/// and fall-throughs written once offsets are known.
fn lay_out(
    opts: &RestoreOptions,
    b: &Block,
    rules: &BlockRules,
    parallel_from: usize,
) -> Option<EncodedTable> {
    let parts = &rules.parts;
    let family = opts.family;
    let n = b.chains.len();
    // The rules by chain, in file order (a counting sort): (part, rule).
    let mine = || {
        rules
            .runs
            .iter()
            .flat_map(|(pi, r)| r.clone().map(move |k| (*pi, k, &parts[*pi].rules[k])))
    };
    let mut count = vec![0usize; n + 1];
    for (_, _, r) in mine() {
        count[r.chain as usize + 1] += 1;
    }
    for c in 0..n {
        count[c + 1] += count[c];
    }
    let mut next = count.clone();
    let mut by_chain: Vec<(u32, u32)> = vec![(0, 0); count[n]];
    for (pi, k, r) in mine() {
        let c = r.chain as usize;
        by_chain[next[c]] = (pi as u32, k as u32);
        next[c] += 1;
    }
    let rules_of = |c: usize| {
        by_chain[count[c]..count[c + 1]]
            .iter()
            .map(|&(pi, k)| (&parts[pi as usize], k as usize))
    };
    // Layout order: built-in chains by hook, then user chains by name in
    // bytes (as libiptc sorts them).
    let mut order: Vec<usize> = (0..n).collect();
    let keys: Vec<_> = b
        .chains
        .iter()
        .map(|c| crate::rules::chain_layout_key(c.hook, &c.name))
        .collect();
    order.sort_by(|&x, &y| keys[x].cmp(&keys[y]));
    // Offsets: where each chain starts (a user chain's head) and where its
    // first rule goes; the hooks' entry points and policies.
    let mut chain_at = vec![0usize; n];
    let mut first_rule = vec![0usize; n];
    let (mut valid_hooks, mut hook_entry, mut underflow) = (0u32, [0u32; 5], [0u32; 5]);
    let mut off = 0usize;
    let mut entries = 0usize;
    for &c in &order {
        let ch = &b.chains[c];
        chain_at[c] = off;
        if ch.hook.is_none() {
            off += Fixed::Head(&ch.name).size(family);
            entries += 1;
        }
        first_rule[c] = off;
        if let Some(h) = ch.hook {
            valid_hooks |= 1 << h;
            hook_entry[h] = off as u32;
        }
        off += rules_of(c)
            .map(|(p, k)| p.rules[k].len as usize)
            .sum::<usize>();
        entries += count[c + 1] - count[c] + 1;
        off += match ch.policy {
            Some((v, _)) => {
                underflow[ch.hook?] = off as u32;
                Fixed::Policy(v).size(family)
            }
            None => Fixed::Tail.size(family),
        };
    }
    let end_at = off;
    off += Fixed::End.size(family);
    entries += 1;
    if off > MAX_TABLE_BYTES {
        return None;
    }
    // Writes `chains` (a run of the layout order) into `out`, which starts
    // at offset `base` of the entries; their counters with -c.
    let write = |out: &mut [u8], base: usize, chains: &[usize]| -> Option<Vec<CounterSlot>> {
        let mut counters = Vec::new();
        let mut count_on = |c: Counters| {
            if opts.counters {
                counters.push((c, None))
            }
        };
        for &c in chains {
            let ch = &b.chains[c];
            let mut at = chain_at[c] - base;
            if ch.hook.is_none() {
                at = write_fixed(out, at, family, Fixed::Head(&ch.name)).ok()?;
                count_on(Counters::default());
            }
            for (p, k) in rules_of(c) {
                let r = &p.rules[k];
                let len = r.len as usize;
                unpack_into(p.bytes.at(r.start), &mut out[at..at + len]);
                if r.fix != NO_FIX {
                    let to = match r.fix {
                        FIX_NEXT => base + at + len,
                        chain => first_rule[chain as usize],
                    };
                    let v = at + r.verdict_at as usize;
                    out[v..v + 4].copy_from_slice(&(to as i32).to_ne_bytes());
                }
                at += len;
                count_on(p.counters.get(k).copied().unwrap_or_default());
            }
            match ch.policy {
                Some((v, pc)) => {
                    write_fixed(out, at, family, Fixed::Policy(v)).ok()?;
                    count_on(pc);
                }
                None => {
                    write_fixed(out, at, family, Fixed::Tail).ok()?;
                    count_on(Counters::default());
                }
            }
        }
        Some(counters)
    };
    let mut counters: Vec<CounterSlot> =
        Vec::with_capacity(if opts.counters { entries } else { 0 });
    let buf = {
        // Zeroed: only the words that are not zero are written. (Zeroing
        // the parts on the threads that write them, to fault the fresh
        // pages in on all of them, was slower: 21 against 15 ms at 100k
        // rules.)
        let mut buf = vec![0u8; REPLACE_ROOM + off];
        let (_, table) = buf.split_at_mut(REPLACE_ROOM);
        write_fixed(table, end_at, family, Fixed::End).ok()?;
        // Runs of chains of about equal bytes, one per thread.
        let threads = if off >= parallel_from {
            worker_threads().min(order.len())
        } else {
            1
        };
        let mut runs: Vec<&[usize]> = Vec::with_capacity(threads);
        let mut rest = &order[..];
        for t in 1..threads {
            let cut = rest.partition_point(|&c| chain_at[c] < end_at * t / threads);
            let (run, after) = rest.split_at(cut);
            runs.push(run);
            rest = after;
        }
        runs.push(rest);
        if runs.len() == 1 {
            counters = write(table, 0, &order)?;
        } else {
            // Each run's part of the entries: from its first chain to the next
            // run's.
            let mut slices = Vec::with_capacity(runs.len());
            let mut left = &mut table[..end_at];
            let mut base = 0;
            for (i, run) in runs.iter().enumerate() {
                let until = runs[i + 1..]
                    .iter()
                    .find_map(|r| r.first().map(|&c| chain_at[c]))
                    .unwrap_or(end_at);
                let (mine, after) = left.split_at_mut(until - base);
                slices.push((mine, base, *run));
                left = after;
                base = until;
            }
            let written: Vec<Option<Vec<CounterSlot>>> = std::thread::scope(|s| {
                let write = &write;
                let mut slices = slices.into_iter();
                let first = slices.next();
                let handles: Vec<_> = slices
                    .map(|(out, base, run)| s.spawn(move || write(out, base, run)))
                    .collect();
                let mut out = vec![first.and_then(|(o, base, run)| write(o, base, run))];
                out.extend(handles.into_iter().map(|h| h.join().ok().flatten()));
                out
            });
            for w in written {
                counters.extend(w?);
            }
        }
        buf
    };
    if opts.counters {
        // The final ERROR entry's.
        counters.push((Counters::default(), None));
    }
    let mut enc = EncodedTable::with_room(
        b.table,
        valid_hooks,
        hook_entry,
        underflow,
        entries as u32,
        buf,
    );
    enc.counters = counters;
    Some(enc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::AssumeLatest;
    use crate::rules::{Family, Table};

    /// The model path: parse, build every table from empty, encode.
    fn by_model(text: &str, opts: &RestoreOptions) -> Option<Vec<EncodedTable>> {
        let script = crate::restore::parse(text, opts, &AssumeLatest).ok()?;
        let mut out = Vec::new();
        for name in crate::apply::table_order(&script) {
            let t = crate::apply::build_table(&script, false, Table::new(&name)?).ok()?;
            out.push(crate::blob::encode_table(opts.family, &t).ok()?);
        }
        Some(out)
    }

    fn files(dir: &str) -> Vec<std::path::PathBuf> {
        let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join(dir);
        let mut v: Vec<_> = std::fs::read_dir(&d)
            .expect("rules directory")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "rules"))
            .collect();
        v.sort();
        v
    }

    /// Same bytes, hooks and counters as the model path, for every rule file
    /// of the repository it takes (with and without -c); it takes most.
    #[test]
    fn the_direct_path_encodes_what_the_model_path_encodes() {
        let mut taken = 0;
        let mut all = 0;
        for (dir, family) in [
            ("rules", Family::V4),
            ("rules6", Family::V6),
            ("rules-nokernel", Family::V4),
        ] {
            for f in files(dir) {
                let text = crate::text::from_vec(std::fs::read(&f).expect("readable"));
                for counters in [false, true] {
                    all += 1;
                    let opts = RestoreOptions {
                        counters,
                        ..RestoreOptions::new(family)
                    };
                    let Some(direct) = encode_text(&text, &opts, &AssumeLatest) else {
                        continue;
                    };
                    taken += 1;
                    let model = by_model(&text, &opts)
                        .unwrap_or_else(|| panic!("{}: the model path refuses it", f.display()));
                    assert_eq!(direct.len(), model.len(), "{}", f.display());
                    for (d, m) in direct.iter().zip(&model) {
                        assert!(d == m, "{} table {}: differs", f.display(), d.name);
                    }
                    // Every table laid out on several threads, however
                    // small: the same bytes.
                    let split = encode(&text, &opts, &AssumeLatest, 0).expect("taken as before");
                    assert!(
                        split == model,
                        "{}: differs laid out on threads",
                        f.display()
                    );
                }
            }
        }
        assert!(
            taken * 10 >= all * 8,
            "only {taken} of {all} took the direct path"
        );
    }

    /// A large kube-proxy-like input, parsed on several threads: rules of
    /// one chain spread over the parts, jumps forward and back, gotos,
    /// fall-throughs, counters.
    #[test]
    fn a_large_input_on_several_threads() {
        let mut t = String::from("*nat\n:PREROUTING ACCEPT [1:2]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [3:4]\n:POSTROUTING DROP [0:0]\n:KUBE-SERVICES - [0:0]\n");
        let n = 3000;
        for i in 0..n {
            t.push_str(&format!(":SVC-{i:04} - [0:0]\n:SEP-{i:04} - [0:0]\n"));
        }
        t.push_str("-A PREROUTING -m comment --comment \"portals\" -j KUBE-SERVICES\n");
        for i in 0..n {
            t.push_str(&format!(
                "[{i}:{}] -A KUBE-SERVICES -d 10.96.{}.{}/32 -p tcp -m comment --comment \"ns/svc-{i}\" -m tcp --dport 80 -j SVC-{i:04}\n",
                i * 10,
                i / 256,
                i % 256
            ));
            t.push_str(&format!(
                "-A SVC-{i:04} -m statistic --mode random --probability 0.5 -g SEP-{:04}\n-A SVC-{i:04} -j SEP-{i:04}\n",
                n - 1 - i
            ));
            t.push_str(&format!(
                "-A SEP-{i:04} -s 10.244.{}.{}/32 -j MARK --set-xmark 0x4000/0x4000\n-A SEP-{i:04} -p tcp -j DNAT --to-destination 10.244.{}.{}:8080\n-A SEP-{i:04} -m mark --mark 0x1\n",
                i / 256,
                i % 256,
                i / 256,
                i % 256
            ));
            if i % 500 == 0 {
                t.push_str("-A POSTROUTING -s 10.0.0.0/8,192.168.0.0/16 -j MASQUERADE\n");
            }
        }
        t.push_str("COMMIT\n*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n");
        assert!(t.len() >= PARALLEL_BYTES);
        let nat = by_model(&t, &RestoreOptions::new(Family::V4)).expect("taken")[0]
            .entries()
            .len();
        assert!(
            nat >= PARALLEL_LAYOUT_BYTES,
            "{nat} bytes: laid out on one thread"
        );
        for counters in [false, true] {
            let opts = RestoreOptions {
                counters,
                ..RestoreOptions::new(Family::V4)
            };
            let direct = encode_text(&t, &opts, &AssumeLatest).expect("the direct path takes it");
            let model = by_model(&t, &opts).expect("the model path takes it");
            assert!(direct == model, "differs (counters: {counters})");
        }
        // A bad line in a late chunk: the whole input is left to the model
        // path, whichever thread meets it.
        let bad = t.replacen(
            "-A SEP-2990 -p tcp -j DNAT",
            "-A SEP-2990 -p tcp -j DNAT --bogus",
            1,
        );
        assert_ne!(bad, t);
        assert!(encode_text(&bad, &RestoreOptions::new(Family::V4), &AssumeLatest).is_none());
    }

    #[test]
    fn other_inputs_are_left_to_the_model_path() {
        let ok = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:X - [0:0]\n-A INPUT -j X\nCOMMIT\n";
        let opts = RestoreOptions::new(Family::V4);
        assert!(encode_text(ok, &opts, &AssumeLatest).is_some());
        let noflush = RestoreOptions {
            noflush: true,
            ..RestoreOptions::new(Family::V4)
        };
        assert!(encode_text(ok, &noflush, &AssumeLatest).is_none());
        for text in [
            // A command other than -A.
            ok.replace("-A INPUT -j X", "-I INPUT -j X"),
            ok.replace("-A INPUT -j X", "-N Y"),
            // A declaration after a rule.
            ok.replace("-A INPUT -j X\n", "-A INPUT -j X\n:Y - [0:0]\n"),
            // A built-in chain without its policy.
            ok.replace(":FORWARD ACCEPT [0:0]\n", ""),
            // Errors of every kind: the model path reports them.
            ok.replace("-j X", "-j NOSUCH"),
            ok.replace("-j X", "-g INPUT"),
            ok.replace("-A INPUT", "-A NOSUCH"),
            ok.replace("-A INPUT -j X", "-A INPUT -p tcp --dport 99999"),
            ok.replace(":X - [0:0]", ":X - [0:0]\n:X - [0:0]"),
            ok.replace("COMMIT\n", "COMMIT"),
            ok.replace("COMMIT\n", ""),
            format!("{ok}{ok}"),
        ] {
            assert!(encode_text(&text, &opts, &AssumeLatest).is_none(), "{text}");
        }
    }

    #[test]
    fn table_names_are_those_of_the_star_lines_in_order() {
        let t = "# nat first\n*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n\n*filter  \n-A INPUT -m comment --comment \"*raw\" -j ACCEPT\nCOMMIT\n*mangle\tx\nCOMMIT";
        assert_eq!(table_names(t), ["nat", "filter", "mangle"]);
        assert!(table_names("-A INPUT -j ACCEPT\n").is_empty());
    }

    #[test]
    fn segments_give_back_each_entry_where_it_was_put() {
        // Entries of every size class: small, about a segment, above one
        // (the largest a rule can be), with zero and non-zero words.
        let entries: Vec<Vec<u8>> = [40usize, 65_000, 100, 65_535, 8, 70_000, 3000]
            .iter()
            .enumerate()
            .map(|(k, &n)| {
                (0..n)
                    .map(|i| {
                        if (i / 8 + k) % 3 == 0 {
                            (i % 251) as u8 | 1
                        } else {
                            0
                        }
                    })
                    .collect()
            })
            .collect();
        let mut segs = Segments::default();
        let starts: Vec<u32> = entries
            .iter()
            .map(|e| segs.push(e).expect("room"))
            .collect();
        assert!(segs.0.len() > 1, "one segment for all");
        for (e, &start) in entries.iter().zip(&starts) {
            let mut out = Vec::new();
            crate::blob::pack::unpack(segs.at(start), e.len(), &mut out);
            assert!(out == *e, "entry of {} bytes", e.len());
        }
    }
}
