//! The kernel as a checker: tables are installed into a private, throw-away
//! network namespace so that every check x_tables makes (a target only valid
//! in some chains, option combinations, jump loops, missing modules) runs
//! before anything live is touched. When the kernel refuses a table, the
//! refused rule is found by installing growing prefixes of the table
//! (bisection) and reported with its input line.

use std::borrow::Cow;
use std::mem::offset_of;

use crate::blob::{encode_table, EncodedTable};
use crate::error::{Error, Location, Result};
use crate::ext::{Kind, RevisionSource};
use crate::kernel::{NetnsGuard, XtSocket};
use crate::rules::{Family, Rule, Table, Target};
use crate::sys::bindings::xt_ct_target_info_v1;
use crate::sys::SyscallError;

/// What the kernel could not be asked about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// Rules left out of the check because they refer to kernel objects that
    /// live outside the tables (ipsets, nfacct counters, timeout policies):
    /// (table, chain, input line).
    pub unchecked: Vec<(String, String, Option<usize>)>,
}

/// True when a rule needs an object the scratch namespace does not have.
fn needs_outside_object(rule: &Rule) -> bool {
    let ext_needs = |name: &str, data: &[u8], target: bool| match (name, target) {
        ("set", false) | ("nfacct", false) | ("rateest", false) | ("SET", true) => true,
        ("CT", true) => {
            // Revisions 1 and 2 carry a timeout policy name.
            let off = offset_of!(xt_ct_target_info_v1, timeout);
            data.get(off).is_some_and(|&b| b != 0)
        }
        _ => false,
    };
    rule.matches
        .iter()
        .any(|m| ext_needs(&m.name, &m.data, false))
        || matches!(&rule.target, Target::Extension(e) if ext_needs(&e.name, &e.data, true))
}

/// Why the kernel refused `rule`, from the errno of the SET_REPLACE that
/// first refused it. For a missing extension the probe socket says which
/// of the rule's extensions the kernel lacks.
fn refusal_reason(sock: &XtSocket, rule: &Rule, refused: &SyscallError) -> String {
    let family = sock.family();
    let exts = rule
        .matches
        .iter()
        .map(|m| (Kind::Match, m))
        .chain(match &rule.target {
            Target::Extension(e) => Some((Kind::Target, e)),
            _ => None,
        });
    // The kernel looks extensions up by name, then revision: ENOENT means no
    // such name, EPROTOTYPE no such revision of it (the revision probe says
    // EPROTONOSUPPORT for that; taken here too).
    let missing = || {
        exts.clone()
            .find(|(kind, e)| !sock.supported(family, *kind, &e.name, e.revision))
    };
    match refused.errno() {
        Some(libc::ENOENT) => match missing() {
            Some((kind, e)) => format!(
                "the kernel refused this rule (ENOENT): {}",
                crate::ext::missing_module_hint(family, kind, &e.name)
            ),
            None => "the kernel refused this rule (ENOENT): something it names is unknown to the kernel (a conntrack helper? a module not loaded?)".into(),
        },
        Some(libc::EPROTOTYPE | libc::EPROTONOSUPPORT) => match missing() {
            Some((kind, e)) => format!(
                "the kernel refused this rule (no such revision): the kernel's `{}' {} has no revision {} (a kernel older than the rule?)",
                e.name,
                if kind == Kind::Match { "match" } else { "target" },
                e.revision
            ),
            None => "the kernel refused this rule (no such revision): the kernel lacks the revision of one of its extensions".into(),
        },
        Some(libc::ELOOP) => "chain loop: this rule's jump or goto leads back into a chain already on the way to it, which the kernel refuses (ELOOP)".into(),
        Some(libc::EINVAL) => "the kernel refused this rule (EINVAL): it is not valid in this table or chain, or the kernel does not accept this combination of options (`dmesg' shows the kernel's reason)".into(),
        Some(libc::ERANGE) => "the kernel refused this rule (ERANGE): a value is out of the range the kernel accepts".into(),
        _ => format!("the kernel refused this rule: {}", refused.source),
    }
}

/// The error for a table the kernel had no memory for: a fault of the
/// moment, not of a rule, so nothing is bisected.
fn out_of_memory(family: Family, t: &Table, enc: Option<&EncodedTable>) -> Error {
    let (entries, bytes) = match enc {
        Some(enc) => (enc.num_entries, enc.entries().len()),
        None => encode_table(family, t)
            .map(|enc| (enc.num_entries, enc.entries().len()))
            .unwrap_or_default(),
    };
    Error::OutOfMemory {
        table: t.name.clone(),
        at: None,
        entries,
        bytes,
    }
}

/// The rules of a table in blob order: (chain index, rule index).
fn rule_order(t: &Table) -> Vec<(String, usize)> {
    t.ordered_chains()
        .iter()
        .flat_map(|c| (0..c.rules.len()).map(move |i| (c.name.clone(), i)))
        .collect()
}

/// The table with only the first `k` rules (in blob order) kept.
fn prefix(t: &Table, order: &[(String, usize)], k: usize) -> Table {
    let mut p = t.clone();
    for c in &mut p.chains {
        let keep: Vec<usize> = order[..k]
            .iter()
            .filter(|(n, _)| *n == c.name)
            .map(|(_, i)| *i)
            .collect();
        let rules = std::mem::take(&mut c.rules);
        c.rules = rules
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep.contains(i))
            .map(|(_, r)| r)
            .collect();
    }
    p
}

fn install(sock: &XtSocket, t: &Table) -> std::result::Result<(), crate::sys::SyscallError> {
    let mut enc = encode_table(sock.family(), t).map_err(|e| {
        crate::sys::SyscallError::new(
            "encode",
            std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
        )
    })?;
    let info = sock.get_info(&t.name).map_err(|e| match e {
        Error::Syscall(s) => s,
        other => {
            crate::sys::SyscallError::new("getsockopt", std::io::Error::other(other.to_string()))
        }
    })?;
    sock.replace(&mut enc, info.num_entries).map(|_| ())
}

fn check_in_scratch(
    family: Family,
    tables: &[(&Table, Option<&EncodedTable>)],
    file: &str,
) -> Result<CheckReport> {
    let _ns = NetnsGuard::scratch()?;
    let sock = XtSocket::open(family)?;
    let mut report = CheckReport::default();
    for &(t, enc) in tables {
        let outside = t
            .chains
            .iter()
            .any(|c| c.rules.iter().any(needs_outside_object));
        let t: Cow<Table> = if outside {
            let mut t = t.clone();
            for c in &mut t.chains {
                let name = c.name.clone();
                c.rules.retain(|r| {
                    let skip = needs_outside_object(r);
                    if skip {
                        report
                            .unchecked
                            .push((t.name.clone(), name.clone(), r.line));
                    }
                    !skip
                });
            }
            Cow::Owned(t)
        } else {
            Cow::Borrowed(t)
        };
        let first = match (enc, outside) {
            // The table as the caller encoded it: no second encoding.
            (Some(enc), false) => sock
                .get_info(&t.name)
                .and_then(|info| Ok(sock.replace(&mut enc.clone(), info.num_entries)?))
                .map(|_| ())
                .map_err(|e| match e {
                    Error::Syscall(s) => s,
                    other => crate::sys::SyscallError::new(
                        "getsockopt",
                        std::io::Error::other(other.to_string()),
                    ),
                }),
            _ => install(&sock, &t),
        };
        let Err(e) = first else { continue };
        if e.errno() == Some(libc::ENOMEM) {
            return Err(out_of_memory(family, &t, enc.filter(|_| !outside)));
        }
        // Find the first rule whose prefix the kernel refuses.
        let order = rule_order(&t);
        let (mut lo, mut hi) = (0usize, order.len());
        if install(&sock, &prefix(&t, &order, 0)).is_err() {
            return Err(Error::Kernel {
                table: t.name.clone(),
                message: format!("the kernel refused the table even without rules: {e}"),
            });
        }
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if install(&sock, &prefix(&t, &order, mid)).is_ok() {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let (chain, idx) = &order[hi - 1];
        let rule = &t.chain(chain).expect("chain of the order").rules[*idx];
        let refused = install(&sock, &prefix(&t, &order, hi)).err().unwrap_or(e);
        if refused.errno() == Some(libc::ENOMEM) {
            return Err(out_of_memory(family, &t, enc.filter(|_| !outside)));
        }
        let message = format!(
            "{} (table `{}', chain `{chain}', rule {})",
            refusal_reason(&sock, rule, &refused),
            t.name,
            idx + 1,
        );
        return Err(match rule.line {
            Some(line) => Error::Apply {
                at: Location {
                    file: file.to_string(),
                    line,
                    column: 0,
                },
                message,
                exit_code: 1,
            },
            None => Error::Kernel {
                table: t.name.clone(),
                message,
            },
        });
    }
    Ok(report)
}

/// Installs `tables` into a private scratch network namespace and reports
/// the first rule the kernel refuses, with its input line. Live tables are
/// not touched. Rules that need objects outside the tables are left out of
/// the check and listed in the report.
pub fn kernel_check(family: Family, tables: &[Table], file: &str) -> Result<CheckReport> {
    let tables: Vec<(&Table, Option<&EncodedTable>)> = tables.iter().map(|t| (t, None)).collect();
    kernel_check_encoded(family, &tables, file)
}

/// As [`kernel_check`], for borrowed tables, each with its encoding when
/// the caller has it already (it is installed as it is unless rules had to
/// be left out).
pub fn kernel_check_encoded(
    family: Family,
    tables: &[(&Table, Option<&EncodedTable>)],
    file: &str,
) -> Result<CheckReport> {
    if tables.is_empty() {
        // Nothing to check: no scratch namespace to make.
        return Ok(CheckReport::default());
    }
    std::thread::scope(|s| {
        s.spawn(|| check_in_scratch(family, tables, file))
            .join()
            .unwrap_or_else(|_| Err(Error::Other("the kernel check thread panicked".into())))
    })
}
