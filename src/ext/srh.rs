//! `-m srh` (ip6t_srh, IPv6 only): fields of the Segment Routing Header.
//!
//! Revision 1 (`ip6t_srh1`) adds the previous, next and last SID
//! (`--srh-psid/--srh-nsid/--srh-lsid ADDR[/MASK]`) to revision 0
//! (`ip6t_srh`); iptables 1.8.9 picks 1 when the kernel has it. Both are
//! parsed and saved.
//!
//! The `-eq`, `-gt` and `-lt` forms of one field share one byte of the
//! kernel struct: libip6t_srh keeps the last value for all of them, so
//! `--srh-segs-left-gt 1 --srh-segs-left-lt 5` would silently become
//! `> 5 and < 5`. That is refused here; equal values are accepted.

use std::mem::{offset_of, size_of};
use std::net::Ipv6Addr;

use super::conntrack::inet_ntop6;
use super::recent::{parse_int_opt, XtFlags, XtOpt, XTOPT_INVERT};
use super::{
    parse_uint, save_inv, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    ip6t_srh, ip6t_srh1, IP6T_SRH_INV_LAST_EQ, IP6T_SRH_INV_LAST_GT, IP6T_SRH_INV_LAST_LT,
    IP6T_SRH_INV_LEN_EQ, IP6T_SRH_INV_LEN_GT, IP6T_SRH_INV_LEN_LT, IP6T_SRH_INV_LSID,
    IP6T_SRH_INV_NEXTHDR, IP6T_SRH_INV_NSID, IP6T_SRH_INV_PSID, IP6T_SRH_INV_SEGS_EQ,
    IP6T_SRH_INV_SEGS_GT, IP6T_SRH_INV_SEGS_LT, IP6T_SRH_INV_TAG, IP6T_SRH_LAST_EQ,
    IP6T_SRH_LAST_GT, IP6T_SRH_LAST_LT, IP6T_SRH_LEN_EQ, IP6T_SRH_LEN_GT, IP6T_SRH_LEN_LT,
    IP6T_SRH_LSID, IP6T_SRH_NEXTHDR, IP6T_SRH_NSID, IP6T_SRH_PSID, IP6T_SRH_SEGS_EQ,
    IP6T_SRH_SEGS_GT, IP6T_SRH_SEGS_LT, IP6T_SRH_TAG,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Srh];

/// Offsets of the fields both revisions share (the same in both structs).
mod field {
    use super::*;
    pub const NEXT_HDR: usize = offset_of!(ip6t_srh1, next_hdr);
    pub const HDR_LEN: usize = offset_of!(ip6t_srh1, hdr_len);
    pub const SEGS_LEFT: usize = offset_of!(ip6t_srh1, segs_left);
    pub const LAST_ENTRY: usize = offset_of!(ip6t_srh1, last_entry);
    pub const TAG: usize = offset_of!(ip6t_srh1, tag);
    const _: () = assert!(
        NEXT_HDR == offset_of!(ip6t_srh, next_hdr)
            && HDR_LEN == offset_of!(ip6t_srh, hdr_len)
            && SEGS_LEFT == offset_of!(ip6t_srh, segs_left)
            && LAST_ENTRY == offset_of!(ip6t_srh, last_entry)
            && TAG == offset_of!(ip6t_srh, tag)
    );
}

/// Offsets that differ between the revisions.
mod field0 {
    use super::*;
    pub const MT_FLAGS: usize = offset_of!(ip6t_srh, mt_flags);
    pub const MT_INVFLAGS: usize = offset_of!(ip6t_srh, mt_invflags);
}

mod field1 {
    use super::*;
    pub const PSID_ADDR: usize = offset_of!(ip6t_srh1, psid_addr);
    pub const NSID_ADDR: usize = offset_of!(ip6t_srh1, nsid_addr);
    pub const LSID_ADDR: usize = offset_of!(ip6t_srh1, lsid_addr);
    pub const PSID_MSK: usize = offset_of!(ip6t_srh1, psid_msk);
    pub const NSID_MSK: usize = offset_of!(ip6t_srh1, nsid_msk);
    pub const LSID_MSK: usize = offset_of!(ip6t_srh1, lsid_msk);
    pub const MT_FLAGS: usize = offset_of!(ip6t_srh1, mt_flags);
    pub const MT_INVFLAGS: usize = offset_of!(ip6t_srh1, mt_invflags);
}

/// How an option is stored.
#[derive(Clone, Copy)]
enum Slot {
    /// One byte of the struct (offset), shared by the eq/gt/lt forms.
    U8(usize),
    /// The host-order u16 tag.
    Tag,
    /// A SID: (address offset, mask offset); revision 1 only.
    Sid(usize, usize),
}

/// One libip6t_srh option: name, flag, inversion flag and storage, in the
/// table's order (which is also save's order); the index is the option id.
struct SrhOpt {
    name: &'static str,
    flag: u32,
    inv: u32,
    slot: Slot,
}

const fn o(name: &'static str, flag: u32, inv: u32, slot: Slot) -> SrhOpt {
    SrhOpt {
        name,
        flag,
        inv,
        slot,
    }
}

static OPTS: [SrhOpt; 14] = [
    o(
        "srh-next-hdr",
        IP6T_SRH_NEXTHDR,
        IP6T_SRH_INV_NEXTHDR,
        Slot::U8(field::NEXT_HDR),
    ),
    o(
        "srh-hdr-len-eq",
        IP6T_SRH_LEN_EQ,
        IP6T_SRH_INV_LEN_EQ,
        Slot::U8(field::HDR_LEN),
    ),
    o(
        "srh-hdr-len-gt",
        IP6T_SRH_LEN_GT,
        IP6T_SRH_INV_LEN_GT,
        Slot::U8(field::HDR_LEN),
    ),
    o(
        "srh-hdr-len-lt",
        IP6T_SRH_LEN_LT,
        IP6T_SRH_INV_LEN_LT,
        Slot::U8(field::HDR_LEN),
    ),
    o(
        "srh-segs-left-eq",
        IP6T_SRH_SEGS_EQ,
        IP6T_SRH_INV_SEGS_EQ,
        Slot::U8(field::SEGS_LEFT),
    ),
    o(
        "srh-segs-left-gt",
        IP6T_SRH_SEGS_GT,
        IP6T_SRH_INV_SEGS_GT,
        Slot::U8(field::SEGS_LEFT),
    ),
    o(
        "srh-segs-left-lt",
        IP6T_SRH_SEGS_LT,
        IP6T_SRH_INV_SEGS_LT,
        Slot::U8(field::SEGS_LEFT),
    ),
    o(
        "srh-last-entry-eq",
        IP6T_SRH_LAST_EQ,
        IP6T_SRH_INV_LAST_EQ,
        Slot::U8(field::LAST_ENTRY),
    ),
    o(
        "srh-last-entry-gt",
        IP6T_SRH_LAST_GT,
        IP6T_SRH_INV_LAST_GT,
        Slot::U8(field::LAST_ENTRY),
    ),
    o(
        "srh-last-entry-lt",
        IP6T_SRH_LAST_LT,
        IP6T_SRH_INV_LAST_LT,
        Slot::U8(field::LAST_ENTRY),
    ),
    o("srh-tag", IP6T_SRH_TAG, IP6T_SRH_INV_TAG, Slot::Tag),
    o(
        "srh-psid",
        IP6T_SRH_PSID,
        IP6T_SRH_INV_PSID,
        Slot::Sid(field1::PSID_ADDR, field1::PSID_MSK),
    ),
    o(
        "srh-nsid",
        IP6T_SRH_NSID,
        IP6T_SRH_INV_NSID,
        Slot::Sid(field1::NSID_ADDR, field1::NSID_MSK),
    ),
    o(
        "srh-lsid",
        IP6T_SRH_LSID,
        IP6T_SRH_INV_LSID,
        Slot::Sid(field1::LSID_ADDR, field1::LSID_MSK),
    ),
];

/// Revision 0 has the first 11 options.
const REV0_OPTS: usize = 11;

const fn xt_table() -> [XtOpt; 14] {
    let mut t = [XtOpt::new("", 0, Arg::One, XTOPT_INVERT); 14];
    let mut i = 0;
    while i < 14 {
        t[i] = XtOpt::new(OPTS[i].name, i as u8, Arg::One, XTOPT_INVERT);
        i += 1;
    }
    t
}

/// libip6t_srh's option tables (revision 0 is the first REV0_OPTS entries).
static TABLE: [XtOpt; 14] = xt_table();
static SPECS: [OptSpec; 14] = XtOpt::specs(&TABLE);

/// XTTYPE_HOSTMASK for IPv6: `HOST[/MASK]`, the address kept unmasked;
/// MASK a prefix length 0-128 or an address-form mask. A mask with holes
/// (which libxtables quietly turns into /128) is refused.
fn parse_sid(o: &OptValue) -> ExtResult<([u8; 16], [u8; 16])> {
    let arg = o.arg();
    let (host, mask) = match arg.split_once('/') {
        Some((h, m)) => (h, Some(m)),
        None => (arg, None),
    };
    let addr = match host.parse::<Ipv6Addr>() {
        Ok(a) => a.octets(),
        Err(_) => {
            let all = crate::sys::resolve_ipv6(host).unwrap_or_default();
            let first = *all
                .first()
                .ok_or_else(|| format!("getaddrinfo: `{host}' is no IPv6 address or host name"))?;
            if all.iter().any(|a| *a != first) {
                return Err(format!("{host} resolves to more than one address"));
            }
            first.octets()
        }
    };
    let Some(mask) = mask else {
        return Ok((addr, [0xff; 16]));
    };
    let bad = || {
        format!(
            "srh: bad value for option \"--{}\", neither a valid network mask nor valid CIDR (0-128).",
            o.name
        )
    };
    let len = match parse_uint(mask, 0, 128) {
        Some(l) => l as u32,
        None => {
            let m = mask.parse::<Ipv6Addr>().map_err(|_| bad())?;
            mask_to_cidr(&m.octets()).ok_or_else(|| {
                format!(
                    "srh: mask `{mask}' of \"--{}\" is not contiguous (libxtables would use /128)",
                    o.name
                )
            })?
        }
    };
    let bits = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    Ok((addr, bits.to_be_bytes()))
}

/// xtables_ip6mask_to_cidr: the prefix length, `None` for a mask with holes.
fn mask_to_cidr(m: &[u8; 16]) -> Option<u32> {
    let v = u128::from_be_bytes(*m);
    let len = v.leading_ones();
    (v.checked_shl(len).unwrap_or(0) == 0).then_some(len)
}

struct Srh;

impl Srh {
    fn flag_offsets(rev: u8) -> (usize, usize, usize) {
        if rev == 0 {
            (field0::MT_FLAGS, field0::MT_INVFLAGS, size_of::<ip6t_srh>())
        } else {
            (
                field1::MT_FLAGS,
                field1::MT_INVFLAGS,
                size_of::<ip6t_srh1>(),
            )
        }
    }
}

impl Codec for Srh {
    fn name(&self) -> &'static str {
        "srh"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V6]
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[1, 0]
    }
    fn options(&self) -> &'static [OptSpec] {
        &SPECS
    }

    fn parse(&self, rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let (flags_off, inv_off, size) = Self::flag_offsets(rev);
        let table = if rev == 0 {
            &TABLE[..REV0_OPTS]
        } else {
            &TABLE[..]
        };
        let mut p = Payload::new(size);
        let (mut flags, mut inv) = (0u32, 0u32);
        // The option and value last stored in each shared byte.
        let mut stored: Vec<(usize, &'static str, u8)> = Vec::new();
        let mut seen = XtFlags::default();
        for ov in opts {
            let id = seen.take("srh", table, ov)?;
            let opt = &OPTS[usize::from(id)];
            match opt.slot {
                Slot::U8(off) => {
                    let v = parse_int_opt("srh", ov, 0, u8::MAX.into())? as u8;
                    if let Some((_, other, old)) = stored.iter().find(|(o, _, _)| *o == off) {
                        if *old != v {
                            return Err(format!(
                                "srh: \"--{}\" and \"--{other}\" share one field of the kernel's struct; \
                                 give them the same value ({v} and {old} would become {v} for both)",
                                opt.name
                            ));
                        }
                    }
                    stored.push((off, opt.name, v));
                    p.u8(off, v);
                }
                Slot::Tag => {
                    let v = parse_int_opt("srh", ov, 0, u16::MAX.into())?;
                    p.u16(field::TAG, v as u16);
                }
                Slot::Sid(addr_off, mask_off) => {
                    let (addr, mask) = parse_sid(ov)?;
                    p.bytes(addr_off, &addr).bytes(mask_off, &mask);
                }
            }
            flags |= opt.flag;
            if ov.invert {
                inv |= opt.inv;
            }
        }
        p.u16(flags_off, flags as u16).u16(inv_off, inv as u16);
        Ok(p.finish())
    }

    fn save(&self, rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let (flags_off, inv_off, size) = Self::flag_offsets(rev);
        let r = Reader::new(data, size)?;
        let flags = u32::from(r.u16(flags_off)?);
        let inv = u32::from(r.u16(inv_off)?);
        let count = if rev == 0 { REV0_OPTS } else { OPTS.len() };
        for opt in &OPTS[..count] {
            if flags & opt.flag == 0 {
                continue;
            }
            save_inv(out, inv & opt.inv != 0);
            out.push_str(&format!(" --{} ", opt.name));
            match opt.slot {
                Slot::U8(off) => out.push_str(&r.u8(off)?.to_string()),
                Slot::Tag => out.push_str(&r.u16(field::TAG)?.to_string()),
                Slot::Sid(addr_off, mask_off) => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(r.bytes(addr_off, 16)?);
                    let mut m = [0u8; 16];
                    m.copy_from_slice(r.bytes(mask_off, 16)?);
                    // A mask with holes prints as %u of -1, as srh1_save does.
                    let len = mask_to_cidr(&m).unwrap_or(u32::MAX);
                    out.push_str(&format!("{}/{len}", inet_ntop6(&a)));
                }
            }
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
    fn val(name: &'static str, arg: &str) -> OptValue<'static> {
        ov(name, false, arg)
    }
    fn inv(name: &'static str, arg: &str) -> OptValue<'static> {
        ov(name, true, arg)
    }

    fn with_ctx<T>(f: impl FnOnce(&RuleContext) -> T) -> T {
        let ip = IpMatch::any(Family::V6);
        f(&RuleContext {
            family: Family::V6,
            ip: &ip,
            table: "filter",
        })
    }

    fn parse(rev: u8, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        with_ctx(|ctx| Srh.parse(rev, opts, ctx)).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(rev: u8, data: &[u8]) -> ExtResult<String> {
        let mut out = String::new();
        with_ctx(|ctx| Srh.save(rev, data, ctx, &mut out))?;
        Ok(out)
    }

    /// Revision 1: next_hdr, hdr_len, segs_left, last_entry, tag (host
    /// order), padding, then the three SIDs, the three masks, mt_flags,
    /// mt_invflags (host order), padding.
    fn rev1(head: &str, sids: [&str; 3], masks: [&str; 3], flags: &str) -> Vec<u8> {
        let z = "00000000000000000000000000000000";
        let pick = |s: &str| {
            if s.is_empty() {
                z.to_string()
            } else {
                s.to_string()
            }
        };
        // Two bytes of padding align the addresses to 4.
        let mut s = format!("{head} 0000");
        for x in sids.iter().chain(masks.iter()) {
            s.push_str(&pick(x));
        }
        // mt_flags, mt_invflags, then padding to XT_ALIGN.
        s.push_str(&format!("{flags} 00000000"));
        hex(&s)
    }

    // Captured from the kernel after ip6tables-legacy-restore (tests/rules6/srh.rules).
    /// `--srh-next-hdr 17`
    fn next_hdr() -> Vec<u8> {
        rev1("11 00 00 00 0000", ["", "", ""], ["", "", ""], "0100 0000")
    }
    /// `! --srh-next-hdr 6 --srh-hdr-len-eq 4 ! --srh-segs-left-gt 1
    /// --srh-last-entry-lt 5 ! --srh-tag 100`
    fn mixed() -> Vec<u8> {
        rev1("06 04 01 05 6400", ["", "", ""], ["", "", ""], "2306 2104")
    }
    /// `! --srh-hdr-len-gt 2 --srh-segs-left-eq 3 ! --srh-last-entry-eq 0 --srh-tag 65535`
    fn mixed2() -> Vec<u8> {
        rev1("00 02 03 00 ffff", ["", "", ""], ["", "", ""], "9404 8400")
    }
    /// `--srh-hdr-len-lt 9 ! --srh-segs-left-lt 7 ! --srh-last-entry-gt 2`
    fn mixed3() -> Vec<u8> {
        rev1("00 09 07 02 0000", ["", "", ""], ["", "", ""], "4801 4001")
    }
    /// `--srh-psid 2001:db8::1/64 ! --srh-nsid 2001:db8::2 --srh-lsid fc00::/ffff:ffff::`
    fn sids() -> Vec<u8> {
        rev1(
            "00 00 00 00 0000",
            [
                "20010db8000000000000000000000001",
                "20010db8000000000000000000000002",
                "fc000000000000000000000000000000",
            ],
            [
                "ffffffffffffffff0000000000000000",
                "ffffffffffffffffffffffffffffffff",
                "ffffffff000000000000000000000000",
            ],
            "0038 0010",
        )
    }
    /// `! --srh-psid ::/0 --srh-nsid ::1.2.3.4/96 ! --srh-lsid ::1`
    fn sids2() -> Vec<u8> {
        rev1(
            "00 00 00 00 0000",
            [
                "",
                "00000000000000000000000001020304",
                "00000000000000000000000000000001",
            ],
            [
                "",
                "ffffffffffffffffffffffff00000000",
                "ffffffffffffffffffffffffffffffff",
            ],
            "0038 0028",
        )
    }
    /// `--srh-lsid 2001:db8:0:0:1::1/127 --srh-next-hdr 0`
    fn lsid127() -> Vec<u8> {
        rev1(
            "00 00 00 00 0000",
            ["", "", "20010db8000000000001000000000001"],
            ["", "", "fffffffffffffffffffffffffffffffe"],
            "0120 0000",
        )
    }

    // Revision 0, captured with a libip6t_srh.so that registers only
    // revision 0 (XTABLES_LIBDIR): next_hdr, hdr_len, segs_left,
    // last_entry, tag, mt_flags, mt_invflags (host order), padding.
    /// `! --srh-next-hdr 6 --srh-hdr-len-eq 4 ! --srh-segs-left-gt 1
    /// --srh-last-entry-lt 5 ! --srh-tag 100`
    const REV0_MIXED: &str = "06 04 01 05 6400 2306 2104 000000000000";
    /// `--srh-hdr-len-gt 2 ! --srh-hdr-len-lt 2 --srh-segs-left-lt 9
    /// ! --srh-last-entry-eq 0 --srh-last-entry-gt 0 ! --srh-segs-left-eq 9`
    const REV0_SHARED: &str = "00 02 09 00 0000 dc01 9800 000000000000";

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(parse(1, &[val("srh-next-hdr", "17")]).unwrap(), next_hdr());
        let mixed_opts = [
            inv("srh-next-hdr", "6"),
            val("srh-hdr-len-eq", "4"),
            inv("srh-segs-left-gt", "1"),
            val("srh-last-entry-lt", "5"),
            inv("srh-tag", "100"),
        ];
        assert_eq!(parse(1, &mixed_opts).unwrap(), mixed());
        assert_eq!(
            parse(
                1,
                &[
                    inv("srh-hdr-len-gt", "2"),
                    val("srh-segs-left-eq", "3"),
                    inv("srh-last-entry-eq", "0"),
                    val("srh-tag", "65535"),
                ]
            )
            .unwrap(),
            mixed2()
        );
        assert_eq!(
            parse(
                1,
                &[
                    val("srh-hdr-len-lt", "9"),
                    inv("srh-segs-left-lt", "7"),
                    inv("srh-last-entry-gt", "2"),
                ]
            )
            .unwrap(),
            mixed3()
        );
        assert_eq!(
            parse(
                1,
                &[
                    val("srh-psid", "2001:db8::1/64"),
                    inv("srh-nsid", "2001:db8::2"),
                    val("srh-lsid", "fc00::/ffff:ffff::"),
                ]
            )
            .unwrap(),
            sids()
        );
        assert_eq!(
            parse(
                1,
                &[
                    inv("srh-psid", "::/0"),
                    val("srh-nsid", "::1.2.3.4/96"),
                    inv("srh-lsid", "::1"),
                ]
            )
            .unwrap(),
            sids2()
        );
        assert_eq!(
            parse(
                1,
                &[
                    val("srh-lsid", "2001:db8:0:0:1::1/127"),
                    val("srh-next-hdr", "0")
                ]
            )
            .unwrap(),
            lsid127()
        );
        assert_eq!(parse(0, &mixed_opts).unwrap(), hex(REV0_MIXED));
        assert_eq!(
            parse(
                0,
                &[
                    val("srh-hdr-len-gt", "2"),
                    inv("srh-hdr-len-lt", "2"),
                    val("srh-segs-left-lt", "9"),
                    inv("srh-last-entry-eq", "0"),
                    val("srh-last-entry-gt", "0"),
                    inv("srh-segs-left-eq", "9"),
                ]
            )
            .unwrap(),
            hex(REV0_SHARED)
        );
    }

    #[test]
    fn save_matches_ip6tables_legacy_save() {
        let cases = [
            (next_hdr(), " --srh-next-hdr 17"),
            (
                mixed(),
                " ! --srh-next-hdr 6 --srh-hdr-len-eq 4 ! --srh-segs-left-gt 1 --srh-last-entry-lt 5 ! --srh-tag 100",
            ),
            (
                mixed2(),
                " ! --srh-hdr-len-gt 2 --srh-segs-left-eq 3 ! --srh-last-entry-eq 0 --srh-tag 65535",
            ),
            (
                mixed3(),
                " --srh-hdr-len-lt 9 ! --srh-segs-left-lt 7 ! --srh-last-entry-gt 2",
            ),
            (
                sids(),
                " --srh-psid 2001:db8::1/64 ! --srh-nsid 2001:db8::2/128 --srh-lsid fc00::/32",
            ),
            (
                sids2(),
                " ! --srh-psid ::/0 --srh-nsid ::1.2.3.4/96 ! --srh-lsid ::1/128",
            ),
            (
                lsid127(),
                " --srh-next-hdr 0 --srh-lsid 2001:db8::1:0:0:1/127",
            ),
        ];
        for (fx, text) in cases {
            assert_eq!(save(1, &fx).unwrap(), text);
        }
        assert_eq!(
            save(0, &hex(REV0_MIXED)).unwrap(),
            " ! --srh-next-hdr 6 --srh-hdr-len-eq 4 ! --srh-segs-left-gt 1 --srh-last-entry-lt 5 ! --srh-tag 100"
        );
        assert_eq!(
            save(0, &hex(REV0_SHARED)).unwrap(),
            " --srh-hdr-len-gt 2 ! --srh-hdr-len-lt 2 ! --srh-segs-left-eq 9 --srh-segs-left-lt 9 ! --srh-last-entry-eq 0 --srh-last-entry-gt 0"
        );
        assert_eq!(
            save(
                1,
                &rev1("00 00 00 00 0000", ["", "", ""], ["", "", ""], "0000 0000")
            )
            .unwrap(),
            ""
        );
    }

    #[test]
    fn bad_values_are_refused() {
        for (rev, opts) in [
            (1, vec![val("srh-next-hdr", "256")]),
            (1, vec![val("srh-tag", "65536")]),
            (1, vec![val("srh-tag", "-1")]),
            (1, vec![val("srh-hdr-len-eq", "x")]),
            (1, vec![val("srh-psid", "2001:db8::1/129")]),
            (1, vec![val("srh-psid", "2001:db8::1/")]),
            (1, vec![val("srh-psid", "2001:db8::1/ffff::ffff")]),
            (1, vec![val("srh-psid", "1.2.3.4")]),
            (1, vec![val("srh-nsid", "2001:db8::1/64/1")]),
            (1, vec![val("srh-lsid", "")]),
            (0, vec![val("srh-psid", "::1")]),
            (1, vec![val("srh-tag", "1"), val("srh-tag", "1")]),
            (
                1,
                vec![val("srh-segs-left-gt", "1"), val("srh-segs-left-lt", "5")],
            ),
            (
                1,
                vec![val("srh-hdr-len-eq", "1"), inv("srh-hdr-len-gt", "2")],
            ),
        ] {
            assert!(parse(rev, &opts).is_err(), "rev {rev} {opts:?} accepted");
        }
        assert!(
            save(1, &hex(REV0_MIXED)).is_err(),
            "rev 0 bytes are too short for rev 1"
        );
        assert!(save(0, &[0u8; 9]).is_err(), "short payload must not panic");
    }
}
