//! `-m frag` (ip6t_frag, IPv6 only): the Fragment extension header: its
//! identification (a range), length, reserved bits and position flags.

use std::mem::offset_of;

use super::length::parse_uint_range;
use super::recent::{parse_int_opt, XtFlags, XtOpt, XTOPT_INVERT};
use super::{
    save_inv, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    ip6t_frag, IP6T_FRAG_FST, IP6T_FRAG_IDS, IP6T_FRAG_INV_IDS, IP6T_FRAG_INV_LEN, IP6T_FRAG_LEN,
    IP6T_FRAG_MF, IP6T_FRAG_NMF, IP6T_FRAG_RES,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Frag];

mod field {
    use super::*;
    pub const IDS: usize = offset_of!(ip6t_frag, ids);
    pub const HDRLEN: usize = offset_of!(ip6t_frag, hdrlen);
    pub const FLAGS: usize = offset_of!(ip6t_frag, flags);
    pub const INVFLAGS: usize = offset_of!(ip6t_frag, invflags);
}

const O_FRAGID: u8 = 0;
const O_FRAGLEN: u8 = 1;
const O_FRAGRES: u8 = 2;
const O_FRAGFIRST: u8 = 3;
const O_FRAGMORE: u8 = 4;
const O_FRAGLAST: u8 = 5;

/// libip6t_frag's option table.
static TABLE: [XtOpt; 6] = [
    XtOpt::new("fragid", O_FRAGID, Arg::One, XTOPT_INVERT),
    XtOpt::new("fraglen", O_FRAGLEN, Arg::One, XTOPT_INVERT),
    XtOpt::new("fragres", O_FRAGRES, Arg::None, 0),
    XtOpt::new("fragfirst", O_FRAGFIRST, Arg::None, 0),
    XtOpt::new("fragmore", O_FRAGMORE, Arg::None, 0).excl(1 << O_FRAGLAST),
    XtOpt::new("fraglast", O_FRAGLAST, Arg::None, 0).excl(1 << O_FRAGMORE),
];
static SPECS: [OptSpec; 6] = XtOpt::specs(&TABLE);

struct Frag;

impl Codec for Frag {
    fn name(&self) -> &'static str {
        "frag"
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
        let mut p = Payload::of::<ip6t_frag>();
        // frag_init: any identification.
        let mut ids = [0u32, u32::MAX];
        let (mut flags, mut inv) = (0u32, 0u32);
        let mut seen = XtFlags::default();
        for o in opts {
            match seen.take("frag", &TABLE, o)? {
                O_FRAGID => {
                    // XTTYPE_UINT32RC; a reversed range is kept as given,
                    // as libip6t_frag does (it then matches nothing).
                    let v = parse_uint_range("frag", o, u32::MAX.into())?;
                    ids[0] = v[0] as u32;
                    ids[1] = v.get(1).copied().unwrap_or(v[0]) as u32;
                    if o.invert {
                        inv |= IP6T_FRAG_INV_IDS;
                    }
                    flags |= IP6T_FRAG_IDS;
                }
                O_FRAGLEN => {
                    let v = parse_int_opt("frag", o, 0, u32::MAX.into())?;
                    p.u32(field::HDRLEN, v as u32);
                    if o.invert {
                        inv |= IP6T_FRAG_INV_LEN;
                    }
                    flags |= IP6T_FRAG_LEN;
                }
                O_FRAGRES => flags |= IP6T_FRAG_RES,
                O_FRAGFIRST => flags |= IP6T_FRAG_FST,
                O_FRAGMORE => flags |= IP6T_FRAG_MF,
                _ => flags |= IP6T_FRAG_NMF,
            }
        }
        seen.fcheck("frag", &TABLE)?;
        p.u32(field::IDS, ids[0]).u32(field::IDS + 4, ids[1]);
        p.u8(field::FLAGS, flags as u8)
            .u8(field::INVFLAGS, inv as u8);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<ip6t_frag>())?;
        let ids = [r.u32(field::IDS)?, r.u32(field::IDS + 4)?];
        let flags = u32::from(r.u8(field::FLAGS)?);
        let inv = u32::from(r.u8(field::INVFLAGS)?);
        if ids != [0, u32::MAX] {
            save_inv(out, inv & IP6T_FRAG_INV_IDS != 0);
            if ids[0] != ids[1] {
                out.push_str(&format!(" --fragid {}:{}", ids[0], ids[1]));
            } else {
                out.push_str(&format!(" --fragid {}", ids[0]));
            }
        }
        if flags & IP6T_FRAG_LEN != 0 {
            save_inv(out, inv & IP6T_FRAG_INV_LEN != 0);
            out.push_str(&format!(" --fraglen {}", r.u32(field::HDRLEN)?));
        }
        for (bit, name) in [
            (IP6T_FRAG_RES, "fragres"),
            (IP6T_FRAG_FST, "fragfirst"),
            (IP6T_FRAG_MF, "fragmore"),
            (IP6T_FRAG_NMF, "fraglast"),
        ] {
            if flags & bit != 0 {
                out.push_str(&format!(" --{name}"));
            }
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
        with_ctx(|ctx| Frag.parse(0, opts, ctx)).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(data: &[u8]) -> ExtResult<String> {
        let mut out = String::new();
        with_ctx(|ctx| Frag.save(0, data, ctx, &mut out))?;
        Ok(out)
    }

    // Captured from the kernel after ip6tables-legacy-restore (tests/rules6/frag.rules).
    // ids[2] (host order), hdrlen, flags, invflags, padding.
    /// `--fragid 100`
    const ID_100: &str = "64000000 64000000 00000000 01 00 0000";
    /// `! --fragid 1:1000 --fraglen 8`
    const INV_IDS_LEN: &str = "01000000 e8030000 08000000 03 01 0000";
    /// `--fragid 5: ! --fraglen 16 --fragres`
    const OPEN_HI: &str = "05000000 ffffffff 10000000 07 02 0000";
    /// `--fragid :7 --fragfirst --fragmore`
    const OPEN_LO: &str = "00000000 07000000 00000000 19 00 0000";
    /// `--fraglast`
    const LAST: &str = "00000000 ffffffff 00000000 20 00 0000";
    /// `--fragid 0x10:4294967295 --fragres --fragfirst --fraglast`
    const RES_FST_NMF: &str = "10000000 ffffffff 00000000 2d 00 0000";
    /// no option
    const NONE: &str = "00000000 ffffffff 00000000 00 00 0000";
    /// `--fragid 9:3` (kept reversed)
    const REVERSED: &str = "09000000 03000000 00000000 01 00 0000";
    /// `! --fragid 0:4294967295` (saved as nothing)
    const INV_ANY: &str = "00000000 ffffffff 00000000 01 01 0000";
    /// `--fraglen 4294967295 --fragid 4294967295`
    const MAX: &str = "ffffffff ffffffff ffffffff 03 00 0000";

    #[test]
    fn parse_matches_kernel_bytes() {
        let id = |inv, a| ov("fragid", inv, Some(a));
        let len = |inv, a| ov("fraglen", inv, Some(a));
        let cases: Vec<(Vec<OptValue>, &str)> = vec![
            (vec![id(false, "100")], ID_100),
            (vec![id(true, "1:1000"), len(false, "8")], INV_IDS_LEN),
            (
                vec![id(false, "5:"), len(true, "16"), flag("fragres")],
                OPEN_HI,
            ),
            (
                vec![id(false, ":7"), flag("fragfirst"), flag("fragmore")],
                OPEN_LO,
            ),
            (vec![flag("fraglast")], LAST),
            (
                vec![
                    id(false, "0x10:4294967295"),
                    flag("fragres"),
                    flag("fragfirst"),
                    flag("fraglast"),
                ],
                RES_FST_NMF,
            ),
            (vec![], NONE),
            (vec![id(false, "9:3")], REVERSED),
            (vec![id(true, "0:4294967295")], INV_ANY),
            (vec![len(false, "4294967295"), id(false, "4294967295")], MAX),
        ];
        for (opts, fx) in cases {
            assert_eq!(parse(&opts).unwrap(), hex(fx), "{opts:?}");
        }
    }

    #[test]
    fn save_matches_ip6tables_legacy_save() {
        let cases = [
            (ID_100, " --fragid 100"),
            (INV_IDS_LEN, " ! --fragid 1:1000 --fraglen 8"),
            (OPEN_HI, " --fragid 5:4294967295 ! --fraglen 16 --fragres"),
            (OPEN_LO, " --fragid 0:7 --fragfirst --fragmore"),
            (LAST, " --fraglast"),
            (
                RES_FST_NMF,
                " --fragid 16:4294967295 --fragres --fragfirst --fraglast",
            ),
            (NONE, ""),
            (REVERSED, " --fragid 9:3"),
            (INV_ANY, ""),
            (MAX, " --fragid 4294967295 --fraglen 4294967295"),
        ];
        for (fx, text) in cases {
            assert_eq!(save(&hex(fx)).unwrap(), text);
        }
    }

    #[test]
    fn bad_values_are_refused() {
        for o in [
            ov("fragid", false, Some("4294967296")),
            ov("fragid", false, Some("1:2:3")),
            ov("fragid", false, Some("-1")),
            ov("fragid", false, Some("1-2")),
            ov("fraglen", false, Some("4294967296")),
            ov("fraglen", false, Some("x")),
            ov("fragres", true, None),
            ov("fragfirst", true, None),
        ] {
            assert!(parse(std::slice::from_ref(&o)).is_err(), "{o:?} accepted");
        }
        assert!(parse(&[flag("fragmore"), flag("fraglast")])
            .unwrap_err()
            .contains("cannot be used together"));
        assert!(parse(&[flag("fragres"), flag("fragres")])
            .unwrap_err()
            .contains("only be used once"));
        assert!(save(&[0u8; 13]).is_err(), "short payload must not panic");
    }
}
