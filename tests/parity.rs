//! The repository's own rule files, installed by iptables-legacy-restore and
//! by iptables-atomic in two fresh namespaces: kernel bytes and save text
//! must be identical.

mod common;

use common::{compare, repo_rules, Step};
use iptables_atomic::Family;

fn run_dir(dir: &str, family: Family) {
    let files = repo_rules(dir);
    assert!(!files.is_empty(), "no rule files in tests/{dir}");
    let mut failures = Vec::new();
    for f in &files {
        let text = common::read_rules(f);
        let counters =
            text.lines().any(|l| l.starts_with('[')) || f.to_string_lossy().contains("counters");
        // "# setup: CMD" header lines (e.g. `nfacct add NAME`) run in both
        // namespaces before the restore.
        let setup_cmds: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# setup: "))
            .collect();
        let setup = |ns: &common::Netns| {
            for cmd in &setup_cmds {
                let (rc, _, err) = ns.run(&["sh", "-c", cmd], b"");
                assert_eq!(rc, 0, "setup `{cmd}` in {}: {err}", ns.name);
            }
        };
        if let Err(e) = compare(
            family,
            &setup,
            &[Step {
                text: &text,
                noflush: false,
                counters,
            }],
        ) {
            failures.push(format!("{}: {e}", f.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files differ:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    eprintln!(
        "{} files byte-identical to iptables-legacy-restore",
        files.len()
    );
}

#[test]
fn repo_rule_files_match_iptables_legacy() {
    run_dir("rules", Family::V4);
}

#[test]
fn repo_ipv6_rule_files_match_ip6tables_legacy() {
    run_dir("rules6", Family::V6);
}
