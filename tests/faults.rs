//! Kernel refusals and faults: a missing extension, a rule the kernel
//! refuses (EINVAL), a chain loop (ELOOP) and a kernel out of memory
//! (ENOMEM), each provoked for real in fresh namespaces. Every case installs
//! a known ruleset (nat and filter, with counters) first, then offers a
//! file that touches several tables, and checks the message (file and line
//! of the rule, or the table's `*table' line for a table-wide fault), the
//! exit status or error variant, and that every table is byte for byte as
//! it was, counters included, with no table created.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{strip_comments, Netns};
use iptables_atomic::kernel::TableInfo;
use iptables_atomic::{Error, Family, Restorer};

const BASELINE: &str = "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [7:700]\n\
[3:300] -A POSTROUTING -o eth0 -j MASQUERADE\nCOMMIT\n\
*filter\n:INPUT DROP [5:500]\n:keep - [0:0]\n[4:400] -A INPUT -i lo -j ACCEPT\n\
[2:200] -A INPUT -j keep\n[1:100] -A keep -p tcp --dport 22 -j ACCEPT\nCOMMIT\n";

/// What the namespace holds: the tables that exist, each table's GET_INFO
/// and entry bytes with counters, and iptables-legacy-save -c.
#[derive(PartialEq)]
struct State {
    names: Vec<String>,
    tables: Vec<(String, TableInfo, Vec<u8>)>,
    save: String,
}

fn state(ns: &Netns) -> State {
    let mut names = ns.tables(Family::V4);
    names.sort();
    let tables = names
        .iter()
        .map(|n| {
            let (info, blob) = ns.raw(Family::V4, n, true);
            (n.clone(), info, blob)
        })
        .collect();
    let (rc, save, err) = ns.run(&["iptables-legacy-save", "-c"], b"");
    assert_eq!(rc, 0, "iptables-legacy-save: {err}");
    State {
        names,
        tables,
        save: strip_comments(&save),
    }
}

/// Panics with the first difference between two states.
fn assert_unchanged(before: &State, after: &State, what: &str) {
    assert_eq!(
        after.names, before.names,
        "{what}: the set of tables changed (a table was created?)"
    );
    for ((name, bi, bb), (_, ai, ab)) in before.tables.iter().zip(&after.tables) {
        assert_eq!(ai, bi, "{what}: GET_INFO of table `{name}' changed");
        if ab != bb {
            let at = bb.iter().zip(ab).position(|(x, y)| x != y);
            panic!(
                "{what}: the bytes of table `{name}' changed (first at {at:?}, sizes {} / {})",
                bb.len(),
                ab.len()
            );
        }
    }
    assert_eq!(after.save, before.save, "{what}: the save text changed");
    assert!(before.save.contains("[3:300] -A POSTROUTING"));
}

/// A namespace holding the baseline.
fn with_baseline() -> (Netns, State) {
    let ns = Netns::new("fault");
    Restorer::new(Family::V4)
        .netns(ns.name.clone())
        .counters(true)
        .restore_str(BASELINE)
        .expect("the baseline installs");
    let before = state(&ns);
    assert_eq!(before.names, ["filter", "nat"]);
    (ns, before)
}

/// The 1-based line of the only line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    let hits: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(hits.len(), 1, "`{needle}' must be on exactly one line");
    hits[0]
}

/// A file in a directory of its own, removed on drop.
struct RulesFile {
    dir: PathBuf,
    path: PathBuf,
}

impl RulesFile {
    fn new(text: &str) -> RulesFile {
        let dir = std::env::temp_dir().join(format!(
            "ipta-faults-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("faulty.rules");
        std::fs::write(&path, text).expect("write the rules file");
        RulesFile { dir, path }
    }
}

impl Drop for RulesFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `iptables-atomic restore [-t] FILE` in the namespace.
fn cli(ns: &Netns, file: &RulesFile, test: bool) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iptables-atomic"));
    cmd.args(["restore", "--netns", &ns.name]);
    if test {
        cmd.arg("-t");
    }
    let out = cmd.arg(&file.path).output().expect("run the CLI");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_mentions(msg: &str, needles: &[&str]) {
    for n in needles {
        assert!(msg.contains(n), "`{msg}' should mention `{n}'");
    }
}

/// The whole check for a file the kernel refuses at `line`: the library
/// (restore and test mode) gives a typed error naming the line, the CLI
/// (restore and -t) exits 1 naming file and line, and no table changes.
/// Returns the library's message.
fn refused_at_line(text: &str, needle: &str, mentions: &[&str]) -> String {
    let line = line_of(text, needle);
    let (ns, before) = with_baseline();
    let mut message = String::new();
    for test in [false, true] {
        let err = Restorer::new(Family::V4)
            .netns(ns.name.clone())
            .file_name("faulty.rules")
            .test(test)
            .restore_str(text)
            .expect_err("the kernel must refuse this file");
        assert!(
            matches!(err, Error::Apply { exit_code: 1, .. }),
            "a refused rule is Error::Apply with exit code 1: {err:?}"
        );
        assert_eq!(err.line(), Some(line), "{err}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("faulty.rules:{line}:")),
            "`{msg}' should start with faulty.rules:{line}:"
        );
        assert_mentions(&msg, mentions);
        assert_unchanged(&before, &state(&ns), &format!("library, test={test}"));
        message = msg;
    }
    let file = RulesFile::new(text);
    for test in [false, true] {
        let (code, stderr) = cli(&ns, &file, test);
        assert_eq!(code, Some(1), "CLI, -t={test}: {stderr}");
        assert!(
            stderr.contains(&format!("{}:{line}:", file.path.display())),
            "CLI, -t={test}: {stderr}"
        );
        assert_mentions(&stderr, mentions);
        assert_unchanged(&before, &state(&ns), &format!("CLI, -t={test}"));
    }
    message
}

/// nat changes, mangle is new, and filter holds `rule` among good rules.
fn touching_three_tables(filter_rules: &str) -> String {
    format!(
        "*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -o eth1 -j MASQUERADE\nCOMMIT\n\
*mangle\n-A PREROUTING -j MARK --set-mark 1\nCOMMIT\n\
*filter\n:INPUT ACCEPT [0:0]\n:a - [0:0]\n:b - [0:0]\n-A INPUT -i lo -j ACCEPT\n\
{filter_rules}-A INPUT -p tcp --dport 80 -j ACCEPT\nCOMMIT\n"
    )
}

#[test]
fn missing_match_extension() {
    let text = touching_three_tables("-A INPUT -m ipvs --vproto tcp -j ACCEPT\n");
    let msg = refused_at_line(&text, "-m ipvs", &["ipvs", "modprobe ipt_ipvs"]);
    eprintln!("{msg}");
}

#[test]
fn missing_target_extension() {
    let text = touching_three_tables("-A INPUT -p udp -j LED --led-trigger-id x\n");
    let msg = refused_at_line(&text, "-j LED", &["LED", "modprobe ipt_LED"]);
    eprintln!("{msg}");
}

#[test]
fn target_in_a_hook_it_is_not_valid_for() {
    // MASQUERADE is only valid in POSTROUTING: the kernel says EINVAL.
    let text = "*filter\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n\
*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp --dport 80 -j REDIRECT --to-ports 8080\n\
-A PREROUTING -i eth1 -j MASQUERADE\nCOMMIT\n\
*mangle\n-A PREROUTING -j MARK --set-mark 1\nCOMMIT\n";
    let msg = refused_at_line(
        text,
        "-j MASQUERADE",
        &[
            "EINVAL",
            "not valid in this table or chain",
            "dmesg",
            "PREROUTING",
        ],
    );
    eprintln!("{msg}");
}

#[test]
fn target_in_a_table_it_is_not_valid_for() {
    // REDIRECT belongs to nat; in filter the kernel says EINVAL.
    let text = touching_three_tables("-A INPUT -p tcp --dport 81 -j REDIRECT --to-ports 8080\n");
    refused_at_line(&text, "-j REDIRECT", &["EINVAL", "dmesg"]);
}

#[test]
fn option_combination_the_kernel_refuses() {
    // TCPMSS needs a match on SYN packets; only the kernel checks that.
    let text = touching_three_tables("-A INPUT -p tcp --dport 82 -j TCPMSS --set-mss 1400\n");
    refused_at_line(&text, "-j TCPMSS", &["EINVAL", "combination of options"]);
}

#[test]
fn chain_loop_through_jumps() {
    let text = touching_three_tables("-A INPUT -j a\n-A a -p tcp -j b\n-A b -p udp -j a\n");
    let msg = refused_at_line(&text, "-A b -p udp -j a", &["chain loop", "ELOOP"]);
    eprintln!("{msg}");
}

#[test]
fn chain_loop_through_gotos() {
    let text = touching_three_tables("-A INPUT -j a\n-A a -p tcp -g b\n-A b -p udp -g a\n");
    refused_at_line(&text, "-A b -p udp -g a", &["chain loop"]);
}

/// Extensions the running kernel does not have, given to the library as
/// code (no parser, so no revision probe): the kernel's own SET_REPLACE
/// answers ENOENT (no such extension) or EPROTOTYPE (no such revision).
#[test]
fn library_ruleset_with_an_extension_the_kernel_lacks() {
    use iptables_atomic::rules::Extension;
    use iptables_atomic::{rule, Rule, Ruleset, Table, Target, Verdict};
    let cases = [
        (
            Extension {
                name: "ipvs".into(),
                revision: 0,
                data: vec![0; 48],
            },
            vec!["ENOENT", "no `ipvs' match", "modprobe ipt_ipvs"],
        ),
        (
            Extension {
                name: "conntrack".into(),
                revision: 200,
                data: vec![0; 8],
            },
            vec!["no such revision", "`conntrack' match has no revision 200"],
        ),
    ];
    for (ext, mentions) in cases {
        let (ns, before) = with_baseline();
        let mut nat = Table::new("nat").unwrap();
        nat.chain_mut("POSTROUTING")
            .unwrap()
            .rules
            .push(rule(Family::V4, "nat", "-o eth1 -j MASQUERADE").unwrap());
        let mut filter = Table::new("filter").unwrap();
        let input = &mut filter.chain_mut("INPUT").unwrap().rules;
        input.push(rule(Family::V4, "filter", "-i lo -j ACCEPT").unwrap());
        let mut bad = Rule::new(Family::V4, Target::Verdict(Verdict::Accept));
        bad.matches.push(ext);
        input.push(bad);
        let ruleset = Ruleset {
            family: Family::V4,
            tables: vec![nat, filter],
        };
        let err = iptables_atomic::commit(&ruleset, Some(&ns.name), None)
            .expect_err("the kernel must refuse the extension");
        assert!(matches!(err, Error::Kernel { .. }), "{err:?}");
        let msg = err.to_string();
        assert_mentions(&msg, &mentions);
        assert_mentions(&msg, &["table `filter'", "chain `INPUT', rule 2"]);
        assert_unchanged(&before, &state(&ns), "library commit");
        eprintln!("{msg}");
    }
}

/// A memory cgroup (v1) holding only the calling thread. The kernel
/// charges its own allocations to the thread's cgroup, but user memory to
/// the process's (the thread group leader's), so the limit bites the
/// kernel's copy of a new table and not the process that built it. The OOM
/// killer is off in the cgroup: an allocation over the limit fails with
/// ENOMEM instead of killing the test.
struct ThreadMemLimit {
    base: PathBuf,
    dir: PathBuf,
    tid: String,
}

impl ThreadMemLimit {
    fn new(limit: u64) -> ThreadMemLimit {
        let own = std::fs::read_to_string("/proc/self/cgroup").expect("/proc/self/cgroup");
        let rel = own
            .lines()
            .find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
                ctrl.split(',')
                    .any(|c| c == "memory")
                    .then(|| path.to_string())
            })
            .expect(
                "this test needs the cgroup v1 memory controller \
                 (a thread of its own in a memory cgroup)",
            );
        let base = PathBuf::from("/sys/fs/cgroup/memory").join(rel.trim_start_matches('/'));
        assert!(
            base.join("memory.oom_control").exists(),
            "no cgroup v1 memory controller at {}",
            base.display()
        );
        let dir = base.join(format!(
            "ipta-enomem-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir(&dir).expect("create the memory cgroup");
        let tid = std::fs::read_link("/proc/thread-self")
            .expect("/proc/thread-self")
            .file_name()
            .expect("tid")
            .to_string_lossy()
            .into_owned();
        let guard = ThreadMemLimit { base, dir, tid };
        guard.write("memory.oom_control", "1");
        guard.write("memory.limit_in_bytes", &limit.to_string());
        guard.write("tasks", &guard.tid.clone());
        guard
    }

    fn write(&self, file: &str, value: &str) {
        std::fs::write(self.dir.join(file), value)
            .unwrap_or_else(|e| panic!("{}/{file}: {e}", self.dir.display()));
    }

    /// How many times an allocation hit the limit.
    fn failcnt(&self) -> u64 {
        std::fs::read_to_string(self.dir.join("memory.failcnt"))
            .expect("memory.failcnt")
            .trim()
            .parse()
            .expect("a number")
    }
}

impl Drop for ThreadMemLimit {
    fn drop(&mut self) {
        let _ = std::fs::write(self.base.join("tasks"), &self.tid);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// nat changes, mangle (when asked) is new, and filter gets `RULES` rules
/// of 152 bytes: about 9.7 MB of kernel memory. Returns the text and the
/// line of `*filter`.
fn big_filter(with_mangle: bool) -> (String, usize) {
    let mut text = String::from(
        "*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -o eth1 -j MASQUERADE\nCOMMIT\n",
    );
    if with_mangle {
        text.push_str("*mangle\n-A PREROUTING -j MARK --set-mark 1\nCOMMIT\n");
    }
    text.push_str("*filter\n:INPUT ACCEPT [0:0]\n");
    for i in 0..RULES {
        text.push_str(&format!(
            "-A INPUT -s 10.{}.{}.{}/32 -j ACCEPT\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ));
    }
    text.push_str("COMMIT\n");
    let line = line_of(&text, "*filter");
    (text, line)
}

const RULES: u32 = 64_000;

#[test]
fn kernel_out_of_memory() {
    let (ns, before) = with_baseline();
    // The default (kernel check in a scratch namespace) and test mode, with
    // a new table in the file; then without the check, where nat is
    // replaced before filter fails and must be put back with its counters.
    // (Without the check a new table would be left behind, created and
    // empty, when a later table fails: x_tables cannot delete a table.)
    for (what, test, precheck) in [
        ("restore", false, true),
        ("restore -t", true, true),
        ("restore without the scratch check", false, false),
    ] {
        let (text, filter_line) = big_filter(precheck);
        let limit = ThreadMemLimit::new(4 << 20);
        let result = Restorer::new(Family::V4)
            .netns(ns.name.clone())
            .file_name("faulty.rules")
            .test(test)
            .precheck(precheck)
            .restore_str(&text);
        let failcnt = limit.failcnt();
        drop(limit);
        let err = match result {
            Ok(r) => panic!("{what}: installed despite the memory limit: {r:?}"),
            Err(e) => e,
        };
        assert!(failcnt > 0, "{what}: the memory limit was never hit");
        let Error::OutOfMemory {
            ref table,
            ref at,
            entries,
            bytes,
        } = err
        else {
            panic!("{what}: expected Error::OutOfMemory, got {err:?}");
        };
        assert_eq!(table, "filter", "{what}");
        assert_eq!(at.as_ref().map(|a| a.line), Some(filter_line), "{what}");
        assert_eq!(entries, RULES + 4, "{what}: rules, 3 policies, ERROR");
        assert!(bytes > 9_000_000, "{what}: {bytes} bytes");
        assert_eq!(err.exit_code(), 1);
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("faulty.rules:{filter_line}: table `filter'")),
            "{what}: {msg}"
        );
        assert_mentions(
            &msg,
            &[
                "ran out of memory",
                "every table was left as it was",
                "memory limit",
                &format!("{bytes} bytes"),
            ],
        );
        assert_unchanged(&before, &state(&ns), what);
        eprintln!("{what}: {msg}");
    }

    // Not the size itself: without the limit the kernel takes the table.
    Restorer::new(Family::V4)
        .netns(ns.name.clone())
        .test(true)
        .restore_str(&big_filter(true).0)
        .expect("without the memory limit the kernel accepts the table");
}
