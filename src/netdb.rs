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

/// xtables_getportbyname: a decimal port, or the first service of that name
/// in any protocol (getaddrinfo with no hints).
pub fn port_by_name(name: &str) -> Option<u16> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        return name.parse::<u16>().ok();
    }
    let text = std::fs::read_to_string("/etc/services").ok()?;
    text.lines().find_map(|line| {
        let mut w = words(line);
        let (n, portproto) = (w.next()?, w.next()?);
        let port = portproto.split_once('/')?.0.parse::<u16>().ok()?;
        (n == name || w.any(|a| a == name)).then_some(port)
    })
}
