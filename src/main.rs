//! The `iptables-atomic` command: a thin layer over the library.

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
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

const EXIT_CODES: &str = "\
EXIT STATUS:
  0  success
  1  a command could not be carried out, or the kernel refused the table
  2  the input is malformed (the message names file:line:column)
  4  the xtables lock could not be taken

Nothing is installed unless the whole input parses, every table builds and
the kernel accepts every table in a scratch namespace; if a table is refused
anyway, the tables already replaced in that run are put back as they were.";

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

fn run(cli: Cli) -> Result<(), iptables_atomic::Error> {
    match cli.command {
        Cmd::Restore {
            file,
            counters,
            noflush,
            test,
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
            let (text, name) = match &file {
                Some(f) if f != "-" => (
                    std::fs::read(f).map_err(|e| {
                        iptables_atomic::Error::Other(format!("Can't open {f}: {e}"))
                    })?,
                    f.clone(),
                ),
                _ => {
                    let mut v = Vec::new();
                    std::io::stdin().read_to_end(&mut v).map_err(|e| {
                        iptables_atomic::Error::Other(format!("cannot read standard input: {e}"))
                    })?;
                    (v, "<stdin>".to_string())
                }
            };
            let text = String::from_utf8(text).map_err(|e| {
                let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
                let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
                let col = upto.len()
                    - upto
                        .iter()
                        .rposition(|&b| b == b'\n')
                        .map(|p| p + 1)
                        .unwrap_or(0)
                    + 1;
                iptables_atomic::Error::Parse {
                    at: iptables_atomic::Location {
                        file: name.clone(),
                        line,
                        column: col,
                    },
                    message: "the input is not UTF-8 text (binary data?)".into(),
                }
            })?;
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
                .wait(wait)
                .only_table(table)
                .file_name(name);
            if let Some(ns) = netns {
                r = r.netns(ns);
            }
            let report = r.restore_str(&text)?;
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
            Ok(())
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
            print!("{text}");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iptables-atomic: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
