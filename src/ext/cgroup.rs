//! `-m cgroup` (xt_cgroup): the socket's control group,
//! `[!] --cgroup CLASSID` (net_cls) and `[!] --path PATH` (cgroup2).
//!
//! Revision 0 has only `--cgroup` (mandatory); revisions 1 and 2 take
//! exactly one of `--path` and `--cgroup` (iptables accepts both or neither,
//! the kernel refuses them; refused here at parse time with a clearer
//! message). Revision 2 keeps the path in 512 bytes sharing space with the
//! classid, revision 1 in 4096 bytes beside it; iptables 1.8.9 picks 2. The
//! kernel keeps a pointer at the end that it never shows to user space.
//! A `--path` must name an existing cgroup2 directory (`/` always does).

use std::mem::offset_of;

use super::recent::{parse_int_opt, put_string, XtFlags, XtOpt, XTOPT_INVERT, XTOPT_MAND};
use super::{
    save_inv, save_string, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    xt_cgroup_info_v0, xt_cgroup_info_v1, xt_cgroup_info_v2, XT_CGROUP_PATH_MAX,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Cgroup];

mod field {
    use super::*;
    pub const V0_ID: usize = offset_of!(xt_cgroup_info_v0, id);
    pub const V0_INVERT: usize = offset_of!(xt_cgroup_info_v0, invert);
    pub const HAS_PATH: usize = offset_of!(xt_cgroup_info_v1, has_path);
    pub const HAS_CLASSID: usize = offset_of!(xt_cgroup_info_v1, has_classid);
    pub const INVERT_PATH: usize = offset_of!(xt_cgroup_info_v1, invert_path);
    pub const INVERT_CLASSID: usize = offset_of!(xt_cgroup_info_v1, invert_classid);
    pub const V1_PATH: usize = offset_of!(xt_cgroup_info_v1, path);
    pub const V1_CLASSID: usize = offset_of!(xt_cgroup_info_v1, classid);
    /// Revision 2: `path` and `classid` share this union.
    pub const V2_UNION: usize = offset_of!(xt_cgroup_info_v2, __bindgen_anon_1);
    /// The kernel's pointer (not part of what user space writes or reads).
    pub const V1_PRIV: usize = offset_of!(xt_cgroup_info_v1, priv_);
    pub const V2_PRIV: usize = offset_of!(xt_cgroup_info_v2, priv_);
    /// Revision 1's `char path[PATH_MAX]` ends where `classid` starts.
    pub const V1_PATH_LEN: usize = V1_CLASSID - V1_PATH;
    const _: () = assert!(V1_PATH_LEN == 4096);
    // The four leading flag bytes are the same in revisions 1 and 2.
    const _: () = assert!(offset_of!(xt_cgroup_info_v2, has_path) == HAS_PATH);
    const _: () = assert!(offset_of!(xt_cgroup_info_v2, has_classid) == HAS_CLASSID);
    const _: () = assert!(offset_of!(xt_cgroup_info_v2, invert_path) == INVERT_PATH);
    const _: () = assert!(offset_of!(xt_cgroup_info_v2, invert_classid) == INVERT_CLASSID);
}

const O_CLASSID: u8 = 0;
const O_PATH: u8 = 1;
const TABLE_V0: [XtOpt; 1] = [XtOpt::new(
    "cgroup",
    O_CLASSID,
    Arg::One,
    XTOPT_INVERT | XTOPT_MAND,
)];
const TABLE_V1: [XtOpt; 2] = [
    XtOpt::new("path", O_PATH, Arg::One, XTOPT_INVERT),
    XtOpt::new("cgroup", O_CLASSID, Arg::One, XTOPT_INVERT),
];
static SPECS: [OptSpec; 2] = XtOpt::specs(&TABLE_V1);

/// The size of the path field of a revision (1 or 2).
fn path_len(rev: u8) -> usize {
    if rev == 1 {
        field::V1_PATH_LEN
    } else {
        XT_CGROUP_PATH_MAX as usize
    }
}

struct Cgroup;

impl Cgroup {
    fn parse_v0(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_cgroup_info_v0>();
        let mut xf = XtFlags::default();
        for o in opts {
            xf.take("cgroup", &TABLE_V0, o)?;
            let id = parse_int_opt("cgroup", o, 0, u32::MAX.into())? as u32;
            p.u32(field::V0_ID, id);
            if o.invert {
                p.u32(field::V0_INVERT, 1);
            }
        }
        xf.fcheck("cgroup", &TABLE_V0)?;
        Ok(p.finish())
    }

    fn parse_v12(rev: u8, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let (mut p, path_off, classid_off) = if rev == 1 {
            (
                Payload::of::<xt_cgroup_info_v1>(),
                field::V1_PATH,
                field::V1_CLASSID,
            )
        } else {
            (
                Payload::of::<xt_cgroup_info_v2>(),
                field::V2_UNION,
                field::V2_UNION,
            )
        };
        let mut xf = XtFlags::default();
        for o in opts {
            match xf.take("cgroup", &TABLE_V1, o)? {
                O_PATH => {
                    let max = path_len(rev) - 1;
                    // iptables cuts a longer path (then no cgroup has it).
                    if o.arg().len() > max {
                        return Err(format!(
                            "cgroup: --path `{}' is too long: at most {max} bytes",
                            o.arg()
                        ));
                    }
                    put_string(&mut p, path_off, path_len(rev), o.arg());
                    p.u8(field::HAS_PATH, 1);
                    if o.invert {
                        p.u8(field::INVERT_PATH, 1);
                    }
                }
                _ => {
                    let id = parse_int_opt("cgroup", o, 0, u32::MAX.into())? as u32;
                    p.u32(classid_off, id);
                    p.u8(field::HAS_CLASSID, 1);
                    if o.invert {
                        p.u8(field::INVERT_CLASSID, 1);
                    }
                }
            }
        }
        match (xf.has(O_PATH), xf.has(O_CLASSID)) {
            (true, true) => Err(
                "cgroup: --path and --cgroup cannot be used together (the kernel refuses it)"
                    .into(),
            ),
            (false, false) => Err("cgroup: one of --path or --cgroup must be specified".into()),
            _ => Ok(p.finish()),
        }
    }
}

impl Codec for Cgroup {
    fn name(&self) -> &'static str {
        "cgroup"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V4, Family::V6]
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[2, 1, 0]
    }
    fn options(&self) -> &'static [OptSpec] {
        &SPECS
    }

    fn parse(&self, rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        if rev == 0 {
            Cgroup::parse_v0(opts)
        } else {
            Cgroup::parse_v12(rev, opts)
        }
    }

    fn save(&self, rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        if rev == 0 {
            let r = Reader::new(data, std::mem::size_of::<xt_cgroup_info_v0>())?;
            save_inv(out, r.u32(field::V0_INVERT)? != 0);
            out.push_str(&format!(" --cgroup {}", r.u32(field::V0_ID)?));
            return Ok(());
        }
        let (r, path_off, classid_off) = if rev == 1 {
            (
                Reader::new(data, field::V1_PRIV)?,
                field::V1_PATH,
                field::V1_CLASSID,
            )
        } else {
            (
                Reader::new(data, field::V2_PRIV)?,
                field::V2_UNION,
                field::V2_UNION,
            )
        };
        if r.u8(field::HAS_PATH)? != 0 {
            save_inv(out, r.u8(field::INVERT_PATH)? != 0);
            out.push_str(" --path");
            save_string(out, r.cstr(path_off, path_len(rev))?);
        }
        if r.u8(field::HAS_CLASSID)? != 0 {
            save_inv(out, r.u8(field::INVERT_CLASSID)? != 0);
            out.push_str(&format!(" --cgroup {}", r.u32(classid_off)?));
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

    fn ov(name: &'static str, invert: bool, arg: &str) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: vec![arg.to_string()].into(),
        }
    }

    fn parse(rev: u8, family: Family, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        let mut v = Cgroup.parse(rev, opts, &ctx)?;
        v.resize(xt_align(v.len()), 0);
        Ok(v)
    }

    fn save(rev: u8, data: &[u8]) -> ExtResult<String> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Cgroup.save(rev, data, &ctx, &mut out)?;
        Ok(out)
    }

    /// A fixture: `head` hex, then zeros up to `len` bytes.
    fn padded(head: &str, len: usize) -> Vec<u8> {
        let mut v = hex(head);
        v.resize(len, 0);
        v
    }

    // Payload sizes as the kernel reports them (entry match size - 32).
    const V2_SIZE: usize = 528;
    const V1_SIZE: usize = 4112;

    // Revision 2, kernel captures after iptables-legacy-restore (every byte
    // after the ones shown is zero: the rest of the 512-byte union, the
    // padding and the kernel's pointer):
    // `! --path /`
    const V2_INV_PATH: &str = concat!(
        "01", // has_path
        "00", // has_classid
        "01", // invert_path
        "00", // invert_classid
        "2f", // path "/"
    );
    // `--cgroup 0x100001`
    const V2_CLASSID: &str = concat!(
        "00",       // has_path
        "01",       // has_classid
        "00",       // invert_path
        "00",       // invert_classid
        "01001000", // classid 1048577, in the union's first bytes
    );
    // `! --cgroup 1`
    const V2_INV_CLASSID: &str = concat!("00", "01", "00", "01", "01000000");

    #[test]
    fn rev2_parse_matches_kernel_bytes() {
        assert_eq!(
            parse(2, Family::V4, &[ov("path", true, "/")]).unwrap(),
            padded(V2_INV_PATH, V2_SIZE)
        );
        assert_eq!(
            parse(2, Family::V6, &[ov("cgroup", false, "0x100001")]).unwrap(),
            padded(V2_CLASSID, V2_SIZE)
        );
        assert_eq!(
            parse(2, Family::V4, &[ov("cgroup", true, "1")]).unwrap(),
            padded(V2_INV_CLASSID, V2_SIZE)
        );
    }

    #[test]
    fn rev2_save_matches_iptables_legacy_save() {
        assert_eq!(
            save(2, &padded(V2_INV_PATH, V2_SIZE)).unwrap(),
            " ! --path \"/\""
        );
        assert_eq!(
            save(2, &padded(V2_CLASSID, V2_SIZE)).unwrap(),
            " --cgroup 1048577"
        );
        assert_eq!(
            save(2, &padded(V2_INV_CLASSID, V2_SIZE)).unwrap(),
            " ! --cgroup 1"
        );
    }

    // Revisions 1 and 0: kernel captures after iptables-legacy-restore with
    // the higher revisions hidden from its revision probe.
    #[test]
    fn rev1() {
        // `--path /`: flags, then the 4096-byte path
        let path = padded("01000000 2f", V1_SIZE);
        assert_eq!(
            parse(1, Family::V4, &[ov("path", false, "/")]).unwrap(),
            path
        );
        assert_eq!(save(1, &path).unwrap(), " --path \"/\"");
        // `! --cgroup 1`: classid after the path field, at byte 4100
        let mut classid = padded("00010001", V1_SIZE);
        classid[4100] = 1;
        assert_eq!(
            parse(1, Family::V4, &[ov("cgroup", true, "1")]).unwrap(),
            classid
        );
        assert_eq!(save(1, &classid).unwrap(), " ! --cgroup 1");
    }

    #[test]
    fn rev0() {
        // `--cgroup 7`
        let plain = hex(concat!("07000000", "00000000")); // id 7, invert no
        assert_eq!(
            parse(0, Family::V4, &[ov("cgroup", false, "7")]).unwrap(),
            plain
        );
        assert_eq!(save(0, &plain).unwrap(), " --cgroup 7");
        // `! --cgroup 0x100001`
        let inv = hex(concat!("01001000", "01000000")); // id 1048577, invert yes
        assert_eq!(
            parse(0, Family::V4, &[ov("cgroup", true, "0x100001")]).unwrap(),
            inv
        );
        assert_eq!(save(0, &inv).unwrap(), " ! --cgroup 1048577");
        assert!(parse(0, Family::V4, &[ov("path", false, "/")])
            .unwrap_err()
            .contains("unknown option"));
        assert!(parse(0, Family::V4, &[])
            .unwrap_err()
            .contains("must be specified"));
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in ["x", "-1", "4294967296", "1:2"] {
            assert!(
                parse(2, Family::V4, &[ov("cgroup", false, bad)]).is_err(),
                "{bad}"
            );
        }
        let long = "/a".repeat(256);
        assert!(parse(2, Family::V4, &[ov("path", false, &long)])
            .unwrap_err()
            .contains("too long"));
        assert!(parse(1, Family::V4, &[ov("path", false, &long)]).is_ok());
        assert!(parse(
            2,
            Family::V4,
            &[ov("path", false, "/"), ov("cgroup", false, "1")]
        )
        .unwrap_err()
        .contains("cannot be used together"));
        assert!(parse(2, Family::V4, &[])
            .unwrap_err()
            .contains("must be specified"));
        assert!(parse(
            2,
            Family::V4,
            &[ov("path", false, "/"), ov("path", false, "/x")]
        )
        .unwrap_err()
        .contains("only be used once"));
        assert!(save(2, &[0; 100]).is_err());
        assert!(save(1, &[0; 600]).is_err());
        assert!(save(0, &[0; 4]).is_err());
    }
}
