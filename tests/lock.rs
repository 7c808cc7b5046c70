//! The xtables lock, taken as iptables 1.8.9 takes it: flock on
//! $XTABLES_LOCKFILE (here a private file, so the machine's own lock is not
//! involved). Without -w we wait for it; -w SECS gives up after SECS with
//! exit status 4 and changes nothing.

mod common;

use std::fs::File;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Netns;
use iptables_atomic::Family;
use nix::fcntl::{Flock, FlockArg};

const RULES: &str = "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n";

fn cli(lockfile: &std::path::Path, args: &[&str], input: &str) -> std::process::Child {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_iptables-atomic"))
        .env("XTABLES_LOCKFILE", lockfile)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the CLI");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child
}

#[test]
fn wait_limit_gives_up_with_status_4_and_changes_nothing() {
    let ns = Netns::new("lock");
    let lockfile = std::env::temp_dir().join(format!("ipta-lock-{}", std::process::id()));
    let held = Flock::lock(File::create(&lockfile).unwrap(), FlockArg::LockExclusive)
        .expect("hold the lock");
    let start = Instant::now();
    let out = cli(
        &lockfile,
        &["restore", "--netns", &ns.name, "-w", "1"],
        RULES,
    )
    .wait_with_output()
    .unwrap();
    let waited = start.elapsed();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("xtables lock"));
    assert!(
        waited >= Duration::from_millis(900),
        "gave up after {waited:?}, before the second was over"
    );
    assert!(
        ns.tables(Family::V4).is_empty(),
        "nothing may be created while the lock is held by another"
    );
    drop(held);
    std::fs::remove_file(&lockfile).ok();
}

#[test]
fn without_w_we_wait_for_the_holder() {
    let ns = Netns::new("lockw");
    let lockfile = std::env::temp_dir().join(format!("ipta-lockw-{}", std::process::id()));
    let held = Flock::lock(File::create(&lockfile).unwrap(), FlockArg::LockExclusive)
        .expect("hold the lock");
    let mut child = cli(&lockfile, &["restore", "--netns", &ns.name], RULES);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "must still be waiting for the lock"
    );
    assert!(
        ns.tables(Family::V4).is_empty(),
        "nothing installed while waiting"
    );
    drop(held);
    let status = child.wait().unwrap();
    assert!(status.success());
    assert_eq!(ns.tables(Family::V4), vec!["filter".to_string()]);
    std::fs::remove_file(&lockfile).ok();
}
