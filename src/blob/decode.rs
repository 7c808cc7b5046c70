//! Kernel blob → model, as libiptc parses what GET_ENTRIES returns.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::layout::{self, entry_layout, EntryLayout, EXT_HEADER};
use crate::error::{Error, Result};
use crate::rules::{
    ip_flags, Chain, Counters, Extension, Family, Interface, IpMatch, Rule, Table, Target, Verdict,
    HOOK_NAMES,
};

struct Raw<'a> {
    off: usize,
    ip: IpMatch,
    counters: Counters,
    matches: Vec<Extension>,
    target_name: String,
    target_rev: u8,
    target_data: &'a [u8],
    next: usize,
}

fn bad(table: &str, msg: impl Into<String>) -> Error {
    Error::Kernel {
        table: table.to_string(),
        message: msg.into(),
    }
}

fn get<'a>(table: &str, blob: &'a [u8], off: usize, len: usize) -> Result<&'a [u8]> {
    blob.get(off..off + len)
        .ok_or_else(|| bad(table, format!("entry data out of bounds at offset {off}")))
}

fn u16_at(table: &str, blob: &[u8], off: usize) -> Result<u16> {
    let b = get(table, blob, off, 2)?;
    Ok(u16::from_ne_bytes([b[0], b[1]]))
}

fn u64_at(table: &str, blob: &[u8], off: usize) -> Result<u64> {
    let b = get(table, blob, off, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(u64::from_ne_bytes(a))
}

fn cname(b: &[u8]) -> String {
    crate::text::from_bytes(&b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]).into_owned()
}

fn addr(family: Family, b: &[u8]) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])),
        Family::V6 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[..16]);
            IpAddr::V6(Ipv6Addr::from(a))
        }
    }
}

fn read_entry<'a>(
    table: &str,
    family: Family,
    l: &EntryLayout,
    blob: &'a [u8],
    off: usize,
) -> Result<Raw<'a>> {
    let e = get(table, blob, off, l.size)?;
    let target_offset = u16_at(table, e, l.target_offset)? as usize;
    let next = u16_at(table, e, l.next_offset)? as usize;
    if next < l.size
        || target_offset < l.size
        || target_offset + EXT_HEADER > next
        || off + next > blob.len()
    {
        return Err(bad(table, format!("malformed entry at offset {off}")));
    }
    let iface = |n: usize, m: usize| -> Interface {
        let mut i = Interface::default();
        i.name.copy_from_slice(&e[n..n + 16]);
        i.mask.copy_from_slice(&e[m..m + 16]);
        i
    };
    let ip = IpMatch {
        src: addr(family, &e[l.src..]),
        dst: addr(family, &e[l.dst..]),
        src_mask: addr(family, &e[l.smsk..]),
        dst_mask: addr(family, &e[l.dmsk..]),
        in_iface: iface(l.iniface, l.iniface_mask),
        out_iface: iface(l.outiface, l.outiface_mask),
        proto: u16_at(table, e, l.proto)?,
        tos: l.tos.map(|t| e[t]).unwrap_or(0),
        flags: e[l.flags],
        invflags: e[l.invflags],
    };
    let counters = Counters {
        packets: u64_at(table, e, l.counters)?,
        bytes: u64_at(table, e, l.counters + 8)?,
    };
    let mut matches = Vec::new();
    let mut m = off + l.size;
    while m < off + target_offset {
        let size = u16_at(table, blob, m + layout::EXT_SIZE)? as usize;
        if size < EXT_HEADER || m + size > off + target_offset {
            return Err(bad(
                table,
                format!("malformed match in entry at offset {off}"),
            ));
        }
        let h = get(table, blob, m, size)?;
        matches.push(Extension {
            name: cname(&h[layout::EXT_NAME..layout::EXT_NAME + layout::EXT_NAME_LEN]).into(),
            revision: h[layout::EXT_REVISION],
            data: h[EXT_HEADER..].to_vec(),
        });
        m += size;
    }
    let t = off + target_offset;
    let tsize = u16_at(table, blob, t + layout::EXT_SIZE)? as usize;
    if tsize < EXT_HEADER || t + tsize > off + next {
        return Err(bad(
            table,
            format!("malformed target in entry at offset {off}"),
        ));
    }
    let th = get(table, blob, t, tsize)?;
    Ok(Raw {
        off,
        ip,
        counters,
        matches,
        target_name: cname(&th[layout::EXT_NAME..layout::EXT_NAME + layout::EXT_NAME_LEN]),
        target_rev: th[layout::EXT_REVISION],
        target_data: &th[EXT_HEADER..],
        next,
    })
}

fn verdict_of(raw: &Raw) -> Option<i32> {
    if !raw.target_name.is_empty() || raw.target_data.len() < 4 {
        return None;
    }
    Some(i32::from_ne_bytes([
        raw.target_data[0],
        raw.target_data[1],
        raw.target_data[2],
        raw.target_data[3],
    ]))
}

/// The verdict of the policy entry of hook `h`: ACCEPT or DROP.
fn policy_of(name: &str, h: usize, r: &Raw) -> Result<Verdict> {
    verdict_of(r).and_then(Verdict::from_kernel).ok_or_else(|| {
        bad(
            name,
            format!("policy of {} is not ACCEPT or DROP", HOOK_NAMES[h]),
        )
    })
}

/// Decodes a table from its GET_INFO facts and GET_ENTRIES blob.
pub fn decode_table(
    family: Family,
    name: &str,
    valid_hooks: u32,
    hook_entry: [u32; 5],
    underflow: [u32; 5],
    blob: &[u8],
) -> Result<Table> {
    let l = entry_layout(family);
    let mut raws = Vec::new();
    let mut off = 0;
    while off < blob.len() {
        let r = read_entry(name, family, l, blob, off)?;
        off += r.next;
        raws.push(r);
    }
    // Pass 1: chain starts (user chains: the entry after the ERROR head).
    let mut starts: crate::fasthash::FastMap<usize, String> = Default::default();
    for (i, r) in raws.iter().enumerate() {
        if r.target_name == "ERROR" && i + 1 < raws.len() {
            starts.insert(raws[i + 1].off, cname(r.target_data));
        }
    }
    let hook_at =
        |off: usize| (0..5).find(|&h| valid_hooks & (1 << h) != 0 && hook_entry[h] as usize == off);
    let goto_bit = if family == Family::V4 {
        ip_flags::GOTO
    } else {
        ip_flags::GOTO6
    };

    let mut chains: Vec<Chain> = Vec::new();
    let mut cur: Option<(Chain, Option<usize>)> = None;
    for (i, r) in raws.iter().enumerate() {
        if r.target_name == "ERROR" {
            if let Some((c, _)) = cur.take() {
                chains.push(c);
            }
            if i + 1 < raws.len() {
                cur = Some((Chain::user(&cname(r.target_data)), None));
            }
            continue;
        }
        if let Some(h) = hook_at(r.off) {
            if let Some((c, _)) = cur.take() {
                chains.push(c);
            }
            cur = Some((
                Chain {
                    name: HOOK_NAMES[h].to_string(),
                    policy: Some(Verdict::Accept),
                    counters: Counters::default(),
                    rules: vec![],
                    origin: None,
                },
                Some(h),
            ));
        }
        let Some((chain, hook)) = cur.as_mut() else {
            return Err(bad(
                name,
                format!("entry at offset {} belongs to no chain", r.off),
            ));
        };
        if let Some(h) = *hook {
            if underflow[h] as usize == r.off {
                let v = policy_of(name, h, r)?;
                chain.policy = Some(v);
                chain.counters = r.counters;
                chain.origin = Some((i as u32, r.counters));
                let (c, _) = cur.take().expect("current chain");
                chains.push(c);
                continue;
            }
        } else if verdict_of(r) == Some(Verdict::Return.kernel_value())
            && r.matches.is_empty()
            && raws.get(i + 1).is_some_and(|n| n.target_name == "ERROR")
            && r.ip == IpMatch::any(family)
        {
            // The chain's RETURN tail.
            continue;
        }
        let target = match verdict_of(r) {
            Some(v) if v < 0 => Target::Verdict(
                Verdict::from_kernel(v).ok_or_else(|| bad(name, format!("unknown verdict {v}")))?,
            ),
            Some(v) if v as usize == r.off + r.next => Target::Fallthrough,
            Some(v) => {
                let c = starts.get(&(v as usize)).ok_or_else(|| {
                    bad(
                        name,
                        format!(
                            "rule at offset {} jumps to offset {v}, which starts no chain",
                            r.off
                        ),
                    )
                })?;
                if r.ip.flags & goto_bit != 0 {
                    Target::Goto(c.clone())
                } else {
                    Target::Jump(c.clone())
                }
            }
            None => Target::Extension(Extension {
                name: r.target_name.clone().into(),
                revision: r.target_rev,
                data: r.target_data.to_vec(),
            }),
        };
        let mut ip = r.ip.clone();
        if matches!(target, Target::Goto(_)) {
            ip.flags &= !goto_bit;
        }
        chain.rules.push(Rule {
            ip,
            matches: r.matches.clone(),
            target,
            counters: r.counters,
            origin: Some((i as u32, Counters::default())),
            line: None,
        });
    }
    if let Some((c, _)) = cur.take() {
        chains.push(c);
    }
    Ok(Table {
        name: name.to_string(),
        chains,
    })
}

/// The built-in chains of a table with their policies and policy counters,
/// no rules: what survives a flush (`*table` without `-n`). Only the policy
/// entries are decoded; the rest of the blob is walked by `next_offset`.
/// Building a flushed table from it gives the same table as building from
/// the whole decoded table, at a fraction of the cost on big tables.
pub fn decode_policies(
    family: Family,
    name: &str,
    valid_hooks: u32,
    underflow: [u32; 5],
    blob: &[u8],
) -> Result<Table> {
    let l = entry_layout(family);
    let mut chains: Vec<Chain> = Vec::new();
    let (mut off, mut index) = (0usize, 0u32);
    while off < blob.len() {
        let e = get(name, blob, off, l.size)?;
        let next = u16_at(name, e, l.next_offset)? as usize;
        if next < l.size || off + next > blob.len() {
            return Err(bad(name, format!("malformed entry at offset {off}")));
        }
        if let Some(h) =
            (0..5).find(|&h| valid_hooks & (1 << h) != 0 && underflow[h] as usize == off)
        {
            let r = read_entry(name, family, l, blob, off)?;
            let v = policy_of(name, h, &r)?;
            chains.push(Chain {
                name: HOOK_NAMES[h].to_string(),
                policy: Some(v),
                counters: r.counters,
                rules: vec![],
                origin: Some((index, r.counters)),
            });
        }
        off += next;
        index += 1;
    }
    chains.sort_by_key(|c| HOOK_NAMES.iter().position(|h| *h == c.name));
    Ok(Table {
        name: name.to_string(),
        chains,
    })
}
