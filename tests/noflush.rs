//! Sequences of restores: `-n` partial updates, chain re-declaration,
//! counters carried over from the live table, policies of built-in chains
//! the input does not mention. Each sequence runs through
//! iptables-legacy-restore and iptables-atomic; the kernels must agree.

mod common;

use common::{compare, Netns, Step};
use iptables_atomic::Family;

const BASE: &str = "*filter
:INPUT DROP [10:1000]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:svc - [0:0]
:old - [0:0]
[5:500] -A INPUT -i lo -j ACCEPT
[6:600] -A INPUT -j svc
[7:700] -A svc -p tcp --dport 22 -j ACCEPT
[8:800] -A old -j RETURN
COMMIT
";

#[test]
fn noflush_keeps_counters_of_untouched_rules() {
    let add = "*filter\n-A INPUT -p udp --dport 53 -j ACCEPT\n-I svc -p tcp --dport 80 -j ACCEPT\nCOMMIT\n";
    compare(
        Family::V4,
        &|_| {},
        &[
            Step {
                text: BASE,
                noflush: false,
                counters: true,
            },
            Step {
                text: add,
                noflush: true,
                counters: true,
            },
        ],
    )
    .unwrap();
}

#[test]
fn noflush_redeclared_chain_is_flushed_and_x_deletes() {
    let partial = "*filter\n:svc - [0:0]\n:old - [0:0]\n-A svc -p tcp --dport 443 -j ACCEPT\n-X old\nCOMMIT\n";
    compare(
        Family::V4,
        &|_| {},
        &[
            Step {
                text: BASE,
                noflush: false,
                counters: true,
            },
            Step {
                text: partial,
                noflush: true,
                counters: true,
            },
        ],
    )
    .unwrap();
}

#[test]
fn undeclared_builtin_chains_keep_policy_and_counters() {
    let second = "*filter\n:OUTPUT DROP [1:1]\n-A OUTPUT -o lo -j ACCEPT\nCOMMIT\n";
    compare(
        Family::V4,
        &|_| {},
        &[
            Step {
                text: BASE,
                noflush: false,
                counters: true,
            },
            Step {
                text: second,
                noflush: false,
                counters: true,
            },
        ],
    )
    .unwrap();
}

#[test]
fn same_table_twice_in_one_file() {
    let twice =
        "*filter\n:a - [0:0]\n-A a -j ACCEPT\nCOMMIT\n*filter\n:b - [0:0]\n-A INPUT -j b\nCOMMIT\n";
    compare(
        Family::V4,
        &|_| {},
        &[Step {
            text: twice,
            noflush: false,
            counters: false,
        }],
    )
    .unwrap();
    compare(
        Family::V4,
        &|_| {},
        &[Step {
            text: twice,
            noflush: true,
            counters: false,
        }],
    )
    .unwrap();
}

#[test]
fn only_named_tables_are_touched() {
    let ns = Netns::new("touch");
    iptables_atomic::Restorer::new(Family::V4)
        .netns(ns.name.clone())
        .restore_str(BASE)
        .unwrap();
    assert_eq!(ns.tables(Family::V4), vec!["filter".to_string()]);
    let raw = "*raw\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n";
    iptables_atomic::Restorer::new(Family::V4)
        .netns(ns.name.clone())
        .test(true)
        .restore_str(raw)
        .unwrap();
    assert_eq!(
        ns.tables(Family::V4),
        vec!["filter".to_string()],
        "-t must not create the raw table"
    );
    iptables_atomic::Restorer::new(Family::V4)
        .netns(ns.name.clone())
        .restore_str(raw)
        .unwrap();
    let mut t = ns.tables(Family::V4);
    t.sort();
    assert_eq!(t, vec!["filter".to_string(), "raw".to_string()]);
}

#[test]
fn only_table_option_skips_other_tables() {
    let ns = Netns::new("only");
    let both = "*nat\n-A POSTROUTING -j ACCEPT\nCOMMIT\n*filter\n-A INPUT -j DROP\nbroken line in a skipped table? no: only *lines matter\nCOMMIT\n";
    let err = iptables_atomic::Restorer::new(Family::V4)
        .netns(ns.name.clone())
        .only_table(Some("nat".into()))
        .restore_str(both);
    assert!(err.is_ok(), "{err:?}");
    assert_eq!(ns.tables(Family::V4), vec!["nat".to_string()]);
}
