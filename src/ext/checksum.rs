//! `-j CHECKSUM` (xt_CHECKSUM, `xt_CHECKSUM_info`): fill in the checksum of
//! packets that lack one. The kernel allows it in the mangle table only.

use std::mem::offset_of;

use super::{
    no_invert, once, opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::sys::bindings::{xt_CHECKSUM_info, XT_CHECKSUM_OP_FILL};

pub(super) static CODECS: &[&dyn Codec] = &[&Checksum];

mod field {
    use super::*;
    pub const OPERATION: usize = offset_of!(xt_CHECKSUM_info, operation);
}

struct Checksum;

impl Codec for Checksum {
    fn name(&self) -> &'static str {
        "CHECKSUM"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn revisions(&self, _: crate::rules::Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[opt("checksum-fill", Arg::None)];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_CHECKSUM_info>();
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "CHECKSUM")?;
            no_invert(o, "CHECKSUM")?;
            match o.name {
                "checksum-fill" => p.u8(field::OPERATION, XT_CHECKSUM_OP_FILL as u8),
                _ => return Err(super::unknown_option("CHECKSUM", o)),
            };
        }
        if seen.is_empty() {
            return Err("CHECKSUM: option \"--checksum-fill\" must be specified".into());
        }
        if ctx.table != "mangle" {
            return Err(format!(
                "CHECKSUM: the kernel allows this target in the mangle table only, not in {}",
                ctx.table
            ));
        }
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_CHECKSUM_info>())?;
        if u32::from(r.u8(field::OPERATION)?) & XT_CHECKSUM_OP_FILL != 0 {
            out.push_str(" --checksum-fill");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::rules::{Family, IpMatch};

    fn ctx_parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        parse_in("mangle", opts)
    }

    fn parse_in(table: &str, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table,
        };
        // Padded to XT_ALIGN as the registry and the kernel have it.
        Checksum
            .parse(0, opts, &ctx)
            .map(|d| crate::ext::make_extension(&Checksum, 0, d).data)
    }

    fn fill(invert: bool) -> OptValue<'static> {
        OptValue {
            name: "checksum-fill",
            invert,
            args: Default::default(),
        }
    }

    // Captured from the kernel after iptables-legacy-restore
    // (`-j CHECKSUM --checksum-fill`): operation = XT_CHECKSUM_OP_FILL, then
    // 7 bytes of XT_ALIGN padding.
    const FILL: &str = "01 00000000000000";

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(ctx_parse(&[fill(false)]).unwrap(), hex(FILL));
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "mangle",
        };
        let mut out = String::new();
        Checksum.save(0, &hex(FILL), &ctx, &mut out).unwrap();
        assert_eq!(out, " --checksum-fill");
        let mut out = String::new();
        Checksum.save(0, &hex("00"), &ctx, &mut out).unwrap();
        assert_eq!(out, "");
        assert!(Checksum.save(0, &[], &ctx, &mut String::new()).is_err());
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(
            ctx_parse(&[]).unwrap_err(),
            "CHECKSUM: option \"--checksum-fill\" must be specified"
        );
        assert_eq!(
            ctx_parse(&[fill(false), fill(false)]).unwrap_err(),
            "CHECKSUM: option \"--checksum-fill\" can only be used once."
        );
        assert!(ctx_parse(&[fill(true)])
            .unwrap_err()
            .contains("cannot be inverted"));
        assert!(parse_in("filter", &[fill(false)])
            .unwrap_err()
            .contains("mangle table only"));
    }
}
