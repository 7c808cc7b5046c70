//! `-m helper` (xt_helper): the conntrack helper of the packet's
//! connection, `[!] --helper NAME`.
//!
//! One revision (0) for both families.

use std::mem::offset_of;

use super::recent::{put_string, XtFlags, XtOpt, XTOPT_INVERT, XTOPT_MAND};
use super::{
    save_inv, save_string, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::xt_helper_info;

pub(super) static CODECS: &[&dyn Codec] = &[&Helper];

mod field {
    use super::*;
    pub const INVERT: usize = offset_of!(xt_helper_info, invert);
    pub const NAME: usize = offset_of!(xt_helper_info, name);
    /// `char name[30]` (checked against the bindings in a test).
    pub const NAME_LEN: usize = 30;
}

const O_HELPER: u8 = 0;
const TABLE: [XtOpt; 1] = [XtOpt::new(
    "helper",
    O_HELPER,
    Arg::One,
    XTOPT_MAND | XTOPT_INVERT,
)];
static SPECS: [OptSpec; 1] = XtOpt::specs(&TABLE);

struct Helper;

impl Codec for Helper {
    fn name(&self) -> &'static str {
        "helper"
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
        let mut p = Payload::of::<xt_helper_info>();
        let mut xf = XtFlags::default();
        for o in opts {
            xf.take("helper", &TABLE, o)?;
            // iptables cuts a longer name to 29 bytes; such a name can never
            // equal a helper's (at most 15 bytes), so it is refused instead.
            if o.arg().len() >= field::NAME_LEN {
                return Err(format!(
                    "helper: helper name `{}' is too long: at most {} bytes",
                    o.arg(),
                    field::NAME_LEN - 1
                ));
            }
            put_string(&mut p, field::NAME, field::NAME_LEN, o.arg());
            if o.invert {
                p.u32(field::INVERT, 1);
            }
        }
        xf.fcheck("helper", &TABLE)?;
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_helper_info>())?;
        save_inv(out, r.u32(field::INVERT)? != 0);
        out.push_str(" --helper");
        save_string(out, r.cstr(field::NAME, field::NAME_LEN)?);
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
            name: "helper",
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
        let mut v = Helper.parse(0, opts, &ctx)?;
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
        Helper.save(0, data, &ctx, &mut out)?;
        Ok(out)
    }

    // Kernel capture after iptables-legacy-restore of `-m helper --helper ftp`.
    fn ftp() -> Vec<u8> {
        hex(concat!(
            "00000000",                                               // invert: no
            "667470",                                                 // name "ftp"
            "000000000000000000000000000000000000000000000000000000", // NUL-padded to 30 bytes
            "0000",                                                   // struct padding
            "00000000",                                               // padding to XT_ALIGN
        ))
    }

    // Kernel capture of `-m helper ! --helper "a b\"c"`.
    fn quoted_inverted() -> Vec<u8> {
        hex(concat!(
            "01000000",                                           // invert: yes
            "6120622263",                                         // name `a b"c`
            "00000000000000000000000000000000000000000000000000", // NUL-padded to 30 bytes
            "0000 00000000",                                      // padding
        ))
    }

    // Kernel capture of `-m helper --helper 12345678901234567890123456789`
    // (29 bytes, the longest name that fits).
    fn longest() -> Vec<u8> {
        hex(concat!(
            "00000000",                                                   // invert: no
            "3132333435363738393031323334353637383930313233343536373839", // 29 bytes
            "00",                                                         // NUL
            "0000 00000000",                                              // padding
        ))
    }

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(parse(Family::V4, &[ov(false, "ftp")]).unwrap(), ftp());
        assert_eq!(
            parse(Family::V6, &[ov(true, "a b\"c")]).unwrap(),
            quoted_inverted()
        );
        assert_eq!(
            parse(Family::V4, &[ov(false, "12345678901234567890123456789")]).unwrap(),
            longest()
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(save(&ftp()).unwrap(), " --helper ftp");
        assert_eq!(
            save(&quoted_inverted()).unwrap(),
            " ! --helper \"a b\\\"c\""
        );
        assert_eq!(
            save(&longest()).unwrap(),
            " --helper 12345678901234567890123456789"
        );
    }

    #[test]
    fn name_field_size() {
        assert_eq!(xt_helper_info::default().name.len(), field::NAME_LEN);
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(
            parse(Family::V4, &[ov(false, "123456789012345678901234567890")])
                .unwrap_err()
                .contains("too long")
        );
        assert!(parse(Family::V4, &[])
            .unwrap_err()
            .contains("must be specified"));
        assert!(parse(Family::V4, &[ov(false, "ftp"), ov(false, "sip")])
            .unwrap_err()
            .contains("only be used once"));
        assert!(save(&[0; 16]).is_err());
    }
}
