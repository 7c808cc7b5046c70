//! Confirm-or-rollback: after `apply --confirm SECS`, the tables that were
//! replaced are kept under `/run/iptables-atomic/<netns>/` (their exact
//! previous entries and counters); unless `confirm` runs in time, a detached
//! guard process puts them back. State is per network namespace, keyed by
//! the namespace's inode, and guarded by a lock file so that `confirm`,
//! `rollback` and the guard never race.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};

use super::Installed;
use crate::blob::EncodedTable;
use crate::error::{Error, Result};
use crate::kernel::XtSocket;
use crate::rules::{Counters, Family};

/// Where pending confirmations live.
pub const STATE_ROOT: &str = "/run/iptables-atomic";

/// The state directory of the current thread's network namespace.
///
/// The key is the namespace's cookie (SO_NETNS_COOKIE, never reused while
/// the system runs), so a namespace that reuses a deleted one's inode number
/// never sees its stale state; the inode is the fallback on kernels without
/// cookies.
pub fn state_dir() -> Result<PathBuf> {
    if let Some(cookie) = netns_cookie() {
        return Ok(Path::new(STATE_ROOT).join(format!("netns-cookie-{cookie}")));
    }
    let meta = fs::metadata("/proc/thread-self/ns/net")
        .map_err(|e| Error::Other(format!("cannot stat the network namespace: {e}")))?;
    Ok(Path::new(STATE_ROOT).join(format!("netns-{}", meta.ino())))
}

/// SO_NETNS_COOKIE of a socket made in the current thread's namespace.
fn netns_cookie() -> Option<u64> {
    const SO_NETNS_COOKIE: libc::c_int = 71;
    let fd = crate::sys::raw_socket(libc::AF_INET).ok()?;
    let mut buf = [0u8; 8];
    let n = crate::sys::getsockopt(
        &fd,
        libc::SOL_SOCKET,
        SO_NETNS_COOKIE,
        "getsockopt(SO_NETNS_COOKIE)",
        &mut buf,
    )
    .ok()?;
    (n == 8).then(|| u64::from_ne_bytes(buf))
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Other(format!("{what} {}: {e}", path.display()))
}

/// Holds the state directory's lock while alive.
pub struct StateLock {
    _lock: Flock<File>,
    dir: PathBuf,
}

impl StateLock {
    /// Takes the lock of `dir` (creating the directory).
    pub fn take(dir: &Path) -> Result<StateLock> {
        fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
        let path = dir.join("lock");
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io("cannot open", &path, e))?;
        let lock = Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::Other(format!("cannot lock {}: {e}", path.display())))?;
        Ok(StateLock {
            _lock: lock,
            dir: dir.to_path_buf(),
        })
    }

    fn pending(&self) -> PathBuf {
        self.dir.join("pending")
    }

    /// True when an apply awaits confirmation.
    pub fn is_pending(&self) -> bool {
        self.pending().exists()
    }

    /// The deadline of the pending apply.
    pub fn deadline(&self) -> Result<Option<SystemTime>> {
        let path = self.dir.join("deadline");
        match fs::read_to_string(&path) {
            Ok(s) => Ok(s
                .trim()
                .parse::<u64>()
                .ok()
                .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("cannot read", &path, e)),
        }
    }

    /// Records the tables an apply replaced and its deadline.
    pub fn save(&self, installed: &[Installed], deadline: SystemTime) -> Result<()> {
        let mut buf = Vec::new();
        buf.extend_from_slice(b"IPTA-PENDING-1\n");
        buf.extend_from_slice(&(installed.len() as u32).to_le_bytes());
        for i in installed {
            write_table(&mut buf, i.family, &i.previous.table(), &i.old_counters);
        }
        let tmp = self.dir.join("pending.tmp");
        let mut f = File::create(&tmp).map_err(|e| io("cannot create", &tmp, e))?;
        f.write_all(&buf)
            .and_then(|_| f.sync_all())
            .map_err(|e| io("cannot write", &tmp, e))?;
        let secs = deadline
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        fs::write(self.dir.join("deadline"), format!("{secs}\n"))
            .map_err(|e| io("cannot write", &self.dir, e))?;
        fs::rename(&tmp, self.pending()).map_err(|e| io("cannot rename", &tmp, e))
    }

    /// Forgets the pending apply (it is confirmed): the new tables stay.
    pub fn confirm(&self) -> Result<bool> {
        let had = self.is_pending();
        for f in ["pending", "deadline"] {
            let _ = fs::remove_file(self.dir.join(f));
        }
        Ok(had)
    }

    /// Puts back the tables the pending apply replaced, each with one
    /// SET_REPLACE and its old counters, then forgets it. Returns the tables.
    pub fn rollback(&self) -> Result<Vec<(Family, String)>> {
        let _xt = crate::kernel::XtablesLock::acquire(None)?;
        let mut raw = Vec::new();
        let path = self.pending();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut raw))
            .map_err(|e| io("cannot read", &path, e))?;
        let mut tables = read_tables(&raw)
            .ok_or_else(|| Error::Other(format!("{} is damaged", path.display())))?;
        let mut done = Vec::new();
        let mut socks: [Option<XtSocket>; 2] = [None, None];
        for (family, enc, counters) in tables.iter_mut().rev() {
            let slot = &mut socks[usize::from(*family == Family::V6)];
            if slot.is_none() {
                *slot = Some(XtSocket::open(*family)?);
            }
            let sock = slot.as_ref().expect("just opened");
            let info = sock.get_info(&enc.name)?;
            sock.replace(enc, info.num_entries)?;
            if counters.len() == enc.num_entries as usize
                && counters.iter().any(|c| *c != Counters::default())
            {
                sock.add_counters(&enc.name, counters)?;
            }
            done.push((*family, enc.name.clone()));
        }
        self.confirm()?;
        Ok(done)
    }
}

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn write_table(b: &mut Vec<u8>, family: Family, enc: &EncodedTable, counters: &[Counters]) {
    b.push(if family == Family::V4 { 4 } else { 6 });
    put_u32(b, enc.name.len() as u32);
    b.extend_from_slice(enc.name.as_bytes());
    put_u32(b, enc.valid_hooks);
    for v in enc.hook_entry.iter().chain(&enc.underflow) {
        put_u32(b, *v);
    }
    put_u32(b, enc.num_entries);
    put_u32(b, enc.entries().len() as u32);
    b.extend_from_slice(enc.entries());
    put_u32(b, counters.len() as u32);
    for c in counters {
        b.extend_from_slice(&c.packets.to_le_bytes());
        b.extend_from_slice(&c.bytes.to_le_bytes());
    }
}

struct Cur<'a>(&'a [u8]);

impl Cur<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (a, b) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

fn read_tables(raw: &[u8]) -> Option<Vec<(Family, EncodedTable, Vec<Counters>)>> {
    let mut c = Cur(raw.strip_prefix(b"IPTA-PENDING-1\n")?);
    let n = c.u32()?;
    let mut out = Vec::new();
    for _ in 0..n {
        let family = match c.take(1)?[0] {
            4 => Family::V4,
            6 => Family::V6,
            _ => return None,
        };
        let len = c.u32()? as usize;
        let name = String::from_utf8(c.take(len)?.to_vec()).ok()?;
        let valid_hooks = c.u32()?;
        let mut hook_entry = [0u32; 5];
        let mut underflow = [0u32; 5];
        for v in hook_entry.iter_mut().chain(underflow.iter_mut()) {
            *v = c.u32()?;
        }
        let num_entries = c.u32()?;
        let len = c.u32()? as usize;
        let entries = c.take(len)?.to_vec();
        let nc = c.u32()? as usize;
        let mut counters = Vec::with_capacity(nc.min(1 << 20));
        for _ in 0..nc {
            counters.push(Counters {
                packets: c.u64()?,
                bytes: c.u64()?,
            });
        }
        let enc = EncodedTable::from_kernel(
            &name,
            valid_hooks,
            hook_entry,
            underflow,
            num_entries,
            &entries,
        );
        out.push((family, enc, counters));
    }
    Some(out)
}

/// The guard's loop: waits until the deadline, then rolls back unless the
/// apply was confirmed (or rolled back) meanwhile. Returns what it did.
pub fn guard(dir: &Path) -> Result<GuardOutcome> {
    loop {
        let lock = StateLock::take(dir)?;
        if !lock.is_pending() {
            return Ok(GuardOutcome::Confirmed);
        }
        let deadline = lock.deadline()?.unwrap_or(UNIX_EPOCH);
        if SystemTime::now() >= deadline {
            let tables = lock.rollback()?;
            return Ok(GuardOutcome::RolledBack(tables));
        }
        drop(lock);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How a guard ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardOutcome {
    /// `confirm` ran in time (or `rollback` ran by hand).
    Confirmed,
    /// The deadline passed: these tables were put back.
    RolledBack(Vec<(Family, String)>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::encode_table;

    #[test]
    fn state_round_trips() {
        let t = crate::rules::Table::new("filter").unwrap();
        let enc = encode_table(Family::V4, &t).unwrap();
        let counters = vec![
            Counters {
                packets: 1,
                bytes: 2
            };
            enc.num_entries as usize
        ];
        let mut b = b"IPTA-PENDING-1\n".to_vec();
        put_u32(&mut b, 1);
        write_table(&mut b, Family::V4, &enc, &counters);
        let back = read_tables(&b).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].1.entries(), enc.entries());
        assert_eq!(back[0].1.hook_entry, enc.hook_entry);
        assert_eq!(back[0].2, counters);
        assert!(
            read_tables(&b[..b.len() - 3]).is_none(),
            "a short file is refused, not panicked on"
        );
    }
}
