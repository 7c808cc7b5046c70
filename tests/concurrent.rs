//! Concurrent writers, against the real kernel, in a fresh namespace.
//!
//! For `IPTA_RACE_SECS` seconds (default 20), all at once:
//! * `iptables-legacy -w` appends, inserts and deletes rules in mangle (a
//!   table our files never name), and creates and deletes a chain of its own
//!   there;
//! * another `iptables-legacy -w` does the same in chain `theirs` of filter,
//!   a table that one of our files restores with `--noflush` without naming
//!   that chain;
//! * a writer that ignores the xtables lock, as daemons that link libiptc
//!   may: it reads raw, adds to its chain `rogue` and replaces the table
//!   with the entry count of its read, hundreds of times a second, so the
//!   kernel's EAGAIN is all that keeps it from overwriting others (and
//!   others from overwriting it); see [`ROGUE_CYCLE`];
//! * two `iptables-atomic restore` processes, each going round a full nat
//!   file and a `--noflush --counters` file of chains `ours` in filter and
//!   raw, two variants of each (hundreds of rules, of different sizes).
//!
//! Every process takes the same private lock file (`XTABLES_LOCKFILE`), so
//! nothing else on the machine is involved. Every restore must exit 0. After
//! each restore, nat and the chains `ours` must be exactly one of the variants
//! (the other restore may have run since) and every other writer's chains
//! exactly what it last wrote (it is paused while the tables are read). At
//! the end the writers stop, both files are restored once more, and
//! iptables-legacy-save must show exactly the last variants and every
//! writer's last state. The expected text of each variant comes from
//! iptables-legacy-restore in a namespace of its own.
//!
//! A second test has a lock-ignoring writer replace a big raw table back to
//! back, with no pause, while the library restores raw 60 times: each must
//! get through its EAGAINs (retried with a randomized backoff) and leave
//! exactly its chain.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{strip_comments, Netns, Rng};
use iptables_atomic::blob::encode_table;
use iptables_atomic::kernel::{NetnsGuard, XtSocket};
use iptables_atomic::{Family, Restorer, Rule};
use nix::fcntl::{Flock, FlockArg};

const BIN: &str = env!("CARGO_BIN_EXE_iptables-atomic");

/// Errors kept for the report (the first ones say what went wrong).
const MAX_ERRORS: usize = 30;

/// The namespace and the lock file every process of the test shares.
struct Scene {
    ns: String,
    lock: PathBuf,
}

impl Scene {
    /// `ip netns exec NS ARGV...` with the private lock file and `input` on stdin.
    fn run(&self, ns: &str, argv: &[&str], input: &[u8]) -> Output {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(argv)
            .env("XTABLES_LOCKFILE", &self.lock)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ip netns exec");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        child.wait_with_output().expect("wait")
    }

    /// `iptables-legacy -w ARGS` in the namespace.
    fn legacy(&self, args: &[String]) -> Output {
        let mut argv = vec!["iptables-legacy", "-w"];
        argv.extend(args.iter().map(String::as_str));
        self.run(&self.ns, &argv, b"")
    }

    /// `iptables-atomic restore -v --netns NS FILE`; the --noflush file
    /// (kind 1) with `--noflush --counters`.
    fn restore(&self, file: &Path, kind: usize) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.env("XTABLES_LOCKFILE", &self.lock)
            .args(["restore", "-v", "--netns", &self.ns]);
        if kind == 1 {
            cmd.args(["--noflush", "--counters"]);
        }
        cmd.arg(file).output().expect("run iptables-atomic")
    }
}

/// A table's save text as chain → (policy or `-`, rule lines).
type Chains = BTreeMap<String, (String, Vec<String>)>;

fn chains(save: &str) -> Chains {
    let mut out = Chains::new();
    for line in save.lines() {
        if let Some(decl) = line.strip_prefix(':') {
            let mut w = decl.split_whitespace();
            let name = w.next().unwrap_or_default().to_string();
            let policy = w.next().unwrap_or_default().to_string();
            out.insert(name, (policy, Vec::new()));
        } else if let Some(rule) = line.strip_prefix("-A ") {
            let chain = rule.split_whitespace().next().unwrap_or_default();
            out.entry(chain.to_string())
                .or_insert_with(|| ("?".to_string(), Vec::new()))
                .1
                .push(line.to_string());
        }
    }
    out
}

/// What differs between two tables, chain by chain, briefly.
fn diff_chains(have: &Chains, want: &Chains) -> String {
    let mut out = Vec::new();
    for name in have
        .keys()
        .chain(want.keys().filter(|k| !have.contains_key(*k)))
    {
        match (have.get(name), want.get(name)) {
            (Some(h), Some(w)) if h == w => {}
            (Some(h), Some(w)) => {
                let at = h.1.iter().zip(&w.1).position(|(a, b)| a != b);
                out.push(format!(
                    "chain `{name}': policy {} / {}, {} rules / {} wanted, first difference at {at:?}: {:?} / {:?}",
                    h.0,
                    w.0,
                    h.1.len(),
                    w.1.len(),
                    at.and_then(|i| h.1.get(i)),
                    at.and_then(|i| w.1.get(i)),
                ));
                if at.is_none() {
                    out.push(format!("  have {:?}\n  want {:?}", h.1, w.1));
                }
            }
            (Some(_), None) => out.push(format!("chain `{name}' should not exist")),
            (None, _) => out.push(format!("chain `{name}' is missing")),
        }
    }
    out.join("\n")
}

/// Address `n` of the writer numbered `net` (unique while n < 64000).
fn addr(net: u8, n: usize) -> String {
    format!("10.{net}.{}.{}", n / 250, n % 250 + 1)
}

/// One writer's state as it last wrote it: its rules (by source address, in
/// chain order) and whether its spare chain exists.
#[derive(Debug, Clone, Default, PartialEq)]
struct Model {
    addrs: Vec<String>,
    spare: bool,
}

/// A writer that goes through `iptables-legacy -w`, as every well-behaved
/// tool does.
struct LegacyWriter {
    table: &'static str,
    chain: &'static str,
    spare: &'static str,
    verdict: &'static str,
    net: u8,
    seed: u64,
}

impl LegacyWriter {
    fn line(&self, a: &str) -> String {
        format!("-A {} -s {a}/32 -j {}", self.chain, self.verdict)
    }

    fn lines(&self, m: &Model) -> Vec<String> {
        m.addrs.iter().map(|a| self.line(a)).collect()
    }
}

#[derive(Default)]
struct Stats {
    restores: AtomicUsize,
    restore_retries: AtomicUsize,
    restore_max_retries: AtomicUsize,
    checks: AtomicUsize,
    mangle_ops: AtomicUsize,
    theirs_ops: AtomicUsize,
    rogue_ops: AtomicUsize,
    rogue_eagain: AtomicUsize,
}

struct Shared<'a> {
    scene: &'a Scene,
    stop: AtomicBool,
    errors: Mutex<Vec<String>>,
    stats: Stats,
    mangle: (LegacyWriter, Mutex<Model>),
    theirs: (LegacyWriter, Mutex<Model>),
    rogue: Mutex<Vec<String>>,
    /// Expected save text of nat, per variant.
    nat: [String; 2],
    /// Expected rules of chain `ours` in filter, per variant.
    ours: [Vec<String>; 2],
    /// Expected rules of chain `ours` in raw, per variant.
    ours_raw: [Vec<String>; 2],
}

impl Shared<'_> {
    fn error(&self, msg: String) {
        let mut e = self.errors.lock().unwrap();
        if e.len() < MAX_ERRORS {
            e.push(msg);
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// Sets the stop flag when dropped, so that a panic in the test's own thread
/// cannot leave the writers running for ever.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn run_legacy_writer(sh: &Shared, which: &(LegacyWriter, Mutex<Model>), ops: &AtomicUsize) {
    let (w, model) = which;
    let mut rng = Rng::new(w.seed);
    let mut n = 0;
    while !sh.stopped() {
        let mut m = model.lock().unwrap();
        let mut next = m.clone();
        let mut args: Vec<String> = vec!["-t".into(), w.table.into()];
        let pick = rng.below(10);
        if pick == 9 {
            args.push(if m.spare { "-X" } else { "-N" }.into());
            args.push(w.spare.into());
            next.spare = !m.spare;
        } else if pick >= 6 && m.addrs.len() >= 3 {
            let i = rng.below(m.addrs.len());
            let a = next.addrs.remove(i);
            args.extend(["-D".into(), w.chain.into(), "-s".into(), a]);
            args.extend(["-j".into(), w.verdict.into()]);
        } else {
            n += 1;
            let a = addr(w.net, n);
            if pick == 5 {
                let at = rng.range(1, m.addrs.len() + 1);
                next.addrs.insert(at - 1, a.clone());
                args.extend(["-I".into(), w.chain.into(), at.to_string()]);
            } else {
                next.addrs.push(a.clone());
                args.extend(["-A".into(), w.chain.into()]);
            }
            args.extend(["-s".into(), a, "-j".into(), w.verdict.into()]);
        }
        // Everyone who writes this table takes the lock, so iptables' replace
        // cannot meet EAGAIN, nor its counters after it EINVAL.
        let out = sh.scene.legacy(&args);
        let done = out.status.success();
        if !done {
            sh.error(format!(
                "iptables-legacy {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        if !done {
            // Its state is unknown from here on: stop writing.
            return;
        }
        *m = next;
        drop(m);
        ops.fetch_add(1, Ordering::Relaxed);
    }
}

/// Same address list, same order.
fn same_rules(have: &[Rule], want: &[Rule]) -> bool {
    have.len() == want.len() && have.iter().zip(want).all(|(a, b)| a.same_rule(b))
}

/// The lock-ignoring writer appends to chain `rogue` one rule at a time,
/// without the lock, and empties it when it holds this many, with the lock.
/// The kernel compares only entry counts: changes that cancel out (one rule
/// in, one out) between another writer's read and its replace cannot be
/// seen by any x_tables writer, iptables included. Without the lock this
/// writer only ever adds, so whatever it does inside another writer's
/// window changes the count.
const ROGUE_CYCLE: usize = 100;

/// The writer that ignores the lock: read, change chain `rogue`, replace
/// with the entry count of the read; on EAGAIN read again. Before each change
/// it checks that its chain still holds what it last wrote.
///
/// It works in raw, where no iptables-legacy writer is: two changes of such
/// a writer that cancel out in the count (one rule in, one out) between
/// this writer's read and its replace would be overwritten, as by any
/// writer that ignores the lock. That race is between those two and
/// x_tables, not ours; our restores race each of them.
fn run_rogue(sh: &Shared) {
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&sh.scene.lock)
        .expect("open the lock file");
    let mut lock_file = Some(lock_file);
    let _in = NetnsGuard::enter(&sh.scene.ns).expect("enter the namespace");
    let sock = XtSocket::open(Family::V4).expect("x_tables socket");
    let mut rng = Rng::new(0x706e_6775);
    let rule = |a: &str| {
        iptables_atomic::rule(Family::V4, "raw", &format!("-s {a}/32 -j RETURN"))
            .expect("build a rule")
    };
    let mut rules: Vec<Rule> = Vec::new();
    let mut n = 0;
    while !sh.stopped() {
        let mut m = sh.rogue.lock().unwrap();
        let mut next = m.clone();
        let mut next_rules = rules.clone();
        let mut held = None;
        if m.len() < ROGUE_CYCLE {
            n += 1;
            let a = addr(66, n);
            next_rules.push(rule(&a));
            next.push(a);
        } else {
            next.clear();
            next_rules.clear();
            let file = lock_file.take().expect("the lock file");
            held = Some(Flock::lock(file, FlockArg::LockExclusive).expect("take the lock"));
        }
        loop {
            let (info, mut table) = match sock.read_table("raw") {
                Ok(t) => t,
                Err(e) => {
                    sh.error(format!("rogue writer: reading raw: {e}"));
                    return;
                }
            };
            let Some(chain) = table.chain_mut("rogue") else {
                sh.error("rogue writer: chain `rogue' is gone".into());
                return;
            };
            if !same_rules(&chain.rules, &rules) {
                sh.error(format!(
                    "rogue writer: chain `rogue' lost what it wrote: has {} rules, wrote {:?}",
                    chain.rules.len(),
                    *m
                ));
                return;
            }
            chain.rules = next_rules.clone();
            let mut enc = encode_table(Family::V4, &table).expect("encode raw");
            match sock.replace(&mut enc, info.num_entries) {
                Ok(_) => break,
                Err(e) if e.errno() == Some(libc::EAGAIN) => {
                    sh.stats.rogue_eagain.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    sh.error(format!("rogue writer: replacing raw: {e}"));
                    return;
                }
            }
        }
        if let Some(l) = held {
            lock_file = Some(l.unlock().expect("release the lock"));
        }
        *m = next;
        rules = next_rules;
        drop(m);
        sh.stats.rogue_ops.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_micros(rng.below(500) as u64));
    }
}

/// Checks nat, filter, raw and mangle against what every writer last wrote.
/// `save(table)` reads a table; `variants` are the variants our files may
/// be at. The writers are paused (their models locked) while it reads.
fn check(sh: &Shared, save: &dyn Fn(&str) -> String, variants: &[usize]) -> Result<(), String> {
    let theirs = sh.theirs.1.lock().unwrap();
    let rogue = sh.rogue.lock().unwrap();
    let mangle = sh.mangle.1.lock().unwrap();
    let nat = save("nat");
    if !variants.iter().any(|&v| nat == sh.nat[v]) {
        return Err(format!(
            "nat is none of the variants {variants:?} ({} lines)",
            nat.lines().count()
        ));
    }
    let filter = chains(&save("filter"));
    let mut want = Chains::new();
    for c in ["INPUT", "FORWARD", "OUTPUT"] {
        want.insert(c.into(), ("ACCEPT".into(), Vec::new()));
    }
    let (tw, _) = &sh.theirs;
    want.insert("theirs".into(), ("-".into(), tw.lines(&theirs)));
    if theirs.spare {
        want.insert(tw.spare.into(), ("-".into(), Vec::new()));
    }
    want.insert(
        "ours".into(),
        ("-".into(), ours_variant(&filter, &sh.ours, variants)?),
    );
    if filter != want {
        return Err(format!("filter differs:\n{}", diff_chains(&filter, &want)));
    }
    let raw = chains(&save("raw"));
    let mut want = Chains::new();
    for c in ["PREROUTING", "OUTPUT"] {
        want.insert(c.into(), ("ACCEPT".into(), Vec::new()));
    }
    let rogue_lines = rogue
        .iter()
        .map(|a| format!("-A rogue -s {a}/32 -j RETURN"))
        .collect();
    want.insert("rogue".into(), ("-".into(), rogue_lines));
    want.insert(
        "ours".into(),
        ("-".into(), ours_variant(&raw, &sh.ours_raw, variants)?),
    );
    if raw != want {
        return Err(format!("raw differs:\n{}", diff_chains(&raw, &want)));
    }
    let mangle_chains = chains(&save("mangle"));
    let mut want = Chains::new();
    for c in ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"] {
        want.insert(c.into(), ("ACCEPT".into(), Vec::new()));
    }
    let (mw, _) = &sh.mangle;
    want.get_mut("PREROUTING").unwrap().1 = mw.lines(&mangle);
    if mangle.spare {
        want.insert(mw.spare.into(), ("-".into(), Vec::new()));
    }
    if mangle_chains != want {
        return Err(format!(
            "mangle differs:\n{}",
            diff_chains(&mangle_chains, &want)
        ));
    }
    Ok(())
}

/// The rules of chain `ours` in `table`, when they are one of `variants`.
/// (Each table is replaced on its own: the two tables of one file may be at
/// different variants while the other restore is between them.)
fn ours_variant(
    table: &Chains,
    expected: &[Vec<String>; 2],
    variants: &[usize],
) -> Result<Vec<String>, String> {
    let ours = table.get("ours").map(|c| c.1.clone()).unwrap_or_default();
    if variants.iter().any(|&v| ours == expected[v]) {
        return Ok(ours);
    }
    Err(format!(
        "chain `ours' is none of the variants {variants:?}: {} rules, first {:?}",
        ours.len(),
        ours.first()
    ))
}

/// `(N retries)` in the -v report of a restore.
fn retries(stderr: &str) -> usize {
    stderr
        .lines()
        .filter_map(|l| {
            l.split(" (")
                .nth(1)?
                .strip_suffix(" retries)")?
                .parse::<usize>()
                .ok()
        })
        .sum()
}

fn run_restorer(sh: &Shared, files: &[[PathBuf; 2]; 2], instance: usize) {
    let ours_save = |table: &str| {
        strip_comments(
            &iptables_atomic::save(Family::V4, Some(&sh.scene.ns), Some(table), false)
                .unwrap_or_else(|e| format!("save failed: {e}")),
        )
    };
    let mut i = instance;
    while !sh.stopped() {
        let (kind, variant) = (i % 2, (i / 2) % 2);
        let out = sh.scene.restore(&files[kind][variant], kind);
        sh.stats.restores.fetch_add(1, Ordering::Relaxed);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let r = retries(&stderr);
        sh.stats.restore_retries.fetch_add(r, Ordering::Relaxed);
        sh.stats.restore_max_retries.fetch_max(r, Ordering::Relaxed);
        if !out.status.success() {
            sh.error(format!(
                "restore {} ({}): {stderr}",
                files[kind][variant].display(),
                out.status
            ));
        }
        if let Err(e) = check(sh, &ours_save, &[0, 1]) {
            sh.error(format!("after a restore by instance {instance}: {e}"));
        }
        sh.stats.checks.fetch_add(1, Ordering::Relaxed);
        i += 1;
    }
}

/// `*nat`, replaced whole: DNAT rules, and user chains jumped to.
fn nat_file(variant: usize) -> String {
    let rules = [300, 200][variant];
    let mut s = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n");
    let chains = rules / 20;
    for c in 0..chains {
        s.push_str(&format!(":SVC-{variant}-{c} - [0:0]\n"));
    }
    for i in 0..rules {
        let c = i % chains;
        if i < chains {
            s.push_str(&format!(
                "-A PREROUTING -d 10.{}.{}.{}/32 -p tcp -m tcp --dport {} -j SVC-{variant}-{c}\n",
                200 + variant,
                i / 250,
                i % 250 + 1,
                1000 + i
            ));
        } else {
            s.push_str(&format!(
                "-A SVC-{variant}-{c} -s 10.{}.{}.{}/32 -p tcp -m tcp --dport {} -j DNAT --to-destination 192.168.{variant}.{}:8080\n",
                210 + variant,
                i / 250,
                i % 250 + 1,
                2000 + i,
                i % 250 + 1
            ));
        }
    }
    s.push_str("-A POSTROUTING -o eth+ -j MASQUERADE\nCOMMIT\n");
    s
}

/// For --noflush: only chains `ours` of filter and raw, declared (so
/// flushed) again. The rules carry counters, so that each restore of it
/// (with --counters) adds counters after the replace.
fn noflush_file(variant: usize) -> String {
    let rules = [250, 150][variant];
    let mut s = String::from("*filter\n:ours - [0:0]\n");
    for i in 0..rules {
        s.push_str(&format!(
            "[{i}:{}] -A ours -s 10.{}.{}.{}/32 -p udp -m udp --dport {} -m comment --comment \"ours {variant} {i}\" -j ACCEPT\n",
            i * 100,
            220 + variant,
            i / 250,
            i % 250 + 1,
            3000 + i
        ));
    }
    s.push_str("COMMIT\n*raw\n:ours - [0:0]\n");
    for i in 0..rules / 2 {
        s.push_str(&format!(
            "[{i}:{}] -A ours -d 10.{}.0.{}/32 -p tcp -m tcp --dport {} -j ACCEPT\n",
            i * 60,
            230 + variant,
            i + 1,
            4000 + i
        ));
    }
    s.push_str("COMMIT\n");
    s
}

#[test]
fn restores_race_other_writers_and_lose_nothing() {
    let secs: u64 = std::env::var("IPTA_RACE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let dir = std::env::temp_dir().join(format!("ipta-race-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ns = Netns::new("race");
    let scene = Scene {
        ns: ns.name.clone(),
        lock: dir.join("xtables.lock"),
    };

    // The expected text of every variant, from iptables-legacy-restore.
    let reference = Netns::new("raceref");
    let oracle = |text: &str, noflush: bool, table: &str| {
        let argv: &[&str] = if noflush {
            &["iptables-legacy-restore", "-n", "-c"]
        } else {
            &["iptables-legacy-restore"]
        };
        let out = scene.run(&reference.name, argv, text.as_bytes());
        assert!(
            out.status.success(),
            "iptables-legacy-restore refused the file: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = scene.run(&reference.name, &["iptables-legacy-save", "-t", table], b"");
        strip_comments(&String::from_utf8_lossy(&out.stdout))
    };
    let nat = [
        oracle(&nat_file(0), false, "nat"),
        oracle(&nat_file(1), false, "nat"),
    ];
    let ours = |table: &str| {
        [0, 1].map(|v| {
            let save = oracle(&noflush_file(v), true, table);
            chains(&save).remove("ours").expect("chain ours").1
        })
    };
    let (ours, ours_raw) = (ours("filter"), ours("raw"));
    drop(reference);
    assert_ne!(nat[0], nat[1]);
    assert_eq!([ours[0].len(), ours[1].len()], [250, 150]);
    assert_eq!([ours_raw[0].len(), ours_raw[1].len()], [125, 75]);

    let files = [0, 1].map(|kind| {
        [0, 1].map(|v| {
            let p = dir.join(format!("{}-{v}.rules", ["nat", "noflush"][kind]));
            let text = if kind == 0 {
                nat_file(v)
            } else {
                noflush_file(v)
            };
            std::fs::write(&p, text).unwrap();
            p
        })
    });

    let sh = Shared {
        scene: &scene,
        stop: AtomicBool::new(false),
        errors: Mutex::new(Vec::new()),
        stats: Stats::default(),
        mangle: (
            LegacyWriter {
                table: "mangle",
                chain: "PREROUTING",
                spare: "mangle-spare",
                verdict: "ACCEPT",
                net: 77,
                seed: 0x6d61_6e67,
            },
            Mutex::new(Model::default()),
        ),
        theirs: (
            LegacyWriter {
                table: "filter",
                chain: "theirs",
                spare: "theirs-spare",
                verdict: "RETURN",
                net: 88,
                seed: 0x7468_6569,
            },
            Mutex::new(Model::default()),
        ),
        rogue: Mutex::new(Vec::new()),
        nat,
        ours,
        ours_raw,
    };

    // Set-up: the other writers' chains and tables, then our files once.
    for args in [
        &["-t", "filter", "-N", "theirs"][..],
        &["-t", "raw", "-N", "rogue"],
        &["-t", "mangle", "-L", "-n"],
    ] {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = scene.legacy(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for kind in [0, 1] {
        let out = scene.restore(&files[kind][0], kind);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let start = Instant::now();
    std::thread::scope(|s| {
        let _stop = StopOnDrop(&sh.stop);
        let sh = &sh;
        s.spawn(move || run_legacy_writer(sh, &sh.mangle, &sh.stats.mangle_ops));
        s.spawn(move || run_legacy_writer(sh, &sh.theirs, &sh.stats.theirs_ops));
        s.spawn(move || run_rogue(sh));
        for instance in 0..2 {
            let files = &files;
            s.spawn(move || run_restorer(sh, files, instance));
        }
        while start.elapsed() < Duration::from_secs(secs) && !sh.stopped() {
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let raced = start.elapsed();

    // The writers have stopped: one last restore of each file (variant 0),
    // then iptables-legacy-save must show exactly that and every writer's
    // last state.
    for kind in [0, 1] {
        let out = scene.restore(&files[kind][0], kind);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let legacy_save = |table: &str| {
        let out = scene.run(&scene.ns, &["iptables-legacy-save", "-t", table], b"");
        assert!(out.status.success());
        strip_comments(&String::from_utf8_lossy(&out.stdout))
    };
    let last = check(&sh, &legacy_save, &[0]);

    let st = &sh.stats;
    let n = |a: &AtomicUsize| a.load(Ordering::Relaxed);
    println!(
        "concurrent: {:.1} s: {} restores by iptables-atomic ({} EAGAIN retries inside them, at most {} in one), {} checks; \
         writer ops: mangle {}, filter/theirs {}, lock-ignoring raw/rogue {} (+{} EAGAIN)",
        raced.as_secs_f64(),
        n(&st.restores),
        n(&st.restore_retries),
        n(&st.restore_max_retries),
        n(&st.checks),
        n(&st.mangle_ops),
        n(&st.theirs_ops),
        n(&st.rogue_ops),
        n(&st.rogue_eagain),
    );
    std::fs::remove_dir_all(&dir).ok();
    let errors = sh.errors.into_inner().unwrap();
    assert!(
        errors.is_empty(),
        "{} problems:\n{}",
        errors.len(),
        errors.join("\n")
    );
    last.expect("the final state");
    assert!(n(&st.restores) >= 4, "too few restores to call it a race");
    for (what, ops) in [
        ("mangle", &st.mangle_ops),
        ("theirs", &st.theirs_ops),
        ("rogue", &st.rogue_ops),
    ] {
        assert!(n(ops) > 0, "the {what} writer did nothing");
    }
}

/// Restores to make while a writer replaces the table back to back.
const BUSY_RESTORES: usize = 60;

/// A writer that ignores the lock and replaces raw back to back, without a
/// pause, must not make a restore of raw give up: EAGAIN is retried after a
/// randomized backoff for up to `RETRY_TIME`. Every restore must succeed and
/// leave its chain exactly as its file says.
#[test]
fn restore_outlasts_a_writer_replacing_back_to_back() {
    let ns = Netns::new("busy");
    let restorer = || Restorer::new(Family::V4).netns(ns.name.clone());
    // A big table, so that reading and building it takes a while.
    let mut setup = String::from("*raw\n:busy - [0:0]\n:bulk - [0:0]\n");
    for i in 0..2000 {
        setup.push_str(&format!(
            "-A bulk -s 10.241.{}.{}/32 -p tcp -m tcp --dport {} -j ACCEPT\n",
            i / 250,
            i % 250 + 1,
            1 + i
        ));
    }
    setup.push_str("COMMIT\n");
    restorer().restore_str(&setup).expect("set up raw");
    let file = |v: usize| {
        let mut s = String::from("*raw\n:ours - [0:0]\n");
        for i in 0..150 + 50 * v {
            s.push_str(&format!(
                "-A ours -d 10.240.{v}.{}/32 -p udp -m udp --dport {} -j ACCEPT\n",
                i % 250 + 1,
                5000 + i
            ));
        }
        s.push_str("COMMIT\n");
        s
    };
    let stop = AtomicBool::new(false);
    let (busy_ops, busy_tries) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let mut results = Vec::new();
    std::thread::scope(|s| {
        let _stop = StopOnDrop(&stop);
        s.spawn(|| {
            let _in = NetnsGuard::enter(&ns.name).expect("enter the namespace");
            let sock = XtSocket::open(Family::V4).expect("x_tables socket");
            let rule = iptables_atomic::rule(Family::V4, "raw", "-s 10.250.0.1/32 -j RETURN")
                .expect("build a rule");
            while !stop.load(Ordering::SeqCst) {
                let (info, mut table) = sock.read_table("raw").expect("read raw");
                let chain = table.chain_mut("busy").expect("chain busy");
                if chain.rules.len() < 20 {
                    chain.rules.push(rule.clone());
                } else {
                    chain.rules.clear();
                }
                let mut enc = encode_table(Family::V4, &table).expect("encode raw");
                busy_tries.fetch_add(1, Ordering::Relaxed);
                if sock.replace(&mut enc, info.num_entries).is_ok() {
                    busy_ops.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        for i in 0..BUSY_RESTORES {
            let r = restorer().noflush(true).restore_str(&file(i % 2));
            let ours = iptables_atomic::read_table(Family::V4, Some(&ns.name), "raw")
                .map(|t| t.chain("ours").map_or(0, |c| c.rules.len()));
            results.push((r, ours));
        }
    });
    let mut retries = Vec::new();
    for (i, (r, ours)) in results.into_iter().enumerate() {
        let report = r.unwrap_or_else(|e| panic!("restore {i} failed: {e}"));
        retries.push(report.tables.iter().map(|t| t.retries).sum::<u32>());
        assert_eq!(ours.expect("read raw"), 150 + 50 * (i % 2), "restore {i}");
    }
    // Who wins each race is up to the scheduler: the numbers are reported,
    // not asserted.
    println!(
        "concurrent (back to back): {BUSY_RESTORES} restores, EAGAIN retries in each {retries:?}; \
         the busy writer replaced {} times in {} tries",
        busy_ops.load(Ordering::Relaxed),
        busy_tries.load(Ordering::Relaxed)
    );
}
