//! A look at nf_tables: which tables exist, so that a user whose host also
//! runs iptables-nft learns that packets go through both rule sets.
//! One netlink dump (NFT_MSG_GETTABLE); nothing is changed.

use nix::sys::socket::{
    recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

use crate::error::{Error, Result};
use crate::rules::Family;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NFTA_TABLE_NAME: u16 = 1;
const NLMSG_HDRLEN: usize = 16;
const NFGENMSG_LEN: usize = 4;

/// An nf_tables table: its family (NFPROTO_*) and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftTable {
    /// NFPROTO_IPV4 (2), NFPROTO_IPV6 (10), NFPROTO_INET (1), …
    pub family: u8,
    /// The table's name.
    pub name: String,
}

impl NftTable {
    /// True for a table iptables-nft makes for this family (`ip filter`,
    /// `ip6 nat`, …).
    pub fn is_iptables_nft(&self, family: Family) -> bool {
        let fam = match family {
            Family::V4 => libc::NFPROTO_IPV4,
            Family::V6 => libc::NFPROTO_IPV6,
        } as u8;
        self.family == fam && crate::rules::builtin_hooks(&self.name).is_some()
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Parses a dump answer; `None` when it ends (NLMSG_DONE).
fn parse_messages(buf: &[u8], out: &mut Vec<NftTable>) -> std::result::Result<bool, String> {
    let mut off = 0;
    while off + NLMSG_HDRLEN <= buf.len() {
        let len = u32::from_ne_bytes(buf[off..off + 4].try_into().expect("4 bytes")) as usize;
        let ty = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().expect("2 bytes"));
        if len < NLMSG_HDRLEN || off + len > buf.len() {
            return Err("malformed netlink answer".into());
        }
        match ty {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = buf
                    .get(off + 16..off + 20)
                    .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                    .unwrap_or(0);
                if code != 0 {
                    return Err(format!("nf_tables answered error {}", -code));
                }
            }
            t if t == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE => {
                let family = buf[off + NLMSG_HDRLEN];
                let mut a = off + NLMSG_HDRLEN + NFGENMSG_LEN;
                while a + 4 <= off + len {
                    let alen =
                        u16::from_ne_bytes(buf[a..a + 2].try_into().expect("2 bytes")) as usize;
                    let aty =
                        u16::from_ne_bytes(buf[a + 2..a + 4].try_into().expect("2 bytes")) & 0x3fff;
                    if alen < 4 || a + alen > off + len {
                        break;
                    }
                    if aty == NFTA_TABLE_NAME {
                        let v = &buf[a + 4..a + alen];
                        let name = crate::text::from_bytes(
                            &v[..v.iter().position(|&b| b == 0).unwrap_or(v.len())],
                        )
                        .into_owned();
                        out.push(NftTable { family, name });
                    }
                    a += align4(alen);
                }
            }
            _ => {}
        }
        off += align4(len);
    }
    Ok(false)
}

/// The nf_tables tables of the current thread's network namespace.
pub fn tables() -> Result<Vec<NftTable>> {
    let err = |m: String| Error::Other(format!("nf_tables: {m}"));
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkNetFilter,
    )
    .map_err(|e| err(format!("socket: {e}")))?;
    let mut req = Vec::with_capacity(NLMSG_HDRLEN + NFGENMSG_LEN);
    req.extend_from_slice(&((NLMSG_HDRLEN + NFGENMSG_LEN) as u32).to_ne_bytes());
    req.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE).to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
    req.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel assigns
    req.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]); // nfgenmsg: every family, version 0
    sendto(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &req,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )
    .map_err(|e| err(format!("send: {e}")))?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    for _ in 0..10_000 {
        let n = recv(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &mut buf,
            MsgFlags::empty(),
        )
        .map_err(|e| err(format!("recv: {e}")))?;
        if n == 0 || parse_messages(&buf[..n], &mut out).map_err(err)? {
            return Ok(out);
        }
    }
    Ok(out)
}

/// A warning when iptables-nft tables of these names exist beside ours.
pub fn mixed_backend_warning(family: Family, names: &[String]) -> Option<String> {
    let nft = tables().ok()?;
    let both: Vec<&str> = nft
        .iter()
        .filter(|t| t.is_iptables_nft(family) && names.contains(&t.name))
        .map(|t| t.name.as_str())
        .collect();
    if both.is_empty() {
        return None;
    }
    let fam = if family == Family::V4 { "ip" } else { "ip6" };
    Some(format!(
        "nf_tables also has table(s) {} of family {fam} (iptables-nft): packets go through both those rules and these x_tables ones",
        both.join(", ")
    ))
}
