//! `-m esp` (xt_esp): the SPI of ESP packets, `[!] --espspi SPI[:SPI]`.
//!
//! One revision (0) for both families. The kernel accepts it only in rules
//! with `-p esp`. The SPI range parsing and printing here are shared with
//! `-m ah` and `-m ipcomp`.

use std::mem::offset_of;

use super::length::parse_uint_range;
use super::recent::{XtFlags, XtOpt, XTOPT_INVERT};
use super::{Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext};
use crate::rules::Family;
use crate::sys::bindings::{xt_esp, XT_ESP_INV_SPI};

pub(super) static CODECS: &[&dyn Codec] = &[&Esp];

mod field {
    use super::*;
    pub const SPIS: usize = offset_of!(xt_esp, spis);
    pub const INVFLAGS: usize = offset_of!(xt_esp, invflags);
}

/// XTTYPE_UINT32RC into `spis[2]` as esp/ah/ipcomp parse it: `N`, `N:M`,
/// `N:` or `:M` (an empty part is 0 or 4294967295); a single value gives
/// the range N:N.
pub(crate) fn parse_spi_range(ext: &str, o: &OptValue) -> ExtResult<[u32; 2]> {
    let v = parse_uint_range(ext, o, u32::MAX.into())?;
    // parse_uint_range gives one or two values, each within u32.
    let lo = v[0] as u32;
    let hi = v.get(1).map_or(lo, |&h| h as u32);
    Ok([lo, hi])
}

/// The save text of an SPI range: nothing for the full range 0:4294967295
/// (even when inverted, as iptables prints it), else ` [!] --OPT N` or
/// ` [!] --OPT N:M`.
pub(crate) fn save_spi_range(out: &mut String, opt: &str, spis: [u32; 2], inv: bool) {
    if spis == [0, u32::MAX] {
        return;
    }
    super::save_inv(out, inv);
    if spis[0] != spis[1] {
        out.push_str(&format!(" --{opt} {}:{}", spis[0], spis[1]));
    } else {
        out.push_str(&format!(" --{opt} {}", spis[0]));
    }
}

const O_ESPSPI: u8 = 0;
const TABLE: [XtOpt; 1] = [XtOpt::new("espspi", O_ESPSPI, Arg::One, XTOPT_INVERT)];
static SPECS: [OptSpec; 1] = XtOpt::specs(&TABLE);

struct Esp;

impl Codec for Esp {
    fn name(&self) -> &'static str {
        "esp"
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
        let mut p = Payload::of::<xt_esp>();
        // esp_init: the full range when --espspi is not given.
        let mut spis = [0, u32::MAX];
        let mut xf = XtFlags::default();
        for o in opts {
            xf.take("esp", &TABLE, o)?;
            spis = parse_spi_range("esp", o)?;
            if o.invert {
                p.u8(field::INVFLAGS, XT_ESP_INV_SPI as u8);
            }
        }
        p.u32(field::SPIS, spis[0]).u32(field::SPIS + 4, spis[1]);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_esp>())?;
        let spis = [r.u32(field::SPIS)?, r.u32(field::SPIS + 4)?];
        let inv = r.u8(field::INVFLAGS)? & XT_ESP_INV_SPI as u8 != 0;
        save_spi_range(out, "espspi", spis, inv);
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
            name: "espspi",
            invert,
            args: vec![arg.to_string()].into(),
        }
    }

    fn parse(family: Family, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch {
            proto: 50,
            ..IpMatch::any(family)
        };
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        let mut v = Esp.parse(0, opts, &ctx)?;
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
        Esp.save(0, data, &ctx, &mut out)?;
        Ok(out)
    }

    // Kernel captures after iptables-legacy-restore (the same bytes from
    // ip6tables-legacy-restore) of `-p esp -m esp ...`:
    // `--espspi 500`
    const SINGLE: &str = concat!(
        "f4010000 f4010000", // spis 500:500 (host order)
        "00",                // invflags: none
        "000000 00000000",   // padding
    );
    // `! --espspi 1:0xffffffff`
    const INV_RANGE: &str = concat!(
        "01000000 ffffffff", // spis 1:4294967295
        "01",                // invflags: XT_ESP_INV_SPI
        "000000 00000000",
    );
    // `--espspi 7:` (open upper end)
    const OPEN_HI: &str = concat!("07000000 ffffffff", "00", "000000 00000000");
    // `! --espspi :` (the full range, inverted: saved without the `!`)
    const INV_FULL: &str = concat!("00000000 ffffffff", "01", "000000 00000000");
    // no option at all
    const NONE: &str = concat!("00000000 ffffffff", "00", "000000 00000000");

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(parse(Family::V4, &[ov(false, "500")]).unwrap(), hex(SINGLE));
        assert_eq!(
            parse(Family::V6, &[ov(true, "1:0xffffffff")]).unwrap(),
            hex(INV_RANGE)
        );
        assert_eq!(parse(Family::V4, &[ov(false, "7:")]).unwrap(), hex(OPEN_HI));
        assert_eq!(parse(Family::V4, &[ov(true, ":")]).unwrap(), hex(INV_FULL));
        assert_eq!(parse(Family::V4, &[]).unwrap(), hex(NONE));
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(save(&hex(SINGLE)).unwrap(), " --espspi 500");
        assert_eq!(save(&hex(INV_RANGE)).unwrap(), " ! --espspi 1:4294967295");
        assert_eq!(save(&hex(OPEN_HI)).unwrap(), " --espspi 7:4294967295");
        assert_eq!(save(&hex(INV_FULL)).unwrap(), "");
        assert_eq!(save(&hex(NONE)).unwrap(), "");
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in ["x", "-1", "4294967296", "1:2:3", "1-2", "5:x"] {
            assert!(parse(Family::V4, &[ov(false, bad)]).is_err(), "{bad}");
        }
        assert!(parse(Family::V4, &[ov(false, "1"), ov(false, "2")])
            .unwrap_err()
            .contains("only be used once"));
        assert!(save(&[0; 4]).is_err());
    }
}
