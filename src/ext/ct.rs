//! `-j CT` (xt_CT): conntrack template for a packet (notrack, helper,
//! events, zone, timeout policy), and its alias `-j NOTRACK`.
//!
//! iptables 1.8.9 has revisions 2 and 1 (`xt_ct_target_info_v1`, with a
//! timeout policy name) and 0 (`xt_ct_target_info`, without). Revision 2
//! differs from 1 only in knowing the `XT_CT_NOTRACK_ALIAS` flag: `-j NOTRACK`
//! is sent as CT revision 2 with `NOTRACK | NOTRACK_ALIAS` and saved back as
//! `-j NOTRACK` (on revisions 1 and 0 it is plain `CT --notrack`). The
//! target is valid in the raw table only; the kernel checks that.
//!
//! The `ct` pointer at the end of both structs is the kernel's own; it is
//! sent as zero and comes back zeroed (beyond the target's user size).

use std::mem::{offset_of, size_of};

use super::{
    no_invert, once, opt, parse_uint, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload,
    Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    xt_ct_target_info, xt_ct_target_info_v1, XT_CT_NOTRACK, XT_CT_NOTRACK_ALIAS,
    XT_CT_ZONE_DIR_ORIG, XT_CT_ZONE_DIR_REPL, XT_CT_ZONE_MARK,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Ct, &Notrack];

/// The fields shared by both layouts sit at the same offsets; revision 1
/// adds `timeout` after `helper`.
mod field {
    use super::*;
    pub const FLAGS: usize = offset_of!(xt_ct_target_info_v1, flags);
    pub const ZONE: usize = offset_of!(xt_ct_target_info_v1, zone);
    pub const CT_EVENTS: usize = offset_of!(xt_ct_target_info_v1, ct_events);
    pub const EXP_EVENTS: usize = offset_of!(xt_ct_target_info_v1, exp_events);
    pub const HELPER: usize = offset_of!(xt_ct_target_info_v1, helper);
    pub const HELPER_LEN: usize = 16;
    pub const TIMEOUT: usize = offset_of!(xt_ct_target_info_v1, timeout);
    pub const TIMEOUT_LEN: usize = 32;

    const _: () = assert!(FLAGS == offset_of!(xt_ct_target_info, flags));
    const _: () = assert!(ZONE == offset_of!(xt_ct_target_info, zone));
    const _: () = assert!(CT_EVENTS == offset_of!(xt_ct_target_info, ct_events));
    const _: () = assert!(EXP_EVENTS == offset_of!(xt_ct_target_info, exp_events));
    const _: () = assert!(HELPER == offset_of!(xt_ct_target_info, helper));
    const _: () = assert!(TIMEOUT == HELPER + HELPER_LEN);
}

/// `--ctevents` names and their IPCT_* bit numbers (libxt_CT's table order,
/// which is also the save order).
const CT_EVENTS: &[(&str, u32)] = &[
    ("new", 0),
    ("related", 1),
    ("destroy", 2),
    ("reply", 3),
    ("assured", 4),
    ("protoinfo", 5),
    ("helper", 6),
    ("mark", 7),
    ("natseqinfo", 8),
    ("secmark", 9),
];

/// `--expevents` names and their IPEXP_* bit numbers.
const EXP_EVENTS: &[(&str, u32)] = &[("new", 0)];

const FLAG_NOTRACK: u16 = XT_CT_NOTRACK as u16;
const FLAG_ALIAS: u16 = XT_CT_NOTRACK_ALIAS as u16;
const FLAG_ORIG: u16 = XT_CT_ZONE_DIR_ORIG as u16;
const FLAG_REPL: u16 = XT_CT_ZONE_DIR_REPL as u16;
const FLAG_MARK: u16 = XT_CT_ZONE_MARK as u16;

/// A comma list of event names (exact, case-sensitive; an empty item is an
/// unknown event, as in iptables).
fn parse_events(table: &[(&str, u32)], arg: &str) -> ExtResult<u32> {
    arg.split(',').try_fold(0u32, |mask, ev| {
        let (_, bit) = table
            .iter()
            .find(|(n, _)| *n == ev)
            .ok_or_else(|| format!("Unknown event type \"{ev}\""))?;
        Ok(mask | 1 << bit)
    })
}

fn save_events(out: &mut String, opt: &str, table: &[(&str, u32)], mask: u32) {
    let names: Vec<&str> = table
        .iter()
        .filter(|(_, bit)| mask & 1 << bit != 0)
        .map(|(n, _)| *n)
        .collect();
    out.push_str(&format!(" --{opt} {}", names.join(",")));
}

/// XTTYPE_STRING into a fixed char array: cut to `len - 1` bytes.
fn put_string(p: &mut Payload, off: usize, len: usize, s: &str) {
    let b = crate::text::to_bytes(s);
    p.bytes(off, &b[..b.len().min(len - 1)]);
}

/// The payload size of a revision.
fn struct_size(rev: u8) -> ExtResult<usize> {
    match rev {
        0 => Ok(size_of::<xt_ct_target_info>()),
        1 | 2 => Ok(size_of::<xt_ct_target_info_v1>()),
        _ => Err(format!("CT: revision {rev} is not supported")),
    }
}

struct Ct;

impl Codec for Ct {
    fn name(&self) -> &'static str {
        "CT"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[2, 1, 0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("notrack", Arg::None),
            opt("helper", Arg::One),
            opt("timeout", Arg::One),
            opt("ctevents", Arg::One),
            opt("expevents", Arg::One),
            opt("zone-orig", Arg::One),
            opt("zone-reply", Arg::One),
            opt("zone", Arg::One),
        ];
        O
    }

    fn parse(&self, rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::new(struct_size(rev)?);
        let (mut flags, mut zone) = (0u16, 0u16);
        let mut seen = Vec::new();
        for o in opts {
            if o.name == "timeout" && rev == 0 {
                // Revision 0 has no timeout field, and iptables no such option.
                return Err(super::unknown_option("CT", o));
            }
            once(&mut seen, o, "CT")?;
            no_invert(o, "CT")?;
            match o.name {
                "notrack" => flags |= FLAG_NOTRACK,
                "helper" => put_string(&mut p, field::HELPER, field::HELPER_LEN, o.arg()),
                "timeout" => put_string(&mut p, field::TIMEOUT, field::TIMEOUT_LEN, o.arg()),
                "ctevents" => {
                    p.u32(field::CT_EVENTS, parse_events(CT_EVENTS, o.arg())?);
                }
                "expevents" => {
                    p.u32(field::EXP_EVENTS, parse_events(EXP_EVENTS, o.arg())?);
                }
                "zone" | "zone-orig" | "zone-reply" => {
                    // Each zone option resets the id and adds its flags.
                    flags |= match o.name {
                        "zone-orig" => FLAG_ORIG,
                        "zone-reply" => FLAG_REPL,
                        _ => 0,
                    };
                    zone = 0;
                    if o.arg().eq_ignore_ascii_case("mark") {
                        flags |= FLAG_MARK;
                    } else {
                        zone = parse_uint(o.arg(), 0, u64::from(u16::MAX))
                            .ok_or_else(|| format!("Cannot parse {} as a zone ID", o.arg()))?
                            as u16;
                    }
                }
                _ => return Err(super::unknown_option("CT", o)),
            }
        }
        p.u16(field::FLAGS, flags).u16(field::ZONE, zone);
        Ok(p.finish())
    }

    fn save(&self, rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, struct_size(rev)?)?;
        let flags = r.u16(field::FLAGS)?;
        if flags & FLAG_ALIAS != 0 {
            // Saved as `-j NOTRACK` (revision 2) with no options.
            return Ok(());
        }
        if flags & FLAG_NOTRACK != 0 {
            out.push_str(" --notrack");
        }
        let helper = r.cstr(field::HELPER, field::HELPER_LEN)?;
        if !helper.is_empty() {
            out.push_str(" --helper ");
            out.push_str(&crate::text::from_bytes(helper));
        }
        if rev > 0 {
            let timeout = r.cstr(field::TIMEOUT, field::TIMEOUT_LEN)?;
            if !timeout.is_empty() {
                out.push_str(" --timeout ");
                out.push_str(&crate::text::from_bytes(timeout));
            }
        }
        let ct_events = r.u32(field::CT_EVENTS)?;
        if ct_events != 0 {
            save_events(out, "ctevents", CT_EVENTS, ct_events);
        }
        let exp_events = r.u32(field::EXP_EVENTS)?;
        if exp_events != 0 {
            save_events(out, "expevents", EXP_EVENTS, exp_events);
        }
        let zone = r.u16(field::ZONE)?;
        if flags & FLAG_MARK != 0 || zone != 0 {
            out.push_str(" --zone");
            match flags & (FLAG_ORIG | FLAG_REPL) {
                FLAG_ORIG => out.push_str("-orig"),
                FLAG_REPL => out.push_str("-reply"),
                _ => {}
            }
            if flags & FLAG_MARK != 0 {
                out.push_str(" mark");
            } else {
                out.push_str(&format!(" {zone}"));
            }
        }
        Ok(())
    }

    fn save_name(&self, rev: u8, data: &[u8]) -> &'static str {
        // Only revision 2 has the alias name (libxt_CT's ct_print_name_alias).
        let alias = rev == 2
            && Reader::new(data, 2)
                .and_then(|r| r.u16(field::FLAGS))
                .is_ok_and(|f| f & FLAG_ALIAS != 0);
        if alias {
            "NOTRACK"
        } else {
            "CT"
        }
    }
}

/// `-j NOTRACK`: CT with the notrack flags, no options.
struct Notrack;

impl Codec for Notrack {
    fn name(&self) -> &'static str {
        "NOTRACK"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn kernel_name(&self) -> &'static str {
        "CT"
    }
    fn is_alias(&self) -> bool {
        true
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[2, 1, 0]
    }
    fn options(&self) -> &'static [OptSpec] {
        &[]
    }

    fn parse(&self, rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        if let Some(o) = opts.first() {
            return Err(super::unknown_option("NOTRACK", o));
        }
        // notrack_ct{0,1,2}_tg_init: revision 2 also marks the alias.
        let flags = match rev {
            2 => FLAG_NOTRACK | FLAG_ALIAS,
            _ => FLAG_NOTRACK,
        };
        let mut p = Payload::new(struct_size(rev)?);
        p.u16(field::FLAGS, flags);
        Ok(p.finish())
    }

    fn save(&self, rev: u8, data: &[u8], ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        Ct.save(rev, data, ctx, out)
    }
}

#[cfg(test)]
mod tests {
    //! Revision 2 fixtures are target payloads (after the 32-byte
    //! `xt_entry_target` header) dumped from the kernel after
    //! iptables-legacy-restore 1.8.9 loaded the rule shown in the raw table.
    //! The kernel returns only the first 32 bytes as written (its user size
    //! for CT is that of revision 0): a longer `timeout` comes back cut to
    //! 4 bytes, and the `ct` pointer comes back zero.

    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;
    use crate::rules::IpMatch;

    fn o(name: &'static str, arg: &str) -> OptValue<'static> {
        OptValue {
            name,
            invert: false,
            args: if arg.is_empty() {
                Default::default()
            } else {
                vec![arg.to_string()].into()
            },
        }
    }

    fn parse(c: &dyn Codec, rev: u8, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "raw",
        };
        let mut v = c.parse(rev, opts, &ctx)?;
        v.resize(xt_align(v.len()), 0);
        Ok(v)
    }

    fn save(rev: u8, data: &[u8]) -> (&'static str, String) {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "raw",
        };
        let mut out = String::new();
        Ct.save(rev, data, &ctx, &mut out).expect("save");
        (Ct.save_name(rev, data), out)
    }

    /// `xt_ct_target_info_v1` from its first 28 bytes (the rest zero).
    fn v1(head: &str, timeout: &str) -> Vec<u8> {
        let mut v = hex(head);
        v.extend(hex(timeout));
        v.resize(72, 0); // rest of timeout[32], padding, ct pointer: zero
        v
    }

    #[test]
    fn notrack_alias_v2() {
        // -j NOTRACK
        let fixture = v1(
            concat!(
                "0300",                             // flags NOTRACK | NOTRACK_ALIAS
                "0000",                             // zone
                "00000000",                         // ct_events
                "00000000",                         // exp_events
                "00000000000000000000000000000000", // helper ""
            ),
            "", // timeout ""
        );
        assert_eq!(parse(&Notrack, 2, &[]).unwrap(), fixture);
        assert_eq!(save(2, &fixture), ("NOTRACK", String::new()));
    }

    #[test]
    fn notrack_alias_v1_v0_is_plain_notrack() {
        // -j CT --notrack (revision 2): also what -j NOTRACK sends as
        // revision 1, and, cut to 40 bytes, as revision 0.
        let fixture = v1(
            concat!(
                "0100",                             // flags NOTRACK
                "0000",                             // zone
                "00000000",                         // ct_events
                "00000000",                         // exp_events
                "00000000000000000000000000000000", // helper ""
            ),
            "",
        );
        assert_eq!(parse(&Ct, 2, &[o("notrack", "")]).unwrap(), fixture);
        assert_eq!(parse(&Notrack, 1, &[]).unwrap(), fixture);
        assert_eq!(parse(&Notrack, 0, &[]).unwrap(), fixture[..40]);
        assert_eq!(save(2, &fixture), ("CT", " --notrack".to_string()));
        assert_eq!(save(1, &fixture), ("CT", " --notrack".to_string()));
        assert_eq!(save(0, &fixture[..40]), ("CT", " --notrack".to_string()));
    }

    #[test]
    fn helper_events_zone() {
        // -p udp -j CT --helper sip --ctevents new,destroy --expevents new --zone-orig 7
        let fixture = v1(
            concat!(
                "0400",                             // flags ZONE_DIR_ORIG
                "0700",                             // zone 7 (host order)
                "05000000",                         // ct_events: 1<<IPCT_NEW | 1<<IPCT_DESTROY
                "01000000",                         // exp_events: 1<<IPEXP_NEW
                "73697000000000000000000000000000", // helper "sip"
            ),
            "",
        );
        let opts = [
            o("helper", "sip"),
            o("ctevents", "new,destroy"),
            o("expevents", "new"),
            o("zone-orig", "7"),
        ];
        assert_eq!(parse(&Ct, 2, &opts).unwrap(), fixture);
        let text = " --helper sip --ctevents new,destroy --expevents new --zone-orig 7";
        assert_eq!(save(2, &fixture), ("CT", text.to_string()));
        // Revision 0: the same first 28 bytes, then the ct pointer.
        let mut v0 = fixture[..28].to_vec();
        v0.resize(40, 0);
        assert_eq!(parse(&Ct, 0, &opts).unwrap(), v0);
        assert_eq!(save(0, &v0).1, text);
    }

    #[test]
    fn all_events_and_zone() {
        // -j CT --zone 5 --ctevents new,related,...,secmark --expevents new
        let fixture = v1(
            concat!(
                "0000",                             // flags
                "0500",                             // zone 5
                "ff030000",                         // ct_events: bits 0-9
                "01000000",                         // exp_events: new
                "00000000000000000000000000000000", // helper ""
            ),
            "",
        );
        let all = "new,related,destroy,reply,assured,protoinfo,helper,mark,natseqinfo,secmark";
        let opts = [o("zone", "5"), o("ctevents", all), o("expevents", "new")];
        assert_eq!(parse(&Ct, 2, &opts).unwrap(), fixture);
        assert_eq!(
            save(2, &fixture).1,
            format!(" --ctevents {all} --expevents new --zone 5")
        );
    }

    #[test]
    fn zone_flags() {
        // -j CT --zone-orig mark: flags ZONE_DIR_ORIG | ZONE_MARK.
        let fixture = v1(
            "1400 0000 00000000 00000000 00000000000000000000000000000000",
            "",
        );
        assert_eq!(parse(&Ct, 2, &[o("zone-orig", "mark")]).unwrap(), fixture);
        assert_eq!(save(2, &fixture).1, " --zone-orig mark");
        // -j CT --zone-reply 65535: flags ZONE_DIR_REPL, zone 0xffff.
        let fixture = v1(
            "0800 ffff 00000000 00000000 00000000000000000000000000000000",
            "",
        );
        assert_eq!(parse(&Ct, 2, &[o("zone-reply", "65535")]).unwrap(), fixture);
        assert_eq!(save(2, &fixture).1, " --zone-reply 65535");
        // -j CT --zone-orig 3 --zone-reply 4: both directions, saved as --zone.
        let fixture = v1(
            "0c00 0400 00000000 00000000 00000000000000000000000000000000",
            "",
        );
        assert_eq!(
            parse(&Ct, 2, &[o("zone-orig", "3"), o("zone-reply", "4")]).unwrap(),
            fixture
        );
        assert_eq!(save(2, &fixture).1, " --zone 4");
    }

    #[test]
    fn helper_and_timeout_strings() {
        // -j CT --notrack --helper averylonghelpername --timeout abc
        let fixture = v1(
            concat!(
                "0100",                             // flags NOTRACK
                "0000",                             // zone
                "00000000",                         // ct_events
                "00000000",                         // exp_events
                "61766572796c6f6e6768656c70657200", // helper cut to 15 bytes + NUL
            ),
            "61626300", // timeout "abc"
        );
        let opts = [
            o("notrack", ""),
            o("helper", "averylonghelpername"),
            o("timeout", "abc"),
        ];
        assert_eq!(parse(&Ct, 2, &opts).unwrap(), fixture);
        assert_eq!(
            save(2, &fixture).1,
            " --notrack --helper averylonghelper --timeout abc"
        );
        // -j CT --notrack --timeout mytimeout, as the kernel returns it.
        let fixture = v1(
            "0100 0000 00000000 00000000 00000000000000000000000000000000",
            "6d797469",
        );
        assert_eq!(save(2, &fixture).1, " --notrack --timeout myti");
    }

    #[test]
    fn refuses_bad_values() {
        let err = |c: &dyn Codec, rev, opts: &[OptValue]| parse(c, rev, opts).unwrap_err();
        assert!(err(&Ct, 2, &[o("ctevents", "new,bogus")]).contains("Unknown event type \"bogus\""));
        assert!(err(&Ct, 2, &[o("ctevents", "new,")]).contains("Unknown event type \"\""));
        assert!(err(&Ct, 2, &[o("ctevents", "NEW")]).contains("Unknown event type"));
        assert!(err(&Ct, 2, &[o("expevents", "destroy")]).contains("Unknown event type"));
        assert!(err(&Ct, 2, &[o("zone", "65536")]).contains("Cannot parse 65536 as a zone ID"));
        assert!(err(&Ct, 2, &[o("zone", "-1")]).contains("zone ID"));
        assert!(err(&Ct, 2, &[o("zone-orig", "marks")]).contains("zone ID"));
        assert!(
            err(&Ct, 2, &[o("notrack", ""), o("notrack", "")]).contains("can only be used once")
        );
        assert!(err(
            &Ct,
            2,
            &[OptValue {
                invert: true,
                ..o("helper", "ftp")
            }]
        )
        .contains("cannot be inverted"));
        assert!(err(&Ct, 0, &[o("timeout", "t")]).contains("unknown option"));
        assert!(err(&Notrack, 2, &[o("notrack", "")]).contains("unknown option"));
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "raw",
        };
        assert!(Ct.save(2, &[0; 40], &ctx, &mut String::new()).is_err());
    }
}
