//! `-m nfacct` (xt_nfacct): counts packets into a named extended-accounting
//! object. The kernel refuses the rule unless the object already exists in
//! the rule's network namespace (`nfacct add NAME`, from the nfacct tool).
//!
//! Revisions 0 and 1 carry the same fields (1 only aligns the kernel
//! pointer to 8 bytes); iptables 1.8.9 picks 1 on current kernels.

use std::mem::offset_of;

use super::{
    no_invert, once, opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{xt_nfacct_match_info, xt_nfacct_match_info_v1};

pub(super) static CODECS: &[&dyn Codec] = &[&Nfacct];

mod field {
    use super::*;
    pub const NAME_V0: usize = offset_of!(xt_nfacct_match_info, name);
    pub const NAME_V1: usize = offset_of!(xt_nfacct_match_info_v1, name);
    /// NFACCT_NAME_MAX, the size of `name`: it ends where the kernel's
    /// pointer starts (the same in both revisions).
    pub const NAME_LEN: usize =
        offset_of!(xt_nfacct_match_info, nfacct) - offset_of!(xt_nfacct_match_info, name);
}

struct Nfacct;

impl Codec for Nfacct {
    fn name(&self) -> &'static str {
        "nfacct"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[1, 0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[opt("nfacct-name", Arg::One)];
        O
    }

    fn parse(&self, rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let (mut p, off) = match rev {
            0 => (Payload::of::<xt_nfacct_match_info>(), field::NAME_V0),
            _ => (Payload::of::<xt_nfacct_match_info_v1>(), field::NAME_V1),
        };
        let mut seen = Vec::new();
        for o in opts {
            if o.name != "nfacct-name" {
                return Err(super::unknown_option("nfacct", o));
            }
            once(&mut seen, o, "nfacct")?;
            no_invert(o, "nfacct")?;
            let name = o.arg_bytes();
            if name.is_empty() {
                return Err("Argument must have a minimum length of 1 characters".into());
            }
            if name.contains(&b'\n') {
                return Err("Newlines not allowed in --nfacct-name".into());
            }
            // XTTYPE_STRING into a char[32]: silently cut to 31 bytes, NUL-terminated.
            let name = &name[..name.len().min(field::NAME_LEN - 1)];
            p.bytes(off, name);
        }
        if seen.is_empty() {
            return Err("nfacct: option \"--nfacct-name\" must be specified".into());
        }
        Ok(p.finish())
    }

    fn save(&self, rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let (r, off) = match rev {
            0 => (
                Reader::new(data, std::mem::size_of::<xt_nfacct_match_info>())?,
                field::NAME_V0,
            ),
            _ => (
                Reader::new(data, std::mem::size_of::<xt_nfacct_match_info_v1>())?,
                field::NAME_V1,
            ),
        };
        // nfacct_print_name prints " --nfacct-name " and xtables_save_string
        // adds its own leading space: two spaces in the saved line.
        out.push_str(" --nfacct-name ");
        super::save_string(out, r.cstr(off, field::NAME_LEN)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;
    use crate::rules::IpMatch;

    fn ov(name: &'static str, invert: bool, args: &[&str]) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Hex with `#` comments, as the fixtures below are written.
    fn fixture(s: &str) -> Vec<u8> {
        hex(&s
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .collect::<String>())
    }

    fn ctx_parse(rev: u8, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        Nfacct.parse(rev, opts, &ctx).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(rev: u8, data: &[u8]) -> String {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Nfacct.save(rev, data, &ctx, &mut out).unwrap();
        out
    }

    // Captured from the kernel (revision 1) after `nfacct add foo` and
    // iptables-legacy-restore of `-m nfacct --nfacct-name foo`.
    const FOO: &str = "
        666f6f00000000000000000000000000    # name \"foo\"
        00000000000000000000000000000000    # name (cont.), NUL-filled
        0000000000000000                    # nfacct pointer (kernel-private, zeroed)";

    // `nfacct add 'a b\"c'`, then `-m nfacct --nfacct-name "a b\"c"`.
    const QUOTED: &str = "
        61206222630000000000000000000000    # name a b\"c
        00000000000000000000000000000000
        0000000000000000                    # nfacct pointer";

    // `-m nfacct --nfacct-name abcdefghijabcdefghijabcdefghijabcdefg`:
    // iptables keeps the first 31 bytes (the object was created with them).
    const LONG: &str = "
        6162636465666768696a616263646566    # abcdefghijabcdef
        6768696a6162636465666768696a6100    # ghijabcdefghija, NUL
        0000000000000000                    # nfacct pointer";

    #[test]
    fn parse_matches_kernel_bytes() {
        for rev in [1, 0] {
            assert_eq!(
                ctx_parse(rev, &[ov("nfacct-name", false, &["foo"])]).unwrap(),
                fixture(FOO)
            );
        }
        assert_eq!(
            ctx_parse(1, &[ov("nfacct-name", false, &["a b\"c"])]).unwrap(),
            fixture(QUOTED)
        );
        assert_eq!(
            ctx_parse(
                1,
                &[ov(
                    "nfacct-name",
                    false,
                    &["abcdefghijabcdefghijabcdefghijabcdefg"]
                )]
            )
            .unwrap(),
            fixture(LONG)
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(save(1, &fixture(FOO)), " --nfacct-name  foo");
        assert_eq!(save(0, &fixture(FOO)), " --nfacct-name  foo");
        assert_eq!(save(1, &fixture(QUOTED)), " --nfacct-name  \"a b\\\"c\"");
        assert_eq!(
            save(1, &fixture(LONG)),
            " --nfacct-name  abcdefghijabcdefghijabcdefghija"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(ctx_parse(1, &[ov("nfacct-name", false, &[""])]).is_err());
        assert!(ctx_parse(1, &[ov("nfacct-name", false, &["a\nb"])]).is_err());
        assert!(ctx_parse(1, &[ov("nfacct-name", true, &["a"])]).is_err());
        assert!(ctx_parse(1, &[]).is_err(), "missing --nfacct-name accepted");
        assert!(ctx_parse(
            1,
            &[
                ov("nfacct-name", false, &["a"]),
                ov("nfacct-name", false, &["b"])
            ]
        )
        .is_err());
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        assert!(Nfacct.save(1, &[0; 16], &ctx, &mut String::new()).is_err());
    }

    #[test]
    fn save_string_quotes_like_xtables() {
        let q = |s: &str| {
            let mut o = String::new();
            crate::ext::save_string(&mut o, s.as_bytes());
            o
        };
        assert_eq!(q("a-b_9"), " a-b_9");
        assert_eq!(q(""), " \"\"");
        assert_eq!(q("it's"), " \"it\\'s\"");
        assert_eq!(q("a\\b"), " \"a\\\\b\"");
    }
}
