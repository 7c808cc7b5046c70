//! `-j NETMAP --to ADDR[/MASK]` (libipt_NETMAP, libip6t_NETMAP): map a
//! whole network onto another one, keeping the host part.
//!
//! Revision 0 in both families. IPv4 carries
//! `nf_nat_ipv4_multi_range_compat` (one range, `rangesize` 1), IPv6
//! `nf_nat_range`. Either way the range is `ADDR & MASK` ..= `ADDR | ~MASK`
//! with `NF_NAT_RANGE_MAP_IPS`; save prints the low address and the mask
//! recovered as `~(min ^ max)`.

use std::mem::{offset_of, size_of};
use std::net::Ipv4Addr;

use super::{
    no_invert, once, opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    nf_nat_ipv4_multi_range_compat, nf_nat_ipv4_range, nf_nat_range, NF_NAT_RANGE_MAP_IPS,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Netmap(Family::V4), &Netmap(Family::V6)];

mod field {
    use super::*;

    /// `nf_nat_ipv4_multi_range_compat` (IPv4).
    pub mod v4 {
        use super::*;
        pub const RANGESIZE: usize = offset_of!(nf_nat_ipv4_multi_range_compat, rangesize);
        const RANGE: usize = offset_of!(nf_nat_ipv4_multi_range_compat, range);
        pub const FLAGS: usize = RANGE + offset_of!(nf_nat_ipv4_range, flags);
        pub const MIN_IP: usize = RANGE + offset_of!(nf_nat_ipv4_range, min_ip);
        pub const MAX_IP: usize = RANGE + offset_of!(nf_nat_ipv4_range, max_ip);
    }

    /// `nf_nat_range` (IPv6).
    pub mod v6 {
        use super::*;
        pub const FLAGS: usize = offset_of!(nf_nat_range, flags);
        pub const MIN_ADDR: usize = offset_of!(nf_nat_range, min_addr);
        pub const MAX_ADDR: usize = offset_of!(nf_nat_range, max_addr);
    }
}

/// Length of the IPv6 address (and of `union nf_inet_addr`).
const ADDR6: usize = 16;

/// Leading one bits of a mask, or `None` when ones follow a zero
/// (netmask2bits / xtables_ip6mask_to_cidr).
fn prefix_len(mask: &[u8]) -> Option<u32> {
    let mut bits = 0;
    let mut ended = false;
    for &b in mask {
        for i in (0..8).rev() {
            let one = b >> i & 1 == 1;
            match (one, ended) {
                (true, false) => bits += 1,
                (true, true) => return None,
                (false, _) => ended = true,
            }
        }
    }
    Some(bits)
}

/// One of the two families' NETMAP.
struct Netmap(Family);

impl Codec for Netmap {
    fn name(&self) -> &'static str {
        "NETMAP"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn families(&self) -> &'static [Family] {
        match self.0 {
            Family::V4 => &[Family::V4],
            Family::V6 => &[Family::V6],
        }
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[opt("to", Arg::One)];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut seen = Vec::new();
        let mut to = None;
        for o in opts {
            match o.name {
                "to" => {
                    once(&mut seen, o, "NETMAP")?;
                    no_invert(o, "NETMAP")?;
                    // XTTYPE_HOSTMASK: a host (one address) and an optional
                    // prefix length or mask.
                    to = Some(super::conntrack::parse_hostmask("NETMAP", o, self.0)?);
                }
                _ => return Err(super::unknown_option("NETMAP", o)),
            }
        }
        let (addr, mask) = to.ok_or("NETMAP: option \"--to\" must be specified")?;
        let mut min = [0u8; ADDR6];
        let mut max = [0u8; ADDR6];
        for i in 0..ADDR6 {
            min[i] = addr[i] & mask[i];
            max[i] = min[i] | !mask[i];
        }
        Ok(match self.0 {
            Family::V4 => {
                use field::v4::*;
                let mut p = Payload::of::<nf_nat_ipv4_multi_range_compat>();
                // NETMAP_init: rangesize 1.
                p.u32(RANGESIZE, 1)
                    .u32(FLAGS, NF_NAT_RANGE_MAP_IPS)
                    .bytes(MIN_IP, &min[..4])
                    .bytes(MAX_IP, &max[..4]);
                p.finish()
            }
            Family::V6 => {
                use field::v6::*;
                let mut p = Payload::of::<nf_nat_range>();
                p.u32(FLAGS, NF_NAT_RANGE_MAP_IPS)
                    .bytes(MIN_ADDR, &min)
                    .bytes(MAX_ADDR, &max);
                p.finish()
            }
        })
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let (min, max, len) = match self.0 {
            Family::V4 => {
                use field::v4::*;
                let r = Reader::new(data, size_of::<nf_nat_ipv4_multi_range_compat>())?;
                (r.bytes(MIN_IP, 4)?, r.bytes(MAX_IP, 4)?, 4)
            }
            Family::V6 => {
                use field::v6::*;
                let r = Reader::new(data, size_of::<nf_nat_range>())?;
                (r.bytes(MIN_ADDR, ADDR6)?, r.bytes(MAX_ADDR, ADDR6)?, ADDR6)
            }
        };
        let text = |b: &[u8]| -> String {
            let mut a = [0u8; ADDR6];
            a[..len].copy_from_slice(b);
            match self.0 {
                Family::V4 => Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string(),
                Family::V6 => super::conntrack::inet_ntop6(&a),
            }
        };
        let mask: Vec<u8> = min.iter().zip(max).map(|(a, b)| !(a ^ b)).collect();
        out.push_str(" --to ");
        out.push_str(&text(min));
        match prefix_len(&mask) {
            Some(bits) => out.push_str(&format!("/{bits}")),
            None => {
                out.push('/');
                out.push_str(&text(&mask));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Fixtures: target payloads (after the 32-byte xt_entry_target header)
    //! captured from the kernel after iptables-legacy-restore /
    //! ip6tables-legacy-restore 1.8.9 loaded the rule shown (nat table).

    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;
    use crate::rules::IpMatch;

    fn to(arg: &str) -> OptValue<'static> {
        OptValue {
            name: "to",
            invert: false,
            args: vec![arg.to_string()].into(),
        }
    }

    fn parse(family: Family, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "nat",
        };
        let mut v = Netmap(family).parse(0, opts, &ctx)?;
        v.resize(xt_align(v.len()), 0);
        Ok(v)
    }

    fn save(family: Family, data: &[u8]) -> ExtResult<String> {
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "nat",
        };
        let mut out = String::new();
        Netmap(family).save(0, data, &ctx, &mut out).map(|_| out)
    }

    /// An IPv4 fixture: rangesize 1, flags MAP_IPS, min_ip, max_ip, then the
    /// zero ports and 4 bytes of XT_ALIGN padding.
    fn v4(min: &str, max: &str) -> Vec<u8> {
        hex(&format!(
            "01000000 01000000 {min} {max} 0000 0000 00000000",
            // rangesize 1; range[0].flags MAP_IPS; min_ip; max_ip; min/max
            // ports unused; XT_ALIGN padding
        ))
    }

    #[test]
    fn ipv4_parse_and_save() {
        // `-j NETMAP --to 10.1.2.3/24`: 10.1.2.0 ..= 10.1.2.255
        let net24 = v4("0a010200", "0a0102ff");
        assert_eq!(parse(Family::V4, &[to("10.1.2.3/24")]).unwrap(), net24);
        assert_eq!(save(Family::V4, &net24).unwrap(), " --to 10.1.2.0/24");
        // `--to 10.1.2.3`, and `--to 10.1.2.3/255.0.255.0` (a mask with
        // holes becomes all ones in libxtables): one address.
        let host = v4("0a010203", "0a010203");
        assert_eq!(parse(Family::V4, &[to("10.1.2.3")]).unwrap(), host);
        assert_eq!(
            parse(Family::V4, &[to("10.1.2.3/255.0.255.0")]).unwrap(),
            host
        );
        assert_eq!(save(Family::V4, &host).unwrap(), " --to 10.1.2.3/32");
        // `--to 10.1.2.3/0`: everything.
        let all = v4("00000000", "ffffffff");
        assert_eq!(parse(Family::V4, &[to("10.1.2.3/0")]).unwrap(), all);
        assert_eq!(save(Family::V4, &all).unwrap(), " --to 0.0.0.0/0");
        // `--to 10.1.2.3/255.255.0.0`
        let net16 = v4("0a010000", "0a01ffff");
        assert_eq!(
            parse(Family::V4, &[to("10.1.2.3/255.255.0.0")]).unwrap(),
            net16
        );
        assert_eq!(save(Family::V4, &net16).unwrap(), " --to 10.1.0.0/16");
    }

    #[test]
    fn a_range_whose_mask_has_holes_saves_the_dotted_mask() {
        // Not writable by iptables, but another tool may: min 10.0.0.0,
        // max 10.255.0.255 gives the mask 255.0.255.0.
        let odd = v4("0a000000", "0aff00ff");
        assert_eq!(
            save(Family::V4, &odd).unwrap(),
            " --to 10.0.0.0/255.0.255.0"
        );
        // IPv6: min 2001::, max 2001:ffff:: gives ffff:0:ffff:...
        let odd6 = v6(
            "20010000000000000000000000000000",
            "2001ffff000000000000000000000000",
        );
        assert_eq!(
            save(Family::V6, &odd6).unwrap(),
            " --to 2001::/ffff:0:ffff:ffff:ffff:ffff:ffff:ffff"
        );
    }

    /// An IPv6 fixture: flags MAP_IPS, min_addr, max_addr, zero ports (no
    /// XT_ALIGN padding: nf_nat_range is 40 bytes).
    fn v6(min: &str, max: &str) -> Vec<u8> {
        hex(&format!("01000000 {min} {max} 0000 0000"))
    }

    #[test]
    fn ipv6_parse_and_save() {
        // `-j NETMAP --to 2001:db8::1/64`
        let net64 = v6(
            "20010db8000000000000000000000000",
            "20010db800000000ffffffffffffffff",
        );
        assert_eq!(parse(Family::V6, &[to("2001:db8::1/64")]).unwrap(), net64);
        assert_eq!(save(Family::V6, &net64).unwrap(), " --to 2001:db8::/64");
        // `--to 2001:db8::1` and `--to 2001:db8::1/ffff::ffff` (holes: all ones)
        let host = v6(
            "20010db8000000000000000000000001",
            "20010db8000000000000000000000001",
        );
        assert_eq!(parse(Family::V6, &[to("2001:db8::1")]).unwrap(), host);
        assert_eq!(
            parse(Family::V6, &[to("2001:db8::1/ffff::ffff")]).unwrap(),
            host
        );
        assert_eq!(save(Family::V6, &host).unwrap(), " --to 2001:db8::1/128");
        // `--to 2001:db8::1/0`
        let all = v6(
            "00000000000000000000000000000000",
            "ffffffffffffffffffffffffffffffff",
        );
        assert_eq!(parse(Family::V6, &[to("2001:db8::1/0")]).unwrap(), all);
        assert_eq!(save(Family::V6, &all).unwrap(), " --to ::/0");
        // `--to ::1.2.3.4/ffff:ffff:ffff::`
        let net48 = v6(
            "00000000000000000000000000000000",
            "000000000000ffffffffffffffffffff",
        );
        assert_eq!(
            parse(Family::V6, &[to("::1.2.3.4/ffff:ffff:ffff::")]).unwrap(),
            net48
        );
        assert_eq!(save(Family::V6, &net48).unwrap(), " --to ::/48");
    }

    #[test]
    fn bad_input_is_refused() {
        let err = |f, opts: &[OptValue]| parse(f, opts).unwrap_err();
        assert!(err(Family::V4, &[]).contains("\"--to\" must be specified"));
        assert!(err(Family::V6, &[]).contains("\"--to\" must be specified"));
        assert!(err(Family::V4, &[to("10.0.0.1/33x")]).contains("bad value for option \"--to\""));
        assert!(err(Family::V6, &[to("2001:db8::1/129")]).contains("(0-128)"));
        assert!(err(Family::V6, &[to("10.0.0.1")]).contains("not found"));
        assert!(err(Family::V4, &[to("2001:db8::1")]).contains("not found"));
        assert!(err(Family::V4, &[to("1.2.3.4"), to("1.2.3.4")]).contains("only be used once"));
        let inv = OptValue {
            invert: true,
            ..to("1.2.3.4")
        };
        assert!(err(Family::V4, &[inv]).contains("cannot be inverted"));
        assert!(save(Family::V6, &hex("01000000")).is_err());
        assert!(save(Family::V4, &hex("0100000001000000")).is_err());
    }
}
