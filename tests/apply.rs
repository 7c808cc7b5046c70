//! `apply`, `diff`, `confirm`, `rollback` and `restore -t`, through the CLI
//! as a user runs them, each in fresh network namespaces.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};
use std::time::Duration;

use common::Netns;
use iptables_atomic::Family;

fn cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iptables-atomic"));
    c.args(args).env_remove("SSH_CONNECTION");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run the CLI")
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ipta-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn masquerade_in_prerouting_is_refused_by_test_and_restore() {
    let ns = Netns::new("masq");
    let dir = tmpdir("masq");
    let base = write(
        &dir,
        "base.rules",
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n",
    );
    assert!(cli(&["restore", "--netns", &ns.name, &base], &[])
        .status
        .success());
    let before = ns.raw(Family::V4, "filter", true);
    let bad = write(
        &dir,
        "bad.rules",
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j MASQUERADE\nCOMMIT\n",
    );
    // iptables-legacy-restore -t accepts it (it only checks syntax; and it
    // creates the tables it names, so it runs in a namespace of its own).
    let other = Netns::new("masq-legacy");
    let (rc, _, _) = other.run(
        &["iptables-legacy-restore", "-t"],
        std::fs::read_to_string(&bad).unwrap().as_bytes(),
    );
    assert_eq!(rc, 0);
    for args in [vec!["restore", "-t"], vec!["restore"]] {
        let mut a = args.clone();
        a.extend(["--netns", &ns.name, &bad]);
        let out = cli(&a, &[]);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(
            stderr(&out).contains(&format!("{bad}:7:")),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(
        ns.raw(Family::V4, "filter", true),
        before,
        "filter installed before is unchanged"
    );
    assert_eq!(
        ns.tables(Family::V4),
        vec!["filter".to_string()],
        "nat was never created"
    );
}

const WEB_ONLY: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 80 -j ACCEPT\nCOMMIT\n";
const WEB_AND_SESSIONS: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -p tcp --dport 80 -j ACCEPT\nCOMMIT\n";
const SSH: (&str, &str) = ("SSH_CONNECTION", "198.51.100.7 50022 203.0.113.1 22");

#[test]
fn lockout_guard_refuses_a_ruleset_that_drops_the_ssh_session() {
    let ns = Netns::new("lock");
    let dir = tmpdir("lockout");
    let web = write(&dir, "web.rules", WEB_ONLY);
    let out = cli(&["apply", "--netns", &ns.name, &web], &[SSH]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("198.51.100.7"),
        "names the session: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("policy"),
        "names what drops it: {}",
        stderr(&out)
    );
    assert!(ns.tables(Family::V4).is_empty(), "nothing applied");
    let ok = write(&dir, "ok.rules", WEB_AND_SESSIONS);
    let out = cli(&["apply", "--netns", &ns.name, &ok], &[SSH]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(ns.tables(Family::V4), vec!["filter".to_string()]);
    // --force overrides.
    let out = cli(&["apply", "--force", "--netns", &ns.name, &web], &[SSH]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn counters_survive_and_applying_twice_changes_nothing() {
    let ns = Netns::new("cnt");
    let dir = tmpdir("counters");
    let one = write(
        &dir,
        "one.rules",
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n",
    );
    assert!(cli(&["apply", "--netns", &ns.name, &one], &[])
        .status
        .success());
    // Traffic on the rule: counters set through the kernel (as a packet would).
    let (rc, _, err) = ns.run(
        &[
            "iptables-legacy",
            "-R",
            "INPUT",
            "1",
            "-p",
            "tcp",
            "--dport",
            "22",
            "-j",
            "ACCEPT",
            "-c",
            "7",
            "700",
        ],
        b"",
    );
    assert_eq!(rc, 0, "{err}");
    let two = write(
        &dir,
        "two.rules",
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -p tcp --dport 443 -j ACCEPT\nCOMMIT\n",
    );
    let out = cli(
        &["apply", "--detailed-exitcodes", "--netns", &ns.name, &two],
        &[],
    );
    assert_eq!(out.status.code(), Some(10), "changed: {}", stderr(&out));
    let (_, save, _) = ns.run(&["iptables-legacy-save", "-c"], b"");
    assert!(
        save.contains("[7:700] -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"),
        "{save}"
    );
    let before = ns.raw(Family::V4, "filter", true);
    let out = cli(
        &["apply", "--detailed-exitcodes", "--netns", &ns.name, &two],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "unchanged: {}", stderr(&out));
    assert_eq!(
        ns.raw(Family::V4, "filter", true),
        before,
        "the second apply touched nothing"
    );
    let diff = cli(&["diff", "--netns", &ns.name, &two], &[]);
    assert_eq!(diff.status.code(), Some(0));
    let diff = cli(&["diff", "--netns", &ns.name, &one], &[]);
    assert_eq!(diff.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&diff.stdout)
        .contains("--A INPUT -p tcp -m tcp --dport 443 -j ACCEPT"));
}

#[test]
fn unconfirmed_apply_rolls_back_even_when_the_caller_dies() {
    let ns = Netns::new("conf");
    let dir = tmpdir("confirm");
    let base = write(
        &dir,
        "base.rules",
        "*filter\n:INPUT ACCEPT [0:0]\n[3:300] -A INPUT -i lo -j ACCEPT\nCOMMIT\n",
    );
    assert!(cli(&["restore", "-c", "--netns", &ns.name, &base], &[])
        .status
        .success());
    let before = ns.raw(Family::V4, "filter", true);
    let new = write(
        &dir,
        "new.rules",
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p udp --dport 53 -j ACCEPT\nCOMMIT\n",
    );
    // The caller runs in its own process group, which is killed right after.
    let child = Command::new(env!("CARGO_BIN_EXE_iptables-atomic"))
        .args(["apply", "--confirm", "2", "--netns", &ns.name, &new])
        .env_remove("SSH_CONNECTION")
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    assert_ne!(
        ns.raw(Family::V4, "filter", true),
        before,
        "the new table is live until the deadline"
    );
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        ns.raw(Family::V4, "filter", true),
        before,
        "previous table back, byte for byte, counters too"
    );

    // Confirmed in time: the new table stays.
    let out = cli(&["apply", "--confirm", "2", "--netns", &ns.name, &new], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let applied = ns.raw(Family::V4, "filter", false);
    assert!(cli(&["confirm", "--netns", &ns.name], &[]).status.success());
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(ns.raw(Family::V4, "filter", false), applied);
    assert!(
        !cli(&["confirm", "--netns", &ns.name], &[]).status.success(),
        "nothing left to confirm"
    );
}

#[test]
fn rollback_puts_the_previous_tables_back_now() {
    let ns = Netns::new("rbk");
    let dir = tmpdir("rollback");
    let base = write(
        &dir,
        "base.rules",
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n",
    );
    assert!(cli(&["restore", "--netns", &ns.name, &base], &[])
        .status
        .success());
    let before = ns.raw(Family::V4, "filter", true);
    let v4 = write(&dir, "rules.v4", "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n");
    let v6 = write(
        &dir,
        "rules.v6",
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -s 2001:db8::/32 -j ACCEPT\nCOMMIT\n",
    );
    let out = cli(
        &["apply", "--confirm", "30", "--netns", &ns.name, &v4, &v6],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(ns.tables(Family::V6), vec!["filter".to_string()]);
    let out = cli(&["rollback", "--netns", &ns.name], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(ns.raw(Family::V4, "filter", true), before);
    let (_, save6, _) = ns.run(&["ip6tables-legacy-save"], b"");
    assert!(
        !save6.contains("2001:db8"),
        "the IPv6 table is back to what it was: {save6}"
    );
}

#[test]
fn iptables_nft_tables_beside_ours_give_a_warning() {
    let ns = Netns::new("nft");
    let (rc, _, err) = ns.run(&["iptables-nft", "-N", "from-nft"], b"");
    assert_eq!(rc, 0, "{err}");
    let listed = {
        let _g = iptables_atomic::kernel::NetnsGuard::enter(&ns.name).unwrap();
        iptables_atomic::kernel::nft::tables().unwrap()
    };
    assert!(
        listed
            .iter()
            .any(|t| t.name == "filter" && t.is_iptables_nft(Family::V4)),
        "{listed:?}"
    );
    let dir = tmpdir("nft");
    let f = write(&dir, "f.rules", "*filter\n-A INPUT -j ACCEPT\nCOMMIT\n");
    let out = cli(&["restore", "--netns", &ns.name, &f], &[]);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("nf_tables also has table(s) filter"),
        "{}",
        stderr(&out)
    );
    let quiet = Netns::new("nft-none");
    let out = cli(&["restore", "--netns", &quiet.name, &f], &[]);
    assert!(!stderr(&out).contains("nf_tables"), "{}", stderr(&out));
}
