//! `-j CONNSECMARK` (xt_CONNSECMARK, `xt_connsecmark_target_info`): copy
//! the security mark between packet and connection (`--save` /
//! `--restore`). One revision, both families; the kernel allows it in the
//! mangle and security tables.

use std::mem::{offset_of, size_of};

use super::mark_tg::{check_exclusions, Excl};
use super::{
    no_invert, once, opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::sys::bindings::{xt_connsecmark_target_info, CONNSECMARK_RESTORE, CONNSECMARK_SAVE};

pub(super) static CODECS: &[&dyn Codec] = &[&ConnSecMark];

mod field {
    use super::*;
    pub const MODE: usize = offset_of!(xt_connsecmark_target_info, mode);
}

/// libxt_CONNSECMARK's table (save=0, restore=1): each excludes the other.
const EXCL: &[Excl] = &[
    Excl {
        name: "save",
        id: 0,
        excl: 1 << 1,
    },
    Excl {
        name: "restore",
        id: 1,
        excl: 1 << 0,
    },
];

struct ConnSecMark;

impl Codec for ConnSecMark {
    fn name(&self) -> &'static str {
        "CONNSECMARK"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn revisions(&self, _: crate::rules::Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[opt("save", Arg::None), opt("restore", Arg::None)];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_connsecmark_target_info>();
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "CONNSECMARK")?;
            no_invert(o, "CONNSECMARK")?;
            let mode = match o.name {
                "save" => CONNSECMARK_SAVE,
                "restore" => CONNSECMARK_RESTORE,
                _ => return Err(super::unknown_option("CONNSECMARK", o)),
            };
            p.u8(field::MODE, mode as u8);
        }
        if seen.is_empty() {
            return Err("CONNSECMARK target: parameter required".into());
        }
        check_exclusions("CONNSECMARK", EXCL, &seen)?;
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<xt_connsecmark_target_info>())?;
        match u32::from(r.u8(field::MODE)?) {
            CONNSECMARK_SAVE => out.push_str(" --save"),
            CONNSECMARK_RESTORE => out.push_str(" --restore"),
            // iptables stops with this error too.
            m => return Err(format!("CONNSECMARK target: invalid mode {m}")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::rules::{Family, IpMatch};

    fn flag(name: &'static str) -> OptValue<'static> {
        OptValue {
            name,
            invert: false,
            args: Default::default(),
        }
    }

    fn with_ctx<T>(f: impl FnOnce(&RuleContext) -> T) -> T {
        let ip = IpMatch::any(Family::V4);
        f(&RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "security",
        })
    }

    fn parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        with_ctx(|c| ConnSecMark.parse(0, opts, c))
    }

    fn save(data: &[u8]) -> ExtResult<String> {
        let mut out = String::new();
        with_ctx(|c| ConnSecMark.save(0, data, c, &mut out))?;
        Ok(out)
    }

    // Captured from the kernel after iptables-legacy-restore (mangle and
    // security, IPv4 and IPv6 alike): one byte, `mode`.
    #[test]
    fn both_ways() {
        for (name, bytes, text) in [("save", "01", " --save"), ("restore", "02", " --restore")] {
            assert_eq!(parse(&[flag(name)]).unwrap(), hex(bytes));
            assert_eq!(save(&hex(bytes)).unwrap(), text);
        }
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(
            parse(&[]).unwrap_err(),
            "CONNSECMARK target: parameter required"
        );
        assert_eq!(
            parse(&[flag("restore"), flag("save")]).unwrap_err(),
            "CONNSECMARK: option \"--save\" cannot be used together with \"--restore\"."
        );
        assert!(parse(&[flag("save"), flag("save")])
            .unwrap_err()
            .contains("only be used once"));
        let inv = OptValue {
            invert: true,
            ..flag("save")
        };
        assert!(parse(&[inv]).unwrap_err().contains("cannot be inverted"));
        assert!(save(&hex("00")).unwrap_err().contains("invalid mode 0"));
        assert!(save(&[]).is_err());
    }
}
