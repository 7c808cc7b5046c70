//! `-j DNPT` and `-j SNPT` (libip6t_DNPT, libip6t_SNPT; IPv6 only):
//! stateless IPv6-to-IPv6 network prefix translation (RFC 6296).
//!
//! Revision 0, payload `ip6t_npt_tginfo`: the two prefixes as given (not
//! masked) and their lengths. Both `--src-pfx` and `--dst-pfx` are
//! mandatory. The trailing `adjustment` is the kernel's own: userspace
//! leaves it zero and the kernel hides it again when the table is read.

use std::mem::offset_of;

use super::{
    no_invert, once, opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::ip6t_npt_tginfo;

pub(super) static CODECS: &[&dyn Codec] = &[&Npt(Dir::Dnpt), &Npt(Dir::Snpt)];

mod field {
    use super::*;
    pub const SRC_PFX: usize = offset_of!(ip6t_npt_tginfo, src_pfx);
    pub const DST_PFX: usize = offset_of!(ip6t_npt_tginfo, dst_pfx);
    pub const SRC_PFX_LEN: usize = offset_of!(ip6t_npt_tginfo, src_pfx_len);
    pub const DST_PFX_LEN: usize = offset_of!(ip6t_npt_tginfo, dst_pfx_len);
    /// Kernel-private from here on (`adjustment`); what userspace sees ends here.
    pub const USER_END: usize = offset_of!(ip6t_npt_tginfo, adjustment);
}

/// Length of an IPv6 address.
const ADDR: usize = 16;

/// The longest prefix the kernel's ip6t_npt_checkentry takes.
const MAX_PFX_LEN: u32 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Dnpt,
    Snpt,
}

/// DNPT or SNPT: the same payload and options.
struct Npt(Dir);

impl Npt {
    fn ext(&self) -> &'static str {
        match self.0 {
            Dir::Dnpt => "DNPT",
            Dir::Snpt => "SNPT",
        }
    }

    /// XTTYPE_HOSTMASK as these targets store it: the address as given and
    /// the prefix length. Lengths the kernel refuses (over 64; no `/`
    /// means 128; a mask with holes) and host bits set past the prefix
    /// (also refused by the kernel) are errors here.
    fn prefix(&self, o: &OptValue) -> ExtResult<([u8; ADDR], u8)> {
        let ext = self.ext();
        let (addr, mask) = super::conntrack::parse_hostmask(ext, o, Family::V6)?;
        let m = u128::from_be_bytes(mask);
        let len = m.leading_ones();
        if len > MAX_PFX_LEN || m.checked_shl(len).unwrap_or(0) != 0 {
            return Err(format!(
                "{ext}: the prefix of \"--{} {}\" must be 0 to {MAX_PFX_LEN} bits long (the kernel refuses others)",
                o.name,
                o.arg()
            ));
        }
        if u128::from_be_bytes(addr) & !m != 0 {
            return Err(format!(
                "{ext}: \"--{} {}\" has bits set past its /{len} prefix (the kernel refuses it)",
                o.name,
                o.arg()
            ));
        }
        Ok((addr, len as u8))
    }
}

impl Codec for Npt {
    fn name(&self) -> &'static str {
        self.ext()
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V6]
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[opt("src-pfx", Arg::One), opt("dst-pfx", Arg::One)];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let ext = self.ext();
        let mut p = Payload::of::<ip6t_npt_tginfo>();
        let mut seen = Vec::new();
        for o in opts {
            let (addr_at, len_at) = match o.name {
                "src-pfx" => (field::SRC_PFX, field::SRC_PFX_LEN),
                "dst-pfx" => (field::DST_PFX, field::DST_PFX_LEN),
                _ => return Err(super::unknown_option(ext, o)),
            };
            once(&mut seen, o, ext)?;
            no_invert(o, ext)?;
            let (addr, len) = self.prefix(o)?;
            p.bytes(addr_at, &addr).u8(len_at, len);
        }
        for mandatory in ["src-pfx", "dst-pfx"] {
            if !seen.contains(&mandatory) {
                return Err(format!("{ext}: option \"--{mandatory}\" must be specified"));
            }
        }
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, field::USER_END)?;
        for (name, addr_at, len_at) in [
            ("src-pfx", field::SRC_PFX, field::SRC_PFX_LEN),
            ("dst-pfx", field::DST_PFX, field::DST_PFX_LEN),
        ] {
            let mut addr = [0u8; ADDR];
            addr.copy_from_slice(r.bytes(addr_at, ADDR)?);
            let len = r.u8(len_at)?;
            // DNPT_save / SNPT_save skip a prefix that is all zero.
            if addr != [0; ADDR] || len != 0 {
                out.push_str(&format!(
                    " --{name} {}/{len}",
                    super::conntrack::inet_ntop6(&addr)
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Fixtures: target payloads (after the 32-byte xt_entry_target header)
    //! captured from the kernel after ip6tables-legacy-restore 1.8.9 loaded
    //! the rule shown (mangle table). The kernel computes `adjustment` but
    //! reads it back as zero (it is past the target's usersize).

    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;
    use crate::rules::IpMatch;

    fn ov(name: &'static str, arg: &str) -> OptValue<'static> {
        OptValue {
            name,
            invert: false,
            args: vec![arg.to_string()].into(),
        }
    }

    fn parse(d: Dir, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(Family::V6);
        let ctx = RuleContext {
            family: Family::V6,
            ip: &ip,
            table: "mangle",
        };
        let mut v = Npt(d).parse(0, opts, &ctx)?;
        v.resize(xt_align(v.len()), 0);
        Ok(v)
    }

    fn save(d: Dir, data: &[u8]) -> ExtResult<String> {
        let ip = IpMatch::any(Family::V6);
        let ctx = RuleContext {
            family: Family::V6,
            ip: &ip,
            table: "mangle",
        };
        let mut out = String::new();
        Npt(d).save(0, data, &ctx, &mut out).map(|_| out)
    }

    /// `-j DNPT --src-pfx 2001:db8:1::/48 --dst-pfx fd00:1::/48`
    fn dnpt48() -> Vec<u8> {
        hex(concat!(
            "20010db8000100000000000000000000", // src_pfx 2001:db8:1::
            "fd000001000000000000000000000000", // dst_pfx fd00:1::
            "30",                               // src_pfx_len 48
            "30",                               // dst_pfx_len 48
            "0000",                             // adjustment (kernel's, reads as 0)
            "00000000",                         // XT_ALIGN padding
        ))
    }

    #[test]
    fn dnpt() {
        let opts = [
            ov("src-pfx", "2001:db8:1::/48"),
            ov("dst-pfx", "fd00:1::/48"),
        ];
        assert_eq!(parse(Dir::Dnpt, &opts).unwrap(), dnpt48());
        assert_eq!(
            save(Dir::Dnpt, &dnpt48()).unwrap(),
            " --src-pfx 2001:db8:1::/48 --dst-pfx fd00:1::/48"
        );
        // `-j DNPT --dst-pfx 2001:db8::/ffff:ffff:ffff:ffff:: --src-pfx fd00::/64`
        let fixture = hex(concat!(
            "fd000000000000000000000000000000", // src_pfx fd00::
            "20010db8000000000000000000000000", // dst_pfx 2001:db8::
            "40",                               // src_pfx_len 64
            "40",                               // dst_pfx_len 64
            "0000",                             // adjustment
            "00000000",                         // XT_ALIGN padding
        ));
        let opts = [
            ov("dst-pfx", "2001:db8::/ffff:ffff:ffff:ffff::"),
            ov("src-pfx", "fd00::/64"),
        ];
        assert_eq!(parse(Dir::Dnpt, &opts).unwrap(), fixture);
        assert_eq!(
            save(Dir::Dnpt, &fixture).unwrap(),
            " --src-pfx fd00::/64 --dst-pfx 2001:db8::/64"
        );
    }

    #[test]
    fn snpt() {
        // `-j SNPT --src-pfx fd00:1::/48 --dst-pfx 2001:db8:1::/48`
        let fixture = hex(concat!(
            "fd000001000000000000000000000000", // src_pfx fd00:1::
            "20010db8000100000000000000000000", // dst_pfx 2001:db8:1::
            "30",                               // src_pfx_len 48
            "30",                               // dst_pfx_len 48
            "0000",                             // adjustment
            "00000000",                         // XT_ALIGN padding
        ));
        let opts = [
            ov("src-pfx", "fd00:1::/48"),
            ov("dst-pfx", "2001:db8:1::/48"),
        ];
        assert_eq!(parse(Dir::Snpt, &opts).unwrap(), fixture);
        assert_eq!(
            save(Dir::Snpt, &fixture).unwrap(),
            " --src-pfx fd00:1::/48 --dst-pfx 2001:db8:1::/48"
        );
        // `-j SNPT --src-pfx ::/0 --dst-pfx ::/0`: all zero, saved as nothing.
        let zero = hex(&"00".repeat(40));
        let opts = [ov("src-pfx", "::/0"), ov("dst-pfx", "::/0")];
        assert_eq!(parse(Dir::Snpt, &opts).unwrap(), zero);
        assert_eq!(save(Dir::Snpt, &zero).unwrap(), "");
    }

    #[test]
    fn bad_input_is_refused() {
        let err = |opts: &[OptValue]| parse(Dir::Snpt, opts).unwrap_err();
        let dst = ov("dst-pfx", "2001:db8::/64");
        assert!(err(&[ov("src-pfx", "fd00::/64")]).contains("\"--dst-pfx\" must be specified"));
        assert!(err(std::slice::from_ref(&dst)).contains("\"--src-pfx\" must be specified"));
        assert!(err(&[ov("src-pfx", "fd00::/65"), dst.clone()]).contains("0 to 64 bits"));
        assert!(err(&[ov("src-pfx", "fd00::"), dst.clone()]).contains("0 to 64 bits"));
        assert!(err(&[ov("src-pfx", "fd00::/ffff::ffff"), dst.clone()]).contains("0 to 64 bits"));
        assert!(err(&[ov("src-pfx", "fd00::1/64"), dst.clone()]).contains("past its /64"));
        assert!(err(&[ov("src-pfx", "fd00::/129"), dst.clone()]).contains("(0-128)"));
        assert!(err(&[ov("src-pfx", "10.0.0.0/8"), dst.clone()]).contains("not found"));
        assert!(err(&[dst.clone(), dst.clone()]).contains("only be used once"));
        let inv = OptValue {
            invert: true,
            ..ov("src-pfx", "fd00::/64")
        };
        assert!(err(&[inv, dst]).contains("cannot be inverted"));
        assert!(save(Dir::Dnpt, &hex("00")).is_err());
    }
}
