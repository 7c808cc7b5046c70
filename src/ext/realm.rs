//! `-m realm` (xt_realm, IPv4 only): the routing realm of the packet's
//! route, `[!] --realm VALUE[/MASK]`, values also as names from
//! `/etc/iproute2/rt_realms`.
//!
//! One revision (0). The kernel takes it in INPUT, FORWARD, OUTPUT and
//! POSTROUTING only.

use std::mem::offset_of;

use super::devgroup::{parse_val_mask, save_val_mask, Lmap};
use super::recent::{XtFlags, XtOpt, XTOPT_INVERT, XTOPT_MAND};
use super::{
    save_inv, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::xt_realm_info;

pub(super) static CODECS: &[&dyn Codec] = &[&Realm];

mod field {
    use super::*;
    pub const ID: usize = offset_of!(xt_realm_info, id);
    pub const MASK: usize = offset_of!(xt_realm_info, mask);
    pub const INVERT: usize = offset_of!(xt_realm_info, invert);
}

/// The file of realm names.
const REALM_FILE: &str = "/etc/iproute2/rt_realms";

const O_REALM: u8 = 0;
const TABLE: [XtOpt; 1] = [XtOpt::new(
    "realm",
    O_REALM,
    Arg::One,
    XTOPT_MAND | XTOPT_INVERT,
)];
static SPECS: [OptSpec; 1] = XtOpt::specs(&TABLE);

struct Realm;

fn parse_with(opts: &[OptValue], lmap: Option<&Lmap>) -> ExtResult<Vec<u8>> {
    let mut p = Payload::of::<xt_realm_info>();
    let mut xf = XtFlags::default();
    for o in opts {
        xf.take("realm", &TABLE, o)?;
        let (id, mask) = parse_val_mask("realm", o.name, o.arg(), lmap)?;
        p.u32(field::ID, id).u32(field::MASK, mask);
        if o.invert {
            p.u8(field::INVERT, 1);
        }
    }
    xf.fcheck("realm", &TABLE)?;
    Ok(p.finish())
}

fn save_with(data: &[u8], lmap: Option<&Lmap>, out: &mut String) -> ExtResult<()> {
    let r = Reader::new(data, std::mem::size_of::<xt_realm_info>())?;
    save_inv(out, r.u8(field::INVERT)? != 0);
    out.push_str(" --realm");
    save_val_mask(out, r.u32(field::ID)?, r.u32(field::MASK)?, lmap);
    Ok(())
}

impl Codec for Realm {
    fn name(&self) -> &'static str {
        "realm"
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
        &SPECS
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        parse_with(opts, Lmap::load(REALM_FILE).as_ref())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        save_with(data, Lmap::load(REALM_FILE).as_ref(), out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;

    fn ov(invert: bool, arg: &str) -> OptValue<'static> {
        OptValue {
            name: "realm",
            invert,
            args: vec![arg.to_string()].into(),
        }
    }

    /// iproute2's default /etc/iproute2/rt_realms, as on the capture machine.
    fn realms() -> Lmap {
        Lmap::parse(
            b"#\n# reserved values\n#\n0\tcosmos\n#\n# local\n#\n#1\tinr.ac\n#2\tinr.ruhep\n",
        )
        .unwrap()
    }

    fn parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let mut v = parse_with(opts, Some(&realms()))?;
        v.resize(xt_align(v.len()), 0);
        Ok(v)
    }

    fn save(data: &[u8]) -> String {
        let mut out = String::new();
        save_with(data, Some(&realms()), &mut out).unwrap();
        out
    }

    // Kernel captures after iptables-legacy-restore of `-m realm ...`:
    // `--realm 1`
    const ONE: &str = concat!(
        "01000000", // id 1
        "ffffffff", // mask
        "00",       // invert: no
        "000000",   // padding
        "00000000", // padding to XT_ALIGN
    );
    // `! --realm cosmos`
    const INV_NAME: &str = concat!("00000000", "ffffffff", "01", "000000", "00000000");
    // `--realm 0x10/0xff`
    const MASKED: &str = concat!("10000000", "ff000000", "00", "000000", "00000000");
    // `! --realm 0/0`
    const ZERO_MASK: &str = concat!("00000000", "00000000", "01", "000000", "00000000");

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(parse(&[ov(false, "1")]).unwrap(), hex(ONE));
        assert_eq!(parse(&[ov(true, "cosmos")]).unwrap(), hex(INV_NAME));
        assert_eq!(parse(&[ov(false, "0x10/0xff")]).unwrap(), hex(MASKED));
        assert_eq!(parse(&[ov(true, "0/0")]).unwrap(), hex(ZERO_MASK));
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(save(&hex(ONE)), " --realm 0x1");
        assert_eq!(save(&hex(INV_NAME)), " ! --realm cosmos");
        assert_eq!(save(&hex(MASKED)), " --realm 0x10/0xff");
        assert_eq!(save(&hex(ZERO_MASK)), " ! --realm 0x0/0x0");
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in ["inr.ac", "", "1/0x100000000", "1/2/3"] {
            assert!(parse(&[ov(false, bad)]).is_err(), "{bad}");
        }
        assert!(parse(&[]).unwrap_err().contains("must be specified"));
        assert!(parse(&[ov(false, "1"), ov(false, "2")])
            .unwrap_err()
            .contains("only be used once"));
        let mut out = String::new();
        assert!(save_with(&[0; 8], None, &mut out).is_err());
    }
}
