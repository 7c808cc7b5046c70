//! The xtables lock: the flock(2) that every iptables 1.8 command takes on
//! `/run/xtables.lock` (or `$XTABLES_LOCKFILE`) before it touches a table.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};

/// Held while alive; released on drop.
#[derive(Debug)]
pub struct XtablesLock {
    _lock: Flock<File>,
    path: String,
}

impl XtablesLock {
    /// The lock file iptables uses.
    pub fn path() -> String {
        match std::env::var("XTABLES_LOCKFILE") {
            Ok(p) if !p.is_empty() => p,
            _ => "/run/xtables.lock".to_string(),
        }
    }

    /// Takes the lock, waiting without limit (`None`, iptables' default) or
    /// at most `wait`.
    pub fn acquire(wait: Option<Duration>) -> Result<XtablesLock> {
        let path = Self::path();
        let deadline = wait.map(|w| Instant::now() + w);
        let mut file = OpenOptions::new()
            .read(true)
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::Lock(format!("Fatal: can't open lock file {path}: {e}")))?;
        loop {
            let arg = if deadline.is_some() {
                FlockArg::LockExclusiveNonblock
            } else {
                FlockArg::LockExclusive
            };
            match Flock::lock(file, arg) {
                Ok(lock) => return Ok(XtablesLock { _lock: lock, path }),
                Err((f, nix::errno::Errno::EWOULDBLOCK)) | Err((f, nix::errno::Errno::EINTR)) => {
                    file = f;
                    if let Some(d) = deadline {
                        if Instant::now() >= d {
                            return Err(Error::Lock(format!(
                                "Another app is currently holding the xtables lock ({path}). Stopped waiting after {}s.",
                                wait.unwrap_or_default().as_secs()
                            )));
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                Err((_, e)) => return Err(Error::Lock(format!("Can't lock {path}: {e}"))),
            }
        }
    }

    /// The file that is locked.
    pub fn file(&self) -> &str {
        &self.path
    }
}
