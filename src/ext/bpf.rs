//! `-m bpf` (xt_bpf): run a classic BPF program (as `nfbpf_compile` or
//! `tcpdump -ddd` print it) on the packet.
//!
//! Revision 1 (iptables 1.8.9's choice when the kernel has it) adds a mode
//! field and the alternative of a pinned eBPF object; revision 0 holds the
//! bytecode only. Both are parsed and saved with `--bytecode`.
//!
//! Not supported for parsing: `--object-pinned PATH`. iptables opens the
//! object and stores its own process's file descriptor number in the rule;
//! the kernel reads the path instead, so that number is noise no other
//! process can reproduce, and byte-identical output is not possible. Such
//! rules, written by iptables, are saved correctly (` --object-pinned
//! PATH`).
//!
//! iptables reads the bytecode with sscanf and takes what it can: numbers
//! out of range are cut to the field's width, a minus sign wraps, text
//! after an instruction's fourth number is ignored. This codec refuses all
//! of those instead of guessing.

use std::mem::{offset_of, size_of};

use super::recent::{XtFlags, XtOpt};
use super::{Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext};
use crate::rules::Family;
use crate::sys::bindings::{
    sock_filter, xt_bpf_info, xt_bpf_info_v1, XT_BPF_MAX_NUM_INSTR, XT_BPF_MODE_BYTECODE,
    XT_BPF_MODE_FD_PINNED,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Bpf];

mod field {
    use super::*;
    pub const V0_NUM_ELEM: usize = offset_of!(xt_bpf_info, bpf_program_num_elem);
    pub const V0_PROGRAM: usize = offset_of!(xt_bpf_info, bpf_program);
    pub const V1_MODE: usize = offset_of!(xt_bpf_info_v1, mode);
    pub const V1_NUM_ELEM: usize = offset_of!(xt_bpf_info_v1, bpf_program_num_elem);
    /// The union of `bpf_program` and `path`.
    pub const V1_PROGRAM: usize = offset_of!(xt_bpf_info_v1, __bindgen_anon_1);
    pub const V1_PATH: usize = V1_PROGRAM;
    /// One instruction and its fields.
    pub const INSN: usize = size_of::<sock_filter>();
    pub const CODE: usize = offset_of!(sock_filter, code);
    pub const JT: usize = offset_of!(sock_filter, jt);
    pub const JF: usize = offset_of!(sock_filter, jf);
    pub const K: usize = offset_of!(sock_filter, k);
}

const MAX_INSNS: usize = XT_BPF_MAX_NUM_INSTR as usize;
/// XT_BPF_PATH_MAX.
const PATH_MAX: usize = MAX_INSNS * field::INSN;

const O_BCODE: u8 = 0;
const TABLE: [XtOpt; 1] = [XtOpt::new("bytecode", O_BCODE, Arg::One, 0)];
static SPECS: [OptSpec; 1] = XtOpt::specs(&TABLE);

/// One instruction: (code, jt, jf, k).
type Insn = (u16, u8, u8, u32);

/// A `%u`-style field: blanks, an optional `+`, decimal digits, at most
/// `max`. Returns the value and the rest.
fn number(s: &str, max: u64) -> Option<(u64, &str)> {
    let t = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let t = t.strip_prefix('+').unwrap_or(t);
    let n = t.bytes().take_while(u8::is_ascii_digit).count();
    let v: u64 = t[..n].parse().ok()?;
    (v <= max).then_some((v, &t[n..]))
}

/// bpf_parse_string: `N,code jt jf k,code jt jf k,...` with N (1..64)
/// instructions; a trailing comma is allowed.
pub(crate) fn parse_bytecode(prog: &str) -> ExtResult<Vec<Insn>> {
    let (len, rest) = number(prog, u16::MAX.into())
        .filter(|(_, rest)| rest.starts_with(','))
        .ok_or("bpf: error parsing program length: expected `N,code jt jf k,...'")?;
    let len = len as usize;
    if len == 0 {
        return Err("bpf: illegal zero length program".into());
    }
    if len > MAX_INSNS {
        return Err(format!(
            "bpf: number of instructions exceeds maximum ({MAX_INSNS})"
        ));
    }
    let mut insns = Vec::with_capacity(len);
    let mut rest = &rest[1..];
    while !rest.is_empty() {
        if insns.len() >= len {
            return Err("bpf: real program length exceeds the encoded length parameter".into());
        }
        let (token, next) = rest.split_once(',').unwrap_or((rest, ""));
        rest = next;
        let bad = || {
            format!(
                "bpf: error at instr {}: expected `code jt jf k' (0..65535, 0..255, 0..255, 0..4294967295), got `{token}'",
                insns.len()
            )
        };
        let (code, t) = number(token, u16::MAX.into()).ok_or_else(bad)?;
        let (jt, t) = number(t, u8::MAX.into()).ok_or_else(bad)?;
        let (jf, t) = number(t, u8::MAX.into()).ok_or_else(bad)?;
        let (k, t) = number(t, u32::MAX.into()).ok_or_else(bad)?;
        if !t.trim().is_empty() {
            return Err(bad());
        }
        insns.push((code as u16, jt as u8, jf as u8, k as u32));
    }
    if insns.len() != len {
        return Err("bpf: parsed program length is less than the encoded length parameter".into());
    }
    Ok(insns)
}

fn put_program(p: &mut Payload, off: usize, insns: &[Insn]) {
    for (i, (code, jt, jf, k)) in insns.iter().enumerate() {
        let at = off + i * field::INSN;
        p.u16(at + field::CODE, *code)
            .u8(at + field::JT, *jt)
            .u8(at + field::JF, *jf)
            .u32(at + field::K, *k);
    }
}

/// bpf_save_code: ` --bytecode "N,code jt jf k,..."` (with no closing
/// quote for an empty program, as iptables prints it).
fn save_program(out: &mut String, r: &Reader, off: usize, len: u16) -> ExtResult<()> {
    out.push_str(&format!(" --bytecode \"{len},"));
    for i in 0..usize::from(len) {
        let at = off + i * field::INSN;
        out.push_str(&format!(
            "{} {} {} {}",
            r.u16(at + field::CODE)?,
            r.u8(at + field::JT)?,
            r.u8(at + field::JF)?,
            r.u32(at + field::K)?
        ));
        out.push(if i + 1 < usize::from(len) { ',' } else { '"' });
    }
    Ok(())
}

struct Bpf;

impl Codec for Bpf {
    fn name(&self) -> &'static str {
        "bpf"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[1, 0]
    }
    fn options(&self) -> &'static [OptSpec] {
        &SPECS
    }

    fn parse(&self, rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut xf = XtFlags::default();
        let mut p = if rev == 0 {
            Payload::of::<xt_bpf_info>()
        } else {
            Payload::of::<xt_bpf_info_v1>()
        };
        for o in opts {
            xf.take("bpf", &TABLE, o)?;
            let insns = parse_bytecode(o.arg())?;
            if rev == 0 {
                p.u16(field::V0_NUM_ELEM, insns.len() as u16);
                put_program(&mut p, field::V0_PROGRAM, &insns);
            } else {
                p.u16(field::V1_MODE, XT_BPF_MODE_BYTECODE as u16);
                p.u16(field::V1_NUM_ELEM, insns.len() as u16);
                put_program(&mut p, field::V1_PROGRAM, &insns);
            }
        }
        if !xf.has(O_BCODE) {
            return Err(if rev == 0 {
                "bpf: missing --bytecode parameter".into()
            } else {
                "bpf: one of --bytecode or --pinned is required".into()
            });
        }
        Ok(p.finish())
    }

    fn save(&self, rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        if rev == 0 {
            let r = Reader::new(data, field::V0_PROGRAM)?;
            return save_program(out, &r, field::V0_PROGRAM, r.u16(field::V0_NUM_ELEM)?);
        }
        let r = Reader::new(data, field::V1_PROGRAM)?;
        match u32::from(r.u16(field::V1_MODE)?) {
            XT_BPF_MODE_BYTECODE => {
                save_program(out, &r, field::V1_PROGRAM, r.u16(field::V1_NUM_ELEM)?)
            }
            XT_BPF_MODE_FD_PINNED => {
                let path = r.cstr(field::V1_PATH, PATH_MAX)?;
                out.push_str(" --object-pinned ");
                out.push_str(&crate::text::from_bytes(path));
                Ok(())
            }
            m => Err(format!("bpf: unknown bpf mode {m}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;
    use crate::rules::IpMatch;

    fn ov(arg: &str) -> OptValue<'static> {
        OptValue {
            name: "bytecode",
            invert: false,
            args: vec![arg.to_string()].into(),
        }
    }

    /// Hex with `#` comments; the struct's zeroed remainder is added up to
    /// `size` bytes.
    fn fixture(s: &str, size: usize) -> Vec<u8> {
        let mut v = hex(&s
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .collect::<String>());
        v.resize(size, 0);
        v
    }

    fn parse(family: Family, rev: u8, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        Bpf.parse(rev, opts, &ctx).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(family: Family, rev: u8, data: &[u8]) -> ExtResult<String> {
        let ip = IpMatch::any(family);
        let ctx = RuleContext {
            family,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Bpf.save(rev, data, &ctx, &mut out).map(|_| out)
    }

    const V1_SIZE: usize = size_of::<xt_bpf_info_v1>();
    const V0_SIZE: usize = size_of::<xt_bpf_info>();
    const TCP: &str = "4,48 0 0 9,21 0 1 6,6 0 0 1,6 0 0 0";

    // Captured from the kernel after iptables-legacy-restore of
    // `-m bpf --bytecode "4,48 0 0 9,21 0 1 6,6 0 0 1,6 0 0 0"` (revision 1;
    // the rest of the 528-byte union and the kernel's filter pointer read
    // back as zeros).
    const TCP_V1: &str = "
        0000        # mode XT_BPF_MODE_BYTECODE
        0400        # bpf_program_num_elem 4
        00000000    # fd
        3000 00 00 09000000 # ldb [9]
        1500 00 01 06000000 # jeq #6, jt 0, jf 1
        0600 00 00 01000000 # ret #1
        0600 00 00 00000000 # ret #0";

    // ip6tables, the same, `-m bpf --bytecode "1,6 0 0 65535"`.
    const RET_V6: &str = "
        0000 0100 00000000  # mode, num_elem 1, fd
        0600 00 00 ffff0000 # ret #65535";

    // Revision 0: iptables 1.8.9 does not write it while the kernel has
    // revision 1, so the bytes follow the struct (num_elem, then the
    // program at the alignment of sock_filter).
    const TCP_V0: &str = "
        0400 0000   # bpf_program_num_elem 4, alignment
        3000 00 00 09000000
        1500 00 01 06000000
        0600 00 00 01000000
        0600 00 00 00000000";

    #[test]
    fn parse_matches_kernel_bytes() {
        assert_eq!(
            parse(Family::V4, 1, &[ov(TCP)]).unwrap(),
            fixture(TCP_V1, V1_SIZE)
        );
        assert_eq!(
            parse(
                Family::V4,
                1,
                &[ov("4, 48 0 0 9,21 0 1 6 ,6 0 0 1,6 0 0 0,")]
            )
            .unwrap(),
            fixture(TCP_V1, V1_SIZE)
        );
        assert_eq!(
            parse(Family::V6, 1, &[ov("1,6 0 0 65535")]).unwrap(),
            fixture(RET_V6, V1_SIZE)
        );
        assert_eq!(
            parse(Family::V4, 0, &[ov(TCP)]).unwrap(),
            fixture(TCP_V0, V0_SIZE)
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        let want = format!(" --bytecode \"{TCP}\"");
        assert_eq!(
            save(Family::V4, 1, &fixture(TCP_V1, V1_SIZE)).unwrap(),
            want
        );
        assert_eq!(
            save(Family::V4, 0, &fixture(TCP_V0, V0_SIZE)).unwrap(),
            want
        );
        assert_eq!(
            save(Family::V6, 1, &fixture(RET_V6, V1_SIZE)).unwrap(),
            " --bytecode \"1,6 0 0 65535\""
        );
        // A pinned object, as iptables writes it (mode 1, its fd, the path).
        let mut pinned = fixture("0100 0000 05000000", V1_SIZE);
        pinned[8..8 + 12].copy_from_slice(b"/sys/fs/bpf/");
        pinned[20..22].copy_from_slice(b"xt");
        assert_eq!(
            save(Family::V4, 1, &pinned).unwrap(),
            " --object-pinned /sys/fs/bpf/xt"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        for prog in [
            "",
            "4",
            "0,",
            "65,6 0 0 1",
            "-1,6 0 0 1",
            "1 ,6 0 0 1",
            "2,6 0 0 1",
            "1,6 0 0 1,6 0 0 1",
            "1,6 0 0",
            "1,6 0 0 1 junk",
            "1,6 0 256 1",
            "1,65536 0 0 1",
            "1,6 0 0 4294967296",
            "1,6 0 0 -1",
            "2,,6 0 0 1",
        ] {
            assert!(
                parse(Family::V4, 1, &[ov(prog)]).is_err(),
                "{prog:?} accepted"
            );
        }
        assert!(parse(Family::V4, 1, &[]).is_err());
        assert!(parse(Family::V4, 0, &[]).is_err());
        assert!(parse(Family::V4, 1, &[ov("1,6 0 0 1"), ov("1,6 0 0 1")]).is_err());
        let mut bad_mode = fixture(RET_V6, V1_SIZE);
        bad_mode[0] = 2;
        assert!(save(Family::V4, 1, &bad_mode).is_err());
        assert!(save(Family::V4, 1, &[0; 6]).is_err(), "short payload");
        let mut long = fixture(RET_V6, V1_SIZE);
        long[2] = 0xff;
        assert!(
            save(Family::V4, 1, &long).is_err(),
            "count beyond the array"
        );
    }
}
