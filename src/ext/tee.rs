//! `-j TEE` (xt_TEE revision 1, `xt_tee_tginfo`): send a copy of the
//! packet to a gateway, optionally through a given interface. Both
//! families; the kernel allows it in the mangle table only. The kernel's
//! private pointer after `oif` is zero in every dump (it is beyond the
//! target's user size).

use std::mem::{offset_of, size_of};

use super::conntrack::inet_ntop6;
use super::{
    no_invert, once, opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::xt_tee_tginfo;

pub(super) static CODECS: &[&dyn Codec] = &[&Tee];

mod field {
    use super::*;
    /// union nf_inet_addr: IPv4 in the first 4 bytes, IPv6 in all 16.
    pub const GW: usize = offset_of!(xt_tee_tginfo, gw);
    pub const GW_LEN: usize = 16;
    pub const OIF: usize = offset_of!(xt_tee_tginfo, oif);
    pub const OIF_LEN: usize = 16;
}

/// XTTYPE_HOST: one address of the family (a name must resolve to exactly
/// one), as the 16-byte nf_inet_addr.
pub(crate) fn resolve_one(host: &str, family: Family) -> ExtResult<[u8; 16]> {
    let all: Vec<[u8; 16]> = match family {
        Family::V4 => crate::sys::resolve_ipv4(host)
            .unwrap_or_default()
            .iter()
            .map(|a| {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&a.octets());
                b
            })
            .collect(),
        Family::V6 => crate::sys::resolve_ipv6(host)
            .unwrap_or_default()
            .iter()
            .map(|a| a.octets())
            .collect(),
    };
    let first = *all
        .first()
        .ok_or_else(|| format!("getaddrinfo: host `{host}' not found"))?;
    if all.iter().any(|a| *a != first) {
        return Err(format!("{host} resolves to more than one address"));
    }
    Ok(first)
}

struct Tee;

impl Codec for Tee {
    fn name(&self) -> &'static str {
        "TEE"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[1]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[opt("gateway", Arg::One), opt("oif", Arg::One)];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_tee_tginfo>();
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "TEE")?;
            no_invert(o, "TEE")?;
            match o.name {
                "gateway" => {
                    let a = resolve_one(o.arg(), ctx.family)?;
                    p.bytes(field::GW, &a[..field::GW_LEN]);
                }
                "oif" => {
                    // iptables cuts a longer name to 15 bytes; no interface
                    // can have such a name, so it is refused here.
                    if o.arg_bytes().len() >= field::OIF_LEN {
                        return Err(format!(
                            "TEE: interface name `{}' must be shorter than {} characters",
                            o.arg(),
                            field::OIF_LEN
                        ));
                    }
                    p.bytes(field::OIF, &o.arg_bytes());
                }
                _ => return Err(super::unknown_option("TEE", o)),
            }
        }
        if !seen.contains(&"gateway") {
            return Err("TEE: option \"--gateway\" must be specified".into());
        }
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        // Payloads end at `oif` for the user's part; the pointer may be absent.
        let r = Reader::new(data, field::OIF + field::OIF_LEN)?;
        let gw = r.bytes(field::GW, field::GW_LEN)?;
        match ctx.family {
            Family::V4 => out.push_str(&format!(
                " --gateway {}.{}.{}.{}",
                gw[0], gw[1], gw[2], gw[3]
            )),
            Family::V6 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(gw);
                out.push_str(" --gateway ");
                out.push_str(&inet_ntop6(&a));
            }
        }
        let oif = r.cstr(field::OIF, field::OIF_LEN)?;
        if !oif.is_empty() {
            out.push_str(" --oif ");
            out.push_str(&crate::text::from_bytes(oif));
        }
        Ok(())
    }
}

const _: () = assert!(size_of::<xt_tee_tginfo>() >= field::OIF + field::OIF_LEN);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::rules::IpMatch;

    fn ov(name: &'static str, arg: &str) -> OptValue<'static> {
        OptValue {
            name,
            invert: false,
            args: vec![arg.to_string()].into(),
        }
    }

    fn with_ctx<T>(family: Family, f: impl FnOnce(&RuleContext) -> T) -> T {
        let ip = IpMatch::any(family);
        f(&RuleContext {
            family,
            ip: &ip,
            table: "mangle",
        })
    }

    fn parse(family: Family, opts: &[(&'static str, &str)]) -> ExtResult<Vec<u8>> {
        let opts: Vec<OptValue> = opts.iter().map(|(n, a)| ov(n, a)).collect();
        with_ctx(family, |c| Tee.parse(1, &opts, c))
    }

    fn save(family: Family, data: &[u8]) -> String {
        let mut out = String::new();
        with_ctx(family, |c| Tee.save(1, data, c, &mut out)).expect("save");
        out
    }

    /// gw (16 bytes), oif (16 bytes), then the zeroed kernel pointer.
    fn info(gw: &str, oif: &str) -> Vec<u8> {
        let mut v = hex(gw);
        let mut o = oif.as_bytes().to_vec();
        o.resize(16, 0);
        v.extend(o);
        v.resize(size_of::<xt_tee_tginfo>(), 0);
        v
    }

    type Case = (
        &'static [(&'static str, &'static str)],
        &'static str,
        &'static str,
        &'static str,
    );

    // Captured from the kernel after iptables-legacy-restore.
    const V4: &[Case] = &[
        // options, gw bytes, oif, iptables-legacy-save
        (
            &[("gateway", "192.168.1.1")],
            "c0a80101 00000000 00000000 00000000",
            "",
            " --gateway 192.168.1.1",
        ),
        (
            &[("gateway", "10.0.0.2"), ("oif", "eth0")],
            "0a000002 00000000 00000000 00000000",
            "eth0",
            " --gateway 10.0.0.2 --oif eth0",
        ),
        (
            &[("oif", "lo"), ("gateway", "255.255.255.255")],
            "ffffffff 00000000 00000000 00000000",
            "lo",
            " --gateway 255.255.255.255 --oif lo",
        ),
        // inet_aton forms: 10.1 is 10.0.0.1
        (
            &[("gateway", "10.1"), ("oif", "veth-abcdefghij")],
            "0a000001 00000000 00000000 00000000",
            "veth-abcdefghij",
            " --gateway 10.0.0.1 --oif veth-abcdefghij",
        ),
    ];

    // Captured from the kernel after ip6tables-legacy-restore.
    const V6: &[Case] = &[
        (
            &[("gateway", "2001:db8::1")],
            "20010db8 00000000 00000000 00000001",
            "",
            " --gateway 2001:db8::1",
        ),
        (
            &[("gateway", "fe80::1"), ("oif", "eth0")],
            "fe800000 00000000 00000000 00000001",
            "eth0",
            " --gateway fe80::1 --oif eth0",
        ),
        (
            &[("oif", "lo"), ("gateway", "::ffff:10.0.0.1")],
            "00000000 00000000 0000ffff 0a000001",
            "lo",
            " --gateway ::ffff:10.0.0.1 --oif lo",
        ),
        (
            &[("gateway", "::1.2.3.4"), ("oif", "veth-abcdefghij")],
            "00000000 00000000 00000000 01020304",
            "veth-abcdefghij",
            " --gateway ::1.2.3.4 --oif veth-abcdefghij",
        ),
        (
            &[("gateway", "2001:0:0:1:0:0:0:1")],
            "20010000 00000001 00000000 00000001",
            "",
            " --gateway 2001:0:0:1::1",
        ),
        (
            &[("gateway", "1:2:3:4:5:6:7:8")],
            "00010002 00030004 00050006 00070008",
            "",
            " --gateway 1:2:3:4:5:6:7:8",
        ),
    ];

    #[test]
    fn parse_matches_kernel_bytes() {
        for (family, cases) in [(Family::V4, V4), (Family::V6, V6)] {
            for (o, gw, oif, text) in cases {
                assert_eq!(parse(family, o).unwrap(), info(gw, oif), "{text}");
            }
        }
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        for (family, cases) in [(Family::V4, V4), (Family::V6, V6)] {
            for (_, gw, oif, text) in cases {
                assert_eq!(save(family, &info(gw, oif)), *text);
            }
        }
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(
            parse(Family::V4, &[("oif", "eth0")]).unwrap_err(),
            "TEE: option \"--gateway\" must be specified"
        );
        assert!(parse(Family::V4, &[("gateway", "2001:db8::1")]).is_err());
        assert!(parse(Family::V6, &[("gateway", "10.0.0.1")]).is_err());
        assert!(parse(Family::V4, &[("gateway", "no.such.host.invalid")]).is_err());
        assert!(parse(
            Family::V4,
            &[("gateway", "1.2.3.4"), ("oif", "veth-abcdefghijk")]
        )
        .unwrap_err()
        .contains("shorter than 16"));
        assert!(parse(
            Family::V4,
            &[("gateway", "1.2.3.4"), ("gateway", "1.2.3.5")]
        )
        .unwrap_err()
        .contains("only be used once"));
        let inv = [OptValue {
            invert: true,
            ..ov("gateway", "1.2.3.4")
        }];
        assert!(with_ctx(Family::V4, |c| Tee.parse(1, &inv, c))
            .unwrap_err()
            .contains("cannot be inverted"));
        assert!(with_ctx(Family::V4, |c| Tee.save(1, &[0; 20], c, &mut String::new())).is_err());
    }
}
