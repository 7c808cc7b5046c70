//! `-m tcp` (xt_tcp): ports, flags and option of TCP segments.
//! Loaded implicitly by `-p tcp` when one of its options follows.

use std::mem::offset_of;

use super::{
    opt, parse_port_range, parse_uint, save_inv, Arg, Codec, ExtResult, Kind, OptSpec, OptValue,
    Payload, Reader, RuleContext,
};
use crate::sys::bindings::{
    xt_tcp, XT_TCP_INV_DSTPT, XT_TCP_INV_FLAGS, XT_TCP_INV_OPTION, XT_TCP_INV_SRCPT,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Tcp];

mod field {
    use super::*;
    pub const SPTS: usize = offset_of!(xt_tcp, spts);
    pub const DPTS: usize = offset_of!(xt_tcp, dpts);
    pub const OPTION: usize = offset_of!(xt_tcp, option);
    pub const FLG_MASK: usize = offset_of!(xt_tcp, flg_mask);
    pub const FLG_CMP: usize = offset_of!(xt_tcp, flg_cmp);
    pub const INVFLAGS: usize = offset_of!(xt_tcp, invflags);
}

const FLAGS: &[(&str, u8)] = &[
    ("FIN", 0x01),
    ("SYN", 0x02),
    ("RST", 0x04),
    ("PSH", 0x08),
    ("ACK", 0x10),
    ("URG", 0x20),
    ("ALL", 0x3f),
    ("NONE", 0),
];

struct Tcp;

/// Parses a comma list of TCP flag names (case-insensitive).
pub(crate) fn parse_tcp_flags(s: &str) -> ExtResult<u8> {
    let mut v = 0;
    for name in s.split(',').filter(|n| !n.is_empty()) {
        let (_, bit) = FLAGS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("Unknown TCP flag `{name}'"))?;
        v |= bit;
    }
    Ok(v)
}

/// Prints flags as libxt_tcp's print_tcpf does: `NONE`, or each set bit's
/// name in table order (FIN first), joined by commas.
pub(crate) fn save_tcp_flags(out: &mut String, flags: u8) {
    let names: Vec<&str> = FLAGS[..6]
        .iter()
        .filter(|(_, bit)| flags & bit != 0)
        .map(|(n, _)| *n)
        .collect();
    if names.is_empty() {
        out.push_str("NONE");
    } else {
        out.push_str(&names.join(","));
    }
}

fn save_ports(out: &mut String, opt: &str, ports: [u16; 2], inv: bool) {
    if ports[0] != 0 || ports[1] != 0xffff {
        save_inv(out, inv);
        if ports[0] != ports[1] {
            out.push_str(&format!(" --{opt} {}:{}", ports[0], ports[1]));
        } else {
            out.push_str(&format!(" --{opt} {}", ports[0]));
        }
    }
}

impl Codec for Tcp {
    fn name(&self) -> &'static str {
        "tcp"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn revisions(&self, _: crate::rules::Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("source-port", Arg::One),
            opt("sport", Arg::One),
            opt("destination-port", Arg::One),
            opt("dport", Arg::One),
            opt("syn", Arg::None),
            opt("tcp-flags", Arg::Two),
            opt("tcp-option", Arg::One),
        ];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_tcp>();
        let (mut spts, mut dpts) = ([0u16, 0xffff], [0u16, 0xffff]);
        let mut inv = 0u8;
        let (mut src, mut dst, mut flags, mut option) = (false, false, false, false);
        for o in opts {
            match o.name {
                "source-port" | "sport" => {
                    if src {
                        return Err("Only one `--source-port' allowed".into());
                    }
                    src = true;
                    spts = parse_port_range(o.arg(), "tcp")?;
                    if o.invert {
                        inv |= XT_TCP_INV_SRCPT as u8;
                    }
                }
                "destination-port" | "dport" => {
                    if dst {
                        return Err("Only one `--destination-port' allowed".into());
                    }
                    dst = true;
                    dpts = parse_port_range(o.arg(), "tcp")?;
                    if o.invert {
                        inv |= XT_TCP_INV_DSTPT as u8;
                    }
                }
                "syn" | "tcp-flags" => {
                    if flags {
                        return Err("Only one of `--syn' or `--tcp-flags'  allowed".into());
                    }
                    flags = true;
                    let (mask, cmp) = if o.name == "syn" {
                        (parse_tcp_flags("SYN,RST,ACK,FIN")?, parse_tcp_flags("SYN")?)
                    } else {
                        let cmp = o.args.get(1).ok_or("--tcp-flags requires two args.")?;
                        (parse_tcp_flags(o.arg())?, parse_tcp_flags(cmp)?)
                    };
                    p.u8(field::FLG_MASK, mask).u8(field::FLG_CMP, cmp);
                    if o.invert {
                        inv |= XT_TCP_INV_FLAGS as u8;
                    }
                }
                "tcp-option" => {
                    if option {
                        return Err("Only one `--tcp-option' allowed".into());
                    }
                    option = true;
                    let v = parse_uint(o.arg(), 1, 255)
                        .ok_or_else(|| format!("Bad TCP option \"{}\"", o.arg()))?;
                    p.u8(field::OPTION, v as u8);
                    if o.invert {
                        inv |= XT_TCP_INV_OPTION as u8;
                    }
                }
                _ => return Err(super::unknown_option("tcp", o)),
            }
        }
        p.u16(field::SPTS, spts[0]).u16(field::SPTS + 2, spts[1]);
        p.u16(field::DPTS, dpts[0]).u16(field::DPTS + 2, dpts[1]);
        p.u8(field::INVFLAGS, inv);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_tcp>())?;
        let inv = r.u8(field::INVFLAGS)?;
        let spts = [r.u16(field::SPTS)?, r.u16(field::SPTS + 2)?];
        let dpts = [r.u16(field::DPTS)?, r.u16(field::DPTS + 2)?];
        save_ports(out, "sport", spts, inv & XT_TCP_INV_SRCPT as u8 != 0);
        save_ports(out, "dport", dpts, inv & XT_TCP_INV_DSTPT as u8 != 0);
        let option = r.u8(field::OPTION)?;
        if option != 0 || inv & XT_TCP_INV_OPTION as u8 != 0 {
            save_inv(out, inv & XT_TCP_INV_OPTION as u8 != 0);
            out.push_str(&format!(" --tcp-option {option}"));
        }
        let mask = r.u8(field::FLG_MASK)?;
        if mask != 0 || inv & XT_TCP_INV_FLAGS as u8 != 0 {
            save_inv(out, inv & XT_TCP_INV_FLAGS as u8 != 0);
            out.push_str(" --tcp-flags ");
            save_tcp_flags(out, mask);
            out.push(' ');
            save_tcp_flags(out, r.u8(field::FLG_CMP)?);
        }
        Ok(())
    }
}

/// Shared with udp: save of a port pair.
pub(crate) fn save_port_pair(out: &mut String, opt: &str, ports: [u16; 2], inv: bool) {
    save_ports(out, opt, ports, inv);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;
    use crate::rules::{Family, IpMatch};

    fn ov(name: &'static str, invert: bool, args: &[&str]) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn padded(mut v: Vec<u8>) -> Vec<u8> {
        v.resize(xt_align(v.len()), 0);
        v
    }

    // Captured from the kernel after iptables-legacy-restore of
    // `-p tcp -m tcp ! --sport 1024:65535 --dport 22 --tcp-flags SYN,ACK SYN ! --tcp-option 2`
    const FIXTURE: &str = "
        0004 ffff   # spts 1024:65535 (host order)
        1600 1600   # dpts 22:22
        02          # option 2
        12          # flg_mask SYN,ACK
        02          # flg_cmp SYN
        09          # invflags SRCPT|OPTION
        00000000    # padding to XT_ALIGN";

    fn fixture() -> Vec<u8> {
        hex(&FIXTURE
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .collect::<String>())
    }

    #[test]
    fn parse_matches_kernel_bytes() {
        let ip = IpMatch {
            proto: 6,
            ..IpMatch::any(Family::V4)
        };
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let opts = [
            ov("sport", true, &["1024:65535"]),
            ov("dport", false, &["22"]),
            ov("tcp-flags", false, &["SYN,ACK", "SYN"]),
            ov("tcp-option", true, &["2"]),
        ];
        assert_eq!(padded(Tcp.parse(0, &opts, &ctx).unwrap()), fixture());
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
        Tcp.save(0, &fixture(), &ctx, &mut out).unwrap();
        assert_eq!(
            out,
            " ! --sport 1024:65535 --dport 22 ! --tcp-option 2 --tcp-flags SYN,ACK SYN"
        );
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
            ov("dport", false, &["30:20"]),
            ov("tcp-flags", false, &["SYN,BOGUS", "SYN"]),
            ov("tcp-option", false, &["0"]),
            ov("sport", false, &["nosuchservice"]),
        ] {
            assert!(
                Tcp.parse(0, std::slice::from_ref(&o), &ctx).is_err(),
                "{o:?} accepted"
            );
        }
        assert!(Tcp
            .parse(
                0,
                &[ov("dport", false, &["1"]), ov("dport", false, &["2"])],
                &ctx
            )
            .is_err());
        assert!(
            Tcp.save(0, &[0u8; 4], &ctx, &mut String::new()).is_err(),
            "short payload must not panic"
        );
    }
}
