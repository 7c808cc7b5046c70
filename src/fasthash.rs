//! A fast hash for the maps on the per-rule path (chain names, extension
//! names, revision answers): eight bytes a step, as rustc's FxHash does.
//! Keys are short and come from the operator's own files, so the flooding
//! resistance of the standard SipHash buys nothing here and costs a few
//! percent of a large restore.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash's multiplier.
const K: u64 = 0x517c_c1b7_2722_0a95;

/// A word-at-a-time multiplicative hash (FxHash).
#[derive(Debug, Clone, Copy, Default)]
pub struct Fx(u64);

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

/// A `HashMap` with [`Fx`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_counts() {
        let h = |s: &[u8]| {
            let mut f = Fx::default();
            f.write(s);
            f.finish()
        };
        // Names that differ in one byte, at any place (chain names share
        // long prefixes), hash apart; a short tail is not lost.
        let base = b"KUBE-SEP-ABCDEFGHIJKLMNOP".to_vec();
        let mut seen = std::collections::HashSet::new();
        assert!(seen.insert(h(&base)));
        for i in 0..base.len() {
            let mut v = base.clone();
            v[i] ^= 1;
            assert!(seen.insert(h(&v)), "byte {i}");
        }
        assert_ne!(h(b"a"), h(b"b"));
        assert_ne!(h(b"ab"), h(b"abc"));
    }

    #[test]
    fn map_works() {
        let mut m: FastMap<String, usize> = FastMap::default();
        m.insert("KUBE-SVC-1".into(), 1);
        m.insert("KUBE-SVC-2".into(), 2);
        assert_eq!(m.get("KUBE-SVC-2"), Some(&2));
        assert_eq!(m.get("KUBE-SVC-3"), None);
    }
}
