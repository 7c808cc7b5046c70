//! Carrying out a parsed script: commands applied to tables in the model
//! (as libiptc applies them to its cache), then one SET_REPLACE per table.

mod check;
pub mod confirm;
pub mod guard;
mod plan;

pub use check::{kernel_check, kernel_check_encoded, CheckReport};
pub use plan::TablePlan;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::blob::{encode_table, EncodedTable, KeptTable};
use crate::error::{Error, Location, Result};
use crate::kernel::XtSocket;
use crate::restore::{Block, Op, RuleSpec, Script, TargetSpec};
use crate::rules::{builtin_hooks, Chain, Counters, Rule, Table, Target, Verdict};

fn fail(file: &str, line: usize, message: impl Into<String>, exit_code: i32) -> Error {
    Error::Apply {
        at: Location {
            file: file.to_string(),
            line,
            column: 0,
        },
        message: message.into(),
        exit_code,
    }
}

/// Resets a table as iptables-restore does at `*table` without `-n`: every
/// chain flushed, user chains deleted, built-in policies (and their
/// counters) kept.
pub fn flush_table(table: &mut Table) {
    table.chains.retain(|c| c.is_builtin());
    for c in &mut table.chains {
        c.rules.clear();
    }
}

/// Chain name → position in `table.chains`, so that a table of many chains
/// is not searched name by name for every rule.
type ChainIndex = crate::fasthash::FastMap<String, usize>;

fn chain_index(table: &Table) -> ChainIndex {
    table
        .chains
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), i))
        .collect()
}

/// The rule of `spec` with its target resolved. The rule is moved out of
/// `spec` (the block it is in is used up by [`apply_block`]).
fn resolve(
    table: &Table,
    index: &ChainIndex,
    spec: &mut RuleSpec,
    file: &str,
    line: usize,
) -> Result<Rule> {
    let family = if spec.rule.ip.src.is_ipv4() {
        crate::rules::Family::V4
    } else {
        crate::rules::Family::V6
    };
    let mut rule = std::mem::replace(&mut spec.rule, Rule::new(family, Target::Fallthrough));
    rule.target = match &mut spec.target {
        TargetSpec::None => Target::Fallthrough,
        TargetSpec::Verdict(v) => Target::Verdict(*v),
        TargetSpec::Named { name, ext, goto } => {
            let chain = index.get(name.as_str()).map(|&i| &table.chains[i]);
            match (chain, ext.is_some(), *goto) {
                (Some(c), _, _) if c.is_builtin() => {
                    return Err(fail(file, line, format!("cannot jump to built-in chain `{name}'"), 1));
                }
                (Some(_), _, true) => Target::Goto(std::mem::take(name)),
                (Some(_), _, false) => Target::Jump(std::mem::take(name)),
                (None, _, true) => return Err(fail(file, line, format!("goto '{name}' is not a chain"), 2)),
                (None, true, false) => Target::Extension(ext.take().expect("matched Some")),
                (None, false, false) => {
                    return Err(fail(
                        file,
                        line,
                        format!(
                            "Couldn't load target `{name}': it is neither a chain of table `{}' (declare it with `:{name} - [0:0]' first) nor a known target extension",
                            table.name
                        ),
                        2,
                    ))
                }
            }
        }
    };
    Ok(rule)
}

fn resolve_all(
    table: &Table,
    index: &ChainIndex,
    specs: &mut [RuleSpec],
    file: &str,
    line: usize,
) -> Result<Vec<Rule>> {
    specs
        .iter_mut()
        .map(|r| resolve(table, index, r, file, line))
        .collect()
}

fn chain_mut<'a>(
    table: &'a mut Table,
    index: &ChainIndex,
    name: &str,
    file: &str,
    line: usize,
) -> Result<&'a mut Chain> {
    match index.get(name) {
        Some(&i) => Ok(&mut table.chains[i]),
        None => Err(fail(
            file,
            line,
            format!(
                "No chain/target/match by that name: table `{}' has no chain `{name}'",
                table.name
            ),
            1,
        )),
    }
}

fn set_policy(
    table: &mut Table,
    index: &ChainIndex,
    chain: &str,
    policy: &str,
    counters: Counters,
    file: &str,
    line: usize,
) -> Result<()> {
    let tname = table.name.clone();
    let c = chain_mut(table, index, chain, file, line)?;
    if !c.is_builtin() {
        return Err(fail(file, line, format!("Can't set policy `{policy}' on `{chain}': Bad built-in chain name (only built-in chains of `{tname}' have policies)"), 1));
    }
    let v = match policy {
        "ACCEPT" => Verdict::Accept,
        "DROP" => Verdict::Drop,
        _ => return Err(fail(file, line, format!("Can't set policy `{policy}' on `{chain}': Bad policy name (expected ACCEPT or DROP)"), 1)),
    };
    c.policy = Some(v);
    c.counters = counters;
    c.origin = None;
    Ok(())
}

/// Applies one block's commands to `table` (already flushed unless `-n`).
pub fn apply_block(table: &mut Table, block: &Block, noflush: bool, file: &str) -> Result<()> {
    apply_block_owned(table, &mut block.clone(), noflush, file)
}

/// As [`apply_block`], moving the rules out of `block` instead of copying
/// them (the block's rules are placeholders afterwards).
pub fn apply_block_owned(
    table: &mut Table,
    block: &mut Block,
    noflush: bool,
    file: &str,
) -> Result<()> {
    let mut index = chain_index(table);
    let index = &mut index;
    for cmd in &mut block.commands {
        let line = cmd.line;
        match &mut cmd.op {
            Op::DeclareChain {
                name,
                policy,
                counters,
            } => {
                let existing = index.get(name).map(|&i| table.chains[i].is_builtin());
                match existing {
                    Some(true) => {}
                    Some(false) if noflush => {
                        chain_mut(table, index, name, file, line)?.rules.clear()
                    }
                    Some(false) => {
                        return Err(fail(
                            file,
                            line,
                            format!("error creating chain '{name}': File exists (declared twice)"),
                            2,
                        ))
                    }
                    None => {
                        index.insert(name.clone(), table.chains.len());
                        table.chains.push(Chain::user(name));
                    }
                }
                if policy != "-" {
                    set_policy(table, index, name, policy, *counters, file, line)?;
                }
            }
            Op::Append { chain, rules } => {
                let resolved = resolve_all(table, index, rules, file, line)?;
                chain_mut(table, index, chain, file, line)?
                    .rules
                    .extend(resolved);
            }
            Op::Insert { chain, num, rules } => {
                let resolved = resolve_all(table, index, rules, file, line)?;
                let c = chain_mut(table, index, chain, file, line)?;
                if *num > c.rules.len() + 1 {
                    return Err(fail(
                        file,
                        line,
                        format!(
                            "Index of insertion too big: `{chain}' has {} rules",
                            c.rules.len()
                        ),
                        1,
                    ));
                }
                // Each address pair is inserted at the same position, as iptables does.
                for r in resolved {
                    c.rules.insert(*num - 1, r);
                }
            }
            Op::Delete { chain, rules } => {
                let resolved = resolve_all(table, index, rules, file, line)?;
                let c = chain_mut(table, index, chain, file, line)?;
                for r in resolved {
                    let pos = c
                        .rules
                        .iter()
                        .position(|x| x.same_rule(&r))
                        .ok_or_else(|| {
                            fail(
                                file,
                                line,
                                format!(
                                    "Bad rule (does a matching rule exist in chain `{chain}'?)"
                                ),
                                1,
                            )
                        })?;
                    c.rules.remove(pos);
                }
            }
            Op::DeleteNum { chain, num } => {
                let c = chain_mut(table, index, chain, file, line)?;
                if *num > c.rules.len() {
                    return Err(fail(
                        file,
                        line,
                        format!(
                            "Index of deletion too big: `{chain}' has {} rules",
                            c.rules.len()
                        ),
                        1,
                    ));
                }
                c.rules.remove(*num - 1);
            }
            Op::Replace { chain, num, rule } => {
                let r = resolve(table, index, rule, file, line)?;
                let c = chain_mut(table, index, chain, file, line)?;
                if *num > c.rules.len() {
                    return Err(fail(
                        file,
                        line,
                        format!(
                            "Index of replacement too big: `{chain}' has {} rules",
                            c.rules.len()
                        ),
                        1,
                    ));
                }
                c.rules[*num - 1] = r;
            }
            Op::Check { chain, rules } => {
                let resolved = resolve_all(table, index, rules, file, line)?;
                let c = chain_mut(table, index, chain, file, line)?;
                for r in resolved {
                    if !c.rules.iter().any(|x| x.same_rule(&r)) {
                        return Err(fail(
                            file,
                            line,
                            format!("Bad rule (does a matching rule exist in chain `{chain}'?)"),
                            1,
                        ));
                    }
                }
            }
            Op::NewChain(name) => {
                if index.contains_key(name) {
                    return Err(fail(
                        file,
                        line,
                        format!("Chain already exists: `{name}'"),
                        1,
                    ));
                }
                index.insert(name.clone(), table.chains.len());
                table.chains.push(Chain::user(name));
            }
            Op::DeleteChain(name) => {
                let names: Vec<String> = match name {
                    Some(n) => vec![n.clone()],
                    None => table
                        .chains
                        .iter()
                        .filter(|c| !c.is_builtin())
                        .map(|c| c.name.clone())
                        .collect(),
                };
                for n in names {
                    let c = chain_mut(table, index, &n, file, line)?;
                    if c.is_builtin() {
                        return Err(fail(
                            file,
                            line,
                            format!("Can't delete built-in chain `{n}'"),
                            1,
                        ));
                    }
                    if !c.rules.is_empty() {
                        return Err(fail(file, line, format!("Directory not empty: chain `{n}' still has rules (flush it with -F first)"), 1));
                    }
                    let refs = table.references(&n);
                    if refs > 0 {
                        return Err(fail(
                            file,
                            line,
                            format!("Too many links: chain `{n}' is the target of {refs} rule(s)"),
                            1,
                        ));
                    }
                    table.chains.retain(|c| c.name != n);
                    *index = chain_index(table);
                }
            }
            Op::Flush(name) => match name {
                Some(n) => chain_mut(table, index, n, file, line)?.rules.clear(),
                None => table.chains.iter_mut().for_each(|c| c.rules.clear()),
            },
            Op::Zero(name, num) => {
                // libiptc's COUNTER_MAP_ZEROED: keep only what arrives after the read.
                // Counters the input set (new rules, -c, policies) are left alone.
                fn zero(counters: &mut Counters, origin: &mut Option<crate::rules::Origin>) {
                    if let Some((_, base)) = origin {
                        *base = *counters;
                        *counters = Counters::default();
                    }
                }
                let zero_chain = |c: &mut Chain, num: Option<usize>| -> Result<()> {
                    match num {
                        Some(n) => {
                            let len = c.rules.len();
                            let r = c.rules.get_mut(n - 1).ok_or_else(|| {
                                fail(
                                    file,
                                    line,
                                    format!("Index too big: `{}' has {len} rules", c.name),
                                    1,
                                )
                            })?;
                            zero(&mut r.counters, &mut r.origin);
                        }
                        None => {
                            for r in &mut c.rules {
                                zero(&mut r.counters, &mut r.origin);
                            }
                            if c.is_builtin() {
                                zero(&mut c.counters, &mut c.origin);
                            }
                        }
                    }
                    Ok(())
                };
                match name {
                    Some(n) => zero_chain(chain_mut(table, index, n, file, line)?, *num)?,
                    None => {
                        for c in &mut table.chains {
                            zero_chain(c, None)?;
                        }
                    }
                }
            }
            Op::Policy {
                chain,
                policy,
                counters,
            } => set_policy(
                table,
                index,
                chain,
                policy,
                counters.unwrap_or_default(),
                file,
                line,
            )?,
            Op::Rename { old, new } => {
                if index.contains_key(new) {
                    return Err(fail(
                        file,
                        line,
                        format!("Chain already exists: `{new}'"),
                        1,
                    ));
                }
                let c = chain_mut(table, index, old, file, line)?;
                if c.is_builtin() {
                    return Err(fail(
                        file,
                        line,
                        format!("Can't rename built-in chain `{old}'"),
                        1,
                    ));
                }
                c.name = new.clone();
                if let Some(i) = index.remove(old) {
                    index.insert(new.clone(), i);
                }
                for c in &mut table.chains {
                    for r in &mut c.rules {
                        match &mut r.target {
                            Target::Jump(t) | Target::Goto(t) if t == old => *t = new.clone(),
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Builds the final state of every table the script names, starting from
/// `live(name)` (the table as it is now). Nothing is written anywhere.
pub fn build_tables(
    script: &Script,
    noflush: bool,
    mut live: impl FnMut(&str) -> Result<Table>,
) -> Result<BTreeMap<String, (usize, Table)>> {
    let mut out: BTreeMap<String, (usize, Table)> = BTreeMap::new();
    for (i, block) in script.blocks.iter().enumerate() {
        let entry = match out.remove(&block.table) {
            Some((first, t)) => (first, t),
            None => (i, live(&block.table)?),
        };
        let (first, mut table) = entry;
        if !noflush {
            flush_table(&mut table);
        }
        apply_block(&mut table, block, noflush, &script.file_name)?;
        out.insert(block.table.clone(), (first, table));
    }
    Ok(out)
}

/// The part of a live table that survives a flush (`*table` without `-n`):
/// the built-in chains with their policies and counters, no rules. Building
/// from it gives the same table as building from the whole live table,
/// without copying its rules.
pub fn flushed_copy(live: &Table) -> Table {
    Table {
        name: live.name.clone(),
        chains: live
            .chains
            .iter()
            .filter(|c| c.is_builtin())
            .map(|c| Chain {
                name: c.name.clone(),
                policy: c.policy,
                counters: c.counters,
                rules: Vec::new(),
                origin: c.origin,
            })
            .collect(),
    }
}

/// As [`build_table`], moving the rules out of `script` instead of copying
/// them: the script's blocks for this table are used up (emptied).
pub fn build_table_owned(script: &mut Script, noflush: bool, live: Table) -> Result<Table> {
    let mut table = live;
    let name = table.name.clone();
    let file = std::mem::take(&mut script.file_name);
    let mut result = Ok(());
    for block in script.blocks.iter_mut().filter(|b| b.table == name) {
        if !noflush {
            flush_table(&mut table);
        }
        result = apply_block_owned(&mut table, block, noflush, &file);
        // Free the commands' storage too: the rules now live in the table.
        block.commands = Vec::new();
        if result.is_err() {
            break;
        }
    }
    script.file_name = file;
    result.map(|_| table)
}

/// Builds one table from its live state and the script's blocks for it.
pub fn build_table(script: &Script, noflush: bool, live: Table) -> Result<Table> {
    let mut table = live;
    let name = table.name.clone();
    for block in script.blocks.iter().filter(|b| b.table == name) {
        if !noflush {
            flush_table(&mut table);
        }
        apply_block(&mut table, block, noflush, &script.file_name)?;
    }
    Ok(table)
}

/// The tables a script names, in the order of their first block.
pub fn table_order(script: &Script) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for b in &script.blocks {
        if !names.contains(&b.table) {
            names.push(b.table.clone());
        }
    }
    names
}

/// Reads a live table, or the empty table the kernel would create if the
/// table does not exist yet (without creating it).
pub fn live_table(sock: &XtSocket, existing: &[String], name: &str) -> Result<Table> {
    if existing.iter().any(|t| t == name) {
        Ok(sock.read_table(name)?.1)
    } else {
        builtin_hooks(name)
            .and_then(|_| Table::new(name))
            .ok_or_else(|| Error::Other(format!("unknown table `{name}'")))
    }
}

/// What one committed table looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Table name.
    pub table: String,
    /// Entries installed.
    pub entries: u32,
    /// Bytes of the blob.
    pub bytes: usize,
    /// How many times SET_REPLACE had to be retried because the table changed.
    pub retries: u32,
}

/// How long a table is re-read, rebuilt and replaced again while the kernel
/// answers EAGAIN (the table changed since it was read: a writer that does
/// not take the xtables lock) before the install gives up. Between tries
/// the wait doubles from [`RETRY_FIRST_WAIT`] up to [`RETRY_MAX_WAIT`], each
/// wait drawn at random from its upper half, so that a writer replacing the
/// table at a steady pace cannot keep hitting the same moment.
///
/// (Until 0.1 it was a fixed 8 immediate tries, which a writer replacing the
/// table a few hundred times a second could exhaust.)
pub const RETRY_TIME: Duration = Duration::from_secs(10);

/// The first wait before trying again after EAGAIN (see [`RETRY_TIME`]).
pub const RETRY_FIRST_WAIT: Duration = Duration::from_millis(1);

/// The longest wait between two tries after EAGAIN (see [`RETRY_TIME`]).
pub const RETRY_MAX_WAIT: Duration = Duration::from_millis(50);

/// A wait drawn at random from `[wait / 2, wait]`.
fn jittered(wait: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    // A fresh RandomState is seeded differently each time: enough
    // randomness for spreading retries, without a dependency.
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let half = wait / 2;
    half + Duration::from_nanos(r % (half.as_nanos() as u64 + 1))
}

/// A table this run replaced, with what it replaced: enough to put the
/// previous table back exactly, counters included.
#[derive(Debug)]
pub struct Installed {
    /// What was installed.
    pub committed: Committed,
    /// The family of the table.
    pub family: crate::rules::Family,
    /// The table that was replaced, as it was installed (entries as the
    /// kernel returned them), kept packed until it is put back.
    pub previous: KeptTable,
    /// Its counters at the moment of the replace, entry by entry.
    pub old_counters: Vec<Counters>,
}

/// The counters to add to each entry of `enc` after its SET_REPLACE, given
/// the old table's counters the kernel returned: an entry with an origin
/// takes its origin's counters (minus the base), any other its own.
pub(crate) fn carried_counters(enc: &EncodedTable, old: &[Counters]) -> Vec<Counters> {
    enc.counters
        .iter()
        .map(|(given, origin)| match origin {
            Some((o, base)) => old
                .get(*o as usize)
                .map(|c| Counters {
                    packets: c.packets.saturating_sub(base.packets),
                    bytes: c.bytes.saturating_sub(base.bytes),
                })
                .unwrap_or(*given),
            None => *given,
        })
        .collect()
}

/// Installs one table: SET_REPLACE with the live entry count, then the
/// counters (carried over from kept rules, or given with `-c`).
/// `rebuild` is called again with a fresh live table after EAGAIN (with a
/// short randomized backoff, for at most [`RETRY_TIME`]). If a writer that
/// ignores the xtables lock replaces the table between the two calls, the
/// kernel refuses the counters (EINVAL: the entry count differs); they are
/// dropped then, since the entries they were for are gone, and the install
/// still succeeds.
///
/// The first SET_REPLACE takes the entry count from a GET_INFO made just
/// before it, since the live table `first` was built from is not known
/// here: a change that a writer ignoring the xtables lock made after that
/// table was read goes unnoticed. [`install_table`] with `previous` does
/// not have that gap.
pub fn commit_table(
    sock: &XtSocket,
    name: &str,
    rebuild: impl FnMut(Table) -> Result<Table>,
    first: Table,
) -> Result<Committed> {
    install_table(sock, name, rebuild, first, None).map(|i| i.committed)
}

/// As [`commit_table`], keeping what is needed to [`rollback`]. `previous`
/// is the live table `first` was built from (read again after EAGAIN, for
/// at most [`RETRY_TIME`]).
///
/// With `previous`, SET_REPLACE is given the entry count of that table
/// rather than of the table as it is now, so the kernel answers EAGAIN if
/// anyone (a writer that does not take the xtables lock) changed the table
/// since it was read, and `first` is built again from the new live table
/// instead of overwriting that change. Without it, the count comes from a
/// GET_INFO just before the replace, as in [`commit_table`].
pub fn install_table(
    sock: &XtSocket,
    name: &str,
    rebuild: impl FnMut(Table) -> Result<Table>,
    first: Table,
    previous: Option<Table>,
) -> Result<Installed> {
    let read = previous.as_ref().map(entry_count);
    let previous = previous
        .map(|t| encode_table(sock.family(), &t).map(KeptTable::new))
        .transpose()?;
    install_encoded(sock, name, rebuild, first, None, previous, read)
}

/// The number of entries `table` takes in the kernel, laid out as
/// [`encode_table`] lays it out: each rule, a policy per built-in chain, a
/// head and a tail per user chain, and the end marker.
fn entry_count(table: &Table) -> u32 {
    let entries: usize = table
        .chains
        .iter()
        .map(|c| c.rules.len() + if c.policy.is_some() { 1 } else { 2 })
        .sum();
    (entries + 1) as u32
}

/// As [`install_table`], with `first` already encoded (`encoded`, when the
/// caller has it) so it is not encoded twice. `read` is the entry count of
/// the live table `first` was built from (`None`: unknown, ask GET_INFO).
fn install_encoded(
    sock: &XtSocket,
    name: &str,
    mut rebuild: impl FnMut(Table) -> Result<Table>,
    first: Table,
    mut encoded: Option<EncodedTable>,
    previous: Option<KeptTable>,
    mut read: Option<u32>,
) -> Result<Installed> {
    let mut table = first;
    let mut previous = previous;
    let mut retries = 0;
    let started = Instant::now();
    let mut wait = RETRY_FIRST_WAIT;
    loop {
        let live_entries = match read.take() {
            Some(n) => n,
            None => sock.get_info(name)?.num_entries,
        };
        let mut enc: EncodedTable = match encoded.take() {
            Some(enc) => enc,
            None => encode_table(sock.family(), &table)?,
        };
        match sock.replace(&mut enc, live_entries) {
            Ok(old) => {
                let counters = carried_counters(&enc, &old);
                if counters.iter().any(|c| *c != Counters::default()) {
                    add_counters_after_replace(sock, name, &counters, enc.num_entries)?;
                }
                let previous = match previous {
                    Some(p) => p,
                    None => KeptTable::new(encode_table(
                        sock.family(),
                        &Table::new(name)
                            .ok_or_else(|| Error::Other(format!("unknown table `{name}'")))?,
                    )?),
                };
                return Ok(Installed {
                    family: sock.family(),
                    committed: Committed {
                        table: name.to_string(),
                        entries: enc.num_entries,
                        bytes: enc.entries().len(),
                        retries,
                    },
                    previous,
                    old_counters: old,
                });
            }
            Err(e) if e.errno() == Some(libc::EAGAIN) && started.elapsed() < RETRY_TIME => {
                retries += 1;
                std::thread::sleep(jittered(wait));
                wait = (wait * 2).min(RETRY_MAX_WAIT);
                let (info, raw) = sock.read_encoded(name)?;
                let live = crate::blob::decode_table(
                    sock.family(),
                    name,
                    info.valid_hooks,
                    info.hook_entry,
                    info.underflow,
                    raw.entries(),
                )?;
                // The count of the entries just read, not of a later
                // GET_INFO: the table may have changed again in between.
                read = Some(raw.num_entries);
                previous = Some(KeptTable::new(raw));
                table = rebuild(live)?;
            }
            Err(e) if e.errno() == Some(libc::ENOMEM) => {
                return Err(Error::OutOfMemory {
                    table: name.to_string(),
                    at: None,
                    entries: enc.num_entries,
                    bytes: enc.entries().len(),
                })
            }
            Err(e) if e.errno() == Some(libc::EAGAIN) => {
                return Err(Error::Kernel {
                    table: name.to_string(),
                    message: format!(
                        "the table kept changing while it was being replaced (a writer that does not take the xtables lock?); gave up after {} tries in {:.1} s: {e}",
                        retries + 1,
                        started.elapsed().as_secs_f64()
                    ),
                })
            }
            Err(e) => {
                return Err(Error::Kernel {
                    table: name.to_string(),
                    message: format!("the kernel refused the new table: {e}"),
                })
            }
        }
    }
}

/// SET_ADD_COUNTERS right after a SET_REPLACE that installed `entries`
/// entries. If a writer that ignores the xtables lock replaced the table
/// again in between, the kernel refuses the counters (EINVAL, the entry
/// count differs): they are dropped then, since the entries they were for
/// are gone, and the replace still stands. Returns whether they were added.
fn add_counters_after_replace(
    sock: &XtSocket,
    name: &str,
    counters: &[Counters],
    entries: u32,
) -> Result<bool> {
    match sock.add_counters(name, counters) {
        Ok(()) => Ok(true),
        Err(Error::Syscall(e))
            if e.errno() == Some(libc::EINVAL)
                && sock
                    .get_info(name)
                    .is_ok_and(|info| info.num_entries != entries) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// One table to install: its name, the live table it was built from (`None`
/// when the table does not exist yet), the new table, and how to build it
/// again from a fresh live table after EAGAIN.
///
/// SET_REPLACE is given `read_entries`, the entry count of the live table
/// as it was read, so a change made since by a writer that ignores the
/// xtables lock makes the kernel answer EAGAIN and the table is built
/// again, instead of that change being overwritten.
pub struct Job<'a> {
    /// The socket of the table's family (and namespace).
    pub sock: &'a XtSocket,
    /// Table name.
    pub name: String,
    /// The live table the new one was built from, as installed (`None`
    /// when the table does not exist yet), kept to be put back.
    pub previous: Option<KeptTable>,
    /// The new table.
    pub table: Table,
    /// Builds the new table again from a re-read live table.
    pub rebuild: Box<dyn FnMut(Table) -> Result<Table> + 'a>,
    /// `table` already encoded, if the caller has it (saves encoding again).
    pub encoded: Option<EncodedTable>,
    /// Or a way to encode it when it is needed ([`LayOut`]): a job's is
    /// run while the job before it is installed.
    pub lay_out: Option<LayOut<'a>>,
    /// The entry count of the live table `table` was built from (see
    /// [`read_entries`]); `None` when the new table does not depend on what
    /// is live (a flushed table whose every policy the input sets): the
    /// count is then asked right before the replace.
    pub read_entries: Option<u32>,
}

/// Encodes a [`Job`]'s table when it is about to be installed, while the
/// job before it is (the kernel's work on one table and the layout of the
/// next then share the cores). Given `true` when nothing else runs (it may
/// use every core), `false` beside an install. An error is the job's.
pub type LayOut<'a> = Box<dyn FnOnce(bool) -> Result<EncodedTable> + Send + 'a>;

/// The entry count to give a [`Job`] built on `previous` (the live table as
/// read), or on the empty table the kernel creates when `previous` is
/// `None`.
pub fn read_entries(name: &str, previous: Option<&KeptTable>) -> Option<u32> {
    match previous {
        Some(p) => Some(p.num_entries),
        None => Table::new(name).as_ref().map(entry_count),
    }
}

/// Installs every job, in order, all or nothing: when one is refused, the
/// tables already replaced are [`rollback`]ed (in reverse order) and the
/// error says so. A job's [`LayOut`] runs on another thread while the job
/// before it is installed (the first job's, on this one, before it).
pub fn install_all(jobs: Vec<Job<'_>>) -> Result<Vec<Installed>> {
    std::thread::scope(|scope| {
        let mut installed: Vec<(&XtSocket, Installed)> = Vec::new();
        let mut jobs = jobs.into_iter().peekable();
        // The next job's layout, running while this one is installed.
        let mut laying = None;
        while let Some(mut job) = jobs.next() {
            let encoded = match (job.encoded.take(), laying.take(), job.lay_out.take()) {
                (Some(enc), _, _) => Ok(Some(enc)),
                (None, Some(h), _) => std::thread::ScopedJoinHandle::join(h).unwrap_or_else(|_| {
                    Err(Error::Other(format!(
                        "laying out table {} failed",
                        job.name
                    )))
                }),
                (None, None, Some(lay_out)) => lay_out(true).map(Some),
                (None, None, None) => Ok(None),
            };
            if let Some(next) = jobs.peek_mut() {
                if let Some(lay_out) = next.lay_out.take() {
                    laying = Some(scope.spawn(move || lay_out(false).map(Some)));
                }
            }
            let read = job.read_entries;
            let result = encoded.and_then(|encoded| {
                install_encoded(
                    job.sock,
                    &job.name,
                    job.rebuild,
                    job.table,
                    encoded,
                    job.previous,
                    read,
                )
            });
            match result {
                Ok(i) => installed.push((job.sock, i)),
                Err(e) => {
                    let mut restored = Vec::new();
                    for (sock, i) in installed.iter_mut().rev() {
                        rollback(sock, i)?;
                        restored.push(i.committed.table.clone());
                    }
                    // Out of memory says already that every table is as it was.
                    if restored.is_empty() || matches!(e, Error::OutOfMemory { .. }) {
                        return Err(e);
                    }
                    let e = match e {
                        Error::Kernel { table, message } if table == job.name => message,
                        other => other.to_string(),
                    };
                    return Err(Error::Kernel {
                        table: job.name,
                        message: format!(
                            "{e}; the tables already replaced in this run ({}) were put back as they were",
                            restored.join(", ")
                        ),
                    });
                }
            }
        }
        Ok(installed.into_iter().map(|(_, i)| i).collect())
    })
}

/// Puts back the table an [`install_table`] replaced: the same entries, and
/// the counters they had at the moment of the replace.
pub fn rollback(sock: &XtSocket, inst: &mut Installed) -> Result<()> {
    let name = &inst.committed.table;
    let enc = &mut inst.previous.table();
    let info = sock.get_info(name)?;
    sock.replace(enc, info.num_entries)?;
    if inst.old_counters.len() == enc.num_entries as usize
        && inst.old_counters.iter().any(|c| *c != Counters::default())
    {
        add_counters_after_replace(sock, name, &inst.old_counters, enc.num_entries)?;
    }
    Ok(())
}

/// Gives each rule of `desired` that has no counter source the counters of
/// the first unused equal rule in the same chain of `live`, so a declarative
/// update keeps the counters of rules it did not change.
pub fn keep_counters(live: &Table, mut desired: Table) -> Table {
    // Entry indexes of the live table, in the order the blob holds them.
    let mut index = std::collections::HashMap::new();
    for c in &live.chains {
        for (i, r) in c.rules.iter().enumerate() {
            if let Some((o, _)) = r.origin {
                index.insert((c.name.clone(), i), o);
            }
        }
    }
    for chain in &mut desired.chains {
        let Some(lc) = live.chain(&chain.name) else {
            continue;
        };
        let mut used = vec![false; lc.rules.len()];
        for r in &mut chain.rules {
            if r.origin.is_some() {
                continue;
            }
            if let Some(i) = (0..lc.rules.len()).find(|&i| !used[i] && lc.rules[i].same_rule(r)) {
                used[i] = true;
                if let Some(o) = index.get(&(chain.name.clone(), i)) {
                    r.origin = Some((*o, Counters::default()));
                }
            }
        }
    }
    desired
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Family;

    #[test]
    fn entry_count_is_what_the_encoder_lays_out() {
        let mut t = Table::new("filter").unwrap();
        let empty = entry_count(&t);
        assert_eq!(empty, encode_table(Family::V4, &t).unwrap().num_entries);
        assert_eq!(empty, 4, "three policies and the end marker");
        let mut svc = Chain::user("svc");
        svc.rules
            .push(Rule::new(Family::V4, Target::Verdict(Verdict::Accept)));
        t.chains.push(svc);
        t.chains.push(Chain::user("empty"));
        t.chains[0]
            .rules
            .push(Rule::new(Family::V4, Target::Jump("svc".into())));
        t.chains[0]
            .rules
            .push(Rule::new(Family::V4, Target::Fallthrough));
        assert_eq!(
            entry_count(&t),
            encode_table(Family::V4, &t).unwrap().num_entries
        );
        assert_eq!(entry_count(&t), empty + 2 + 3 + 2);
    }
}
