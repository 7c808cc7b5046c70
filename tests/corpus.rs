//! The shared corpus of real rulesets (../shared/corpus), when it is there:
//! every file must install byte-identically to iptables-legacy-restore, the
//! sequences must work as their notes say, and the rejected files must be
//! refused with a line number while the kernel is left as it was.
//! The corpus is others' work and is never copied into this repository.

mod common;

use std::path::Path;

use common::{compare, corpus, strip_comments, Netns, Step};
use iptables_atomic::Family;

fn files(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(ext))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn skip() -> bool {
    if corpus().is_none() {
        eprintln!("skipped: ../shared/corpus is not there");
        return true;
    }
    false
}

fn check_dir(sub: &str, family: Family) {
    if skip() {
        return;
    }
    let dir = corpus().expect("checked").join(sub);
    let mut failures = Vec::new();
    let list = files(&dir, ".rules");
    assert!(!list.is_empty(), "no files in {}", dir.display());
    for f in &list {
        let text = read(f);
        if let Err(e) = compare(
            family,
            &|_| {},
            &[Step {
                text: &text,
                noflush: false,
                counters: false,
            }],
        ) {
            failures.push(format!("{}: {e}", f.display()));
        }
        // Installed a second time over the tables the first made: a plain
        // file then takes the direct path (text to kernel entries without
        // the model; into a fresh namespace it takes the model path).
        let step = || Step {
            text: &text,
            noflush: false,
            counters: false,
        };
        if let Err(e) = compare(family, &|_| {}, &[step(), step()]) {
            failures.push(format!("{} (installed twice): {e}", f.display()));
        }
        let with_counters = f.with_file_name(format!(
            "{}.expected-save-counters",
            f.file_name().unwrap().to_string_lossy()
        ));
        if with_counters.exists() {
            if let Err(e) = compare(
                family,
                &|_| {},
                &[Step {
                    text: &text,
                    noflush: false,
                    counters: true,
                }],
            ) {
                failures.push(format!("{} (-c): {e}", f.display()));
            }
        }
        // Our own save of what we installed equals the recorded save text.
        let expected = f.with_file_name(format!(
            "{}.expected-save",
            f.file_name().unwrap().to_string_lossy()
        ));
        let ns = Netns::new("save");
        match iptables_atomic::Restorer::new(family)
            .netns(ns.name.clone())
            .restore_str(&text)
        {
            Ok(_) => {
                let ours =
                    iptables_atomic::save(family, Some(&ns.name), None, false).expect("save");
                if strip_comments(&ours) != strip_comments(&read(&expected)) {
                    failures.push(format!(
                        "{}: save text differs from {}",
                        f.display(),
                        expected.display()
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", f.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus files fail:\n{}",
        failures.len(),
        list.len(),
        failures.join("\n")
    );
    eprintln!(
        "{} corpus files in {sub}/ byte-identical to iptables-legacy-restore",
        list.len()
    );
}

#[test]
fn corpus_v4() {
    check_dir("v4", Family::V4);
}

fn legacy_cmd(ns: &Netns, argv: &[&str]) {
    let (rc, _, err) = ns.run(argv, b"");
    assert_eq!(rc, 0, "{argv:?} in {}: {err}", ns.name);
}

#[test]
fn corpus_sequences_v4() {
    if skip() {
        return;
    }
    let dir = corpus().expect("checked").join("sequences");
    let k = |n: u32| {
        read(&dir.join(format!(
            "kubernetes__proxier_test_TestSyncProxyRulesRepeated_{n}.rules"
        )))
    };
    let (k1, k2, k3) = (k(1), k(2), k(3));
    fn step(t: &str) -> Step<'_> {
        Step {
            text: t,
            noflush: true,
            counters: false,
        }
    }
    // kube-proxy: a full sync, then partial syncs with -n (and -X inside).
    compare(Family::V4, &|_| {}, &[step(&k1)]).expect("kube-proxy sync 1");
    compare(Family::V4, &|_| {}, &[step(&k1), step(&k2)]).expect("kube-proxy sync 1, 2");
    compare(Family::V4, &|_| {}, &[step(&k1), step(&k2), step(&k3)])
        .expect("kube-proxy sync 1, 2, 3");
    // kube-proxy's overall rules need two nfacct objects first.
    if which("nfacct") {
        let overall = read(&dir.join("kubernetes__proxier_test_TestOverallIPTablesRules.rules"));
        let setup = |ns: &Netns| {
            legacy_cmd(ns, &["nfacct", "add", "ct_state_invalid_dropped_pkts"]);
            legacy_cmd(ns, &["nfacct", "add", "localhost_nps_accepted_pkts"]);
        };
        compare(
            Family::V4,
            &setup,
            &[Step {
                text: &overall,
                noflush: false,
                counters: false,
            }],
        )
        .expect("kube-proxy overall");
    } else {
        panic!("the nfacct tool is needed for kube-proxy's overall rules (apt-get install nfacct)");
    }
    // ufw: its chains exist before its files are loaded with -n.
    for (file, chain) in [
        ("ufw__before.rules", "ufw-logging-deny"),
        ("ufw__after.rules", "ufw-skip-to-policy-input"),
    ] {
        let text = read(&dir.join(file));
        let setup = |ns: &Netns| legacy_cmd(ns, &["iptables-legacy", "-N", chain]);
        compare(Family::V4, &setup, &[step(&text)]).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

fn which(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false)
}

#[test]
fn corpus_rejected_are_refused_and_change_nothing() {
    if skip() {
        return;
    }
    let dir = corpus().expect("checked").join("rejected");
    let list = files(&dir, ".rules");
    assert!(!list.is_empty());
    for f in &list {
        let text = read(f);
        let family = if f.to_string_lossy().contains("ip6tables") {
            Family::V6
        } else {
            Family::V4
        };
        // A namespace with a firewall already in place: it must stay as it is.
        let ns = Netns::new("rej");
        let before_rules = "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n";
        iptables_atomic::Restorer::new(family)
            .netns(ns.name.clone())
            .restore_str(before_rules)
            .expect("baseline");
        let before = ns.raw(family, "filter", true);
        let tables_before = ns.tables(family);
        let err = iptables_atomic::Restorer::new(family)
            .netns(ns.name.clone())
            .file_name(f.display().to_string())
            .restore_str(&text)
            .expect_err(&format!("{} must be refused", f.display()));
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{}:", f.display())),
            "no file:line in `{msg}'"
        );
        let legacy_line: String = read(&f.with_file_name(format!(
            "{}.standalone-error.txt",
            f.file_name().unwrap().to_string_lossy()
        )))
        .split(|c: char| !c.is_ascii_digit())
        .rfind(|s| !s.is_empty())
        .unwrap_or_default()
        .to_string();
        assert!(
            msg.contains(&format!(":{legacy_line}")),
            "{}: `{msg}' should name line {legacy_line} as iptables does",
            f.display()
        );
        assert_eq!(
            ns.tables(family),
            tables_before,
            "{}: tables were created",
            f.display()
        );
        assert_eq!(
            ns.raw(family, "filter", true),
            before,
            "{}: the filter table changed",
            f.display()
        );
    }
}
