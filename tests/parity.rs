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

/// Tables big enough for the encoder to split the work between two threads
/// (8192 entries and more): every hook, user chains on both sides of the
/// split, jumps and gotos across it, counters with -c. Kernel bytes and save
/// text must still be iptables-legacy's.
/// The text of [`big_tables_match_iptables_legacy`] (about 2 MB).
fn big_tables_text() -> String {
    let mut t = String::from("*nat\n:PREROUTING ACCEPT [1:2]\n:INPUT ACCEPT [3:4]\n:OUTPUT ACCEPT [5:6]\n:POSTROUTING ACCEPT [7:8]\n");
    let chains = 1500;
    for c in 0..chains {
        t.push_str(&format!(":SVC-{c:05} - [0:0]\n:SEP-{c:05} - [0:0]\n"));
    }
    for c in 0..chains {
        let hook = ["PREROUTING", "OUTPUT"][c % 2];
        t.push_str(&format!(
            "[{c}:{}] -A {hook} -d 10.96.{}.{}/32 -p tcp -m tcp --dport 80 -j SVC-{c:05}\n",
            c * 60,
            c / 256,
            c % 256
        ));
        // A jump from the start of the blob to its end and back.
        let other = chains - 1 - c;
        t.push_str(&format!(
            "-A SVC-{c:05} -m comment --comment \"svc {c}\" -m statistic --mode random --probability 0.5 -g SEP-{other:05}\n"
        ));
        t.push_str(&format!("-A SVC-{c:05} -j SEP-{c:05}\n"));
        t.push_str(&format!(
            "-A SEP-{c:05} -s 10.244.{}.{}/32 -j MARK --set-xmark 0x4000/0x4000\n",
            c / 256,
            c % 256
        ));
        t.push_str(&format!(
            "-A SEP-{c:05} -p tcp -j DNAT --to-destination 10.244.{}.{}:8080\n",
            c / 256,
            c % 256
        ));
    }
    t.push_str("-A INPUT -j ACCEPT\n-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE\n");
    // The last built-in chain long enough that its rules and its policy
    // fall on both sides of the split.
    for i in 0..12000 {
        t.push_str(&format!(
            "-A POSTROUTING -s 10.{}.{}.0/24 -o eth{} -j SNAT --to-source 192.0.2.{}\n",
            i / 256 % 256,
            i % 256,
            i % 4,
            i % 250 + 1
        ));
    }
    t.push_str("COMMIT\n");
    t.push_str(
        "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:ALLOW - [0:0]\n",
    );
    for i in 0..9000 {
        t.push_str(&format!(
            "-A OUTPUT -s 10.{}.{}.0/24 -p udp -m udp --dport {} -j ACCEPT\n",
            i / 256 % 256,
            i % 256,
            1024 + i
        ));
    }
    t.push_str("-A ALLOW -p icmp -j ACCEPT\n-A INPUT -j ALLOW\n-A FORWARD -j ALLOW\n-A OUTPUT -j ALLOW\nCOMMIT\n");
    t
}

/// [`big_tables_text`] with -c, given to the candidate as `via` says,
/// against iptables-legacy.
fn compare_big_tables(via: common::Via) {
    let t = big_tables_text();
    assert!(t.len() > 1 << 20, "the input is meant to be large");
    common::compare_via(
        Family::V4,
        &|_| {},
        &[Step {
            text: &t,
            noflush: false,
            counters: true,
        }],
        via,
    )
    .unwrap_or_else(|e| panic!("{via:?}: {e}"));
}

#[test]
fn big_tables_match_iptables_legacy() {
    compare_big_tables(common::Via::Library);
}

/// The same tables, the smaller first, into tables that exist (so the
/// direct path takes them): the large nat table is laid out while the
/// filter table is installed (a thread beside the replace); with -c,
/// counters and all, through the library and the command.
#[test]
fn big_tables_laid_out_beside_an_install_match_iptables_legacy() {
    let t = big_tables_text();
    let at = t.find("*filter\n").expect("a filter block");
    let swapped = format!("{}{}", &t[at..], &t[..at]);
    assert!(swapped.starts_with("*filter\n") && swapped.contains("COMMIT\n*nat\n"));
    let bin = env!("CARGO_BIN_EXE_iptables-atomic");
    for via in [
        common::Via::Library,
        common::Via::Command(bin, common::Feed::Path),
    ] {
        common::compare_via(
            Family::V4,
            &|ns| {
                let (rc, _, err) = ns.run(
                    &["iptables-legacy-restore"],
                    b"*nat\nCOMMIT\n*filter\nCOMMIT\n",
                );
                assert_eq!(rc, 0, "{err}");
            },
            &[Step {
                text: &swapped,
                noflush: false,
                counters: true,
            }],
            via,
        )
        .unwrap_or_else(|e| panic!("{via:?}: {e}"));
    }
}

/// Through Restorer::restore_file: the file is mapped, and its pages are
/// let go once the rules are encoded.
#[test]
fn big_tables_from_a_mapped_file_match_iptables_legacy() {
    compare_big_tables(common::Via::LibraryFile);
}

/// The same tables through the command: a large input is parsed on two
/// threads and allocated with mimalloc (src/cli_alloc.rs), a small one on
/// the calling thread with glibc's allocator; the bytes must not care, nor
/// whether the text comes from a pipe (read) or a regular file, named or
/// as standard input (mapped).
#[test]
fn big_tables_through_the_command_match_iptables_legacy() {
    let bin = env!("CARGO_BIN_EXE_iptables-atomic");
    for feed in [
        common::Feed::Pipe,
        common::Feed::Path,
        common::Feed::StdinFile,
    ] {
        compare_big_tables(common::Via::Command(bin, feed));
    }
}
