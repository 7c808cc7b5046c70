//! `-m multiport` (xt_multiport): up to 15 ports in one match,
//! `--sports`/`--source-ports`, `--dports`/`--destination-ports` or `--ports`.
//!
//! Revision 1 (`xt_multiport_v1`) takes `lo:hi` ranges (a range uses two of
//! the 15 slots) and `!`; revision 0 (`xt_multiport`, no ranges, no `!`) is
//! still in iptables 1.8.9 but gone from current kernels. Both need `-p` to
//! name tcp, udp, udplite, sctp or dccp (ports are looked up for it).

use std::mem::offset_of;

use super::{
    opt, parse_port, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::{inv_flags, Family};
use crate::sys::bindings::{xt_multiport, xt_multiport_v1, XT_MULTI_PORTS};

pub(super) static CODECS: &[&dyn Codec] = &[&Multiport];

mod field {
    use super::*;
    pub const FLAGS: usize = offset_of!(xt_multiport_v1, flags);
    pub const COUNT: usize = offset_of!(xt_multiport_v1, count);
    pub const PORTS: usize = offset_of!(xt_multiport_v1, ports);
    pub const PFLAGS: usize = offset_of!(xt_multiport_v1, pflags);
    pub const INVERT: usize = offset_of!(xt_multiport_v1, invert);
    pub const V0_FLAGS: usize = offset_of!(xt_multiport, flags);
    pub const V0_COUNT: usize = offset_of!(xt_multiport, count);
    pub const V0_PORTS: usize = offset_of!(xt_multiport, ports);
}

/// Port slots in the struct.
const SLOTS: usize = XT_MULTI_PORTS as usize;

/// `enum xt_multiport_flags` (xt_multiport.h): which ports are compared.
mod direction {
    pub const SOURCE: u8 = 0;
    pub const DESTINATION: u8 = 1;
    pub const EITHER: u8 = 2;
}

/// The protocols multiport accepts, by number, with the name ports are
/// looked up under (libxt_multiport's proto_to_name).
fn proto_name(proto: u16) -> Option<&'static str> {
    Some(match proto {
        6 => "tcp",
        17 => "udp",
        136 => "udplite",
        132 => "sctp",
        33 => "dccp",
        _ => return None,
    })
}

/// libxt_multiport's check_proto: the rule's `-p` must be one of the above
/// and not inverted.
fn check_proto(ctx: &RuleContext) -> ExtResult<&'static str> {
    let wrong = "multiport only works with TCP, UDP, UDPLITE, SCTP and DCCP";
    if ctx.ip.invflags & inv_flags::PROTO != 0 {
        return Err(wrong.into());
    }
    match proto_name(ctx.ip.proto) {
        Some(n) => Ok(n),
        None if ctx.ip.proto == 0 => {
            Err("multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'".into())
        }
        None => Err(wrong.into()),
    }
}

/// Revision 1 ports: up to 15 slots; `lo:hi` takes two, flagged in pflags.
fn parse_ports_v1(s: &str, proto: &str) -> ExtResult<(Vec<u16>, [u8; SLOTS])> {
    let mut ports = Vec::new();
    let mut pflags = [0u8; SLOTS];
    let mut items = s.split(',');
    for item in items.by_ref() {
        let i = ports.len();
        match item.split_once(':') {
            Some((lo, hi)) => {
                if i == SLOTS - 1 {
                    return Err("too many ports specified".into());
                }
                let (lo, hi) = (parse_port(lo, proto)?, parse_port(hi, proto)?);
                if lo >= hi {
                    return Err("invalid portrange specified".into());
                }
                pflags[i] = 1;
                ports.extend([lo, hi]);
            }
            None => ports.push(parse_port(item, proto)?),
        }
        if ports.len() == SLOTS {
            break;
        }
    }
    if items.next().is_some() {
        return Err("too many ports specified".into());
    }
    Ok((ports, pflags))
}

/// Revision 0 ports: up to 15 single ports.
fn parse_ports_v0(s: &str, proto: &str) -> ExtResult<Vec<u16>> {
    let items: Vec<&str> = s.split(',').collect();
    if items.len() > SLOTS {
        return Err("too many ports specified".into());
    }
    items.iter().map(|p| parse_port(p, proto)).collect()
}

/// The option names by id, first name first (libxt_multiport's table).
fn id_of(name: &str) -> (u8, &'static str) {
    match name {
        "source-ports" | "sports" => (direction::SOURCE, "source-ports"),
        "destination-ports" | "dports" => (direction::DESTINATION, "destination-ports"),
        _ => (direction::EITHER, "ports"),
    }
}

struct Multiport;

impl Codec for Multiport {
    fn name(&self) -> &'static str {
        "multiport"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V4, Family::V6]
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[1, 0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("source-ports", Arg::One),
            opt("sports", Arg::One),
            opt("destination-ports", Arg::One),
            opt("dports", Arg::One),
            opt("ports", Arg::One),
        ];
        O
    }

    fn parse(&self, rev: u8, opts: &[OptValue], ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let Some((first, rest)) = opts.split_first() else {
            return Err("multiport expection an option".into());
        };
        if !matches!(
            first.name,
            "source-ports" | "sports" | "destination-ports" | "dports" | "ports"
        ) {
            return Err(super::unknown_option("multiport", first));
        }
        // Every option excludes every other and itself.
        if let Some(second) = rest.first() {
            let (a, b) = (id_of(first.name), id_of(second.name));
            if a.0 == b.0 {
                return Err(format!(
                    "multiport: option \"--{}\" can only be used once.",
                    second.name
                ));
            }
            let (x, y) = if a.0 < b.0 { (a.1, b.1) } else { (b.1, a.1) };
            return Err(format!(
                "multiport: option \"--{x}\" cannot be used together with \"--{y}\"."
            ));
        }
        let o = first;
        let (flags, _) = id_of(o.name);
        let proto = check_proto(ctx)?;
        if rev == 0 {
            let ports = parse_ports_v0(o.arg(), proto)?;
            if o.invert {
                return Err("multiport.0 does not support invert".into());
            }
            let mut p = Payload::of::<xt_multiport>();
            p.u8(field::V0_FLAGS, flags)
                .u8(field::V0_COUNT, ports.len() as u8);
            for (i, port) in ports.iter().enumerate() {
                p.u16(field::V0_PORTS + 2 * i, *port);
            }
            return Ok(p.finish());
        }
        let (ports, pflags) = parse_ports_v1(o.arg(), proto)?;
        let mut p = Payload::of::<xt_multiport_v1>();
        p.u8(field::FLAGS, flags)
            .u8(field::COUNT, ports.len() as u8);
        for (i, port) in ports.iter().enumerate() {
            p.u16(field::PORTS + 2 * i, *port);
        }
        p.bytes(field::PFLAGS, &pflags)
            .u8(field::INVERT, u8::from(o.invert));
        Ok(p.finish())
    }

    fn save(&self, rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let (r, flags, count, ports_at, pflags_at) = if rev == 0 {
            let r = Reader::new(data, std::mem::size_of::<xt_multiport>())?;
            (
                r,
                r.u8(field::V0_FLAGS)?,
                r.u8(field::V0_COUNT)?,
                field::V0_PORTS,
                None,
            )
        } else {
            let r = Reader::new(data, std::mem::size_of::<xt_multiport_v1>())?;
            if r.u8(field::INVERT)? != 0 {
                out.push_str(" !");
            }
            (
                r,
                r.u8(field::FLAGS)?,
                r.u8(field::COUNT)?,
                field::PORTS,
                Some(field::PFLAGS),
            )
        };
        let count = usize::from(count);
        if count > SLOTS {
            return Err(format!(
                "multiport: {count} ports in a {SLOTS}-slot payload"
            ));
        }
        out.push_str(match flags {
            direction::SOURCE => " --sports ",
            direction::DESTINATION => " --dports ",
            direction::EITHER => " --ports ",
            _ => "",
        });
        let port = |i: usize| -> ExtResult<u16> {
            if i >= SLOTS {
                return Err("multiport: a range runs past the last port slot".into());
            }
            r.u16(ports_at + 2 * i)
        };
        let mut i = 0;
        while i < count {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&port(i)?.to_string());
            if let Some(pf) = pflags_at {
                if r.u8(pf + i)? != 0 {
                    i += 1;
                    out.push_str(&format!(":{}", port(i)?));
                }
            }
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::rules::IpMatch;

    fn ov(name: &'static str, invert: bool, arg: &str) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: vec![arg.to_string()].into(),
        }
    }

    fn ip(proto: u16, invflags: u8) -> IpMatch {
        let mut ip = IpMatch::any(Family::V4);
        ip.proto = proto;
        ip.invflags = invflags;
        ip
    }

    fn run_ip(rev: u8, ip: &IpMatch, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ctx = RuleContext {
            family: Family::V4,
            ip,
            table: "filter",
        };
        // The registry pads every payload to XT_ALIGN, as the kernel holds it.
        let mut v = Multiport.parse(rev, opts, &ctx)?;
        v.resize(crate::ext::xt_align(v.len()), 0);
        Ok(v)
    }

    fn run(rev: u8, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        run_ip(rev, &ip(6, 0), opts)
    }

    fn save(rev: u8, data: &[u8]) -> ExtResult<String> {
        let ip = ip(6, 0);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Multiport.save(rev, data, &ctx, &mut out)?;
        Ok(out)
    }

    // Kernel capture after iptables-legacy-restore of
    // `-p tcp -m multiport --dports 1,2` (xt_multiport_v1, 48 bytes):
    // 01 flags DESTINATION | 02 count | 0100 0200 ports 1,2 | 13 x 0000 |
    // 15 x 00 pflags | 00 invert (no padding: 48 is already aligned)
    #[test]
    fn rev1_dports() {
        let fixture = hex(&format!(
            "01 02 0100 0200 {} {} 00",
            "0000".repeat(13),
            "00".repeat(15)
        ));
        assert_eq!(run(1, &[ov("dports", false, "1,2")]).unwrap(), fixture);
        assert_eq!(save(1, &fixture).unwrap(), " --dports 1,2");
    }

    // Kernel capture of `-p tcp -m multiport ! --source-ports ssh,1000:2000,http`:
    // 00 flags SOURCE | 04 count | 1600 e803 d007 5000 ports 22,1000,2000,80 |
    // pflags 00 01 00 00 ... (slot 1 opens a range) | 01 invert
    #[test]
    fn rev1_inverted_range_and_names() {
        let fixture = hex(&format!(
            "00 04 1600 e803 d007 5000 {} 00 01 {} 01",
            "0000".repeat(11),
            "00".repeat(13)
        ));
        assert_eq!(
            run(1, &[ov("source-ports", true, "ssh,1000:2000,http")]).unwrap(),
            fixture
        );
        assert_eq!(save(1, &fixture).unwrap(), " ! --sports 22,1000:2000,80");
    }

    // Kernel capture of `-p udp -m multiport --ports 1,2,...,15` (all 15
    // slots): 02 flags EITHER | 0f count | ports 1..15.
    #[test]
    fn rev1_fifteen_ports() {
        let list: Vec<String> = (1..=15).map(|p| p.to_string()).collect();
        let ports: String = (1..=15u16).map(hex_le).collect();
        let fixture = hex(&format!("02 0f {ports} {} 00", "00".repeat(15)));
        assert_eq!(
            run_ip(1, &ip(17, 0), &[ov("ports", false, &list.join(","))]).unwrap(),
            fixture
        );
        assert_eq!(
            save(1, &fixture).unwrap(),
            format!(" --ports {}", list.join(","))
        );
    }

    fn hex_le(p: u16) -> String {
        format!("{:02x}{:02x}", p & 0xff, p >> 8)
    }

    // Revision 0 (gone from the kernel): bytes captured from
    // iptables-legacy-restore's SET_REPLACE with revision 1 hidden, for
    // `-p tcp -m multiport --sports 80,443` (xt_multiport, 32 bytes):
    // 00 flags SOURCE | 02 count | 5000 bb01 ports 80,443 | 13 x 0000
    #[test]
    fn rev0_sports() {
        let fixture = hex(&format!("00 02 5000 bb01 {}", "0000".repeat(13)));
        assert_eq!(run(0, &[ov("sports", false, "80,443")]).unwrap(), fixture);
        assert_eq!(save(0, &fixture).unwrap(), " --sports 80,443");
    }

    #[test]
    fn refused() {
        let d = |s: &str| run(1, &[ov("dports", false, s)]).unwrap_err();
        assert!(d("80,").contains("invalid port/service"));
        assert!(d("nosuchservice").contains("invalid port/service"));
        assert!(d("65536").contains("invalid port/service"));
        assert!(d("2000:1000").contains("invalid portrange"));
        assert!(d("1000:1000").contains("invalid portrange"));
        let sixteen: Vec<String> = (1..=16).map(|p| p.to_string()).collect();
        assert!(d(&sixteen.join(",")).contains("too many ports"));
        // A range may not start in the last slot.
        let fourteen: Vec<String> = (1..=14).map(|p| p.to_string()).collect();
        assert!(d(&format!("{},100:200", fourteen.join(","))).contains("too many ports"));
        assert!(run(0, &[ov("dports", false, "1:2")])
            .unwrap_err()
            .contains("invalid port/service"));
        assert!(run(0, &[ov("dports", true, "1")])
            .unwrap_err()
            .contains("does not support invert"));
        assert!(run_ip(1, &ip(0, 0), &[ov("dports", false, "1")])
            .unwrap_err()
            .contains("needs `-p tcp'"));
        assert!(run_ip(1, &ip(1, 0), &[ov("dports", false, "1")])
            .unwrap_err()
            .contains("only works with"));
        assert!(
            run_ip(1, &ip(6, inv_flags::PROTO), &[ov("dports", false, "1")])
                .unwrap_err()
                .contains("only works with")
        );
        assert!(run(1, &[]).unwrap_err().contains("expection an option"));
        let twice = [
            ov("dports", false, "1"),
            ov("destination-ports", false, "2"),
        ];
        assert!(run(1, &twice).unwrap_err().contains("only be used once"));
        let two = [ov("dports", false, "1"), ov("sports", false, "2")];
        assert_eq!(
            run(1, &two).unwrap_err(),
            "multiport: option \"--source-ports\" cannot be used together with \"--destination-ports\"."
        );
        assert!(save(1, &[0; 16]).is_err());
        let mut bad = vec![0u8; 48];
        bad[1] = 16; // count past the slots
        assert!(save(1, &bad).is_err());
    }
}
