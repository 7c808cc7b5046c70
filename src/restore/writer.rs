//! The iptables-save text of a table, as iptables-legacy-save 1.8.9 prints it.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use crate::error::{Error, Result};
use crate::ext::{self, Kind, RuleContext};
use crate::rules::{inv_flags, ip_flags, Chain, Family, IpMatch, Rule, Table, Target};

/// Prints one table: `*name`, chain lines, rules, `COMMIT`. With `counters`,
/// each rule starts with `[packets:bytes]`. Policy counters are always shown.
pub fn save_table(family: Family, table: &Table, counters: bool) -> Result<String> {
    let mut out = String::new();
    let _ = writeln!(out, "*{}", table.name);
    let chains = table.ordered_chains();
    for c in &chains {
        match c.policy {
            Some(p) => {
                let _ = writeln!(
                    out,
                    ":{} {} [{}:{}]",
                    c.name,
                    p.name(),
                    c.counters.packets,
                    c.counters.bytes
                );
            }
            None => {
                let _ = writeln!(out, ":{} - [0:0]", c.name);
            }
        }
    }
    for c in &chains {
        for r in &c.rules {
            save_rule(&mut out, family, &table.name, c, r, counters)?;
        }
    }
    out.push_str("COMMIT\n");
    Ok(out)
}

fn mask_len(mask: &IpAddr) -> Option<u32> {
    let (bits, total) = match mask {
        IpAddr::V4(m) => (u128::from(u32::from(*m)) << 96, 32),
        IpAddr::V6(m) => (u128::from(*m), 128),
    };
    let ones = bits.leading_ones();
    if bits.checked_shl(ones).unwrap_or(0) == 0 && ones <= total {
        Some(ones)
    } else {
        None
    }
}

/// An address as glibc's inet_ntop prints it (what iptables-save shows).
/// Rust's IPv6 Display agrees with glibc except for one form: glibc writes
/// `::a.b.c.d` (IPv4-compatible) whenever the first six words are zero and
/// the seventh is not (`::1.2.3.4`, `::0.1.0.0`), where Rust gives hex words.
fn addr_text(a: &IpAddr) -> String {
    match a {
        IpAddr::V6(v) => {
            let w = v.segments();
            if w[..6].iter().all(|&x| x == 0) && w[6] != 0 {
                let o = v.octets();
                format!("::{}", Ipv4Addr::new(o[12], o[13], o[14], o[15]))
            } else {
                v.to_string()
            }
        }
        IpAddr::V4(v) => v.to_string(),
    }
}

fn save_addr(out: &mut String, letter: char, a: &IpAddr, mask: &IpAddr, inv: bool) {
    let len = mask_len(mask);
    let unspecified = match a {
        IpAddr::V4(v) => v.is_unspecified(),
        IpAddr::V6(v) => v.is_unspecified(),
    };
    match a {
        IpAddr::V4(_) => {
            if len == Some(0) && !inv && unspecified {
                return;
            }
        }
        IpAddr::V6(_) => {
            if !inv && len == Some(0) {
                return;
            }
        }
    }
    if inv {
        out.push_str(" !");
    }
    let _ = write!(out, " -{letter} {}/", addr_text(a));
    match len {
        Some(l) => {
            let _ = write!(out, "{l}");
        }
        None => {
            out.push_str(&addr_text(mask));
        }
    }
}

fn save_ip(out: &mut String, family: Family, ip: &IpMatch) {
    save_addr(
        out,
        's',
        &ip.src,
        &ip.src_mask,
        ip.invflags & inv_flags::SRCIP != 0,
    );
    save_addr(
        out,
        'd',
        &ip.dst,
        &ip.dst_mask,
        ip.invflags & inv_flags::DSTIP != 0,
    );
    for (letter, iface, bit) in [
        ('i', &ip.in_iface, inv_flags::VIA_IN),
        ('o', &ip.out_iface, inv_flags::VIA_OUT),
    ] {
        if iface.is_any() {
            continue;
        }
        if ip.invflags & bit != 0 {
            out.push_str(" !");
        }
        let _ = write!(out, " -{letter} {}", iface.to_save());
    }
    if ip.proto > 0 {
        if ip.invflags & inv_flags::PROTO != 0 {
            out.push_str(" !");
        }
        match super::parser::proto_to_name(ip.proto) {
            Some(n) => {
                let _ = write!(out, " -p {n}");
            }
            None => {
                let _ = write!(out, " -p {}", ip.proto);
            }
        }
    }
    if family == Family::V4 && ip.flags & ip_flags::FRAG != 0 {
        if ip.invflags & inv_flags::FRAG != 0 {
            out.push_str(" !");
        }
        out.push_str(" -f");
    }
}

fn save_ext(
    out: &mut String,
    kind: Kind,
    family: Family,
    e: &crate::rules::Extension,
    ctx: &RuleContext,
) -> Result<()> {
    let codec = ext::by_kernel_name(kind, family, &e.name).ok_or_else(|| {
        Error::Other(format!(
            "Can't find library for {} `{}' (revision {}): iptables-atomic cannot print it",
            if kind == Kind::Match {
                "match"
            } else {
                "target"
            },
            e.name,
            e.revision
        ))
    })?;
    let flag = if kind == Kind::Match { "-m" } else { "-j" };
    let _ = write!(out, " {flag} {}", codec.save_name(e.revision, &e.data));
    if !codec.revisions(family).contains(&e.revision) {
        out.push_str(" [unsupported revision]");
        return Ok(());
    }
    codec.save(e.revision, &e.data, ctx, out).map_err(|m| {
        Error::Other(format!(
            "cannot print {} revision {}: {m}",
            e.name, e.revision
        ))
    })
}

/// Appends one `-A` line.
pub fn save_rule(
    out: &mut String,
    family: Family,
    table: &str,
    chain: &Chain,
    r: &Rule,
    counters: bool,
) -> Result<()> {
    if counters {
        let _ = write!(out, "[{}:{}] ", r.counters.packets, r.counters.bytes);
    }
    let _ = write!(out, "-A {}", chain.name);
    save_ip(out, family, &r.ip);
    let ctx = RuleContext {
        family,
        ip: &r.ip,
        table,
    };
    for m in &r.matches {
        save_ext(out, Kind::Match, family, m, &ctx)?;
    }
    match &r.target {
        Target::Fallthrough => {}
        Target::Verdict(v) => {
            let _ = write!(out, " -j {}", v.name());
        }
        Target::Jump(c) => {
            let _ = write!(out, " -j {c}");
        }
        Target::Goto(c) => {
            let _ = write!(out, " -g {c}");
        }
        Target::Extension(e) => save_ext(out, Kind::Target, family, e, &ctx)?,
    }
    out.push('\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs from ip6tables-legacy-save 1.8.9 (glibc inet_ntop).
    #[test]
    fn ipv6_addresses_print_as_glibc_does() {
        for (given, saved) in [
            ("::1.2.3.4", "::1.2.3.4"),
            ("::0.1.0.0", "::0.1.0.0"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::ffff:0:1.2.3.4", "::ffff:0:102:304"),
            ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),
            ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"),
            ("::2", "::2"),
            ("::0.0.1.0", "::100"),
            ("::", "::"),
        ] {
            let a: IpAddr = given.parse().unwrap();
            assert_eq!(addr_text(&a), saved, "{given}");
        }
    }
}
