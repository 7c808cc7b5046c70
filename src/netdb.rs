//! Names from the system's network databases, read the way libc does:
//! `/etc/protocols` for `-p NAME`, `/etc/services` for port names.
//! Files are read once and cached; a missing file means no names.

use std::collections::HashMap;
use std::sync::OnceLock;

struct Db {
    protocols: HashMap<String, u8>,
    protocol_names: HashMap<u8, String>,
    services: HashMap<(String, String), u16>,
}

fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split('#').next().unwrap_or("").split_whitespace()
}

fn load() -> Db {
    let mut db = Db {
        protocols: HashMap::new(),
        protocol_names: HashMap::new(),
        services: HashMap::new(),
    };
    if let Ok(text) = std::fs::read_to_string("/etc/protocols") {
        for line in text.lines() {
            let mut w = words(line);
            let (Some(name), Some(num)) = (w.next(), w.next()) else {
                continue;
            };
            let Ok(num) = num.parse::<u8>() else { continue };
            db.protocol_names
                .entry(num)
                .or_insert_with(|| name.to_string());
            db.protocols.entry(name.to_string()).or_insert(num);
            for alias in w {
                db.protocols.entry(alias.to_string()).or_insert(num);
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string("/etc/services") {
        for line in text.lines() {
            let mut w = words(line);
            let (Some(name), Some(portproto)) = (w.next(), w.next()) else {
                continue;
            };
            let Some((port, proto)) = portproto.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            db.services
                .entry((name.to_string(), proto.to_string()))
                .or_insert(port);
            for alias in w {
                db.services
                    .entry((alias.to_string(), proto.to_string()))
                    .or_insert(port);
            }
        }
    }
    db
}

fn db() -> &'static Db {
    static DB: OnceLock<Db> = OnceLock::new();
    DB.get_or_init(load)
}

/// getprotobyname: the number of a protocol name or alias.
pub fn protocol_by_name(name: &str) -> Option<u8> {
    db().protocols.get(name).copied()
}

/// getprotobynumber: the official name of a protocol number.
pub fn protocol_name(num: u8) -> Option<&'static str> {
    db().protocol_names.get(&num).map(String::as_str)
}

/// getservbyname: the port of a service name for a protocol (`tcp`, `udp`, ...).
pub fn service_port(name: &str, proto: &str) -> Option<u16> {
    db().services
        .get(&(name.to_string(), proto.to_string()))
        .copied()
}

/// The number glibc's getaddrinfo would read from a service string: strtoul
/// base 10 over the whole string (leading blanks and a sign allowed; an empty
/// string is 0). `None` when the string is not all number.
fn numeric_service(s: &str) -> Option<u64> {
    if s.is_empty() {
        return Some(0);
    }
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v = t.parse::<u64>().unwrap_or(u64::MAX);
    Some(if neg { v.wrapping_neg() } else { v })
}

/// xtables_getportbyname: a number, or a service of that name (tcp, then
/// udp). Numbers above 65535 are refused: iptables 1.8.9 would silently cut
/// them to 16 bits (`70000` becomes port 4464), which is never what the
/// author meant.
pub fn port_by_name(name: &str) -> Result<u16, String> {
    if let Some(v) = numeric_service(name) {
        return u16::try_from(v)
            .map_err(|_| format!("port `{name}' is out of range: ports are 0 to 65535"));
    }
    service_port(name, "tcp")
        .or_else(|| service_port(name, "udp"))
        .ok_or_else(|| format!("Port \"{name}\" does not resolve to anything: expected 0 to 65535 or a name from /etc/services"))
}
