//! `-m icmp6` (ip6t_icmp, IPv6 only): ICMPv6 type and code.
//!
//! iptables 1.8.9 (xtables_find_match) treats the match names `icmpv6`,
//! `ipv6-icmp` and `icmp6` as one extension, `icmp6`. Two alias codecs carry
//! the other names, so `-m icmpv6`, `-m ipv6-icmp` and the implicit load of
//! `-p icmpv6` / `-p ipv6-icmp` / `-p 58` (whose protocol name is
//! `ipv6-icmp`) all reach this codec. `-p icmp6` is not a protocol name in
//! iptables 1.8.9 ("unknown protocol"), so it never loads anything.

use std::mem::offset_of;

use super::icmp::{parse_icmp_type, IcmpName};
use super::recent::{XtFlags, XtOpt, XTOPT_INVERT, XTOPT_MAND};
use super::{
    save_inv, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{ip6t_icmp, IP6T_ICMP_INV};

pub(super) static CODECS: &[&dyn Codec] =
    &[&Icmp6, &Icmp6Alias("icmpv6"), &Icmp6Alias("ipv6-icmp")];

mod field {
    use super::*;
    pub const TYPE: usize = offset_of!(ip6t_icmp, type_);
    pub const CODE: usize = offset_of!(ip6t_icmp, code);
    pub const INVFLAGS: usize = offset_of!(ip6t_icmp, invflags);
}

const fn n(name: &'static str, ty: u8, lo: u8, hi: u8) -> IcmpName {
    IcmpName {
        name,
        ty,
        code: [lo, hi],
    }
}

/// libxt_icmp.h's `icmpv6_codes`, in its order (prefix lookup depends on it).
const ICMPV6_NAMES: &[IcmpName] = &[
    n("destination-unreachable", 1, 0, 0xff),
    n("no-route", 1, 0, 0),
    n("communication-prohibited", 1, 1, 1),
    n("beyond-scope", 1, 2, 2),
    n("address-unreachable", 1, 3, 3),
    n("port-unreachable", 1, 4, 4),
    n("failed-policy", 1, 5, 5),
    n("reject-route", 1, 6, 6),
    n("packet-too-big", 2, 0, 0xff),
    n("time-exceeded", 3, 0, 0xff),
    n("ttl-exceeded", 3, 0, 0xff),
    n("ttl-zero-during-transit", 3, 0, 0),
    n("ttl-zero-during-reassembly", 3, 1, 1),
    n("parameter-problem", 4, 0, 0xff),
    n("bad-header", 4, 0, 0),
    n("unknown-header-type", 4, 1, 1),
    n("unknown-option", 4, 2, 2),
    n("echo-request", 128, 0, 0xff),
    n("ping", 128, 0, 0xff),
    n("echo-reply", 129, 0, 0xff),
    n("pong", 129, 0, 0xff),
    n("router-solicitation", 133, 0, 0xff),
    n("router-advertisement", 134, 0, 0xff),
    n("neighbour-solicitation", 135, 0, 0xff),
    n("neighbor-solicitation", 135, 0, 0xff),
    n("neighbour-advertisement", 136, 0, 0xff),
    n("neighbor-advertisement", 136, 0, 0xff),
    n("redirect", 137, 0, 0xff),
];

/// libip6t_icmp6's option table.
const TABLE: [XtOpt; 1] = [XtOpt::new(
    "icmpv6-type",
    0,
    Arg::One,
    XTOPT_MAND | XTOPT_INVERT,
)];
static SPECS: [OptSpec; 1] = XtOpt::specs(&TABLE);

fn parse_icmp6(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
    let mut p = Payload::of::<ip6t_icmp>();
    // icmp6_init: any code.
    p.u8(field::CODE + 1, 0xff);
    let mut seen = XtFlags::default();
    for o in opts {
        seen.take("icmp6", &TABLE, o)?;
        let (ty, code) = parse_icmp_type(ICMPV6_NAMES, "ICMPv6", o.arg())?;
        p.u8(field::TYPE, ty)
            .u8(field::CODE, code[0])
            .u8(field::CODE + 1, code[1]);
        if o.invert {
            p.u8(field::INVFLAGS, IP6T_ICMP_INV as u8);
        }
    }
    seen.fcheck("icmp6", &TABLE)?;
    Ok(p.finish())
}

/// icmp6_save: always numeric; the code only when it is not "any".
fn save_icmp6(data: &[u8], out: &mut String) -> ExtResult<()> {
    let r = Reader::new(data, std::mem::size_of::<ip6t_icmp>())?;
    save_inv(out, r.u8(field::INVFLAGS)? & IP6T_ICMP_INV as u8 != 0);
    out.push_str(&format!(" --icmpv6-type {}", r.u8(field::TYPE)?));
    let (lo, hi) = (r.u8(field::CODE)?, r.u8(field::CODE + 1)?);
    if lo != 0 || hi != 0xff {
        out.push_str(&format!("/{lo}"));
    }
    Ok(())
}

struct Icmp6;

impl Codec for Icmp6 {
    fn name(&self) -> &'static str {
        "icmp6"
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
        parse_icmp6(opts)
    }
    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        save_icmp6(data, out)
    }
}

/// `-m icmpv6` / `-m ipv6-icmp` (and the implicit load of `-p icmpv6`,
/// `-p ipv6-icmp`, `-p 58`): the kernel's `icmp6`, saved as `-m icmp6`.
struct Icmp6Alias(&'static str);

impl Codec for Icmp6Alias {
    fn name(&self) -> &'static str {
        self.0
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V6]
    }
    fn kernel_name(&self) -> &'static str {
        "icmp6"
    }
    fn is_alias(&self) -> bool {
        true
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        &SPECS
    }
    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        parse_icmp6(opts)
    }
    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        save_icmp6(data, out)
    }
    fn save_name(&self, _revision: u8, _data: &[u8]) -> &'static str {
        "icmp6"
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
            name: "icmpv6-type",
            invert,
            args: vec![arg.to_string()].into(),
        }
    }

    fn with_ctx<T>(f: impl FnOnce(&RuleContext) -> T) -> T {
        let ip = IpMatch {
            proto: 58,
            ..IpMatch::any(Family::V6)
        };
        f(&RuleContext {
            family: Family::V6,
            ip: &ip,
            table: "filter",
        })
    }

    fn parse(codec: &dyn Codec, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        with_ctx(|ctx| codec.parse(0, opts, ctx)).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(data: &[u8]) -> ExtResult<String> {
        let mut out = String::new();
        with_ctx(|ctx| Icmp6.save(0, data, ctx, &mut out))?;
        Ok(out)
    }

    // Captured from the kernel after ip6tables-legacy-restore (tests/rules6/icmp6.rules).
    /// `-p icmpv6 -m icmp6 --icmpv6-type echo-request`
    const ECHO_REQUEST: &str = "80 00ff 00 00000000"; // type 128, codes 0..255, invflags 0, padding
    /// `-p ipv6-icmp -m icmp6 ! --icmpv6-type 1/4`
    const INV_1_4: &str = "01 0404 01 00000000"; // type 1, codes 4..4, invflags INV, padding
    /// `-p icmpv6 -m icmp6 --icmpv6-type 4/2:3`
    const CODE_RANGE: &str = "04 0203 00 00000000"; // type 4, codes 2..3, invflags 0, padding
    /// `-p icmpv6 --icmpv6-type ttl-zero-during-reassembly`
    const TTL_REASM: &str = "03 0101 00 00000000"; // type 3, codes 1..1, invflags 0, padding
    /// `-p icmpv6 --icmpv6-type 255/0`
    const T255_0: &str = "ff 0000 00 00000000"; // type 255, codes 0..0, invflags 0, padding
    /// `-A OUTPUT -p icmpv6 -m icmp6 ! --icmpv6-type Packet-Too`
    const INV_TOO_BIG: &str = "02 00ff 01 00000000"; // type 2, codes 0..255, invflags INV, padding

    #[test]
    fn parse_matches_kernel_bytes() {
        let cases: &[(bool, &str, &str)] = &[
            (false, "echo-request", ECHO_REQUEST),
            (false, "ping", ECHO_REQUEST),
            (false, "128", ECHO_REQUEST),
            (false, "0x80", ECHO_REQUEST),
            (true, "1/4", INV_1_4),
            (true, "port-unreachable", INV_1_4),
            (false, "4/2:3", CODE_RANGE),
            (false, "ttl-zero-during-reassembly", TTL_REASM),
            (false, "3/1", TTL_REASM),
            (false, "255/0", T255_0),
            (true, "Packet-Too", INV_TOO_BIG),
        ];
        for (inv, arg, fx) in cases {
            assert_eq!(parse(&Icmp6, &[ov(*inv, arg)]).unwrap(), hex(fx), "{arg}");
        }
        for name in ["icmpv6", "ipv6-icmp"] {
            let alias = Icmp6Alias(name);
            assert_eq!(alias.kernel_name(), "icmp6");
            assert!(alias.is_alias());
            assert_eq!(parse(&alias, &[ov(true, "1/4")]).unwrap(), hex(INV_1_4));
        }
    }

    #[test]
    fn save_matches_ip6tables_legacy_save() {
        assert_eq!(save(&hex(ECHO_REQUEST)).unwrap(), " --icmpv6-type 128");
        assert_eq!(save(&hex(INV_1_4)).unwrap(), " ! --icmpv6-type 1/4");
        assert_eq!(save(&hex(CODE_RANGE)).unwrap(), " --icmpv6-type 4/2");
        assert_eq!(save(&hex(TTL_REASM)).unwrap(), " --icmpv6-type 3/1");
        assert_eq!(save(&hex(T255_0)).unwrap(), " --icmpv6-type 255/0");
        assert_eq!(save(&hex(INV_TOO_BIG)).unwrap(), " ! --icmpv6-type 2");
    }

    #[test]
    fn bad_values_are_refused() {
        // "neighbo" is a prefix of four names; "p" of port-unreachable and more.
        for bad in [
            "neighbo", "p", "256", "1/256", "1/x", "1:2", "nosuch", "1/4/5", "-1", "", "1 ",
        ] {
            assert!(parse(&Icmp6, &[ov(false, bad)]).is_err(), "{bad} accepted");
        }
        assert!(
            parse(&Icmp6, &[])
                .unwrap_err()
                .contains("must be specified"),
            "--icmpv6-type is mandatory"
        );
        assert!(parse(&Icmp6, &[ov(false, "1"), ov(false, "2")])
            .unwrap_err()
            .contains("only be used once"));
        assert!(save(&[0u8; 3]).is_err(), "short payload must not panic");
    }
}
