//! `-m cluster` (xt_cluster): the node of a hash-balanced cluster that a
//! connection belongs to. `--cluster-local-node N` is stored as the node
//! mask `1 << (N - 1)`, so iptables-save always prints
//! `--cluster-local-nodemask`.

use std::mem::{offset_of, size_of};

use super::recent::{parse_int_opt, XtFlags, XtOpt, XTOPT_INVERT, XTOPT_MAND};
use super::{Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext};
use crate::rules::Family;
use crate::sys::bindings::{xt_cluster_match_info, XT_CLUSTER_F_INV, XT_CLUSTER_NODES_MAX};

pub(super) static CODECS: &[&dyn Codec] = &[&Cluster];

mod field {
    use super::*;
    pub const TOTAL_NODES: usize = offset_of!(xt_cluster_match_info, total_nodes);
    pub const NODE_MASK: usize = offset_of!(xt_cluster_match_info, node_mask);
    pub const HASH_SEED: usize = offset_of!(xt_cluster_match_info, hash_seed);
    pub const FLAGS: usize = offset_of!(xt_cluster_match_info, flags);
}

const O_TOTAL_NODES: u8 = 0;
const O_LOCAL_NODE: u8 = 1;
const O_LOCAL_NODEMASK: u8 = 2;
const O_HASH_SEED: u8 = 3;
const F_LOCAL_NODE: u32 = 1 << O_LOCAL_NODE;
const F_LOCAL_NODEMASK: u32 = 1 << O_LOCAL_NODEMASK;
const TABLE: [XtOpt; 4] = [
    XtOpt::new("cluster-total-nodes", O_TOTAL_NODES, Arg::One, XTOPT_MAND),
    XtOpt::new("cluster-local-node", O_LOCAL_NODE, Arg::One, XTOPT_INVERT).excl(F_LOCAL_NODEMASK),
    XtOpt::new(
        "cluster-local-nodemask",
        O_LOCAL_NODEMASK,
        Arg::One,
        XTOPT_INVERT,
    )
    .excl(F_LOCAL_NODE),
    XtOpt::new("cluster-hash-seed", O_HASH_SEED, Arg::One, XTOPT_MAND),
];
static SPECS: [OptSpec; 4] = XtOpt::specs(&TABLE);

const NODES_MAX: u64 = XT_CLUSTER_NODES_MAX as u64;

struct Cluster;

impl Codec for Cluster {
    fn name(&self) -> &'static str {
        "cluster"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        &SPECS
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_cluster_match_info>();
        let mut xf = XtFlags::default();
        let (mut total, mut node_mask) = (0u64, 0u64);
        for o in opts {
            match xf.take("cluster", &TABLE, o)? {
                O_TOTAL_NODES => {
                    total = parse_int_opt("cluster", o, 1, NODES_MAX)?;
                    p.u32(field::TOTAL_NODES, total as u32);
                }
                O_LOCAL_NODE => {
                    let node = parse_int_opt("cluster", o, 1, NODES_MAX)?;
                    node_mask = 1 << (node - 1);
                }
                O_LOCAL_NODEMASK => {
                    // libxt_cluster limits the mask itself to 1..32.
                    node_mask = parse_int_opt("cluster", o, 1, NODES_MAX)?;
                }
                _ => {
                    let seed = parse_int_opt("cluster", o, 0, u32::MAX.into())?;
                    p.u32(field::HASH_SEED, seed as u32);
                }
            }
            if o.invert {
                p.u32(field::FLAGS, XT_CLUSTER_F_INV);
            }
        }
        p.u32(field::NODE_MASK, node_mask as u32);
        // cluster_check, before the generic checks.
        let full = |f: u32| xf.any(f) && xf.has(O_TOTAL_NODES) && xf.has(O_HASH_SEED);
        let too_big = node_mask >= 1u64 << total;
        if full(F_LOCAL_NODE) {
            if too_big {
                return Err(
                    "cluster match: `--cluster-local-node' must be <= `--cluster-total-nodes'"
                        .into(),
                );
            }
        } else if full(F_LOCAL_NODEMASK) {
            if too_big {
                return Err(
                    "cluster match: `--cluster-local-nodemask' too big for `--cluster-total-nodes'"
                        .into(),
                );
            }
        } else if !xf.any(F_LOCAL_NODE | F_LOCAL_NODEMASK) {
            return Err(
                "cluster match: `--cluster-local-node' or `--cluster-local-nodemask' is missing"
                    .into(),
            );
        }
        xf.fcheck("cluster", &TABLE)?;
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<xt_cluster_match_info>())?;
        if r.u32(field::FLAGS)? & XT_CLUSTER_F_INV != 0 {
            out.push_str(" !");
        }
        out.push_str(&format!(
            " --cluster-local-nodemask 0x{:08x} --cluster-total-nodes {} --cluster-hash-seed 0x{:08x}",
            r.u32(field::NODE_MASK)?,
            r.u32(field::TOTAL_NODES)?,
            r.u32(field::HASH_SEED)?
        ));
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

    fn parse(family: Family, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "mangle",
        };
        Cluster.parse(0, opts, &ctx).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(family: Family, data: &[u8]) -> ExtResult<String> {
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "mangle",
        };
        let mut out = String::new();
        Cluster.save(0, data, &ctx, &mut out).map(|_| out)
    }

    // Captured from the kernel after iptables-legacy-restore of
    // `-m cluster --cluster-total-nodes 32 ! --cluster-local-node 32 --cluster-hash-seed 0xdeadbeef`.
    const NODE32_INV: &str = "
        20000000    # total_nodes 32 (host order)
        00000080    # node_mask 1 << 31
        efbeadde    # hash_seed 0xdeadbeef
        01000000    # flags XT_CLUSTER_F_INV";

    // ip6tables: `-m cluster --cluster-total-nodes 3 --cluster-local-nodemask 5 --cluster-hash-seed 7`
    const MASK_V6: &str = "
        03000000    # total_nodes 3
        05000000    # node_mask 5
        07000000    # hash_seed 7
        00000000    # flags";

    #[test]
    fn parse_matches_kernel_bytes() {
        let opts = [
            ov("cluster-total-nodes", false, "32"),
            ov("cluster-local-node", true, "32"),
            ov("cluster-hash-seed", false, "0xdeadbeef"),
        ];
        assert_eq!(parse(Family::V4, &opts).unwrap(), fixture(NODE32_INV));
        let opts = [
            ov("cluster-total-nodes", false, "3"),
            ov("cluster-local-nodemask", false, "5"),
            ov("cluster-hash-seed", false, "7"),
        ];
        assert_eq!(parse(Family::V6, &opts).unwrap(), fixture(MASK_V6));
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(
            save(Family::V4, &fixture(NODE32_INV)).unwrap(),
            " ! --cluster-local-nodemask 0x80000000 --cluster-total-nodes 32 --cluster-hash-seed 0xdeadbeef"
        );
        assert_eq!(
            save(Family::V6, &fixture(MASK_V6)).unwrap(),
            " --cluster-local-nodemask 0x00000005 --cluster-total-nodes 3 --cluster-hash-seed 0x00000007"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let base = |local: OptValue<'static>| {
            vec![
                ov("cluster-total-nodes", false, "2"),
                local,
                ov("cluster-hash-seed", false, "1"),
            ]
        };
        for local in [
            ov("cluster-local-node", false, "3"),
            ov("cluster-local-node", false, "0"),
            ov("cluster-local-node", false, "33"),
            ov("cluster-local-nodemask", false, "4"),
            ov("cluster-local-nodemask", false, "0"),
            ov("cluster-local-nodemask", false, "33"),
        ] {
            assert!(
                parse(Family::V4, &base(local.clone())).is_err(),
                "{local:?}"
            );
        }
        let mut seed = base(ov("cluster-local-node", false, "1"));
        seed[2] = ov("cluster-hash-seed", false, "4294967296");
        assert!(parse(Family::V4, &seed).is_err());
        let mut total = base(ov("cluster-local-node", false, "1"));
        total[0] = ov("cluster-total-nodes", false, "33");
        assert!(parse(Family::V4, &total).is_err());
        assert!(parse(
            Family::V4,
            &[
                ov("cluster-total-nodes", false, "3"),
                ov("cluster-hash-seed", false, "1")
            ]
        )
        .is_err());
        assert_eq!(
            parse(
                Family::V4,
                &[
                    ov("cluster-local-node", false, "1"),
                    ov("cluster-hash-seed", false, "1")
                ]
            )
            .unwrap_err(),
            "cluster: option \"--cluster-total-nodes\" must be specified"
        );
        let mut both = base(ov("cluster-local-node", false, "1"));
        both.push(ov("cluster-local-nodemask", false, "1"));
        assert!(parse(Family::V4, &both).is_err());
        assert!(parse(
            Family::V4,
            &[
                ov("cluster-total-nodes", true, "2"),
                ov("cluster-local-node", false, "1"),
                ov("cluster-hash-seed", false, "1")
            ]
        )
        .is_err());
        assert!(save(Family::V4, &[0; 12]).is_err(), "short payload");
    }
}
