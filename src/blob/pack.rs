//! Entries kept without their zero words: a bitmap of an entry's 8-byte
//! words, then only the words that are not zero. Kernel entries are mostly
//! zeros (empty names, addresses, masks, the room of a comment: about four
//! words in five), so a table or a rule waiting to be laid out or put back
//! takes a fifth of its size.

use super::encode::{CounterSlot, EncodedTable};
use super::layout::REPLACE_ROOM;

/// Appends `entry` to `out` without its all-zero 8-byte words: a bitmap
/// (bit i: word i is kept), then the kept words.
pub(crate) fn pack(entry: &[u8], out: &mut Vec<u8>) {
    let map_at = out.len();
    out.resize(map_at + entry.len().div_ceil(64), 0);
    let whole = entry.len() / 8;
    let tail = &entry[whole * 8..];
    // Eight words (one bitmap byte) at a time, the kept ones gathered
    // first and appended at once.
    let mut kept = [0u8; 64];
    for (m, group) in entry[..whole * 8].chunks(64).enumerate() {
        let mut bits = 0u8;
        let mut n = 0;
        for (k, word) in group.chunks_exact(8).enumerate() {
            if u64::from_ne_bytes(word.try_into().expect("8 bytes")) != 0 {
                bits |= 1 << k;
                kept[n..n + 8].copy_from_slice(word);
                n += 8;
            }
        }
        out[map_at + m] = bits;
        out.extend_from_slice(&kept[..n]);
    }
    if tail.iter().any(|&b| b != 0) {
        let i = whole;
        out[map_at + i / 8] |= 1 << (i % 8);
        out.extend_from_slice(tail);
    }
}

/// Appends the `len` bytes of an entry that [`pack`] wrote at the start of
/// `packed`.
pub(crate) fn unpack(packed: &[u8], len: usize, out: &mut Vec<u8>) {
    let at = out.len();
    out.resize(at + len, 0);
    unpack_into(packed, &mut out[at..]);
}

/// Writes the entry that [`pack`] wrote at the start of `packed` into
/// `out`, its size and zeroed: only the words that are not zero.
pub(crate) fn unpack_into(packed: &[u8], out: &mut [u8]) {
    let len = out.len();
    let (map, mut words) = packed.split_at(len.div_ceil(64));
    for (m, &bits) in map.iter().enumerate() {
        let mut bits = bits;
        while bits != 0 {
            let i = m * 8 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let n = (len - i * 8).min(8);
            out[i * 8..i * 8 + n].copy_from_slice(&words[..n]);
            words = &words[n..];
        }
    }
}

/// A table kept only to be put back (a rollback, a confirm timer): its
/// entries packed. At 100k rules, a 10.6 MB live filter table waits in
/// about 2.5 MB; it is unpacked only if it is put back.
#[derive(Debug, Clone)]
pub struct KeptTable {
    /// The table's name.
    pub name: String,
    valid_hooks: u32,
    hook_entry: [u32; 5],
    underflow: [u32; 5],
    /// Its number of entries.
    pub num_entries: u32,
    counters: Vec<CounterSlot>,
    /// The entries, packed.
    packed: Vec<u8>,
    /// Their size unpacked.
    len: usize,
}

impl KeptTable {
    /// Keeps `table` packed.
    pub fn new(table: EncodedTable) -> KeptTable {
        let entries = table.entries();
        // About a fifth of the entries' size (see the module documentation).
        let mut packed = Vec::with_capacity(entries.len() / 4 + 64);
        pack(entries, &mut packed);
        KeptTable {
            len: entries.len(),
            packed,
            num_entries: table.num_entries,
            valid_hooks: table.valid_hooks,
            hook_entry: table.hook_entry,
            underflow: table.underflow,
            counters: table.counters,
            name: table.name,
        }
    }

    /// The table as it was given, unpacked.
    pub fn table(&self) -> EncodedTable {
        let mut buf = Vec::with_capacity(REPLACE_ROOM + self.len);
        buf.resize(REPLACE_ROOM, 0);
        unpack(&self.packed, self.len, &mut buf);
        let mut t = EncodedTable::with_room(
            &self.name,
            self.valid_hooks,
            self.hook_entry,
            self.underflow,
            self.num_entries,
            buf,
        );
        t.counters = self.counters.clone();
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::AssumeLatest;
    use crate::restore::RestoreOptions;
    use crate::rules::{Counters, Family};

    /// Every table of the repository's rule files, encoded with its
    /// counters and the counters' origins, comes back from a KeptTable as
    /// it was, and kept takes less than half its size.
    #[test]
    fn kept_tables_come_back_as_they_were() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules");
        let mut tables = 0;
        for f in std::fs::read_dir(&dir).expect("tests/rules") {
            let path = f.expect("entry").path();
            if path.extension().is_none_or(|x| x != "rules") {
                continue;
            }
            let text = crate::text::from_vec(std::fs::read(&path).expect("readable"));
            let opts = RestoreOptions {
                counters: true,
                ..RestoreOptions::new(Family::V4)
            };
            let Ok(script) = crate::restore::parse(&text, &opts, &AssumeLatest) else {
                continue;
            };
            for name in crate::apply::table_order(&script) {
                let Some(empty) = crate::rules::Table::new(&name) else {
                    continue;
                };
                let Ok(t) = crate::apply::build_table(&script, false, empty) else {
                    continue;
                };
                let mut enc = crate::blob::encode_table(Family::V4, &t).expect("encodes");
                // An origin on one entry, as a table carried over has.
                if let Some(slot) = enc.counters.first_mut() {
                    slot.1 = Some((
                        7,
                        Counters {
                            packets: 1,
                            bytes: 2,
                        },
                    ));
                }
                let kept = KeptTable::new(enc.clone());
                assert_eq!(kept.name, enc.name);
                assert_eq!(kept.num_entries, enc.num_entries);
                assert!(
                    kept.packed.len() * 2 < enc.entries().len(),
                    "{}: {name} kept in {} of {} bytes",
                    path.display(),
                    kept.packed.len(),
                    enc.entries().len()
                );
                let back = kept.table();
                assert!(back == enc, "{}: {name} differs", path.display());
                assert_eq!(back.counters, enc.counters);
                tables += 1;
            }
        }
        assert!(tables >= 10, "only {tables} tables");
    }

    proptest::proptest! {
        /// Entries packed one after another in one buffer come back as
        /// they were, whatever their bytes and lengths (a length that is
        /// not a multiple of 8 included).
        #[test]
        fn packed_entries_unpack_as_they_were(
            entries in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![3 => proptest::strategy::Just(0u8), 1 => proptest::num::u8::ANY],
                    0..300,
                ),
                1..8,
            )
        ) {
            let mut packed = Vec::new();
            let mut starts = Vec::new();
            for e in &entries {
                starts.push(packed.len());
                pack(e, &mut packed);
            }
            let mut out = vec![0xAA];
            for (e, &at) in entries.iter().zip(&starts) {
                let from = out.len();
                unpack(&packed[at..], e.len(), &mut out);
                proptest::prop_assert_eq!(&out[from..], &e[..]);
            }
            proptest::prop_assert_eq!(out[0], 0xAA);
        }
    }
}
