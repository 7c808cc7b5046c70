//! The embedding API: rules built in code, committed, read back; checked
//! with iptables-legacy-save as the oracle.

mod common;

use common::{strip_comments, Netns};
use iptables_atomic::{
    commit, read_ruleset, read_table, rule, Chain, Family, Restorer, Ruleset, Table, Target,
    Verdict,
};

#[test]
fn ruleset_built_in_code_is_installed() {
    let ns = Netns::new("lib");
    let mut filter = Table::new("filter").unwrap();
    let mut web = Chain::user("web");
    web.rules
        .push(rule(Family::V4, "filter", "-p tcp --dport 80 -j ACCEPT").unwrap());
    web.rules
        .push(rule(Family::V4, "filter", "-p tcp --dport 443 -j ACCEPT").unwrap());
    filter.chains.push(web);
    let input = filter.chain_mut("INPUT").unwrap();
    input.policy = Some(Verdict::Drop);
    input
        .rules
        .push(rule(Family::V4, "filter", "-i lo -j ACCEPT").unwrap());
    input
        .rules
        .push(rule(Family::V4, "filter", "-j web").unwrap());
    let rs = Ruleset {
        family: Family::V4,
        tables: vec![filter],
    };
    let report = commit(&rs, Some(&ns.name), None).unwrap();
    assert_eq!(report.tables.len(), 1);
    assert_eq!(
        report.tables[0].entries,
        3 + 2 + 1 + 2 + 1 + 1,
        "3 policies, 2 INPUT rules, ERROR head, 2 rules, RETURN, end"
    );
    let (_, save, _) = ns.run(&["iptables-legacy-save"], b"");
    assert_eq!(
        strip_comments(&save),
        "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:web - [0:0]\n\
         -A INPUT -i lo -j ACCEPT\n-A INPUT -j web\n\
         -A web -p tcp -m tcp --dport 80 -j ACCEPT\n-A web -p tcp -m tcp --dport 443 -j ACCEPT\nCOMMIT\n"
    );
    let back = read_table(Family::V4, Some(&ns.name), "filter").unwrap();
    assert_eq!(
        back.chain("INPUT").unwrap().rules[1].target,
        Target::Jump("web".into())
    );
    assert_eq!(
        back.chain("web").unwrap().rules,
        rs.tables[0].chain("web").unwrap().rules
    );
}

#[test]
fn commit_keeps_counters_of_unchanged_rules() {
    let ns = Netns::new("libc");
    let base = "*filter\n:INPUT ACCEPT [0:0]\n[5:500] -A INPUT -p tcp --dport 22 -j ACCEPT\n[6:600] -A INPUT -p tcp --dport 23 -j DROP\nCOMMIT\n";
    Restorer::new(Family::V4)
        .netns(ns.name.clone())
        .counters(true)
        .restore_str(base)
        .unwrap();
    let mut rs = read_ruleset(Family::V4, Some(&ns.name)).unwrap();
    let input = rs.tables[0].chain_mut("INPUT").unwrap();
    input.rules.remove(1);
    input.rules.insert(
        0,
        rule(Family::V4, "filter", "-p tcp --dport 80 -j ACCEPT").unwrap(),
    );
    commit(&rs, Some(&ns.name), None).unwrap();
    let (_, save, _) = ns.run(&["iptables-legacy-save", "-c"], b"");
    let save = strip_comments(&save);
    assert!(save.contains("[0:0] -A INPUT -p tcp -m tcp --dport 80 -j ACCEPT\n[5:500] -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n"), "{save}");
    assert!(!save.contains("--dport 23"), "{save}");
}

#[test]
fn bad_rule_arguments_are_errors() {
    assert!(rule(Family::V4, "filter", "-p tcp --dport 99999 -j ACCEPT").is_err());
    assert!(rule(Family::V4, "filter", "-m nosuch -j ACCEPT").is_err());
    assert!(
        rule(Family::V4, "filter", "-s 1.1.1.1,2.2.2.2 -j ACCEPT").is_err(),
        "two addresses are two rules"
    );
}

#[test]
fn jump_to_missing_chain_is_refused_before_the_kernel_sees_it() {
    let ns = Netns::new("libj");
    let mut filter = Table::new("filter").unwrap();
    filter
        .chain_mut("INPUT")
        .unwrap()
        .rules
        .push(rule(Family::V4, "filter", "-j nowhere").unwrap());
    let rs = Ruleset {
        family: Family::V4,
        tables: vec![filter],
    };
    let err = commit(&rs, Some(&ns.name), None).unwrap_err();
    assert!(err.to_string().contains("nowhere"), "{err}");
    assert!(ns.tables(Family::V4).is_empty(), "nothing created");
}

#[test]
fn netns_may_be_given_as_a_path() {
    let ns = Netns::new("path");
    let path = format!("/run/netns/{}", ns.name);
    Restorer::new(Family::V4)
        .netns(path.clone())
        .restore_str("*raw\n:OUTPUT DROP [0:0]\nCOMMIT\n")
        .unwrap();
    assert_eq!(ns.tables(Family::V4), vec!["raw".to_string()]);
    let t = read_table(Family::V4, Some(&path), "raw").unwrap();
    assert_eq!(t.chain("OUTPUT").unwrap().policy, Some(Verdict::Drop));
}

/// Restorer::restore_file installs what iptables-legacy-restore installs
/// from the same file, whatever the file is: a regular file (mapped; here
/// with a Latin-1 comment, which is not UTF-8), one read from the middle
/// (only the rest is the input), a pipe (read), an empty file (nothing to
/// do). An error names the file, line and column, and installs nothing.
#[test]
fn restore_file_takes_files_pipes_and_positions() {
    use std::io::{Seek, SeekFrom};
    let text = b"*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:web - [0:0]\n-A INPUT -p tcp -m comment --comment \"caf\xe9\" -j web\n-A web -p tcp --dport 80 -j ACCEPT\nCOMMIT\n";
    let oracle = Netns::new("rf-ref");
    let (rc, _, err) = oracle.run(&["iptables-legacy-restore"], text);
    assert_eq!(rc, 0, "{err}");
    let want = strip_comments(&oracle.run(&["iptables-legacy-save"], b"").1);
    assert!(want.contains("-A web"), "{want}");
    let path = std::env::temp_dir().join(format!("ipta-restore-file-{}", std::process::id()));
    let restore = |file: &std::fs::File| {
        let ns = Netns::new("rf");
        let res = Restorer::new(Family::V4)
            .netns(ns.name.clone())
            .file_name("rules")
            .restore_file(file);
        (
            res,
            strip_comments(&ns.run(&["iptables-legacy-save"], b"").1),
        )
    };

    // A regular file: mapped.
    std::fs::write(&path, text).unwrap();
    let (res, save) = restore(&std::fs::File::open(&path).unwrap());
    res.unwrap();
    assert_eq!(save, want, "mapped file");

    // Read from the middle: a first table that must not be installed.
    let mut both = b"*nat\n:PREROUTING DROP [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n".to_vec();
    let skip = both.len() as u64;
    both.extend_from_slice(text);
    std::fs::write(&path, &both).unwrap();
    let mut f = std::fs::File::open(&path).unwrap();
    f.seek(SeekFrom::Start(skip)).unwrap();
    let (res, save) = restore(&f);
    res.unwrap();
    assert_eq!(save, want, "file read from its middle");

    // A pipe: read to its end.
    let mut child = std::process::Command::new("cat")
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = std::fs::File::from(std::os::fd::OwnedFd::from(child.stdout.take().unwrap()));
    let (res, save) = restore(&pipe);
    child.wait().unwrap();
    res.unwrap();
    assert!(
        save.contains(":PREROUTING DROP"),
        "the pipe's first table: {save}"
    );
    assert!(save.contains("-A web"), "the pipe's second table: {save}");

    // An empty file: no table named, nothing done.
    std::fs::write(&path, b"").unwrap();
    let (res, save) = restore(&std::fs::File::open(&path).unwrap());
    assert!(res.unwrap().tables.is_empty());
    assert_eq!(save, "");

    // A bad line: reported where it is, nothing installed.
    let mut bad = text.to_vec();
    bad.splice(
        bad.len() - 7..bad.len() - 7,
        b"-A web -p tcp --dport 99999 -j ACCEPT\n".iter().copied(),
    );
    std::fs::write(&path, &bad).unwrap();
    let (res, save) = restore(&std::fs::File::open(&path).unwrap());
    let e = res.unwrap_err().to_string();
    assert!(e.starts_with("rules:8:15: "), "{e}");
    assert_eq!(save, "", "nothing installed");
    std::fs::remove_file(&path).unwrap();
}
