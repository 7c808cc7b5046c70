//! `-j AUDIT` (xt_AUDIT, `xt_audit_info`): record the packet in the audit
//! log with an action type. One revision, both families.

use std::mem::{offset_of, size_of};

use super::{
    no_invert, once, opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::sys::bindings::{
    xt_audit_info, XT_AUDIT_TYPE_ACCEPT, XT_AUDIT_TYPE_DROP, XT_AUDIT_TYPE_REJECT,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Audit];

mod field {
    use super::*;
    pub const TYPE: usize = offset_of!(xt_audit_info, type_);
}

/// The action names, as `--type` takes them (any case) and saves them.
const TYPES: &[(&str, u32)] = &[
    ("accept", XT_AUDIT_TYPE_ACCEPT),
    ("drop", XT_AUDIT_TYPE_DROP),
    ("reject", XT_AUDIT_TYPE_REJECT),
];

struct Audit;

impl Codec for Audit {
    fn name(&self) -> &'static str {
        "AUDIT"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn revisions(&self, _: crate::rules::Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[opt("type", Arg::One)];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_audit_info>();
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "AUDIT")?;
            no_invert(o, "AUDIT")?;
            match o.name {
                "type" => {
                    let (_, v) = TYPES
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(o.arg()))
                        .ok_or_else(|| format!("Bad action type value \"{}\"", o.arg()))?;
                    p.u8(field::TYPE, *v as u8);
                }
                _ => return Err(super::unknown_option("AUDIT", o)),
            }
        }
        if seen.is_empty() {
            return Err("AUDIT: option \"--type\" must be specified".into());
        }
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<xt_audit_info>())?;
        let t = u32::from(r.u8(field::TYPE)?);
        // An unknown type prints nothing, as in iptables.
        if let Some((name, _)) = TYPES.iter().find(|(_, v)| *v == t) {
            out.push_str(" --type ");
            out.push_str(name);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::rules::{Family, IpMatch};

    fn ov(name: &'static str, arg: &str) -> OptValue<'static> {
        OptValue {
            name,
            invert: false,
            args: vec![arg.to_string()].into(),
        }
    }

    fn parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        Audit.parse(0, opts, &ctx)
    }

    fn save(data: &[u8]) -> String {
        let ip = IpMatch::any(Family::V6);
        let ctx = RuleContext {
            family: Family::V6,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Audit.save(0, data, &ctx, &mut out).expect("save");
        out
    }

    // Captured from the kernel after iptables-legacy-restore (and
    // ip6tables-legacy-restore: same bytes): xt_audit_info is one byte,
    // `type`, padded to 8.
    const CASES: &[(&str, &str, &str)] = &[
        // --type argument, kernel bytes, iptables-legacy-save
        ("accept", "00", " --type accept"),
        ("drop", "01", " --type drop"),
        ("reject", "02", " --type reject"),
        ("ACCEPT", "00", " --type accept"),
        ("Drop", "01", " --type drop"),
    ];

    #[test]
    fn parse_matches_kernel_bytes() {
        for (arg, bytes, _) in CASES {
            assert_eq!(parse(&[ov("type", arg)]).unwrap(), hex(bytes), "{arg}");
        }
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        for (arg, bytes, text) in CASES {
            assert_eq!(save(&hex(bytes)), *text, "{arg}");
        }
        assert_eq!(save(&hex("07")), "");
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(
            parse(&[]).unwrap_err(),
            "AUDIT: option \"--type\" must be specified"
        );
        assert_eq!(
            parse(&[ov("type", "log")]).unwrap_err(),
            "Bad action type value \"log\""
        );
        assert!(parse(&[ov("type", "")]).is_err());
        assert!(parse(&[ov("type", "drop"), ov("type", "drop")])
            .unwrap_err()
            .contains("only be used once"));
        let inv = OptValue {
            invert: true,
            ..ov("type", "drop")
        };
        assert!(parse(&[inv]).unwrap_err().contains("cannot be inverted"));
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        assert!(Audit.save(0, &[], &ctx, &mut String::new()).is_err());
    }
}
