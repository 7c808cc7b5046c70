//! `-m rt` (ip6t_rt, IPv6 only): the Routing extension header: type,
//! Segments Left (a range), length, and for type 0 the reserved field and
//! the address list.

use std::mem::{offset_of, size_of};
use std::net::Ipv6Addr;

use super::conntrack::inet_ntop6;
use super::length::parse_uint_range;
use super::recent::{parse_int_opt, XtFlags, XtOpt, XTOPT_INVERT};
use super::{
    save_inv, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    in6_addr, ip6t_rt, IP6T_RT_FST, IP6T_RT_FST_NSTRICT, IP6T_RT_HOPS, IP6T_RT_INV_LEN,
    IP6T_RT_INV_SGS, IP6T_RT_INV_TYP, IP6T_RT_LEN, IP6T_RT_RES, IP6T_RT_SGS, IP6T_RT_TYP,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Rt];

mod field {
    use super::*;
    pub const RT_TYPE: usize = offset_of!(ip6t_rt, rt_type);
    pub const SEGSLEFT: usize = offset_of!(ip6t_rt, segsleft);
    pub const HDRLEN: usize = offset_of!(ip6t_rt, hdrlen);
    pub const FLAGS: usize = offset_of!(ip6t_rt, flags);
    pub const INVFLAGS: usize = offset_of!(ip6t_rt, invflags);
    pub const ADDRS: usize = offset_of!(ip6t_rt, addrs);
    pub const ADDRNR: usize = offset_of!(ip6t_rt, addrnr);
    /// Size of one entry of `addrs`.
    pub const ADDR_LEN: usize = size_of::<in6_addr>();
}

const O_RT_TYPE: u8 = 0;
const O_RT_SEGSLEFT: u8 = 1;
const O_RT_LEN: u8 = 2;
const O_RT0RES: u8 = 3;
const O_RT0ADDRS: u8 = 4;
const O_RT0NSTRICT: u8 = 5;

/// libip6t_rt's option table.
static TABLE: [XtOpt; 6] = [
    XtOpt::new("rt-type", O_RT_TYPE, Arg::One, XTOPT_INVERT),
    XtOpt::new("rt-segsleft", O_RT_SEGSLEFT, Arg::One, XTOPT_INVERT),
    XtOpt::new("rt-len", O_RT_LEN, Arg::One, XTOPT_INVERT),
    XtOpt::new("rt-0-res", O_RT0RES, Arg::None, 0),
    XtOpt::new("rt-0-addrs", O_RT0ADDRS, Arg::One, 0),
    XtOpt::new("rt-0-not-strict", O_RT0NSTRICT, Arg::None, 0),
];
static SPECS: [OptSpec; 6] = XtOpt::specs(&TABLE);

/// parse_addresses: a comma list of at most IP6T_RT_HOPS numeric IPv6
/// addresses (inet_pton; no host names).
fn parse_addresses(s: &str) -> ExtResult<Vec<[u8; 16]>> {
    let items: Vec<&str> = s.split(',').collect();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if out.len() == IP6T_RT_HOPS as usize {
            return Err("too many addresses specified".into());
        }
        let a = item
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("bad address: {item}"))?;
        out.push(a.octets());
    }
    Ok(out)
}

struct Rt;

impl Codec for Rt {
    fn name(&self) -> &'static str {
        "rt"
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
        let mut p = Payload::of::<ip6t_rt>();
        // rt_init: any Segments Left.
        let mut segsleft = [0u32, u32::MAX];
        let (mut flags, mut inv) = (0u32, 0u32);
        let mut rt_type = 0u32;
        let mut seen = XtFlags::default();
        for o in opts {
            // Checked before this option counts as seen, as libip6t_rt does.
            let type0 = seen.has(O_RT_TYPE) && rt_type == 0 && inv & IP6T_RT_INV_TYP == 0;
            let addrs_given = seen.has(O_RT0ADDRS);
            match seen.take("rt", &TABLE, o)? {
                O_RT_TYPE => {
                    rt_type = parse_int_opt("rt", o, 0, u32::MAX.into())? as u32;
                    p.u32(field::RT_TYPE, rt_type);
                    if o.invert {
                        inv |= IP6T_RT_INV_TYP;
                    }
                    flags |= IP6T_RT_TYP;
                }
                O_RT_SEGSLEFT => {
                    // XTTYPE_UINT32RC; a reversed range is kept as given.
                    let v = parse_uint_range("rt", o, u32::MAX.into())?;
                    segsleft[0] = v[0] as u32;
                    segsleft[1] = v.get(1).copied().unwrap_or(v[0]) as u32;
                    if o.invert {
                        inv |= IP6T_RT_INV_SGS;
                    }
                    flags |= IP6T_RT_SGS;
                }
                O_RT_LEN => {
                    let v = parse_int_opt("rt", o, 0, u32::MAX.into())?;
                    p.u32(field::HDRLEN, v as u32);
                    if o.invert {
                        inv |= IP6T_RT_INV_LEN;
                    }
                    flags |= IP6T_RT_LEN;
                }
                O_RT0RES => {
                    if !type0 {
                        return Err("`--rt-type 0' required before `--rt-0-res'".into());
                    }
                    flags |= IP6T_RT_RES;
                }
                O_RT0ADDRS => {
                    if !type0 {
                        return Err("`--rt-type 0' required before `--rt-0-addrs'".into());
                    }
                    let addrs = parse_addresses(o.arg())?;
                    for (i, a) in addrs.iter().enumerate() {
                        p.bytes(field::ADDRS + i * field::ADDR_LEN, a);
                    }
                    p.u8(field::ADDRNR, addrs.len() as u8);
                    flags |= IP6T_RT_FST;
                }
                _ => {
                    if !addrs_given {
                        return Err("`--rt-0-addr ...' required before `--rt-0-not-strict'".into());
                    }
                    flags |= IP6T_RT_FST_NSTRICT;
                }
            }
        }
        seen.fcheck("rt", &TABLE)?;
        p.u32(field::SEGSLEFT, segsleft[0])
            .u32(field::SEGSLEFT + 4, segsleft[1]);
        p.u8(field::FLAGS, flags as u8)
            .u8(field::INVFLAGS, inv as u8);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<ip6t_rt>())?;
        let flags = u32::from(r.u8(field::FLAGS)?);
        let inv = u32::from(r.u8(field::INVFLAGS)?);
        if flags & IP6T_RT_TYP != 0 {
            save_inv(out, inv & IP6T_RT_INV_TYP != 0);
            out.push_str(&format!(" --rt-type {}", r.u32(field::RT_TYPE)?));
        }
        let sgs = [r.u32(field::SEGSLEFT)?, r.u32(field::SEGSLEFT + 4)?];
        if sgs != [0, u32::MAX] {
            save_inv(out, inv & IP6T_RT_INV_SGS != 0);
            if sgs[0] != sgs[1] {
                out.push_str(&format!(" --rt-segsleft {}:{}", sgs[0], sgs[1]));
            } else {
                out.push_str(&format!(" --rt-segsleft {}", sgs[0]));
            }
        }
        if flags & IP6T_RT_LEN != 0 {
            save_inv(out, inv & IP6T_RT_INV_LEN != 0);
            out.push_str(&format!(" --rt-len {}", r.u32(field::HDRLEN)?));
        }
        if flags & IP6T_RT_RES != 0 {
            out.push_str(" --rt-0-res");
        }
        if flags & IP6T_RT_FST != 0 {
            out.push_str(" --rt-0-addrs");
        }
        // rt_save prints the list whatever the flags say.
        let n = usize::from(r.u8(field::ADDRNR)?);
        if n > IP6T_RT_HOPS as usize {
            return Err(format!(
                "rt: {n} addresses in a list of at most {IP6T_RT_HOPS}"
            ));
        }
        for i in 0..n {
            let mut a = [0u8; 16];
            a.copy_from_slice(r.bytes(field::ADDRS + i * field::ADDR_LEN, field::ADDR_LEN)?);
            out.push(if i == 0 { ' ' } else { ',' });
            out.push_str(&inet_ntop6(&a));
        }
        if flags & IP6T_RT_FST_NSTRICT != 0 {
            out.push_str(" --rt-0-not-strict");
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

    fn ov(name: &'static str, invert: bool, arg: Option<&str>) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: arg.map(str::to_string).into_iter().collect(),
        }
    }
    fn val(name: &'static str, arg: &str) -> OptValue<'static> {
        ov(name, false, Some(arg))
    }
    fn inv(name: &'static str, arg: &str) -> OptValue<'static> {
        ov(name, true, Some(arg))
    }
    fn flag(name: &'static str) -> OptValue<'static> {
        ov(name, false, None)
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
        with_ctx(|ctx| Rt.parse(0, opts, ctx)).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(data: &[u8]) -> ExtResult<String> {
        let mut out = String::new();
        with_ctx(|ctx| Rt.save(0, data, ctx, &mut out))?;
        Ok(out)
    }

    /// A fixture: the fixed head, then `addrs` (the rest zero), then addrnr
    /// and its padding. Bytes captured from the kernel after
    /// ip6tables-legacy-restore (tests/rules6/rt.rules).
    fn fixture(head: &str, addrs: &str, addrnr: u8) -> Vec<u8> {
        let mut v = hex(head);
        let list = hex(addrs);
        v.extend_from_slice(&list);
        v.resize(field::ADDRNR, 0);
        v.push(addrnr);
        v.resize(xt_align(size_of::<ip6t_rt>()), 0);
        v
    }

    // rt_type, segsleft[2], hdrlen (host order), flags, invflags, 2 bytes
    // padding before addrs.
    /// `--rt-type 0 --rt-segsleft 2 --rt-len 40 --rt-0-res
    /// --rt-0-addrs 2001:db8::1,::1.2.3.4 --rt-0-not-strict`
    fn all_type0() -> Vec<u8> {
        fixture(
            "00000000 02000000 02000000 28000000 3f 00 0000",
            "20010db8000000000000000000000001 00000000000000000000000001020304",
            2,
        )
    }
    /// `! --rt-type 2 ! --rt-segsleft 1:5 ! --rt-len 24`
    fn inverted() -> Vec<u8> {
        fixture("02000000 01000000 05000000 18000000 07 07 0000", "", 0)
    }
    /// `--rt-segsleft 3:`
    fn open_hi() -> Vec<u8> {
        fixture("00000000 03000000 ffffffff 00000000 02 00 0000", "", 0)
    }
    /// `--rt-type 4 --rt-segsleft :9`
    fn open_lo() -> Vec<u8> {
        fixture("04000000 00000000 09000000 00000000 03 00 0000", "", 0)
    }
    /// the 16-address list of rt.rules
    fn sixteen() -> Vec<u8> {
        let mut list = String::new();
        for i in 1..=14 {
            list.push_str(&format!("000000000000000000000000000000{i:02x}"));
        }
        list.push_str("00000000000000000000ffff0a000001 00010000000000020000000000000003");
        fixture("00000000 00000000 ffffffff 00000000 11 00 0000", &list, 16)
    }
    /// `--rt-len 4294967295 --rt-type 0x10`
    fn max_len() -> Vec<u8> {
        fixture("10000000 00000000 ffffffff ffffffff 05 00 0000", "", 0)
    }
    /// no option
    fn none() -> Vec<u8> {
        fixture("00000000 00000000 ffffffff 00000000 00 00 0000", "", 0)
    }

    const SIXTEEN: &str =
        "::1,::2,::3,::4,::5,::6,::7,::8,::9,::a,::b,::c,::d,::e,::ffff:10.0.0.1,1:0:0:2:0:0:0:3";

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(
            parse(&[
                val("rt-type", "0"),
                val("rt-segsleft", "2"),
                val("rt-len", "40"),
                flag("rt-0-res"),
                val("rt-0-addrs", "2001:db8::1,::1.2.3.4"),
                flag("rt-0-not-strict"),
            ])
            .unwrap(),
            all_type0()
        );
        assert_eq!(
            parse(&[
                inv("rt-type", "2"),
                inv("rt-segsleft", "1:5"),
                inv("rt-len", "24")
            ])
            .unwrap(),
            inverted()
        );
        assert_eq!(parse(&[val("rt-segsleft", "3:")]).unwrap(), open_hi());
        assert_eq!(
            parse(&[val("rt-type", "4"), val("rt-segsleft", ":9")]).unwrap(),
            open_lo()
        );
        assert_eq!(
            parse(&[val("rt-type", "0"), val("rt-0-addrs", SIXTEEN)]).unwrap(),
            sixteen()
        );
        assert_eq!(
            parse(&[val("rt-len", "4294967295"), val("rt-type", "0x10")]).unwrap(),
            max_len()
        );
        assert_eq!(parse(&[]).unwrap(), none());
    }

    #[test]
    fn save_matches_ip6tables_legacy_save() {
        assert_eq!(
            save(&all_type0()).unwrap(),
            " --rt-type 0 --rt-segsleft 2 --rt-len 40 --rt-0-res --rt-0-addrs 2001:db8::1,::1.2.3.4 --rt-0-not-strict"
        );
        assert_eq!(
            save(&inverted()).unwrap(),
            " ! --rt-type 2 ! --rt-segsleft 1:5 ! --rt-len 24"
        );
        assert_eq!(save(&open_hi()).unwrap(), " --rt-segsleft 3:4294967295");
        assert_eq!(save(&open_lo()).unwrap(), " --rt-type 4 --rt-segsleft 0:9");
        assert_eq!(
            save(&sixteen()).unwrap(),
            " --rt-type 0 --rt-0-addrs ::1,::2,::3,::4,::5,::6,::7,::8,::9,::a,::b,::c,::d,::e,::ffff:10.0.0.1,1:0:0:2::3"
        );
        assert_eq!(
            save(&max_len()).unwrap(),
            " --rt-type 16 --rt-len 4294967295"
        );
        assert_eq!(save(&none()).unwrap(), "");
    }

    #[test]
    fn bad_values_are_refused() {
        for opts in [
            vec![val("rt-type", "4294967296")],
            vec![val("rt-type", "-1")],
            vec![val("rt-segsleft", "1:2:3")],
            vec![val("rt-len", "x")],
            vec![flag("rt-0-res")],
            vec![val("rt-type", "1"), flag("rt-0-res")],
            vec![inv("rt-type", "0"), flag("rt-0-res")],
            vec![flag("rt-0-res"), val("rt-type", "0")],
            vec![val("rt-0-addrs", "::1")],
            vec![val("rt-type", "0"), val("rt-0-addrs", "1.2.3.4")],
            vec![val("rt-type", "0"), val("rt-0-addrs", "::1,")],
            vec![val("rt-type", "0"), val("rt-0-addrs", "::1,,::2")],
            vec![val("rt-type", "0"), val("rt-0-addrs", "fe80::1%lo")],
            vec![
                val("rt-type", "0"),
                val("rt-0-addrs", &format!("{SIXTEEN},::99")),
            ],
            vec![val("rt-type", "0"), flag("rt-0-not-strict")],
            vec![ov("rt-0-res", true, None)],
            vec![ov("rt-0-addrs", true, Some("::1"))],
            vec![val("rt-type", "0"), val("rt-type", "0")],
        ] {
            assert!(parse(&opts).is_err(), "{opts:?} accepted");
        }
        let mut corrupt = none();
        corrupt[field::ADDRNR] = 17;
        assert!(save(&corrupt).is_err(), "addrnr beyond the array");
        assert!(save(&[0u8; 20]).is_err(), "short payload must not panic");
    }
}
