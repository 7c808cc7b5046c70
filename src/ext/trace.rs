//! `-j TRACE` (xt_TRACE): mark packets for tracing. It has no options and
//! an empty payload; the kernel allows it in the raw table only. One
//! revision, both families.

use super::{Codec, ExtResult, Kind, OptSpec, OptValue, RuleContext};

pub(super) static CODECS: &[&dyn Codec] = &[&Trace];

struct Trace;

impl Codec for Trace {
    fn name(&self) -> &'static str {
        "TRACE"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn revisions(&self, _: crate::rules::Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        &[]
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        match opts.first() {
            Some(o) => Err(super::unknown_option("TRACE", o)),
            None => Ok(Vec::new()),
        }
    }

    fn save(&self, _rev: u8, _data: &[u8], _ctx: &RuleContext, _out: &mut String) -> ExtResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Family, IpMatch};

    // Captured from the kernel after iptables-legacy-restore of
    // `-A PREROUTING -j TRACE` in raw (and the IPv6 twin): the target is
    // the 32-byte header alone, no payload.
    #[test]
    fn empty_payload_both_ways() {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "raw",
        };
        assert_eq!(Trace.parse(0, &[], &ctx).unwrap(), Vec::<u8>::new());
        let mut out = String::new();
        Trace.save(0, &[], &ctx, &mut out).unwrap();
        assert_eq!(out, "");
    }

    #[test]
    fn options_are_refused() {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "raw",
        };
        let o = OptValue {
            name: "x",
            invert: false,
            args: Default::default(),
        };
        assert!(Trace.parse(0, &[o], &ctx).is_err());
    }
}
