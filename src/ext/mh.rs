//! `-m mh` (ip6t_mh, IPv6 only): the Mobility Header type, a value or a
//! range, by name or number.
//!
//! iptables 1.8.9 loads it implicitly for `-p mh` only: the match is found
//! by the protocol's name, and `ipv6-mh`, `mobility-header` (and `135`,
//! whose name is `mobility-header`) name no extension.

use std::mem::offset_of;

use super::recent::{XtFlags, XtOpt, XTOPT_INVERT};
use super::{
    parse_uint, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{ip6t_mh, IP6T_MH_INV_TYPE};

pub(super) static CODECS: &[&dyn Codec] = &[&Mh];

mod field {
    use super::*;
    pub const TYPES: usize = offset_of!(ip6t_mh, types);
    pub const INVFLAGS: usize = offset_of!(ip6t_mh, invflags);
}

/// libip6t_mh's option table.
static TABLE: [XtOpt; 1] = [XtOpt::new("mh-type", 0, Arg::One, XTOPT_INVERT)];
static SPECS: [OptSpec; 1] = XtOpt::specs(&TABLE);

/// libip6t_mh's `mh_names`, in its order (the lookup depends on it).
const MH_NAMES: &[(&str, u8)] = &[
    ("binding-refresh-request", 0),
    ("brr", 0),
    ("home-test-init", 1),
    ("hoti", 1),
    ("careof-test-init", 2),
    ("coti", 2),
    ("home-test", 3),
    ("hot", 3),
    ("careof-test", 4),
    ("cot", 4),
    ("binding-update", 5),
    ("bu", 5),
    ("binding-acknowledgement", 6),
    ("ba", 6),
    ("binding-error", 7),
    ("be", 7),
];

/// name_to_type: the first name that starts with `s` (any case), unless a
/// later one is exactly `s`; else a number 0-255.
fn name_to_type(s: &str) -> ExtResult<u8> {
    let mut found: Option<u8> = None;
    for (name, ty) in MH_NAMES {
        let prefix = name.len() >= s.len() && name[..s.len()].eq_ignore_ascii_case(s);
        if prefix && (found.is_none() || name.len() == s.len()) {
            found = Some(*ty);
        }
    }
    if let Some(ty) = found {
        return Ok(ty);
    }
    parse_uint(s, 0, 255)
        .map(|v| v as u8)
        .ok_or_else(|| format!("Invalid MH type `{s}'"))
}

/// parse_mh_types: `T`, `T:T`, `:T` (from 0) or `T:` (to 255).
fn parse_mh_types(s: &str) -> ExtResult<[u8; 2]> {
    let Some((lo, hi)) = s.split_once(':') else {
        let t = name_to_type(s)?;
        return Ok([t, t]);
    };
    let lo = if lo.is_empty() { 0 } else { name_to_type(lo)? };
    let hi = if hi.is_empty() {
        0xff
    } else {
        name_to_type(hi)?
    };
    if lo > hi {
        return Err("Invalid MH type range (min > max)".into());
    }
    Ok([lo, hi])
}

struct Mh;

impl Codec for Mh {
    fn name(&self) -> &'static str {
        "mh"
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
        &SPECS
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<ip6t_mh>();
        // mh_init: any type.
        p.u8(field::TYPES + 1, 0xff);
        let mut seen = XtFlags::default();
        for o in opts {
            seen.take("mh", &TABLE, o)?;
            let types = parse_mh_types(o.arg())?;
            p.bytes(field::TYPES, &types);
            if o.invert {
                p.u8(field::INVFLAGS, IP6T_MH_INV_TYPE as u8);
            }
        }
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<ip6t_mh>())?;
        let (lo, hi) = (r.u8(field::TYPES)?, r.u8(field::TYPES + 1)?);
        if lo == 0 && hi == 0xff {
            return Ok(());
        }
        if r.u8(field::INVFLAGS)? & IP6T_MH_INV_TYPE as u8 != 0 {
            out.push_str(" !");
        }
        if lo != hi {
            out.push_str(&format!(" --mh-type {lo}:{hi}"));
        } else {
            out.push_str(&format!(" --mh-type {lo}"));
        }
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
            name: "mh-type",
            invert,
            args: vec![arg.to_string()].into(),
        }
    }

    fn with_ctx<T>(f: impl FnOnce(&RuleContext) -> T) -> T {
        let ip = IpMatch {
            proto: 135,
            ..IpMatch::any(Family::V6)
        };
        f(&RuleContext {
            family: Family::V6,
            ip: &ip,
            table: "filter",
        })
    }

    fn parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        with_ctx(|ctx| Mh.parse(0, opts, ctx)).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(data: &[u8]) -> ExtResult<String> {
        let mut out = String::new();
        with_ctx(|ctx| Mh.save(0, data, ctx, &mut out))?;
        Ok(out)
    }

    // Captured from the kernel after ip6tables-legacy-restore (tests/rules6/mh.rules):
    // types[2], invflags, padding.
    const BU: &str = "0505 00 0000000000"; // --mh-type binding-update
    const INV_1_4: &str = "0104 01 0000000000"; // ! --mh-type 1:4
    const BU_BE: &str = "0507 00 0000000000"; // --mh-type bu:be
    const TO_3: &str = "0003 00 0000000000"; // --mh-type :3
    const FROM_4: &str = "04ff 00 0000000000"; // --mh-type 4:
    const INV_BRR: &str = "0000 01 0000000000"; // ! --mh-type BRR
    const ANY: &str = "00ff 00 0000000000"; // no option, or --mh-type 0:255
    const HOME_TEST: &str = "0303 00 0000000000"; // --mh-type home-test
    const BINDING: &str = "0000 00 0000000000"; // --mh-type binding
    const HOTI_COTI: &str = "0102 00 0000000000"; // --mh-type hoti:coti
    const INV_16_UP: &str = "10ff 01 0000000000"; // ! --mh-type 0x10:255

    #[test]
    fn parse_matches_kernel_bytes() {
        let cases: &[(&[OptValue], &str)] = &[
            (&[ov(false, "binding-update")], BU),
            (&[ov(false, "5")], BU),
            (&[ov(true, "1:4")], INV_1_4),
            (&[ov(false, "bu:be")], BU_BE),
            (&[ov(false, ":3")], TO_3),
            (&[ov(false, "4:")], FROM_4),
            (&[ov(true, "BRR")], INV_BRR),
            (&[], ANY),
            (&[ov(false, "0:255")], ANY),
            (&[ov(false, "home-test")], HOME_TEST),
            (&[ov(false, "hot")], HOME_TEST),
            (&[ov(false, "binding")], BINDING),
            (&[ov(false, "b")], BINDING),
            (&[ov(false, "hoti:coti")], HOTI_COTI),
            (&[ov(true, "0x10:255")], INV_16_UP),
        ];
        for (opts, fx) in cases {
            assert_eq!(parse(opts).unwrap(), hex(fx), "{opts:?}");
        }
    }

    #[test]
    fn save_matches_ip6tables_legacy_save() {
        let cases = [
            (BU, " --mh-type 5"),
            (INV_1_4, " ! --mh-type 1:4"),
            (BU_BE, " --mh-type 5:7"),
            (TO_3, " --mh-type 0:3"),
            (FROM_4, " --mh-type 4:255"),
            (INV_BRR, " ! --mh-type 0"),
            (ANY, ""),
            (HOME_TEST, " --mh-type 3"),
            (HOTI_COTI, " --mh-type 1:2"),
            (INV_16_UP, " ! --mh-type 16:255"),
        ];
        for (fx, text) in cases {
            assert_eq!(save(&hex(fx)).unwrap(), text);
        }
        // An inverted "any" is not printed, as mh_save does.
        assert_eq!(save(&hex("00ff 01 0000000000")).unwrap(), "");
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            "256", "-1", "x", "bx", "5:4", "be:bu", "1:2:3", "1-2", "0x100",
        ] {
            assert!(parse(&[ov(false, bad)]).is_err(), "{bad} accepted");
        }
        assert!(parse(&[ov(false, "1"), ov(false, "2")])
            .unwrap_err()
            .contains("only be used once"));
        assert!(save(&[0u8; 2]).is_err(), "short payload must not panic");
    }
}
