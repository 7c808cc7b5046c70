//! Talking to x_tables: reading and replacing tables, revision probing,
//! network namespaces and the xtables lock.

mod lock;
mod netns;
pub mod nft;

pub use lock::XtablesLock;
pub use netns::NetnsGuard;

use crate::fasthash::FastMap as HashMap;
use std::os::fd::OwnedFd;
use std::sync::Mutex;

use crate::blob::layout::{self, entry_layout};
use crate::blob::{decode_table, EncodedTable};
use crate::error::{Error, Result};
use crate::ext::{Kind, RevisionSource};
use crate::rules::{Counters, Family, Table};
use crate::sys::{self, bindings as b};

/// What GET_INFO says about a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// Valid hooks bitmask.
    pub valid_hooks: u32,
    /// Hook entry offsets.
    pub hook_entry: [u32; 5],
    /// Underflow offsets.
    pub underflow: [u32; 5],
    /// Number of entries.
    pub num_entries: u32,
    /// Size of the entries.
    pub size: u32,
}

/// One answer of the kernel: (kind, revision, supported).
type RevisionAnswer = (Kind, u8, bool);

/// A raw socket for one family's x_tables socket options.
#[derive(Debug)]
pub struct XtSocket {
    fd: OwnedFd,
    family: Family,
    /// Answers already had, by extension name (looked up without a copy of
    /// the name: this runs for every extension of every rule).
    revisions: Mutex<HashMap<String, Vec<RevisionAnswer>>>,
}

fn level(family: Family) -> libc::c_int {
    match family {
        Family::V4 => libc::IPPROTO_IP,
        Family::V6 => libc::IPPROTO_IPV6,
    }
}

fn opt_names(family: Family) -> [(&'static str, libc::c_int); 6] {
    match family {
        Family::V4 => [
            ("IPT_SO_GET_INFO", b::IPT_SO_GET_INFO as i32),
            ("IPT_SO_GET_ENTRIES", b::IPT_SO_GET_ENTRIES as i32),
            ("IPT_SO_SET_REPLACE", b::IPT_SO_SET_REPLACE as i32),
            ("IPT_SO_SET_ADD_COUNTERS", b::IPT_SO_SET_ADD_COUNTERS as i32),
            (
                "IPT_SO_GET_REVISION_MATCH",
                b::IPT_SO_GET_REVISION_MATCH as i32,
            ),
            (
                "IPT_SO_GET_REVISION_TARGET",
                b::IPT_SO_GET_REVISION_TARGET as i32,
            ),
        ],
        Family::V6 => [
            ("IP6T_SO_GET_INFO", b::IP6T_SO_GET_INFO as i32),
            ("IP6T_SO_GET_ENTRIES", b::IP6T_SO_GET_ENTRIES as i32),
            ("IP6T_SO_SET_REPLACE", b::IP6T_SO_SET_REPLACE as i32),
            (
                "IP6T_SO_SET_ADD_COUNTERS",
                b::IP6T_SO_SET_ADD_COUNTERS as i32,
            ),
            (
                "IP6T_SO_GET_REVISION_MATCH",
                b::IP6T_SO_GET_REVISION_MATCH as i32,
            ),
            (
                "IP6T_SO_GET_REVISION_TARGET",
                b::IP6T_SO_GET_REVISION_TARGET as i32,
            ),
        ],
    }
}

const GET_INFO: usize = 0;
const GET_ENTRIES: usize = 1;
const SET_REPLACE: usize = 2;
const SET_ADD_COUNTERS: usize = 3;
const GET_REVISION_MATCH: usize = 4;
const GET_REVISION_TARGET: usize = 5;

fn name_field(name: &str, len: usize) -> Result<Vec<u8>> {
    if name.len() >= len || name.contains('\0') {
        return Err(Error::Other(format!(
            "name `{name}' is too long for the kernel (max {} bytes)",
            len - 1
        )));
    }
    let mut v = vec![0u8; len];
    v[..name.len()].copy_from_slice(name.as_bytes());
    Ok(v)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

impl XtSocket {
    /// Opens the socket (needs CAP_NET_ADMIN for every call but revisions).
    pub fn open(family: Family) -> Result<XtSocket> {
        let domain = match family {
            Family::V4 => libc::AF_INET,
            Family::V6 => libc::AF_INET6,
        };
        Ok(XtSocket {
            fd: sys::raw_socket(domain)?,
            family,
            revisions: Mutex::new(HashMap::default()),
        })
    }

    /// The family.
    pub fn family(&self) -> Family {
        self.family
    }

    fn opt(&self, which: usize) -> (&'static str, libc::c_int) {
        opt_names(self.family)[which]
    }

    /// GET_INFO. Note: the kernel creates a table that does not exist yet.
    pub fn get_info(&self, table: &str) -> Result<TableInfo> {
        let l = entry_layout(self.family);
        let mut buf = name_field(table, layout::TABLE_NAME_LEN)?;
        buf.resize(l.getinfo_size, 0);
        let (what, opt) = self.opt(GET_INFO);
        sys::getsockopt(
            &self.fd,
            level(self.family),
            opt,
            &format!("getsockopt({what}, {table})"),
            &mut buf,
        )?;
        use layout::getinfo as f;
        let mut info = TableInfo {
            valid_hooks: u32_at(&buf, f::VALID_HOOKS),
            hook_entry: [0; 5],
            underflow: [0; 5],
            num_entries: u32_at(&buf, f::NUM_ENTRIES),
            size: u32_at(&buf, f::SIZE),
        };
        for h in 0..5 {
            info.hook_entry[h] = u32_at(&buf, f::HOOK_ENTRY + 4 * h);
            info.underflow[h] = u32_at(&buf, f::UNDERFLOW + 4 * h);
        }
        Ok(info)
    }

    /// GET_INFO then GET_ENTRIES: the table's facts and its entry blob.
    pub fn read_raw(&self, table: &str) -> Result<(TableInfo, Vec<u8>)> {
        let (info, mut buf) = self.read_into(table, 0)?;
        buf.drain(..entry_layout(self.family).get_entries_size);
        Ok((info, buf))
    }

    /// GET_INFO then GET_ENTRIES into a buffer of `room` bytes, then the
    /// `ipt_get_entries` header, then the entries.
    fn read_into(&self, table: &str, room: usize) -> Result<(TableInfo, Vec<u8>)> {
        let l = entry_layout(self.family);
        for _ in 0..10 {
            let info = self.get_info(table)?;
            let mut buf = vec![0u8; room];
            buf.extend_from_slice(&name_field(table, layout::TABLE_NAME_LEN)?);
            buf.extend_from_slice(&info.size.to_ne_bytes());
            buf.resize(room + l.get_entries_size + info.size as usize, 0);
            let (what, opt) = self.opt(GET_ENTRIES);
            match sys::getsockopt(
                &self.fd,
                level(self.family),
                opt,
                &format!("getsockopt({what}, {table})"),
                &mut buf[room..],
            ) {
                Ok(_) => return Ok((info, buf)),
                // The table changed size between the two calls: ask again.
                Err(e) if e.errno() == Some(libc::EAGAIN) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Kernel {
            table: table.into(),
            message: "the table kept changing while being read".into(),
        })
    }

    /// Reads a live table as it is installed, without decoding it: enough
    /// to put it back exactly (see [`EncodedTable::from_kernel`]).
    pub fn read_encoded(&self, table: &str) -> Result<(TableInfo, EncodedTable)> {
        // Read so that the entries land right after the room for the
        // request header: putting the table back copies nothing.
        let room = layout::REPLACE_ROOM - entry_layout(self.family).get_entries_size;
        let (info, buf) = self.read_into(table, room)?;
        let enc = EncodedTable::with_room(
            table,
            info.valid_hooks,
            info.hook_entry,
            info.underflow,
            info.num_entries,
            buf,
        );
        Ok((info, enc))
    }

    /// Reads a live table into the model.
    pub fn read_table(&self, table: &str) -> Result<(TableInfo, Table)> {
        let (info, blob) = self.read_raw(table)?;
        let t = decode_table(
            self.family,
            table,
            info.valid_hooks,
            info.hook_entry,
            info.underflow,
            &blob,
        )?;
        Ok((info, t))
    }

    /// SET_REPLACE: swaps the table in one call. `num_counters` must be the
    /// live entry count (the kernel answers EAGAIN otherwise). Returns the
    /// old table's counters.
    pub fn replace(
        &self,
        enc: &mut EncodedTable,
        num_counters: u32,
    ) -> Result<Vec<Counters>, sys::SyscallError> {
        let mut old = vec![0u8; num_counters as usize * 16];
        let (what, opt) = self.opt(SET_REPLACE);
        let what = format!("setsockopt({what}, {})", enc.name);
        let req = enc.replace_request(self.family, num_counters, 0);
        sys::set_replace(
            &self.fd,
            level(self.family),
            opt,
            &what,
            req,
            layout::replace::COUNTERS,
            &mut old,
        )?;
        Ok(old
            .chunks_exact(16)
            .map(|c| Counters {
                packets: u64::from_ne_bytes(c[..8].try_into().expect("8 bytes")),
                bytes: u64::from_ne_bytes(c[8..].try_into().expect("8 bytes")),
            })
            .collect())
    }

    /// SET_ADD_COUNTERS: adds counters to every entry of the table.
    pub fn add_counters(&self, table: &str, counters: &[Counters]) -> Result<()> {
        use layout::counters_info as f;
        let mut buf = name_field(table, layout::TABLE_NAME_LEN)?;
        buf.resize(f::COUNTERS, 0);
        buf[f::NUM_COUNTERS..f::NUM_COUNTERS + 4]
            .copy_from_slice(&(counters.len() as u32).to_ne_bytes());
        for c in counters {
            buf.extend_from_slice(&c.packets.to_ne_bytes());
            buf.extend_from_slice(&c.bytes.to_ne_bytes());
        }
        let (what, opt) = self.opt(SET_ADD_COUNTERS);
        sys::setsockopt(
            &self.fd,
            level(self.family),
            opt,
            &format!("setsockopt({what}, {table})"),
            &buf,
        )?;
        Ok(())
    }

    /// GET_REVISION_MATCH / _TARGET: does the kernel support this revision?
    pub fn revision_supported(&self, kind: Kind, name: &str, revision: u8) -> Result<bool> {
        if let Some(v) = self.answers().get(name).and_then(|known| {
            known
                .iter()
                .find(|(k, r, _)| *k == kind && *r == revision)
                .map(|(_, _, ok)| *ok)
        }) {
            return Ok(v);
        }
        let mut buf = name_field(name, layout::EXT_NAME_LEN)?;
        buf.push(revision);
        let (what, opt) = self.opt(if kind == Kind::Match {
            GET_REVISION_MATCH
        } else {
            GET_REVISION_TARGET
        });
        let ok = match sys::getsockopt(
            &self.fd,
            level(self.family),
            opt,
            &format!("getsockopt({what}, {name})"),
            &mut buf,
        ) {
            Ok(_) => true,
            Err(e) if matches!(e.errno(), Some(libc::ENOENT) | Some(libc::EPROTONOSUPPORT)) => {
                false
            }
            Err(e) => return Err(e.into()),
        };
        self.answers()
            .entry(name.to_string())
            .or_default()
            .push((kind, revision, ok));
        Ok(ok)
    }
}

impl XtSocket {
    /// The revision answers had so far (a poisoned lock only means another
    /// thread panicked while adding one: what is there is still right).
    fn answers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<RevisionAnswer>>> {
        self.revisions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl RevisionSource for XtSocket {
    fn as_sync(&self) -> Option<&(dyn RevisionSource + Sync)> {
        Some(self)
    }
    fn supported(&self, family: Family, kind: Kind, name: &str, revision: u8) -> bool {
        if family != self.family {
            return true;
        }
        // Like iptables: when the kernel cannot be asked, assume support.
        self.revision_supported(kind, name, revision)
            .unwrap_or(true)
    }
}

/// The tables that exist in the current thread's network namespace, from
/// `/proc/thread-self/net/ip_tables_names` (newest first, as iptables-save
/// lists them). Reading it creates nothing.
pub fn table_names(family: Family) -> Result<Vec<String>> {
    let file = match family {
        Family::V4 => "ip_tables_names",
        Family::V6 => "ip6_tables_names",
    };
    let path = format!("/proc/thread-self/net/{file}");
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(s
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::Other(format!("cannot read {path}: {e}"))),
    }
}

/// The interface the current thread's network namespace routes `dst`
/// through (longest prefix in /proc/thread-self/net/route or ipv6_route;
/// the main table only). The lockout guard uses it to know on which
/// interface a session's packets arrive. `None` when no route matches.
pub fn route_interface(dst: std::net::IpAddr) -> Option<String> {
    let mut best: Option<(u32, String)> = None;
    match dst {
        std::net::IpAddr::V4(a) => {
            let text = std::fs::read_to_string("/proc/thread-self/net/route").ok()?;
            let addr = u32::from(a);
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 8 {
                    continue;
                }
                // Destination and mask are host-order hex of network-order words.
                let (Ok(d), Ok(m)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16))
                else {
                    continue;
                };
                let (d, m) = (u32::from_be(d.to_le()), u32::from_be(m.to_le()));
                if addr & m == d && best.as_ref().is_none_or(|(l, _)| m.count_ones() > *l) {
                    best = Some((m.count_ones(), f[0].to_string()));
                }
            }
        }
        std::net::IpAddr::V6(a) => {
            let text = std::fs::read_to_string("/proc/thread-self/net/ipv6_route").ok()?;
            let addr = u128::from(a);
            for line in text.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 10 {
                    continue;
                }
                let (Ok(d), Ok(len)) = (
                    u128::from_str_radix(f[0], 16),
                    u32::from_str_radix(f[1], 16),
                ) else {
                    continue;
                };
                let m = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len.min(128))
                };
                let via = f[9];
                if addr & m == d && via != "lo" && best.as_ref().is_none_or(|(l, _)| len > *l) {
                    best = Some((len, via.to_string()));
                }
            }
        }
    }
    best.map(|(_, i)| i)
}
