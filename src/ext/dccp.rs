//! `-m dccp` (xt_dccp): DCCP ports, packet types and an option number.
//! Loaded implicitly by `-p dccp` when one of its options follows.
//!
//! libxt_dccp sets no defaults: a port option not given stays 0:0 and its
//! flag bit unset, so it is not printed.

use std::mem::{offset_of, size_of};

use super::recent::{parse_int_opt, XtFlags, XtOpt, XTOPT_INVERT};
use super::{Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext};
use crate::rules::Family;
use crate::sys::bindings::{
    xt_dccp_info, XT_DCCP_DEST_PORTS, XT_DCCP_OPTION, XT_DCCP_SRC_PORTS, XT_DCCP_TYPE,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Dccp];

mod field {
    use super::*;
    pub const DPTS: usize = offset_of!(xt_dccp_info, dpts);
    pub const SPTS: usize = offset_of!(xt_dccp_info, spts);
    pub const FLAGS: usize = offset_of!(xt_dccp_info, flags);
    pub const INVFLAGS: usize = offset_of!(xt_dccp_info, invflags);
    pub const TYPEMASK: usize = offset_of!(xt_dccp_info, typemask);
    pub const OPTION: usize = offset_of!(xt_dccp_info, option);
}

const O_SOURCE_PORT: u8 = 0;
const O_DEST_PORT: u8 = 1;
const O_DCCP_TYPES: u8 = 2;
const O_DCCP_OPTION: u8 = 3;
const TABLE: [XtOpt; 6] = [
    XtOpt::new("source-port", O_SOURCE_PORT, Arg::One, XTOPT_INVERT),
    XtOpt::new("sport", O_SOURCE_PORT, Arg::One, XTOPT_INVERT),
    XtOpt::new("destination-port", O_DEST_PORT, Arg::One, XTOPT_INVERT),
    XtOpt::new("dport", O_DEST_PORT, Arg::One, XTOPT_INVERT),
    XtOpt::new("dccp-types", O_DCCP_TYPES, Arg::One, XTOPT_INVERT),
    XtOpt::new("dccp-option", O_DCCP_OPTION, Arg::One, XTOPT_INVERT),
];
static SPECS: [OptSpec; 6] = XtOpt::specs(&TABLE);

/// DCCP packet types by number (linux/dccp.h), as libxt_dccp names them.
const TYPES: [&str; 11] = [
    "REQUEST", "RESPONSE", "DATA", "ACK", "DATAACK", "CLOSEREQ", "CLOSE", "RESET", "SYNC",
    "SYNCACK", "INVALID",
];
const INVALID: u16 = 10;
/// `INVALID` also stands for the reserved types 11..15.
const INVALID_OTHER_TYPE_MASK: u16 = 0xf800;

/// XTTYPE_PORTRC: `port`, `lo:hi`, `lo:` (to 65535) or `:hi` (from 0); a
/// port is a number or a service name. An empty argument is port 0.
/// libxtables does not refuse `lo > hi`; neither does this.
fn parse_port_range(o: &OptValue) -> ExtResult<[u16; 2]> {
    let parts: Vec<&str> = o.arg().split(':').collect();
    if parts.len() > 2 {
        return Err(format!(
            "dccp: Too many components for option \"--{}\" (max: 2)",
            o.name
        ));
    }
    let mut r = [0u16, 0xffff];
    for (i, part) in parts.iter().enumerate() {
        if !part.is_empty() {
            r[i] = crate::netdb::port_by_name(part)?;
        }
    }
    if parts.len() == 1 {
        r[1] = r[0];
    }
    Ok(r)
}

/// parse_dccp_types: comma-separated names (any case; empty items are
/// skipped, as strtok does).
fn parse_types(s: &str) -> ExtResult<u16> {
    let mut mask = 0u16;
    for name in s.split(',').filter(|n| !n.is_empty()) {
        let i = TYPES
            .iter()
            .position(|t| t.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                format!(
                    "Unknown DCCP type `{name}': expected {} (comma-separated)",
                    TYPES.join(", ")
                )
            })?;
        mask |= 1 << i;
    }
    if mask & (1 << INVALID) != 0 {
        mask |= INVALID_OTHER_TYPE_MASK;
    }
    Ok(mask)
}

/// print_types (non-numeric): the names of the set bits, lowest first;
/// INVALID ends the list (it stands for the bits above it too). A bit above
/// INVALID without it, which iptables never writes, prints as its number
/// (libxt_dccp would read past its name table there).
fn save_types(out: &mut String, mut types: u16) {
    out.push(' ');
    let mut first = true;
    while types != 0 {
        let i = types.trailing_zeros() as usize;
        if !first {
            out.push(',');
        }
        first = false;
        match TYPES.get(i) {
            Some(name) => out.push_str(name),
            None => out.push_str(&i.to_string()),
        }
        if i == usize::from(INVALID) {
            break;
        }
        types &= !(1 << i);
    }
}

fn save_ports(out: &mut String, opt: &str, ports: [u16; 2], inv: bool) {
    if inv {
        out.push_str(" !");
    }
    if ports[0] != ports[1] {
        out.push_str(&format!(" --{opt} {}:{}", ports[0], ports[1]));
    } else {
        out.push_str(&format!(" --{opt} {}", ports[0]));
    }
}

struct Dccp;

impl Codec for Dccp {
    fn name(&self) -> &'static str {
        "dccp"
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
        let mut p = Payload::of::<xt_dccp_info>();
        let (mut flags, mut invflags) = (0u16, 0u16);
        let mut xf = XtFlags::default();
        for o in opts {
            let flag = match xf.take("dccp", &TABLE, o)? {
                O_SOURCE_PORT => {
                    let r = parse_port_range(o)?;
                    p.u16(field::SPTS, r[0]).u16(field::SPTS + 2, r[1]);
                    XT_DCCP_SRC_PORTS
                }
                O_DEST_PORT => {
                    let r = parse_port_range(o)?;
                    p.u16(field::DPTS, r[0]).u16(field::DPTS + 2, r[1]);
                    XT_DCCP_DEST_PORTS
                }
                O_DCCP_TYPES => {
                    p.u16(field::TYPEMASK, parse_types(o.arg())?);
                    XT_DCCP_TYPE
                }
                _ => {
                    let v = parse_int_opt("dccp", o, 1, u8::MAX.into())?;
                    p.u8(field::OPTION, v as u8);
                    XT_DCCP_OPTION
                }
            } as u16;
            flags |= flag;
            if o.invert {
                invflags |= flag;
            }
        }
        p.u16(field::FLAGS, flags).u16(field::INVFLAGS, invflags);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<xt_dccp_info>())?;
        let flags = u32::from(r.u16(field::FLAGS)?);
        let inv = u32::from(r.u16(field::INVFLAGS)?);
        if flags & XT_DCCP_SRC_PORTS != 0 {
            let ports = [r.u16(field::SPTS)?, r.u16(field::SPTS + 2)?];
            save_ports(out, "sport", ports, inv & XT_DCCP_SRC_PORTS != 0);
        }
        if flags & XT_DCCP_DEST_PORTS != 0 {
            let ports = [r.u16(field::DPTS)?, r.u16(field::DPTS + 2)?];
            save_ports(out, "dport", ports, inv & XT_DCCP_DEST_PORTS != 0);
        }
        if flags & XT_DCCP_TYPE != 0 {
            if inv & XT_DCCP_TYPE != 0 {
                out.push_str(" !");
            }
            out.push_str(" --dccp-types");
            save_types(out, r.u16(field::TYPEMASK)?);
        }
        if flags & XT_DCCP_OPTION != 0 {
            if inv & XT_DCCP_OPTION != 0 {
                out.push_str(" !");
            }
            out.push_str(&format!(" --dccp-option {}", r.u8(field::OPTION)?));
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

    fn fixture(s: &str) -> Vec<u8> {
        hex(&s
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .collect::<String>())
    }

    fn parse(family: Family, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch {
            proto: 33,
            ..IpMatch::any(family)
        };
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        Dccp.parse(0, opts, &ctx).map(|mut v| {
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
        Dccp.save(0, data, &ctx, &mut out).map(|_| out)
    }

    // Captured from the kernel after iptables-legacy-restore of
    // `-p dccp ! --sport 1024:65535 --dport 5000 ! --dccp-types request,DATA,invalid --dccp-option 3`.
    const ALL: &str = "
        8813 8813   # dpts 5000:5000 (host order)
        0004 ffff   # spts 1024:65535
        0f00        # flags SRC|DEST|TYPE|OPTION
        0500        # invflags SRC|TYPE
        05fc        # typemask REQUEST|DATA|INVALID|11..15
        03          # option 3
        00          # padding to XT_ALIGN";

    // ip6tables: `-p dccp -m dccp --sport :99 ! --dccp-option 255`
    const V6: &str = "
        0000 0000   # dpts: not given
        0000 6300   # spts 0:99
        0900        # flags SRC|OPTION
        0800        # invflags OPTION
        0000        # typemask
        ff          # option 255
        00          # padding";

    // `-p dccp -m dccp --dccp-types ,` : the type flag with no type.
    const NO_TYPES: &str = "
        0000 0000 0000 0000 # ports: not given
        0400 0000   # flags TYPE, invflags none
        0000 00 00  # typemask 0, option 0, padding";

    #[test]
    fn parse_matches_kernel_bytes() {
        let opts = [
            ov("sport", true, "1024:65535"),
            ov("destination-port", false, "5000"),
            ov("dccp-types", true, "request,DATA,invalid"),
            ov("dccp-option", false, "3"),
        ];
        assert_eq!(parse(Family::V4, &opts).unwrap(), fixture(ALL));
        let opts = [
            ov("source-port", false, ":99"),
            ov("dccp-option", true, "255"),
        ];
        assert_eq!(parse(Family::V6, &opts).unwrap(), fixture(V6));
        assert_eq!(
            parse(Family::V4, &[ov("dccp-types", false, ",")]).unwrap(),
            fixture(NO_TYPES)
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(
            save(Family::V4, &fixture(ALL)).unwrap(),
            " ! --sport 1024:65535 --dport 5000 ! --dccp-types REQUEST,DATA,INVALID --dccp-option 3"
        );
        assert_eq!(
            save(Family::V6, &fixture(V6)).unwrap(),
            " --sport 0:99 ! --dccp-option 255"
        );
        // libxt_dccp prints a space after --dccp-types even with no type.
        assert_eq!(
            save(Family::V4, &fixture(NO_TYPES)).unwrap(),
            " --dccp-types "
        );
    }

    #[test]
    fn types_follow_libxt_dccp() {
        assert_eq!(parse_types("").unwrap(), 0);
        assert_eq!(parse_types("ack,,SyncAck").unwrap(), (1 << 3) | (1 << 9));
        assert_eq!(parse_types("INVALID").unwrap(), 0xfc00);
        let mut out = String::new();
        save_types(&mut out, 0x0800);
        assert_eq!(out, " 11", "a reserved type without INVALID");
    }

    #[test]
    fn bad_values_are_refused() {
        for o in [
            ov("dport", false, "70000"),
            ov("dport", false, "1:2:3"),
            ov("sport", false, "nosuchservice"),
            ov("dccp-types", false, "DATA,BOGUS"),
            ov("dccp-option", false, "0"),
            ov("dccp-option", false, "256"),
        ] {
            assert!(
                parse(Family::V4, std::slice::from_ref(&o)).is_err(),
                "{o:?} accepted"
            );
        }
        assert!(parse(
            Family::V4,
            &[ov("sport", false, "1"), ov("source-port", false, "2")]
        )
        .is_err());
        assert!(save(Family::V4, &[0; 8]).is_err(), "short payload");
    }
}
