//! `-m ipcomp` (xt_ipcomp): the CPI of IPComp packets,
//! `[!] --ipcompspi SPI[:SPI]` and `--compres`.
//!
//! One revision (0) for both families; the kernel accepts it only in rules
//! with `-p ipcomp`. Unlike esp and ah, libxt_ipcomp has no init function:
//! without `--ipcompspi` the range stays 0:0, and iptables-save then prints
//! `--ipcompspi 0`.

use std::mem::offset_of;

use super::esp::{parse_spi_range, save_spi_range};
use super::recent::{XtFlags, XtOpt, XTOPT_INVERT};
use super::{Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext};
use crate::rules::Family;
use crate::sys::bindings::{xt_ipcomp, XT_IPCOMP_INV_SPI};

pub(super) static CODECS: &[&dyn Codec] = &[&Ipcomp];

mod field {
    use super::*;
    pub const SPIS: usize = offset_of!(xt_ipcomp, spis);
    pub const INVFLAGS: usize = offset_of!(xt_ipcomp, invflags);
    pub const HDRRES: usize = offset_of!(xt_ipcomp, hdrres);
}

const O_SPI: u8 = 0;
const O_RES: u8 = 1;
const TABLE: [XtOpt; 2] = [
    XtOpt::new("ipcompspi", O_SPI, Arg::One, XTOPT_INVERT),
    XtOpt::new("compres", O_RES, Arg::None, 0),
];
static SPECS: [OptSpec; 2] = XtOpt::specs(&TABLE);

struct Ipcomp;

impl Codec for Ipcomp {
    fn name(&self) -> &'static str {
        "ipcomp"
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
        let mut p = Payload::of::<xt_ipcomp>();
        let mut xf = XtFlags::default();
        for o in opts {
            match xf.take("ipcomp", &TABLE, o)? {
                O_SPI => {
                    let spis = parse_spi_range("ipcomp", o)?;
                    p.u32(field::SPIS, spis[0]).u32(field::SPIS + 4, spis[1]);
                    if o.invert {
                        p.u8(field::INVFLAGS, XT_IPCOMP_INV_SPI as u8);
                    }
                }
                _ => {
                    p.u8(field::HDRRES, 1);
                }
            }
        }
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_ipcomp>())?;
        let spis = [r.u32(field::SPIS)?, r.u32(field::SPIS + 4)?];
        let inv = r.u8(field::INVFLAGS)? & XT_IPCOMP_INV_SPI as u8 != 0;
        save_spi_range(out, "ipcompspi", spis, inv);
        if r.u8(field::HDRRES)? != 0 {
            out.push_str(" --compres");
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

    fn ov(name: &'static str, invert: bool, args: &[&str]) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn parse(family: Family, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch {
            proto: 108,
            ..IpMatch::any(family)
        };
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        let mut v = Ipcomp.parse(0, opts, &ctx)?;
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
        Ipcomp.save(0, data, &ctx, &mut out)?;
        Ok(out)
    }

    // Kernel captures after iptables-legacy-restore of `-p ipcomp -m ipcomp ...`:
    // `--ipcompspi 500`
    const SINGLE: &str = concat!(
        "f4010000 f4010000", // spis 500:500 (host order)
        "00",                // invflags: none
        "00",                // hdrres: no
        "0000 00000000",     // padding
    );
    // `! --ipcompspi 1:2 --compres` (ip6tables gives the same bytes)
    const INV_RES: &str = concat!(
        "01000000 02000000", // spis 1:2
        "01",                // invflags: XT_IPCOMP_INV_SPI
        "01",                // hdrres: yes
        "0000 00000000",
    );
    // `--compres` alone: no init, the range stays 0:0
    const RES_ONLY: &str = concat!("00000000 00000000", "00", "01", "0000 00000000");
    // no option at all
    const NONE: &str = concat!("00000000 00000000", "00", "00", "0000 00000000");
    // `--ipcompspi 3:`
    const OPEN_HI: &str = concat!("03000000 ffffffff", "00", "00", "0000 00000000");

    #[test]
    fn parse_matches_kernel_bytes() {
        let spi = |inv, a| ov("ipcompspi", inv, &[a]);
        let res = ov("compres", false, &[]);
        assert_eq!(
            parse(Family::V4, &[spi(false, "500")]).unwrap(),
            hex(SINGLE)
        );
        assert_eq!(
            parse(Family::V6, &[spi(true, "1:2"), res.clone()]).unwrap(),
            hex(INV_RES)
        );
        assert_eq!(parse(Family::V4, &[res]).unwrap(), hex(RES_ONLY));
        assert_eq!(parse(Family::V4, &[]).unwrap(), hex(NONE));
        assert_eq!(
            parse(Family::V6, &[spi(false, "3:")]).unwrap(),
            hex(OPEN_HI)
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(save(&hex(SINGLE)).unwrap(), " --ipcompspi 500");
        assert_eq!(save(&hex(INV_RES)).unwrap(), " ! --ipcompspi 1:2 --compres");
        assert_eq!(save(&hex(RES_ONLY)).unwrap(), " --ipcompspi 0 --compres");
        assert_eq!(save(&hex(NONE)).unwrap(), " --ipcompspi 0");
        assert_eq!(save(&hex(OPEN_HI)).unwrap(), " --ipcompspi 3:4294967295");
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in ["x", "-1", "4294967296", "1:2:3"] {
            assert!(
                parse(Family::V4, &[ov("ipcompspi", false, &[bad])]).is_err(),
                "{bad}"
            );
        }
        assert!(parse(Family::V4, &[ov("compres", true, &[])])
            .unwrap_err()
            .contains("cannot be inverted"));
        assert!(parse(
            Family::V4,
            &[ov("compres", false, &[]), ov("compres", false, &[])]
        )
        .unwrap_err()
        .contains("only be used once"));
        assert!(save(&[0; 8]).is_err());
    }
}
