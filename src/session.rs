//! A long-lived handle on one live table, for controllers that change a few
//! rules at a time (a kube-proxy-like service sync) and commit often.
//!
//! [`Session::open`] reads the table from the kernel once. After that the
//! session keeps the model: [`Session::table_mut`] changes it in memory and
//! [`Session::commit`] encodes it and installs it with one SET_REPLACE,
//! without reading the kernel again. It knows the entry count of the table
//! it installed last, which the kernel wants to hear (`num_counters`), and
//! which kernel entry every kept rule came from, so rules that were kept
//! keep their packet and byte counters. Changes made through
//! [`Session::chain_mut`] are tracked by chain, and a commit whose changed
//! chains kept their size rewrites only their entries in the table it
//! installed last; the session keeps that table's buffer between commits.
//!
//! If someone else replaced the table in the meantime, the kernel answers
//! EAGAIN and [`Session::commit`] returns that error unchanged
//! ([`Error::Syscall`] whose `errno()` is `Some(libc::EAGAIN)`); the session
//! does not re-read and rebuild behind the caller's back. The caller decides:
//! [`Session::reload`] reads the live table again (dropping the changes made
//! since the last commit) and the caller applies its changes anew.
//!
//! There is no kernel check in a scratch namespace here (see
//! [`crate::Restorer::precheck`]): a single table is replaced atomically,
//! and a table the kernel refuses leaves the live one as it was.
//!
//! ```no_run
//! use iptables_atomic::{rule, Family, Session};
//!
//! let mut s = Session::open(Family::V4, Some("lab"), "filter")?;
//! let r = rule(Family::V4, "filter", "-p tcp --dport 8080 -j ACCEPT")?;
//! s.table_mut().chain_mut("INPUT").expect("built-in chain").rules.push(r);
//! s.commit()?; // one SET_REPLACE; the other rules keep their counters
//! # Ok::<(), iptables_atomic::Error>(())
//! ```

use std::time::Duration;

use crate::apply::{carried_counters, Committed};
use crate::blob::encode::{append_rule, entries_mut, rewrite_policy, rule_size};
use crate::blob::{encode_table_reusing, EncodedTable};
use crate::error::{Error, Result};
use crate::kernel::{self, NetnsGuard, XtSocket, XtablesLock};
use crate::rules::{Chain, Counters, Family, Table, Target};

/// A live table held in memory between commits. See the [module
/// documentation](self).
#[derive(Debug)]
pub struct Session {
    /// Opened in the session's namespace: the socket stays bound to it, so
    /// later calls need no `setns`.
    sock: XtSocket,
    table: Table,
    /// Entries of the live table, as last read or installed; `None` while
    /// the table does not exist in the kernel yet.
    entries: Option<u32>,
    wait: Option<Duration>,
    /// The buffers of the last encoding, written again by the next commit
    /// (memory already in use, rather than fresh pages for every commit).
    spare: Option<EncodedTable>,
    /// What changed since `spare` was encoded.
    dirty: Dirty,
    /// Where each chain (by index in `table.chains`) is in `spare`; valid
    /// while `dirty` is [`Dirty::Chains`].
    spans: Vec<Span>,
}

/// What changed in the model since the last encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dirty {
    /// Anything ([`Session::table_mut`]): the next commit encodes it all.
    All,
    /// These chains only ([`Session::chain_mut`]): index and name.
    Chains(Vec<(usize, String)>),
}

/// A chain's place in an encoded table.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    /// Offset of its first rule (for a user chain: after its head).
    start: usize,
    /// Bytes of its rules.
    len: usize,
    /// Index of its first rule's entry.
    first: u32,
    /// Its number of rules.
    rules: u32,
    /// A built-in chain (a policy entry after the rules).
    builtin: bool,
}

impl Session {
    /// Reads `table` of `family` (in `netns`, a name under /run/netns or a
    /// path, or the caller's namespace) once. A table that does not exist
    /// yet is not created here: the session starts from the empty table
    /// the kernel would create, and the first commit creates it.
    pub fn open(family: Family, netns: Option<&str>, table: &str) -> Result<Session> {
        let _ns = netns.map(NetnsGuard::enter).transpose()?;
        let sock = XtSocket::open(family)?;
        let mut s = Session {
            sock,
            table: Table::new(table)
                .ok_or_else(|| Error::Other(format!("unknown table `{table}'")))?,
            entries: None,
            wait: None,
            spare: None,
            dirty: Dirty::All,
            spans: Vec::new(),
        };
        if kernel::table_names(family)?.iter().any(|t| t == table) {
            s.read()?;
        }
        Ok(s)
    }

    /// Waits at most this long for the xtables lock on commit (default:
    /// without limit, as iptables 1.8.9).
    pub fn wait(mut self, wait: Option<Duration>) -> Self {
        self.wait = wait;
        self
    }

    fn read(&mut self) -> Result<()> {
        let (info, mut table) = self.sock.read_table(&self.table.name)?;
        // The policies keep all their counters, like the rules.
        for c in &mut table.chains {
            if let Some((o, _)) = c.origin {
                c.origin = Some((o, Counters::default()));
            }
        }
        self.table = table;
        self.entries = Some(info.num_entries);
        self.dirty = Dirty::All;
        Ok(())
    }

    /// Reads the live table again, dropping the changes made since the last
    /// commit (after an EAGAIN from [`Session::commit`]).
    pub fn reload(&mut self) -> Result<()> {
        match self.entries {
            Some(_) => self.read(),
            // Not created yet: the first commit asks the kernel.
            None => Ok(()),
        }
    }

    /// The family.
    pub fn family(&self) -> Family {
        self.sock.family()
    }

    /// The table as the session holds it (what the next commit installs).
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The model, to change before the next commit. A rule read from the
    /// kernel or installed by an earlier commit keeps that entry's counters
    /// wherever it moves (also when edited in place); a rule made anew
    /// ([`crate::rule`], [`crate::Rule::new`]) starts from its own counters.
    pub fn table_mut(&mut self) -> &mut Table {
        self.dirty = Dirty::All;
        &mut self.table
    }

    /// One chain of the model, to change before the next commit (its rules
    /// or, for a built-in chain, its policy), like [`Session::table_mut`].
    /// The session remembers which chains were changed this way: when the
    /// changed chains encode to as many bytes and rules as before (an
    /// address, a port or a verdict changed), the next commit rewrites
    /// just those entries of the table it installed last instead of
    /// encoding the whole table again.
    ///
    /// ```no_run
    /// use iptables_atomic::{rule, Family, Session};
    ///
    /// let mut s = Session::open(Family::V4, Some("lab"), "nat")?;
    /// let r = rule(Family::V4, "nat", "-p tcp -j DNAT --to-destination 10.244.0.7:8080")?;
    /// s.chain_mut("KUBE-SEP-X").expect("chain").rules[0] = r;
    /// s.commit()?; // one SET_REPLACE
    /// # Ok::<(), iptables_atomic::Error>(())
    /// ```
    pub fn chain_mut(&mut self, name: &str) -> Option<&mut Chain> {
        let i = self.table.chains.iter().position(|c| c.name == name)?;
        if let Dirty::Chains(v) = &mut self.dirty {
            if !v.iter().any(|(j, _)| *j == i) {
                v.push((i, name.to_string()));
            }
        }
        Some(&mut self.table.chains[i])
    }

    /// The number of entries of the live table as the session knows it
    /// (rules, policies, chain heads and tails and the end marker).
    pub fn entries(&self) -> Option<u32> {
        self.entries
    }

    /// Encodes the table and installs it with one SET_REPLACE (holding the
    /// xtables lock), then adds the counters the kept rules had. Does not
    /// read the kernel. EAGAIN (the table was replaced by someone else since
    /// the session read or installed it) is returned as
    /// `Error::Syscall(e)` with `e.errno() == Some(libc::EAGAIN)`; nothing
    /// changed then. A table the kernel refuses is [`Error::Kernel`], and
    /// the live table is as it was.
    pub fn commit(&mut self) -> Result<Committed> {
        let name = self.table.name.clone();
        let family = self.sock.family();
        let patched = match (self.spare.take(), &self.dirty) {
            (Some(mut spare), Dirty::Chains(d)) => {
                if patch(&mut spare, family, &self.table, &self.spans, d)? {
                    Ok(spare)
                } else {
                    Err(Some(spare))
                }
            }
            (spare, _) => Err(spare),
        };
        let mut enc = match patched {
            Ok(enc) => enc,
            Err(spare) => {
                let enc = encode_table_reusing(family, &self.table, spare)?;
                self.spans = spans(family, &self.table);
                enc
            }
        };
        let _lock = XtablesLock::acquire(self.wait)?;
        let live = match self.entries {
            Some(n) => n,
            // First commit of a table that did not exist: GET_INFO creates it.
            None => self.sock.get_info(&name)?.num_entries,
        };
        let old = match self.sock.replace(&mut enc, live) {
            Ok(old) => old,
            Err(e) if e.errno() == Some(libc::EAGAIN) => return Err(Error::Syscall(e)),
            Err(e) => {
                return Err(Error::Kernel {
                    table: name,
                    message: format!("the kernel refused the new table: {e}"),
                })
            }
        };
        self.entries = Some(enc.num_entries);
        let counters = carried_counters(&enc, &old);
        renumber(&mut self.table);
        if counters.iter().any(|c| *c != Counters::default()) {
            self.sock.add_counters(&name, &counters)?;
        }
        self.dirty = Dirty::Chains(Vec::new());
        let committed = Committed {
            table: name,
            entries: enc.num_entries,
            bytes: enc.entries().len(),
            retries: 0,
        };
        self.spare = Some(enc);
        Ok(committed)
    }
}

/// Where each chain of `table` is in its encoding (see [`Span`]).
fn spans(family: Family, table: &Table) -> Vec<Span> {
    let l = crate::blob::layout::entry_layout(family);
    let fixed = l.size + crate::blob::layout::STANDARD_TARGET;
    let head = l.size + crate::blob::layout::ERROR_TARGET;
    let mut out = vec![Span::default(); table.chains.len()];
    let (mut off, mut entry) = (0usize, 0u32);
    for ci in table.chain_order() {
        let c = &table.chains[ci];
        if !c.is_builtin() {
            off += head;
            entry += 1;
        }
        let len: usize = c.rules.iter().map(|r| rule_size(family, r)).sum();
        out[ci] = Span {
            start: off,
            len,
            first: entry,
            rules: c.rules.len() as u32,
            builtin: c.is_builtin(),
        };
        off += len + fixed;
        entry += c.rules.len() as u32 + 1;
    }
    out
}

/// Rewrites the changed chains `dirty` of `table` in `enc`, the table as
/// encoded last (laid out as `spans` says), when each still takes as many
/// rules and bytes; `false` (and `enc` possibly half written: the caller
/// encodes it all again) when one does not.
fn patch(
    enc: &mut EncodedTable,
    family: Family,
    table: &Table,
    spans: &[Span],
    dirty: &[(usize, String)],
) -> Result<bool> {
    if spans.len() != table.chains.len() {
        return Ok(false);
    }
    // Chain name → index, made when a changed rule jumps somewhere.
    let mut index: Option<crate::fasthash::FastMap<&str, usize>> = None;
    let mut bytes = Vec::new();
    for (ci, name) in dirty {
        let (c, span) = (&table.chains[*ci], spans[*ci]);
        // Renamed, made built-in or user, or another number of rules: the
        // layout is not the one encoded last.
        if c.name != *name || c.is_builtin() != span.builtin || c.rules.len() as u32 != span.rules {
            return Ok(false);
        }
        bytes.clear();
        let mut verdicts = Vec::new();
        for r in &c.rules {
            if let Some(at) = append_rule(&mut bytes, family, r)? {
                let to = match &r.target {
                    Target::Jump(t) | Target::Goto(t) => {
                        let index = index.get_or_insert_with(|| {
                            table
                                .chains
                                .iter()
                                .enumerate()
                                .map(|(i, c)| (c.name.as_str(), i))
                                .collect()
                        });
                        match index.get(t.as_str()) {
                            Some(&i) if !table.chains[i].is_builtin() => spans[i].start,
                            _ => return Ok(false),
                        }
                    }
                    // Falls through: the next entry.
                    _ => span.start + bytes.len(),
                };
                verdicts.push((at, to));
            }
        }
        if bytes.len() != span.len {
            return Ok(false);
        }
        for (at, to) in verdicts {
            bytes[at..at + 4].copy_from_slice(&(to as i32).to_ne_bytes());
        }
        entries_mut(enc)[span.start..span.start + span.len].copy_from_slice(&bytes);
        let first = span.first as usize;
        for (k, r) in c.rules.iter().enumerate() {
            enc.counters[first + k] = (r.counters, r.origin);
        }
        if let Some(v) = c.policy {
            let at = span.start + span.len;
            rewrite_policy(enc, family, at, v);
            enc.counters[first + c.rules.len()] = (c.counters, c.origin);
        }
    }
    Ok(true)
}

/// Points every rule and policy at the entry it now is in the kernel (the
/// blob order of [`Table::ordered_chains`]), so the next commit carries its
/// counters over whole.
fn renumber(table: &mut Table) {
    let order = table.chain_order();
    let zero = Counters::default();
    let mut i = 0u32;
    for ci in order {
        let c = &mut table.chains[ci];
        let builtin = c.is_builtin();
        if !builtin {
            i += 1; // the ERROR entry that opens a user chain
        }
        for r in &mut c.rules {
            r.origin = Some((i, zero));
            i += 1;
        }
        if builtin {
            c.origin = Some((i, zero));
        }
        i += 1; // the policy, or the RETURN that closes a user chain
    }
}
