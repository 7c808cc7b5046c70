//! Helper of the benchmark report (`scripts/bench-report`): writes the
//! generated rulesets and runs one in-process case once, so the report can
//! measure its peak RSS as a process of its own.
//!
//! ```text
//! bench_case gen SIZE [nat]          print the ruleset of SIZE rules (nat: one nat table)
//! bench_case library FILE NETNS      Restorer::restore_str, default mode
//! bench_case library-check-first FILE NETNS   every table checked first
//! bench_case libiptc FILE NETNS      (with --features libiptc-bench)
//! ```

#[path = "../benches/common/mod.rs"]
mod common;

use iptables_atomic::{Family, Precheck, Restorer};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> &str {
        args.get(i).map(String::as_str).unwrap_or_else(|| {
            eprintln!(
                "usage: bench_case gen SIZE [nat] | library|library-check-first|libiptc FILE NETNS"
            );
            std::process::exit(2)
        })
    };
    match arg(0) {
        "gen" => {
            let n: usize = arg(1).parse().expect("SIZE is a number");
            let text = if args.get(2).map(String::as_str) == Some("nat") {
                common::nat_table(n)
            } else {
                common::ruleset(n)
            };
            print!("{text}");
        }
        mode @ ("library" | "library-check-first") => {
            let text = std::fs::read_to_string(arg(1)).expect("readable FILE");
            Restorer::new(Family::V4)
                .netns(arg(2))
                .precheck_mode(if mode == "library-check-first" {
                    Precheck::Always
                } else {
                    Precheck::Auto
                })
                .restore_str(&text)
                .expect("restore");
        }
        #[cfg(feature = "libiptc-bench")]
        "libiptc" => {
            let text = std::fs::read_to_string(arg(1)).expect("readable FILE");
            let _ns = iptables_atomic::kernel::NetnsGuard::enter(arg(2)).expect("netns");
            let prepared = common::libiptc::prepare(&text).expect("prepare");
            common::libiptc::restore(&prepared).expect("libiptc restore");
        }
        other => {
            eprintln!("bench_case: unknown mode `{other}'");
            std::process::exit(2)
        }
    }
}
