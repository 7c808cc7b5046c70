//! `-m dscp` (xt_dscp): the DiffServ codepoint of the IPv4 / IPv6 header,
//! by number (`--dscp`) or by class name (`--dscp-class`), optionally
//! negated. Both options end up as the same number; iptables-save prints
//! `--dscp 0xNN`.
//!
//! [`class_to_dscp`] is crate-visible for the DSCP target, which takes the
//! same class names.

use std::mem::{offset_of, size_of};

use super::recent::{parse_int_opt, XtFlags, XtOpt, XTOPT_INVERT};
use super::{
    save_inv, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{xt_dscp_info, XT_DSCP_MAX};

pub(super) static CODECS: &[&dyn Codec] = &[&Dscp];

mod field {
    use super::*;
    pub const DSCP: usize = offset_of!(xt_dscp_info, dscp);
    pub const INVERT: usize = offset_of!(xt_dscp_info, invert);
}

const O_DSCP: u8 = 0;
const O_DSCP_CLASS: u8 = 1;
const TABLE: [XtOpt; 2] = [
    XtOpt::new("dscp", O_DSCP, Arg::One, XTOPT_INVERT).excl(1 << O_DSCP_CLASS),
    XtOpt::new("dscp-class", O_DSCP_CLASS, Arg::One, XTOPT_INVERT).excl(1 << O_DSCP),
];
static SPECS: [OptSpec; 2] = XtOpt::specs(&TABLE);

/// dscp_helper.c's class table, in its order (`CS0` and `BE` are both 0).
const CLASSES: &[(&str, u8)] = &[
    ("CS0", 0x00),
    ("CS1", 0x08),
    ("CS2", 0x10),
    ("CS3", 0x18),
    ("CS4", 0x20),
    ("CS5", 0x28),
    ("CS6", 0x30),
    ("CS7", 0x38),
    ("BE", 0x00),
    ("AF11", 0x0a),
    ("AF12", 0x0c),
    ("AF13", 0x0e),
    ("AF21", 0x12),
    ("AF22", 0x14),
    ("AF23", 0x16),
    ("AF31", 0x1a),
    ("AF32", 0x1c),
    ("AF33", 0x1e),
    ("AF41", 0x22),
    ("AF42", 0x24),
    ("AF43", 0x26),
    ("EF", 0x2e),
];

/// class_to_dscp: the first class whose name starts the argument, compared
/// without regard to case (`strncasecmp` over the class name's length, so
/// `ef`, `EF` and also `EFX` are EF, as in iptables).
pub(crate) fn class_to_dscp(name: &str) -> ExtResult<u8> {
    let b = name.as_bytes();
    CLASSES
        .iter()
        .find(|(c, _)| b.len() >= c.len() && b[..c.len()].eq_ignore_ascii_case(c.as_bytes()))
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            format!("Invalid DSCP value `{name}': expected one of CS0..CS7, BE, AF11..AF43, EF")
        })
}

struct Dscp;

impl Codec for Dscp {
    fn name(&self) -> &'static str {
        "dscp"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        &SPECS
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_dscp_info>();
        let mut xf = XtFlags::default();
        for o in opts {
            let v = match xf.take("dscp", &TABLE, o)? {
                O_DSCP => parse_int_opt("dscp", o, 0, XT_DSCP_MAX.into())? as u8,
                _ => class_to_dscp(o.arg())?,
            };
            p.u8(field::DSCP, v);
            if o.invert {
                p.u8(field::INVERT, 1);
            }
        }
        if opts.is_empty() {
            return Err("DSCP match: Parameter --dscp is required".into());
        }
        xf.fcheck("dscp", &TABLE)?;
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<xt_dscp_info>())?;
        save_inv(out, r.u8(field::INVERT)? != 0);
        out.push_str(&format!(" --dscp 0x{:02x}", r.u8(field::DSCP)?));
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

    fn fixture(s: &str) -> Vec<u8> {
        hex(&s
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .collect::<String>())
    }

    fn parse(family: Family, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        Dscp.parse(0, opts, &ctx).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(family: Family, data: &[u8]) -> ExtResult<String> {
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Dscp.save(0, data, &ctx, &mut out).map(|_| out)
    }

    // Captured from the kernel after iptables-legacy-restore of
    // `-m dscp ! --dscp 46`.
    const EF_INV: &str = "
        2e          # dscp 46 (EF)
        01          # invert
        000000000000 # padding to XT_ALIGN";

    // ip6tables: `-m dscp --dscp-class af41`.
    const AF41_V6: &str = "
        22          # dscp 0x22
        00          # invert: no
        000000000000 # padding";

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(
            parse(Family::V4, &[ov("dscp", true, &["46"])]).unwrap(),
            fixture(EF_INV)
        );
        assert_eq!(
            parse(Family::V4, &[ov("dscp-class", true, &["EF"])]).unwrap(),
            fixture(EF_INV)
        );
        assert_eq!(
            parse(Family::V6, &[ov("dscp-class", false, &["af41"])]).unwrap(),
            fixture(AF41_V6)
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(
            save(Family::V4, &fixture(EF_INV)).unwrap(),
            " ! --dscp 0x2e"
        );
        assert_eq!(save(Family::V6, &fixture(AF41_V6)).unwrap(), " --dscp 0x22");
    }

    #[test]
    fn class_names_follow_dscp_helper() {
        assert_eq!(class_to_dscp("cs7").unwrap(), 0x38);
        assert_eq!(class_to_dscp("BE").unwrap(), 0);
        // strncasecmp over the class name's length: a longer word matches.
        assert_eq!(class_to_dscp("AF111").unwrap(), 0x0a);
        assert!(class_to_dscp("AF1").is_err());
        assert!(class_to_dscp("").is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        for arg in ["64", "-1", "x", "0x40", ""] {
            assert!(
                parse(Family::V4, &[ov("dscp", false, &[arg])]).is_err(),
                "{arg} accepted"
            );
        }
        assert!(parse(Family::V4, &[ov("dscp-class", false, &["AF44"])]).is_err());
        assert!(parse(Family::V4, &[]).is_err());
        assert_eq!(
            parse(
                Family::V4,
                &[ov("dscp", false, &["1"]), ov("dscp-class", false, &["EF"])]
            )
            .unwrap_err(),
            "dscp: option \"--dscp\" cannot be used together with \"--dscp-class\"."
        );
        assert!(parse(
            Family::V4,
            &[ov("dscp", false, &["1"]), ov("dscp", false, &["2"])]
        )
        .is_err());
        assert!(save(Family::V4, &[0x2e]).is_err(), "short payload");
    }
}
