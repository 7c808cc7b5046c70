//! `-j HL` (ip6t_HL, IPv6 only, mangle table): set, decrement or increment
//! the Hop Limit field.

use std::mem::offset_of;

use super::recent::{parse_int_opt, XtFlags, XtOpt};
use super::{Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext};
use crate::rules::Family;
use crate::sys::bindings::{ip6t_HL_info, IP6T_HL_DEC, IP6T_HL_INC, IP6T_HL_SET};

pub(super) static CODECS: &[&dyn Codec] = &[&HlTarget];

mod field {
    use super::*;
    pub const MODE: usize = offset_of!(ip6t_HL_info, mode);
    pub const HOP_LIMIT: usize = offset_of!(ip6t_HL_info, hop_limit);
}

/// Option ids of libip6t_HL.
const O_HL_SET: u8 = 0;
const O_HL_INC: u8 = 1;
const O_HL_DEC: u8 = 2;
/// Every action excludes every other.
const F_ANY: u32 = (1 << O_HL_SET) | (1 << O_HL_INC) | (1 << O_HL_DEC);

/// libip6t_HL's option table, in its order.
static TABLE: [XtOpt; 3] = [
    XtOpt::new("hl-set", O_HL_SET, Arg::One, 0).excl(F_ANY),
    XtOpt::new("hl-dec", O_HL_DEC, Arg::One, 0).excl(F_ANY),
    XtOpt::new("hl-inc", O_HL_INC, Arg::One, 0).excl(F_ANY),
];
static SPECS: [OptSpec; 3] = XtOpt::specs(&TABLE);

struct HlTarget;

impl Codec for HlTarget {
    fn name(&self) -> &'static str {
        "HL"
    }
    fn kind(&self) -> Kind {
        Kind::Target
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
        let mut p = Payload::of::<ip6t_HL_info>();
        let mut seen = XtFlags::default();
        for o in opts {
            let id = seen.take("HL", &TABLE, o)?;
            // --hl-dec and --hl-inc have .min = 1: a change by 0 is refused.
            let min = if id == O_HL_SET { 0 } else { 1 };
            let v = parse_int_opt("HL", o, min, u8::MAX.into())?;
            let mode = match id {
                O_HL_SET => IP6T_HL_SET,
                O_HL_INC => IP6T_HL_INC,
                _ => IP6T_HL_DEC,
            };
            p.u8(field::MODE, mode as u8).u8(field::HOP_LIMIT, v as u8);
        }
        if !seen.any(F_ANY) {
            return Err("HL: You must specify an action".into());
        }
        seen.fcheck("HL", &TABLE)?;
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<ip6t_HL_info>())?;
        let mode = r.u8(field::MODE)?;
        let name = match u32::from(mode) {
            IP6T_HL_SET => "--hl-set",
            IP6T_HL_DEC => "--hl-dec",
            IP6T_HL_INC => "--hl-inc",
            _ => return Err(format!("HL: unknown mode {mode}")),
        };
        out.push_str(&format!(" {name} {}", r.u8(field::HOP_LIMIT)?));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;
    use crate::rules::IpMatch;

    fn ov(name: &'static str, arg: &str) -> OptValue<'static> {
        OptValue {
            name,
            invert: false,
            args: vec![arg.to_string()].into(),
        }
    }

    fn with_ctx<T>(f: impl FnOnce(&RuleContext) -> T) -> T {
        let ip = IpMatch::any(Family::V6);
        f(&RuleContext {
            family: Family::V6,
            ip: &ip,
            table: "mangle",
        })
    }

    fn parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        with_ctx(|ctx| HlTarget.parse(0, opts, ctx)).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(data: &[u8]) -> ExtResult<String> {
        let mut out = String::new();
        with_ctx(|ctx| HlTarget.save(0, data, ctx, &mut out))?;
        Ok(out)
    }

    // Captured from the kernel after ip6tables-legacy-restore (tests/rules6/hl_tg.rules):
    // mode (SET 0, INC 1, DEC 2), hop_limit, then padding to XT_ALIGN.
    const SET_64: &str = "00 40 000000000000"; // --hl-set 64
    const INC_1: &str = "01 01 000000000000"; // --hl-inc 1
    const DEC_1: &str = "02 01 000000000000"; // --hl-dec 1
    const INC_255: &str = "01 ff 000000000000"; // --hl-inc 255
    const SET_0: &str = "00 00 000000000000"; // --hl-set 0
    const DEC_255: &str = "02 ff 000000000000"; // --hl-dec 0xff

    #[test]
    fn parse_matches_kernel_bytes() {
        let cases = [
            (ov("hl-set", "64"), SET_64),
            (ov("hl-inc", "1"), INC_1),
            (ov("hl-dec", "1"), DEC_1),
            (ov("hl-inc", "255"), INC_255),
            (ov("hl-set", "0"), SET_0),
            (ov("hl-dec", "0xff"), DEC_255),
        ];
        for (o, fx) in cases {
            assert_eq!(parse(std::slice::from_ref(&o)).unwrap(), hex(fx), "{o:?}");
        }
    }

    #[test]
    fn save_matches_ip6tables_legacy_save() {
        assert_eq!(save(&hex(SET_64)).unwrap(), " --hl-set 64");
        assert_eq!(save(&hex(INC_1)).unwrap(), " --hl-inc 1");
        assert_eq!(save(&hex(DEC_1)).unwrap(), " --hl-dec 1");
        assert_eq!(save(&hex(INC_255)).unwrap(), " --hl-inc 255");
        assert_eq!(save(&hex(SET_0)).unwrap(), " --hl-set 0");
        assert_eq!(save(&hex(DEC_255)).unwrap(), " --hl-dec 255");
    }

    #[test]
    fn bad_values_are_refused() {
        for o in [
            ov("hl-set", "256"),
            ov("hl-dec", "0"),
            ov("hl-inc", "0"),
            ov("hl-set", "-1"),
            ov("hl-set", "ten"),
        ] {
            assert!(parse(std::slice::from_ref(&o)).is_err(), "{o:?} accepted");
        }
        let inverted = OptValue {
            invert: true,
            ..ov("hl-set", "1")
        };
        assert!(parse(&[inverted])
            .unwrap_err()
            .contains("cannot be inverted"));
        assert!(parse(&[])
            .unwrap_err()
            .contains("You must specify an action"));
        assert!(parse(&[ov("hl-set", "5"), ov("hl-inc", "3")])
            .unwrap_err()
            .contains("cannot be used together"));
        assert!(parse(&[ov("hl-set", "5"), ov("hl-set", "3")])
            .unwrap_err()
            .contains("only be used once"));
        assert!(save(&hex("03 01 000000000000")).is_err(), "unknown mode");
        assert!(save(&[0u8; 1]).is_err(), "short payload must not panic");
    }
}
