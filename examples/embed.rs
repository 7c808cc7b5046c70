//! Embedding iptables-atomic in a daemon: read the live tables, change them
//! in code, commit them atomically, read them back. Usage: `embed NETNS` (a
//! namespace made with `ip netns add`; the machine's own firewall is never
//! touched).

use iptables_atomic::{commit, read_ruleset, read_table, rule, Chain, Family, Table};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let netns = std::env::args().nth(1).ok_or("usage: embed NETNS")?;

    // The live state: every table of the namespace.
    let mut ruleset = read_ruleset(Family::V4, Some(&netns))?;
    if !ruleset.tables.iter().any(|t| t.name == "filter") {
        ruleset
            .tables
            .push(Table::new("filter").expect("filter is a known table"));
    }
    let filter = ruleset
        .tables
        .iter_mut()
        .find(|t| t.name == "filter")
        .expect("present");

    // A controller's desired state for its own chain, built in code.
    filter.chains.retain(|c| c.name != "ALLOWED");
    let mut allowed = Chain::user("ALLOWED");
    for port in [8080, 8443] {
        allowed.rules.push(rule(
            Family::V4,
            "filter",
            &format!("-p tcp --dport {port} -j ACCEPT"),
        )?);
    }
    filter.chains.push(allowed);
    let input = filter.chain_mut("INPUT").expect("built-in chain");
    let jump = rule(Family::V4, "filter", "-j ALLOWED")?;
    if !input.rules.iter().any(|r| r.same_rule(&jump)) {
        input.rules.insert(0, jump);
    }

    // One SET_REPLACE per table; rules that did not change keep their counters.
    let report = commit(&ruleset, Some(&netns), None)?;
    for t in &report.tables {
        println!(
            "   committed table {}: {} entries, {} bytes",
            t.table, t.entries, t.bytes
        );
    }
    for chain in read_table(Family::V4, Some(&netns), "filter")?.ordered_chains() {
        let policy = chain.policy.map(|p| p.name()).unwrap_or("-");
        println!(
            "   chain {:<14} policy {:<6} {} rules",
            chain.name,
            policy,
            chain.rules.len()
        );
    }
    Ok(())
}
