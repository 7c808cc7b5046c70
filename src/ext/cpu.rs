//! `-m cpu` (xt_cpu): the CPU handling the packet, `[!] --cpu N`.
//!
//! One revision (0) for both families.

use std::mem::offset_of;

use super::recent::{parse_int_opt, XtFlags, XtOpt, XTOPT_INVERT, XTOPT_MAND};
use super::{
    save_inv, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::xt_cpu_info;

pub(super) static CODECS: &[&dyn Codec] = &[&Cpu];

mod field {
    use super::*;
    pub const CPU: usize = offset_of!(xt_cpu_info, cpu);
    pub const INVERT: usize = offset_of!(xt_cpu_info, invert);
}

const O_CPU: u8 = 0;
const TABLE: [XtOpt; 1] = [XtOpt::new(
    "cpu",
    O_CPU,
    Arg::One,
    XTOPT_MAND | XTOPT_INVERT,
)];
static SPECS: [OptSpec; 1] = XtOpt::specs(&TABLE);

struct Cpu;

impl Codec for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
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
        let mut p = Payload::of::<xt_cpu_info>();
        let mut xf = XtFlags::default();
        for o in opts {
            xf.take("cpu", &TABLE, o)?;
            p.u32(
                field::CPU,
                parse_int_opt("cpu", o, 0, u32::MAX.into())? as u32,
            );
            if o.invert {
                p.u32(field::INVERT, 1);
            }
        }
        xf.fcheck("cpu", &TABLE)?;
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_cpu_info>())?;
        save_inv(out, r.u32(field::INVERT)? != 0);
        out.push_str(&format!(" --cpu {}", r.u32(field::CPU)?));
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
            name: "cpu",
            invert,
            args: vec![arg.to_string()].into(),
        }
    }

    fn parse(family: Family, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        let mut v = Cpu.parse(0, opts, &ctx)?;
        v.resize(xt_align(v.len()), 0);
        Ok(v)
    }

    fn save(data: &[u8]) -> ExtResult<String> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Cpu.save(0, data, &ctx, &mut out)?;
        Ok(out)
    }

    // Kernel captures after iptables-legacy-restore of `-m cpu --cpu 0` and
    // `-m cpu ! --cpu 4294967295`.
    fn cpu0() -> Vec<u8> {
        hex(concat!(
            "00000000", // cpu 0
            "00000000", // invert: no
        ))
    }
    fn inverted_max() -> Vec<u8> {
        hex(concat!(
            "ffffffff", // cpu 4294967295
            "01000000", // invert: yes
        ))
    }

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(parse(Family::V4, &[ov(false, "0")]).unwrap(), cpu0());
        assert_eq!(
            parse(Family::V6, &[ov(true, "4294967295")]).unwrap(),
            inverted_max()
        );
        assert_eq!(
            parse(Family::V4, &[ov(true, "0xffffffff")]).unwrap(),
            inverted_max()
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(save(&cpu0()).unwrap(), " --cpu 0");
        assert_eq!(save(&inverted_max()).unwrap(), " ! --cpu 4294967295");
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in ["", "-1", "one", "4294967296", "1,2"] {
            let e = parse(Family::V4, &[ov(false, bad)]).unwrap_err();
            assert!(e.contains("out of range (0-4294967295)"), "{bad}: {e}");
        }
        assert!(parse(Family::V4, &[])
            .unwrap_err()
            .contains("must be specified"));
        assert!(parse(Family::V4, &[ov(false, "1"), ov(true, "2")])
            .unwrap_err()
            .contains("only be used once"));
        assert!(save(&[1, 2, 3]).is_err());
    }
}
