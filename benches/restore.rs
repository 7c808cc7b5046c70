//! The restore suite: the same generated rulesets (`benches/common`) of 10,
//! 1k, 10k and 100k rules installed by every tool, each case in network
//! namespaces of its own (made here, deleted on exit; the machine's own
//! namespace is never touched).
//!
//! Group `restore`, one id per case and size:
//! * `build`: parse + encode in-process, as a restore does it (the direct
//!   path for these plain files; no kernel call but the revision probes,
//!   asked once);
//! * `floor`: SET_REPLACE of prebuilt blobs, one per table (GET_INFO for the
//!   entry count, then the replace) — the kernel's own cost, the floor;
//! * `library`, `library-check-first`: `Restorer::restore_str` in the
//!   default mode (`Precheck::Auto`) and with every table checked in a
//!   scratch namespace first (`Precheck::Always`);
//! * `cli`: `iptables-atomic restore --netns NS FILE` as a process (the
//!   binary cargo built for the bench, or `IPTA_BENCH_CLI`: the report
//!   gives it the statically linked build of `./run build`);
//! * `legacy`, `nft`: `iptables-legacy-restore FILE`,
//!   `iptables-nft-restore FILE` as processes, spawned from a thread that
//!   has entered the namespace (what `ip netns exec` does, without its
//!   extra process and mounts);
//! * `libiptc` (feature `libiptc-bench`): libiptc in-process, TC_INIT →
//!   the same entries appended → TC_COMMIT.
//!
//! Group `incremental`, one table (`nat`) of N rules:
//! * `floor`: SET_REPLACE of that table's prebuilt blob;
//! * `session`: `Session` changes one rule (through `chain_mut`) and
//!   commits, without reading.
//!
//! Every iteration replaces a table of the same size as the one it replaces
//! (the namespace is loaded first), as a periodic resync does.
//!
//! Environment: `IPTA_BENCH_CLI` (the command to run for `cli`),
//! `IPTA_BENCH_SIZES` (e.g. `10,1000`), `IPTA_BENCH_CASES`
//! (e.g. `cli,legacy`), `IPTA_BENCH_SECS` (measurement time per case at
//! 10k rules, scaled by size; default 3).

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode};
use iptables_atomic::ext::RevisionSource;
use iptables_atomic::kernel::{NetnsGuard, XtSocket};
use iptables_atomic::restore::{parse, RestoreOptions};
use iptables_atomic::{apply, blob, rule, Family, Precheck, Restorer, Session, Table};

/// A network namespace made with `ip netns add`, deleted on drop.
struct Ns(String);

impl Ns {
    fn new(tag: &str) -> Ns {
        let name = format!("ipta-bench-{}-{tag}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "ip netns add {name} failed (the benchmarks need root)");
        Ns(name)
    }

    fn enter(&self) -> NetnsGuard {
        NetnsGuard::enter(&self.0).expect("enter the benchmark namespace")
    }

    /// Runs `tool FILE` inside the namespace; panics unless it succeeds.
    fn run(&self, tool: &str, args: &[&str]) {
        let _g = self.enter();
        let out = Command::new(tool)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn load(&self, text: &str) {
        Restorer::new(Family::V4)
            .netns(self.0.clone())
            .precheck(false)
            .restore_str(text)
            .expect("load the ruleset");
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn env_list(name: &str) -> Option<Vec<String>> {
    std::env::var(name)
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
}

fn wanted(case: &str) -> bool {
    env_list("IPTA_BENCH_CASES").is_none_or(|l| l.iter().any(|c| c == case))
}

fn sizes() -> Vec<usize> {
    env_list("IPTA_BENCH_SIZES")
        .map(|l| {
            l.iter()
                .map(|s| s.parse().expect("IPTA_BENCH_SIZES: numbers"))
                .collect()
        })
        .unwrap_or_else(|| common::SIZES.to_vec())
}

/// Measurement time for one case at size `n`.
fn secs(n: usize) -> Duration {
    let base: f64 = std::env::var("IPTA_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let scale = match n {
        0..=100 => 0.5,
        101..=1_000 => 0.5,
        1_001..=10_000 => 1.0,
        _ => 3.0,
    };
    Duration::from_secs_f64(base * scale)
}

fn rules_file(n: usize, text: &str, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ipta-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{tag}-{n}.rules"));
    std::fs::write(&path, text).expect("write the rules file");
    path
}

/// Parse and encode every table from empty, as a restore does: straight
/// from text to entries for these plain files (the model path otherwise).
fn build(text: &str, revs: &dyn RevisionSource) -> Vec<blob::EncodedTable> {
    let opts = RestoreOptions::new(Family::V4);
    if let Some(tables) = iptables_atomic::restore::encode_text(text, &opts, revs) {
        return tables;
    }
    let script = parse(text, &opts, revs).expect("parse");
    apply::build_tables(&script, false, |n| Ok(Table::new(n).expect("table")))
        .expect("build")
        .values()
        .map(|(_, t)| blob::encode_table(Family::V4, t).expect("encode"))
        .collect()
}

fn replace_all(sock: &XtSocket, blobs: &mut [blob::EncodedTable]) {
    for enc in blobs {
        let info = sock.get_info(&enc.name).expect("GET_INFO");
        sock.replace(enc, info.num_entries).expect("SET_REPLACE");
    }
}

fn tool_exists(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn restore_suite(c: &mut Criterion) {
    let mut g = c.benchmark_group("restore");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    for n in sizes() {
        let text = common::ruleset(n);
        let file = rules_file(n, &text, "ruleset");
        let file_s = file.to_str().expect("utf-8 temp path").to_string();
        g.measurement_time(secs(n))
            .warm_up_time(Duration::from_millis(if n >= 100_000 { 1 } else { 500 }));
        let id = |case: &str| BenchmarkId::new(case, n);

        if wanted("build") {
            let ns = Ns::new(&format!("build-{n}"));
            let _g = ns.enter();
            let sock = XtSocket::open(Family::V4).expect("socket");
            g.bench_function(id("build"), |b| b.iter(|| build(&text, &sock)));
        }
        if wanted("floor") {
            let ns = Ns::new(&format!("floor-{n}"));
            ns.load(&text);
            let _g = ns.enter();
            let sock = XtSocket::open(Family::V4).expect("socket");
            let mut blobs = build(&text, &sock);
            g.bench_function(id("floor"), |b| b.iter(|| replace_all(&sock, &mut blobs)));
        }
        for (case, mode) in [
            ("library", Precheck::Auto),
            ("library-check-first", Precheck::Always),
        ] {
            if wanted(case) {
                let ns = Ns::new(&format!("{case}-{n}"));
                ns.load(&text);
                let r = Restorer::new(Family::V4)
                    .netns(ns.0.clone())
                    .precheck_mode(mode);
                g.bench_function(id(case), |b| {
                    b.iter(|| r.restore_str(&text).expect("restore"))
                });
            }
        }
        if wanted("cli") {
            let ns = Ns::new(&format!("cli-{n}"));
            ns.load(&text);
            let cli = std::env::var("IPTA_BENCH_CLI")
                .unwrap_or_else(|_| env!("CARGO_BIN_EXE_iptables-atomic").to_string());
            g.bench_function(id("cli"), |b| {
                b.iter(|| ns.run(&cli, &["restore", "--netns", &ns.0, &file_s]))
            });
        }
        if wanted("legacy") {
            let ns = Ns::new(&format!("legacy-{n}"));
            ns.load(&text);
            g.bench_function(id("legacy"), |b| {
                b.iter(|| ns.run("iptables-legacy-restore", &[&file_s]))
            });
        }
        if wanted("nft") {
            if tool_exists("iptables-nft-restore") {
                let ns = Ns::new(&format!("nft-{n}"));
                ns.run("iptables-nft-restore", &[&file_s]);
                g.bench_function(id("nft"), |b| {
                    b.iter(|| ns.run("iptables-nft-restore", &[&file_s]))
                });
            } else {
                eprintln!("restore/nft: iptables-nft-restore is not installed; case skipped");
            }
        }
        #[cfg(feature = "libiptc-bench")]
        if wanted("libiptc") {
            let ns = Ns::new(&format!("libiptc-{n}"));
            ns.load(&text);
            let _g = ns.enter();
            let prepared = common::libiptc::prepare(&text).expect("entries for libiptc");
            g.bench_function(id("libiptc"), |b| {
                b.iter(|| common::libiptc::restore(&prepared).expect("libiptc restore"))
            });
        }
        #[cfg(not(feature = "libiptc-bench"))]
        if wanted("libiptc") && n == sizes()[0] {
            eprintln!("restore/libiptc: built without --features libiptc-bench; case skipped");
        }
    }
    g.finish();
}

/// One rule of the nat table, changed back and forth: the DNAT of the
/// first service's first endpoint.
fn incremental_suite(c: &mut Criterion) {
    if !wanted("session") && !wanted("incremental-floor") {
        return;
    }
    let mut g = c.benchmark_group("incremental");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    for n in sizes() {
        let text = common::nat_table(n);
        g.measurement_time(secs(n))
            .warm_up_time(Duration::from_millis(500));
        let ns = Ns::new(&format!("incr-{n}"));
        ns.load(&text);
        let _g = ns.enter();
        if wanted("incremental-floor") {
            let sock = XtSocket::open(Family::V4).expect("socket");
            let mut blobs = build(&text, &sock);
            g.bench_function(BenchmarkId::new("floor", n), |b| {
                b.iter(|| replace_all(&sock, &mut blobs))
            });
        }
        if wanted("session") {
            let mut s = Session::open(Family::V4, None, "nat").expect("session");
            // The chain holding the first DNAT rule, and two versions of it.
            let (chain, idx) = s
                .table()
                .ordered_chains()
                .iter()
                .find_map(|c| {
                    c.rules
                        .iter()
                        .position(|r| matches!(&r.target, iptables_atomic::Target::Extension(e) if e.name == "DNAT"))
                        .map(|i| (c.name.clone(), i))
                })
                .unwrap_or_else(|| ("PREROUTING".to_string(), 0));
            let versions = [8080, 8081].map(|port| {
                rule(
                    Family::V4,
                    "nat",
                    &format!("-p tcp -m tcp -j DNAT --to-destination 10.244.0.1:{port}"),
                )
                .expect("rule")
            });
            // Found once: the timed part changes the rule and commits.
            let ci = s
                .table()
                .chains
                .iter()
                .position(|c| c.name == chain)
                .expect("chain");
            if s.table().chains[ci].rules.is_empty() {
                let r = versions[0].clone();
                s.table_mut().chains[ci].rules.push(r);
            }
            let mut flip = 0usize;
            // Changed through chain_mut, as a controller would: the commit
            // rewrites that chain's entries in the table installed last.
            g.bench_function(BenchmarkId::new("session", n), |b| {
                b.iter(|| {
                    flip ^= 1;
                    s.chain_mut(&chain).expect("chain").rules[idx] = versions[flip].clone();
                    s.commit().expect("commit")
                })
            });
        }
    }
    g.finish();
}

fn main() {
    // A lock file of our own: other work on the machine that holds
    // /run/xtables.lock must not stall the tools measured here.
    if std::env::var_os("XTABLES_LOCKFILE").is_none() {
        std::env::set_var(
            "XTABLES_LOCKFILE",
            std::env::temp_dir().join(format!("ipta-bench-{}.lock", std::process::id())),
        );
    }
    let mut c = Criterion::default().configure_from_args();
    restore_suite(&mut c);
    incremental_suite(&mut c);
    c.final_summary();
    let _ = std::fs::remove_dir_all(
        std::env::temp_dir().join(format!("ipta-bench-{}", std::process::id())),
    );
    let _ = std::fs::remove_file(
        std::env::temp_dir().join(format!("ipta-bench-{}.lock", std::process::id())),
    );
}
