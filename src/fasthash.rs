//! A fast hash for the maps on the per-rule path (chain names, extension
//! names, revision answers). FNV-1a: keys are short and come from the
//! operator's own files, so the flooding resistance of the standard
//! SipHash buys nothing here and costs a few percent of a large restore.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a, 64 bits.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// A `HashMap` with [`Fnv`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // FNV-1a 64 test vectors.
        let h = |s: &[u8]| {
            let mut f = Fnv::default();
            f.write(s);
            f.finish()
        };
        assert_eq!(h(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(h(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(h(b"foobar"), 0x8594_4171_f739_67e8);
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
