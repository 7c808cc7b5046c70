//! `-m socket` (xt_socket): a local socket matches the packet,
//! `--transparent`, `--nowildcard`, `--restore-skmark`.
//!
//! Revision 0 (IPv4 only) has no payload and no options; revision 1 adds
//! `--transparent`, 2 `--nowildcard`, 3 `--restore-skmark`, each a bit of
//! one flags byte (xt_socket_mtinfo1/2/3 share the layout). iptables 1.8.9
//! picks 3 on current kernels; an option the chosen revision lacks is
//! refused as unknown, as iptables does.

use std::mem::offset_of;

use super::recent::{XtFlags, XtOpt};
use super::{
    unknown_option, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    xt_socket_mtinfo1, xt_socket_mtinfo2, xt_socket_mtinfo3, XT_SOCKET_NOWILDCARD,
    XT_SOCKET_RESTORESKMARK, XT_SOCKET_TRANSPARENT,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Socket];

mod field {
    use super::*;
    pub const FLAGS: usize = offset_of!(xt_socket_mtinfo1, flags);
    const _: () = assert!(offset_of!(xt_socket_mtinfo2, flags) == FLAGS);
    const _: () = assert!(offset_of!(xt_socket_mtinfo3, flags) == FLAGS);
    const _: () = assert!(
        std::mem::size_of::<xt_socket_mtinfo2>() == std::mem::size_of::<xt_socket_mtinfo1>()
    );
    const _: () = assert!(
        std::mem::size_of::<xt_socket_mtinfo3>() == std::mem::size_of::<xt_socket_mtinfo1>()
    );
}

const O_TRANSPARENT: u8 = 0;
const O_NOWILDCARD: u8 = 1;
const O_RESTORESKMARK: u8 = 2;
/// Revision 3's table; revision N has the first N entries.
const TABLE: [XtOpt; 3] = [
    XtOpt::new("transparent", O_TRANSPARENT, Arg::None, 0),
    XtOpt::new("nowildcard", O_NOWILDCARD, Arg::None, 0),
    XtOpt::new("restore-skmark", O_RESTORESKMARK, Arg::None, 0),
];
static SPECS: [OptSpec; 3] = XtOpt::specs(&TABLE);

/// The option table of a revision, and the flag bits it may save.
fn table(rev: u8) -> &'static [XtOpt] {
    &TABLE[..usize::from(rev.min(3))]
}

struct Socket;

impl Codec for Socket {
    fn name(&self) -> &'static str {
        "socket"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V4, Family::V6]
    }
    fn revisions(&self, family: Family) -> &'static [u8] {
        match family {
            Family::V4 => &[3, 2, 1, 0],
            _ => &[3, 2, 1],
        }
    }
    fn options(&self) -> &'static [OptSpec] {
        &SPECS
    }

    fn parse(&self, rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let table = table(rev);
        if rev == 0 {
            // Revision 0: no options, no payload.
            return match opts.first() {
                Some(o) => Err(unknown_option("socket", o)),
                None => Ok(Vec::new()),
            };
        }
        let mut p = Payload::of::<xt_socket_mtinfo1>();
        let mut xf = XtFlags::default();
        let mut flags = 0u8;
        for o in opts {
            flags |= match xf.take("socket", table, o)? {
                O_TRANSPARENT => XT_SOCKET_TRANSPARENT,
                O_NOWILDCARD => XT_SOCKET_NOWILDCARD,
                _ => XT_SOCKET_RESTORESKMARK,
            } as u8;
        }
        p.u8(field::FLAGS, flags);
        Ok(p.finish())
    }

    fn save(&self, rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        if rev == 0 {
            return Ok(());
        }
        let r = Reader::new(data, std::mem::size_of::<xt_socket_mtinfo1>())?;
        let flags = r.u8(field::FLAGS)?;
        let bits = [
            XT_SOCKET_TRANSPARENT,
            XT_SOCKET_NOWILDCARD,
            XT_SOCKET_RESTORESKMARK,
        ];
        // Each revision's save prints only the flags it knows.
        for (e, bit) in table(rev).iter().zip(bits) {
            if flags & bit as u8 != 0 {
                out.push_str(&format!(" --{}", e.spec.name));
            }
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

    fn ov(name: &'static str) -> OptValue<'static> {
        OptValue {
            name,
            invert: false,
            args: Default::default(),
        }
    }

    fn parse(rev: u8, family: Family, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "mangle",
        };
        let mut v = Socket.parse(rev, opts, &ctx)?;
        v.resize(xt_align(v.len()), 0);
        Ok(v)
    }

    fn save(rev: u8, data: &[u8]) -> ExtResult<String> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "mangle",
        };
        let mut out = String::new();
        Socket.save(rev, data, &ctx, &mut out)?;
        Ok(out)
    }

    // Kernel captures after iptables-legacy-restore of `-m socket ...`
    // (revision 3): one flags byte, then padding to XT_ALIGN.
    const NONE: &str = "00 00000000000000"; // flags: none
    const TRANSPARENT: &str = "01 00000000000000"; // flags: TRANSPARENT
    const NOWILDCARD: &str = "02 00000000000000"; // flags: NOWILDCARD
    const ALL: &str = "07 00000000000000"; // flags: TRANSPARENT | NOWILDCARD | RESTORESKMARK

    #[test]
    fn rev3_parse_matches_kernel_bytes() {
        assert_eq!(parse(3, Family::V4, &[]).unwrap(), hex(NONE));
        assert_eq!(
            parse(3, Family::V4, &[ov("transparent")]).unwrap(),
            hex(TRANSPARENT)
        );
        assert_eq!(
            parse(3, Family::V6, &[ov("nowildcard")]).unwrap(),
            hex(NOWILDCARD)
        );
        assert_eq!(
            parse(
                3,
                Family::V4,
                &[ov("restore-skmark"), ov("transparent"), ov("nowildcard")]
            )
            .unwrap(),
            hex(ALL)
        );
    }

    #[test]
    fn rev3_save_matches_iptables_legacy_save() {
        assert_eq!(save(3, &hex(NONE)).unwrap(), "");
        assert_eq!(save(3, &hex(TRANSPARENT)).unwrap(), " --transparent");
        assert_eq!(save(3, &hex(NOWILDCARD)).unwrap(), " --nowildcard");
        assert_eq!(
            save(3, &hex(ALL)).unwrap(),
            " --transparent --nowildcard --restore-skmark"
        );
    }

    // Revisions 0-2: kernel captures after iptables-legacy-restore with the
    // higher revisions hidden from its revision probe (so it picks the
    // older one, which the kernel still has).
    #[test]
    fn older_revisions() {
        // rev 2, `-m socket --nowildcard`
        assert_eq!(
            parse(2, Family::V4, &[ov("nowildcard")]).unwrap(),
            hex(NOWILDCARD)
        );
        assert_eq!(save(2, &hex(NOWILDCARD)).unwrap(), " --nowildcard");
        // rev 1, `-m socket --transparent`
        assert_eq!(
            parse(1, Family::V4, &[ov("transparent")]).unwrap(),
            hex(TRANSPARENT)
        );
        assert_eq!(save(1, &hex(TRANSPARENT)).unwrap(), " --transparent");
        // rev 0, `-m socket`: no payload at all
        assert_eq!(parse(0, Family::V4, &[]).unwrap(), Vec::<u8>::new());
        assert_eq!(save(0, &[]).unwrap(), "");
        // a flag the revision does not know is neither parsed nor printed
        assert!(parse(1, Family::V4, &[ov("nowildcard")])
            .unwrap_err()
            .contains("unknown option"));
        assert!(parse(2, Family::V4, &[ov("restore-skmark")]).is_err());
        assert!(parse(0, Family::V4, &[ov("transparent")]).is_err());
        assert_eq!(save(1, &hex(ALL)).unwrap(), " --transparent");
    }

    #[test]
    fn bad_values_are_refused() {
        let twice = [ov("transparent"), ov("transparent")];
        assert!(parse(3, Family::V4, &twice)
            .unwrap_err()
            .contains("only be used once"));
        let inv = OptValue {
            invert: true,
            ..ov("nowildcard")
        };
        assert!(parse(3, Family::V4, &[inv])
            .unwrap_err()
            .contains("cannot be inverted"));
        assert!(save(3, &[]).is_err());
    }
}
