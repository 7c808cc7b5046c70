//! # iptables-atomic
//!
//! Installs iptables rules the way `iptables-restore` does — one atomic
//! `IPT_SO_SET_REPLACE` per table, with the exact bytes that
//! iptables-legacy-restore 1.8.9 would hand the kernel — but in-process:
//! no `iptables` binary is run and libiptc is not linked.
//!
//! The data path: restore text is parsed into a [`restore::Script`]
//! (every rule encoded before anything is touched), the script is applied to
//! the tables' current state in the model ([`rules`]), each table is encoded
//! into the kernel's blob ([`blob`]) and swapped in ([`kernel`]).
//!
//! ```no_run
//! use iptables_atomic::{Family, Restorer};
//!
//! let rules = "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n\
//!              -A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n";
//! let report = Restorer::new(Family::V4).netns("scratch").restore_str(rules)?;
//! for t in &report.tables {
//!     println!("{}: {} entries", t.table, t.entries);
//! }
//! println!("{}", iptables_atomic::save(Family::V4, Some("scratch"), None, false)?);
//! # Ok::<(), iptables_atomic::Error>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod applier;
pub mod apply;
pub mod blob;
mod error;
pub mod ext;
mod fasthash;
pub mod fuzzing;
pub mod kernel;
pub mod netdb;
pub mod restore;
pub mod rules;
pub mod session;
pub mod sys;
pub mod text;

use std::time::Duration;

pub use error::{Error, Location, Result};
pub use restore::RestoreOptions;
pub use rules::{Chain, Counters, Family, Rule, Ruleset, Table, Target, Verdict};
pub use session::Session;

use apply::Committed;
use ext::{AssumeLatest, RevisionSource};
use kernel::{NetnsGuard, XtSocket, XtablesLock};

/// What a restore did (or, in test mode, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Per table, in commit order.
    pub tables: Vec<Committed>,
    /// True when nothing was installed (`-t`).
    pub test_only: bool,
    /// Rules the kernel check had to leave out because they use objects
    /// outside the tables (ipsets, nfacct counters, timeout policies):
    /// (table, chain, input line).
    pub unchecked: Vec<(String, String, Option<usize>)>,
    /// Things the user should know (iptables-nft tables beside ours …).
    pub warnings: Vec<String>,
}

/// Restores iptables-restore text: parse everything, build every table, then
/// install each with one SET_REPLACE.
#[derive(Debug, Clone)]
pub struct Restorer {
    options: RestoreOptions,
    netns: Option<String>,
    wait: Option<Duration>,
    test: bool,
    precheck: Precheck,
}

/// When [`Restorer`] has the kernel check tables in a scratch network
/// namespace before touching the live ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Precheck {
    /// Check only the tables that do not exist yet (x_tables cannot delete a
    /// table, so a refused new table must never be created), and install
    /// them after the existing ones. An existing table is checked by its own
    /// SET_REPLACE, which is atomic: when the kernel refuses one, the tables
    /// this run already replaced are put back, and the refused rule is then
    /// found in a scratch namespace and named by its line. Same outcome as
    /// [`Precheck::Always`] at half the kernel work; the difference is that
    /// on a refusal, tables replaced earlier in the run held their new
    /// contents for the moment it takes to put them back.
    #[default]
    Auto,
    /// Install every table into a scratch namespace first: a refused table
    /// never reaches the live kernel at all.
    Always,
    /// No scratch namespace; a refused table still rolls back the tables
    /// replaced before it, but the error names no line.
    Never,
}

impl Restorer {
    /// A restorer with iptables-restore's defaults for the family.
    pub fn new(family: Family) -> Restorer {
        Restorer {
            options: RestoreOptions::new(family),
            netns: None,
            wait: None,
            test: false,
            precheck: Precheck::Auto,
        }
    }

    /// `-c`: use the counters in the input.
    pub fn counters(mut self, on: bool) -> Self {
        self.options.counters = on;
        self
    }

    /// `-n`: do not flush the tables first.
    pub fn noflush(mut self, on: bool) -> Self {
        self.options.noflush = on;
        self
    }

    /// `-T TABLE`: restore only this table.
    pub fn only_table(mut self, table: Option<String>) -> Self {
        self.options.table = table;
        self
    }

    /// `-t`: parse and build, install nothing.
    pub fn test(mut self, on: bool) -> Self {
        self.test = on;
        self
    }

    /// `true`: install every table into a private scratch network namespace
    /// first, so the kernel's own checks run before anything live changes
    /// ([`Precheck::Always`]); `false`: never ([`Precheck::Never`]). The
    /// default is [`Precheck::Auto`].
    pub fn precheck(mut self, on: bool) -> Self {
        self.precheck = if on {
            Precheck::Always
        } else {
            Precheck::Never
        };
        self
    }

    /// When to check tables in a scratch namespace (see [`Precheck`]).
    pub fn precheck_mode(mut self, mode: Precheck) -> Self {
        self.precheck = mode;
        self
    }

    /// `-w SECS`: wait at most this long for the xtables lock (default: no limit).
    pub fn wait(mut self, wait: Option<Duration>) -> Self {
        self.wait = wait;
        self
    }

    /// Work in another network namespace (a name under /run/netns or a path).
    pub fn netns(mut self, netns: impl Into<String>) -> Self {
        self.netns = Some(netns.into());
        self
    }

    /// The name used for the input in error messages.
    pub fn file_name(mut self, name: impl Into<String>) -> Self {
        self.options.file_name = name.into();
        self
    }

    /// Parses `text` without touching the kernel (revisions assumed latest
    /// unless a socket can be opened to ask).
    pub fn parse(&self, text: &str) -> Result<restore::Script> {
        let _ns = self.netns.as_deref().map(NetnsGuard::enter).transpose()?;
        let sock = XtSocket::open(self.options.family).ok();
        let revs: &dyn RevisionSource = match &sock {
            Some(s) => s,
            None => &AssumeLatest,
        };
        restore::parse(text, &self.options, revs)
    }

    /// Restores `text`.
    pub fn restore_str(&self, text: &str) -> Result<Report> {
        self.restore_text(text, &|| {})
    }

    /// Restores the text of `file` (from where it is to its end), as
    /// [`Restorer::restore_str`] does. A regular file is mapped, not read:
    /// the text is the page cache's, and once a plain file's rules are
    /// encoded its pages leave this process's memory, before the tables
    /// are laid out and installed (at 100k rules, 15 MB less at the peak
    /// and no copy). Anything else (a pipe) is read to its end. Bytes that
    /// are not UTF-8 are taken as [`text`] takes them.
    ///
    /// A mapped file must not be truncated or rewritten in place while this
    /// runs (the usual way, a new file renamed over the old one, is fine).
    pub fn restore_file(&self, file: &std::fs::File) -> Result<Report> {
        let cant = |e: std::io::Error| {
            Error::Other(format!("cannot read {}: {e}", self.options.file_name))
        };
        // A regular file read from its start is mapped (where the file
        // system can map it); a pipe cannot tell its position.
        let mapped = if std::io::Seek::stream_position(&mut &*file).ok() == Some(0) {
            sys::MappedFile::map(file).ok().flatten()
        } else {
            None
        };
        match mapped {
            Some(m) => self.restore_text(&text::from_bytes(m.bytes()), &|| m.release()),
            None => {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut &*file, &mut bytes).map_err(cant)?;
                self.restore_str(&text::from_vec(bytes))
            }
        }
    }

    /// Restores `text`; `release` is called once the text is no longer
    /// needed but for error messages (it may then be read again).
    fn restore_text(&self, text: &str, release: &dyn Fn()) -> Result<Report> {
        let _ns = self.netns.as_deref().map(NetnsGuard::enter).transpose()?;
        let family = self.options.family;
        let sock = XtSocket::open(family);
        let revs: &dyn RevisionSource = match &sock {
            Ok(s) => s,
            Err(_) => &AssumeLatest,
        };
        // The plain kind of file (declarations, then -A lines, per table)
        // goes straight from text to kernel entries, without the model;
        // unless a table is new and must be checked in a scratch namespace
        // first, which bisects the model when the kernel refuses it.
        if let Ok(s) = &sock {
            if !self.test && self.precheck != Precheck::Always {
                if let Some(report) = self.restore_direct(text, s, release)? {
                    return Ok(report);
                }
            }
        }
        let (mut script, parse_error) = restore::parse_partial(text, &self.options, revs);
        release();
        if let Some(e) = parse_error {
            // iptables-restore works line by line: a command before the bad
            // line that cannot be carried out is what it would report.
            let earlier = match &sock {
                Ok(s) => kernel::table_names(family).ok().and_then(|existing| {
                    apply::table_order(&script).into_iter().find_map(|name| {
                        let live = apply::live_table(s, &existing, &name).ok()?;
                        apply::build_table(&script, self.options.noflush, live).err()
                    })
                }),
                Err(_) => apply::build_tables(&script, self.options.noflush, |n| {
                    Table::new(n).ok_or_else(|| Error::Other(format!("unknown table `{n}'")))
                })
                .err(),
            };
            return Err(match earlier {
                Some(a) if a.line().unwrap_or(usize::MAX) < e.line().unwrap_or(0) => a,
                _ => e,
            });
        }
        let sock = match sock {
            Ok(s) => s,
            Err(e) if self.test => {
                // Without CAP_NET_ADMIN a test run still checks the whole file
                // against empty tables.
                let _ = e;
                apply::build_tables(&script, self.options.noflush, |n| {
                    Table::new(n).ok_or_else(|| Error::Other(format!("unknown table `{n}'")))
                })
                .and_then(|tables| {
                    tables
                        .values()
                        .try_for_each(|(_, t)| blob::encode_table(family, t).map(|_| ()))
                })?;
                return Ok(Report {
                    test_only: true,
                    ..Report::default()
                });
            }
            Err(e) => return Err(e),
        };
        let _lock = if self.test {
            None
        } else {
            Some(XtablesLock::acquire(self.wait)?)
        };
        let existing = kernel::table_names(family)?;
        let noflush = self.options.noflush;
        let auto = self.precheck == Precheck::Auto && !self.test;
        // Install order: in Auto mode existing tables first, new ones last
        // (checked in a scratch namespace; a created table cannot be deleted).
        let mut order = apply::table_order(&script);
        if auto {
            order.sort_by_key(|n| !existing.contains(n));
        }
        let last = order.last().cloned();
        let mut built: Vec<Built> = Vec::new();
        for name in order {
            let exists = existing.contains(&name);
            // Only tables replaced before another one may have to be put
            // back: the last one, when refused, is left as it was by the
            // kernel itself. A test run puts back nothing.
            let keep_previous = exists && !self.test && Some(&name) != last.as_ref();
            // What the new table starts from: all of the live one with -n;
            // else only its policies, and not even those when the input
            // declares every built-in chain (as iptables-save output does).
            let needs_live = exists && (noflush || !declares_builtins(&script, &name));
            let (previous, base, read_entries) = if keep_previous || needs_live {
                let (info, raw) = sock.read_encoded(&name)?;
                let count = Some(info.num_entries);
                let base = if !needs_live {
                    apply::live_table(&sock, &[], &name)?
                } else if noflush {
                    blob::decode_table(
                        family,
                        &name,
                        info.valid_hooks,
                        info.hook_entry,
                        info.underflow,
                        raw.entries(),
                    )?
                } else {
                    blob::decode_policies(
                        family,
                        &name,
                        info.valid_hooks,
                        info.underflow,
                        raw.entries(),
                    )?
                };
                (keep_previous.then_some(raw), base, count)
            } else {
                // A table that does not exist yet, or whose live contents
                // matter to nothing: it starts empty. (For the latter the
                // entry count is asked right before the replace.)
                let count = if exists {
                    None
                } else {
                    apply::read_entries(&name, None)
                };
                (None, apply::live_table(&sock, &[], &name)?, count)
            };
            // The rules move from the script into the table (no copy); a
            // rebuild after EAGAIN parses the text again.
            let table = apply::build_table_owned(&mut script, noflush, base)?;
            let enc = blob::encode_table(family, &table)?;
            // The model is kept only for a scratch check (which names the
            // refused rule by bisecting it); the blob is what gets installed.
            let checked = self.precheck == Precheck::Always || self.test || (auto && !exists);
            built.push(Built {
                name,
                read_entries,
                previous,
                table: checked.then_some(table),
                enc,
            });
        }
        let mut report = Report {
            test_only: self.test,
            ..Report::default()
        };
        let names: Vec<String> = built.iter().map(|b| b.name.clone()).collect();
        report
            .warnings
            .extend(kernel::nft::mixed_backend_warning(family, &names));
        if self.precheck == Precheck::Always || self.test || auto {
            // Auto: only the tables that do not exist yet (the others have
            // no model kept).
            let tables: Vec<_> = built
                .iter()
                .filter_map(|b| b.table.as_ref().map(|t| (t, Some(&b.enc))))
                .collect();
            let check = apply::kernel_check_encoded(family, &tables, &script.file_name)
                .map_err(|e| at_table_line(e, &script))?;
            report.unchecked = check.unchecked;
        }
        if self.test {
            report.tables = built
                .into_iter()
                .map(|b| Committed {
                    table: b.name,
                    entries: b.enc.num_entries,
                    bytes: b.enc.entries().len(),
                    retries: 0,
                })
                .collect();
            return Ok(report);
        }
        // All or nothing: when a table is refused, the tables this run already
        // replaced get their previous contents back, counters included.
        let sock_ref = &sock;
        let jobs = built
            .into_iter()
            .map(|b| apply::Job {
                sock: &sock,
                // `None` for the last table too: it is never put back.
                previous: b.previous.map(blob::KeptTable::new),
                read_entries: b.read_entries,
                table: b.table.unwrap_or_else(|| Table {
                    name: b.name.clone(),
                    chains: Vec::new(),
                }),
                name: b.name,
                rebuild: Box::new(move |live| {
                    let script = restore::parse(text, &self.options, sock_ref)?;
                    apply::build_table(&script, noflush, live)
                }),
                encoded: Some(b.enc),
                lay_out: None,
            })
            .collect();
        report.tables = match apply::install_all(jobs) {
            Ok(installed) => installed.into_iter().map(|i| i.committed).collect(),
            Err(Error::Kernel { table, message }) if auto => {
                // The live kernel refused a table (every table is as it
                // was): find the rule in a scratch namespace, by its line.
                return Err(self
                    .locate_refusal(text, &sock, &table)
                    .unwrap_or(Error::Kernel { table, message }));
            }
            Err(e) => return Err(at_table_line(e, &script)),
        };
        Ok(report)
    }

    /// The direct path (see [`restore::direct`]): the rules encoded and the
    /// tables laid out, the xtables lock is taken, the live tables a
    /// rollback may need are read (and kept packed: a fifth of their size),
    /// and the tables are installed. `None` when the input is not of the
    /// plain kind (or, in Auto mode, a table is new): the caller takes the
    /// model path, the lock let go.
    ///
    /// An input parsed on several threads has the lock taken and the live
    /// tables read on another thread from the start, while the file is
    /// scanned and its rules parsed (the tables its `*` lines name; read
    /// again if the scan finds others): it is over before the tables are
    /// laid out, so the live tables (but packed) are not held beside the new
    /// ones while these are made (at 100k rules, 10 MB less at the peak and
    /// 10 ms sooner than a read after the layout). A smaller input is not
    /// worth a thread: it reads them after the layout.
    fn restore_direct(
        &self,
        text: &str,
        sock: &XtSocket,
        release: &dyn Fn(),
    ) -> Result<Option<Report>> {
        // A large input has its live tables read on another thread while
        // it is scanned and parsed (the tables named by its `*` lines);
        // a small one after, inline (a thread costs more than it saves).
        let early = text.len() >= restore::PARALLEL_BYTES;
        let (tables, early_read) = std::thread::scope(|scope| {
            let reader = early.then(|| {
                scope.spawn(|| {
                    let names: Vec<String> = restore::direct::table_names(text)
                        .into_iter()
                        .map(str::to_string)
                        .collect();
                    let live = self.lock_and_read(sock, &names);
                    (names, live)
                })
            });
            let tables = restore::direct::parse_text(text, &self.options, sock, release);
            let read = reader.map(|r| {
                r.join().unwrap_or_else(|_| {
                    (
                        Vec::new(),
                        Err(Error::Other("reading the live tables failed".into())),
                    )
                })
            });
            (tables, read)
        });
        let Some(tables) = tables else {
            // Not of the plain kind: the model path takes it (the lock an
            // early read took is let go first).
            return Ok(None);
        };
        let names: Vec<String> = tables.iter().map(|t| t.name().to_string()).collect();
        let live = match early_read {
            Some((read, live)) if read == names => live,
            other => {
                // Its lock is let go before it is taken again.
                drop(other);
                self.lock_and_read(sock, &names)
            }
        };
        let Some(live) = live? else {
            return Ok(None);
        };
        // A large table after the first is laid out while the table before
        // it is installed, if that one is small (both blobs are held at
        // once: at 10k rules, the 5 MB nat table while the kernel takes
        // the 1 MB filter table, 0.8 ms sooner). The others are laid out now,
        // on every core, the largest first (each one's encoded rules
        // dropped once it is: the next is made while only its own wait).
        let later: Vec<bool> = (0..tables.len())
            .map(|i| {
                i > 0
                    && tables[i].size() >= LAY_OUT_LATER_BYTES
                    && tables[i - 1].size() <= LAY_OUT_BESIDE_MAX_BYTES
            })
            .collect();
        let Some(prepared) = restore::direct::lay_out_now(tables, &self.options, &later) else {
            return Ok(None);
        };
        self.install_direct(text, sock, prepared, live).map(Some)
    }

    /// Takes the xtables lock and reads what [`Restorer::install_direct`]
    /// needs of the live tables `names` (in install order). `None` in Auto
    /// mode when a table does not exist yet (it is checked in a scratch
    /// namespace first, on the model path).
    fn lock_and_read(&self, sock: &XtSocket, names: &[String]) -> Result<Option<Live>> {
        let lock = XtablesLock::acquire(self.wait)?;
        let existing = kernel::table_names(self.options.family)?;
        // Every table exists here in Auto mode: installed in file order.
        if self.precheck == Precheck::Auto && !names.iter().all(|n| existing.contains(n)) {
            return Ok(None);
        }
        let mut tables = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let exists = existing.contains(name);
            // As in restore_str: only a table replaced before another one
            // may have to be put back.
            tables.push(if exists && i + 1 < names.len() {
                let (info, raw) = sock.read_encoded(name)?;
                (Some(blob::KeptTable::new(raw)), Some(info.num_entries))
            } else if exists {
                (None, None)
            } else {
                (None, apply::read_entries(name, None))
            });
        }
        Ok(Some(Live {
            _lock: lock,
            tables,
        }))
    }

    /// Installs tables encoded by the direct path (in block order, with
    /// what was read of the live ones), as [`Restorer::restore_str`]
    /// installs the tables it builds.
    fn install_direct(
        &self,
        text: &str,
        sock: &XtSocket,
        order: Vec<restore::direct::Prepared>,
        live: Live,
    ) -> Result<Report> {
        let auto = self.precheck == Precheck::Auto;
        let names: Vec<String> = order.iter().map(|t| t.name().to_string()).collect();
        let mut jobs = Vec::new();
        for (table, (previous, read_entries)) in order.into_iter().zip(live.tables) {
            let name = table.name().to_string();
            let options = &self.options;
            let (encoded, lay_out): (_, Option<apply::LayOut>) = match table {
                restore::direct::Prepared::Laid(enc) => (Some(enc), None),
                restore::direct::Prepared::Later(p) => {
                    let name = name.clone();
                    (
                        None,
                        Some(Box::new(move |alone| {
                            p.lay_out(options, alone).ok_or_else(|| {
                                Error::Other(format!("table {name} could not be laid out"))
                            })
                        })),
                    )
                }
            };
            jobs.push(apply::Job {
                sock,
                previous,
                read_entries,
                table: Table {
                    name: name.clone(),
                    chains: Vec::new(),
                },
                name,
                // After EAGAIN: the model path, from the text.
                rebuild: Box::new(move |live| {
                    let script = restore::parse(text, options, sock)?;
                    apply::build_table(&script, false, live)
                }),
                encoded,
                lay_out,
            });
        }
        let mut report = Report::default();
        report.warnings.extend(kernel::nft::mixed_backend_warning(
            self.options.family,
            &names,
        ));
        report.tables = match apply::install_all(jobs) {
            Ok(installed) => installed.into_iter().map(|i| i.committed).collect(),
            Err(Error::Kernel { table, message }) if auto => {
                return Err(self
                    .locate_refusal(text, sock, &table)
                    .unwrap_or(Error::Kernel { table, message }));
            }
            Err(e) => {
                return Err(match restore::parse(text, &self.options, sock) {
                    Ok(script) => at_table_line(e, &script),
                    Err(_) => e,
                })
            }
        };
        Ok(report)
    }

    /// After the live kernel refused `table`: builds it again from the table
    /// now live (the one it was built on, put back) and lets the scratch
    /// check bisect it. `None` when the scratch namespace accepts it (the
    /// refusal was about the live namespace) or cannot be asked.
    fn locate_refusal(&self, text: &str, sock: &XtSocket, table: &str) -> Option<Error> {
        let script = restore::parse(text, &self.options, sock).ok()?;
        let existing = kernel::table_names(self.options.family).ok()?;
        let live = apply::live_table(sock, &existing, table).ok()?;
        let built = apply::build_table(&script, self.options.noflush, live).ok()?;
        apply::kernel_check(self.options.family, &[built], &script.file_name).err()
    }
}

/// The live tables as [`Restorer::install_direct`] needs them, read under
/// the xtables lock (held until it is dropped): per table in install order,
/// the table as installed when it may have to be put back, and the entry
/// count read (see `apply::Job`).
struct Live {
    _lock: XtablesLock,
    tables: Vec<(Option<blob::KeptTable>, Option<u32>)>,
}

/// From this size on, a table of the direct path that is not the first to
/// be installed is laid out while the one before it is installed (a thread
/// costs about a tenth of a millisecond; 1 MiB of entries takes about half
/// of one to lay out)...
const LAY_OUT_LATER_BYTES: usize = 1 << 20;

/// ... if the one before it is at most this size: both blobs are held at
/// once then (at 100k rules, the 10.6 MB filter table beside the 52 MB nat
/// table would add 6 MB to the peak).
const LAY_OUT_BESIDE_MAX_BYTES: usize = 4 << 20;

/// One table of a restore, built and encoded.
struct Built {
    name: String,
    /// The live table as installed, when it may have to be put back.
    previous: Option<blob::EncodedTable>,
    /// The entry count of the live table as read (see `apply::Job`).
    read_entries: Option<u32>,
    /// The model, kept only when a scratch check may bisect it.
    table: Option<Table>,
    enc: blob::EncodedTable,
}

/// Whether the input declares the policy of every built-in chain of
/// `table` (`:INPUT ACCEPT [0:0]` or `-P`): then, without `-n`, nothing of
/// the live table carries over.
fn declares_builtins(script: &restore::Script, table: &str) -> bool {
    let Some(t) = Table::new(table) else {
        return false;
    };
    t.chains.iter().all(|c| {
        script
            .blocks
            .iter()
            .filter(|b| b.table == table)
            .flat_map(|b| &b.commands)
            .any(|cmd| match &cmd.op {
                restore::Op::DeclareChain { name, policy, .. } => *name == c.name && policy != "-",
                restore::Op::Policy { chain, .. } => *chain == c.name,
                _ => false,
            })
    })
}

/// Gives a table-wide fault the line of its table's first `*table` header.
fn at_table_line(e: Error, script: &restore::Script) -> Error {
    match e {
        Error::OutOfMemory {
            table,
            at: None,
            entries,
            bytes,
        } => Error::OutOfMemory {
            at: script
                .blocks
                .iter()
                .find(|b| b.table == table)
                .map(|b| Location {
                    file: script.file_name.clone(),
                    line: b.line,
                    column: 0,
                }),
            table,
            entries,
            bytes,
        },
        e => e,
    }
}

/// Reads the live tables of a family (all, or one) as iptables-save text.
/// `netns` names a namespace to read from; `counters` adds rule counters.
pub fn save(
    family: Family,
    netns: Option<&str>,
    table: Option<&str>,
    counters: bool,
) -> Result<String> {
    let _ns = netns.map(NetnsGuard::enter).transpose()?;
    let sock = XtSocket::open(family)?;
    let names = match table {
        Some(t) => vec![t.to_string()],
        None => kernel::table_names(family)?,
    };
    let mut out = String::new();
    let version = env!("CARGO_PKG_VERSION");
    for name in names {
        let (_, t) = sock.read_table(&name)?;
        out.push_str(&format!(
            "# Generated by iptables-atomic v{version} on {}",
            sys::ctime_now()
        ));
        out.push_str(&restore::writer::save_table(family, &t, counters)?);
        out.push_str(&format!("# Completed on {}", sys::ctime_now()));
    }
    Ok(out)
}

/// Reads one live table into the model.
pub fn read_table(family: Family, netns: Option<&str>, table: &str) -> Result<Table> {
    let _ns = netns.map(NetnsGuard::enter).transpose()?;
    Ok(XtSocket::open(family)?.read_table(table)?.1)
}

/// Builds one rule from iptables arguments, e.g.
/// `rule(Family::V4, "filter", "-p tcp --dport 22 -j ACCEPT")`. A `-j NAME`
/// that is neither a verdict nor a target extension is a jump to the user
/// chain NAME (checked when the table is encoded). Extension revisions are
/// the ones the running kernel supports, when it can be asked.
pub fn rule(family: Family, table: &str, args: &str) -> Result<Rule> {
    let sock = XtSocket::open(family).ok();
    let revs: &dyn RevisionSource = match &sock {
        Some(s) => s,
        None => &AssumeLatest,
    };
    let op = restore::parse_rule(&format!("-A RULE {args}"), table, family, revs)?;
    let Some(restore::Op::Append { mut rules, .. }) = op else {
        return Err(Error::Other(format!(
            "`{args}' is not a rule for this family"
        )));
    };
    if rules.len() != 1 {
        return Err(Error::Other(format!(
            "`{args}' expands to {} rules (several addresses); build them one by one",
            rules.len()
        )));
    }
    let spec = rules.remove(0);
    let mut r = spec.rule;
    r.target = match spec.target {
        restore::TargetSpec::None => Target::Fallthrough,
        restore::TargetSpec::Verdict(v) => Target::Verdict(v),
        restore::TargetSpec::Named { ext: Some(e), .. } => Target::Extension(e),
        restore::TargetSpec::Named {
            name, goto: true, ..
        } => Target::Goto(name),
        restore::TargetSpec::Named { name, .. } => Target::Jump(name),
    };
    Ok(r)
}

/// Installs a whole ruleset built in code: each table is replaced with one
/// SET_REPLACE, holding the xtables lock. Rules equal to a live rule in the
/// same chain keep that rule's counters; other counters are the rules' own.
pub fn commit(ruleset: &Ruleset, netns: Option<&str>, wait: Option<Duration>) -> Result<Report> {
    let _ns = netns.map(NetnsGuard::enter).transpose()?;
    let sock = XtSocket::open(ruleset.family)?;
    let check = apply::kernel_check(ruleset.family, &ruleset.tables, "<ruleset>")?;
    let _lock = XtablesLock::acquire(wait)?;
    let existing = kernel::table_names(ruleset.family)?;
    let mut jobs = Vec::new();
    for t in &ruleset.tables {
        let live = apply::live_table(&sock, &existing, &t.name)?;
        let previous = existing
            .contains(&t.name)
            .then(|| blob::encode_table(ruleset.family, &live))
            .transpose()?
            .map(blob::KeptTable::new);
        jobs.push(apply::Job {
            sock: &sock,
            read_entries: apply::read_entries(&t.name, previous.as_ref()),
            name: t.name.clone(),
            table: apply::keep_counters(&live, t.clone()),
            previous,
            rebuild: Box::new(move |live| Ok(apply::keep_counters(&live, t.clone()))),
            encoded: None,
            lay_out: None,
        });
    }
    let tables = apply::install_all(jobs)?
        .into_iter()
        .map(|i| i.committed)
        .collect();
    Ok(Report {
        tables,
        unchecked: check.unchecked,
        ..Report::default()
    })
}

/// Reads every live table of a family (or none, if there are none yet).
pub fn read_ruleset(family: Family, netns: Option<&str>) -> Result<Ruleset> {
    let _ns = netns.map(NetnsGuard::enter).transpose()?;
    let sock = XtSocket::open(family)?;
    let mut tables = Vec::new();
    for name in kernel::table_names(family)? {
        tables.push(sock.read_table(&name)?.1);
    }
    Ok(Ruleset { family, tables })
}
