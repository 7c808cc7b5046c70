//! `-m osf` (xt_osf, IPv4 only): passive OS fingerprinting of TCP SYN
//! packets by genre, with the TTL check and logging level.
//!
//! The kernel takes such rules without fingerprints loaded (they only
//! decide what matches), but only for `-p tcp` in PREROUTING, INPUT and
//! FORWARD.

use std::mem::{offset_of, size_of};

use super::recent::{parse_int_opt, put_string, XtFlags, XtOpt, XTOPT_INVERT, XTOPT_MAND};
use super::{Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext};
use crate::rules::Family;
use crate::sys::bindings::{nf_osf_info, XT_OSF_INVERT, XT_OSF_LOG, XT_OSF_TTL};

pub(super) static CODECS: &[&dyn Codec] = &[&Osf];

mod field {
    use super::*;
    pub const GENRE: usize = offset_of!(nf_osf_info, genre);
    pub const LEN: usize = offset_of!(nf_osf_info, len);
    pub const FLAGS: usize = offset_of!(nf_osf_info, flags);
    pub const LOGLEVEL: usize = offset_of!(nf_osf_info, loglevel);
    pub const TTL: usize = offset_of!(nf_osf_info, ttl);
    pub const GENRE_LEN: usize = LEN - GENRE;
}

const O_GENRE: u8 = 0;
const O_TTL: u8 = 1;
const O_LOGLEVEL: u8 = 2;
const TABLE: [XtOpt; 3] = [
    XtOpt::new("genre", O_GENRE, Arg::One, XTOPT_MAND | XTOPT_INVERT),
    XtOpt::new("ttl", O_TTL, Arg::One, 0),
    XtOpt::new("log", O_LOGLEVEL, Arg::One, 0),
];
static SPECS: [OptSpec; 3] = XtOpt::specs(&TABLE);

struct Osf;

impl Codec for Osf {
    fn name(&self) -> &'static str {
        "osf"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V4]
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        &SPECS
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<nf_osf_info>();
        let mut xf = XtFlags::default();
        let mut flags = 0u32;
        for o in opts {
            match xf.take("osf", &TABLE, o)? {
                O_GENRE => {
                    // Cut to the 32-byte field (31 bytes and a NUL), as
                    // iptables does; len is the stored genre's length.
                    put_string(&mut p, field::GENRE, field::GENRE_LEN, o.arg());
                    let len = o.arg().len().min(field::GENRE_LEN - 1);
                    p.u32(field::LEN, len as u32);
                    if o.invert {
                        flags |= XT_OSF_INVERT;
                    }
                }
                O_TTL => {
                    p.u32(field::TTL, parse_int_opt("osf", o, 0, 2)? as u32);
                    flags |= XT_OSF_TTL;
                }
                _ => {
                    p.u32(field::LOGLEVEL, parse_int_opt("osf", o, 0, 2)? as u32);
                    flags |= XT_OSF_LOG;
                }
            }
        }
        xf.fcheck("osf", &TABLE)?;
        p.u32(field::FLAGS, flags);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<nf_osf_info>())?;
        let flags = r.u32(field::FLAGS)?;
        if flags & XT_OSF_INVERT != 0 {
            out.push_str(" !");
        }
        out.push_str(" --genre ");
        out.push_str(&crate::text::from_bytes(
            r.cstr(field::GENRE, field::GENRE_LEN)?,
        ));
        if flags & XT_OSF_TTL != 0 {
            out.push_str(&format!(" --ttl {}", r.u32(field::TTL)?));
        }
        if flags & XT_OSF_LOG != 0 {
            out.push_str(&format!(" --log {}", r.u32(field::LOGLEVEL)?));
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

    fn ov(name: &'static str, invert: bool, arg: &str) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: vec![arg.to_string()].into(),
        }
    }

    fn fixture(s: &str) -> Vec<u8> {
        hex(&s
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .collect::<String>())
    }

    fn ip() -> IpMatch {
        IpMatch {
            proto: 6,
            ..IpMatch::any(Family::V4)
        }
    }

    fn parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = ip();
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        Osf.parse(0, opts, &ctx).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(data: &[u8]) -> ExtResult<String> {
        let ip = ip();
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Osf.save(0, data, &ctx, &mut out).map(|_| out)
    }

    // Captured from the kernel after iptables-legacy-restore of
    // `-p tcp -m osf ! --genre Linux --ttl 2 --log 1`.
    const FULL: &str = "
        4c696e7578000000000000000000000000000000000000000000000000000000 # genre Linux
        05000000    # len 5
        0e000000    # flags TTL|LOG|INVERT
        01000000    # loglevel 1
        02000000    # ttl 2";

    // `-p tcp -m osf --genre Windows`
    const GENRE_ONLY: &str = "
        57696e646f777300000000000000000000000000000000000000000000000000 # genre Windows
        07000000    # len 7
        00000000    # flags
        00000000    # loglevel
        00000000    # ttl";

    // `-p tcp -m osf --genre 0123456789abcdefghijklmnopqrstuvwxyz`: cut
    // to 31 bytes.
    const LONG: &str = "
        303132333435363738396162636465666768696a6b6c6d6e6f70717273747500 # genre, 31 bytes
        1f000000    # len 31
        00000000 00000000 00000000  # flags, loglevel, ttl";

    #[test]
    fn parse_matches_kernel_bytes() {
        let opts = [
            ov("genre", true, "Linux"),
            ov("ttl", false, "2"),
            ov("log", false, "1"),
        ];
        assert_eq!(parse(&opts).unwrap(), fixture(FULL));
        assert_eq!(
            parse(&[ov("genre", false, "Windows")]).unwrap(),
            fixture(GENRE_ONLY)
        );
        assert_eq!(
            parse(&[ov("genre", false, "0123456789abcdefghijklmnopqrstuvwxyz")]).unwrap(),
            fixture(LONG)
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(
            save(&fixture(FULL)).unwrap(),
            " ! --genre Linux --ttl 2 --log 1"
        );
        assert_eq!(save(&fixture(GENRE_ONLY)).unwrap(), " --genre Windows");
        assert_eq!(
            save(&fixture(LONG)).unwrap(),
            " --genre 0123456789abcdefghijklmnopqrstu"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let g = ov("genre", false, "Linux");
        for o in [
            ov("ttl", false, "3"),
            ov("log", false, "-1"),
            ov("ttl", true, "1"),
            ov("log", true, "1"),
        ] {
            assert!(parse(&[g.clone(), o.clone()]).is_err(), "{o:?} accepted");
        }
        assert_eq!(
            parse(&[ov("ttl", false, "1")]).unwrap_err(),
            "osf: option \"--genre\" must be specified"
        );
        assert!(parse(&[g.clone(), g]).is_err());
        assert!(save(&[0; 40]).is_err(), "short payload");
    }
}
