//! Network namespaces are per thread: a guard moves the calling thread into
//! another namespace and moves it back when dropped.

use std::fs::File;

use nix::sched::{setns, unshare, CloneFlags};

use crate::error::{Error, Result};

/// While alive, the current thread is in another network namespace.
#[derive(Debug)]
pub struct NetnsGuard {
    original: File,
}

fn open(path: &str) -> Result<File> {
    File::open(path).map_err(|e| Error::Other(format!("cannot open network namespace {path}: {e}")))
}

impl NetnsGuard {
    /// Enters a namespace given as a name under `/run/netns` (as made by
    /// `ip netns add NAME`) or as a path (`/proc/PID/ns/net`).
    pub fn enter(name_or_path: &str) -> Result<NetnsGuard> {
        let path = if name_or_path.contains('/') {
            name_or_path.to_string()
        } else {
            format!("/run/netns/{name_or_path}")
        };
        let original = open("/proc/thread-self/ns/net")?;
        let target = open(&path)?;
        setns(&target, CloneFlags::CLONE_NEWNET)
            .map_err(|e| Error::Other(format!("setns({path}): {e}")))?;
        Ok(NetnsGuard { original })
    }

    /// Enters a new, empty network namespace that lives as long as the guard
    /// (tests, demos, dry runs against a scratch kernel table).
    pub fn scratch() -> Result<NetnsGuard> {
        let original = open("/proc/thread-self/ns/net")?;
        unshare(CloneFlags::CLONE_NEWNET)
            .map_err(|e| Error::Other(format!("unshare(CLONE_NEWNET): {e}")))?;
        Ok(NetnsGuard { original })
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        // Going back can only fail if the original namespace vanished, which
        // cannot happen while we hold its file open.
        let _ = setns(&self.original, CloneFlags::CLONE_NEWNET);
    }
}
