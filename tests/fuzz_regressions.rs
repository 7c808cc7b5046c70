//! Replays every input under fuzz/regressions/ (and the repository's rule
//! files, the fuzzers' seeds) through the fuzz entry points.

use iptables_atomic::fuzzing::{decode_input, direct_input, parse_input, round_trip};

fn files(dir: &str) -> Vec<Vec<u8>> {
    let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut v: Vec<_> = std::fs::read_dir(&d)
        .map(|r| {
            r.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.into_iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn regressions_and_seeds_replay_cleanly() {
    let mut n = 0;
    for data in files("fuzz/regressions/parse") {
        parse_input(&data);
        n += 1;
    }
    for data in files("fuzz/regressions/decode") {
        decode_input(&data);
        n += 1;
    }
    for data in files("fuzz/regressions/round_trip") {
        round_trip(&data);
        n += 1;
    }
    for data in files("fuzz/regressions/direct") {
        direct_input(&data);
        n += 1;
    }
    // Seeds: our rule files, as IPv4 (first byte even) and IPv6 (odd).
    for (dir, tag) in [("tests/rules", 0u8), ("tests/rules6", 1u8)] {
        for text in files(dir) {
            if String::from_utf8_lossy(&text).contains("# setup: ") {
                continue; // needs kernel objects
            }
            let mut data = vec![tag];
            data.extend_from_slice(&text);
            parse_input(&data);
            round_trip(&data);
            n += 1;
        }
    }
    assert!(n > 50, "only {n} inputs replayed");
}
