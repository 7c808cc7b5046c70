//! Entry points shared by the fuzz targets (`fuzz/`) and the test that
//! replays their regressions (`tests/fuzz_regressions.rs`). Each takes
//! arbitrary bytes; an error is fine, a panic is a bug.
#![doc(hidden)]

use crate::apply::{build_table, table_order};
use crate::blob::{decode_table, encode_table};
use crate::ext::AssumeLatest;
use crate::restore::writer::save_table;
use crate::restore::{parse, RestoreOptions};
use crate::rules::{Family, Table};

fn family_of(data: &[u8]) -> (Family, &[u8]) {
    match data.split_first() {
        Some((b, rest)) if b & 1 == 1 => (Family::V6, rest),
        Some((_, rest)) => (Family::V4, rest),
        None => (Family::V4, data),
    }
}

/// Rule lines in a plain file, for the direct path (first byte as for
/// [`parse_input`]; the rest: the lines after a fixed head that declares
/// every built-in chain of `filter` and three user chains).
pub fn direct_input(data: &[u8]) {
    let (head, rest) = data.split_at(data.len().min(1));
    let mut text = head.to_vec();
    text.extend_from_slice(
        b"*filter\n:INPUT ACCEPT [1:2]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
          :A - [0:0]\n:B - [0:0]\n:C - [0:0]\n",
    );
    text.extend_from_slice(rest);
    text.extend_from_slice(b"\nCOMMIT\n");
    parse_input(&text);
}

/// The restore parser on any input (first byte: odd = IPv6; bit 1: `-c`),
/// and the direct path against it: whatever the direct path encodes, the
/// model path must accept and encode to the same tables.
pub fn parse_input(data: &[u8]) {
    let (family, rest) = family_of(data);
    let opts = RestoreOptions {
        counters: data.first().is_some_and(|b| b & 2 != 0),
        ..RestoreOptions::new(family)
    };
    let text = crate::text::from_bytes(rest);
    let direct = crate::restore::encode_text(&text, &opts, &AssumeLatest);
    let mut model = Some(Vec::new());
    match parse(&text, &opts, &AssumeLatest) {
        Ok(script) => {
            for name in table_order(&script) {
                let encoded = Table::new(&name)
                    .and_then(|t| build_table(&script, false, t).ok())
                    .and_then(|t| encode_table(family, &t).ok());
                match (encoded, model.as_mut()) {
                    (Some(e), Some(m)) => m.push(e),
                    _ => model = None,
                }
            }
        }
        Err(_) => model = None,
    }
    if let Some(direct) = direct {
        let model = model.expect("the direct path took an input the model path refuses");
        assert!(direct == model, "the direct path encodes differently");
    }
}

/// The blob decoder and the save writer on kernel-shaped bytes: the first
/// bytes choose the family and the hook layout, the rest is the entry blob.
pub fn decode_input(data: &[u8]) {
    let (family, rest) = family_of(data);
    let (hooks, blob) = rest.split_at(rest.len().min(40));
    let word = |i: usize| -> u32 {
        let b = hooks.get(i * 4..i * 4 + 4).unwrap_or(&[0, 0, 0, 0]);
        u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) % 4096
    };
    let hook_entry = [word(0), word(1), word(2), word(3), word(4)];
    let underflow = [word(5), word(6), word(7), word(8), word(9)];
    if let Ok(t) = decode_table(family, "filter", 0x1f, hook_entry, underflow, blob) {
        let _ = save_table(family, &t, true);
        let _ = encode_table(family, &t);
    }
}

/// Parse → encode → decode → save, then the same again from that text: the
/// second save must print the same text (save text is a fixed point), and
/// decode + encode must give back the blob every time. Panics (a bug) when
/// either fails. Two things iptables' own save text does are allowed: it may
/// lose what it does not print (`! --ahspi 0:4294967295` prints nothing), and
/// it may print a value its parser refuses (`-m cluster --cluster-local-node
/// 32` saves as `--cluster-local-nodemask 0x80000000`, above the mask's 1-32
/// range), so blobs are not compared across the text and a save text that
/// does not load again is not a failure. A third: some of iptables' printers
/// print text that loads back as a different rule, and iptables-legacy-save
/// prints the very same text (checked in a namespace), so those lines may
/// change once, after which the text must be stable: RATEEST prints the
/// averaging time computed from the interval the kernel keeps, not the one
/// its parser used (`--rateest-interval 400` is kept as 250ms, the ewmalog
/// prints as 1111.5s and loads back as 1024.0s); ipcomp prints nothing for
/// the full SPI range (`--ipcompspi 0:` saves as `-m ipcomp`, which loads
/// as SPI 0 only); time accepts day 0 in `--monthdays` (a bit the kernel
/// never looks at) and does not print it (`! --monthdays 0` saves as all
/// 31 days, which loads as "every day" and then prints nothing).
pub fn round_trip(data: &[u8]) {
    let (family, rest) = family_of(data);
    let text = crate::text::from_bytes(rest);
    let Some(first) = save_via_blob(family, &text) else {
        return;
    };
    let Some(second) = save_via_blob(family, &first) else {
        return;
    };
    if first != second {
        let lossy = |l: &&str| {
            l.contains(" -j RATEEST ") || l.contains(" -m ipcomp") || l.contains(" -m time ")
        };
        let a: Vec<&str> = first.lines().filter(|l| !lossy(l)).collect();
        let b: Vec<&str> = second.lines().filter(|l| !lossy(l)).collect();
        assert_eq!(
            a, b,
            "save text is not stable across parse, encode, decode, save"
        );
        let third =
            save_via_blob(family, &second).expect("a save text that loaded once loads again");
        assert_eq!(
            second, third,
            "save text is not stable across parse, encode, decode, save (second round)"
        );
    }
}

/// Parses `text`, builds each table from empty, encodes, decodes and saves.
/// `None` when the text does not parse or build (or cannot be printed).
fn save_via_blob(family: Family, text: &str) -> Option<String> {
    let opts = RestoreOptions::new(family);
    let script = parse(text, &opts, &AssumeLatest).ok()?;
    let mut saved = String::new();
    for name in table_order(&script) {
        let t = build_table(&script, false, Table::new(&name)?).ok()?;
        let enc = encode_table(family, &t).ok()?;
        let back = decode_table(
            family,
            &name,
            enc.valid_hooks,
            enc.hook_entry,
            enc.underflow,
            enc.entries(),
        )
        .expect("our own blob decodes");
        assert_eq!(
            encode_table(family, &back).expect("re-encodes").entries(),
            enc.entries(),
            "decode+encode changed the blob"
        );
        saved.push_str(&save_table(family, &back, false).ok()?);
    }
    Some(saved)
}
