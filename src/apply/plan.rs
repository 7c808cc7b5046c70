//! Planning a change: the live table, the table a file asks for, whether
//! they differ, and what the difference is, rule by rule.

use crate::blob::encode_table;
use crate::error::Result;
use crate::restore::writer::save_rule;
use crate::rules::{Chain, Counters, Family, Table};

/// One table of a planned change.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TablePlan {
    /// IPv4 or IPv6.
    pub family: Family,
    /// The table as it is now (the empty table the kernel would create, when
    /// it does not exist yet).
    pub live: Table,
    /// The table as it will be. Rules and policies that do not change keep
    /// their counters.
    pub new: Table,
    /// The table exists in the kernel now.
    pub existed: bool,
}

impl TablePlan {
    /// Plans `new` against `live`: counters of unchanged rules (an equal rule
    /// in the same chain) and of unchanged policies carry over.
    pub fn new(family: Family, live: Table, new: Table, existed: bool) -> TablePlan {
        let mut new = super::keep_counters(&live, new);
        for c in new.chains.iter_mut().filter(|c| c.is_builtin()) {
            if let Some(l) = live.chain(&c.name) {
                if l.policy == c.policy {
                    // Carry the whole policy counters over (not libiptc's
                    // "only what arrived since the read").
                    c.origin = l.origin.map(|(i, _)| (i, Counters::default()));
                    c.counters = l.counters;
                }
            }
        }
        TablePlan {
            family,
            live,
            new,
            existed,
        }
    }

    /// The table name.
    pub fn name(&self) -> &str {
        &self.new.name
    }

    /// True when the kernel would hold different entries afterwards
    /// (counters aside). A table that does not exist yet always changes.
    pub fn changed(&self) -> Result<bool> {
        if !self.existed {
            return Ok(true);
        }
        Ok(encode_table(self.family, &self.live)?.entries()
            != encode_table(self.family, &self.new)?.entries())
    }

    /// What changes, in iptables-save syntax: `-`/`+` for policy lines and
    /// rules removed and added, chain by chain (empty when nothing changes).
    pub fn diff(&self) -> Result<String> {
        let mut out = String::new();
        let mut names: Vec<&str> = self
            .live
            .ordered_chains()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        for c in self.new.ordered_chains() {
            if !names.contains(&c.name.as_str()) {
                names.push(&c.name);
            }
        }
        for name in names {
            let (old, new) = (self.live.chain(name), self.new.chain(name));
            let head = |c: &Chain| match c.policy {
                Some(p) => format!(":{} {}", c.name, p.name()),
                None => format!(":{} -", c.name),
            };
            let mut lines = Vec::new();
            match (old, new) {
                (Some(o), None) => lines.push(format!("-{}", head(o))),
                (None, Some(n)) => lines.push(format!("+{}", head(n))),
                (Some(o), Some(n)) if o.policy != n.policy => {
                    lines.push(format!("-{}", head(o)));
                    lines.push(format!("+{}", head(n)));
                }
                _ => {}
            }
            let a = self.rule_lines(old)?;
            let b = self.rule_lines(new)?;
            for d in diff_lines(&a, &b) {
                lines.push(d);
            }
            if !lines.is_empty() {
                out.push_str(&format!("# chain {name}\n"));
                for l in lines {
                    out.push_str(&l);
                    out.push('\n');
                }
            }
        }
        if !out.is_empty() || !self.existed {
            let fam = if self.family == Family::V4 {
                ""
            } else {
                " (IPv6)"
            };
            let created = if self.existed { "" } else { " (created)" };
            out = format!("*{}{fam}{created}\n{out}", self.name());
        }
        Ok(out)
    }

    fn rule_lines(&self, chain: Option<&Chain>) -> Result<Vec<String>> {
        let Some(c) = chain else {
            return Ok(Vec::new());
        };
        let mut v = Vec::new();
        for r in &c.rules {
            let mut s = String::new();
            save_rule(&mut s, self.family, self.name(), c, r, false)?;
            v.push(s.trim_end().to_string());
        }
        Ok(v)
    }
}

/// `-`/`+` lines turning `a` into `b` (longest common subsequence).
fn diff_lines(a: &[String], b: &[String]) -> Vec<String> {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // Removals before additions, as diff(1) shows a changed line.
            out.push(format!("-{}", a[i]));
            i += 1;
        } else {
            out.push(format!("+{}", b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_lines_is_minimal() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            diff_lines(&s(&["a", "b", "c"]), &s(&["a", "c", "d"])),
            ["-b", "+d"]
        );
        assert!(diff_lines(&s(&["a"]), &s(&["a"])).is_empty());
        assert_eq!(diff_lines(&s(&[]), &s(&["x"])), ["+x"]);
        assert_eq!(
            diff_lines(&s(&["a", "b"]), &s(&["a", "c"])),
            ["-b", "+c"],
            "removal first"
        );
    }
}
