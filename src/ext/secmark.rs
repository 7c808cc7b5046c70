//! `-j SECMARK` (xt_SECMARK): set the packet's security mark from an
//! SELinux context. Both families; the kernel allows it in the mangle and
//! security tables.
//!
//! Revisions: 0 `xt_secmark_target_info` (mode, secid, secctx) and 1
//! `xt_secmark_target_info_v1` (mode, secctx, secid); `secid` is the
//! kernel's, iptables leaves it zero.
//!
//! The kernel turns the context into a secid through the LSM and refuses
//! every rule when SELinux is not running, as on the machines this crate
//! is tested on. The fixtures below are therefore the bytes
//! iptables-legacy-restore 1.8.9 hands to the kernel (captured from its
//! IPT_SO_SET_REPLACE call), not a kernel dump, and the save text is what
//! libxt_SECMARK.so's own save function prints for them.

use std::mem::{offset_of, size_of};

use super::{
    no_invert, once, opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::sys::bindings::{
    xt_secmark_target_info, xt_secmark_target_info_v1, SECMARK_MODE_SEL, SECMARK_SECCTX_MAX,
};

pub(super) static CODECS: &[&dyn Codec] = &[&SecMark];

mod field {
    use super::*;
    pub const MODE: usize = offset_of!(xt_secmark_target_info, mode);
    pub const V0_SECCTX: usize = offset_of!(xt_secmark_target_info, secctx);
    pub const V1_SECCTX: usize = offset_of!(xt_secmark_target_info_v1, secctx);
    pub const SECCTX_LEN: usize = SECMARK_SECCTX_MAX as usize;
}

fn secctx_at(rev: u8) -> usize {
    if rev == 0 {
        field::V0_SECCTX
    } else {
        field::V1_SECCTX
    }
}

struct SecMark;

impl Codec for SecMark {
    fn name(&self) -> &'static str {
        "SECMARK"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn revisions(&self, _: crate::rules::Family) -> &'static [u8] {
        &[1, 0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[opt("selctx", Arg::One)];
        O
    }

    fn parse(&self, rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = if rev == 0 {
            Payload::of::<xt_secmark_target_info>()
        } else {
            Payload::of::<xt_secmark_target_info_v1>()
        };
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "SECMARK")?;
            no_invert(o, "SECMARK")?;
            match o.name {
                "selctx" => {
                    // iptables cuts a longer context to 255 bytes; refused here.
                    if o.arg_bytes().len() >= field::SECCTX_LEN {
                        return Err(format!(
                            "SECMARK: security context is longer than {} characters",
                            field::SECCTX_LEN - 1
                        ));
                    }
                    p.u8(field::MODE, SECMARK_MODE_SEL as u8)
                        .bytes(secctx_at(rev), &o.arg_bytes());
                }
                _ => return Err(super::unknown_option("SECMARK", o)),
            }
        }
        if seen.is_empty() {
            return Err("SECMARK: option \"--selctx\" must be specified".into());
        }
        Ok(p.finish())
    }

    fn save(&self, rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, secctx_at(rev) + field::SECCTX_LEN)?;
        let mode = r.u8(field::MODE)?;
        if u32::from(mode) != SECMARK_MODE_SEL {
            // iptables stops with this error too.
            return Err(format!("SECMARK target: invalid mode {mode}"));
        }
        // Printed as it is, unquoted, as iptables does.
        out.push_str(" --selctx ");
        out.push_str(&crate::text::from_bytes(
            r.cstr(secctx_at(rev), field::SECCTX_LEN)?,
        ));
        Ok(())
    }
}

const _: () = assert!(size_of::<xt_secmark_target_info>() >= field::V0_SECCTX + field::SECCTX_LEN);
const _: () =
    assert!(size_of::<xt_secmark_target_info_v1>() >= field::V1_SECCTX + field::SECCTX_LEN);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::rules::{Family, IpMatch};

    fn ov(arg: &str) -> OptValue<'static> {
        OptValue {
            name: "selctx",
            invert: false,
            args: vec![arg.to_string()].into(),
        }
    }

    fn with_ctx<T>(f: impl FnOnce(&RuleContext) -> T) -> T {
        let ip = IpMatch::any(Family::V4);
        f(&RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "mangle",
        })
    }

    fn parse(rev: u8, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        with_ctx(|c| SecMark.parse(rev, opts, c))
    }

    fn save(rev: u8, data: &[u8]) -> ExtResult<String> {
        let mut out = String::new();
        with_ctx(|c| SecMark.save(rev, data, c, &mut out))?;
        Ok(out)
    }

    fn info(rev: u8, hexbytes: &str) -> Vec<u8> {
        let mut v = hex(hexbytes);
        v.resize(
            if rev == 0 {
                size_of::<xt_secmark_target_info>()
            } else {
                size_of::<xt_secmark_target_info_v1>()
            },
            0,
        );
        v
    }

    const CTX: &str = "system_u:object_r:ssh_packet_t:s0";
    const CTX_HEX: &str = "73797374656d5f753a6f626a6563745f723a7373685f7061636b65745f743a7330";

    // The bytes iptables-legacy-restore 1.8.9 sends (IPT_SO_SET_REPLACE,
    // captured with LD_PRELOAD; the kernel then refuses them without
    // SELinux). Revision 1: mode 0x01 (SELinux), secctx[256], secid.
    // Revision 0 (iptables told the kernel lacks revision 1): mode, three
    // padding bytes, secid, secctx[256].
    #[test]
    fn both_ways() {
        let v1 = info(1, &format!("01{CTX_HEX}"));
        assert_eq!(parse(1, &[ov(CTX)]).unwrap(), v1);
        assert_eq!(save(1, &v1).unwrap(), format!(" --selctx {CTX}"));
        let v1x = info(1, "0178");
        assert_eq!(parse(1, &[ov("x")]).unwrap(), v1x);
        assert_eq!(save(1, &v1x).unwrap(), " --selctx x");

        let v0 = info(0, &format!("01000000 00000000 {CTX_HEX}"));
        assert_eq!(parse(0, &[ov(CTX)]).unwrap(), v0);
        assert_eq!(save(0, &v0).unwrap(), format!(" --selctx {CTX}"));
        let v0x = info(0, "01000000 00000000 78");
        assert_eq!(parse(0, &[ov("x")]).unwrap(), v0x);
        assert_eq!(save(0, &v0x).unwrap(), " --selctx x");
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(
            parse(1, &[]).unwrap_err(),
            "SECMARK: option \"--selctx\" must be specified"
        );
        assert!(parse(1, &[ov(&"x".repeat(256))])
            .unwrap_err()
            .contains("longer than 255"));
        assert!(parse(1, &[ov("a"), ov("b")])
            .unwrap_err()
            .contains("only be used once"));
        let inv = OptValue {
            invert: true,
            ..ov("a")
        };
        assert!(parse(1, &[inv]).unwrap_err().contains("cannot be inverted"));
        assert_eq!(
            save(1, &info(1, "0278")).unwrap_err(),
            "SECMARK target: invalid mode 2"
        );
        assert!(save(1, &[1; 100]).is_err());
    }
}
