//! `-m pkttype` (xt_pkttype): the link-layer packet type (unicast,
//! broadcast, multicast, otherhost). One revision (0), one mandatory option
//! `[!] --pkt-type TYPE`.

use std::mem::offset_of;

use super::recent::{XtFlags, XtOpt, XTOPT_INVERT, XTOPT_MAND};
use super::{
    save_inv, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::xt_pkttype_info;

pub(super) static CODECS: &[&dyn Codec] = &[&Pkttype];

mod field {
    use super::*;
    pub const PKTTYPE: usize = offset_of!(xt_pkttype_info, pkttype);
    pub const INVERT: usize = offset_of!(xt_pkttype_info, invert);
}

// linux/if_packet.h
const PACKET_HOST: i32 = 0;
const PACKET_BROADCAST: i32 = 1;
const PACKET_MULTICAST: i32 = 2;
const PACKET_OTHERHOST: i32 = 3;

/// libxt_pkttype's names, in its order: saving prints the first name of a
/// value, so the aliases at the end are never printed.
const TYPES: &[(&str, i32)] = &[
    ("unicast", PACKET_HOST),
    ("broadcast", PACKET_BROADCAST),
    ("multicast", PACKET_MULTICAST),
    ("otherhost", PACKET_OTHERHOST),
    ("bcast", PACKET_BROADCAST),
    ("mcast", PACKET_MULTICAST),
    ("host", PACKET_HOST),
];

const O_PKTTYPE: u8 = 0;
const TABLE_ARR: [XtOpt; 1] = [XtOpt::new(
    "pkt-type",
    O_PKTTYPE,
    Arg::One,
    XTOPT_MAND | XTOPT_INVERT,
)];
static SPECS: [OptSpec; 1] = XtOpt::specs(&TABLE_ARR);

struct Pkttype;

impl Codec for Pkttype {
    fn name(&self) -> &'static str {
        "pkttype"
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
        let mut p = Payload::of::<xt_pkttype_info>();
        let mut xf = XtFlags::default();
        for o in opts {
            xf.take("pkttype", &TABLE_ARR, o)?;
            let (_, ty) = TYPES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(o.arg()))
                .ok_or_else(|| format!("Bad packet type '{}'", o.arg()))?;
            p.u32(field::PKTTYPE, *ty as u32);
            if o.invert {
                p.u32(field::INVERT, 1);
            }
        }
        xf.fcheck("pkttype", &TABLE_ARR)?;
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_pkttype_info>())?;
        save_inv(out, r.u32(field::INVERT)? != 0);
        let ty = r.u32(field::PKTTYPE)? as i32;
        out.push_str(" --pkt-type ");
        match TYPES.iter().find(|(_, v)| *v == ty) {
            Some((name, _)) => out.push_str(name),
            None => out.push_str(&ty.to_string()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::recent::testkit::{parse, save};
    use super::super::testutil::hex;
    use super::*;

    // Captured from the kernel after iptables-legacy-restore 1.8.9 (xt_pkttype_info).

    /// `-m pkttype --pkt-type broadcast`
    fn broadcast() -> Vec<u8> {
        hex(concat!(
            "01000000", // pkttype PACKET_BROADCAST
            "00000000", // invert 0
        ))
    }

    /// `-m pkttype ! --pkt-type host`
    fn not_host() -> Vec<u8> {
        hex(concat!(
            "00000000", // pkttype PACKET_HOST
            "01000000", // invert 1
        ))
    }

    #[test]
    fn parse_matches_kernel() {
        assert_eq!(
            parse(&Pkttype, 0, "--pkt-type broadcast").unwrap(),
            broadcast()
        );
        assert_eq!(parse(&Pkttype, 0, "--pkt-type BCAST").unwrap(), broadcast());
        assert_eq!(parse(&Pkttype, 0, "! --pkt-type host").unwrap(), not_host());
        assert_eq!(
            parse(&Pkttype, 0, "! --pkt-type Unicast").unwrap(),
            not_host()
        );
    }

    #[test]
    fn save_matches_iptables() {
        assert_eq!(save(&Pkttype, 0, &broadcast()), " --pkt-type broadcast");
        // An alias comes back under the first name of its value.
        assert_eq!(save(&Pkttype, 0, &not_host()), " ! --pkt-type unicast");
        // A value without a name is printed as a number.
        assert_eq!(save(&Pkttype, 0, &hex("0700000000000000")), " --pkt-type 7");
    }

    #[test]
    fn bad_values_are_refused() {
        assert_eq!(
            parse(&Pkttype, 0, "--pkt-type foo").unwrap_err(),
            "Bad packet type 'foo'"
        );
        assert_eq!(
            parse(&Pkttype, 0, "--pkt-type outgoing").unwrap_err(),
            "Bad packet type 'outgoing'"
        );
        assert_eq!(
            parse(&Pkttype, 0, "").unwrap_err(),
            "pkttype: option \"--pkt-type\" must be specified"
        );
        assert!(parse(&Pkttype, 0, "--pkt-type host --pkt-type host")
            .unwrap_err()
            .contains("only be used once"));
    }
}
