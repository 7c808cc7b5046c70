//! libiptc in-process, as a reference for the benchmarks (feature
//! `libiptc-bench`, off by default; needs libip4tc-dev). The bindings are
//! bindgen's, made by build.rs from `<libiptc/libiptc.h>` only when the
//! feature is on. This module is bench-only: the crate itself keeps its one
//! unsafe module (src/sys.rs) and never links libiptc.
//!
//! What is timed is what iptables-legacy-restore does with libiptc for each
//! table, without its parsing: `iptc_init` (reads the live table),
//! flush every chain and delete the user chains, set the policies, create
//! the user chains, append every rule, `iptc_commit`, `iptc_free`. The rule
//! entries are prepared beforehand from our own encoder's bytes, with the
//! standard targets named as iptables names them (`ACCEPT`, a chain name,
//! or empty for no target).
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};

use iptables_atomic::blob::layout::{entry_layout, EXT_HEADER, EXT_NAME};
use iptables_atomic::ext::AssumeLatest;
use iptables_atomic::kernel::XtSocket;
use iptables_atomic::restore::{parse, RestoreOptions};
use iptables_atomic::{apply, blob, Family, Table, Verdict};

#[allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    clippy::all
)]
mod ffi {
    include!(concat!(env!("OUT_DIR"), "/libiptc.rs"));

    #[link(name = "ip4tc")]
    extern "C" {}
}

/// One table, ready for libiptc.
pub struct PreparedTable {
    name: CString,
    /// Built-in chains and their policies.
    policies: Vec<(CString, CString)>,
    /// User chains.
    chains: Vec<CString>,
    /// (chain, entry) in append order; the entry is held in u64 words so
    /// it is aligned as `struct ipt_entry` wants.
    rules: Vec<(usize, Vec<u64>)>,
    /// Chain names by index, for `rules`.
    chain_names: Vec<CString>,
}

/// Every table of a ruleset.
pub struct Prepared(Vec<PreparedTable>);

fn u16_at(b: &[u8], off: usize) -> usize {
    u16::from_ne_bytes([b[off], b[off + 1]]) as usize
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL in names")
}

/// Parses and encodes `text` with this crate, then turns each rule entry
/// into the form libiptc's `iptc_append_entry` takes.
pub fn prepare(text: &str) -> Result<Prepared, String> {
    let sock = XtSocket::open(Family::V4).ok();
    let revs: &dyn iptables_atomic::ext::RevisionSource = match &sock {
        Some(s) => s,
        None => &AssumeLatest,
    };
    let script = parse(text, &RestoreOptions::new(Family::V4), revs).map_err(|e| e.to_string())?;
    let tables = apply::build_tables(&script, false, |n| Ok(Table::new(n).expect("table")))
        .map_err(|e| e.to_string())?;
    let l = entry_layout(Family::V4);
    let mut out = Vec::new();
    for (_, t) in tables.values() {
        let enc = blob::encode_table(Family::V4, t).map_err(|e| e.to_string())?;
        let b = enc.entries();
        // Entry offsets, in order.
        let mut offs = Vec::new();
        let mut o = 0;
        while o < b.len() {
            offs.push(o);
            o += u16_at(b, o + l.next_offset);
        }
        let chains = t.ordered_chains();
        // Where each user chain's first entry (after its ERROR head) is.
        let mut starts = std::collections::HashMap::new();
        let mut k = 0;
        for c in &chains {
            if c.is_builtin() {
                k += c.rules.len() + 1;
            } else {
                starts.insert(offs[k + 1] as i32, c.name.clone());
                k += c.rules.len() + 2;
            }
        }
        let mut p = PreparedTable {
            name: cstr(&t.name),
            policies: Vec::new(),
            chains: Vec::new(),
            rules: Vec::new(),
            chain_names: Vec::new(),
        };
        let mut k = 0;
        for c in &chains {
            let ci = p.chain_names.len();
            p.chain_names.push(cstr(&c.name));
            if !c.is_builtin() {
                p.chains.push(cstr(&c.name));
                k += 1;
            }
            for _ in &c.rules {
                let (start, end) = (offs[k], offs.get(k + 1).copied().unwrap_or(b.len()));
                let mut e = b[start..end].to_vec();
                let to = u16_at(&e, l.target_offset);
                let tname = to + EXT_NAME;
                if e[tname] == 0 {
                    // The standard target: a verdict, a jump or nothing.
                    let v = i32::from_ne_bytes(
                        e[to + EXT_HEADER..to + EXT_HEADER + 4].try_into().unwrap(),
                    );
                    let label = match Verdict::from_kernel(v) {
                        Some(v) => v.name().to_string(),
                        None if v as usize == end => String::new(),
                        None => starts
                            .get(&v)
                            .cloned()
                            .ok_or_else(|| format!("jump to offset {v} is no chain"))?,
                    };
                    e[tname..tname + label.len()].copy_from_slice(label.as_bytes());
                    e[to + EXT_HEADER..to + EXT_HEADER + 4].fill(0);
                }
                let mut words = vec![0u64; e.len().div_ceil(8)];
                for (i, chunk) in e.chunks(8).enumerate() {
                    let mut w = [0u8; 8];
                    w[..chunk.len()].copy_from_slice(chunk);
                    words[i] = u64::from_ne_bytes(w);
                }
                p.rules.push((ci, words));
                k += 1;
            }
            if let Some(v) = c.policy {
                p.policies.push((cstr(&c.name), cstr(v.name())));
            }
            k += 1;
        }
        out.push(p);
    }
    Ok(Prepared(out))
}

fn last_error(what: &str) -> String {
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    // SAFETY: iptc_strerror returns a pointer to a static, NUL-terminated
    // message for any errno value.
    let msg = unsafe { CStr::from_ptr(ffi::iptc_strerror(errno)) };
    format!("{what}: {}", msg.to_string_lossy())
}

/// Restores every prepared table with libiptc, in the calling thread's
/// network namespace.
pub fn restore(p: &Prepared) -> Result<(), String> {
    for t in &p.0 {
        // SAFETY: `t.name` is a NUL-terminated string that outlives the call;
        // iptc_init returns NULL (checked) or a handle we own until iptc_free.
        let h = unsafe { ffi::iptc_init(t.name.as_ptr()) };
        if h.is_null() {
            return Err(last_error("iptc_init"));
        }
        let r = fill_and_commit(h, t);
        // SAFETY: `h` came from iptc_init and is freed exactly once, here;
        // nothing uses it afterwards.
        unsafe { ffi::iptc_free(h) };
        r?;
    }
    Ok(())
}

fn fill_and_commit(h: *mut ffi::xtc_handle, t: &PreparedTable) -> Result<(), String> {
    // Flush every chain and delete the user chains, as iptables-restore does
    // without -n. The names are copied first: the chain list changes.
    let mut names: Vec<CString> = Vec::new();
    // SAFETY: `h` is a live handle; the returned names are NUL-terminated
    // strings owned by the handle, copied before the handle changes.
    unsafe {
        let mut c = ffi::iptc_first_chain(h);
        while !c.is_null() {
            names.push(CStr::from_ptr(c).to_owned());
            c = ffi::iptc_next_chain(h);
        }
    }
    for n in &names {
        // SAFETY: `n` is NUL-terminated and shorter than a chain label (it
        // came from libiptc); `h` is a live handle.
        if unsafe { ffi::iptc_flush_entries(n.as_ptr(), h) } == 0 {
            return Err(last_error("iptc_flush_entries"));
        }
    }
    for n in &names {
        // SAFETY: as above.
        unsafe {
            if ffi::iptc_builtin(n.as_ptr(), h) == 0 && ffi::iptc_delete_chain(n.as_ptr(), h) == 0 {
                return Err(last_error("iptc_delete_chain"));
            }
        }
    }
    for (chain, policy) in &t.policies {
        // SAFETY: NUL-terminated names of at most 31 bytes; a NULL counters
        // pointer is allowed (no counters); `h` is live.
        let ok = unsafe {
            ffi::iptc_set_policy(chain.as_ptr(), policy.as_ptr(), std::ptr::null_mut(), h)
        };
        if ok == 0 {
            return Err(last_error("iptc_set_policy"));
        }
    }
    for chain in &t.chains {
        // SAFETY: a NUL-terminated chain name of at most 28 bytes; `h` is live.
        if unsafe { ffi::iptc_create_chain(chain.as_ptr(), h) } == 0 {
            return Err(last_error("iptc_create_chain"));
        }
    }
    for (ci, words) in &t.rules {
        let e = words.as_ptr().cast::<ffi::ipt_entry>();
        // SAFETY: `words` holds a complete ipt_entry (its next_offset bytes,
        // matches and target included), 8-byte aligned; libiptc copies it.
        // The chain name is NUL-terminated; `h` is live.
        if unsafe { ffi::iptc_append_entry(t.chain_names[*ci].as_ptr(), e, h) } == 0 {
            return Err(last_error("iptc_append_entry"));
        }
    }
    // SAFETY: `h` is a live handle; commit does not free it.
    if unsafe { ffi::iptc_commit(h) } == 0 {
        return Err(last_error("iptc_commit"));
    }
    Ok(())
}
