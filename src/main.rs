//! The `iptables-atomic` command: a thin layer over the library.

mod cli_alloc;

/// glibc's allocator for small inputs, mimalloc for large ones (see
/// cli_alloc). The library leaves the choice to its user.
#[global_allocator]
static ALLOC: cli_alloc::Switching = cli_alloc::Switching;

/// Inputs from this size on are parsed with mimalloc.
const LARGE_INPUT: usize = 64 * 1024;

use std::io::Read;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use iptables_atomic::applier::{self, Applier, ApplyReport, Input};
use iptables_atomic::apply::guard::Flow;
use iptables_atomic::{Family, Restorer};

/// Install iptables rules atomically, in-process: the iptables-restore
/// format in, one IPT_SO_SET_REPLACE per table out, byte-identical to
/// iptables-legacy-restore.
#[derive(Parser, Debug)]
#[command(name = "iptables-atomic", version, about, long_about = None, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

const RESTORE_EXAMPLES: &str = "\
EXAMPLES:
  Check a file (build every table on the live ones, let the kernel check them
  in a scratch namespace) without changing anything:
      iptables-atomic restore -t -v /etc/iptables/rules.v4
  Install it (every table in the file, each swapped in atomically):
      iptables-atomic restore /etc/iptables/rules.v4
  Add to what is installed, keeping the counters of untouched rules:
      iptables-atomic restore -n < kube-proxy-partial.rules
  Work inside a network namespace made with `ip netns add lab`:
      iptables-atomic restore --netns lab rules.v4
  IPv6:
      iptables-atomic restore --family 6 /etc/iptables/rules.v6

FILE FORMAT:
  The iptables-restore format: `*TABLE`, `:CHAIN POLICY [packets:bytes]` (`-`
  for user chains), rule commands (-A -I -D -R -N -X -F -Z -P -E), `COMMIT`.
  Lines starting with `#` are comments. Double quotes group words
  (`--log-prefix \"Denied: \"`), backslash escapes inside them.

";

const SAVE_EXAMPLES: &str = "\
EXAMPLES:
  Every table, as iptables-legacy-save prints it:
      iptables-atomic save
  One table with rule counters, from a namespace:
      iptables-atomic save -c -t filter --netns lab

";

const APPLY_HELP: &str = "\
EXIT STATUS (apply):
  0  applied, or nothing to change (with --detailed-exitcodes: 0 unchanged, 10 changed)
  1  the kernel refused a table (nothing stays changed), or another failure
  2  a file is malformed (file:line:column)
  3  the lockout guard refused: a protected connection may be dropped (--force)
  4  the xtables lock could not be taken

EXAMPLES:
  See what would change:
      iptables-atomic diff rules.v4 rules.v6
  Apply both families as one change; roll back unless confirmed in 60 s:
      iptables-atomic apply --confirm 60 rules.v4 rules.v6 && iptables-atomic confirm
";

const EXIT_CODES: &str = "\
EXIT STATUS:
  0  success
  1  a command could not be carried out, or the kernel refused the table
  2  the input is malformed (the message names file:line:column)
  4  the xtables lock could not be taken

Nothing is installed unless the whole input parses and every table builds.
Each table is then swapped in atomically; if the kernel refuses one, the
tables already replaced in that run are put back as they were and the
refused rule is named by its line (found in a scratch namespace). Tables that
do not exist yet are checked in a scratch namespace first and installed last,
so a refusal never leaves a new table behind (x_tables cannot delete one).
With --check-first every table is checked that way before any is touched.";

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Read iptables-restore text (FILE, or standard input) and install it.
    ///
    /// Every table named in the input is parsed and built first; then each is
    /// swapped in with one setsockopt(IPT_SO_SET_REPLACE). Tables the input
    /// does not name are not touched.
    #[command(after_help = EXIT_CODES, after_long_help = format!("{RESTORE_EXAMPLES}{EXIT_CODES}"))]
    Restore {
        /// The rules file; standard input when absent.
        file: Option<String>,
        /// Restore the packet and byte counters given in the input.
        #[arg(short = 'c', long)]
        counters: bool,
        /// Do not flush the tables first: add to what is installed.
        #[arg(short = 'n', long)]
        noflush: bool,
        /// Test only: build every table and have the kernel check it in a
        /// private scratch network namespace; install nothing.
        #[arg(short = 't', long)]
        test: bool,
        /// Have the kernel check every table in a private scratch network
        /// namespace before touching any live one (by default only tables that
        /// do not exist yet are; a refused existing table is put back with the
        /// others). Costs a second kernel load of each table.
        #[arg(long = "check-first", conflicts_with = "test")]
        check_first: bool,
        /// Print what was installed.
        #[arg(short = 'v', long)]
        verbose: bool,
        /// Wait at most SECS for the xtables lock (default: wait without limit).
        #[arg(short = 'w', long, value_name = "SECS", num_args = 0..=1, default_missing_value = "-1")]
        wait: Option<i64>,
        /// Accepted for compatibility with iptables-restore; ignored.
        #[arg(short = 'W', long = "wait-interval", value_name = "USECS", num_args = 0..=1, hide = true)]
        wait_interval: Option<Option<String>>,
        /// Accepted for compatibility with iptables-restore; ignored.
        #[arg(short = 'M', long = "modprobe", value_name = "COMMAND", hide = true)]
        modprobe: Option<String>,
        /// Restore only this table; skip the others in the input.
        #[arg(short = 'T', long = "table", value_name = "TABLE")]
        table: Option<String>,
        /// Address family of the input: 4 (iptables) or 6 (ip6tables). Default: 4,
        /// or 6 when the program is called as ip6tables-atomic.
        #[arg(long, value_name = "4|6", value_parser = parse_family)]
        family: Option<Family>,
        /// Same as --family 6.
        #[arg(short = '6', long = "ipv6", conflicts_with = "family")]
        ipv6: bool,
        /// Work in this network namespace (name under /run/netns, or a path).
        #[arg(long, value_name = "NAME|PATH")]
        netns: Option<String>,
    },
    /// Print the installed tables as iptables-save text.
    #[command(after_help = EXIT_CODES, after_long_help = format!("{SAVE_EXAMPLES}{EXIT_CODES}"))]
    Save {
        /// Only this table.
        #[arg(short = 't', long = "table", value_name = "TABLE")]
        table: Option<String>,
        /// Show rule counters as [packets:bytes].
        #[arg(short = 'c', long)]
        counters: bool,
        /// Address family: 4 or 6. Default: 4, or 6 when the program is called
        /// as ip6tables-atomic.
        #[arg(long, value_name = "4|6", value_parser = parse_family)]
        family: Option<Family>,
        /// Same as --family 6.
        #[arg(short = '6', long = "ipv6", conflicts_with = "family")]
        ipv6: bool,
        /// Read from this network namespace (name under /run/netns, or a path).
        #[arg(long, value_name = "NAME|PATH")]
        netns: Option<String>,
    },
    /// Make the firewall match FILEs, safely: diff first, keep counters of
    /// unchanged rules, refuse a change that would cut off this SSH session,
    /// check every table in the kernel before touching the live ones, and
    /// optionally roll back unless confirmed.
    ///
    /// Each FILE describes whole tables in the iptables-restore format. A file
    /// whose name contains "6" (rules.v6, ip6tables.rules) is IPv6, others IPv4,
    /// unless --family says otherwise; all files form one transaction.
    #[command(after_help = APPLY_HELP)]
    Apply {
        /// Rules files (iptables-restore format).
        #[arg(required = true)]
        files: Vec<String>,
        /// Family of every FILE (default: from the file name).
        #[arg(long, value_name = "4|6", value_parser = parse_family)]
        family: Option<Family>,
        /// Another flow that must survive, e.g. tcp:198.51.100.7:50022->203.0.113.1:22
        /// (repeatable). The SSH session in $SSH_CONNECTION is always protected.
        #[arg(long, value_name = "PROTO:SRC:SPORT->DST:DPORT")]
        keep: Vec<String>,
        /// Apply even if the lockout guard says a protected flow may be dropped.
        #[arg(long)]
        force: bool,
        /// Roll back by itself after SECS unless `iptables-atomic confirm` runs.
        #[arg(long, value_name = "SECS")]
        confirm: Option<u64>,
        /// Report as JSON on standard output.
        #[arg(long)]
        json: bool,
        /// Exit 0 when nothing changed and 10 when tables changed.
        #[arg(long)]
        detailed_exitcodes: bool,
        /// Wait at most SECS for the xtables lock.
        #[arg(short = 'w', long, value_name = "SECS")]
        wait: Option<u64>,
        /// Work in this network namespace (name under /run/netns, or a path).
        #[arg(long, value_name = "NAME|PATH")]
        netns: Option<String>,
    },
    /// Show what `apply FILE…` would change, in iptables-save syntax; exit 0
    /// when the live tables already match, 1 when they differ.
    Diff {
        /// Rules files.
        #[arg(required = true)]
        files: Vec<String>,
        /// Family of every FILE (default: from the file name).
        #[arg(long, value_name = "4|6", value_parser = parse_family)]
        family: Option<Family>,
        /// Work in this network namespace.
        #[arg(long, value_name = "NAME|PATH")]
        netns: Option<String>,
    },
    /// Keep the tables of an `apply --confirm` that is waiting.
    Confirm {
        /// The network namespace of that apply.
        #[arg(long, value_name = "NAME|PATH")]
        netns: Option<String>,
    },
    /// Put back, now, the tables an `apply --confirm` replaced.
    Rollback {
        /// The network namespace of that apply.
        #[arg(long, value_name = "NAME|PATH")]
        netns: Option<String>,
    },
    /// (internal) The detached process that rolls back at the deadline.
    #[command(hide = true)]
    Guard {
        #[arg(long)]
        netns: Option<String>,
        #[arg(long)]
        ready: String,
    },
}

/// IPv6 when the program was started as `ip6tables-atomic` (a symlink).
fn default_family() -> Family {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    if name.starts_with("ip6tables") {
        Family::V6
    } else {
        Family::V4
    }
}

fn pick_family(family: Option<Family>, ipv6: bool) -> Family {
    if ipv6 {
        return Family::V6;
    }
    family.unwrap_or_else(default_family)
}

fn parse_family(s: &str) -> Result<Family, String> {
    match s {
        "4" | "ipv4" => Ok(Family::V4),
        "6" | "ipv6" => Ok(Family::V6),
        _ => Err(format!("`{s}': expected 4 or 6")),
    }
}

/// The text of an input file: from here on allocated with mimalloc when
/// it is large. Bytes that are not UTF-8 pass through as iptables passes
/// them (a Latin-1 comment loads); see iptables_atomic::text.
fn input_text(bytes: Vec<u8>) -> String {
    if bytes.len() >= LARGE_INPUT {
        cli_alloc::use_mimalloc(bytes.len() as u64);
    }
    iptables_atomic::text::from_vec(bytes)
}

fn read_inputs(
    files: &[String],
    family: Option<Family>,
) -> Result<Vec<Input>, iptables_atomic::Error> {
    files
        .iter()
        .map(|f| {
            let text = std::fs::read(f)
                .map_err(|e| iptables_atomic::Error::Other(format!("Can't open {f}: {e}")))?;
            let text = input_text(text);
            let base = std::path::Path::new(f)
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let family = family.unwrap_or(if base.contains('6') {
                Family::V6
            } else {
                Family::V4
            });
            Ok(Input {
                family,
                name: f.clone(),
                text,
            })
        })
        .collect()
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn report_json(r: &ApplyReport) -> String {
    let tables: Vec<String> = r
        .tables
        .iter()
        .map(|(f, t, c, n)| {
            format!(
                "{{\"family\":{},\"table\":{},\"changed\":{c},\"entries\":{n}}}",
                if *f == Family::V4 { 4 } else { 6 },
                json_str(t)
            )
        })
        .collect();
    let warnings: Vec<String> = r.warnings.iter().map(|w| json_str(w)).collect();
    let deadline = r
        .confirm_deadline
        .and_then(|d| d.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs().to_string())
        .unwrap_or_else(|| "null".into());
    format!(
        "{{\"changed\":{},\"tables\":[{}],\"diff\":{},\"warnings\":[{}],\"confirm_deadline\":{deadline}}}",
        r.changed,
        tables.join(","),
        json_str(&r.diff),
        warnings.join(",")
    )
}

/// Starts the detached guard that rolls back at the deadline, and waits
/// until it has left our session (so killing our process group or closing
/// the terminal cannot stop it).
fn spawn_guard(netns: Option<&str>) -> Result<(), iptables_atomic::Error> {
    let other = |m: String| iptables_atomic::Error::Other(m);
    let ready = std::path::Path::new(iptables_atomic::apply::confirm::STATE_ROOT)
        .join(format!("guard-ready-{}", std::process::id()));
    let _ = std::fs::remove_file(&ready);
    let exe =
        std::env::current_exe().map_err(|e| other(format!("cannot find my own program: {e}")))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("guard").arg("--ready").arg(&ready);
    if let Some(ns) = netns {
        cmd.arg("--netns").arg(ns);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd.spawn()
        .map_err(|e| other(format!("cannot start the rollback guard: {e}")))?;
    for _ in 0..500 {
        if ready.exists() {
            let _ = std::fs::remove_file(&ready);
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(other(
        "the rollback guard did not start; roll back by hand with `iptables-atomic rollback`"
            .into(),
    ))
}

fn run(cli: Cli) -> Result<u8, iptables_atomic::Error> {
    match cli.command {
        Cmd::Restore {
            file,
            counters,
            noflush,
            test,
            check_first,
            verbose,
            wait,
            wait_interval,
            modprobe,
            table,
            family,
            ipv6,
            netns,
        } => {
            let _ = (wait_interval, modprobe);
            // A regular file (named, or as standard input) is mapped by the
            // library; a pipe is read here.
            let (input, name) = match &file {
                Some(f) if f != "-" => (
                    std::fs::File::open(f).map_err(|e| {
                        iptables_atomic::Error::Other(format!("Can't open {f}: {e}"))
                    })?,
                    f.clone(),
                ),
                _ => (
                    std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned().map_err(
                        |e| {
                            iptables_atomic::Error::Other(format!(
                                "cannot read standard input: {e}"
                            ))
                        },
                    )?),
                    "<stdin>".to_string(),
                ),
            };
            let text = match input.metadata() {
                Ok(m) if m.is_file() => {
                    if m.len() >= LARGE_INPUT as u64 {
                        cli_alloc::use_mimalloc(m.len());
                    }
                    None
                }
                _ => {
                    let mut v = Vec::new();
                    (&input).read_to_end(&mut v).map_err(|e| {
                        iptables_atomic::Error::Other(format!("cannot read {name}: {e}"))
                    })?;
                    Some(input_text(v))
                }
            };
            let wait = match wait {
                None | Some(-1) => None,
                Some(s) if s >= 0 => Some(Duration::from_secs(s as u64)),
                Some(s) => {
                    return Err(iptables_atomic::Error::Other(format!(
                        "wait seconds must not be negative: {s}"
                    )))
                }
            };
            let mut r = Restorer::new(pick_family(family, ipv6))
                .counters(counters)
                .noflush(noflush)
                .test(test)
                .precheck_mode(if check_first {
                    iptables_atomic::Precheck::Always
                } else {
                    iptables_atomic::Precheck::Auto
                })
                .wait(wait)
                .only_table(table)
                .file_name(name);
            if let Some(ns) = netns {
                r = r.netns(ns);
            }
            let report = match &text {
                Some(text) => r.restore_str(text)?,
                None => r.restore_file(&input)?,
            };
            for w in &report.warnings {
                err_line(&format!("iptables-atomic: warning: {w}"));
            }
            for (table, chain, line) in &report.unchecked {
                eprintln!(
                    "iptables-atomic: note: {}rule in table `{table}' chain `{chain}' uses an object outside the tables (ipset, nfacct, timeout policy); the kernel check could not cover it",
                    line.map(|l| format!("line {l}: ")).unwrap_or_default()
                );
            }
            if verbose {
                for t in &report.tables {
                    eprintln!(
                        "{} table `{}': {} entries, {} bytes{}",
                        if report.test_only {
                            "would install"
                        } else {
                            "installed"
                        },
                        t.table,
                        t.entries,
                        t.bytes,
                        if t.retries > 0 {
                            format!(" ({} retries)", t.retries)
                        } else {
                            String::new()
                        }
                    );
                }
            }
            Ok(0)
        }
        Cmd::Save {
            table,
            counters,
            family,
            ipv6,
            netns,
        } => {
            let family = pick_family(family, ipv6);
            let text = iptables_atomic::save(family, netns.as_deref(), table.as_deref(), counters)?;
            out(&text);
            Ok(0)
        }
        Cmd::Apply {
            files,
            family,
            keep,
            force,
            confirm,
            json,
            detailed_exitcodes,
            wait,
            netns,
        } => {
            let inputs = read_inputs(&files, family)?;
            let mut flows = Vec::new();
            if let Ok(v) = std::env::var("SSH_CONNECTION") {
                flows.extend(Flow::from_ssh_connection(&v));
            }
            for k in &keep {
                flows.push(
                    Flow::parse(k)
                        .map_err(|e| iptables_atomic::Error::Other(format!("--keep {k}: {e}")))?,
                );
            }
            let report = Applier::new(inputs)
                .netns(netns.clone())
                .wait(wait.map(Duration::from_secs))
                .force(force)
                .keep(flows)
                .confirm(confirm.map(Duration::from_secs))
                .run()?;
            if report.confirm_deadline.is_some() {
                spawn_guard(netns.as_deref())?;
            }
            for w in &report.warnings {
                err_line(&format!("iptables-atomic: warning: {w}"));
            }
            if json {
                println!("{}", report_json(&report));
            } else if report.changed {
                out(&report.diff);
                if let Some(secs) = confirm {
                    eprintln!(
                        "iptables-atomic: applied; run `iptables-atomic confirm{}` within {secs} s or the previous tables come back",
                        netns.as_deref().map(|n| format!(" --netns {n}")).unwrap_or_default()
                    );
                }
            } else {
                eprintln!("iptables-atomic: nothing to change");
            }
            Ok(if detailed_exitcodes && report.changed {
                10
            } else {
                0
            })
        }
        Cmd::Diff {
            files,
            family,
            netns,
        } => {
            let inputs = read_inputs(&files, family)?;
            let report = Applier::new(inputs)
                .netns(netns)
                .dry_run(true)
                .force(true)
                .run()?;
            out(&report.diff);
            Ok(u8::from(report.changed))
        }
        Cmd::Confirm { netns } => {
            if applier::confirm(netns.as_deref())? {
                eprintln!("iptables-atomic: confirmed; the new tables stay");
                Ok(0)
            } else {
                Err(iptables_atomic::Error::Other(
                    "no apply is waiting for confirmation in this network namespace".into(),
                ))
            }
        }
        Cmd::Rollback { netns } => {
            let tables = applier::rollback(netns.as_deref())?;
            let names: Vec<String> = tables
                .iter()
                .map(|(f, t)| format!("{t}{}", if *f == Family::V6 { " (IPv6)" } else { "" }))
                .collect();
            eprintln!("iptables-atomic: rolled back {}", names.join(", "));
            Ok(0)
        }
        Cmd::Guard { netns, ready } => {
            // Leave the caller's session and process group first: a hang-up or a
            // kill of the caller's group must not stop the rollback.
            nix::unistd::setsid()
                .map_err(|e| iptables_atomic::Error::Other(format!("setsid: {e}")))?;
            std::fs::write(&ready, format!("{}\n", std::process::id()))
                .map_err(|e| iptables_atomic::Error::Other(format!("cannot write {ready}: {e}")))?;
            applier::guard(netns.as_deref())?;
            Ok(0)
        }
    }
}

/// Writes text to standard output as the bytes it stands for (bytes that
/// are not UTF-8, read from a file or the kernel, go out unchanged).
fn out(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    // A closed pipe (`save | head`) is not an error worth a message.
    let _ = o.write_all(&iptables_atomic::text::to_bytes(text));
    let _ = o.flush();
}

/// One line to standard error, as the bytes it stands for.
fn err_line(text: &str) {
    use std::io::Write;
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(&iptables_atomic::text::to_bytes(text));
    let _ = e.write_all(b"\n");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            err_line(&format!("iptables-atomic: {e}"));
            e.exit_code() as u8
        }
    };
    cli_alloc::exit(code)
}
