//! `Session`: read once, change the model, commit again without reading the
//! kernel; checked with iptables-legacy-save (and -c for counters).

mod common;

use common::{strip_comments, Netns};
use iptables_atomic::{rule, Error, Family, Session, Verdict};

const RULES: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
    :web - [0:0]\n\
    [5:300] -A INPUT -i lo -j ACCEPT\n\
    [7:420] -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n\
    [2:120] -A INPUT -j web\n\
    [3:180] -A web -p tcp -m tcp --dport 80 -j ACCEPT\n\
    COMMIT\n";

fn save(ns: &Netns, counters: bool) -> String {
    let args: &[&str] = if counters {
        &["iptables-legacy-save", "-c", "-t", "filter"]
    } else {
        &["iptables-legacy-save", "-t", "filter"]
    };
    strip_comments(&ns.run(args, b"").1)
}

#[test]
fn change_one_rule_and_commit_twice() {
    let ns = Netns::new("sess");
    let (code, _, err) = ns.run(&["iptables-legacy-restore", "-c"], RULES.as_bytes());
    assert_eq!(code, 0, "{err}");

    let mut s = Session::open(Family::V4, Some(&ns.name), "filter").unwrap();
    assert_eq!(s.table().chain("INPUT").unwrap().rules.len(), 3);
    // 3 policies, 3 INPUT rules, web: head, rule, tail, end.
    assert_eq!(s.entries(), Some(3 + 3 + 3 + 1));

    // Change one rule: port 80 becomes 8080.
    let new = rule(Family::V4, "filter", "-p tcp --dport 8080 -j ACCEPT").unwrap();
    s.table_mut().chain_mut("web").unwrap().rules[0] = new;
    let c = s.commit().unwrap();
    assert_eq!(c.entries, 10);
    assert_eq!(
        save(&ns, true),
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:web - [0:0]\n\
         [5:300] -A INPUT -i lo -j ACCEPT\n[7:420] -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n\
         [2:120] -A INPUT -j web\n[0:0] -A web -p tcp -m tcp --dport 8080 -j ACCEPT\nCOMMIT\n"
    );

    // A second commit without reading: the entry count it knows is right,
    // and the counters follow the rules to their new places.
    let extra = rule(Family::V4, "filter", "-s 10.0.0.0/8 -j DROP").unwrap();
    s.table_mut()
        .chain_mut("INPUT")
        .unwrap()
        .rules
        .insert(0, extra);
    s.table_mut().chain_mut("OUTPUT").unwrap().policy = Some(Verdict::Drop);
    let c = s.commit().unwrap();
    assert_eq!(c.entries, 11);
    assert_eq!(
        save(&ns, true),
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT DROP [0:0]\n:web - [0:0]\n\
         [0:0] -A INPUT -s 10.0.0.0/8 -j DROP\n\
         [5:300] -A INPUT -i lo -j ACCEPT\n[7:420] -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n\
         [2:120] -A INPUT -j web\n[0:0] -A web -p tcp -m tcp --dport 8080 -j ACCEPT\nCOMMIT\n"
    );
}

/// The rules of [`chain_mut_patches_what_a_full_encoding_would_install`]:
/// user chains before and after the changed ones in the blob, jumps to
/// them, a fall-through rule, counters.
const PATCH_RULES: &str =
    "*filter\n:INPUT ACCEPT [1:2]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
    :a-first - [0:0]\n:m-middle - [0:0]\n:z-last - [0:0]\n\
    [5:300] -A INPUT -i lo -j ACCEPT\n\
    [7:420] -A INPUT -p tcp -m tcp --dport 22 -j a-first\n\
    [1:60] -A INPUT -s 10.1.0.0/16\n\
    [2:120] -A INPUT -j z-last\n\
    [3:180] -A a-first -p tcp -m tcp --dport 80 -j m-middle\n\
    [4:240] -A m-middle -d 10.0.0.1/32 -j ACCEPT\n\
    [6:360] -A m-middle -g z-last\n\
    [8:480] -A z-last -j DROP\n\
    COMMIT\n";

/// Changes through `chain_mut` rewrite just those entries of the table the
/// session installed last (when their size holds) or encode it all again
/// (when it does not); either way the kernel must hold exactly what a full
/// encoding of the same model installs: the same bytes, the same counters.
#[test]
fn chain_mut_patches_what_a_full_encoding_would_install() {
    let patched = Netns::new("patch");
    let full = Netns::new("full");
    for ns in [&patched, &full] {
        let (code, _, err) = ns.run(&["iptables-legacy-restore", "-c"], PATCH_RULES.as_bytes());
        assert_eq!(code, 0, "{err}");
    }
    let mut p = Session::open(Family::V4, Some(&patched.name), "filter").unwrap();
    let mut f = Session::open(Family::V4, Some(&full.name), "filter").unwrap();
    let r = |args: &str| rule(Family::V4, "filter", args).unwrap();
    type Step = Box<dyn Fn(&mut iptables_atomic::Chain)>;
    let steps: Vec<(&str, Step)> = vec![
        // Nothing changed yet: the first commit encodes everything.
        ("INPUT", Box::new(|_| {})),
        // Same size: a port, a jump target, a verdict.
        (
            "a-first",
            Box::new(move |c| c.rules[0] = r("-p tcp --dport 8080 -j z-last")),
        ),
        (
            "INPUT",
            Box::new(move |c| c.rules[1] = r("-p tcp --dport 2222 -j m-middle")),
        ),
        ("m-middle", Box::new(move |c| c.rules[1] = r("-j a-first"))),
        ("z-last", Box::new(move |c| c.rules[0] = r("-j ACCEPT"))),
        // A policy.
        ("FORWARD", Box::new(|c| c.policy = Some(Verdict::Accept))),
        // Other sizes: encoded whole again.
        (
            "m-middle",
            Box::new(move |c| c.rules.push(r("-p udp --dport 53 -j ACCEPT"))),
        ),
        (
            "z-last",
            Box::new(move |c| c.rules[0] = r("-m comment --comment longer -j ACCEPT")),
        ),
        // And the same size again after that.
        ("INPUT", Box::new(move |c| c.rules[2] = r("-s 10.2.0.0/16"))),
    ];
    for (i, (chain, change)) in steps.iter().enumerate() {
        change(p.chain_mut(chain).unwrap());
        change(f.table_mut().chain_mut(chain).unwrap());
        p.commit().unwrap_or_else(|e| panic!("step {i}: {e}"));
        f.commit().unwrap_or_else(|e| panic!("step {i}: {e}"));
        assert_eq!(
            patched.raw(Family::V4, "filter", true),
            full.raw(Family::V4, "filter", true),
            "step {i} ({chain}): kernel bytes and counters"
        );
        assert_eq!(save(&patched, true), save(&full, true), "step {i}");
    }
    assert!(save(&patched, false).contains("-A m-middle -j a-first"));
}

#[test]
fn someone_else_replacing_the_table_is_eagain_and_reload_recovers() {
    let ns = Netns::new("sess");
    let (code, _, err) = ns.run(&["iptables-legacy-restore"], RULES.as_bytes());
    assert_eq!(code, 0, "{err}");
    let mut s = Session::open(Family::V4, Some(&ns.name), "filter").unwrap();

    // iptables adds a rule behind the session's back.
    let (code, _, err) = ns.run(&["iptables-legacy", "-A", "FORWARD", "-j", "DROP"], b"");
    assert_eq!(code, 0, "{err}");
    s.table_mut().chain_mut("INPUT").unwrap().rules.clear();
    match s.commit() {
        Err(Error::Syscall(e)) => assert_eq!(e.errno(), Some(libc::EAGAIN)),
        other => panic!("expected EAGAIN, got {other:?}"),
    }
    // Nothing changed in the kernel.
    assert!(save(&ns, false).contains("-A INPUT -i lo -j ACCEPT"));

    s.reload().unwrap();
    assert_eq!(s.table().chain("FORWARD").unwrap().rules.len(), 1);
    s.table_mut().chain_mut("INPUT").unwrap().rules.clear();
    s.commit().unwrap();
    assert_eq!(
        save(&ns, false),
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:web - [0:0]\n\
         -A FORWARD -j DROP\n-A web -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n"
    );
}

#[test]
fn a_table_that_does_not_exist_yet_is_created_on_commit() {
    let ns = Netns::new("sess");
    let mut s = Session::open(Family::V4, Some(&ns.name), "nat").unwrap();
    assert_eq!(s.entries(), None);
    assert!(ns.tables(Family::V4).is_empty(), "open creates nothing");
    let r = rule(
        Family::V4,
        "nat",
        "-p tcp --dport 80 -j DNAT --to-destination 10.0.0.1:8080",
    )
    .unwrap();
    s.table_mut().chain_mut("PREROUTING").unwrap().rules.push(r);
    s.commit().unwrap();
    let (_, out, _) = ns.run(&["iptables-legacy-save", "-t", "nat"], b"");
    assert!(
        strip_comments(&out).contains(
            "-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.1:8080"
        ),
        "{out}"
    );
    // And a second commit knows the count it installed.
    s.table_mut().chain_mut("PREROUTING").unwrap().rules.clear();
    s.commit().unwrap();
    assert_eq!(s.entries(), Some(5));
}

#[test]
fn a_refused_table_leaves_the_live_one() {
    let ns = Netns::new("sess");
    let (code, _, err) = ns.run(&["iptables-legacy-restore"], RULES.as_bytes());
    assert_eq!(code, 0, "{err}");
    let mut s = Session::open(Family::V4, Some(&ns.name), "filter").unwrap();
    // A loop of jumps: web → web.
    let r = rule(Family::V4, "filter", "-j web").unwrap();
    s.table_mut().chain_mut("web").unwrap().rules.push(r);
    assert!(matches!(s.commit(), Err(Error::Kernel { .. })));
    assert!(save(&ns, false).contains("-A web -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT"));
    // The session still knows the live entry count.
    s.table_mut().chain_mut("web").unwrap().rules.pop();
    s.commit().unwrap();
}
