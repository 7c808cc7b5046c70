//! `-m connmark` (xt_connmark match): the connection's ctmark,
//! `[!] --mark value[/mask]`. Same payloads as `-m mark` (revision 1
//! `xt_connmark_mtinfo1`; revision 0 the old `unsigned long` layout, which
//! current kernels no longer accept). The CONNMARK target is connmark_tg.rs.

use super::mark::MarkMatch;
use super::Codec;
use crate::sys::bindings::{xt_connmark_mtinfo1, xt_mark_mtinfo1};

pub(super) static CODECS: &[&dyn Codec] = &[&CONNMARK];

// encode_mark/decode_mark write xt_mark_mtinfo1; connmark's struct is the same.
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<xt_connmark_mtinfo1>() == size_of::<xt_mark_mtinfo1>());
    assert!(offset_of!(xt_connmark_mtinfo1, mark) == offset_of!(xt_mark_mtinfo1, mark));
    assert!(offset_of!(xt_connmark_mtinfo1, mask) == offset_of!(xt_mark_mtinfo1, mask));
    assert!(offset_of!(xt_connmark_mtinfo1, invert) == offset_of!(xt_mark_mtinfo1, invert));
};

/// `-m connmark`: the mark codec under this name.
static CONNMARK: MarkMatch = MarkMatch("connmark");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::{ExtResult, OptValue, RuleContext};
    use crate::rules::Family;
    use crate::rules::IpMatch;

    fn ov(invert: bool, arg: &str) -> OptValue<'static> {
        OptValue {
            name: "mark",
            invert,
            args: vec![arg.to_string()].into(),
        }
    }

    fn run(rev: u8, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        // The registry pads every payload to XT_ALIGN, as the kernel holds it.
        let mut v = CONNMARK.parse(rev, opts, &ctx)?;
        v.resize(crate::ext::xt_align(v.len()), 0);
        Ok(v)
    }

    fn save(rev: u8, data: &[u8]) -> ExtResult<String> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        CONNMARK.save(rev, data, &ctx, &mut out)?;
        Ok(out)
    }

    // Kernel capture after iptables-legacy-restore of `-m connmark --mark 1`
    // (xt_connmark_mtinfo1): 01000000 mark | ffffffff mask | 00 invert | pad
    #[test]
    fn rev1_plain() {
        let fixture = hex("01000000 ffffffff 00 000000 00000000");
        assert_eq!(run(1, &[ov(false, "1")]).unwrap(), fixture);
        assert_eq!(save(1, &fixture).unwrap(), " --mark 0x1");
    }

    // Kernel capture of `-m connmark ! --mark 7/0xf0`:
    // 07000000 mark | f0000000 mask | 01 invert | pad
    #[test]
    fn rev1_inverted_with_mask() {
        let fixture = hex("07000000 f0000000 01 000000 00000000");
        assert_eq!(run(1, &[ov(true, "7/0xf0")]).unwrap(), fixture);
        assert_eq!(save(1, &fixture).unwrap(), " ! --mark 0x7/0xf0");
    }

    // Revision 0 (no longer in the kernel): bytes captured from
    // iptables-legacy-restore's SET_REPLACE with revision 1 hidden, for
    // `-m connmark --mark 0x10` (x86-64 unsigned long):
    // 1000000000000000 mark | ffffffff00000000 mask | 00 invert | pad
    #[test]
    fn rev0_plain() {
        let fixture = hex("1000000000000000 ffffffff00000000 00 00000000000000");
        assert_eq!(run(0, &[ov(false, "0x10")]).unwrap(), fixture);
        assert_eq!(save(0, &fixture).unwrap(), " --mark 0x10");
    }

    #[test]
    fn refused() {
        let err = run(1, &[ov(false, "1/x")]).unwrap_err();
        assert!(err.starts_with("connmark: bad integer value"), "{err}");
        assert!(run(1, &[ov(false, "1 ")])
            .unwrap_err()
            .contains("trailing garbage"));
        assert!(run(1, &[]).unwrap_err().contains("must be specified"));
        assert!(run(1, &[ov(false, "1"), ov(true, "2")])
            .unwrap_err()
            .contains("only be used once"));
        assert!(save(1, &[0; 4]).is_err());
    }
}
