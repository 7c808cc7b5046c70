//! Broken input gets a clear error naming file, line and column, and the
//! kernel is left exactly as it was: no table changed, none created.

mod common;

use std::process::Command;

use common::Netns;
use iptables_atomic::{Family, Restorer};

const BASELINE: &str = "*filter\n:INPUT DROP [0:0]\n:keep - [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -j keep\nCOMMIT\n";

/// Installs the baseline, feeds `bad`, and checks the error and the kernel.
fn refused(bad: &str, line: usize, needle: &str) -> String {
    let ns = Netns::new("err");
    Restorer::new(Family::V4)
        .netns(ns.name.clone())
        .restore_str(BASELINE)
        .expect("baseline installs");
    let before = ns.raw(Family::V4, "filter", true);
    let tables = ns.tables(Family::V4);
    let err = Restorer::new(Family::V4)
        .netns(ns.name.clone())
        .file_name("bad.rules")
        .restore_str(bad)
        .expect_err("a broken file must be refused");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("bad.rules:{line}")),
        "`{msg}' should start with bad.rules:{line}"
    );
    assert!(
        msg.to_lowercase().contains(&needle.to_lowercase()),
        "`{msg}' should mention `{needle}'"
    );
    assert_eq!(ns.tables(Family::V4), tables, "no table may be created");
    assert_eq!(
        ns.raw(Family::V4, "filter", true),
        before,
        "the filter table must not change"
    );
    msg
}

#[test]
fn unknown_match() {
    refused(
        "*filter\n-A INPUT -m nosuchmatch --foo 1 -j ACCEPT\nCOMMIT\n",
        2,
        "nosuchmatch",
    );
}

#[test]
fn unterminated_quote() {
    let m = refused("*filter\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -j LOG --log-prefix \"oops\nCOMMIT\n", 3, "unterminated quote");
    assert!(m.starts_with("bad.rules:3:30"), "column of the quote: {m}");
}

#[test]
fn mask_too_long() {
    refused(
        "*filter\n-A INPUT -s 10.0.0.0/33 -j ACCEPT\nCOMMIT\n",
        2,
        "invalid mask",
    );
}

#[test]
fn port_out_of_range() {
    let m = refused(
        "*filter\n-A INPUT -p tcp --dport 70000 -j ACCEPT\nCOMMIT\n",
        2,
        "70000",
    );
    assert!(
        m.starts_with("bad.rules:2:17:"),
        "the column of --dport: {m}"
    );
}

#[test]
fn jump_to_missing_chain() {
    refused(
        "*filter\n:a - [0:0]\n-A INPUT -j nosuchchain\nCOMMIT\n",
        3,
        "nosuchchain",
    );
}

#[test]
fn missing_commit() {
    refused("*filter\n-A INPUT -j ACCEPT\n", 3, "COMMIT expected");
}

#[test]
fn commit_without_newline() {
    refused("*filter\n-A INPUT -j ACCEPT\nCOMMIT", 3, "newline");
}

#[test]
fn later_table_error_leaves_earlier_tables_alone() {
    // iptables-legacy-restore would have installed *nat before failing on *filter.
    refused("*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j ACCEPT\nCOMMIT\n*filter\n-A INPUT -p tcp --dport x7 -j ACCEPT\nCOMMIT\n", 6, "x7");
}

#[test]
fn binary_garbage() {
    let garbage: String = "*filter\n".to_string() + "\u{1}\u{2}\u{7f}garbage\u{0}\u{3}\n";
    refused(&garbage, 2, "NUL");
    refused("*filter\n\u{1}\u{2}\u{3}\n", 2, "Bad argument");
}

#[test]
fn policy_on_user_chain() {
    refused(
        "*filter\n:mine ACCEPT [0:0]\nCOMMIT\n",
        2,
        "Bad built-in chain name",
    );
}

#[test]
fn cli_reports_location_and_exit_code() {
    let ns = Netns::new("cli");
    let dir = std::env::temp_dir().join(format!("ipta-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.rules");
    std::fs::write(
        &bad,
        "*filter\n-A INPUT -p tcp --dport 70000 -j ACCEPT\nCOMMIT\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_iptables-atomic"))
        .args(["restore", "--netns", &ns.name])
        .arg(&bad)
        .output()
        .expect("run the CLI");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "malformed input exits 2 like iptables-restore: {stderr}"
    );
    assert!(
        stderr.contains(&format!("{}:2:", bad.display())),
        "{stderr}"
    );
    assert!(ns.tables(Family::V4).is_empty(), "nothing may be created");
    let good = dir.join("good.rules");
    std::fs::write(
        &good,
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_iptables-atomic"))
        .args(["restore", "--netns", &ns.name])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let save = Command::new(env!("CARGO_BIN_EXE_iptables-atomic"))
        .args(["save", "--netns", &ns.name])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&save.stdout);
    assert!(
        text.contains("-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_first_failing_line_is_reported() {
    // Line 3 cannot be carried out (policy on a user chain); line 5 does not
    // parse. iptables-restore stops at line 3; so do we.
    refused(
        "*nat\n:mine - [0:0]\n:mine2 ACCEPT [0:0]\n-A mine -j ACCEPT\n-A mine -p tcp --dport 99999 -j ACCEPT\nCOMMIT\n",
        3,
        "Bad built-in chain name",
    );
}

#[test]
fn udp_port_70000_is_refused_where_iptables_would_install_4464() {
    refused(
        "*filter\n-A INPUT -p udp --dport 70000 -j ACCEPT\nCOMMIT\n",
        2,
        "out of range",
    );
}

#[test]
fn overlong_line_is_refused() {
    let long = format!(
        "*filter\n-A INPUT -m comment --comment \"{}\" -j ACCEPT\nCOMMIT\n",
        "x".repeat(70 * 1024)
    );
    refused(&long, 2, "lines longer than 64 KiB");
}

#[test]
fn ambiguous_abbreviation() {
    // iptables (IPv4) has `--fragments`, so `--fr` could also be `--from`
    // of -m string; ip6tables has no `--fragments` and takes it as `--from`.
    refused(
        "*filter\n-A INPUT -m string --algo bm --string x --fr 5\nCOMMIT\n",
        2,
        "ambiguous",
    );
}

#[test]
fn attached_value_on_a_flag_that_reads_the_next_word() {
    // libxt_rateest's --rateest-pps is a getopt flag whose parser takes the
    // next word itself: `--rateest-pps=5' is refused by iptables.
    refused(
        "*filter\n-A INPUT -m rateest --rateest RE1 --rateest-eq --rateest-pps=5\nCOMMIT\n",
        2,
        "doesn't allow an argument",
    );
}

#[test]
fn interface_name_with_a_slash_or_blank() {
    // iptables warns and installs a rule for an interface that cannot exist.
    refused(
        "*filter\n-A INPUT -i eth/0 -j ACCEPT\nCOMMIT\n",
        2,
        "no interface name can have",
    );
    refused(
        "*filter\n-A FORWARD -o \"eth 0+\" -j ACCEPT\nCOMMIT\n",
        2,
        "no interface name can have",
    );
}

/// Bytes that are not UTF-8 pass through as iptables passes them: a Latin-1
/// comment, chain name and log prefix load, and `save` prints the very bytes
/// back (tests/rules/latin1.rules checks the kernel bytes against
/// iptables-legacy in the parity test).
#[test]
fn latin1_bytes_pass_through_the_cli() {
    let ns = Netns::new("latin1");
    let dir = std::env::temp_dir().join(format!("ipta-latin1-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("latin1.rules");
    let rules: &[u8] = b"*filter\n:caf\xe9 - [0:0]\n-A INPUT -m comment --comment \"acc\xe8s \xe0 distance\" -j caf\xe9\n-A caf\xe9 -j LOG --log-prefix \"refus\xe9: \"\nCOMMIT\n";
    std::fs::write(&file, rules).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_iptables-atomic"))
        .args(["restore", "--netns", &ns.name])
        .arg(&file)
        .output()
        .expect("run the CLI");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = Command::new(env!("CARGO_BIN_EXE_iptables-atomic"))
        .args(["save", "--netns", &ns.name])
        .output()
        .unwrap()
        .stdout;
    let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    for needle in [
        &b":caf\xe9 - [0:0]\n"[..],
        b"-A INPUT -m comment --comment \"acc\xe8s \xe0 distance\" -j caf\xe9\n",
        b"-A caf\xe9 -j LOG --log-prefix \"refus\xe9: \"\n",
    ] {
        assert!(
            has(&ours, needle),
            "save lacks {:?}:\n{}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(&ours)
        );
    }
    // The same bytes as iptables-legacy-save prints for that table.
    let (rc, legacy, err) = ns.run(&["iptables-legacy-save"], b"");
    assert_eq!(rc, 0, "{err}");
    let strip = |t: &[u8]| -> Vec<u8> {
        t.split(|&b| b == b'\n')
            .filter(|l| !l.starts_with(b"#"))
            .flat_map(|l| l.iter().copied().chain(Some(b'\n')))
            .collect()
    };
    assert_eq!(
        strip(&ours),
        strip(&iptables_atomic::text::to_bytes(&legacy)),
        "save text differs from iptables-legacy-save"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Columns count bytes of the input: a Latin-1 byte before the error is one
/// column, as it is one byte in the file.
#[test]
fn columns_count_bytes_after_latin1() {
    let text = iptables_atomic::text::from_bytes(
        b"*filter\n-A INPUT -m comment --comment caf\xe9 --dport 1 -j ACCEPT\nCOMMIT\n",
    )
    .into_owned();
    let m = refused(&text, 2, "--dport");
    assert!(m.starts_with("bad.rules:2:36:"), "{m}");
}
