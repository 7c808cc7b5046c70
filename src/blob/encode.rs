//! Model → kernel blob, laid out as libiptc lays it out:
//! built-in chains in hook order (rules, then the policy entry), then user
//! chains sorted by name (an ERROR head carrying the name, the rules, a
//! RETURN tail), and a final ERROR entry named "ERROR".

use std::net::IpAddr;

use super::layout::{self, entry_layout, EntryLayout, ERROR_TARGET, EXT_HEADER, STANDARD_TARGET};
use crate::error::{Error, Result};
use crate::rules::{
    ip_flags, Counters, Extension, Family, IpMatch, Rule, Table, Target, Verdict, HOOK_NAMES,
};

/// A table ready for `IPT_SO_SET_REPLACE`.
#[derive(Debug, Clone)]
pub struct EncodedTable {
    /// Table name.
    pub name: String,
    /// Bitmask of the hooks the table has.
    pub valid_hooks: u32,
    /// Offset of each hook's first entry.
    pub hook_entry: [u32; 5],
    /// Offset of each hook's policy entry.
    pub underflow: [u32; 5],
    /// Number of entries.
    pub num_entries: u32,
    /// [`layout::REPLACE_ROOM`] bytes of room for the request header, then
    /// the entries (see [`EncodedTable::entries`]).
    buf: Vec<u8>,
    /// Per entry: the counters to add after the replace, or the live entry
    /// whose counters (minus a base) carry over instead. Empty when every
    /// entry starts from zero (a restore without `-c` that takes the direct
    /// path: 48 bytes an entry saved, 8 MB at 100k rules); tables compare
    /// equal with or without such zeros.
    pub counters: Vec<CounterSlot>,
}

impl PartialEq for EncodedTable {
    fn eq(&self, other: &EncodedTable) -> bool {
        self.name == other.name
            && self.valid_hooks == other.valid_hooks
            && self.hook_entry == other.hook_entry
            && self.underflow == other.underflow
            && self.num_entries == other.num_entries
            && self.entries() == other.entries()
            && same_counters(&self.counters, &other.counters)
    }
}

/// Counters to add, where an empty list means none (every one zero).
fn same_counters(a: &[CounterSlot], b: &[CounterSlot]) -> bool {
    let zero = |c: &[CounterSlot]| c.iter().all(|s| *s == (Counters::default(), None));
    match (a.is_empty(), b.is_empty()) {
        (true, false) => zero(b),
        (false, true) => zero(a),
        _ => a == b,
    }
}

/// One entry's counters to add, or the live entry (and base) they carry
/// over from.
pub type CounterSlot = (Counters, Option<(u32, Counters)>);

impl Eq for EncodedTable {}

impl EncodedTable {
    /// A table as GET_INFO and GET_ENTRIES return it, ready to be installed
    /// again unchanged (what a rollback puts back). The kernel ignores the
    /// counters inside the entries; there are none to add afterwards.
    pub fn from_kernel(
        name: &str,
        valid_hooks: u32,
        hook_entry: [u32; 5],
        underflow: [u32; 5],
        num_entries: u32,
        entries: &[u8],
    ) -> EncodedTable {
        let mut buf = Vec::with_capacity(layout::REPLACE_ROOM + entries.len());
        buf.resize(layout::REPLACE_ROOM, 0);
        buf.extend_from_slice(entries);
        Self::with_room(name, valid_hooks, hook_entry, underflow, num_entries, buf)
    }

    /// [`EncodedTable::from_kernel`] for a buffer that already starts with
    /// [`layout::REPLACE_ROOM`] bytes of room before the entries.
    pub(crate) fn with_room(
        name: &str,
        valid_hooks: u32,
        hook_entry: [u32; 5],
        underflow: [u32; 5],
        num_entries: u32,
        buf: Vec<u8>,
    ) -> EncodedTable {
        debug_assert!(buf.len() >= layout::REPLACE_ROOM);
        EncodedTable {
            name: name.to_string(),
            valid_hooks,
            hook_entry,
            underflow,
            num_entries,
            buf,
            counters: Vec::new(),
        }
    }

    /// The entries, as the kernel gets them.
    pub fn entries(&self) -> &[u8] {
        &self.buf[layout::REPLACE_ROOM..]
    }

    /// The SET_REPLACE request: the `ipt_replace` header, written into the
    /// room in front of the entries, and the entries. `num_counters` is the
    /// live table's entry count; `counters_ptr` the address of a buffer of
    /// `num_counters` `xt_counters` that the kernel fills with the old
    /// counters.
    pub fn replace_request(
        &mut self,
        family: Family,
        num_counters: u32,
        counters_ptr: u64,
    ) -> &mut [u8] {
        use layout::replace as f;
        let l = entry_layout(family);
        let size = (self.buf.len() - layout::REPLACE_ROOM) as u32;
        let req = &mut self.buf[layout::REPLACE_ROOM - l.replace_size..];
        req[..l.replace_size].fill(0);
        req[f::NAME..f::NAME + self.name.len()].copy_from_slice(self.name.as_bytes());
        req[f::VALID_HOOKS..f::VALID_HOOKS + 4].copy_from_slice(&self.valid_hooks.to_ne_bytes());
        req[f::NUM_ENTRIES..f::NUM_ENTRIES + 4].copy_from_slice(&self.num_entries.to_ne_bytes());
        req[f::SIZE..f::SIZE + 4].copy_from_slice(&size.to_ne_bytes());
        for h in 0..5 {
            req[f::HOOK_ENTRY + 4 * h..f::HOOK_ENTRY + 4 * h + 4]
                .copy_from_slice(&self.hook_entry[h].to_ne_bytes());
            req[f::UNDERFLOW + 4 * h..f::UNDERFLOW + 4 * h + 4]
                .copy_from_slice(&self.underflow[h].to_ne_bytes());
        }
        req[f::NUM_COUNTERS..f::NUM_COUNTERS + 4].copy_from_slice(&num_counters.to_ne_bytes());
        req[f::COUNTERS..f::COUNTERS + 8].copy_from_slice(&counters_ptr.to_ne_bytes());
        req
    }
}

enum Piece<'a> {
    Rule(&'a crate::rules::Rule),
    /// A built-in chain's policy entry, with the chain's hook.
    Policy(Verdict, Counters, Option<(u32, Counters)>, usize),
    Head(&'a str),
    Tail,
    End,
}

fn target_size(t: &Target) -> usize {
    match t {
        Target::Extension(e) => EXT_HEADER + crate::ext::xt_align(e.data.len()),
        _ => STANDARD_TARGET,
    }
}

fn piece_size(l: &EntryLayout, p: &Piece) -> usize {
    match p {
        Piece::Rule(r) => {
            l.size
                + r.matches
                    .iter()
                    .map(|m| EXT_HEADER + crate::ext::xt_align(m.data.len()))
                    .sum::<usize>()
                + target_size(&r.target)
        }
        Piece::Policy(..) | Piece::Tail => l.size + STANDARD_TARGET,
        Piece::Head(_) | Piece::End => l.size + ERROR_TARGET,
    }
}

fn put_addr(buf: &mut [u8], off: usize, a: &IpAddr, family: Family) -> Result<()> {
    match (a, family) {
        (IpAddr::V4(v), Family::V4) => buf[off..off + 4].copy_from_slice(&v.octets()),
        (IpAddr::V6(v), Family::V6) => buf[off..off + 16].copy_from_slice(&v.octets()),
        _ => {
            return Err(Error::Other(format!(
                "address {a} does not belong to this table's family"
            )))
        }
    }
    Ok(())
}

fn put_ip(buf: &mut [u8], l: &EntryLayout, ip: &IpMatch, family: Family, goto: bool) -> Result<()> {
    put_addr(buf, l.src, &ip.src, family)?;
    put_addr(buf, l.dst, &ip.dst, family)?;
    put_addr(buf, l.smsk, &ip.src_mask, family)?;
    put_addr(buf, l.dmsk, &ip.dst_mask, family)?;
    buf[l.iniface..l.iniface + 16].copy_from_slice(&ip.in_iface.name);
    buf[l.outiface..l.outiface + 16].copy_from_slice(&ip.out_iface.name);
    buf[l.iniface_mask..l.iniface_mask + 16].copy_from_slice(&ip.in_iface.mask);
    buf[l.outiface_mask..l.outiface_mask + 16].copy_from_slice(&ip.out_iface.mask);
    buf[l.proto..l.proto + 2].copy_from_slice(&ip.proto.to_ne_bytes());
    if let Some(tos) = l.tos {
        buf[tos] = ip.tos;
    }
    let goto_bit = if family == Family::V4 {
        ip_flags::GOTO
    } else {
        ip_flags::GOTO6
    };
    buf[l.flags] = if goto {
        ip.flags | goto_bit
    } else {
        ip.flags & !goto_bit
    };
    buf[l.invflags] = ip.invflags;
    Ok(())
}

fn put_ext_header(buf: &mut [u8], size: usize, name: &str, revision: u8) -> Result<()> {
    if name.len() >= layout::EXT_NAME_LEN {
        return Err(Error::Other(format!(
            "extension name `{name}' is longer than 28 bytes"
        )));
    }
    buf[layout::EXT_SIZE..layout::EXT_SIZE + 2].copy_from_slice(&(size as u16).to_ne_bytes());
    buf[layout::EXT_NAME..layout::EXT_NAME + name.len()].copy_from_slice(name.as_bytes());
    buf[layout::EXT_REVISION] = revision;
    Ok(())
}

/// Writes `e` at `at` of a zeroed buffer; returns where the next piece goes.
fn put_extension(buf: &mut [u8], at: usize, e: &Extension) -> Result<usize> {
    let size = EXT_HEADER + crate::ext::xt_align(e.data.len());
    put_ext_header(&mut buf[at..], size, &e.name, e.revision)?;
    buf[at + EXT_HEADER..at + EXT_HEADER + e.data.len()].copy_from_slice(&e.data);
    Ok(at + size)
}

/// The standard target with `verdict`, at `at` of a zeroed buffer.
fn put_standard(buf: &mut [u8], at: usize, verdict: i32) -> usize {
    // The standard target's name is the empty string; the kernel expects the
    // rest of the name field and the padding after the verdict zeroed.
    buf[at..at + 2].copy_from_slice(&(STANDARD_TARGET as u16).to_ne_bytes());
    buf[at + EXT_HEADER..at + EXT_HEADER + 4].copy_from_slice(&verdict.to_ne_bytes());
    at + STANDARD_TARGET
}

/// The ERROR target naming `name`, at `at` of a zeroed buffer.
fn put_error(buf: &mut [u8], at: usize, name: &str) -> Result<usize> {
    put_ext_header(&mut buf[at..], ERROR_TARGET, "ERROR", 0)?;
    let raw = crate::text::to_bytes(name);
    if raw.len() >= 32 {
        return Err(Error::Other(format!(
            "chain name `{name}' is longer than 31 bytes"
        )));
    }
    buf[at + EXT_HEADER..at + EXT_HEADER + raw.len()].copy_from_slice(&raw);
    Ok(at + ERROR_TARGET)
}

/// The largest table blob the kernel accepts (x_tables refuses bigger
/// SET_REPLACE requests).
pub const MAX_TABLE_BYTES: usize = 512 * 1024 * 1024;

/// Encodes a table. Jumps must name user chains of the table.
pub fn encode_table(family: Family, table: &Table) -> Result<EncodedTable> {
    encode_table_reusing(family, table, None)
}

/// [`encode_table`] into the buffers of an earlier encoding, `spare`: a
/// caller that encodes a large table again and again (a [`crate::Session`])
/// writes into memory it already has, instead of fresh pages that the
/// kernel must first clear.
pub fn encode_table_reusing(
    family: Family,
    table: &Table,
    spare: Option<EncodedTable>,
) -> Result<EncodedTable> {
    let l = entry_layout(family);
    let chains = table.ordered_chains();
    let mut pieces: Vec<(Piece, Option<usize>)> = Vec::new(); // (piece, hook when it starts a builtin chain)
    for c in &chains {
        match c.policy {
            Some(policy) => {
                let hook = HOOK_NAMES
                    .iter()
                    .position(|h| *h == c.name)
                    .ok_or_else(|| Error::Kernel {
                        table: table.name.clone(),
                        message: format!("`{}' is not a built-in chain name", c.name),
                    })?;
                let first = pieces.len();
                for r in &c.rules {
                    pieces.push((Piece::Rule(r), None));
                }
                pieces.push((Piece::Policy(policy, c.counters, c.origin, hook), None));
                pieces[first].1 = Some(hook);
            }
            None => {
                pieces.push((Piece::Head(&c.name), None));
                for r in &c.rules {
                    pieces.push((Piece::Rule(r), None));
                }
                pieces.push((Piece::Tail, None));
            }
        }
    }
    pieces.push((Piece::End, None));

    // Offsets of every entry, and of each user chain's first entry after its head.
    let mut offsets = Vec::with_capacity(pieces.len() + 1);
    let mut off = 0usize;
    for (p, _) in &pieces {
        offsets.push(off);
        off += piece_size(l, p);
    }
    offsets.push(off);
    if off > MAX_TABLE_BYTES {
        return Err(Error::Kernel {
            table: table.name.clone(),
            message: format!(
                "the table would take {off} bytes; the kernel accepts at most {MAX_TABLE_BYTES}"
            ),
        });
    }
    let mut chain_start: crate::fasthash::FastMap<&str, usize> = Default::default();
    for (i, (p, _)) in pieces.iter().enumerate() {
        if let Piece::Head(name) = p {
            chain_start.insert(name, offsets[i + 1]);
        }
    }

    let ctx = Fill {
        family,
        table: &table.name,
        pieces: &pieces,
        offsets: &offsets,
        chain_start: &chain_start,
    };
    // One zeroed buffer (fresh pages: zero already), room for the request
    // header first. Big tables are filled by two threads, each writing the
    // entries of one half in place (split at an entry boundary).
    let n = pieces.len();
    let mut buf = match spare {
        Some(s) => {
            let mut buf = s.buf;
            buf.clear();
            buf.resize(layout::REPLACE_ROOM + off, 0);
            buf
        }
        None => vec![0u8; layout::REPLACE_ROOM + off],
    };
    let entries = &mut buf[layout::REPLACE_ROOM..];
    let (first, second) = if n >= PARALLEL_FROM {
        let mid = n / 2;
        let (low, high) = entries.split_at_mut(offsets[mid]);
        std::thread::scope(|s| {
            let h = s.spawn(|| ctx.fill(mid..n, high));
            let a = ctx.fill(0..mid, low);
            let b = h
                .join()
                .unwrap_or_else(|_| Err(Error::Other("the encoder thread panicked".into())));
            (a, Some(b))
        })
    } else {
        (ctx.fill(0..n, entries), None)
    };
    let mut a = first?;
    if let Some(b) = second {
        let b = b?;
        a.counters.extend_from_slice(&b.counters);
        a.valid_hooks |= b.valid_hooks;
        for h in 0..5 {
            if b.valid_hooks & (1 << h) != 0 {
                a.hook_entry[h] = b.hook_entry[h];
            }
            if b.underflow[h] != 0 {
                a.underflow[h] = b.underflow[h];
            }
        }
    }
    let mut enc = EncodedTable::with_room(
        &table.name,
        a.valid_hooks,
        a.hook_entry,
        a.underflow,
        n as u32,
        buf,
    );
    enc.counters = a.counters;
    Ok(enc)
}

/// Tables of at least this many entries are encoded by two threads.
const PARALLEL_FROM: usize = 8192;

/// What filling entries needs to know about the whole table.
struct Fill<'a> {
    family: Family,
    table: &'a str,
    pieces: &'a [(Piece<'a>, Option<usize>)],
    offsets: &'a [usize],
    chain_start: &'a crate::fasthash::FastMap<&'a str, usize>,
}

/// The hook facts and counters of entries `range` of a table.
struct Filled {
    counters: Vec<(Counters, Option<(u32, Counters)>)>,
    valid_hooks: u32,
    hook_entry: [u32; 5],
    underflow: [u32; 5],
}

impl Fill<'_> {
    /// Encodes the entries of `range` into `buf`, which holds exactly their
    /// bytes and is zeroed.
    fn fill(&self, range: std::ops::Range<usize>, buf: &mut [u8]) -> Result<Filled> {
        let (family, offsets) = (self.family, self.offsets);
        let base = offsets[range.start];
        let mut out = Filled {
            counters: Vec::with_capacity(range.len()),
            valid_hooks: 0,
            hook_entry: [0; 5],
            underflow: [0; 5],
        };
        let kernel_err = |message: String| Error::Kernel {
            table: self.table.to_string(),
            message,
        };
        for i in range {
            let (p, hook) = &self.pieces[i];
            if let Some(h) = hook {
                out.valid_hooks |= 1 << h;
                out.hook_entry[*h] = offsets[i] as u32;
            }
            let start = offsets[i] - base;
            let mut counters = (Counters::default(), None);
            let end = match p {
                Piece::Rule(r) => {
                    let to = match &r.target {
                        Target::Fallthrough => offsets[i + 1],
                        Target::Jump(c) | Target::Goto(c) => {
                            *self.chain_start.get(c.as_str()).ok_or_else(|| {
                                kernel_err(format!(
                                    "a rule jumps to `{c}', which is not a user chain of this table"
                                ))
                            })?
                        }
                        _ => 0,
                    };
                    counters = (r.counters, r.origin);
                    write_rule(buf, start, family, r, to as i32)?.0
                }
                Piece::Policy(v, c, origin, h) => {
                    out.underflow[*h] = offsets[i] as u32;
                    counters = (*c, *origin);
                    write_fixed(buf, start, family, Fixed::Policy(*v))?
                }
                Piece::Tail => write_fixed(buf, start, family, Fixed::Tail)?,
                Piece::Head(name) => write_fixed(buf, start, family, Fixed::Head(name))?,
                Piece::End => write_fixed(buf, start, family, Fixed::End)?,
            };
            let size = end - start;
            debug_assert_eq!(size, offsets[i + 1] - offsets[i]);
            if size > u16::MAX as usize {
                return Err(kernel_err("a rule is larger than 65535 bytes".into()));
            }
            out.counters.push(counters);
        }
        Ok(out)
    }
}

/// An entry that is not a rule, for [`write_fixed`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fixed<'a> {
    /// A built-in chain's policy.
    Policy(Verdict),
    /// A user chain's ERROR head, carrying its name.
    Head(&'a str),
    /// A user chain's RETURN tail.
    Tail,
    /// The table's final ERROR entry.
    End,
}

impl Fixed<'_> {
    /// The entry's size.
    pub(crate) fn size(self, family: Family) -> usize {
        let l = entry_layout(family);
        match self {
            Fixed::Policy(_) | Fixed::Tail => l.size + STANDARD_TARGET,
            Fixed::Head(_) | Fixed::End => l.size + ERROR_TARGET,
        }
    }
}

/// Writes an entry that is not a rule at `start` of a zeroed buffer, laid
/// out as [`encode_table`] lays it out; returns where it ends.
pub(crate) fn write_fixed(
    buf: &mut [u8],
    start: usize,
    family: Family,
    what: Fixed,
) -> Result<usize> {
    let l = entry_layout(family);
    let pos = start + l.size;
    let end = match what {
        Fixed::Policy(v) => put_standard(buf, pos, v.kernel_value()),
        Fixed::Tail => put_standard(buf, pos, Verdict::Return.kernel_value()),
        Fixed::Head(name) => put_error(buf, pos, name)?,
        Fixed::End => put_error(buf, pos, "ERROR")?,
    };
    put_offsets(buf, start, l, l.size, end - start);
    Ok(end)
}

/// Writes rule `r`'s entry at `start` of a zeroed buffer; the verdict of a
/// jump, a goto or a fall-through is `to` (an offset into the entries).
/// Returns where the entry ends and where its target starts.
fn write_rule(
    buf: &mut [u8],
    start: usize,
    family: Family,
    r: &Rule,
    to: i32,
) -> Result<(usize, usize)> {
    let l = entry_layout(family);
    let goto = matches!(r.target, Target::Goto(_));
    put_ip(&mut buf[start..], l, &r.ip, family, goto)?;
    let mut pos = start + l.size;
    for m in &r.matches {
        pos = put_extension(buf, pos, m)?;
    }
    let target = pos;
    let end = match &r.target {
        Target::Fallthrough | Target::Jump(_) | Target::Goto(_) => put_standard(buf, pos, to),
        Target::Verdict(v) => put_standard(buf, pos, v.kernel_value()),
        Target::Extension(e) => put_extension(buf, pos, e)?,
    };
    put_offsets(buf, start, l, target - start, end - start);
    Ok((end, target))
}

/// An entry's `target_offset` and `next_offset` (sizes over 65535 are the
/// callers' to refuse).
fn put_offsets(buf: &mut [u8], start: usize, l: &EntryLayout, target: usize, size: usize) {
    buf[start + l.target_offset..start + l.target_offset + 2]
        .copy_from_slice(&(target as u16).to_ne_bytes());
    buf[start + l.next_offset..start + l.next_offset + 2]
        .copy_from_slice(&(size as u16).to_ne_bytes());
}

/// Appends rule `r` as [`encode_table`] encodes it, except that the verdict
/// of a jump, a goto or a fall-through is left zero: returns where it is in
/// `out`, for the caller to write the offset once the layout is known.
pub(crate) fn append_rule(out: &mut Vec<u8>, family: Family, r: &Rule) -> Result<Option<usize>> {
    let start = out.len();
    let size = piece_size(entry_layout(family), &Piece::Rule(r));
    if size > u16::MAX as usize {
        return Err(Error::Other("a rule is larger than 65535 bytes".into()));
    }
    out.resize(start + size, 0);
    let (end, target) = write_rule(out, start, family, r, 0)?;
    debug_assert_eq!(end - start, size);
    Ok(matches!(
        r.target,
        Target::Fallthrough | Target::Jump(_) | Target::Goto(_)
    )
    .then_some(target + EXT_HEADER))
}

/// The size of rule `r`'s entry.
pub(crate) fn rule_size(family: Family, r: &Rule) -> usize {
    piece_size(entry_layout(family), &Piece::Rule(r))
}

/// Rewrites one built-in chain's policy entry at `at` (an offset into the
/// entries) of an encoded table.
pub(crate) fn rewrite_policy(enc: &mut EncodedTable, family: Family, at: usize, v: Verdict) {
    let l = entry_layout(family);
    let buf = &mut enc.buf[layout::REPLACE_ROOM..];
    put_standard(buf, at + l.size, v.kernel_value());
}

/// The entries of an encoded table, to overwrite in place.
pub(crate) fn entries_mut(enc: &mut EncodedTable) -> &mut [u8] {
    &mut enc.buf[layout::REPLACE_ROOM..]
}
