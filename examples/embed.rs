//! Embedding iptables-atomic: build rules in code, commit them atomically,
//! read the live table back. Usage: `embed NETNS` (a namespace made with
//! `ip netns add`; the machine's own firewall is never touched).

use iptables_atomic::{read_table, Family, Restorer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let netns = std::env::args().nth(1).ok_or("usage: embed NETNS")?;
    // A controller would render its state as restore text; -n keeps what is there.
    let mut text = String::from("*filter\n:ALLOWED - [0:0]\n");
    for port in [8080, 8443] {
        text.push_str(&format!("-A ALLOWED -p tcp --dport {port} -j ACCEPT\n"));
    }
    text.push_str("-I INPUT 1 -j ALLOWED\nCOMMIT\n");
    let report = Restorer::new(Family::V4)
        .netns(netns.clone())
        .noflush(true)
        .restore_str(&text)?;
    for t in &report.tables {
        println!(
            "   committed table {}: {} entries, {} bytes",
            t.table, t.entries, t.bytes
        );
    }
    let filter = read_table(Family::V4, Some(&netns), "filter")?;
    for chain in filter.ordered_chains() {
        println!(
            "   chain {:<14} {} rules, policy {:?}",
            chain.name,
            chain.rules.len(),
            chain.policy.map(|p| p.name())
        );
    }
    Ok(())
}
