//! `-m udp` (xt_udp): source and destination ports of UDP datagrams.
//! Loaded implicitly by `-p udp` when one of its options follows.

use std::mem::offset_of;

use super::{
    no_invert, once, opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{xt_udp, XT_UDP_INV_DSTPT, XT_UDP_INV_SRCPT};

pub(super) static CODECS: &[&dyn Codec] = &[&Udp];

mod field {
    use super::*;
    pub const SPTS: usize = offset_of!(xt_udp, spts);
    pub const DPTS: usize = offset_of!(xt_udp, dpts);
    pub const INVFLAGS: usize = offset_of!(xt_udp, invflags);
}

struct Udp;

/// XTTYPE_PORTRC: `port`, `lo:hi`, `lo:` or `:hi`, each port a decimal number
/// or a service name (xtables_getportbyname).
pub(crate) fn parse_portrc(ext: &str, o: &OptValue) -> ExtResult<[u16; 2]> {
    let mut vals = [0u16, 0xffff];
    let parts: Vec<&str> = o.arg().split(':').collect();
    if parts.len() > 2 {
        return Err(format!(
            "{ext}: Too many components for option \"--{}\" (max: 2)",
            o.name
        ));
    }
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        vals[i] = crate::netdb::port_by_name(part)?;
    }
    if parts.len() == 1 {
        vals[1] = vals[0];
    }
    Ok(vals)
}

impl Codec for Udp {
    fn name(&self) -> &'static str {
        "udp"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("source-port", Arg::One),
            opt("sport", Arg::One),
            opt("destination-port", Arg::One),
            opt("dport", Arg::One),
        ];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_udp>();
        let (mut spts, mut dpts, mut inv) = ([0u16, 0xffff], [0u16, 0xffff], 0u8);
        let mut seen = Vec::new();
        for o in opts {
            let canonical = OptValue {
                name: if o.name == "sport" {
                    "source-port"
                } else if o.name == "dport" {
                    "destination-port"
                } else {
                    o.name
                },
                ..o.clone()
            };
            once(&mut seen, &canonical, "udp")?;
            match canonical.name {
                "source-port" => {
                    spts = parse_portrc("udp", o)?;
                    if o.invert {
                        inv |= XT_UDP_INV_SRCPT as u8;
                    }
                }
                "destination-port" => {
                    dpts = parse_portrc("udp", o)?;
                    if o.invert {
                        inv |= XT_UDP_INV_DSTPT as u8;
                    }
                }
                _ => {
                    no_invert(o, "udp")?;
                    return Err(super::unknown_option("udp", o));
                }
            }
        }
        p.u16(field::SPTS, spts[0]).u16(field::SPTS + 2, spts[1]);
        p.u16(field::DPTS, dpts[0]).u16(field::DPTS + 2, dpts[1]);
        p.u8(field::INVFLAGS, inv);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_udp>())?;
        let inv = r.u8(field::INVFLAGS)?;
        let spts = [r.u16(field::SPTS)?, r.u16(field::SPTS + 2)?];
        let dpts = [r.u16(field::DPTS)?, r.u16(field::DPTS + 2)?];
        super::tcp::save_port_pair(out, "sport", spts, inv & XT_UDP_INV_SRCPT as u8 != 0);
        super::tcp::save_port_pair(out, "dport", dpts, inv & XT_UDP_INV_DSTPT as u8 != 0);
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

    // Captured from the kernel after iptables-legacy-restore of
    // `-p udp -m udp --sport 53 ! --dport 1000:2000`
    fn fixture() -> Vec<u8> {
        hex(concat!(
            "3500 3500", // spts 53:53 (host order)
            "e803 d007", // dpts 1000:2000
            "02",        // invflags DSTPT
            "000000",    // padding
            "00000000",  // padding to XT_ALIGN
        ))
    }

    #[test]
    fn parse_matches_kernel_bytes() {
        let ip = IpMatch {
            proto: 17,
            ..IpMatch::any(Family::V4)
        };
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut v = Udp
            .parse(
                0,
                &[
                    ov("sport", false, &["53"]),
                    ov("dport", true, &["1000:2000"]),
                ],
                &ctx,
            )
            .unwrap();
        v.resize(xt_align(v.len()), 0);
        assert_eq!(v, fixture());
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Udp.save(0, &fixture(), &ctx, &mut out).unwrap();
        assert_eq!(out, " --sport 53 ! --dport 1000:2000");
    }

    #[test]
    fn bad_values_are_refused() {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        for o in [
            ov("dport", false, &["70000"]),
            ov("dport", false, &["1:2:3"]),
            ov("sport", false, &["0x10"]),
        ] {
            assert!(
                Udp.parse(0, std::slice::from_ref(&o), &ctx).is_err(),
                "{o:?} accepted"
            );
        }
        assert!(Udp
            .parse(
                0,
                &[
                    ov("dport", false, &["1"]),
                    ov("destination-port", false, &["2"])
                ],
                &ctx
            )
            .is_err());
    }
}
