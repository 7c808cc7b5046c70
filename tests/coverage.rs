//! Every option of every extension codec appears in one of the repository's
//! rule files (which tests/parity.rs checks against iptables-legacy), and
//! every codec is used by one.

use iptables_atomic::ext::{codecs, Kind};

fn rule_files() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut all = String::new();
    // rules-nokernel: extensions this kernel has but refuses to load (SECMARK
    // without SELinux) or lacks (LED); their codecs are unit-tested only.
    for d in ["rules", "rules6", "rules-nokernel"] {
        for e in std::fs::read_dir(root.join(d)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "rules") {
                all.push_str(&iptables_atomic::text::from_bytes(
                    &std::fs::read(&p).unwrap(),
                ));
                all.push('\n');
            }
        }
    }
    all
}

#[test]
fn every_extension_and_option_is_exercised() {
    let text = rule_files();
    let words: std::collections::HashSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| l.split_whitespace())
        .collect();
    let mut missing = Vec::new();
    let socks = [
        iptables_atomic::kernel::XtSocket::open(iptables_atomic::Family::V4).ok(),
        iptables_atomic::kernel::XtSocket::open(iptables_atomic::Family::V6).ok(),
    ];
    for c in codecs() {
        // An extension the running kernel does not have at all cannot be
        // loaded by iptables either; its codec is covered by unit tests only.
        let kernel_has = c.families().iter().any(|f| {
            let sock = &socks[if *f == iptables_atomic::Family::V4 {
                0
            } else {
                1
            }];
            sock.as_ref().is_none_or(|s| {
                c.revisions(*f).iter().any(|r| {
                    s.revision_supported(c.kind(), c.kernel_name(), *r)
                        .unwrap_or(true)
                })
            })
        });
        if !kernel_has {
            eprintln!(
                "note: the running kernel has no `{}'; its options are covered by unit tests only",
                c.name()
            );
            continue;
        }
        let flag = if c.kind() == Kind::Match { "-m" } else { "-j" };
        let used = text.contains(&format!("{flag} {} ", c.name()))
            || text.contains(&format!("{flag} {}\n", c.name()))
            || (c.kind() == Kind::Match && text.contains(&format!("-p {} ", c.name())));
        if !used {
            missing.push(format!("{flag} {}", c.name()));
        }
        for o in c.options() {
            let long = format!("--{}", o.name);
            if !words.contains(long.as_str())
                && !words.iter().any(|w| w.starts_with(&format!("{long}=")))
            {
                missing.push(format!("{flag} {} {long}", c.name()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not exercised by any tests/rules*/ file:\n{}",
        missing.join("\n")
    );
}
