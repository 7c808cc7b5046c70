//! `-m set` (xt_set): membership in an ipset, `[!] --match-set NAME
//! src|dst[,src|dst]...`, with (revision 2) `--return-nomatch` and
//! (revisions 3 and 4) `! --update-counters`, `! --update-subcounters`,
//! `[!] --packets-eq N`, `--packets-lt N`, `--packets-gt N` and the same
//! for bytes. `--set` is libxt_set's deprecated synonym of `--match-set`.
//!
//! The kernel payload holds the set's kernel index, not its name: parsing
//! asks the ipset core of the current network namespace for the index of
//! the name (`SO_IP_SET` getsockopt, `IP_SET_OP_GET_FNAME`, which also
//! checks the set's family), and saving asks for the name of the index
//! (`IP_SET_OP_GET_BYINDEX`), exactly as libxt_set does. The set must
//! exist before the rule is parsed (`ipset create ...`).
//!
//! Revisions: 0 (IPv4 only, per-dimension flag words; the kernel rewrites
//! its `compat` tail when it checks the rule), 1 (`xt_set_info`), 2 (adds
//! return-nomatch in the same struct), 3 (counters, `ip_set_counter_match0`)
//! and 4 (counters, `ip_set_counter_match`). iptables 1.8.9 picks 4 on
//! current kernels. Options a revision lacks are refused as unknown.
//!
//! libxt_set parses with the old (non-x6) interface, so its own rules
//! apply: `!` before `--update-counters` / `--update-subcounters` is what
//! sets their flag (without it they do nothing), `! --packets-eq` means
//! "not equal", `!` before `-lt`/`-gt` or (revisions 3/4) before
//! `--return-nomatch` is an error, revision 2 ignores a `!` there.

use std::mem::{offset_of, size_of};

use super::{
    unknown_option, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    ip_set_counter_match, ip_set_counter_match0, ip_set_name_index, ip_set_req_get_set,
    ip_set_req_get_set_family, ip_set_req_version, xt_set_info, xt_set_info_match_v0,
    xt_set_info_match_v1, xt_set_info_match_v3, xt_set_info_match_v4, xt_set_info_v0,
    IPSET_COUNTER_EQ, IPSET_COUNTER_GT, IPSET_COUNTER_LT, IPSET_COUNTER_NE, IPSET_COUNTER_NONE,
    IPSET_DIM_MAX, IPSET_DST, IPSET_FLAG_RETURN_NOMATCH, IPSET_FLAG_SKIP_COUNTER_UPDATE,
    IPSET_FLAG_SKIP_SUBCOUNTER_UPDATE, IPSET_INVALID_ID, IPSET_INV_MATCH, IPSET_MATCH_INV,
    IPSET_MAXNAMELEN, IPSET_RETURN_NOMATCH, IPSET_SRC, IP_SET_OP_GET_BYINDEX, IP_SET_OP_GET_BYNAME,
    IP_SET_OP_GET_FNAME, IP_SET_OP_VERSION, SO_IP_SET,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Set];

mod field {
    use super::*;
    // Revision 0: xt_set_info_match_v0 { xt_set_info_v0 { index, u32 flags[7] } }.
    pub const V0_INDEX: usize =
        offset_of!(xt_set_info_match_v0, match_set) + offset_of!(xt_set_info_v0, index);
    pub const V0_FLAGS: usize =
        offset_of!(xt_set_info_match_v0, match_set) + offset_of!(xt_set_info_v0, u);
    // Revisions 1-4 start with xt_set_info { index, dim, flags }.
    pub const INDEX: usize =
        offset_of!(xt_set_info_match_v1, match_set) + offset_of!(xt_set_info, index);
    pub const DIM: usize =
        offset_of!(xt_set_info_match_v1, match_set) + offset_of!(xt_set_info, dim);
    pub const SET_FLAGS: usize =
        offset_of!(xt_set_info_match_v1, match_set) + offset_of!(xt_set_info, flags);
    const _: () = assert!(offset_of!(xt_set_info_match_v3, match_set) == 0);
    const _: () = assert!(offset_of!(xt_set_info_match_v4, match_set) == 0);
    // Revision 3 counters: { u8 op; u64 value }.
    pub const V3_PACKETS_OP: usize =
        offset_of!(xt_set_info_match_v3, packets) + offset_of!(ip_set_counter_match0, op);
    pub const V3_PACKETS_VALUE: usize =
        offset_of!(xt_set_info_match_v3, packets) + offset_of!(ip_set_counter_match0, value);
    pub const V3_BYTES_OP: usize =
        offset_of!(xt_set_info_match_v3, bytes) + offset_of!(ip_set_counter_match0, op);
    pub const V3_BYTES_VALUE: usize =
        offset_of!(xt_set_info_match_v3, bytes) + offset_of!(ip_set_counter_match0, value);
    pub const V3_FLAGS: usize = offset_of!(xt_set_info_match_v3, flags);
    // Revision 4 counters: { u64 value; u8 op }.
    pub const V4_PACKETS_OP: usize =
        offset_of!(xt_set_info_match_v4, packets) + offset_of!(ip_set_counter_match, op);
    pub const V4_PACKETS_VALUE: usize =
        offset_of!(xt_set_info_match_v4, packets) + offset_of!(ip_set_counter_match, value);
    pub const V4_BYTES_OP: usize =
        offset_of!(xt_set_info_match_v4, bytes) + offset_of!(ip_set_counter_match, op);
    pub const V4_BYTES_VALUE: usize =
        offset_of!(xt_set_info_match_v4, bytes) + offset_of!(ip_set_counter_match, value);
    pub const V4_FLAGS: usize = offset_of!(xt_set_info_match_v4, flags);
}

/// IPSET_DIM_MAX: dimensions of a set element (src/dst words).
const DIM_MAX: usize = IPSET_DIM_MAX as usize;
/// Longest set name (IPSET_MAXNAMELEN less the NUL).
const NAME_MAX: usize = IPSET_MAXNAMELEN as usize - 1;

// ---------------------------------------------------------------------------
// The ipset core: set names and kernel indexes (libxt_set.h).

/// The request buffers of SO_IP_SET.
mod req {
    use super::*;
    pub const OP: usize = offset_of!(ip_set_req_version, op);
    pub const VERSION: usize = offset_of!(ip_set_req_version, version);
    pub const GET_OP: usize = offset_of!(ip_set_req_get_set, op);
    pub const GET_VERSION: usize = offset_of!(ip_set_req_get_set, version);
    pub const GET_SET: usize = offset_of!(ip_set_req_get_set, set);
    pub const FAM_OP: usize = offset_of!(ip_set_req_get_set_family, op);
    pub const FAM_VERSION: usize = offset_of!(ip_set_req_get_set_family, version);
    pub const FAM_FAMILY: usize = offset_of!(ip_set_req_get_set_family, family);
    pub const FAM_SET: usize = offset_of!(ip_set_req_get_set_family, set);
    /// `union ip_set_name_index`: the name, or the index in its first bytes.
    pub const NAME_LEN: usize = size_of::<ip_set_name_index>();
}

/// get_version: a raw socket and the ipset protocol version the kernel
/// speaks (echoed back in every request).
fn ipset_socket() -> ExtResult<(std::os::fd::OwnedFd, u32)> {
    let fd = crate::sys::raw_socket(libc::AF_INET)
        .map_err(|e| format!("Can't open socket to ipset: {e}"))?;
    let mut p = Payload::of::<ip_set_req_version>();
    p.u32(req::OP, IP_SET_OP_VERSION);
    let mut buf = p.finish();
    crate::sys::getsockopt(
        &fd,
        libc::SOL_IP,
        SO_IP_SET as libc::c_int,
        "getsockopt(SO_IP_SET, IP_SET_OP_VERSION)",
        &mut buf,
    )
    .map_err(|e| format!("Kernel module xt_set is not loaded in ({e})"))?;
    let version = Reader::new(&buf, buf.len())?.u32(req::VERSION)?;
    Ok((fd, version))
}

fn ipset_errno(e: &crate::sys::SyscallError) -> String {
    format!(
        "Problem when communicating with ipset, errno={}.",
        e.errno().unwrap_or(0)
    )
}

fn name_field(name: &str) -> [u8; req::NAME_LEN] {
    let mut f = [0u8; req::NAME_LEN];
    let b = crate::text::to_bytes(name);
    let n = b.len().min(req::NAME_LEN - 1);
    f[..n].copy_from_slice(&b[..n]);
    f
}

/// get_set_byname: the kernel index of a set, checking that its family
/// fits the rule (or is "any"). Falls back to the older by-name request on
/// kernels that do not know IP_SET_OP_GET_FNAME.
pub(crate) fn set_index(name: &str, family: Family) -> ExtResult<u16> {
    let (fd, version) = ipset_socket()?;
    let mut p = Payload::of::<ip_set_req_get_set_family>();
    p.u32(req::FAM_OP, IP_SET_OP_GET_FNAME)
        .u32(req::FAM_VERSION, version)
        .bytes(req::FAM_SET, &name_field(name));
    let mut buf = p.finish();
    let got = match crate::sys::getsockopt(
        &fd,
        libc::SOL_IP,
        SO_IP_SET as libc::c_int,
        "getsockopt(SO_IP_SET, IP_SET_OP_GET_FNAME)",
        &mut buf,
    ) {
        Err(e) if e.errno() == Some(libc::EBADMSG) => {
            return set_index_by_name_only(&fd, version, name)
        }
        Err(e) => return Err(ipset_errno(&e)),
        Ok(n) => n,
    };
    if got != buf.len() {
        return Err(format!(
            "Incorrect return size from kernel during ipset lookup, (want {}, got {got})",
            buf.len()
        ));
    }
    let r = Reader::new(&buf, buf.len())?;
    let index = r.u16(req::FAM_SET)?;
    if u32::from(index) == IPSET_INVALID_ID {
        return Err(format!("Set {name} doesn't exist."));
    }
    let set_family = r.u32(req::FAM_FAMILY)? as libc::c_int;
    let want = match family {
        Family::V4 => libc::NFPROTO_IPV4,
        _ => libc::NFPROTO_IPV6,
    };
    if set_family != want && set_family != libc::NFPROTO_UNSPEC {
        return Err(format!(
            "The protocol family of set {name} is {}, which is not applicable.",
            if set_family == libc::NFPROTO_IPV4 {
                "IPv4"
            } else {
                "IPv6"
            }
        ));
    }
    Ok(index)
}

/// get_set_byname_only: IP_SET_OP_GET_BYNAME (no family check).
fn set_index_by_name_only(fd: &std::os::fd::OwnedFd, version: u32, name: &str) -> ExtResult<u16> {
    let mut p = Payload::of::<ip_set_req_get_set>();
    p.u32(req::GET_OP, IP_SET_OP_GET_BYNAME)
        .u32(req::GET_VERSION, version)
        .bytes(req::GET_SET, &name_field(name));
    let mut buf = p.finish();
    let got = crate::sys::getsockopt(
        fd,
        libc::SOL_IP,
        SO_IP_SET as libc::c_int,
        "getsockopt(SO_IP_SET, IP_SET_OP_GET_BYNAME)",
        &mut buf,
    )
    .map_err(|e| ipset_errno(&e))?;
    if got != buf.len() {
        return Err(format!(
            "Incorrect return size from kernel during ipset lookup, (want {}, got {got})",
            buf.len()
        ));
    }
    let index = Reader::new(&buf, buf.len())?.u16(req::GET_SET)?;
    if u32::from(index) == IPSET_INVALID_ID {
        return Err(format!("Set {name} doesn't exist."));
    }
    Ok(index)
}

/// get_set_byid: the name of the set with this kernel index.
pub(crate) fn set_name(index: u16) -> ExtResult<String> {
    let (fd, version) = ipset_socket()?;
    let mut p = Payload::of::<ip_set_req_get_set>();
    p.u32(req::GET_OP, IP_SET_OP_GET_BYINDEX)
        .u32(req::GET_VERSION, version)
        .u16(req::GET_SET, index);
    let mut buf = p.finish();
    let got = crate::sys::getsockopt(
        &fd,
        libc::SOL_IP,
        SO_IP_SET as libc::c_int,
        "getsockopt(SO_IP_SET, IP_SET_OP_GET_BYINDEX)",
        &mut buf,
    )
    .map_err(|e| ipset_errno(&e))?;
    if got != buf.len() {
        return Err(format!(
            "Incorrect return size from kernel during ipset lookup, (want {}, got {got})",
            buf.len()
        ));
    }
    let name = Reader::new(&buf, buf.len())?.cstr(req::GET_SET, req::NAME_LEN)?;
    if name.is_empty() {
        return Err(format!("Set with index {index} in kernel doesn't exist."));
    }
    Ok(crate::text::from_bytes(name).into_owned())
}

// ---------------------------------------------------------------------------
// The match.

/// Every option of revision 4 (the parser's table); see [`known`].
const OPTIONS: &[OptSpec] = &[
    super::opt("match-set", Arg::Two),
    super::opt("set", Arg::Two),
    super::opt("return-nomatch", Arg::None),
    super::opt("update-counters", Arg::None),
    super::opt("update-subcounters", Arg::None),
    super::opt("packets-eq", Arg::One),
    super::opt("packets-lt", Arg::One),
    super::opt("packets-gt", Arg::One),
    super::opt("bytes-eq", Arg::One),
    super::opt("bytes-lt", Arg::One),
    super::opt("bytes-gt", Arg::One),
];

/// The options a revision's table has: 0 and 1 the first two, 2 one more,
/// 3 and 4 all.
fn known(rev: u8, name: &str) -> bool {
    let n = match rev {
        0 | 1 => 2,
        2 => 3,
        _ => OPTIONS.len(),
    };
    OPTIONS[..n].iter().any(|o| o.name == name)
}

/// The payload size of a revision.
fn payload_size(rev: u8) -> usize {
    match rev {
        0 => size_of::<xt_set_info_match_v0>(),
        1 | 2 => size_of::<xt_set_info_match_v1>(),
        3 => size_of::<xt_set_info_match_v3>(),
        _ => size_of::<xt_set_info_match_v4>(),
    }
}

/// A counter condition of revisions 3/4: (op, value).
type Counter = (u8, u64);

/// parse_dirs (revisions 1-4): up to IPSET_DIM_MAX words, each starting
/// with `src` (its dimension's bit set in `flags`) or `dst`. Returns
/// (dim, flags bits).
fn parse_dirs(s: &str) -> ExtResult<(u8, u8)> {
    let words: Vec<&str> = s.split(',').collect();
    let mut flags = 0u8;
    for (i, w) in words.iter().take(DIM_MAX).enumerate() {
        if w.starts_with("src") {
            flags |= 1 << (i + 1);
        } else if !w.starts_with("dst") {
            return Err("You must spefify (the comma separated list of) 'src' or 'dst'.".into());
        }
    }
    if words.len() > DIM_MAX {
        return Err(format!("Can't be more src/dst options than {DIM_MAX}."));
    }
    Ok((words.len() as u8, flags))
}

/// parse_dirs_v0 (revision 0): up to IPSET_DIM_MAX - 1 words, one flag word
/// each (IPSET_SRC or IPSET_DST).
fn parse_dirs_v0(s: &str) -> ExtResult<Vec<u32>> {
    let words: Vec<&str> = s.split(',').collect();
    let mut out = Vec::new();
    for w in words.iter().take(DIM_MAX - 1) {
        if w.starts_with("src") {
            out.push(IPSET_SRC);
        } else if w.starts_with("dst") {
            out.push(IPSET_DST);
        } else {
            return Err("You must spefify (the comma separated list of) 'src' or 'dst'.".into());
        }
    }
    if words.len() > DIM_MAX - 1 {
        return Err(format!("Can't be more src/dst options than {DIM_MAX}."));
    }
    Ok(out)
}

/// parse_counter: a whole number within u64 (base 0).
fn parse_counter(s: &str) -> ExtResult<u64> {
    super::parse_uint(s, 0, u64::MAX).ok_or_else(|| format!("Cannot parse {s} as a counter value"))
}

/// Builds the payload; `lookup` gives the kernel index of a set name.
fn parse_with(
    rev: u8,
    opts: &[OptValue],
    lookup: &dyn Fn(&str) -> ExtResult<u16>,
) -> ExtResult<Vec<u8>> {
    let mut p = Payload::new(payload_size(rev));
    let mut have_set = false;
    let mut set_flags = 0u8; // xt_set_info.flags (revisions 1-4)
    let mut flags = 0u32; // the u32 flags of revisions 3/4
    let mut packets: Counter = (IPSET_COUNTER_NONE as u8, 0);
    let mut bytes: Counter = (IPSET_COUNTER_NONE as u8, 0);
    for o in opts {
        if !known(rev, o.name) {
            return Err(unknown_option("set", o));
        }
        match o.name {
            "match-set" | "set" => {
                if have_set {
                    return Err("--match-set can be specified only once".into());
                }
                let name = o.arg();
                let dirs = o.args.get(1).ok_or("--match-set requires two args.")?;
                if name.len() > NAME_MAX {
                    return Err(format!(
                        "setname `{name}' too long, max {NAME_MAX} characters."
                    ));
                }
                let index = lookup(name)?;
                have_set = true;
                if rev == 0 {
                    p.u16(field::V0_INDEX, index);
                    let mut words = parse_dirs_v0(dirs)?;
                    if o.invert {
                        if let Some(w) = words.first_mut() {
                            *w |= IPSET_MATCH_INV;
                        }
                    }
                    for (i, w) in words.iter().enumerate() {
                        p.u32(field::V0_FLAGS + 4 * i, *w);
                    }
                } else {
                    p.u16(field::INDEX, index);
                    let (dim, bits) = parse_dirs(dirs)?;
                    set_flags |= bits;
                    if o.invert {
                        set_flags |= IPSET_INV_MATCH as u8;
                    }
                    p.u8(field::DIM, dim);
                }
            }
            "return-nomatch" => {
                if rev == 2 {
                    // Revision 2 ignores a `!` here.
                    set_flags |= IPSET_RETURN_NOMATCH as u8;
                } else {
                    if o.invert {
                        return Err("--return-nomatch flag cannot be inverted".into());
                    }
                    flags |= IPSET_FLAG_RETURN_NOMATCH;
                }
            }
            "update-counters" => {
                if o.invert {
                    flags |= IPSET_FLAG_SKIP_COUNTER_UPDATE;
                }
            }
            "update-subcounters" => {
                if o.invert {
                    flags |= IPSET_FLAG_SKIP_SUBCOUNTER_UPDATE;
                }
            }
            name => {
                let (which, counter) = match name.split_once('-') {
                    Some(("packets", op)) => ("packets", op),
                    Some((_, op)) => ("bytes", op),
                    None => return Err(unknown_option("set", o)),
                };
                let target = if which == "packets" {
                    &mut packets
                } else {
                    &mut bytes
                };
                if target.0 != IPSET_COUNTER_NONE as u8 {
                    return Err(format!("only one of the --{which}-[eq|lt|gt] is allowed"));
                }
                let op = match (counter, o.invert) {
                    ("eq", false) => IPSET_COUNTER_EQ,
                    ("eq", true) => IPSET_COUNTER_NE,
                    (_, true) => {
                        return Err(format!("--{name} option cannot be inverted"));
                    }
                    ("lt", false) => IPSET_COUNTER_LT,
                    _ => IPSET_COUNTER_GT,
                };
                *target = (op as u8, parse_counter(o.arg())?);
            }
        }
    }
    if !have_set {
        return Err("You must specify `--match-set' with proper arguments".into());
    }
    match rev {
        0 => {}
        1 | 2 => {
            p.u8(field::SET_FLAGS, set_flags);
        }
        3 => {
            p.u8(field::SET_FLAGS, set_flags)
                .u8(field::V3_PACKETS_OP, packets.0)
                .u64(field::V3_PACKETS_VALUE, packets.1)
                .u8(field::V3_BYTES_OP, bytes.0)
                .u64(field::V3_BYTES_VALUE, bytes.1)
                .u32(field::V3_FLAGS, flags);
        }
        _ => {
            p.u8(field::SET_FLAGS, set_flags)
                .u8(field::V4_PACKETS_OP, packets.0)
                .u64(field::V4_PACKETS_VALUE, packets.1)
                .u8(field::V4_BYTES_OP, bytes.0)
                .u64(field::V4_BYTES_VALUE, bytes.1)
                .u32(field::V4_FLAGS, flags);
        }
    }
    Ok(p.finish())
}

/// set_printv3_counter / set_printv4_counter.
fn save_counter(out: &mut String, name: &str, (op, value): Counter) {
    match u32::from(op) {
        IPSET_COUNTER_EQ => out.push_str(&format!(" --{name}-eq {value}")),
        IPSET_COUNTER_NE => out.push_str(&format!(" ! --{name}-eq {value}")),
        IPSET_COUNTER_LT => out.push_str(&format!(" --{name}-lt {value}")),
        IPSET_COUNTER_GT => out.push_str(&format!(" --{name}-gt {value}")),
        _ => {}
    }
}

/// Saves a payload; `name_of` gives the name of a kernel set index.
fn save_with(
    rev: u8,
    data: &[u8],
    name_of: &dyn Fn(u16) -> ExtResult<String>,
    out: &mut String,
) -> ExtResult<()> {
    let r = Reader::new(data, payload_size(rev))?;
    if rev == 0 {
        // print_match_v0
        let first = r.u32(field::V0_FLAGS)?;
        let name = name_of(r.u16(field::V0_INDEX)?)?;
        if first & IPSET_MATCH_INV != 0 {
            out.push_str(" !");
        }
        out.push_str(&format!(" --match-set {name}"));
        for i in 0..DIM_MAX {
            let w = r.u32(field::V0_FLAGS + 4 * i)?;
            if w == 0 {
                break;
            }
            out.push(if i == 0 { ' ' } else { ',' });
            out.push_str(if w & IPSET_SRC != 0 { "src" } else { "dst" });
        }
        return Ok(());
    }
    // print_match
    let set_flags = r.u8(field::SET_FLAGS)?;
    let name = name_of(r.u16(field::INDEX)?)?;
    if set_flags & IPSET_INV_MATCH as u8 != 0 {
        out.push_str(" !");
    }
    out.push_str(&format!(" --match-set {name}"));
    let dim = r.u8(field::DIM)?;
    for i in 1..=dim {
        out.push(if i == 1 { ' ' } else { ',' });
        // Bits past the u8 (a corrupt dim) read as dst, as C's int shift does.
        let src = i < 8 && set_flags & (1 << i) != 0;
        out.push_str(if src { "src" } else { "dst" });
    }
    let (flags, packets, bytes) = match rev {
        1 => return Ok(()),
        2 => {
            if set_flags & IPSET_RETURN_NOMATCH as u8 != 0 {
                out.push_str(" --return-nomatch");
            }
            return Ok(());
        }
        3 => (
            r.u32(field::V3_FLAGS)?,
            (r.u8(field::V3_PACKETS_OP)?, r.u64(field::V3_PACKETS_VALUE)?),
            (r.u8(field::V3_BYTES_OP)?, r.u64(field::V3_BYTES_VALUE)?),
        ),
        _ => (
            r.u32(field::V4_FLAGS)?,
            (r.u8(field::V4_PACKETS_OP)?, r.u64(field::V4_PACKETS_VALUE)?),
            (r.u8(field::V4_BYTES_OP)?, r.u64(field::V4_BYTES_VALUE)?),
        ),
    };
    if flags & IPSET_FLAG_RETURN_NOMATCH != 0 {
        out.push_str(" --return-nomatch");
    }
    if flags & IPSET_FLAG_SKIP_COUNTER_UPDATE != 0 {
        out.push_str(" ! --update-counters");
    }
    if flags & IPSET_FLAG_SKIP_SUBCOUNTER_UPDATE != 0 {
        out.push_str(" ! --update-subcounters");
    }
    save_counter(out, "packets", packets);
    save_counter(out, "bytes", bytes);
    Ok(())
}

struct Set;

impl Codec for Set {
    fn name(&self) -> &'static str {
        "set"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V4, Family::V6]
    }
    fn revisions(&self, family: Family) -> &'static [u8] {
        match family {
            Family::V4 => &[4, 3, 2, 1, 0],
            _ => &[4, 3, 2, 1],
        }
    }
    fn options(&self) -> &'static [OptSpec] {
        OPTIONS
    }

    fn parse(&self, rev: u8, opts: &[OptValue], ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let family = ctx.family;
        parse_with(rev, opts, &|name| set_index(name, family))
    }

    fn save(&self, rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        save_with(rev, data, &set_name, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;

    fn ov(name: &'static str, invert: bool, args: &[&str]) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The sets of the capture namespace: `ipset create s1 hash:ip` got
    /// index 0, `ipset create s2 hash:net,port` index 1.
    fn lookup(name: &str) -> ExtResult<u16> {
        match name {
            "s1" => Ok(0),
            "s2" => Ok(1),
            _ => Err(format!("Set {name} doesn't exist.")),
        }
    }

    fn name_of(index: u16) -> ExtResult<String> {
        match index {
            0 => Ok("s1".into()),
            1 => Ok("s2".into()),
            _ => Err(format!("Set with index {index} in kernel doesn't exist.")),
        }
    }

    fn parse(rev: u8, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let mut v = parse_with(rev, opts, &lookup)?;
        v.resize(xt_align(v.len()), 0);
        Ok(v)
    }

    fn save(rev: u8, data: &[u8]) -> String {
        let mut out = String::new();
        save_with(rev, data, &name_of, &mut out).unwrap();
        out
    }

    // Kernel captures after iptables-legacy-restore (revision 4), with the
    // sets above:
    // `--match-set s1 src`
    const V4_PLAIN: &str = concat!(
        "0000",              // index 0 (s1)
        "01",                // dim 1
        "02",                // flags: dimension 1 is src
        "00000000",          // padding
        "0000000000000000",  // packets.value
        "00 00000000000000", // packets.op NONE, padding
        "0000000000000000",  // bytes.value
        "00 00000000000000", // bytes.op NONE, padding
        "00000000",          // flags
        "00000000",          // padding
    );
    // `! --match-set s2 dst,src --return-nomatch ! --update-counters
    //  ! --update-subcounters --packets-eq 5 --bytes-gt 100`
    const V4_ALL: &str = concat!(
        "0100", // index 1 (s2)
        "02",   // dim 2
        "05",   // flags: INV_MATCH | dimension 2 is src
        "00000000",
        "0500000000000000",  // packets.value 5
        "01 00000000000000", // packets.op EQ
        "6400000000000000",  // bytes.value 100
        "04 00000000000000", // bytes.op GT
        "98000000",          // flags: RETURN_NOMATCH | SKIP_COUNTER_UPDATE | SKIP_SUBCOUNTER_UPDATE
        "00000000",
    );
    // `--match-set s2 src,dst ! --packets-eq 5 ! --bytes-eq 7`
    const V4_NE: &str = concat!(
        "0100 02 02 00000000",
        "0500000000000000 02 00000000000000", // packets NE 5
        "0700000000000000 02 00000000000000", // bytes NE 7
        "00000000 00000000",
    );
    // `--match-set s2 src,dst --packets-lt 5 --bytes-lt 7`
    const V4_LT: &str = concat!(
        "0100 02 02 00000000",
        "0500000000000000 03 00000000000000", // packets LT 5
        "0700000000000000 03 00000000000000", // bytes LT 7
        "00000000 00000000",
    );

    #[test]
    fn rev4_parse_matches_kernel_bytes() {
        assert_eq!(
            parse(4, &[ov("match-set", false, &["s1", "src"])]).unwrap(),
            hex(V4_PLAIN)
        );
        assert_eq!(
            parse(
                4,
                &[
                    ov("match-set", true, &["s2", "dst,src"]),
                    ov("return-nomatch", false, &[]),
                    ov("update-counters", true, &[]),
                    ov("update-subcounters", true, &[]),
                    ov("packets-eq", false, &["5"]),
                    ov("bytes-gt", false, &["100"]),
                ]
            )
            .unwrap(),
            hex(V4_ALL)
        );
        assert_eq!(
            parse(
                4,
                &[
                    ov("match-set", false, &["s2", "src,dst"]),
                    ov("packets-eq", true, &["5"]),
                    ov("bytes-eq", true, &["7"]),
                ]
            )
            .unwrap(),
            hex(V4_NE)
        );
        assert_eq!(
            parse(
                4,
                &[
                    ov("set", false, &["s2", "src,dst"]),
                    ov("packets-lt", false, &["5"]),
                    ov("bytes-lt", false, &["7"]),
                ]
            )
            .unwrap(),
            hex(V4_LT)
        );
    }

    #[test]
    fn rev4_save_matches_iptables_legacy_save() {
        assert_eq!(save(4, &hex(V4_PLAIN)), " --match-set s1 src");
        assert_eq!(
            save(4, &hex(V4_ALL)),
            " ! --match-set s2 dst,src --return-nomatch ! --update-counters \
             ! --update-subcounters --packets-eq 5 --bytes-gt 100"
        );
        assert_eq!(
            save(4, &hex(V4_NE)),
            " --match-set s2 src,dst ! --packets-eq 5 ! --bytes-eq 7"
        );
        assert_eq!(
            save(4, &hex(V4_LT)),
            " --match-set s2 src,dst --packets-lt 5 --bytes-lt 7"
        );
    }

    // Revisions 0-3: kernel captures after iptables-legacy-restore with the
    // higher revisions hidden from its revision probe.
    #[test]
    fn rev3() {
        // The same rule as V4_ALL: counters are { op; value } here.
        let all = hex(concat!(
            "0100 02 05 00000000",
            "01 00000000000000 0500000000000000", // packets EQ 5
            "04 00000000000000 6400000000000000", // bytes GT 100
            "98000000 00000000",
        ));
        assert_eq!(
            parse(
                3,
                &[
                    ov("match-set", true, &["s2", "dst,src"]),
                    ov("return-nomatch", false, &[]),
                    ov("update-counters", true, &[]),
                    ov("update-subcounters", true, &[]),
                    ov("packets-eq", false, &["5"]),
                    ov("bytes-gt", false, &["100"]),
                ]
            )
            .unwrap(),
            all
        );
        assert_eq!(
            save(3, &all),
            " ! --match-set s2 dst,src --return-nomatch ! --update-counters \
             ! --update-subcounters --packets-eq 5 --bytes-gt 100"
        );
        let lt = hex(concat!(
            "0100 02 02 00000000",
            "03 00000000000000 0500000000000000",
            "03 00000000000000 0700000000000000",
            "00000000 00000000",
        ));
        assert_eq!(
            save(3, &lt),
            " --match-set s2 src,dst --packets-lt 5 --bytes-lt 7"
        );
    }

    #[test]
    fn rev2() {
        // `--match-set s1 src --return-nomatch`: flags 0x82
        let plain = hex("0000 01 82 00000000");
        assert_eq!(
            parse(
                2,
                &[
                    ov("match-set", false, &["s1", "src"]),
                    ov("return-nomatch", false, &[])
                ]
            )
            .unwrap(),
            plain
        );
        assert_eq!(save(2, &plain), " --match-set s1 src --return-nomatch");
        // `! --match-set s2 dst,src ! --return-nomatch`: the `!` is ignored.
        let inv = hex("0100 02 85 00000000");
        assert_eq!(
            parse(
                2,
                &[
                    ov("match-set", true, &["s2", "dst,src"]),
                    ov("return-nomatch", true, &[])
                ]
            )
            .unwrap(),
            inv
        );
        assert_eq!(save(2, &inv), " ! --match-set s2 dst,src --return-nomatch");
        assert!(parse(2, &[ov("packets-eq", false, &["1"])]).is_err());
    }

    #[test]
    fn rev1() {
        for (opts, kernel, text) in [
            (
                ov("match-set", false, &["s1", "src"]),
                "0000 01 02 00000000", // index 0, dim 1, src
                " --match-set s1 src",
            ),
            (
                ov("match-set", true, &["s2", "dst,src"]),
                "0100 02 05 00000000", // INV | dim 2 src
                " ! --match-set s2 dst,src",
            ),
            (
                ov("match-set", false, &["s2", "src,dst,src,dst,dst"]),
                "0100 05 0a 00000000", // dims 1 and 3 src
                " --match-set s2 src,dst,src,dst,dst",
            ),
        ] {
            assert_eq!(parse(1, &[opts]).unwrap(), hex(kernel));
            assert_eq!(save(1, &hex(kernel)), text);
        }
        assert!(parse(1, &[ov("return-nomatch", false, &[])])
            .unwrap_err()
            .contains("unknown option"));
    }

    #[test]
    fn rev0() {
        // The kernel fills u.compat (dim, flags: the last flag word's bytes)
        // when it checks the rule; iptables sends zeros there.
        for (opts, sent, kernel_tail, text) in [
            (
                ov("match-set", false, &["s1", "src"]),
                "0000 0000 01000000 00000000 00000000 00000000 00000000 00000000",
                "01020000",
                " --match-set s1 src",
            ),
            (
                ov("match-set", true, &["s2", "dst,src"]),
                "0100 0000 06000000 01000000 00000000 00000000 00000000 00000000",
                "02050000",
                " ! --match-set s2 dst,src",
            ),
            (
                ov("match-set", false, &["s2", "src,dst,src,dst,dst"]),
                "0100 0000 01000000 02000000 01000000 02000000 02000000 00000000",
                "050a0000",
                " --match-set s2 src,dst,src,dst,dst",
            ),
        ] {
            let mut sent = hex(sent);
            sent.extend(hex("00000000"));
            assert_eq!(parse(0, &[opts]).unwrap(), sent);
            let mut kernel = sent.clone();
            kernel[28..32].copy_from_slice(&hex(kernel_tail));
            assert_eq!(save(0, &kernel), text);
        }
        assert!(parse(
            0,
            &[ov("match-set", false, &["s1", "src,src,src,src,src,src"])]
        )
        .unwrap_err()
        .contains("Can't be more src/dst options than 6."));
    }

    #[test]
    fn direction_words() {
        assert_eq!(parse_dirs("src").unwrap(), (1, 0b10));
        assert_eq!(
            parse_dirs("srcXX,dstYY").unwrap(),
            (2, 0b10),
            "3-byte prefix"
        );
        assert_eq!(
            parse_dirs("dst,dst,dst,dst,dst,src").unwrap(),
            (6, 0b100_0000)
        );
        assert!(parse_dirs("src,src,src,src,src,src,src")
            .unwrap_err()
            .contains("Can't be more src/dst options than 6."));
        for bad in ["", "sr", "src,", "any", "src,,dst"] {
            assert!(
                parse_dirs(bad).unwrap_err().contains("'src' or 'dst'"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bad_values_are_refused() {
        let ms = |args: &[&str]| ov("match-set", false, args);
        for (opts, msg) in [
            (vec![], "You must specify `--match-set'"),
            (vec![ov("return-nomatch", false, &[])], "You must specify"),
            (vec![ms(&["nosuch", "src"])], "Set nosuch doesn't exist."),
            (
                vec![ms(&["abcdefghijabcdefghijabcdefghijabc", "src"])],
                "too long, max 31 characters",
            ),
            (vec![ms(&["s1", "src"]), ms(&["s2", "dst"])], "only once"),
            (vec![ms(&["s1", "up"])], "'src' or 'dst'"),
            (vec![ms(&["s1"])], "requires two args"),
            (
                vec![ms(&["s1", "src"]), ov("return-nomatch", true, &[])],
                "--return-nomatch flag cannot be inverted",
            ),
            (
                vec![ms(&["s1", "src"]), ov("packets-gt", true, &["1"])],
                "--packets-gt option cannot be inverted",
            ),
            (
                vec![ms(&["s1", "src"]), ov("bytes-lt", true, &["1"])],
                "--bytes-lt option cannot be inverted",
            ),
            (
                vec![
                    ms(&["s1", "src"]),
                    ov("packets-eq", false, &["1"]),
                    ov("packets-lt", false, &["2"]),
                ],
                "only one of the --packets-[eq|lt|gt] is allowed",
            ),
            (
                vec![ms(&["s1", "src"]), ov("bytes-eq", false, &["-1"])],
                "Cannot parse -1 as a counter value",
            ),
            (
                vec![
                    ms(&["s1", "src"]),
                    ov("bytes-eq", false, &["18446744073709551616"]),
                ],
                "Cannot parse",
            ),
        ] {
            let e = parse(4, &opts).unwrap_err();
            assert!(e.contains(msg), "{opts:?}: {e}");
        }
        // The longest name fits.
        assert!(parse(4, &[ms(&["abcdefghijabcdefghijabcdefghija", "src"])])
            .unwrap_err()
            .contains("doesn't exist"));
        let mut out = String::new();
        assert!(save_with(4, &[0; 20], &name_of, &mut out).is_err());
        assert!(save_with(4, &hex(V4_PLAIN)[..], &|_| Err("gone".into()), &mut out).is_err());
    }
}
