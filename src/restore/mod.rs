//! The iptables-restore format: lexer, parser and the iptables-save writer.
//!
//! [`parse`] reads a whole file into a [`Script`]: per table, the commands
//! in file order, with every rule already turned into kernel payloads. Nothing
//! touches the kernel here, so a bad line anywhere means nothing is applied.

pub(crate) mod direct;
pub mod lexer;
mod parser;
pub mod writer;

pub use direct::encode_text;
pub(crate) use parser::PARALLEL_BYTES;
pub use parser::{parse, parse_partial, parse_rule};

use crate::rules::{Counters, Extension, Family, Rule, Verdict};

/// How to read a restore file.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RestoreOptions {
    /// IPv4 or IPv6 syntax.
    pub family: Family,
    /// `-c`: honour `[packets:bytes]` counters in the file.
    pub counters: bool,
    /// `-n`: do not flush the tables first.
    pub noflush: bool,
    /// `-T TABLE`: only this table is restored; the rest of the file is skipped.
    pub table: Option<String>,
    /// The name used in error messages.
    pub file_name: String,
}

impl RestoreOptions {
    /// Defaults: IPv4, no counters, flush, every table, file name `<stdin>`.
    pub fn new(family: Family) -> RestoreOptions {
        RestoreOptions {
            family,
            counters: false,
            noflush: false,
            table: None,
            file_name: "<stdin>".into(),
        }
    }
}

/// What `-j NAME` / `-g NAME` names, before chains are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// No `-j`.
    None,
    /// `-j ACCEPT|DROP|QUEUE|RETURN`.
    Verdict(Verdict),
    /// A chain or a target extension: which one is decided when the command
    /// runs (a chain of that name wins, as in iptables).
    Named {
        /// The name.
        name: String,
        /// The target extension's payload, when one of that name exists.
        ext: Option<Extension>,
        /// `-g` rather than `-j`.
        goto: bool,
    },
}

/// A rule as parsed: its target is resolved when the command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    /// The rule; its target is a placeholder until resolved.
    pub rule: Rule,
    /// What the rule jumps to.
    pub target: TargetSpec,
}

/// One command of a table block.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// `:NAME POLICY [p:b]`: create (or, with `-n`, flush) a user chain, or set
    /// a built-in chain's policy.
    DeclareChain {
        /// Chain name.
        name: String,
        /// The policy word (`-` for a user chain).
        policy: String,
        /// Counters (with `-c`).
        counters: Counters,
    },
    /// `-A CHAIN rule`: one rule per source/destination address pair.
    Append {
        /// Chain.
        chain: String,
        /// Rules.
        rules: Vec<RuleSpec>,
    },
    /// `-I CHAIN [N] rule`.
    Insert {
        /// Chain.
        chain: String,
        /// 1-based position.
        num: usize,
        /// Rules.
        rules: Vec<RuleSpec>,
    },
    /// `-D CHAIN rule`.
    Delete {
        /// Chain.
        chain: String,
        /// Rules.
        rules: Vec<RuleSpec>,
    },
    /// `-D CHAIN N`.
    DeleteNum {
        /// Chain.
        chain: String,
        /// 1-based position.
        num: usize,
    },
    /// `-R CHAIN N rule`.
    Replace {
        /// Chain.
        chain: String,
        /// 1-based position.
        num: usize,
        /// The rule (boxed: keeps every command small).
        rule: Box<RuleSpec>,
    },
    /// `-C CHAIN rule`: fails when the rule is absent.
    Check {
        /// Chain.
        chain: String,
        /// Rules.
        rules: Vec<RuleSpec>,
    },
    /// `-N CHAIN`.
    NewChain(String),
    /// `-X [CHAIN]`.
    DeleteChain(Option<String>),
    /// `-F [CHAIN]`.
    Flush(Option<String>),
    /// `-Z [CHAIN [N]]`.
    Zero(Option<String>, Option<usize>),
    /// `-P CHAIN POLICY`.
    Policy {
        /// Chain.
        chain: String,
        /// Policy word.
        policy: String,
        /// Counters (`-c` on the line).
        counters: Option<Counters>,
    },
    /// `-E OLD NEW`.
    Rename {
        /// Old name.
        old: String,
        /// New name.
        new: String,
    },
}

/// A command with its line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// 1-based line.
    pub line: usize,
    /// What to do.
    pub op: Op,
}

/// One `*table ... COMMIT` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Table name.
    pub table: String,
    /// Line of `*table`.
    pub line: usize,
    /// Commands in file order.
    pub commands: Vec<Command>,
}

/// A parsed restore file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The family it was parsed for.
    pub family: Family,
    /// The file name used in messages.
    pub file_name: String,
    /// Table blocks in file order (a table may appear more than once).
    pub blocks: Vec<Block>,
}
