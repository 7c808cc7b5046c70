//! A long-lived handle on one live table, for controllers that change a few
//! rules at a time (a kube-proxy-like service sync) and commit often.
//!
//! [`Session::open`] reads the table from the kernel once. After that the
//! session keeps the model: [`Session::table_mut`] changes it in memory and
//! [`Session::commit`] encodes it and installs it with one SET_REPLACE,
//! without reading the kernel again. It knows the entry count of the table
//! it installed last, which the kernel wants to hear (`num_counters`), and
//! which kernel entry every kept rule came from, so rules that were kept
//! keep their packet and byte counters.
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
use crate::blob::encode_table;
use crate::error::{Error, Result};
use crate::kernel::{self, NetnsGuard, XtSocket, XtablesLock};
use crate::rules::{Counters, Family, Table, HOOK_NAMES};

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
        &mut self.table
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
        let mut enc = encode_table(self.sock.family(), &self.table)?;
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
        Ok(Committed {
            table: name,
            entries: enc.num_entries,
            bytes: enc.entries().len(),
            retries: 0,
        })
    }
}

/// Points every rule and policy at the entry it now is in the kernel (the
/// blob order of [`Table::ordered_chains`]), so the next commit carries its
/// counters over whole.
fn renumber(table: &mut Table) {
    let hook = |name: &str| HOOK_NAMES.iter().position(|h| *h == name);
    let mut order: Vec<usize> = (0..table.chains.len()).collect();
    order.sort_by(|&a, &b| {
        let (ca, cb) = (&table.chains[a], &table.chains[b]);
        match (ca.is_builtin(), cb.is_builtin()) {
            (true, true) => hook(&ca.name).cmp(&hook(&cb.name)),
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            (false, false) => crate::text::to_bytes(&ca.name).cmp(&crate::text::to_bytes(&cb.name)),
        }
    });
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
