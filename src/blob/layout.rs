//! Offsets and sizes of the kernel structs, per family, from bindgen's types.

use std::mem::{offset_of, size_of};

use crate::rules::Family;
use crate::sys::bindings as b;

/// Size of `xt_entry_match` / `xt_entry_target` (the extension header).
pub const EXT_HEADER: usize = size_of::<b::xt_entry_match>();
/// Offset of the size field in an extension header.
pub const EXT_SIZE: usize = 0;
/// Offset of the name in an extension header.
pub const EXT_NAME: usize = 2;
/// Length of the name field (XT_EXTENSION_MAXNAMELEN).
pub const EXT_NAME_LEN: usize = 29;
/// Offset of the revision in an extension header.
pub const EXT_REVISION: usize = 31;
/// Size of the standard target (header + verdict, aligned).
pub const STANDARD_TARGET: usize = crate::ext::xt_align(size_of::<b::xt_standard_target>());
/// Size of the error target (header + 32-byte name).
pub const ERROR_TARGET: usize = crate::ext::xt_align(size_of::<b::xt_error_target>());
/// Length of a table name (XT_TABLE_MAXNAMELEN).
pub const TABLE_NAME_LEN: usize = 32;
/// Offset of the counters array pointer etc. in `ipt_replace`.
pub const REPLACE_SIZE: usize = size_of::<b::ipt_replace>();

/// Where the fields of an entry are, for one family.
#[derive(Debug, Clone, Copy)]
pub struct EntryLayout {
    /// sizeof(ipt_entry) / sizeof(ip6t_entry).
    pub size: usize,
    /// The address fields.
    pub src: usize,
    /// Destination address.
    pub dst: usize,
    /// Source mask.
    pub smsk: usize,
    /// Destination mask.
    pub dmsk: usize,
    /// Address length (4 or 16).
    pub addr_len: usize,
    /// Input interface name.
    pub iniface: usize,
    /// Output interface name.
    pub outiface: usize,
    /// Input interface mask.
    pub iniface_mask: usize,
    /// Output interface mask.
    pub outiface_mask: usize,
    /// Protocol (u16).
    pub proto: usize,
    /// IPv6 traffic class (u8); `None` for IPv4.
    pub tos: Option<usize>,
    /// Flags (u8).
    pub flags: usize,
    /// Inversion flags (u8).
    pub invflags: usize,
    /// `target_offset` (u16).
    pub target_offset: usize,
    /// `next_offset` (u16).
    pub next_offset: usize,
    /// `comefrom` (u32).
    pub comefrom: usize,
    /// Packet counter (u64), then byte counter (u64).
    pub counters: usize,
    /// `ipt_replace`/`ip6t_replace` size (the header before the entries).
    pub replace_size: usize,
    /// `ipt_getinfo` size.
    pub getinfo_size: usize,
    /// `ipt_get_entries` header size.
    pub get_entries_size: usize,
}

const V4: EntryLayout = EntryLayout {
    size: size_of::<b::ipt_entry>(),
    src: offset_of!(b::ipt_entry, ip) + offset_of!(b::ipt_ip, src),
    dst: offset_of!(b::ipt_entry, ip) + offset_of!(b::ipt_ip, dst),
    smsk: offset_of!(b::ipt_entry, ip) + offset_of!(b::ipt_ip, smsk),
    dmsk: offset_of!(b::ipt_entry, ip) + offset_of!(b::ipt_ip, dmsk),
    addr_len: 4,
    iniface: offset_of!(b::ipt_entry, ip) + offset_of!(b::ipt_ip, iniface),
    outiface: offset_of!(b::ipt_entry, ip) + offset_of!(b::ipt_ip, outiface),
    iniface_mask: offset_of!(b::ipt_entry, ip) + offset_of!(b::ipt_ip, iniface_mask),
    outiface_mask: offset_of!(b::ipt_entry, ip) + offset_of!(b::ipt_ip, outiface_mask),
    proto: offset_of!(b::ipt_entry, ip) + offset_of!(b::ipt_ip, proto),
    tos: None,
    flags: offset_of!(b::ipt_entry, ip) + offset_of!(b::ipt_ip, flags),
    invflags: offset_of!(b::ipt_entry, ip) + offset_of!(b::ipt_ip, invflags),
    target_offset: offset_of!(b::ipt_entry, target_offset),
    next_offset: offset_of!(b::ipt_entry, next_offset),
    comefrom: offset_of!(b::ipt_entry, comefrom),
    counters: offset_of!(b::ipt_entry, counters),
    replace_size: size_of::<b::ipt_replace>(),
    getinfo_size: size_of::<b::ipt_getinfo>(),
    get_entries_size: size_of::<b::ipt_get_entries>(),
};

const V6: EntryLayout = EntryLayout {
    size: size_of::<b::ip6t_entry>(),
    src: offset_of!(b::ip6t_entry, ipv6) + offset_of!(b::ip6t_ip6, src),
    dst: offset_of!(b::ip6t_entry, ipv6) + offset_of!(b::ip6t_ip6, dst),
    smsk: offset_of!(b::ip6t_entry, ipv6) + offset_of!(b::ip6t_ip6, smsk),
    dmsk: offset_of!(b::ip6t_entry, ipv6) + offset_of!(b::ip6t_ip6, dmsk),
    addr_len: 16,
    iniface: offset_of!(b::ip6t_entry, ipv6) + offset_of!(b::ip6t_ip6, iniface),
    outiface: offset_of!(b::ip6t_entry, ipv6) + offset_of!(b::ip6t_ip6, outiface),
    iniface_mask: offset_of!(b::ip6t_entry, ipv6) + offset_of!(b::ip6t_ip6, iniface_mask),
    outiface_mask: offset_of!(b::ip6t_entry, ipv6) + offset_of!(b::ip6t_ip6, outiface_mask),
    proto: offset_of!(b::ip6t_entry, ipv6) + offset_of!(b::ip6t_ip6, proto),
    tos: Some(offset_of!(b::ip6t_entry, ipv6) + offset_of!(b::ip6t_ip6, tos)),
    flags: offset_of!(b::ip6t_entry, ipv6) + offset_of!(b::ip6t_ip6, flags),
    invflags: offset_of!(b::ip6t_entry, ipv6) + offset_of!(b::ip6t_ip6, invflags),
    target_offset: offset_of!(b::ip6t_entry, target_offset),
    next_offset: offset_of!(b::ip6t_entry, next_offset),
    comefrom: offset_of!(b::ip6t_entry, comefrom),
    counters: offset_of!(b::ip6t_entry, counters),
    replace_size: size_of::<b::ip6t_replace>(),
    getinfo_size: size_of::<b::ip6t_getinfo>(),
    get_entries_size: size_of::<b::ip6t_get_entries>(),
};

/// Room kept in front of a table's entries for the `ipt_replace` /
/// `ip6t_replace` header (the larger of the two), so that a SET_REPLACE
/// request is the table's own buffer rather than a copy of it.
pub const REPLACE_ROOM: usize = if V4.replace_size > V6.replace_size {
    V4.replace_size
} else {
    V6.replace_size
};

/// The layout for a family.
pub fn entry_layout(family: Family) -> &'static EntryLayout {
    match family {
        Family::V4 => &V4,
        Family::V6 => &V6,
    }
}

/// Field offsets of `ipt_replace` (identical for `ip6t_replace`).
pub mod replace {
    use super::*;
    /// Table name.
    pub const NAME: usize = offset_of!(b::ipt_replace, name);
    /// Valid hooks bitmask.
    pub const VALID_HOOKS: usize = offset_of!(b::ipt_replace, valid_hooks);
    /// Number of entries.
    pub const NUM_ENTRIES: usize = offset_of!(b::ipt_replace, num_entries);
    /// Size of the entries.
    pub const SIZE: usize = offset_of!(b::ipt_replace, size);
    /// Hook entry points.
    pub const HOOK_ENTRY: usize = offset_of!(b::ipt_replace, hook_entry);
    /// Underflow (policy) entries.
    pub const UNDERFLOW: usize = offset_of!(b::ipt_replace, underflow);
    /// Entries in the live table.
    pub const NUM_COUNTERS: usize = offset_of!(b::ipt_replace, num_counters);
    /// Pointer to the buffer for the old counters.
    pub const COUNTERS: usize = offset_of!(b::ipt_replace, counters);
}

/// Field offsets of `ipt_getinfo` (identical for IPv6).
pub mod getinfo {
    use super::*;
    /// Table name.
    pub const NAME: usize = offset_of!(b::ipt_getinfo, name);
    /// Valid hooks.
    pub const VALID_HOOKS: usize = offset_of!(b::ipt_getinfo, valid_hooks);
    /// Hook entry points.
    pub const HOOK_ENTRY: usize = offset_of!(b::ipt_getinfo, hook_entry);
    /// Underflows.
    pub const UNDERFLOW: usize = offset_of!(b::ipt_getinfo, underflow);
    /// Number of entries.
    pub const NUM_ENTRIES: usize = offset_of!(b::ipt_getinfo, num_entries);
    /// Blob size.
    pub const SIZE: usize = offset_of!(b::ipt_getinfo, size);
}

/// Field offsets of `xt_counters_info`.
pub mod counters_info {
    use super::*;
    /// Table name.
    pub const NAME: usize = offset_of!(b::xt_counters_info, name);
    /// Number of counters.
    pub const NUM_COUNTERS: usize = offset_of!(b::xt_counters_info, num_counters);
    /// The counters.
    pub const COUNTERS: usize = offset_of!(b::xt_counters_info, counters);
}
