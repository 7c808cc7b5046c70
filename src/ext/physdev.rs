//! `-m physdev` (xt_physdev): the bridge ports of bridged packets,
//! `[!] --physdev-in NAME[+]`, `[!] --physdev-out NAME[+]`,
//! `[!] --physdev-is-in`, `[!] --physdev-is-out`, `[!] --physdev-is-bridged`.
//!
//! One revision (0) for both families. The kernel refuses `--physdev-out`
//! and `--physdev-is-out` in OUTPUT unless the rule also has a plain
//! `--physdev-is-bridged`.

use std::mem::offset_of;

use super::recent::{XtFlags, XtOpt, XTOPT_INVERT};
use super::{
    save_inv, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    xt_physdev_info, IFNAMSIZ, XT_PHYSDEV_OP_BRIDGED, XT_PHYSDEV_OP_IN, XT_PHYSDEV_OP_ISIN,
    XT_PHYSDEV_OP_ISOUT, XT_PHYSDEV_OP_OUT,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Physdev];

mod field {
    use super::*;
    pub const PHYSINDEV: usize = offset_of!(xt_physdev_info, physindev);
    pub const IN_MASK: usize = offset_of!(xt_physdev_info, in_mask);
    pub const PHYSOUTDEV: usize = offset_of!(xt_physdev_info, physoutdev);
    pub const OUT_MASK: usize = offset_of!(xt_physdev_info, out_mask);
    pub const INVERT: usize = offset_of!(xt_physdev_info, invert);
    pub const BITMASK: usize = offset_of!(xt_physdev_info, bitmask);
}

const IFNAMSIZ_: usize = IFNAMSIZ as usize;

const O_IN: u8 = 0;
const O_OUT: u8 = 1;
const O_IS_IN: u8 = 2;
const O_IS_OUT: u8 = 3;
const O_IS_BRIDGED: u8 = 4;
const TABLE: [XtOpt; 5] = [
    XtOpt::new("physdev-in", O_IN, Arg::One, XTOPT_INVERT),
    XtOpt::new("physdev-out", O_OUT, Arg::One, XTOPT_INVERT),
    XtOpt::new("physdev-is-in", O_IS_IN, Arg::None, XTOPT_INVERT),
    XtOpt::new("physdev-is-out", O_IS_OUT, Arg::None, XTOPT_INVERT),
    XtOpt::new("physdev-is-bridged", O_IS_BRIDGED, Arg::None, XTOPT_INVERT),
];
static SPECS: [OptSpec; 5] = XtOpt::specs(&TABLE);

/// xtables_parse_interface: the name NUL-padded to IFNAMSIZ and its match
/// mask (0xff over the name and its NUL; for `NAME+` over NAME only).
///
/// iptables accepts an empty name and `/` or blanks with a warning only;
/// such a name matches no real port (or, empty, any port) and its save text
/// does not load again, so they are refused here.
pub(crate) fn parse_bridge_port(ext: &str, opt: &str, s: &str) -> ExtResult<([u8; 16], [u8; 16])> {
    let b = crate::text::to_bytes(s);
    let b = &b[..];
    if b.len() >= IFNAMSIZ_ {
        return Err(format!(
            "{ext}: interface name `{s}' given to --{opt} must be shorter than IFNAMSIZ ({})",
            IFNAMSIZ_ - 1
        ));
    }
    if b.is_empty() {
        return Err(format!("{ext}: --{opt} needs an interface name"));
    }
    if let Some(&c) = b.iter().find(|&&c| c == b'/' || c == b' ') {
        return Err(format!(
            "{ext}: interface name `{s}' given to --{opt} has '{}', which no interface name can have",
            c as char
        ));
    }
    let mut name = [0u8; 16];
    let mut mask = [0u8; 16];
    name[..b.len()].copy_from_slice(b);
    if b.last() == Some(&b'+') {
        // The `+` stays in the name; only the bytes before it must match.
        mask[..b.len() - 1].fill(0xff);
    } else {
        // The mask covers the NUL terminator too: an exact match.
        mask[..=b.len()].fill(0xff);
    }
    Ok((name, mask))
}

struct Physdev;

impl Codec for Physdev {
    fn name(&self) -> &'static str {
        "physdev"
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
        let mut p = Payload::of::<xt_physdev_info>();
        let (mut bitmask, mut invert) = (0u8, 0u8);
        let mut xf = XtFlags::default();
        for o in opts {
            let id = xf.take("physdev", &TABLE, o)?;
            let op = match id {
                O_IN | O_OUT => {
                    let (name, mask) = parse_bridge_port("physdev", o.name, o.arg())?;
                    let (noff, moff, op) = if id == O_IN {
                        (field::PHYSINDEV, field::IN_MASK, XT_PHYSDEV_OP_IN)
                    } else {
                        (field::PHYSOUTDEV, field::OUT_MASK, XT_PHYSDEV_OP_OUT)
                    };
                    p.bytes(noff, &name).bytes(moff, &mask);
                    op
                }
                O_IS_IN => XT_PHYSDEV_OP_ISIN,
                O_IS_OUT => XT_PHYSDEV_OP_ISOUT,
                _ => XT_PHYSDEV_OP_BRIDGED,
            } as u8;
            bitmask |= op;
            if o.invert {
                invert |= op;
            }
        }
        if bitmask == 0 {
            return Err("PHYSDEV: no physdev option specified".into());
        }
        p.u8(field::BITMASK, bitmask).u8(field::INVERT, invert);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_physdev_info>())?;
        let bitmask = r.u8(field::BITMASK)?;
        let invert = r.u8(field::INVERT)?;
        let name = |off| -> ExtResult<String> {
            Ok(crate::text::from_bytes(r.cstr(off, IFNAMSIZ_)?).into_owned())
        };
        // libxt_physdev's order: is-in, in, is-out, out, is-bridged.
        let items: [(u32, &str, Option<usize>); 5] = [
            (XT_PHYSDEV_OP_ISIN, "physdev-is-in", None),
            (XT_PHYSDEV_OP_IN, "physdev-in", Some(field::PHYSINDEV)),
            (XT_PHYSDEV_OP_ISOUT, "physdev-is-out", None),
            (XT_PHYSDEV_OP_OUT, "physdev-out", Some(field::PHYSOUTDEV)),
            (XT_PHYSDEV_OP_BRIDGED, "physdev-is-bridged", None),
        ];
        for (op, opt, name_off) in items {
            let op = op as u8;
            if bitmask & op == 0 {
                continue;
            }
            save_inv(out, invert & op != 0);
            out.push_str(&format!(" --{opt}"));
            if let Some(off) = name_off {
                out.push(' ');
                out.push_str(&name(off)?);
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

    fn ov(name: &'static str, invert: bool, args: &[&str]) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn parse(family: Family, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        let mut v = Physdev.parse(0, opts, &ctx)?;
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
        Physdev.save(0, data, &ctx, &mut out)?;
        Ok(out)
    }

    // Kernel capture after iptables-legacy-restore of
    // `-A INPUT -m physdev ! --physdev-in br+ --physdev-is-in`.
    const IN_WILDCARD: &str = concat!(
        "62722b00000000000000000000000000", // physindev "br+"
        "ffff0000000000000000000000000000", // in_mask: "br" only
        "00000000000000000000000000000000", // physoutdev: none
        "00000000000000000000000000000000", // out_mask
        "01",                               // invert: IN
        "09",                               // bitmask: IN | ISIN
        "000000000000",                     // padding to XT_ALIGN
    );

    // Kernel capture of `-A FORWARD -m physdev ! --physdev-out
    // vethxxxxxxxxxx+ ! --physdev-is-out --physdev-in a`.
    const OUT_LONG: &str = concat!(
        "61000000000000000000000000000000", // physindev "a"
        "ffff0000000000000000000000000000", // in_mask: "a" and its NUL
        "76657468787878787878787878782b00", // physoutdev "vethxxxxxxxxxx+"
        "ffffffffffffffffffffffffffff0000", // out_mask: the 14 bytes before `+`
        "12",                               // invert: OUT | ISOUT
        "13",                               // bitmask: IN | OUT | ISOUT
        "000000000000",
    );

    // Kernel capture of `-A FORWARD -m physdev --physdev-is-bridged
    // --physdev-in + --physdev-out 0123456789abcde`.
    const ANY_AND_LONGEST: &str = concat!(
        "2b000000000000000000000000000000", // physindev "+"
        "00000000000000000000000000000000", // in_mask: nothing (any port)
        "30313233343536373839616263646500", // physoutdev, 15 bytes
        "ffffffffffffffffffffffffffffffff", // out_mask: all 16 bytes
        "00",                               // invert: none
        "07",                               // bitmask: IN | OUT | BRIDGED
        "000000000000",
    );

    // Kernel capture of `-A INPUT -m physdev ! --physdev-is-in ! --physdev-is-bridged`.
    const FLAGS_ONLY: &str = concat!(
        "00000000000000000000000000000000",
        "00000000000000000000000000000000",
        "00000000000000000000000000000000",
        "00000000000000000000000000000000",
        "0c", // invert: BRIDGED | ISIN
        "0c", // bitmask: BRIDGED | ISIN
        "000000000000",
    );

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(
            parse(
                Family::V4,
                &[
                    ov("physdev-in", true, &["br+"]),
                    ov("physdev-is-in", false, &[])
                ]
            )
            .unwrap(),
            hex(IN_WILDCARD)
        );
        assert_eq!(
            parse(
                Family::V4,
                &[
                    ov("physdev-out", true, &["vethxxxxxxxxxx+"]),
                    ov("physdev-is-out", true, &[]),
                    ov("physdev-in", false, &["a"]),
                ]
            )
            .unwrap(),
            hex(OUT_LONG)
        );
        assert_eq!(
            parse(
                Family::V6,
                &[
                    ov("physdev-is-bridged", false, &[]),
                    ov("physdev-in", false, &["+"]),
                    ov("physdev-out", false, &["0123456789abcde"]),
                ]
            )
            .unwrap(),
            hex(ANY_AND_LONGEST)
        );
        assert_eq!(
            parse(
                Family::V4,
                &[
                    ov("physdev-is-in", true, &[]),
                    ov("physdev-is-bridged", true, &[])
                ]
            )
            .unwrap(),
            hex(FLAGS_ONLY)
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(
            save(&hex(IN_WILDCARD)).unwrap(),
            " --physdev-is-in ! --physdev-in br+"
        );
        assert_eq!(
            save(&hex(OUT_LONG)).unwrap(),
            " --physdev-in a ! --physdev-is-out ! --physdev-out vethxxxxxxxxxx+"
        );
        assert_eq!(
            save(&hex(ANY_AND_LONGEST)).unwrap(),
            " --physdev-in + --physdev-out 0123456789abcde --physdev-is-bridged"
        );
        assert_eq!(
            save(&hex(FLAGS_ONLY)).unwrap(),
            " ! --physdev-is-in ! --physdev-is-bridged"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in ["0123456789abcdef", "", "a/b", "a b"] {
            assert!(
                parse(Family::V4, &[ov("physdev-in", false, &[bad])]).is_err(),
                "{bad:?}"
            );
        }
        assert!(parse(Family::V4, &[])
            .unwrap_err()
            .contains("no physdev option specified"));
        assert!(parse(
            Family::V4,
            &[
                ov("physdev-is-in", false, &[]),
                ov("physdev-is-in", false, &[])
            ]
        )
        .unwrap_err()
        .contains("only be used once"));
        assert!(save(&[0; 60]).is_err());
    }
}
