//! Rulesets for the benchmarks, shaped like real ones: a host firewall in
//! `filter` (loopback, conntrack, multiport, LOG with a quoted prefix) and
//! kube-proxy's service chains in `nat` (`KUBE-SERVICES` → `KUBE-SVC-…` →
//! `KUBE-SEP-…` with `-m comment --comment "…"`, `-m statistic` load
//! balancing, `KUBE-MARK-MASQ` and `DNAT`), plus kube-proxy's filter rules
//! (`KUBE-FORWARD` with multiport and conntrack, LOG, REJECT for services
//! without endpoints).
//!
//! Shared by `benches/restore.rs`, `examples/bench_case.rs` and the report
//! (`scripts/bench-report`), so every tool gets the same text.
#![allow(dead_code)]

#[cfg(feature = "libiptc-bench")]
pub mod libiptc;

use std::collections::BTreeSet;
use std::fmt::Write;

/// The sizes the suite measures.
pub const SIZES: [usize; 4] = [10, 1_000, 10_000, 100_000];

struct Gen {
    /// (table, chain, rule arguments after `-A CHAIN `), in generation order.
    rules: Vec<(&'static str, String, String)>,
}

impl Gen {
    fn add(&mut self, table: &'static str, chain: &str, args: String) {
        self.rules.push((table, chain.to_string(), args));
    }
}

/// kube-proxy's chain suffix: 16 characters of base32 from a hash of the
/// service (here a deterministic mix of the numbers).
fn hash16(a: usize, b: usize) -> String {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut x = (a as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((b as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
        ^ 0x1656_67B1_9E37_79F9;
    let mut s = String::with_capacity(16);
    for _ in 0..16 {
        x ^= x >> 29;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 32;
        s.push(ALPHA[(x % 32) as usize] as char);
    }
    s
}

fn host_firewall(g: &mut Gen) {
    g.add("filter", "INPUT", "-i lo -j ACCEPT".into());
    g.add(
        "filter",
        "INPUT",
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".into(),
    );
    g.add(
        "filter",
        "INPUT",
        "-p tcp -m multiport --dports 22,80,443,6443,10250 -m conntrack --ctstate NEW -j ACCEPT"
            .into(),
    );
    g.add(
        "filter",
        "INPUT",
        "-m limit --limit 5/min -j LOG --log-prefix \"INPUT denied: \" --log-level 4".into(),
    );
    g.add(
        "nat",
        "PREROUTING",
        "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES".into(),
    );
}

/// One Kubernetes service with two endpoints: 7 nat rules, and a few filter
/// rules now and then.
fn service(g: &mut Gen, i: usize, with_filter: bool) {
    let ns = format!("team-{}", i % 97);
    let svc = format!("svc-{i}");
    let vip = format!("10.{}.{}.{}", 96 + (i >> 16) % 32, (i >> 8) % 256, i % 256);
    let port = [80, 443, 8080, 53, 5432][i % 5];
    let proto = if port == 53 { "udp" } else { "tcp" };
    let svc_chain = format!("KUBE-SVC-{}", hash16(i, 0));
    let name = format!("{ns}/{svc}:p{port}");
    g.add(
        "nat",
        "KUBE-SERVICES",
        format!(
            "-d {vip}/32 -p {proto} -m comment --comment \"{name} cluster IP\" -m {proto} --dport {port} -j {svc_chain}"
        ),
    );
    let eps: Vec<(String, String)> = (0..2)
        .map(|e| {
            let ip = format!(
                "10.{}.{}.{}",
                244 + (i >> 14) % 8,
                (i >> 6) % 256,
                (i * 2 + e) % 254 + 1
            );
            (ip, format!("KUBE-SEP-{}", hash16(i, e + 1)))
        })
        .collect();
    let n = eps.len();
    for (e, (ip, sep)) in eps.iter().enumerate() {
        let stat = if e + 1 < n {
            format!(
                " -m statistic --mode random --probability {:.11}",
                1.0 / (n - e) as f64
            )
        } else {
            String::new()
        };
        g.add(
            "nat",
            &svc_chain,
            format!("-m comment --comment \"{name} -> {ip}:{port}\"{stat} -j {sep}"),
        );
    }
    for (ip, sep) in &eps {
        g.add(
            "nat",
            sep,
            format!("-s {ip}/32 -m comment --comment \"{name}\" -j KUBE-MARK-MASQ"),
        );
        g.add(
            "nat",
            sep,
            format!(
                "-p {proto} -m comment --comment \"{name}\" -m {proto} -j DNAT --to-destination {ip}:{port}"
            ),
        );
    }
    if with_filter {
        g.add(
            "filter",
            "KUBE-FORWARD",
            format!(
                "-d {vip}/32 -p tcp -m multiport --dports {port},{} -m conntrack --ctstate NEW,ESTABLISHED -m comment --comment \"{name} allowed\" -j ACCEPT",
                port + 1
            ),
        );
        if i % 4 == 0 {
            g.add(
                "filter",
                "KUBE-FIREWALL",
                format!(
                    "-s {}/32 -m comment --comment \"{name} blocked source\" -j LOG --log-prefix \"kube {svc} drop: \" --log-level 6",
                    eps[0].0
                ),
            );
        }
        if i % 10 == 9 {
            g.add(
                "filter",
                "KUBE-SERVICES",
                format!(
                    "-d {vip}/32 -p tcp -m comment --comment \"{ns}/{svc}-idle has no endpoints\" -m tcp --dport {} -j REJECT --reject-with icmp-port-unreachable",
                    port + 2
                ),
            );
        }
    }
}

fn tail_rules(g: &mut Gen) {
    g.add(
        "nat",
        "KUBE-MARK-MASQ",
        "-j MARK --set-xmark 0x4000/0x4000".into(),
    );
    g.add(
        "nat",
        "POSTROUTING",
        "-m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING".into(),
    );
    g.add(
        "nat",
        "KUBE-POSTROUTING",
        "-m mark ! --mark 0x4000/0x4000 -j RETURN".into(),
    );
    g.add(
        "nat",
        "KUBE-POSTROUTING",
        "-m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully"
            .into(),
    );
    g.add("filter", "FORWARD", "-j KUBE-FORWARD".into());
    g.add("filter", "INPUT", "-j KUBE-FIREWALL".into());
    g.add(
        "filter",
        "OUTPUT",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
            .into(),
    );
}

/// The user chain a rule jumps to (`-j KUBE-…`), if any.
fn jump_of(args: &str) -> Option<&str> {
    let i = args.rfind("-j ")?;
    let t = args[i + 3..].split(' ').next()?;
    t.starts_with("KUBE-").then_some(t)
}

fn render(rules: &[(&'static str, String, String)], tables: &[&'static str]) -> String {
    let mut out = String::with_capacity(rules.len() * 160 + 256);
    for &table in tables {
        let builtin: &[&str] = match table {
            "filter" => &["INPUT", "FORWARD", "OUTPUT"],
            _ => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
        };
        let mut user: BTreeSet<&str> = BTreeSet::new();
        for (t, c, a) in rules {
            if *t == table {
                if !builtin.contains(&c.as_str()) {
                    user.insert(c);
                }
                if let Some(j) = jump_of(a) {
                    user.insert(j);
                }
            }
        }
        writeln!(out, "*{table}").unwrap();
        for c in builtin {
            let policy = if table == "filter" && *c == "FORWARD" {
                "DROP"
            } else {
                "ACCEPT"
            };
            writeln!(out, ":{c} {policy} [0:0]").unwrap();
        }
        for c in &user {
            writeln!(out, ":{c} - [0:0]").unwrap();
        }
        for (t, c, a) in rules {
            if *t == table {
                writeln!(out, "-A {c} {a}").unwrap();
            }
        }
        writeln!(out, "COMMIT").unwrap();
    }
    out
}

/// Exactly `n` rules of the given tables: the host firewall first, then
/// services, then (from 100 rules on) kube-proxy's fixed chains.
fn generate(n: usize, tables: &[&'static str]) -> Vec<(&'static str, String, String)> {
    let new = || Gen { rules: Vec::new() };
    let keep = |g: &mut Gen| g.rules.retain(|(t, _, _)| tables.contains(t));
    let (mut head, mut tail) = (new(), new());
    host_firewall(&mut head);
    tail_rules(&mut tail);
    keep(&mut head);
    keep(&mut tail);
    if n < 100 {
        tail.rules.clear();
    }
    let with_filter = tables.contains(&"filter");
    let mut g = head;
    let mut i = 0;
    while g.rules.len() + tail.rules.len() < n {
        let mut s = new();
        service(&mut s, i, with_filter);
        keep(&mut s);
        g.rules.extend(s.rules);
        i += 1;
    }
    g.rules.truncate(n.saturating_sub(tail.rules.len()));
    g.rules.extend(tail.rules);
    g.rules.truncate(n);
    g.rules
}

/// A two-table ruleset (`filter` and `nat`) of exactly `n` rules.
pub fn ruleset(n: usize) -> String {
    render(&generate(n, &["filter", "nat"]), &["filter", "nat"])
}

/// A `nat` table of exactly `n` rules (kube-proxy's service chains), for the
/// incremental case: one table of `n` rules.
pub fn nat_table(n: usize) -> String {
    render(&generate(n, &["nat"]), &["nat"])
}

/// Counts the `-A` lines of a ruleset.
pub fn count_rules(text: &str) -> usize {
    text.lines().filter(|l| l.starts_with("-A ")).count()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_are_exact() {
        for n in [10, 100, 1000] {
            assert_eq!(super::count_rules(&super::ruleset(n)), n);
            assert_eq!(super::count_rules(&super::nat_table(n)), n);
        }
    }
}
