//! `-m mac` (xt_mac): the Ethernet source address of a packet.
//!
//! One revision (0), one option: `[!] --mac-source XX:XX:XX:XX:XX:XX`,
//! mandatory. The address is read the way libxtables' XTTYPE_ETHERMAC does
//! it: six `strtoul(…, 16)` fields of at most two characters each,
//! separated by colons.

use std::mem::offset_of;

use super::recent::{XtFlags, XtOpt, XTOPT_INVERT, XTOPT_MAND};
use super::{
    save_inv, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::xt_mac_info;

pub(super) static CODECS: &[&dyn Codec] = &[&Mac];

mod field {
    use super::*;
    pub const SRCADDR: usize = offset_of!(xt_mac_info, srcaddr);
    pub const INVERT: usize = offset_of!(xt_mac_info, invert);
}

/// ETH_ALEN.
const MAC_LEN: usize = 6;

const O_MAC: u8 = 0;

const TABLE_ARR: [XtOpt; 1] = [XtOpt::new(
    "mac-source",
    O_MAC,
    Arg::One,
    XTOPT_MAND | XTOPT_INVERT,
)];
static TABLE: &[XtOpt] = &TABLE_ARR;
static SPECS: [OptSpec; 1] = XtOpt::specs(&TABLE_ARR);

/// C isspace in the "C" locale.
pub(crate) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `strtoul(s, &end, 16)`: the value (as C's unsigned long, wrapping for a
/// leading `-`) and the number of bytes consumed (0 when no digit was read).
fn strtoul_hex(s: &[u8]) -> (u64, usize) {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    if i + 2 < s.len() && s[i] == b'0' && (s[i + 1] | 0x20) == b'x' && s[i + 2].is_ascii_hexdigit()
    {
        i += 2;
    }
    let start = i;
    let mut v: Option<u64> = Some(0);
    while i < s.len() && s[i].is_ascii_hexdigit() {
        let d = u64::from((s[i] as char).to_digit(16).unwrap_or(0));
        v = v
            .and_then(|v| v.checked_mul(16))
            .and_then(|v| v.checked_add(d));
        i += 1;
    }
    if i == start {
        return (0, 0);
    }
    match v {
        None => (u64::MAX, i),
        Some(v) if neg => (v.wrapping_neg(), i),
        Some(v) => (v, i),
    }
}

/// Parses `XX:XX:XX:XX:XX:XX` as xtopt_parse_ethermac does.
pub(crate) fn parse_mac(arg: &str) -> ExtResult<[u8; MAC_LEN]> {
    const BAD: &str = "Invalid MAC address specified.";
    let b = arg.as_bytes();
    let mut mac = [0u8; MAC_LEN];
    let mut pos = 0;
    for (i, byte) in mac.iter_mut().enumerate() {
        let (v, used) = strtoul_hex(&b[pos..]);
        *byte = v as u8;
        let end = pos + used;
        let sep = b.get(end).copied();
        let want = if i + 1 < MAC_LEN { Some(b':') } else { None };
        if sep != want || used > 2 {
            return Err(BAD.into());
        }
        pos = end + 1;
    }
    Ok(mac)
}

/// xtables_print_mac: lower-case hex bytes joined by colons.
pub(crate) fn format_mac(out: &mut String, mac: &[u8]) {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    out.push_str(&parts.join(":"));
}

struct Mac;

impl Codec for Mac {
    fn name(&self) -> &'static str {
        "mac"
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
        let mut p = Payload::of::<xt_mac_info>();
        let mut xf = XtFlags::default();
        for o in opts {
            xf.take("mac", TABLE, o)?;
            p.bytes(field::SRCADDR, &parse_mac(o.arg())?);
            if o.invert {
                p.u32(field::INVERT, 1);
            }
        }
        xf.fcheck("mac", TABLE)?;
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_mac_info>())?;
        save_inv(out, r.u32(field::INVERT)? != 0);
        out.push_str(" --mac-source ");
        format_mac(out, r.bytes(field::SRCADDR, MAC_LEN)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::recent::testkit::{parse, save};
    use super::super::testutil::hex;
    use super::*;

    // Captured from the kernel after iptables-legacy-restore 1.8.9 (xt_mac_info).

    /// `-m mac --mac-source 00:11:22:33:44:55`
    fn plain() -> Vec<u8> {
        hex(concat!(
            "001122334455", // srcaddr
            "0000",         // padding before the int
            "00000000",     // invert 0
            "00000000",     // XT_ALIGN padding
        ))
    }

    /// `-m mac ! --mac-source AA:BB:CC:DD:EE:FF`
    fn inverted() -> Vec<u8> {
        hex(concat!(
            "aabbccddeeff", // srcaddr
            "0000",         // padding
            "01000000",     // invert 1
            "00000000",     // XT_ALIGN padding
        ))
    }

    #[test]
    fn parse_matches_kernel() {
        assert_eq!(
            parse(&Mac, 0, "--mac-source 00:11:22:33:44:55").unwrap(),
            plain()
        );
        assert_eq!(
            parse(&Mac, 0, "! --mac-source AA:BB:CC:DD:EE:FF").unwrap(),
            inverted()
        );
    }

    #[test]
    fn save_matches_iptables() {
        assert_eq!(save(&Mac, 0, &plain()), " --mac-source 00:11:22:33:44:55");
        assert_eq!(
            save(&Mac, 0, &inverted()),
            " ! --mac-source aa:bb:cc:dd:ee:ff"
        );
    }

    #[test]
    fn loose_forms_are_read_like_strtoul() {
        // Fields of one digit, signs and empty fields, as libxtables reads them.
        assert_eq!(parse_mac("0:1:2:3:4:5").unwrap(), [0, 1, 2, 3, 4, 5]);
        assert_eq!(
            parse_mac("a::b:c:d:e").unwrap(),
            [0xa, 0, 0xb, 0xc, 0xd, 0xe]
        );
        assert_eq!(
            parse_mac("+1:-1:0f:F0:9:Ab").unwrap(),
            [1, 0xff, 0x0f, 0xf0, 9, 0xab]
        );
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            "XX:XX:XX:XX:XX:XX",
            "00:11:22:33:44",
            "00:11:22:33:44:55:66",
            "000:11:22:33:44:55",
            "0x1:2:3:4:5:6",
            "00-11-22-33-44-55",
        ] {
            assert_eq!(
                parse(&Mac, 0, &format!("--mac-source {bad}")).unwrap_err(),
                "Invalid MAC address specified.",
                "{bad}"
            );
        }
        assert_eq!(parse_mac("").unwrap_err(), "Invalid MAC address specified.");
        assert!(parse(&Mac, 0, "")
            .unwrap_err()
            .contains("must be specified"));
        let twice =
            parse(&Mac, 0, "--mac-source 0:1:2:3:4:5 --mac-source 0:1:2:3:4:5").unwrap_err();
        assert_eq!(twice, "mac: option \"--mac-source\" can only be used once.");
    }

    #[test]
    fn short_payload_is_an_error() {
        let ip = crate::rules::IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        assert!(Mac.save(0, &[0; 4], &ctx, &mut String::new()).is_err());
    }
}
