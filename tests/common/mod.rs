//! Shared test harness: scratch network namespaces, the iptables-legacy
//! oracle, and byte-level comparison of what the kernel holds.
//!
//! Every test here runs against the real kernel, inside namespaces it makes
//! and deletes; the machine's own namespace is never touched.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use iptables_atomic::blob::layout::entry_layout;
use iptables_atomic::kernel::{NetnsGuard, TableInfo, XtSocket};
use iptables_atomic::Family;

/// A named network namespace (`ip netns add`), deleted on drop.
pub struct Netns {
    pub name: String,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Netns {
    pub fn new(tag: &str) -> Netns {
        assert!(
            is_root(),
            "these tests need root (network namespaces, iptables-legacy as the oracle)"
        );
        let name = format!(
            "ipta-{}-{}-{}",
            tag,
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("run ip netns add");
        assert!(st.success(), "ip netns add {name} failed");
        Netns { name }
    }

    /// Runs a command inside the namespace with `input` on stdin.
    pub fn run(&self, argv: &[&str], input: &[u8]) -> (i32, String, String) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ip netns exec");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait");
        (
            out.status.code().unwrap_or(-1),
            iptables_atomic::text::from_bytes(&out.stdout).into_owned(),
            iptables_atomic::text::from_bytes(&out.stderr).into_owned(),
        )
    }

    /// Tables that exist in the namespace.
    pub fn tables(&self, family: Family) -> Vec<String> {
        let _g = NetnsGuard::enter(&self.name).expect("enter netns");
        iptables_atomic::kernel::table_names(family).expect("table names")
    }

    /// GET_INFO + GET_ENTRIES of a table (creates it if absent).
    pub fn raw(&self, family: Family, table: &str, keep_counters: bool) -> (TableInfo, Vec<u8>) {
        let _g = NetnsGuard::enter(&self.name).expect("enter netns");
        let sock = XtSocket::open(family).expect("socket");
        let (info, mut blob) = sock.read_raw(table).expect("read table");
        if !keep_counters {
            zero_counters(family, &mut blob);
        }
        (info, blob)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

pub fn is_root() -> bool {
    // SAFETY-free check: /proc/self/status Uid line.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Zeroes the packet/byte counters of every entry (they change with traffic).
pub fn zero_counters(family: Family, blob: &mut [u8]) {
    let l = entry_layout(family);
    let mut off = 0;
    while off + l.size <= blob.len() {
        let next =
            u16::from_ne_bytes([blob[off + l.next_offset], blob[off + l.next_offset + 1]]) as usize;
        blob[off + l.counters..off + l.counters + 16].fill(0);
        if next == 0 {
            break;
        }
        off += next;
    }
}

pub fn strip_comments(save: &str) -> String {
    save.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

pub fn tables_in(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix('*'))
        .map(|t| t.split_whitespace().next().unwrap_or("").to_string())
        .collect();
    v.sort();
    v.dedup();
    v
}

pub fn legacy(family: Family, what: &str) -> &'static str {
    match (family, what) {
        (Family::V4, "restore") => "iptables-legacy-restore",
        (Family::V4, _) => "iptables-legacy-save",
        (Family::V6, "restore") => "ip6tables-legacy-restore",
        (Family::V6, _) => "ip6tables-legacy-save",
    }
}

/// One step of a sequence: a file and its restore flags.
pub struct Step<'a> {
    pub text: &'a str,
    pub noflush: bool,
    pub counters: bool,
}

/// Loads the steps with iptables-legacy-restore in one namespace and with
/// the library in another (after `setup` ran in both), then compares every
/// table's bytes and the save text. Returns a description of the first
/// difference, or None.
pub fn compare(family: Family, setup: &dyn Fn(&Netns), steps: &[Step]) -> Result<(), String> {
    compare_via(family, setup, steps, Via::Library)
}

/// How the candidate gets each step's text.
#[derive(Clone, Copy, Debug)]
pub enum Via<'a> {
    /// `Restorer::restore_str`.
    Library,
    /// `Restorer::restore_file` on a regular file (mapped, not read).
    LibraryFile,
    /// The command `bin`, given the text as `feed` says.
    Command(&'a str, Feed),
}

/// How the command gets its input.
#[derive(Clone, Copy, Debug)]
pub enum Feed {
    /// Standard input, a pipe.
    Pipe,
    /// A file named on the command line.
    Path,
    /// Standard input redirected from a regular file.
    StdinFile,
}

/// A temporary file holding `text`'s bytes, removed on drop.
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new(text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "ipta-input-{}-{}.rules",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(&path, iptables_atomic::text::to_bytes(text)).expect("write temp file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// [`compare`], with the steps given to the candidate as `via` says.
pub fn compare_via(
    family: Family,
    setup: &dyn Fn(&Netns),
    steps: &[Step],
    via: Via,
) -> Result<(), String> {
    let reference = Netns::new("ref");
    let candidate = Netns::new("cand");
    setup(&reference);
    setup(&candidate);
    let counters = steps.iter().any(|s| s.counters);
    for (i, s) in steps.iter().enumerate() {
        let mut argv = vec![legacy(family, "restore")];
        argv.extend(argv_flags(s));
        let (rc, _, err) = reference.run(&argv, &iptables_atomic::text::to_bytes(s.text));
        if rc != 0 {
            return Err(format!(
                "step {i}: iptables-legacy-restore refused it: {err}"
            ));
        }
        let r = iptables_atomic::Restorer::new(family)
            .netns(candidate.name.clone())
            .noflush(s.noflush)
            .counters(s.counters);
        let (bin, feed) = match via {
            Via::Library => {
                r.restore_str(s.text)
                    .map_err(|e| format!("step {i}: iptables-atomic refused it: {e}"))?;
                continue;
            }
            Via::LibraryFile => {
                let file = TempFile::new(s.text);
                let f = std::fs::File::open(&file.0).expect("open temp file");
                r.restore_file(&f)
                    .map_err(|e| format!("step {i}: iptables-atomic refused it: {e}"))?;
                continue;
            }
            Via::Command(bin, feed) => (bin, feed),
        };
        let mut argv = vec![bin, "restore"];
        if family == Family::V6 {
            argv.push("-6");
        }
        argv.extend(argv_flags(s));
        let (rc, err) = match feed {
            Feed::Pipe => {
                let (rc, _, err) = candidate.run(&argv, &iptables_atomic::text::to_bytes(s.text));
                (rc, err)
            }
            Feed::Path => {
                let file = TempFile::new(s.text);
                argv.push(file.0.to_str().expect("UTF-8 temp path"));
                let (rc, _, err) = candidate.run(&argv, b"");
                (rc, err)
            }
            Feed::StdinFile => {
                let file = TempFile::new(s.text);
                let out = Command::new("ip")
                    .args(["netns", "exec", &candidate.name])
                    .args(&argv)
                    .stdin(std::fs::File::open(&file.0).expect("open temp file"))
                    .output()
                    .expect("run the command");
                (
                    out.status.code().unwrap_or(-1),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                )
            }
        };
        if rc != 0 {
            return Err(format!(
                "step {i}: {bin} ({feed:?}) exited with {rc}: {err}"
            ));
        }
    }
    let mut names: Vec<String> = steps.iter().flat_map(|s| tables_in(s.text)).collect();
    names.sort();
    names.dedup();
    for t in &names {
        let (ri, rb) = reference.raw(family, t, counters);
        let (ci, cb) = candidate.raw(family, t, counters);
        if ri != ci {
            return Err(format!(
                "table {t}: GET_INFO differs:\n  reference {ri:?}\n  candidate {ci:?}"
            ));
        }
        if rb != cb {
            let at = rb
                .iter()
                .zip(&cb)
                .position(|(a, b)| a != b)
                .unwrap_or(rb.len().min(cb.len()));
            return Err(format!(
                "table {t}: entry bytes differ at offset {at} (sizes {} / {})",
                rb.len(),
                cb.len()
            ));
        }
    }
    let save = |ns: &Netns| {
        let mut argv = vec![legacy(family, "save")];
        if counters {
            argv.push("-c");
        }
        strip_comments(&ns.run(&argv, b"").1)
    };
    let (rs, cs) = (save(&reference), save(&candidate));
    if rs != cs {
        return Err(format!(
            "iptables-legacy-save differs:\n--- reference\n{rs}--- candidate\n{cs}"
        ));
    }
    let ours = iptables_atomic::save(family, Some(&candidate.name), None, counters)
        .map_err(|e| format!("our save failed: {e}"))?;
    if strip_comments(&ours) != cs {
        return Err(format!(
            "iptables-atomic save differs from iptables-legacy-save:\n--- legacy\n{cs}--- ours\n{}",
            strip_comments(&ours)
        ));
    }
    Ok(())
}

/// `-n` and `-c` as a step asks for them.
fn argv_flags(s: &Step) -> Vec<&'static str> {
    let mut v = Vec::new();
    if s.noflush {
        v.push("-n");
    }
    if s.counters {
        v.push("-c");
    }
    v
}

/// The repository's own rule files.
pub fn repo_rules(dir: &str) -> Vec<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    v.sort();
    v
}

/// ../shared/corpus next to the repository, when it is there.
pub fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    p.is_dir().then_some(p)
}

/// A rule file as text: bytes that are not UTF-8 (a Latin-1 comment) are
/// carried as iptables_atomic::text escapes, as the CLI reads files.
#[allow(dead_code)]
pub fn read_rules(path: &std::path::Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    iptables_atomic::text::from_bytes(&bytes).into_owned()
}

/// A small deterministic generator (SplitMix64) for tests that need
/// reproducible random choices without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}
