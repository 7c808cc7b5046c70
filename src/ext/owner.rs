//! `-m owner` (xt_owner revision 1): the socket owner of locally generated
//! packets. Options: `[!] --uid-owner USER|ID[-ID]`,
//! `[!] --gid-owner GROUP|ID[-ID]`, `[!] --socket-exists`, `--suppl-groups`.
//!
//! Revision 1 is the same for IPv4 and IPv6. iptables 1.8.9 also ships
//! revision 0 (ipt_owner/ip6t_owner, with --pid-owner and friends), which
//! kernels no longer have; it is not implemented, and its options are not
//! accepted (as with iptables on such a kernel).
//!
//! User and group names are looked up in `/etc/passwd` and `/etc/group`
//! (the first entry with that name, as getpwnam/getgrnam's files backend
//! finds it), before the argument is tried as a number.

use std::mem::offset_of;

use super::recent::{XtFlags, XtOpt, XTOPT_INVERT};
use super::{
    strtoul_prefix, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    xt_owner_match_info, XT_OWNER_GID, XT_OWNER_SOCKET, XT_OWNER_SUPPL_GROUPS, XT_OWNER_UID,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Owner];

mod field {
    use super::*;
    pub const UID_MIN: usize = offset_of!(xt_owner_match_info, uid_min);
    pub const UID_MAX: usize = offset_of!(xt_owner_match_info, uid_max);
    pub const GID_MIN: usize = offset_of!(xt_owner_match_info, gid_min);
    pub const GID_MAX: usize = offset_of!(xt_owner_match_info, gid_max);
    pub const MATCH: usize = offset_of!(xt_owner_match_info, match_);
    pub const INVERT: usize = offset_of!(xt_owner_match_info, invert);
}

const O_USER: u8 = 0;
const O_GROUP: u8 = 1;
const O_SOCK_EXISTS: u8 = 2;
const O_SUPPL_GROUPS: u8 = 6;
const TABLE_ARR: [XtOpt; 4] = [
    XtOpt::new("uid-owner", O_USER, Arg::One, XTOPT_INVERT),
    XtOpt::new("gid-owner", O_GROUP, Arg::One, XTOPT_INVERT),
    XtOpt::new("socket-exists", O_SOCK_EXISTS, Arg::None, XTOPT_INVERT),
    XtOpt::new("suppl-groups", O_SUPPL_GROUPS, Arg::None, 0),
];
static SPECS: [OptSpec; 4] = XtOpt::specs(&TABLE_ARR);

/// The id of the first entry named `name` in a passwd/group style file
/// (`name:password:id:...`), as the files backend of getpwnam/getgrnam
/// reads it: blank and `#` lines are skipped, so are lines whose id is not
/// a number.
pub(crate) fn lookup_id(text: &str, name: &str) -> Option<u32> {
    if name.is_empty() {
        return None;
    }
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let n = f.next()?;
            let _password = f.next()?;
            let id = f.next()?.parse::<u32>().ok()?;
            Some((n, id))
        })
        .find(|(n, _)| *n == name)
        .map(|(_, id)| id)
}

fn lookup_in(path: &str, name: &str) -> Option<u32> {
    lookup_id(&std::fs::read_to_string(path).ok()?, name)
}

/// xtables_strtoui with an end pointer: a leading number in `0..=max`
/// (no sign), and the rest of the text.
fn strtoui_prefix(s: &str, max: u64) -> Option<(u32, &str)> {
    if s.trim_start_matches(|c: char| super::mac::is_c_space(c as u8))
        .starts_with('-')
    {
        return None;
    }
    let (v, rest) = strtoul_prefix(s)?;
    (v <= max).then_some((v as u32, rest))
}

/// owner_parse_range: `ID`, `ID-ID` or `ID:ID`, each below 2^32 - 1 (-1 is
/// reserved).
fn parse_id_range(s: &str, opt: &str) -> ExtResult<[u32; 2]> {
    let bad = || format!("owner: Bad value for \"{opt}\" option: \"{s}\"");
    const MAX: u64 = u32::MAX as u64 - 1;
    let (from, mut rest) = strtoui_prefix(s, MAX).ok_or_else(bad)?;
    let mut to = from;
    if let Some(r) = rest.strip_prefix(['-', ':']) {
        (to, rest) = strtoui_prefix(r, MAX).ok_or_else(bad)?;
    }
    if !rest.is_empty() {
        return Err(bad());
    }
    Ok([from, to])
}

struct Owner;

impl Codec for Owner {
    fn name(&self) -> &'static str {
        "owner"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V4, Family::V6]
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[1]
    }
    fn options(&self) -> &'static [OptSpec] {
        &SPECS
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_owner_match_info>();
        let mut xf = XtFlags::default();
        let (mut matched, mut invert) = (0u8, 0u8);
        for o in opts {
            let id = xf.take("owner", &TABLE_ARR, o)?;
            let flag = match id {
                O_USER | O_GROUP => {
                    let (file, opt, flag, min, max) = if id == O_USER {
                        (
                            "/etc/passwd",
                            "--uid-owner",
                            XT_OWNER_UID,
                            field::UID_MIN,
                            field::UID_MAX,
                        )
                    } else {
                        (
                            "/etc/group",
                            "--gid-owner",
                            XT_OWNER_GID,
                            field::GID_MIN,
                            field::GID_MAX,
                        )
                    };
                    let [from, to] = match lookup_in(file, o.arg()) {
                        Some(id) => [id, id],
                        None => parse_id_range(o.arg(), opt)?,
                    };
                    p.u32(min, from).u32(max, to);
                    flag
                }
                O_SOCK_EXISTS => XT_OWNER_SOCKET,
                _ => {
                    if u32::from(matched) & XT_OWNER_GID == 0 {
                        return Err(
                            "owner: Bad value for \"--suppl-groups\" option: \"you need to use --gid-owner first\"".into()
                        );
                    }
                    XT_OWNER_SUPPL_GROUPS
                }
            } as u8;
            matched |= flag;
            if o.invert {
                invert |= flag;
            }
        }
        if !xf.any(u32::MAX) {
            return Err(
                "owner: At least one of --uid-owner, --gid-owner or --socket-exists is required"
                    .into(),
            );
        }
        p.u8(field::MATCH, matched).u8(field::INVERT, invert);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_owner_match_info>())?;
        let matched = u32::from(r.u8(field::MATCH)?);
        let invert = u32::from(r.u8(field::INVERT)?);
        for (flag, label) in [
            (XT_OWNER_SOCKET, "--socket-exists"),
            (XT_OWNER_UID, "--uid-owner"),
            (XT_OWNER_GID, "--gid-owner"),
            (XT_OWNER_SUPPL_GROUPS, "--suppl-groups"),
        ] {
            if matched & flag == 0 {
                continue;
            }
            if invert & flag != 0 {
                out.push_str(" !");
            }
            out.push(' ');
            out.push_str(label);
            let range = match flag {
                XT_OWNER_UID => Some((field::UID_MIN, field::UID_MAX)),
                XT_OWNER_GID => Some((field::GID_MIN, field::GID_MAX)),
                _ => None,
            };
            if let Some((min, max)) = range {
                let (lo, hi) = (r.u32(min)?, r.u32(max)?);
                if lo != hi {
                    out.push_str(&format!(" {lo}-{hi}"));
                } else {
                    out.push_str(&format!(" {lo}"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::recent::testkit::{parse, save};
    use super::super::testutil::hex;
    use super::*;

    // Captured from the kernel after iptables-legacy-restore 1.8.9
    // (xt_owner_match_info), in the OUTPUT chain.

    /// `-m owner --uid-owner 0-999 ! --gid-owner 100 --suppl-groups`
    fn uid_gid_suppl() -> Vec<u8> {
        hex(concat!(
            "00000000", // uid_min 0
            "e7030000", // uid_max 999
            "64000000", // gid_min 100
            "64000000", // gid_max 100
            "0b",       // match UID | GID | SUPPL_GROUPS
            "02",       // invert GID
            "0000",     // padding
            "00000000", // XT_ALIGN padding
        ))
    }

    /// `-m owner ! --socket-exists`
    fn no_socket() -> Vec<u8> {
        hex(concat!(
            "00000000000000000000000000000000", // uid/gid ranges unused
            "04",                               // match SOCKET
            "04",                               // invert SOCKET
            "0000",                             // padding
            "00000000",                         // XT_ALIGN padding
        ))
    }

    /// `-m owner ! --uid-owner 1000`
    fn not_uid() -> Vec<u8> {
        hex(concat!(
            "e8030000", // uid_min 1000
            "e8030000", // uid_max 1000
            "00000000", // gid_min
            "00000000", // gid_max
            "01",       // match UID
            "01",       // invert UID
            "0000",     // padding
            "00000000", // XT_ALIGN padding
        ))
    }

    #[test]
    fn parse_matches_kernel() {
        assert_eq!(
            parse(
                &Owner,
                1,
                "--uid-owner 0-999 ! --gid-owner 100 --suppl-groups"
            )
            .unwrap(),
            uid_gid_suppl()
        );
        assert_eq!(
            parse(
                &Owner,
                1,
                "--uid-owner 0:0x3e7 ! --gid-owner 0144 --suppl-groups"
            )
            .unwrap(),
            uid_gid_suppl()
        );
        assert_eq!(parse(&Owner, 1, "! --socket-exists").unwrap(), no_socket());
        assert_eq!(parse(&Owner, 1, "! --uid-owner 1000").unwrap(), not_uid());
        assert_eq!(
            parse(&Owner, 1, "! --uid-owner 1000-1000").unwrap(),
            not_uid()
        );
    }

    #[test]
    fn save_matches_iptables() {
        assert_eq!(
            save(&Owner, 1, &uid_gid_suppl()),
            " --uid-owner 0-999 ! --gid-owner 100 --suppl-groups"
        );
        assert_eq!(save(&Owner, 1, &no_socket()), " ! --socket-exists");
        assert_eq!(save(&Owner, 1, &not_uid()), " ! --uid-owner 1000");
    }

    #[test]
    fn names_resolve_from_passwd_style_text() {
        let text = "# comment\n\nroot:x:0:0:root:/root:/bin/sh\n  web:x:33:33::/:/bin/false\nbad:x:notanumber:1\nweb:x:99:99::/:\n";
        assert_eq!(lookup_id(text, "root"), Some(0));
        assert_eq!(lookup_id(text, "web"), Some(33)); // the first entry wins
        assert_eq!(lookup_id(text, "bad"), None);
        assert_eq!(lookup_id(text, "nobody"), None);
        assert_eq!(lookup_id(text, ""), None);
        // "root" is in every /etc/passwd and /etc/group.
        assert_eq!(
            parse(&Owner, 1, "--uid-owner root --gid-owner root").unwrap()[..16],
            [0; 16]
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let bad = |s: &str| parse(&Owner, 1, s).unwrap_err();
        assert_eq!(
            bad(""),
            "owner: At least one of --uid-owner, --gid-owner or --socket-exists is required"
        );
        for v in [
            "no-such-user-here",
            "4294967295",
            "5-",
            "-5",
            "5-6-7",
            "1-2x",
        ] {
            assert_eq!(
                bad(&format!("--uid-owner {v}")),
                format!("owner: Bad value for \"--uid-owner\" option: \"{v}\"")
            );
        }
        assert_eq!(
            bad("--suppl-groups --gid-owner 5"),
            "owner: Bad value for \"--suppl-groups\" option: \"you need to use --gid-owner first\""
        );
        assert_eq!(
            bad("--gid-owner 5 ! --suppl-groups"),
            "owner: option \"--suppl-groups\" cannot be inverted."
        );
        assert_eq!(
            bad("--uid-owner 1 --uid-owner 2"),
            "owner: option \"--uid-owner\" can only be used once."
        );
    }
}
