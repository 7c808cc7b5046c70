//! `-m quota` (xt_quota): matches until a byte quota is used up,
//! `[!] --quota BYTES`.
//!
//! One revision (0) for both families. The kernel keeps its running count
//! behind the `master` pointer, which it never shows to user space (the
//! payload reads back with that pointer zeroed).

use std::mem::offset_of;

use super::recent::{parse_int_opt, XtFlags, XtOpt, XTOPT_INVERT, XTOPT_MAND};
use super::{
    save_inv, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{xt_quota_info, XT_QUOTA_INVERT};

pub(super) static CODECS: &[&dyn Codec] = &[&Quota];

mod field {
    use super::*;
    pub const FLAGS: usize = offset_of!(xt_quota_info, flags);
    pub const QUOTA: usize = offset_of!(xt_quota_info, quota);
}

const O_QUOTA: u8 = 0;
const TABLE: [XtOpt; 1] = [XtOpt::new(
    "quota",
    O_QUOTA,
    Arg::One,
    XTOPT_MAND | XTOPT_INVERT,
)];
static SPECS: [OptSpec; 1] = XtOpt::specs(&TABLE);

struct Quota;

impl Codec for Quota {
    fn name(&self) -> &'static str {
        "quota"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V4, Family::V6]
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        &SPECS
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_quota_info>();
        let mut xf = XtFlags::default();
        let mut flags = 0u32;
        for o in opts {
            xf.take("quota", &TABLE, o)?;
            // XTTYPE_UINT64: the whole u64 range.
            p.u64(field::QUOTA, parse_int_opt("quota", o, 0, u64::MAX)?);
            if o.invert {
                flags |= XT_QUOTA_INVERT;
            }
        }
        xf.fcheck("quota", &TABLE)?;
        p.u32(field::FLAGS, flags);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, field::QUOTA + 8)?;
        save_inv(out, r.u32(field::FLAGS)? & XT_QUOTA_INVERT != 0);
        out.push_str(&format!(" --quota {}", r.u64(field::QUOTA)?));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;
    use crate::rules::IpMatch;

    fn ov(invert: bool, arg: &str) -> OptValue<'static> {
        OptValue {
            name: "quota",
            invert,
            args: vec![arg.to_string()].into(),
        }
    }

    fn fixture(s: &str) -> Vec<u8> {
        hex(&s
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .collect::<String>())
    }

    fn parse(family: Family, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        let mut v = Quota.parse(0, opts, &ctx)?;
        v.resize(xt_align(v.len()), 0);
        Ok(v)
    }

    fn save(family: Family, data: &[u8]) -> ExtResult<String> {
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Quota.save(0, data, &ctx, &mut out)?;
        Ok(out)
    }

    // Kernel capture after iptables-legacy-restore of `-m quota --quota 1000000`.
    const PLAIN: &str = "
        00000000          # flags: none
        00000000          # pad
        40420f0000000000  # quota 1000000 (host order u64)
        0000000000000000  # master: kernel pointer, shown as zero";

    // Kernel capture of `-m quota ! --quota 0x7fffffffffffffff` (ip6tables too).
    const INVERTED_MAX: &str = "
        01000000          # flags: XT_QUOTA_INVERT
        00000000          # pad
        ffffffffffffff7f  # quota 9223372036854775807
        0000000000000000  # master";

    // Kernel capture of `-m quota --quota 18446744073709551615`.
    const U64_MAX: &str = "
        00000000 00000000
        ffffffffffffffff  # quota u64::MAX
        0000000000000000";

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(
            parse(Family::V4, &[ov(false, "1000000")]).unwrap(),
            fixture(PLAIN)
        );
        assert_eq!(
            parse(Family::V6, &[ov(true, "0x7fffffffffffffff")]).unwrap(),
            fixture(INVERTED_MAX)
        );
        assert_eq!(
            parse(Family::V4, &[ov(false, "18446744073709551615")]).unwrap(),
            fixture(U64_MAX)
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(
            save(Family::V4, &fixture(PLAIN)).unwrap(),
            " --quota 1000000"
        );
        assert_eq!(
            save(Family::V6, &fixture(INVERTED_MAX)).unwrap(),
            " ! --quota 9223372036854775807"
        );
        assert_eq!(
            save(Family::V4, &fixture(U64_MAX)).unwrap(),
            " --quota 18446744073709551615"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in ["", "-1", "x", "18446744073709551616", "5k", "1.5"] {
            let e = parse(Family::V4, &[ov(false, bad)]).unwrap_err();
            assert!(e.contains("bad value for option \"--quota\""), "{bad}: {e}");
        }
        assert!(parse(Family::V4, &[])
            .unwrap_err()
            .contains("\"--quota\" must be specified"));
        assert!(parse(Family::V4, &[ov(false, "1"), ov(false, "2")])
            .unwrap_err()
            .contains("can only be used once"));
        assert!(save(Family::V4, &[0; 8]).is_err(), "short payload");
    }
}
