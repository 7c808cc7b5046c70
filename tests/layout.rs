//! Every struct size and field offset the crate relies on, as bindgen sees
//! it, must equal what the C compiler says (ffi/layout.c).

use std::collections::HashMap;
use std::mem::{offset_of, size_of};

use iptables_atomic::sys::bindings::*;
use iptables_atomic::sys::c_layout_facts;

macro_rules! facts {
    ($( $t:ident $( { $($f:ident),* } )? ),* $(,)?) => {{
        let mut v: Vec<(String, usize)> = Vec::new();
        $(
            v.push((format!("sizeof(struct {})", stringify!($t)), size_of::<$t>()));
            $( $( v.push((format!("offsetof(struct {}, {})", stringify!($t), stringify!($f)), offset_of!($t, $f))); )* )?
        )*
        v
    }};
}

#[test]
fn rust_layout_matches_c_layout() {
    let c: HashMap<String, usize> = c_layout_facts().into_iter().collect();
    let rust = facts![
        ipt_entry {
            ip,
            nfcache,
            target_offset,
            next_offset,
            comefrom,
            counters,
            elems
        },
        ipt_ip {
            src,
            dst,
            smsk,
            dmsk,
            iniface,
            outiface,
            iniface_mask,
            outiface_mask,
            proto,
            flags,
            invflags
        },
        ipt_getinfo {
            name,
            valid_hooks,
            hook_entry,
            underflow,
            num_entries,
            size
        },
        ipt_get_entries {
            name,
            size,
            entrytable
        },
        ipt_replace {
            name,
            valid_hooks,
            num_entries,
            size,
            hook_entry,
            underflow,
            num_counters,
            counters,
            entries
        },
        ipt_icmp,
        ip6t_entry {
            ipv6,
            nfcache,
            target_offset,
            next_offset,
            comefrom,
            counters,
            elems
        },
        ip6t_ip6 {
            src,
            dst,
            smsk,
            dmsk,
            iniface,
            outiface,
            iniface_mask,
            outiface_mask,
            proto,
            tos,
            flags,
            invflags
        },
        ip6t_getinfo {
            name,
            valid_hooks,
            hook_entry,
            underflow,
            num_entries,
            size
        },
        ip6t_get_entries {
            name,
            size,
            entrytable
        },
        ip6t_replace {
            name,
            valid_hooks,
            num_entries,
            size,
            hook_entry,
            underflow,
            num_counters,
            counters,
            entries
        },
        xt_counters,
        xt_counters_info {
            name,
            num_counters,
            counters
        },
        xt_entry_match,
        xt_entry_target,
        xt_standard_target { target, verdict },
        xt_error_target { target, errorname },
        xt_get_revision { name, revision },
        xt_tcp,
        xt_udp,
        xt_multiport,
        xt_multiport_v1,
        xt_conntrack_mtinfo1,
        xt_conntrack_mtinfo2,
        xt_conntrack_mtinfo3,
        xt_state_info,
        xt_comment_info,
        xt_rateinfo,
        xt_mark_mtinfo1,
        xt_mark_tginfo2,
        xt_connmark_mtinfo1,
        xt_connmark_tginfo1,
        xt_connmark_tginfo2,
        xt_addrtype_info,
        xt_addrtype_info_v1,
        xt_mac_info,
        xt_iprange_mtinfo,
        xt_recent_mtinfo,
        xt_recent_mtinfo_v1,
        xt_owner_match_info,
        xt_pkttype_info,
        xt_hashlimit_mtinfo1,
        xt_hashlimit_mtinfo2,
        xt_hashlimit_mtinfo3,
        xt_connlimit_info,
        xt_string_info,
        xt_statistic_info,
        xt_sctp_info,
        xt_length_info,
        xt_rpfilter_info,
        xt_nfacct_match_info,
        xt_nfacct_match_info_v1,
        xt_time_info,
        xt_tcpmss_match_info,
        xt_log_info,
        xt_nflog_info,
        xt_ct_target_info,
        xt_ct_target_info_v1,
        xt_tcpmss_info,
        xt_CHECKSUM_info,
        xt_tproxy_target_info,
        xt_tproxy_target_info_v1,
        ipt_reject_info,
        ip6t_reject_info,
        nf_nat_ipv4_multi_range_compat,
        nf_nat_range,
        nf_nat_range2,
    ];
    let mut checked = 0;
    for (name, value) in &rust {
        let cv = c
            .get(name)
            .unwrap_or_else(|| panic!("ffi/layout.c has no fact `{name}'"));
        assert_eq!(cv, value, "{name}: C says {cv}, Rust says {value}");
        checked += 1;
    }
    assert_eq!(checked, c.len(), "every fact in ffi/layout.c is compared");
}
