//! `-m hl` (ip6t_hl, IPv6 only): the Hop Limit field, compared with `==`,
//! `!=`, `<` or `>`.
//!
//! libip6t_hl also accepts `--hl`, a hidden synonym of `--hl-eq` (same
//! option id, so `! --hl N` is `!=` too and errors name `--hl-eq`).

use std::mem::offset_of;

use super::recent::{parse_int_opt, XtFlags, XtOpt, XTOPT_INVERT};
use super::{Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext};
use crate::rules::Family;
use crate::sys::bindings::{ip6t_hl_info, IP6T_HL_EQ, IP6T_HL_GT, IP6T_HL_LT, IP6T_HL_NE};

pub(super) static CODECS: &[&dyn Codec] = &[&Hl];

mod field {
    use super::*;
    pub const MODE: usize = offset_of!(ip6t_hl_info, mode);
    pub const HOP_LIMIT: usize = offset_of!(ip6t_hl_info, hop_limit);
}

/// Option ids of libip6t_hl.
const O_HL_EQ: u8 = 0;
const O_HL_LT: u8 = 1;
const O_HL_GT: u8 = 2;
/// Every comparison excludes every other.
const F_ANY: u32 = (1 << O_HL_EQ) | (1 << O_HL_LT) | (1 << O_HL_GT);

/// libip6t_hl's option table, in its order.
static TABLE: [XtOpt; 4] = [
    XtOpt::new("hl-lt", O_HL_LT, Arg::One, 0).excl(F_ANY),
    XtOpt::new("hl-gt", O_HL_GT, Arg::One, 0).excl(F_ANY),
    XtOpt::new("hl-eq", O_HL_EQ, Arg::One, XTOPT_INVERT).excl(F_ANY),
    XtOpt::new("hl", O_HL_EQ, Arg::One, 0).excl(F_ANY),
];
static SPECS: [OptSpec; 4] = XtOpt::specs(&TABLE);

/// The save text of each mode (hl_save's table).
fn mode_text(mode: u8) -> Option<&'static str> {
    Some(match u32::from(mode) {
        IP6T_HL_EQ => "--hl-eq",
        IP6T_HL_NE => "! --hl-eq",
        IP6T_HL_LT => "--hl-lt",
        IP6T_HL_GT => "--hl-gt",
        _ => return None,
    })
}

struct Hl;

impl Codec for Hl {
    fn name(&self) -> &'static str {
        "hl"
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
        let mut p = Payload::of::<ip6t_hl_info>();
        let mut seen = XtFlags::default();
        for o in opts {
            let id = seen.take("hl", &TABLE, o)?;
            // libxtables reports `--hl` under the first name of its id.
            let named = OptValue {
                name: if id == O_HL_EQ { "hl-eq" } else { o.name },
                ..o.clone()
            };
            let v = parse_int_opt("hl", &named, 0, u8::MAX.into())?;
            let mode = match id {
                O_HL_EQ if o.invert => IP6T_HL_NE,
                O_HL_EQ => IP6T_HL_EQ,
                O_HL_LT => IP6T_HL_LT,
                _ => IP6T_HL_GT,
            };
            p.u8(field::MODE, mode as u8).u8(field::HOP_LIMIT, v as u8);
        }
        if !seen.any(F_ANY) {
            return Err("HL match: You must specify one of `--hl-eq', `--hl-lt', `--hl-gt'".into());
        }
        seen.fcheck("hl", &TABLE)?;
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<ip6t_hl_info>())?;
        let mode = r.u8(field::MODE)?;
        let text = mode_text(mode).ok_or_else(|| format!("hl: unknown mode {mode}"))?;
        out.push_str(&format!(" {text} {}", r.u8(field::HOP_LIMIT)?));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;
    use crate::rules::IpMatch;

    fn ov(name: &'static str, invert: bool, arg: &str) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: vec![arg.to_string()].into(),
        }
    }

    fn with_ctx<T>(f: impl FnOnce(&RuleContext) -> T) -> T {
        let ip = IpMatch::any(Family::V6);
        f(&RuleContext {
            family: Family::V6,
            ip: &ip,
            table: "filter",
        })
    }

    fn parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        with_ctx(|ctx| Hl.parse(0, opts, ctx)).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(data: &[u8]) -> ExtResult<String> {
        let mut out = String::new();
        with_ctx(|ctx| Hl.save(0, data, ctx, &mut out))?;
        Ok(out)
    }

    // Captured from the kernel after ip6tables-legacy-restore (tests/rules6/hl.rules):
    // mode (EQ 0, NE 1, LT 2, GT 3), hop_limit, then padding to XT_ALIGN.
    const EQ_64: &str = "00 40 000000000000"; // --hl-eq 64
    const NE_1: &str = "01 01 000000000000"; // ! --hl-eq 1
    const LT_5: &str = "02 05 000000000000"; // --hl-lt 5
    const GT_250: &str = "03 fa 000000000000"; // --hl-gt 250
    const NE_255: &str = "01 ff 000000000000"; // ! --hl 255
    const EQ_16: &str = "00 10 000000000000"; // --hl-eq 0x10

    #[test]
    fn parse_matches_kernel_bytes() {
        let cases: &[(OptValue, &str)] = &[
            (ov("hl-eq", false, "64"), EQ_64),
            (ov("hl-eq", true, "1"), NE_1),
            (ov("hl-lt", false, "5"), LT_5),
            (ov("hl-gt", false, "250"), GT_250),
            (ov("hl", true, "255"), NE_255),
            (ov("hl-eq", false, "0x10"), EQ_16),
            (ov("hl", false, "020"), EQ_16),
        ];
        for (o, fx) in cases {
            assert_eq!(parse(std::slice::from_ref(o)).unwrap(), hex(fx), "{o:?}");
        }
    }

    #[test]
    fn save_matches_ip6tables_legacy_save() {
        assert_eq!(save(&hex(EQ_64)).unwrap(), " --hl-eq 64");
        assert_eq!(save(&hex(NE_1)).unwrap(), " ! --hl-eq 1");
        assert_eq!(save(&hex(LT_5)).unwrap(), " --hl-lt 5");
        assert_eq!(save(&hex(GT_250)).unwrap(), " --hl-gt 250");
        assert_eq!(save(&hex(NE_255)).unwrap(), " ! --hl-eq 255");
        assert_eq!(save(&hex(EQ_16)).unwrap(), " --hl-eq 16");
    }

    #[test]
    fn bad_values_are_refused() {
        for o in [
            ov("hl-eq", false, "256"),
            ov("hl-lt", false, "-1"),
            ov("hl-gt", false, "x"),
            ov("hl", false, ""),
            ov("hl-lt", true, "5"),
            ov("hl-gt", true, "5"),
        ] {
            assert!(parse(std::slice::from_ref(&o)).is_err(), "{o:?} accepted");
        }
        assert!(parse(&[ov("hl-eq", false, "300")])
            .unwrap_err()
            .contains("\"--hl-eq\""));
        assert!(parse(&[ov("hl", false, "300")])
            .unwrap_err()
            .contains("\"--hl-eq\""));
        assert!(parse(&[]).unwrap_err().contains("You must specify"));
        assert!(parse(&[ov("hl-lt", false, "5"), ov("hl-gt", false, "3")])
            .unwrap_err()
            .contains("cannot be used together"));
        assert!(parse(&[ov("hl-eq", false, "5"), ov("hl", false, "3")])
            .unwrap_err()
            .contains("only be used once"));
        assert!(save(&hex("04 01 000000000000")).is_err(), "unknown mode");
        assert!(save(&[0u8; 1]).is_err(), "short payload must not panic");
    }
}
