//! Generates the kernel ABI bindings and builds the C layout table.
//!
//! * bindgen reads `ffi/netfilter.h` (the system's linux uapi headers) and
//!   writes `$OUT_DIR/netfilter.rs`, restricted to an explicit allowlist;
//! * cc compiles `ffi/layout.c`, a table of `sizeof`/`offsetof` facts as the C
//!   compiler sees them, so a test can compare every Rust layout with C's.

use std::env;
use std::path::PathBuf;

/// Structs (and their dependencies) that the crate reads or writes.
const TYPES: &[&str] = &[
    "ipt_entry",
    "ipt_ip",
    "ipt_getinfo",
    "ipt_get_entries",
    "ipt_replace",
    "ipt_icmp",
    "ip6t_entry",
    "ip6t_ip6",
    "ip6t_getinfo",
    "ip6t_get_entries",
    "ip6t_replace",
    "xt_counters",
    "xt_counters_info",
    "xt_entry_match",
    "xt_entry_target",
    "xt_standard_target",
    "xt_error_target",
    "xt_get_revision",
    "xt_tcp",
    "xt_udp",
    "xt_multiport",
    "xt_multiport_v1",
    "xt_conntrack_mtinfo1",
    "xt_conntrack_mtinfo2",
    "xt_conntrack_mtinfo3",
    "xt_state_info",
    "xt_comment_info",
    "xt_rateinfo",
    "xt_mark_mtinfo1",
    "xt_mark_tginfo2",
    "xt_connmark_mtinfo1",
    "xt_connmark_tginfo1",
    "xt_connmark_tginfo2",
    "xt_addrtype_info",
    "xt_addrtype_info_v1",
    "xt_mac_info",
    "xt_iprange_mtinfo",
    "xt_recent_mtinfo",
    "xt_recent_mtinfo_v1",
    "xt_owner_match_info",
    "xt_pkttype_info",
    "xt_hashlimit_mtinfo1",
    "xt_hashlimit_mtinfo2",
    "xt_hashlimit_mtinfo3",
    "xt_connlimit_info",
    "xt_string_info",
    "xt_statistic_info",
    "xt_sctp_info",
    "xt_length_info",
    "xt_rpfilter_info",
    "xt_nfacct_match_info",
    "xt_nfacct_match_info_v1",
    "xt_time_info",
    "xt_tcpmss_match_info",
    "xt_log_info",
    "xt_nflog_info",
    "xt_ct_target_info",
    "xt_ct_target_info_v1",
    "xt_tcpmss_info",
    "xt_CHECKSUM_info",
    "xt_tproxy_target_info",
    "xt_tproxy_target_info_v1",
    "ipt_reject_info",
    "ip6t_reject_info",
    "nf_nat_ipv4_multi_range_compat",
    "nf_nat_range",
    "nf_nat_range2",
    "idletimer_tg_info",
    "idletimer_tg_info_v1",
    "nf_synproxy_info",
    "ipset_cmd_flags",
];

/// Extension payload structs, by pattern (the headers name them all `xt_*`,
/// `ipt_*`, `ip6t_*`, `nf_nat_*` or `ip_set_*`; xt_osf.h only #defines
/// `xt_osf_info` as `nf_osf_info`).
const EXTENSION_TYPES: &[&str] = &[
    "xt_.*",
    "ipt_.*",
    "ip6t_.*",
    "nf_nat_.*",
    "ip_set_.*",
    "nf_conntrack_.*",
    "nf_osf_.*",
    "ipset_cmd_flags",
];

/// Constants: socket options, flags, verdicts, extension flags.
const VARS: &[&str] = &[
    "IPT_.*",
    "IP6T_.*",
    "XT_.*",
    "NF_ACCEPT",
    "NF_DROP",
    "NF_QUEUE",
    "NF_REPEAT",
    "NF_INET_.*",
    "NF_NAT_.*",
    "IFNAMSIZ",
    "IPPROTO_.*",
    "SOL_IP",
    "SOL_IPV6",
    "MASK_.*",
    "IPSET_.*|IP_SET_OP_.*|SO_IP_SET",
    "NFQ_FLAG_.*",
    "SECMARK_.*",
    "CONNSECMARK_.*",
    "NF_SYNPROXY_.*",
    "MAX_IDLETIMER_LABEL_SIZE",
];

fn main() {
    println!("cargo:rerun-if-changed=ffi/netfilter.h");
    println!("cargo:rerun-if-changed=ffi/layout.c");
    println!("cargo:rerun-if-changed=build.rs");

    let mut builder = bindgen::Builder::default()
        .header("ffi/netfilter.h")
        .layout_tests(true)
        .derive_default(true)
        .derive_debug(true)
        .prepend_enum_name(false)
        .default_enum_style(bindgen::EnumVariation::Consts)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for t in TYPES {
        builder = builder.allowlist_type(t);
    }
    // Every extension struct of the uapi headers, for the codecs in src/ext/.
    for pattern in EXTENSION_TYPES {
        builder = builder.allowlist_type(pattern);
    }
    for v in VARS {
        builder = builder.allowlist_var(v);
    }
    let bindings = builder.generate().expect(
        "bindgen could not read ffi/netfilter.h: are linux-libc-dev and libclang-dev installed?",
    );
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("netfilter.rs"))
        .expect("cannot write the bindings into OUT_DIR");

    if env::var_os("CARGO_FEATURE_LIBIPTC_BENCH").is_some() {
        libiptc_bindings(&out);
    }

    cc::Build::new()
        .file("ffi/layout.c")
        .warnings(true)
        .compile("iptables_atomic_layout");
}

/// Feature `libiptc-bench` only: bindings to libiptc (libip4tc-dev) for the
/// benchmarks' in-process reference. The crate itself never links libiptc.
fn libiptc_bindings(out: &std::path::Path) {
    let bindings = bindgen::Builder::default()
        .header_contents("libiptc_bench.h", "#include <libiptc/libiptc.h>\n")
        .allowlist_function("iptc_.*")
        .allowlist_type("ipt_entry|xtc_handle")
        .derive_default(true)
        .layout_tests(false)
        .generate()
        .expect("bindgen could not read <libiptc/libiptc.h>: is libip4tc-dev installed?");
    bindings
        .write_to_file(out.join("libiptc.rs"))
        .expect("cannot write the libiptc bindings into OUT_DIR");
}
