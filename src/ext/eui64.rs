//! `-m eui64` (ip6t_eui64, IPv6 only): the source address's interface
//! identifier is the EUI-64 of the source MAC address. No options; the
//! payload is one unused `int`. The kernel accepts it only in chains
//! reached from PREROUTING, INPUT or FORWARD (and refuses it elsewhere
//! when the table is replaced).

use super::{Codec, ExtResult, Kind, OptSpec, OptValue, Reader, RuleContext};
use crate::rules::Family;

pub(super) static CODECS: &[&dyn Codec] = &[&Eui64];

/// libip6t_eui64's payload: `XT_ALIGN(sizeof(int))`, all zero.
const PAYLOAD_LEN: usize = std::mem::size_of::<libc::c_int>();

struct Eui64;

impl Codec for Eui64 {
    fn name(&self) -> &'static str {
        "eui64"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V6]
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        &[]
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        if let Some(o) = opts.first() {
            return Err(super::unknown_option("eui64", o));
        }
        Ok(vec![0; PAYLOAD_LEN])
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, _out: &mut String) -> ExtResult<()> {
        Reader::new(data, PAYLOAD_LEN)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;
    use crate::rules::IpMatch;

    fn with_ctx<T>(f: impl FnOnce(&RuleContext) -> T) -> T {
        let ip = IpMatch::any(Family::V6);
        f(&RuleContext {
            family: Family::V6,
            ip: &ip,
            table: "filter",
        })
    }

    // Captured from the kernel after ip6tables-legacy-restore of
    // `-A INPUT -m eui64 -j ACCEPT`: the unused int and its padding.
    const FIXTURE: &str = "00000000 00000000";

    #[test]
    fn parse_matches_kernel_bytes() {
        let mut v = with_ctx(|ctx| Eui64.parse(0, &[], ctx)).unwrap();
        v.resize(xt_align(v.len()), 0);
        assert_eq!(v, hex(FIXTURE));
    }

    #[test]
    fn save_matches_ip6tables_legacy_save() {
        let mut out = String::new();
        with_ctx(|ctx| Eui64.save(0, &hex(FIXTURE), ctx, &mut out)).unwrap();
        assert_eq!(out, "");
    }

    #[test]
    fn bad_values_are_refused() {
        let o = OptValue {
            name: "eui64",
            invert: false,
            args: Default::default(),
        };
        assert!(with_ctx(|ctx| Eui64.parse(0, &[o], ctx)).is_err());
        assert!(
            with_ctx(|ctx| Eui64.save(0, &[0u8; 2], ctx, &mut String::new())).is_err(),
            "short payload must not panic"
        );
    }
}
