//! All or nothing: the kernel checks every table in a scratch namespace
//! before anything live changes, and if a table is refused anyway, the
//! tables this run already replaced get their exact previous bytes and
//! counters back.

mod common;

use common::Netns;
use iptables_atomic::{Family, Restorer};

const BASELINE: &str =
    "*nat\n:POSTROUTING ACCEPT [0:0]\n[3:300] -A POSTROUTING -o eth0 -j MASQUERADE\nCOMMIT\n\
*filter\n:INPUT DROP [0:0]\n[4:400] -A INPUT -i lo -j ACCEPT\nCOMMIT\n";

/// nat is fine; the filter table holds a rule only the kernel refuses
/// (a udp match on a tcp rule), at line 7.
const KERNEL_REFUSES_FILTER: &str = "*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j ACCEPT\nCOMMIT\n\
*filter\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -p tcp -m udp --dport 53 -j ACCEPT\nCOMMIT\n";

fn baseline(ns: &Netns) -> [(iptables_atomic::kernel::TableInfo, Vec<u8>); 2] {
    Restorer::new(Family::V4)
        .netns(ns.name.clone())
        .counters(true)
        .restore_str(BASELINE)
        .unwrap();
    [
        ns.raw(Family::V4, "nat", true),
        ns.raw(Family::V4, "filter", true),
    ]
}

#[test]
fn kernel_check_names_the_refused_rule_and_changes_nothing() {
    let ns = Netns::new("kchk");
    let before = baseline(&ns);
    let err = Restorer::new(Family::V4)
        .netns(ns.name.clone())
        .file_name("f.rules")
        .restore_str(KERNEL_REFUSES_FILTER)
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("f.rules:7:"), "{msg}");
    assert!(msg.contains("chain `INPUT', rule 2"), "{msg}");
    assert_eq!(
        [
            ns.raw(Family::V4, "nat", true),
            ns.raw(Family::V4, "filter", true)
        ],
        before
    );
}

#[test]
fn test_mode_asks_the_kernel_and_creates_no_table() {
    let ns = Netns::new("kchkt");
    let err = Restorer::new(Family::V4)
        .netns(ns.name.clone())
        .test(true)
        .restore_str(KERNEL_REFUSES_FILTER)
        .unwrap_err();
    assert!(err.to_string().contains(":7:"), "{err}");
    assert!(
        ns.tables(Family::V4).is_empty(),
        "-t must not create tables"
    );
    let ok = "*filter\n-A INPUT -p udp -m udp --dport 53 -j ACCEPT\nCOMMIT\n";
    let report = Restorer::new(Family::V4)
        .netns(ns.name.clone())
        .test(true)
        .restore_str(ok)
        .unwrap();
    assert!(report.test_only);
    assert!(
        ns.tables(Family::V4).is_empty(),
        "-t must not create tables"
    );
}

#[test]
fn a_refused_table_puts_back_the_tables_replaced_before_it() {
    let ns = Netns::new("rollb");
    let before = baseline(&ns);
    // Without the scratch check the kernel refuses filter after nat was replaced.
    let err = Restorer::new(Family::V4)
        .netns(ns.name.clone())
        .precheck(false)
        .restore_str(KERNEL_REFUSES_FILTER)
        .unwrap_err();
    assert!(err.to_string().contains("put back"), "{err}");
    let after = [
        ns.raw(Family::V4, "nat", true),
        ns.raw(Family::V4, "filter", true),
    ];
    assert_eq!(
        after, before,
        "nat must have its previous entries and counters back"
    );
}

#[test]
fn rules_needing_outside_objects_are_reported_unchecked() {
    let ns = Netns::new("unchk");
    let (rc, _, err) = ns.run(&["nfacct", "add", "acct1"], b"");
    assert_eq!(rc, 0, "{err}");
    let text = "*filter\n-A INPUT -m nfacct --nfacct-name acct1 -j ACCEPT\nCOMMIT\n";
    let report = Restorer::new(Family::V4)
        .netns(ns.name.clone())
        .restore_str(text)
        .unwrap();
    assert_eq!(
        report.unchecked,
        vec![("filter".to_string(), "INPUT".to_string(), Some(2))]
    );
}
