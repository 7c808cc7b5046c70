//! `-m sctp` (xt_sctp): SCTP ports and chunk types (with chunk flags).
//! Loaded implicitly by `-p sctp` when one of its options follows.
//!
//! libxt_sctp's quirks are kept, since they decide the kernel bytes and the
//! saved text: the four flag slots start with chunk type 0xff; a flag slot
//! records the index of the chunk name in iptables' table, not the chunk
//! type (they differ from I_DATA on, whose flags therefore never print);
//! ports given without the option are left 0:0, not 0:65535.

use std::mem::{offset_of, size_of};

use super::{
    opt, parse_port_range, save_inv, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload,
    Reader, RuleContext,
};
use crate::rules::{inv_flags, Family};
use crate::sys::bindings::{
    xt_sctp_flag_info, xt_sctp_info, XT_NUM_SCTP_FLAGS, XT_SCTP_CHUNK_TYPES, XT_SCTP_DEST_PORTS,
    XT_SCTP_SRC_PORTS,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Sctp];

mod field {
    use super::*;
    pub const DPTS: usize = offset_of!(xt_sctp_info, dpts);
    pub const SPTS: usize = offset_of!(xt_sctp_info, spts);
    pub const CHUNKMAP: usize = offset_of!(xt_sctp_info, chunkmap);
    pub const CHUNK_MATCH_TYPE: usize = offset_of!(xt_sctp_info, chunk_match_type);
    pub const FLAG_INFO: usize = offset_of!(xt_sctp_info, flag_info);
    pub const FLAG_COUNT: usize = offset_of!(xt_sctp_info, flag_count);
    pub const FLAGS: usize = offset_of!(xt_sctp_info, flags);
    pub const INVFLAGS: usize = offset_of!(xt_sctp_info, invflags);
    /// One `xt_sctp_flag_info` slot and its fields.
    pub const SLOT: usize = size_of::<xt_sctp_flag_info>();
    pub const SLOT_CHUNKTYPE: usize = offset_of!(xt_sctp_flag_info, chunktype);
    pub const SLOT_FLAG: usize = offset_of!(xt_sctp_flag_info, flag);
    pub const SLOT_FLAG_MASK: usize = offset_of!(xt_sctp_flag_info, flag_mask);
}

// SCTP_CHUNK_MATCH_* (#defines of xt_sctp.h outside the bindgen allowlist).
const MATCH_ANY: u32 = 0x01;
const MATCH_ALL: u32 = 0x02;
const MATCH_ONLY: u32 = 0x04;

/// IPPROTO_SCTP: xt_sctp is registered for SCTP only.
const SCTP: u16 = 132;

const SLOTS: usize = XT_NUM_SCTP_FLAGS as usize;
/// The chunk map's u32 words: 64 of them (`256 / sizeof(__u32)`), although
/// only the first 8 hold chunk types (`type / 32`); `ALL` fills every word.
const CHUNK_WORDS: usize = (field::CHUNK_MATCH_TYPE - field::CHUNKMAP) / 4;

/// libxt_sctp's chunk table: name, chunk type and the flag letters for bits
/// 7..0 (`-` where the bit has no name). Order matters (see module docs).
const CHUNKS: &[(&str, u8, &[u8; 8])] = &[
    ("DATA", 0, b"----IUBE"),
    ("INIT", 1, b"--------"),
    ("INIT_ACK", 2, b"--------"),
    ("SACK", 3, b"--------"),
    ("HEARTBEAT", 4, b"--------"),
    ("HEARTBEAT_ACK", 5, b"--------"),
    ("ABORT", 6, b"-------T"),
    ("SHUTDOWN", 7, b"--------"),
    ("SHUTDOWN_ACK", 8, b"--------"),
    ("ERROR", 9, b"--------"),
    ("COOKIE_ECHO", 10, b"--------"),
    ("COOKIE_ACK", 11, b"--------"),
    ("ECN_ECNE", 12, b"--------"),
    ("ECN_CWR", 13, b"--------"),
    ("SHUTDOWN_COMPLETE", 14, b"-------T"),
    ("I_DATA", 64, b"----IUBE"),
    ("RE_CONFIG", 130, b"--------"),
    ("PAD", 132, b"--------"),
    ("ASCONF", 193, b"--------"),
    ("ASCONF_ACK", 128, b"--------"),
    ("FORWARD_TSN", 192, b"--------"),
    ("I_FORWARD_TSN", 194, b"--------"),
];

/// The chunk part of the payload while it is being built.
struct Chunks {
    map: [u32; CHUNK_WORDS],
    /// (chunktype, flag, flag_mask) per slot; unused slots keep type 0xff.
    slots: [[u8; 3]; SLOTS],
    count: usize,
}

impl Chunks {
    fn new() -> Chunks {
        Chunks {
            map: [0; CHUNK_WORDS],
            slots: [[0xff, 0, 0]; SLOTS],
            count: 0,
        }
    }

    fn set(&mut self, ty: u8) {
        self.map[usize::from(ty) / 32] |= 1 << (ty % 32);
    }

    /// save_chunk_flag_info: merge into the slot of `index`, or take a new one.
    fn add_flag(&mut self, index: u8, bit: u8, set: bool) -> ExtResult<()> {
        let slot = match self.slots[..self.count].iter().position(|s| s[0] == index) {
            Some(j) => j,
            None => {
                if self.count == SLOTS {
                    return Err("Number of chunk types with flags exceeds currently allowed limit. Increasing this limit involves changing IPT_NUM_SCTP_FLAGS and recompiling both the kernel space and user space modules".into());
                }
                self.count += 1;
                self.slots[self.count - 1] = [index, 0, 0];
                self.count - 1
            }
        };
        self.slots[slot][2] |= 1 << bit;
        if set {
            self.slots[slot][1] |= 1 << bit;
        }
        Ok(())
    }

    /// parse_sctp_chunk: `ALL`, `NONE`, or a comma list of `NAME[:FLAGS]`.
    fn parse(&mut self, list: &str) -> ExtResult<()> {
        if list.eq_ignore_ascii_case("ALL") {
            self.map = [u32::MAX; CHUNK_WORDS];
            return Ok(());
        }
        if list.eq_ignore_ascii_case("NONE") {
            return Ok(());
        }
        for item in list.split(',').filter(|s| !s.is_empty()) {
            let (name, flags) = match item.split_once(':') {
                Some((n, f)) => (n, Some(f)),
                None => (item, None),
            };
            let index = CHUNKS
                .iter()
                .position(|(n, _, _)| n.eq_ignore_ascii_case(name))
                .ok_or_else(|| format!("Unknown sctp chunk `{name}'"))?;
            let (_, ty, letters) = CHUNKS[index];
            self.set(ty);
            for c in flags.unwrap_or("").bytes() {
                let pos = letters
                    .iter()
                    .position(|&l| l == c.to_ascii_uppercase())
                    .ok_or_else(|| format!("Invalid flags for chunk type {index}"))?;
                self.add_flag(index as u8, 7 - pos as u8, c.is_ascii_uppercase())?;
            }
        }
        Ok(())
    }
}

struct Sctp;

impl Codec for Sctp {
    fn name(&self) -> &'static str {
        "sctp"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("source-port", Arg::One),
            opt("sport", Arg::One),
            opt("destination-port", Arg::One),
            opt("dport", Arg::One),
            opt("chunk-types", Arg::Two),
        ];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_sctp_info>();
        let (mut flags, mut inv) = (0u32, 0u32);
        let mut chunks = Chunks::new();
        for o in opts {
            let (bit, what) = match o.name {
                "source-port" | "sport" => (XT_SCTP_SRC_PORTS, "--source-port"),
                "destination-port" | "dport" => (XT_SCTP_DEST_PORTS, "--destination-port"),
                "chunk-types" => (XT_SCTP_CHUNK_TYPES, "--chunk-types"),
                _ => return Err(super::unknown_option("sctp", o)),
            };
            if flags & bit != 0 {
                return Err(format!("Only one `{what}' allowed"));
            }
            flags |= bit;
            if o.invert {
                inv |= bit;
            }
            match bit {
                XT_SCTP_SRC_PORTS | XT_SCTP_DEST_PORTS => {
                    let ports = parse_port_range(o.arg(), "sctp")?;
                    let off = if bit == XT_SCTP_SRC_PORTS {
                        field::SPTS
                    } else {
                        field::DPTS
                    };
                    p.u16(off, ports[0]).u16(off + 2, ports[1]);
                }
                _ => {
                    let list = o.args.get(1).ok_or("--chunk-types requires two args")?;
                    let ty = match o.arg().to_ascii_uppercase().as_str() {
                        "ANY" => MATCH_ANY,
                        "ALL" => MATCH_ALL,
                        "ONLY" => MATCH_ONLY,
                        _ => {
                            return Err(
                                "Match type has to be one of \"ALL\", \"ANY\" or \"ONLY\"".into()
                            )
                        }
                    };
                    p.u32(field::CHUNK_MATCH_TYPE, ty);
                    chunks.parse(list)?;
                }
            }
        }
        // The kernel refuses the match in any rule that is not `-p sctp`.
        if ctx.ip.proto != SCTP || ctx.ip.invflags & inv_flags::PROTO != 0 {
            return Err(
                "sctp: the sctp match needs `-p sctp' (the kernel allows it for SCTP only)".into(),
            );
        }
        for (w, word) in chunks.map.iter().enumerate() {
            p.u32(field::CHUNKMAP + 4 * w, *word);
        }
        for (j, slot) in chunks.slots.iter().enumerate() {
            let at = field::FLAG_INFO + j * field::SLOT;
            p.u8(at + field::SLOT_CHUNKTYPE, slot[0]);
            p.u8(at + field::SLOT_FLAG, slot[1]);
            p.u8(at + field::SLOT_FLAG_MASK, slot[2]);
        }
        p.u32(field::FLAG_COUNT, chunks.count as u32);
        p.u32(field::FLAGS, flags).u32(field::INVFLAGS, inv);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<xt_sctp_info>())?;
        let flags = r.u32(field::FLAGS)?;
        let inv = r.u32(field::INVFLAGS)?;
        for (bit, name, off) in [
            (XT_SCTP_SRC_PORTS, "sport", field::SPTS),
            (XT_SCTP_DEST_PORTS, "dport", field::DPTS),
        ] {
            if flags & bit != 0 {
                save_inv(out, inv & bit != 0);
                let (lo, hi) = (r.u16(off)?, r.u16(off + 2)?);
                if lo != hi {
                    out.push_str(&format!(" --{name} {lo}:{hi}"));
                } else {
                    out.push_str(&format!(" --{name} {lo}"));
                }
            }
        }
        if flags & XT_SCTP_CHUNK_TYPES == 0 {
            return Ok(());
        }
        save_inv(out, inv & XT_SCTP_CHUNK_TYPES != 0);
        out.push_str(" --chunk-types");
        out.push_str(match r.u32(field::CHUNK_MATCH_TYPE)? {
            MATCH_ANY => " any",
            MATCH_ALL => " all",
            MATCH_ONLY => " only",
            t => return Err(format!("sctp: unknown chunk match type {t:#x}")),
        });
        let mut map = [0u32; CHUNK_WORDS];
        for (w, word) in map.iter_mut().enumerate() {
            *word = r.u32(field::CHUNKMAP + 4 * w)?;
        }
        if map.iter().all(|&w| w == 0) {
            out.push_str(" NONE");
            return Ok(());
        }
        if map.iter().all(|&w| w == u32::MAX) {
            out.push_str(" ALL");
            return Ok(());
        }
        let count = i32::from_ne_bytes(r.u32(field::FLAG_COUNT)?.to_ne_bytes());
        let count = usize::try_from(count)
            .ok()
            .filter(|&c| c <= SLOTS)
            .ok_or_else(|| format!("sctp: flag_count {count} is not 0..={SLOTS}"))?;
        let mut first = true;
        for ty in 0..=255u8 {
            if map[usize::from(ty) / 32] & (1 << (ty % 32)) == 0 {
                continue;
            }
            out.push(if first { ' ' } else { ',' });
            first = false;
            // A type missing from the table prints nothing, as in libxt_sctp.
            if let Some((name, _, _)) = CHUNKS.iter().find(|(_, t, _)| *t == ty) {
                out.push_str(name);
            }
            for j in 0..count {
                let at = field::FLAG_INFO + j * field::SLOT;
                if r.u8(at + field::SLOT_CHUNKTYPE)? != ty {
                    continue;
                }
                let flag = r.u8(at + field::SLOT_FLAG)?;
                let mask = r.u8(at + field::SLOT_FLAG_MASK)?;
                // libxt_sctp indexes its table by the chunk type here.
                let (_, _, letters) = CHUNKS
                    .get(usize::from(ty))
                    .ok_or_else(|| format!("sctp: flags for chunk type {ty} cannot be printed"))?;
                if mask != 0 {
                    out.push(':');
                }
                for bit in (0..8).rev() {
                    if mask & (1 << bit) != 0 {
                        let c = letters[7 - bit];
                        out.push(if flag & (1 << bit) != 0 {
                            c as char
                        } else {
                            c.to_ascii_lowercase() as char
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;
    use crate::rules::IpMatch;

    fn ov(name: &'static str, invert: bool, args: &[&str]) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Hex with `#` comments, as the fixtures below are written.
    fn fixture(s: &str) -> Vec<u8> {
        hex(&s
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .collect::<String>())
    }

    fn parse_with(proto: u16, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch {
            proto,
            ..IpMatch::any(Family::V4)
        };
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        Sctp.parse(0, opts, &ctx).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn parse(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        parse_with(SCTP, opts)
    }

    fn save(data: &[u8]) -> String {
        let ip = IpMatch {
            proto: SCTP,
            ..IpMatch::any(Family::V4)
        };
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Sctp.save(0, data, &ctx, &mut out).unwrap();
        out
    }

    /// The chunk map as eight host-order u32 words, given as hex text.
    fn words(w: [&str; 8]) -> String {
        w.concat() + &"00000000".repeat(64 - 8)
    }

    // Captured from the kernel after iptables-legacy-restore of
    // `-p sctp --dport 80` (the sctp match loaded implicitly).
    fn dport80() -> Vec<u8> {
        fixture(&format!(
            "
            5000 5000       # dpts 80:80 (host order)
            0000 0000       # spts 0:0 (never set)
            {}              # chunkmap: empty
            00000000        # chunk_match_type
            ff0000 ff0000 ff0000 ff0000     # flag_info: chunktype 0xff in every slot
            00000000        # flag_count 0
            02000000        # flags DEST_PORTS
            00000000        # invflags
            00000000        # padding to XT_ALIGN",
            "00000000".repeat(64)
        ))
    }

    // `-p sctp -m sctp ! --sport 1:2 --dport 5: --chunk-types any DATA:Be,INIT,ABORT:t`
    fn ports_and_flags() -> Vec<u8> {
        fixture(&format!(
            "
            0500 ffff       # dpts 5:65535
            0100 0200       # spts 1:2
            {}              # chunkmap: DATA (0), INIT (1), ABORT (6) = 0x43
            01000000        # chunk_match_type ANY
            00 02 03        # slot 0: DATA, flag B, mask B|E
            06 00 01        # slot 1: ABORT, flag -, mask T
            ff0000 ff0000   # slots 2, 3 unused
            02000000        # flag_count 2
            07000000        # flags SRC|DEST|CHUNK_TYPES
            01000000        # invflags SRC_PORTS
            00000000        # padding",
            words([
                "43000000", "00000000", "00000000", "00000000", "00000000", "00000000", "00000000",
                "00000000"
            ])
        ))
    }

    // `-p sctp -m sctp ! --chunk-types only ALL`
    fn only_all() -> Vec<u8> {
        fixture(&format!(
            "
            0000 0000 0000 0000     # dpts, spts untouched
            {}                      # chunkmap: every bit
            04000000                # ONLY
            ff0000 ff0000 ff0000 ff0000
            00000000                # flag_count
            04000000                # flags CHUNK_TYPES
            04000000                # invflags CHUNK_TYPES
            00000000",
            "ffffffff".repeat(64)
        ))
    }

    // `-p sctp -m sctp --chunk-types all I_DATA:I,DATA:-,SHUTDOWN_COMPLETE:T,asconf`:
    // I_DATA's flags are filed under its table index 15 and never print.
    fn quirks() -> Vec<u8> {
        fixture(&format!(
            "
            0000 0000 0000 0000
            {}          # DATA 0, SHUTDOWN_COMPLETE 14 (word 0), I_DATA 64 (word 2), ASCONF 193 (word 6)
            02000000    # ALL
            0f 08 08    # slot 0: index 15 (I_DATA), flag I, mask I
            00 00 80    # slot 1: DATA, mask bit 7 from the '-' letter
            0e 01 01    # slot 2: SHUTDOWN_COMPLETE, flag T
            ff 00 00    # slot 3 unused
            03000000    # flag_count 3
            04000000    # flags CHUNK_TYPES
            00000000    # invflags
            00000000",
            words(["01400000", "00000000", "01000000", "00000000", "00000000", "00000000", "02000000", "00000000"])
        ))
    }

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(parse(&[ov("dport", false, &["80"])]).unwrap(), dport80());
        assert_eq!(
            parse(&[
                ov("sport", true, &["1:2"]),
                ov("dport", false, &["5:"]),
                ov("chunk-types", false, &["any", "DATA:Be,INIT,ABORT:t"]),
            ])
            .unwrap(),
            ports_and_flags()
        );
        assert_eq!(
            parse(&[ov("chunk-types", true, &["only", "ALL"])]).unwrap(),
            only_all()
        );
        assert_eq!(
            parse(&[ov(
                "chunk-types",
                false,
                &["all", "I_DATA:I,DATA:-,SHUTDOWN_COMPLETE:T,asconf"]
            )])
            .unwrap(),
            quirks()
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(save(&dport80()), " --dport 80");
        assert_eq!(
            save(&ports_and_flags()),
            " ! --sport 1:2 --dport 5:65535 --chunk-types any DATA:Be,INIT,ABORT:t"
        );
        assert_eq!(save(&only_all()), " ! --chunk-types only ALL");
        assert_eq!(
            save(&quirks()),
            " --chunk-types all DATA:-,SHUTDOWN_COMPLETE:T,I_DATA,ASCONF"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let bad: &[&[OptValue]] = &[
            &[ov("dport", false, &["70000"])],
            &[ov("dport", false, &["5:1"])],
            &[ov("dport", false, &["1:2:3"])],
            &[ov("sport", false, &["1"]), ov("source-port", false, &["2"])],
            &[ov("chunk-types", false, &["some", "DATA"])],
            &[ov("chunk-types", false, &["any", "DAT"])],
            &[ov("chunk-types", false, &["any", "INIT:I"])],
            &[ov("chunk-types", false, &["any", "DATA:x"])],
            &[ov("chunk-types", false, &["any"])],
        ];
        for opts in bad {
            assert!(parse(opts).is_err(), "{opts:?} accepted");
        }
        assert!(
            parse(&[ov(
                "chunk-types",
                false,
                &[
                    "any",
                    "DATA:I,ABORT:T,SHUTDOWN_COMPLETE:T,I_DATA:U,I_DATA:E"
                ],
            )])
            .is_ok(),
            "four slots are allowed"
        );
        assert!(
            parse(&[ov(
                "chunk-types",
                false,
                &["any", "DATA:I,ABORT:T,SHUTDOWN_COMPLETE:T,I_DATA:U,INIT:-"],
            )])
            .is_err(),
            "a fifth slot is refused"
        );
        assert!(
            parse_with(6, &[ov("dport", false, &["80"])]).is_err(),
            "accepted without -p sctp"
        );
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        assert!(Sctp.save(0, &[0; 100], &ctx, &mut String::new()).is_err());
        let mut bad_count = ports_and_flags();
        bad_count[field::FLAG_COUNT] = 9;
        assert!(Sctp.save(0, &bad_count, &ctx, &mut String::new()).is_err());
    }

    /// A small deterministic generator (xorshift) for the robustness tests.
    fn noise(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    fn ctx() -> RuleContext<'static> {
        static IP: std::sync::OnceLock<IpMatch> = std::sync::OnceLock::new();
        RuleContext {
            family: Family::V4,
            ip: IP.get_or_init(|| IpMatch::any(Family::V4)),
            table: "filter",
        }
    }

    #[test]
    fn never_panics() {
        let mut seed = 0x9e3779b97f4a7c15u64;
        for _ in 0..2000 {
            let mut data = vec![0u8; size_of::<xt_sctp_info>()];
            data.iter_mut().for_each(|b| *b = noise(&mut seed) as u8);
            // Mostly sparse maps and small counts, so the printing paths run.
            for w in 8..64 {
                data[field::CHUNKMAP + 4 * w..field::CHUNKMAP + 4 * w + 4].fill(0);
            }
            data[field::CHUNK_MATCH_TYPE..field::CHUNK_MATCH_TYPE + 4]
                .copy_from_slice(&(1u32 << (noise(&mut seed) % 3)).to_ne_bytes());
            data[field::FLAG_COUNT..field::FLAG_COUNT + 4]
                .copy_from_slice(&((noise(&mut seed) % 6) as u32).to_ne_bytes());
            let _ = Sctp.save(0, &data, &ctx(), &mut String::new());
        }
    }
}
