//! Hostile input, the acceptance check: 1500 random mutations of the corpus
//! files (`../shared/corpus`, next to the repository; skipped when it is
//! not there) go through `iptables-atomic restore -t` as standard input.
//! No run may panic, die of a signal, exit with anything but 0 (accepted)
//! or 1/2 (refused: the kernel or a command refused it / malformed input),
//! or take over 10 s; every refusal must name where: `FILE:LINE:` or
//! `FILE:LINE:COLUMN:` with a line of the input, or the table it is about.
//!
//! The mutations are those of the script the acceptance check was first
//! run with (`mutate.py`): 1 to 6 edits, each a random byte, a deletion of
//! 1 to 20 bytes, an insertion of one of a few hostile snippets (`!`, `"`,
//! `65536`, `/33`, NUL, 0xff, `COMMIT\n`, `*nat\n` ...) or a line repeated
//! elsewhere — with a fixed-seed generator of our own, so every run tries
//! the same inputs. Some inputs with bytes that are not UTF-8 are added by
//! hand; either answer is fine for them, as long as it is one of the above.
//!
//! The runs go two at a time. `-t` must create no table: the namespace the
//! runs are pointed at must have none at the end.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{Netns, Rng};
use iptables_atomic::Family;

const BIN: &str = env!("CARGO_BIN_EXE_iptables-atomic");
const MUTATIONS: usize = 1500;
const SEED: u64 = 7;
const HANG: Duration = Duration::from_secs(10);
const THREADS: usize = 2;
/// Problems described in full in the failure message (all are counted).
const MAX_REPORTED: usize = 20;

const SNIPPETS: &[&[u8]] = &[
    b"!",
    b" ",
    b"\n",
    b"\"",
    b"-",
    b"--",
    b"0",
    b"65536",
    b"/33",
    b"\x00",
    b"\xff",
    b"COMMIT\n",
    b"*nat\n",
];

/// 1 to 6 random edits, as mutate.py makes them.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..rng.range(1, 6) {
        let op = rng.unit();
        if data.is_empty() {
            break;
        }
        let p = rng.below(data.len());
        if op < 0.4 {
            data[p] = rng.below(256) as u8;
        } else if op < 0.6 {
            let end = (p + rng.range(1, 20)).min(data.len());
            data.drain(p..end);
        } else if op < 0.8 {
            let s = SNIPPETS[rng.below(SNIPPETS.len())];
            data.splice(p..p, s.iter().copied());
        } else {
            let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
            let at = rng.below(lines.len());
            let line = lines[rng.below(lines.len())];
            lines.insert(at, line);
            *data = lines.join(&b'\n');
        }
    }
}

/// The family a corpus file is written for.
fn family_of(path: &Path) -> Family {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let in_v6 = path
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == "v6");
    if in_v6 || name.contains("ip6tables") || name.contains(".v6") || name.ends_with("6.rules") {
        Family::V6
    } else {
        Family::V4
    }
}

/// Inputs with bytes that are not UTF-8, in the places that matter.
fn non_utf8_inputs() -> Vec<(String, Family, Vec<u8>)> {
    let v4: &[(&str, &[u8])] = &[
        (
            "latin-1 comment line",
            b"*filter\n# caf\xe9\n-A INPUT -j ACCEPT\nCOMMIT\n",
        ),
        (
            "latin-1 in --comment",
            b"*filter\n-A INPUT -m comment --comment \"caf\xe9\" -j ACCEPT\nCOMMIT\n",
        ),
        (
            "0xff in a chain name",
            b"*filter\n:\xff\xfe - [0:0]\n-A INPUT -j \xff\xfe\nCOMMIT\n",
        ),
        (
            "0xff in an interface",
            b"*filter\n-A INPUT -i eth\xff -j ACCEPT\nCOMMIT\n",
        ),
        (
            "0xff in a log prefix",
            b"*filter\n-A INPUT -j LOG --log-prefix \"\xff \"\nCOMMIT\n",
        ),
        (
            "cut UTF-8 sequence at the end",
            b"*filter\n-A INPUT -j ACCEPT\nCOMMIT\n\xc3",
        ),
        ("0xff in the table name", b"*filt\xffer\nCOMMIT\n"),
        (
            "UTF-16 byte order mark",
            b"\xff\xfe*\x00f\x00i\x00l\x00t\x00e\x00r\x00\n\x00",
        ),
        ("NUL and 0xff only", b"\x00\xff\x00\xff\n"),
    ];
    let mut v: Vec<(String, Family, Vec<u8>)> = v4
        .iter()
        .map(|(what, b)| (what.to_string(), Family::V4, b.to_vec()))
        .collect();
    v.push((
        "latin-1 in an IPv6 --comment".into(),
        Family::V6,
        b"*filter\n-A INPUT -s ::1 -m comment --comment \"\xe9t\xe9\" -j ACCEPT\nCOMMIT\n".to_vec(),
    ));
    v
}

/// How one run ended.
struct Run {
    status: Option<ExitStatus>,
    stderr: String,
    elapsed: Duration,
}

/// `restore -t --family F --netns NS` with `input` on standard input,
/// killed after HANG (then `status` is None).
fn run(ns: &str, family: Family, input: &[u8]) -> Run {
    let start = Instant::now();
    let fam = if family == Family::V6 { "6" } else { "4" };
    let mut child = Command::new(BIN)
        .args(["restore", "-t", "--family", fam, "--netns", ns])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run iptables-atomic");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stderr = child.stderr.take().expect("stderr");
    let input = input.to_vec();
    // The child may stop reading early (a refusal): a broken pipe is fine.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = start.elapsed();
    let _ = writer.join();
    let stderr = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    Run {
        status,
        stderr,
        elapsed,
    }
}

/// The line a message names (`:LINE: ` or `:LINE:COLUMN: `), if any.
fn named_line(msg: &str) -> Option<usize> {
    let b = msg.as_bytes();
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    for (i, _) in msg.match_indices(':') {
        let n = digits(i + 1);
        if n == 0 {
            continue;
        }
        let mut end = i + 1 + n;
        if b.get(end) == Some(&b':') {
            let m = digits(end + 1);
            if m > 0 {
                end += 1 + m;
            }
        }
        if b.get(end) == Some(&b':') && b.get(end + 1) == Some(&b' ') {
            return msg[i + 1..i + 1 + n].parse().ok();
        }
    }
    None
}

#[derive(Default)]
struct Tally {
    accepted: AtomicUsize,
    refused_1: AtomicUsize,
    refused_2: AtomicUsize,
    non_utf8: AtomicUsize,
    problems: AtomicUsize,
    slowest_ms: AtomicUsize,
}

/// Checks one run; returns a description of what is wrong with it.
fn judge(input: &[u8], r: &Run, tally: &Tally) -> Option<String> {
    tally
        .slowest_ms
        .fetch_max(r.elapsed.as_millis() as usize, Ordering::Relaxed);
    let Some(status) = r.status else {
        return Some(format!("hung: killed after {HANG:?}"));
    };
    let Some(code) = status.code() else {
        return Some(format!("died of a signal: {status}; stderr: {}", r.stderr));
    };
    if code == 101 || r.stderr.contains("panicked") {
        return Some(format!("panicked (exit {code}): {}", r.stderr));
    }
    match code {
        0 => {
            tally.accepted.fetch_add(1, Ordering::Relaxed);
            None
        }
        1 | 2 => {
            let lines = input.iter().filter(|&&b| b == b'\n').count() + 1;
            let names_table = r.stderr.contains("table `");
            match named_line(&r.stderr) {
                Some(l) if l == 0 || l > lines => {
                    return Some(format!(
                        "refusal names line {l}, the input has {lines}: {}",
                        r.stderr
                    ))
                }
                None if !names_table => {
                    return Some(format!(
                        "refusal (exit {code}) names no line and no table: {}",
                        r.stderr
                    ))
                }
                _ => {}
            }
            let n = if code == 1 {
                &tally.refused_1
            } else {
                &tally.refused_2
            };
            n.fetch_add(1, Ordering::Relaxed);
            None
        }
        _ => Some(format!("exit status {code}: {}", r.stderr)),
    }
}

#[test]
fn named_line_finds_locations() {
    assert_eq!(named_line("iptables-atomic: <stdin>:12:5: bad"), Some(12));
    assert_eq!(named_line("iptables-atomic: f.rules:7: chain"), Some(7));
    assert_eq!(named_line("iptables-atomic: a:b: 1:x"), None);
    assert_eq!(named_line("at 10:30 the table"), None);
}

#[test]
fn mutated_corpus_files_are_refused_cleanly_or_accepted() {
    let Some(corpus) = common::corpus() else {
        println!("mutations: skipped, ../shared/corpus is not there");
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .expect("read the corpus")
        .filter_map(|d| d.ok().map(|d| d.path()))
        .filter(|d| d.is_dir())
        .flat_map(|d| std::fs::read_dir(d).expect("read a corpus folder"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .rules file in {}", corpus.display());
    let contents: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("read a corpus file"))
        .collect();

    let mut rng = Rng::new(SEED);
    let mut inputs: Vec<(String, Family, Vec<u8>)> = (0..MUTATIONS)
        .map(|i| {
            let f = rng.below(files.len());
            let mut data = contents[f].clone();
            mutate(&mut rng, &mut data);
            let name = files[f].file_name().unwrap_or_default().to_string_lossy();
            (
                format!("mutation {i} of {name}"),
                family_of(&files[f]),
                data,
            )
        })
        .collect();
    inputs.extend(non_utf8_inputs());

    let ns = Netns::new("mut");
    let tally = Tally::default();
    let next = AtomicUsize::new(0);
    let problems: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let keep = std::env::temp_dir().join(format!("ipta-mutations-{}", std::process::id()));
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((what, family, input)) = inputs.get(i) else {
                    break;
                };
                if std::str::from_utf8(input).is_err() {
                    tally.non_utf8.fetch_add(1, Ordering::Relaxed);
                }
                let r = run(&ns.name, *family, input);
                if let Some(p) = judge(input, &r, &tally) {
                    tally.problems.fetch_add(1, Ordering::Relaxed);
                    std::fs::create_dir_all(&keep).expect("make a folder for failing inputs");
                    let path = keep.join(format!("input-{i}"));
                    std::fs::write(&path, input).expect("keep a failing input");
                    let mut v = problems.lock().unwrap();
                    if v.len() < MAX_REPORTED {
                        v.push(format!(
                            "{what} (--family {}, kept in {}): {p}",
                            if *family == Family::V6 { 6 } else { 4 },
                            path.display()
                        ));
                    }
                }
            });
        }
    });
    let took = start.elapsed();
    let n = |a: &AtomicUsize| a.load(Ordering::Relaxed);
    println!(
        "mutations: {} inputs ({} not UTF-8) from {} corpus files in {:.1} s on {THREADS} threads: \
         {} accepted, {} refused with exit 1, {} refused with exit 2, {} problems; slowest run {} ms",
        inputs.len(),
        n(&tally.non_utf8),
        files.len(),
        took.as_secs_f64(),
        n(&tally.accepted),
        n(&tally.refused_1),
        n(&tally.refused_2),
        n(&tally.problems),
        n(&tally.slowest_ms),
    );
    let problems = problems.into_inner().unwrap();
    assert!(
        problems.is_empty(),
        "{} of {} inputs went wrong; the first:\n{}",
        n(&tally.problems),
        inputs.len(),
        problems.join("\n")
    );
    assert_eq!(
        n(&tally.accepted) + n(&tally.refused_1) + n(&tally.refused_2),
        inputs.len()
    );
    assert!(
        n(&tally.accepted) > 0 && n(&tally.refused_1) + n(&tally.refused_2) > 0,
        "a harness that accepts everything or refuses everything tests nothing"
    );
    for family in [Family::V4, Family::V6] {
        assert!(
            ns.tables(family).is_empty(),
            "restore -t created tables: {:?}",
            ns.tables(family)
        );
    }
}
