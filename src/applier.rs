//! `apply`: the safe way to change a firewall. Files are full descriptions
//! of tables (IPv4 and IPv6 together form one transaction). Nothing is
//! touched when nothing changes; counters of unchanged rules and policies
//! are kept; the kernel checks every new table in a scratch namespace first;
//! the lockout guard refuses a ruleset that would cut the caller's SSH
//! session; and with a confirmation deadline the previous tables come back
//! by themselves unless the change is confirmed.

use std::time::{Duration, SystemTime};

use crate::apply::guard::{evaluate, CtState, Flow, Outcome};
use crate::apply::{self, confirm::StateLock, Installed, TablePlan};
use crate::error::{Error, Result};
use crate::ext::{AssumeLatest, RevisionSource};
use crate::kernel::{self, NetnsGuard, XtSocket, XtablesLock};
use crate::restore::{self, RestoreOptions};
use crate::rules::Family;

/// One input file.
#[derive(Debug, Clone)]
pub struct Input {
    /// Its family.
    pub family: Family,
    /// Name for messages.
    pub name: String,
    /// The restore text.
    pub text: String,
}

/// What an apply did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ApplyReport {
    /// True when the kernel's tables changed.
    pub changed: bool,
    /// Every table the inputs name: (family, table, changed, entries afterwards).
    pub tables: Vec<(Family, String, bool, u32)>,
    /// What changed, in iptables-save syntax.
    pub diff: String,
    /// Warnings (a new login would be refused, rules the kernel could not check …).
    pub warnings: Vec<String>,
    /// When a confirmation is pending: its deadline.
    pub confirm_deadline: Option<SystemTime>,
}

/// The `apply` command, as a library call.
#[derive(Debug, Clone, Default)]
pub struct Applier {
    inputs: Vec<Input>,
    netns: Option<String>,
    wait: Option<Duration>,
    force: bool,
    flows: Vec<Flow>,
    confirm: Option<Duration>,
    dry_run: bool,
}

impl Applier {
    /// An apply of these inputs.
    pub fn new(inputs: Vec<Input>) -> Applier {
        Applier {
            inputs,
            ..Applier::default()
        }
    }

    /// Work in this network namespace.
    pub fn netns(mut self, netns: Option<String>) -> Self {
        self.netns = netns;
        self
    }

    /// Wait at most this long for the xtables lock.
    pub fn wait(mut self, wait: Option<Duration>) -> Self {
        self.wait = wait;
        self
    }

    /// Apply even when the lockout guard says a protected flow may be dropped.
    pub fn force(mut self, on: bool) -> Self {
        self.force = on;
        self
    }

    /// Flows that must survive (the SSH session is added by the caller).
    pub fn keep(mut self, flows: Vec<Flow>) -> Self {
        self.flows = flows;
        self
    }

    /// Roll back by itself unless confirmed within this time (the caller
    /// starts the guard process; see [`crate::apply::confirm`]).
    pub fn confirm(mut self, within: Option<Duration>) -> Self {
        self.confirm = within;
        self
    }

    /// Only plan and report (the `diff` command).
    pub fn dry_run(mut self, on: bool) -> Self {
        self.dry_run = on;
        self
    }

    /// Plans every table: parse, read the live tables, build the new ones.
    fn plan(
        &self,
        socks: &[Option<XtSocket>; 2],
        existing: &[Vec<String>; 2],
    ) -> Result<Vec<TablePlan>> {
        let mut plans: Vec<TablePlan> = Vec::new();
        for input in &self.inputs {
            let slot = usize::from(input.family == Family::V6);
            let revs: &dyn RevisionSource = match &socks[slot] {
                Some(s) => s,
                None => &AssumeLatest,
            };
            let mut opts = RestoreOptions::new(input.family);
            opts.file_name = input.name.clone();
            let script = restore::parse(&input.text, &opts, revs)?;
            for name in apply::table_order(&script) {
                if plans
                    .iter()
                    .any(|p| p.family == input.family && p.name() == name)
                {
                    return Err(Error::Other(format!(
                        "table `{name}' is given by more than one input of the same family"
                    )));
                }
                let sock = socks[slot]
                    .as_ref()
                    .ok_or_else(|| Error::Other("no x_tables socket".into()))?;
                let live = apply::live_table(sock, &existing[slot], &name)?;
                let new = apply::build_table(&script, false, live.clone())?;
                plans.push(TablePlan::new(
                    input.family,
                    live,
                    new,
                    existing[slot].contains(&name),
                ));
            }
        }
        Ok(plans)
    }

    /// Runs the apply.
    pub fn run(&self) -> Result<ApplyReport> {
        let _ns = self.netns.as_deref().map(NetnsGuard::enter).transpose()?;
        let socks = [
            XtSocket::open(Family::V4).ok(),
            XtSocket::open(Family::V6).ok(),
        ];
        let state = apply::confirm::state_dir()?;
        let _lock = XtablesLock::acquire(self.wait)?;
        let existing = [
            kernel::table_names(Family::V4)?,
            kernel::table_names(Family::V6)?,
        ];
        let plans = self.plan(&socks, &existing)?;
        let mut report = ApplyReport::default();
        let mut changed = Vec::new();
        for p in &plans {
            let c = p.changed()?;
            let entries = crate::blob::encode_table(p.family, &p.new)?.num_entries;
            report
                .tables
                .push((p.family, p.name().to_string(), c, entries));
            if c {
                report.diff.push_str(&p.diff()?);
                changed.push(p);
            }
        }
        report.changed = !changed.is_empty();
        for family in [Family::V4, Family::V6] {
            let names: Vec<String> = plans
                .iter()
                .filter(|p| p.family == family)
                .map(|p| p.name().to_string())
                .collect();
            if !names.is_empty() {
                report
                    .warnings
                    .extend(kernel::nft::mixed_backend_warning(family, &names));
            }
        }
        if changed.is_empty() {
            return Ok(report);
        }
        report
            .warnings
            .extend(check_lockout(&plans, &self.flows, self.force)?);
        for family in [Family::V4, Family::V6] {
            let tables: Vec<_> = changed
                .iter()
                .filter(|p| p.family == family)
                .map(|p| p.new.clone())
                .collect();
            if tables.is_empty() {
                continue;
            }
            let check = apply::kernel_check(family, &tables, "<apply>")?;
            for (t, c, line) in check.unchecked {
                report.warnings.push(format!(
                    "{}rule in table `{t}' chain `{c}' uses an object outside the tables; the kernel check could not cover it",
                    line.map(|l| format!("line {l}: ")).unwrap_or_default()
                ));
            }
        }
        if self.dry_run {
            return Ok(report);
        }
        let state_lock = StateLock::take(&state)?;
        if state_lock.is_pending() {
            return Err(Error::Other(
                "an earlier apply is waiting for `iptables-atomic confirm`: confirm or roll it back first".into(),
            ));
        }
        let jobs = changed
            .iter()
            .map(|p| {
                let sock = socks[usize::from(p.family == Family::V6)]
                    .as_ref()
                    .expect("planned with this socket");
                let new = p.new.clone();
                let previous = p
                    .existed
                    .then(|| crate::blob::encode_table(p.family, &p.live))
                    .transpose()?
                    .map(crate::blob::KeptTable::new);
                Ok(apply::Job {
                    sock,
                    name: p.name().to_string(),
                    read_entries: apply::read_entries(p.name(), previous.as_ref()),
                    previous,
                    table: p.new.clone(),
                    rebuild: Box::new(move |live| Ok(apply::keep_counters(&live, new.clone()))),
                    encoded: None,
                    lay_out: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let installed: Vec<Installed> = apply::install_all(jobs)?;
        if let Some(within) = self.confirm {
            let deadline = SystemTime::now() + within;
            state_lock.save(&installed, deadline)?;
            report.confirm_deadline = Some(deadline);
        }
        Ok(report)
    }
}

/// `confirm`: keeps the tables of a pending apply. False when none was pending.
pub fn confirm(netns: Option<&str>) -> Result<bool> {
    let _ns = netns.map(NetnsGuard::enter).transpose()?;
    StateLock::take(&apply::confirm::state_dir()?)?.confirm()
}

/// `rollback`: puts back the tables a pending apply replaced, now.
pub fn rollback(netns: Option<&str>) -> Result<Vec<(Family, String)>> {
    let _ns = netns.map(NetnsGuard::enter).transpose()?;
    let lock = StateLock::take(&apply::confirm::state_dir()?)?;
    if !lock.is_pending() {
        return Err(Error::Other(
            "no apply is waiting for confirmation in this network namespace".into(),
        ));
    }
    lock.rollback()
}

/// The guard process's work: waits for the pending apply's deadline in
/// `netns` and rolls back unless it was confirmed.
pub fn guard(netns: Option<&str>) -> Result<apply::confirm::GuardOutcome> {
    let _ns = netns.map(NetnsGuard::enter).transpose()?;
    apply::confirm::guard(&apply::confirm::state_dir()?)
}

/// The lockout guard: every protected flow is followed through the new
/// filter table's INPUT chain (and its reply through OUTPUT). A flow that may
/// meet DROP, REJECT or a verdict that can drop (QUEUE …) refuses the apply
/// unless `force`; a new connection from the same client that would be
/// refused is a warning.
fn check_lockout(plans: &[TablePlan], flows: &[Flow], force: bool) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let mut blocked = Vec::new();
    for flow in flows {
        let Some(plan) = plans
            .iter()
            .find(|p| p.family == flow.family && p.name() == "filter")
        else {
            continue;
        };
        // Packets of the session arrive on the interface that routes back
        // to the client, and replies leave by it.
        let mut flow = flow.clone();
        if flow.in_iface.is_none() {
            flow.in_iface = crate::kernel::route_interface(flow.src);
        }
        let flow = &flow;
        for (chain, f) in [("INPUT", flow.clone()), ("OUTPUT", flow.reply())] {
            let ev = evaluate(&plan.new, chain, &f);
            if ev.outcomes.iter().any(|o| *o != Outcome::Accept) {
                blocked.push(format!("{} in {chain}: {}", describe(&f), explain(&ev)));
            }
            if chain == "INPUT" {
                let mut new_login = f.clone();
                new_login.state = CtState::New;
                let ev = evaluate(&plan.new, chain, &new_login);
                if ev.outcomes.iter().any(|o| *o != Outcome::Accept) {
                    warnings.push(format!(
                        "a new connection like {} would not be accepted: {}",
                        describe(&new_login),
                        explain(&ev)
                    ));
                }
            }
        }
    }
    if !blocked.is_empty() && !force {
        return Err(Error::Lockout(format!(
            "the new rules may cut off a protected connection (use --force to apply anyway):\n  {}",
            blocked.join("\n  ")
        )));
    }
    warnings.extend(
        blocked
            .into_iter()
            .map(|b| format!("applied with --force although {b}")),
    );
    Ok(warnings)
}

fn describe(f: &Flow) -> String {
    format!("{f}")
}

fn explain(ev: &crate::apply::guard::Evaluation) -> String {
    let why: Vec<String> = ev
        .paths
        .iter()
        .filter(|p| p.outcome != Outcome::Accept)
        .map(|p| p.to_string())
        .collect();
    why.join("; ")
}
