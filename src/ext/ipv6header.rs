//! `-m ipv6header` (ip6t_ipv6header, IPv6 only): which extension headers a
//! packet carries (exactly those, or with `--soft` at least those).
//!
//! A header is named as libip6t_ipv6header looks it up: an /etc/protocols
//! name or alias first (getprotobyname), then its own short names (`hop`,
//! `dst`, `route`, `frag`, `auth`, `esp`, `none`, `prot`, ...) and numbers.
//! Save prints each header as getprotobynumber names it (hop-by-hop for 0).

use std::mem::offset_of;

use super::recent::{XtFlags, XtOpt, XTOPT_INVERT, XTOPT_MAND};
use super::{Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext};
use crate::rules::Family;
use crate::sys::bindings::{
    ip6t_ipv6header_info, IPPROTO_AH, IPPROTO_DSTOPTS, IPPROTO_ESP, IPPROTO_FRAGMENT,
    IPPROTO_HOPOPTS, IPPROTO_NONE, IPPROTO_RAW, IPPROTO_ROUTING, MASK_AH, MASK_DSTOPTS, MASK_ESP,
    MASK_FRAGMENT, MASK_HOPOPTS, MASK_NONE, MASK_PROTO, MASK_ROUTING,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Ipv6Header];

mod field {
    use super::*;
    pub const MATCHFLAGS: usize = offset_of!(ip6t_ipv6header_info, matchflags);
    pub const INVFLAGS: usize = offset_of!(ip6t_ipv6header_info, invflags);
    pub const MODEFLAG: usize = offset_of!(ip6t_ipv6header_info, modeflag);
}

const O_HEADER: u8 = 0;
const O_SOFT: u8 = 1;

/// libip6t_ipv6header's option table.
static TABLE: [XtOpt; 2] = [
    XtOpt::new("header", O_HEADER, Arg::One, XTOPT_MAND | XTOPT_INVERT),
    XtOpt::new("soft", O_SOFT, Arg::None, 0),
];
static SPECS: [OptSpec; 2] = XtOpt::specs(&TABLE);

/// libip6t_ipv6header's `chain_protos`, in its order (the first entry of a
/// number is the name printed when /etc/protocols has none).
const CHAIN_PROTOS: &[(&str, u32)] = &[
    ("hop-by-hop", IPPROTO_HOPOPTS),
    ("protocol", IPPROTO_RAW),
    ("hop", IPPROTO_HOPOPTS),
    ("dst", IPPROTO_DSTOPTS),
    ("route", IPPROTO_ROUTING),
    ("frag", IPPROTO_FRAGMENT),
    ("auth", IPPROTO_AH),
    ("esp", IPPROTO_ESP),
    ("none", IPPROTO_NONE),
    ("prot", IPPROTO_RAW),
    ("0", IPPROTO_HOPOPTS),
    ("60", IPPROTO_DSTOPTS),
    ("43", IPPROTO_ROUTING),
    ("44", IPPROTO_FRAGMENT),
    ("51", IPPROTO_AH),
    ("50", IPPROTO_ESP),
    ("59", IPPROTO_NONE),
    ("255", IPPROTO_RAW),
];

/// libip6t_ipv6header's `chain_flags`: the bit of each header, in the order
/// save prints them.
const CHAIN_FLAGS: &[(u32, u32)] = &[
    (IPPROTO_HOPOPTS, MASK_HOPOPTS),
    (IPPROTO_DSTOPTS, MASK_DSTOPTS),
    (IPPROTO_ROUTING, MASK_ROUTING),
    (IPPROTO_FRAGMENT, MASK_FRAGMENT),
    (IPPROTO_AH, MASK_AH),
    (IPPROTO_ESP, MASK_ESP),
    (IPPROTO_NONE, MASK_NONE),
    (IPPROTO_RAW, MASK_PROTO),
];

/// name_to_proto: getprotobyname first, then the extension's own names.
fn name_to_proto(s: &str) -> ExtResult<u32> {
    if let Some(p) = crate::netdb::protocol_by_name(s) {
        return Ok(p.into());
    }
    CHAIN_PROTOS
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, p)| *p)
        .ok_or_else(|| format!("unknown header `{s}' specified"))
}

/// parse_header: a comma list (empty items skipped, as strtok does).
fn parse_header(s: &str) -> ExtResult<u8> {
    let mut mask = 0u32;
    for name in s.split(',').filter(|n| !n.is_empty()) {
        let proto = name_to_proto(name)?;
        let (_, flag) = CHAIN_FLAGS
            .iter()
            .find(|(p, _)| *p == proto)
            .ok_or_else(|| format!("unknown header `{proto}' specified"))?;
        mask |= flag;
    }
    if mask == 0 {
        return Err("ip6t_ipv6header: cannot parse header names".into());
    }
    Ok(mask as u8)
}

/// proto_to_name(proto, 0): getprotobynumber for a non-zero number, then
/// the extension's first name for it.
fn proto_to_name(proto: u32) -> &'static str {
    if proto != 0 {
        if let Some(n) = u8::try_from(proto)
            .ok()
            .and_then(crate::netdb::protocol_name)
        {
            return n;
        }
    }
    CHAIN_PROTOS
        .iter()
        .find(|(_, p)| *p == proto)
        .map(|(n, _)| *n)
        .unwrap_or("")
}

struct Ipv6Header;

impl Codec for Ipv6Header {
    fn name(&self) -> &'static str {
        "ipv6header"
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
        let mut p = Payload::of::<ip6t_ipv6header_info>();
        let mut seen = XtFlags::default();
        for o in opts {
            match seen.take("ipv6header", &TABLE, o)? {
                O_HEADER => {
                    p.u8(field::MATCHFLAGS, parse_header(o.arg())?);
                    if o.invert {
                        p.u8(field::INVFLAGS, 0xff);
                    }
                }
                _ => {
                    p.u8(field::MODEFLAG, 0xff);
                }
            }
        }
        seen.fcheck("ipv6header", &TABLE)?;
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<ip6t_ipv6header_info>())?;
        if r.u8(field::INVFLAGS)? != 0 {
            out.push_str(" !");
        }
        out.push_str(" --header ");
        let flags = u32::from(r.u8(field::MATCHFLAGS)?);
        let names: Vec<&str> = CHAIN_FLAGS
            .iter()
            .filter(|(_, f)| flags & f != 0)
            .map(|(p, _)| proto_to_name(*p))
            .collect();
        if names.is_empty() {
            out.push_str("NONE");
        } else {
            out.push_str(&names.join(","));
        }
        if r.u8(field::MODEFLAG)? != 0 {
            out.push_str(" --soft");
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
    fn header(invert: bool, arg: &str) -> OptValue<'static> {
        ov("header", invert, Some(arg))
    }
    fn soft() -> OptValue<'static> {
        ov("soft", false, None)
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
        with_ctx(|ctx| Ipv6Header.parse(0, opts, ctx)).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(data: &[u8]) -> ExtResult<String> {
        let mut out = String::new();
        with_ctx(|ctx| Ipv6Header.save(0, data, ctx, &mut out))?;
        Ok(out)
    }

    // Captured from the kernel after ip6tables-legacy-restore
    // (tests/rules6/ipv6header.rules): matchflags, invflags, modeflag, padding.
    const HOP: &str = "80 00 00 0000000000"; // --header hop
    const INV_DST_ROUTE_SOFT: &str = "60 ff ff 0000000000"; // ! --header dst,route --soft
    const FRAG_TO_PROT: &str = "1f 00 00 0000000000"; // --header frag,auth,esp,none,prot
    const ALL_SOFT: &str = "ff 00 ff 0000000000"; // --header 0,60,43,44,51,50,59,255 --soft
    const HOP_SOFT: &str = "80 00 ff 0000000000"; // --soft --header ip
    const INV_ROUTE_HOP: &str = "a0 ff 00 0000000000"; // ! --header IPv6-Route,,HOPOPT,

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(parse(&[header(false, "hop")]).unwrap(), hex(HOP));
        assert_eq!(
            parse(&[header(true, "dst,route"), soft()]).unwrap(),
            hex(INV_DST_ROUTE_SOFT)
        );
        assert_eq!(
            parse(&[header(false, "frag,auth,esp,none,prot")]).unwrap(),
            hex(FRAG_TO_PROT)
        );
        assert_eq!(
            parse(&[header(false, "0,60,43,44,51,50,59,255"), soft()]).unwrap(),
            hex(ALL_SOFT)
        );
        assert_eq!(
            parse(&[
                header(
                    false,
                    "hop-by-hop,ipv6-opts,ipv6-route,ipv6-frag,ah,esp,ipv6-nonxt,protocol"
                ),
                soft()
            ])
            .unwrap(),
            hex(ALL_SOFT)
        );
        // "ip" is protocol 0 in /etc/protocols.
        assert_eq!(
            parse(&[soft(), header(false, "ip")]).unwrap(),
            hex(HOP_SOFT)
        );
        assert_eq!(
            parse(&[header(true, "IPv6-Route,,HOPOPT,")]).unwrap(),
            hex(INV_ROUTE_HOP)
        );
    }

    #[test]
    fn save_matches_ip6tables_legacy_save() {
        assert_eq!(save(&hex(HOP)).unwrap(), " --header hop-by-hop");
        assert_eq!(
            save(&hex(INV_DST_ROUTE_SOFT)).unwrap(),
            " ! --header ipv6-opts,ipv6-route --soft"
        );
        assert_eq!(
            save(&hex(FRAG_TO_PROT)).unwrap(),
            " --header ipv6-frag,ah,esp,ipv6-nonxt,protocol"
        );
        assert_eq!(
            save(&hex(ALL_SOFT)).unwrap(),
            " --header hop-by-hop,ipv6-opts,ipv6-route,ipv6-frag,ah,esp,ipv6-nonxt,protocol --soft"
        );
        assert_eq!(save(&hex(HOP_SOFT)).unwrap(), " --header hop-by-hop --soft");
        assert_eq!(
            save(&hex(INV_ROUTE_HOP)).unwrap(),
            " ! --header hop-by-hop,ipv6-route"
        );
        assert_eq!(save(&hex("00 00 00")).unwrap(), " --header NONE");
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in ["", ",", "tcp", "17", "nosuch", "hop,bogus", "Hop"] {
            assert!(parse(&[header(false, bad)]).is_err(), "{bad} accepted");
        }
        assert!(parse(&[soft()]).unwrap_err().contains("must be specified"));
        assert!(parse(&[header(false, "hop"), header(false, "dst")])
            .unwrap_err()
            .contains("only be used once"));
        assert!(parse(&[header(false, "hop"), soft(), soft()]).is_err());
        assert!(parse(&[header(false, "hop"), ov("soft", true, None)])
            .unwrap_err()
            .contains("cannot be inverted"));
        assert!(save(&[0u8; 2]).is_err(), "short payload must not panic");
    }
}
