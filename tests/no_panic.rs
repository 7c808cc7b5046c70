//! No input makes the parser, the decoder or the writer panic.

use iptables_atomic::blob::decode_table;
use iptables_atomic::ext::AssumeLatest;
use iptables_atomic::restore::{parse, RestoreOptions};
use iptables_atomic::Family;
use proptest::prelude::*;

const WORDS: &[&str] = &[
    "*filter",
    "*nat",
    "COMMIT",
    ":INPUT",
    ":x",
    "ACCEPT",
    "DROP",
    "-",
    "[0:0]",
    "-A",
    "-I",
    "-D",
    "-R",
    "-N",
    "-X",
    "-F",
    "-Z",
    "-P",
    "-E",
    "INPUT",
    "x",
    "-p",
    "tcp",
    "udp",
    "icmp",
    "--dport",
    "--sport",
    "22",
    "1:2",
    "!",
    "-s",
    "-d",
    "1.2.3.4/24",
    "-j",
    "-g",
    "-m",
    "tcp",
    "--tcp-flags",
    "SYN",
    "--syn",
    "-i",
    "eth+",
    "-o",
    "\"",
    "\\",
    "\"a b\"",
    "-c",
    "1",
    "--icmp-type",
    "any",
    "-f",
    "-4",
    "-6",
    "--",
    "=",
    "--dport=1",
    "#",
    "\n",
    " ",
    "\t",
];

fn line() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(WORDS), 0..10).prop_map(|w| w.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parser_never_panics_on_bytes(s in ".{0,200}") {
        let _ = parse(&s, &RestoreOptions::new(Family::V4), &AssumeLatest);
    }

    #[test]
    fn parser_never_panics_on_rule_like_lines(lines in prop::collection::vec(line(), 0..12)) {
        let text = lines.join("\n");
        let _ = parse(&text, &RestoreOptions::new(Family::V4), &AssumeLatest);
        let _ = parse(&format!("*filter\n{text}\nCOMMIT\n"), &RestoreOptions::new(Family::V4), &AssumeLatest);
    }

    #[test]
    fn decoder_never_panics(blob in prop::collection::vec(any::<u8>(), 0..600), hooks in any::<[u32; 5]>(), under in any::<[u32; 5]>()) {
        let _ = decode_table(Family::V4, "filter", 0x0e, hooks, under, &blob);
        let _ = decode_table(Family::V6, "filter", 0x1f, hooks, under, &blob);
    }
}

/// Tables built from the repository's rule files, encoded.
/// (family, entries, hook_entry, underflow, valid_hooks, table name)
type Encoded = (Family, Vec<u8>, [u32; 5], [u32; 5], u32, String);

fn encoded_tables() -> Vec<Encoded> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules");
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    for p in paths {
        let text = iptables_atomic::text::from_bytes(&std::fs::read(&p).unwrap()).into_owned();
        if text.lines().any(|l| l.starts_with("# setup: ")) {
            // Needs kernel objects (ipsets …) that exist only in the parity
            // test's namespaces.
            continue;
        }
        let family = if p.to_string_lossy().contains("ipv6") {
            Family::V6
        } else {
            Family::V4
        };
        let script = parse(&text, &RestoreOptions::new(family), &AssumeLatest)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        for name in iptables_atomic::apply::table_order(&script) {
            let t = iptables_atomic::apply::build_table(
                &script,
                false,
                iptables_atomic::Table::new(&name).unwrap(),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let enc = iptables_atomic::blob::encode_table(family, &t).unwrap();
            out.push((
                family,
                enc.entries().to_vec(),
                enc.hook_entry,
                enc.underflow,
                enc.valid_hooks,
                name,
            ));
        }
    }
    out
}

#[test]
fn encoded_tables_decode_and_save_back_to_the_same_text() {
    for (family, blob, hooks, under, valid, name) in encoded_tables() {
        let t = decode_table(family, &name, valid, hooks, under, &blob).unwrap();
        let again = iptables_atomic::blob::encode_table(family, &t).unwrap();
        assert_eq!(
            again.entries(),
            blob,
            "table {name}: decode then encode changes the bytes"
        );
        iptables_atomic::restore::writer::save_table(family, &t, true).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn mutated_real_blobs_never_panic(pick in any::<prop::sample::Index>(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        static TABLES: std::sync::OnceLock<Vec<Encoded>> = std::sync::OnceLock::new();
        let tables = TABLES.get_or_init(encoded_tables);
        let (family, mut blob, hooks, under, valid, name) = tables[pick.index(tables.len())].clone();
        for (at, v) in flips {
            let i = at.index(blob.len());
            blob[i] = v;
        }
        if let Ok(t) = decode_table(family, &name, valid, hooks, under, &blob) {
            let _ = iptables_atomic::restore::writer::save_table(family, &t, true);
        }
    }
}
