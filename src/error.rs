//! The library's error type.

use crate::sys::SyscallError;

/// Where in the input a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// File name (`-` or `<stdin>` for standard input).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (byte offset within the line), 0 when it is the whole line.
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.column > 0 {
            write!(f, "{}:{}:{}", self.file, self.line, self.column)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}

/// Everything that can go wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is malformed (iptables-restore exits 2 for these).
    #[error("{at}: {message}")]
    Parse {
        /// Where.
        at: Location,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A command is well-formed but cannot be carried out on the table as it
    /// stands at that line (missing chain, rule not found, ...).
    #[error("{at}: {message}")]
    Apply {
        /// Where.
        at: Location,
        /// What failed.
        message: String,
        /// The exit status iptables-restore uses for this failure.
        exit_code: i32,
    },
    /// A system call failed.
    #[error(transparent)]
    Syscall(#[from] SyscallError),
    /// The kernel refused or returned something we cannot use.
    #[error("table `{table}': {message}")]
    Kernel {
        /// The table.
        table: String,
        /// What happened.
        message: String,
    },
    /// The kernel had no memory for a new table (ENOMEM from SET_REPLACE).
    /// The rules are not at fault: the table was not installed, no table
    /// was changed (tables this run had already replaced were put back), and
    /// the same input may succeed with more memory.
    #[error(
        "{}table `{table}' ({entries} entries, {bytes} bytes): the kernel ran out of memory for the new table (ENOMEM); every table was left as it was. Free memory or raise the memory limit of this process (its memory cgroup), or make the table smaller, then try again",
        at.as_ref().map(|a| format!("{a}: ")).unwrap_or_default()
    )]
    OutOfMemory {
        /// The table.
        table: String,
        /// Its `*table` line in the input, when it came from text.
        at: Option<Location>,
        /// Entries of the new table.
        entries: u32,
        /// Bytes of the new table's entries.
        bytes: usize,
    },
    /// The lockout guard refused the change.
    #[error("{0}")]
    Lockout(String),
    /// The xtables lock could not be taken.
    #[error("{0}")]
    Lock(String),
    /// Anything else (I/O on the input, bad arguments).
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// The input line the error is about, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            Error::Parse { at, .. } | Error::Apply { at, .. } => Some(at.line),
            Error::OutOfMemory { at, .. } => at.as_ref().map(|a| a.line),
            _ => None,
        }
    }

    /// The exit status iptables-restore would use: 2 for bad input, 4 for the
    /// lock, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Parse { .. } => 2,
            Error::Apply { exit_code, .. } => *exit_code,
            Error::Lock(_) => 4,
            Error::Lockout(_) => 3,
            _ => 1,
        }
    }
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;
