//! `-m ah`: the Authentication Header.
//!
//! IPv4 (ipt_ah, kernel accepts it only with `-p ah`): `[!] --ahspi
//! SPI[:SPI]`. IPv6 (ip6t_ah, an extension header, no `-p` needed) adds
//! `[!] --ahlen LENGTH` and `--ahres`. One revision (0) each; the two are
//! separate codecs because their structs and options differ.

use std::mem::offset_of;

use super::esp::{parse_spi_range, save_spi_range};
use super::recent::{parse_int_opt, XtFlags, XtOpt, XTOPT_INVERT};
use super::{
    save_inv, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{ip6t_ah, ipt_ah, IP6T_AH_INV_LEN, IP6T_AH_INV_SPI, IPT_AH_INV_SPI};

pub(super) static CODECS: &[&dyn Codec] = &[&Ah4, &Ah6];

mod field {
    use super::*;
    pub const SPIS: usize = offset_of!(ipt_ah, spis);
    pub const INVFLAGS: usize = offset_of!(ipt_ah, invflags);
    pub const V6_SPIS: usize = offset_of!(ip6t_ah, spis);
    pub const V6_HDRLEN: usize = offset_of!(ip6t_ah, hdrlen);
    pub const V6_HDRRES: usize = offset_of!(ip6t_ah, hdrres);
    pub const V6_INVFLAGS: usize = offset_of!(ip6t_ah, invflags);
}

const O_AHSPI: u8 = 0;
const O_AHLEN: u8 = 1;
const O_AHRES: u8 = 2;
const TABLE4: [XtOpt; 1] = [XtOpt::new("ahspi", O_AHSPI, Arg::One, XTOPT_INVERT)];
static SPECS4: [OptSpec; 1] = XtOpt::specs(&TABLE4);
const TABLE6: [XtOpt; 3] = [
    XtOpt::new("ahspi", O_AHSPI, Arg::One, XTOPT_INVERT),
    XtOpt::new("ahlen", O_AHLEN, Arg::One, XTOPT_INVERT),
    XtOpt::new("ahres", O_AHRES, Arg::None, 0),
];
static SPECS6: [OptSpec; 3] = XtOpt::specs(&TABLE6);

/// IPv4 `-m ah` (ipt_ah).
struct Ah4;

impl Codec for Ah4 {
    fn name(&self) -> &'static str {
        "ah"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V4]
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        &SPECS4
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<ipt_ah>();
        // ah_init: the full range when --ahspi is not given.
        let mut spis = [0, u32::MAX];
        let mut xf = XtFlags::default();
        for o in opts {
            xf.take("ah", &TABLE4, o)?;
            spis = parse_spi_range("ah", o)?;
            if o.invert {
                p.u8(field::INVFLAGS, IPT_AH_INV_SPI as u8);
            }
        }
        p.u32(field::SPIS, spis[0]).u32(field::SPIS + 4, spis[1]);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<ipt_ah>())?;
        let spis = [r.u32(field::SPIS)?, r.u32(field::SPIS + 4)?];
        let inv = r.u8(field::INVFLAGS)? & IPT_AH_INV_SPI as u8 != 0;
        save_spi_range(out, "ahspi", spis, inv);
        Ok(())
    }
}

/// IPv6 `-m ah` (ip6t_ah).
struct Ah6;

impl Codec for Ah6 {
    fn name(&self) -> &'static str {
        "ah"
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
        &SPECS6
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<ip6t_ah>();
        let mut spis = [0, u32::MAX];
        let mut inv = 0u8;
        let mut xf = XtFlags::default();
        for o in opts {
            match xf.take("ah", &TABLE6, o)? {
                O_AHSPI => {
                    spis = parse_spi_range("ah", o)?;
                    if o.invert {
                        inv |= IP6T_AH_INV_SPI as u8;
                    }
                }
                O_AHLEN => {
                    // XTTYPE_UINT32
                    let len = parse_int_opt("ah", o, 0, u32::MAX.into())? as u32;
                    p.u32(field::V6_HDRLEN, len);
                    if o.invert {
                        inv |= IP6T_AH_INV_LEN as u8;
                    }
                }
                _ => {
                    p.u8(field::V6_HDRRES, 1);
                }
            }
        }
        p.u32(field::V6_SPIS, spis[0])
            .u32(field::V6_SPIS + 4, spis[1]);
        p.u8(field::V6_INVFLAGS, inv);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<ip6t_ah>())?;
        let spis = [r.u32(field::V6_SPIS)?, r.u32(field::V6_SPIS + 4)?];
        let inv = r.u8(field::V6_INVFLAGS)?;
        save_spi_range(out, "ahspi", spis, inv & IP6T_AH_INV_SPI as u8 != 0);
        let len = r.u32(field::V6_HDRLEN)?;
        let len_inv = inv & IP6T_AH_INV_LEN as u8 != 0;
        if len != 0 || len_inv {
            save_inv(out, len_inv);
            out.push_str(&format!(" --ahlen {len}"));
        }
        if r.u8(field::V6_HDRRES)? != 0 {
            out.push_str(" --ahres");
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

    fn parse(codec: &dyn Codec, family: Family, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch {
            proto: 51,
            ..IpMatch::any(family)
        };
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        let mut v = codec.parse(0, opts, &ctx)?;
        v.resize(xt_align(v.len()), 0);
        Ok(v)
    }

    fn save(codec: &dyn Codec, family: Family, data: &[u8]) -> ExtResult<String> {
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        codec.save(0, data, &ctx, &mut out)?;
        Ok(out)
    }

    // Kernel captures after iptables-legacy-restore of `-p ah -m ah ...`:
    // `--ahspi 500`
    const V4_SINGLE: &str = concat!(
        "f4010000 f4010000", // spis 500:500 (host order)
        "00",                // invflags: none
        "000000 00000000",   // padding
    );
    // `! --ahspi 1:2`
    const V4_INV_RANGE: &str = concat!(
        "01000000 02000000", // spis 1:2
        "01",                // invflags: IPT_AH_INV_SPI
        "000000 00000000",
    );
    // `--ahspi :7`
    const V4_OPEN_LO: &str = concat!("00000000 07000000", "00", "000000 00000000");
    // `-m ah` without options
    const V4_NONE: &str = concat!("00000000 ffffffff", "00", "000000 00000000");

    // Kernel captures after ip6tables-legacy-restore of `-m ah ...`:
    // `! --ahspi 1:2 ! --ahlen 8 --ahres`
    const V6_ALL: &str = concat!(
        "01000000 02000000", // spis 1:2
        "08000000",          // hdrlen 8
        "01",                // hdrres: yes
        "03",                // invflags: IP6T_AH_INV_SPI | IP6T_AH_INV_LEN
        "0000",              // padding
    );
    // `! --ahlen 0`
    const V6_INV_LEN0: &str = concat!("00000000 ffffffff", "00000000", "00", "02", "0000");
    // `--ahres`
    const V6_RES: &str = concat!("00000000 ffffffff", "00000000", "01", "00", "0000");
    // `--ahlen 4294967295`
    const V6_LEN_MAX: &str = concat!("00000000 ffffffff", "ffffffff", "00", "00", "0000");
    // `--ahspi 500`
    const V6_SINGLE: &str = concat!("f4010000 f4010000", "00000000", "00", "00", "0000");

    #[test]
    fn ipv4_parse_matches_kernel_bytes() {
        let spi = |inv, a| ov("ahspi", inv, &[a]);
        assert_eq!(
            parse(&Ah4, Family::V4, &[spi(false, "500")]).unwrap(),
            hex(V4_SINGLE)
        );
        assert_eq!(
            parse(&Ah4, Family::V4, &[spi(true, "1:2")]).unwrap(),
            hex(V4_INV_RANGE)
        );
        assert_eq!(
            parse(&Ah4, Family::V4, &[spi(false, ":7")]).unwrap(),
            hex(V4_OPEN_LO)
        );
        assert_eq!(parse(&Ah4, Family::V4, &[]).unwrap(), hex(V4_NONE));
    }

    #[test]
    fn ipv4_save_matches_iptables_legacy_save() {
        assert_eq!(
            save(&Ah4, Family::V4, &hex(V4_SINGLE)).unwrap(),
            " --ahspi 500"
        );
        assert_eq!(
            save(&Ah4, Family::V4, &hex(V4_INV_RANGE)).unwrap(),
            " ! --ahspi 1:2"
        );
        assert_eq!(
            save(&Ah4, Family::V4, &hex(V4_OPEN_LO)).unwrap(),
            " --ahspi 0:7"
        );
        assert_eq!(save(&Ah4, Family::V4, &hex(V4_NONE)).unwrap(), "");
    }

    #[test]
    fn ipv6_parse_matches_kernel_bytes() {
        let p = |opts: &[OptValue]| parse(&Ah6, Family::V6, opts).unwrap();
        assert_eq!(
            p(&[
                ov("ahspi", true, &["1:2"]),
                ov("ahlen", true, &["8"]),
                ov("ahres", false, &[])
            ]),
            hex(V6_ALL)
        );
        assert_eq!(p(&[ov("ahlen", true, &["0"])]), hex(V6_INV_LEN0));
        assert_eq!(p(&[ov("ahres", false, &[])]), hex(V6_RES));
        assert_eq!(p(&[ov("ahlen", false, &["4294967295"])]), hex(V6_LEN_MAX));
        assert_eq!(p(&[ov("ahspi", false, &["500"])]), hex(V6_SINGLE));
    }

    #[test]
    fn ipv6_save_matches_ip6tables_legacy_save() {
        let s = |h| save(&Ah6, Family::V6, &hex(h)).unwrap();
        assert_eq!(s(V6_ALL), " ! --ahspi 1:2 ! --ahlen 8 --ahres");
        assert_eq!(s(V6_INV_LEN0), " ! --ahlen 0");
        assert_eq!(s(V6_RES), " --ahres");
        assert_eq!(s(V6_LEN_MAX), " --ahlen 4294967295");
        assert_eq!(s(V6_SINGLE), " --ahspi 500");
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in ["x", "-1", "4294967296", "1:2:3"] {
            assert!(
                parse(&Ah4, Family::V4, &[ov("ahspi", false, &[bad])]).is_err(),
                "{bad}"
            );
            assert!(
                parse(&Ah6, Family::V6, &[ov("ahlen", false, &[bad])]).is_err(),
                "{bad}"
            );
        }
        assert!(parse(&Ah4, Family::V4, &[ov("ahres", false, &[])]).is_err());
        assert!(parse(&Ah6, Family::V6, &[ov("ahres", true, &[])])
            .unwrap_err()
            .contains("cannot be inverted"));
        assert!(parse(
            &Ah6,
            Family::V6,
            &[ov("ahlen", false, &["1"]), ov("ahlen", false, &["2"])]
        )
        .unwrap_err()
        .contains("only be used once"));
        assert!(save(&Ah4, Family::V4, &[0; 4]).is_err());
        assert!(save(&Ah6, Family::V6, &[0; 10]).is_err());
    }
}
