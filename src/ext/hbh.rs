//! `-m hbh` (ip6t_hbh, IPv6 only): the Hop-by-Hop Options header: its
//! length and a list of options (`TYPE[:LEN]`).
//!
//! `-m dst` (src/ext/dst.rs) is the same kernel struct (`ip6t_opts`) for
//! the Destination Options header; [`OptsMatch`] serves both.

use std::mem::{offset_of, size_of};

use super::recent::{parse_int_opt, XtFlags, XtOpt, XTOPT_INVERT};
use super::{
    save_inv, strtoul_prefix, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{
    ip6t_opts, IP6T_OPTS_INV_LEN, IP6T_OPTS_LEN, IP6T_OPTS_OPTS, IP6T_OPTS_OPTSNR,
};

pub(super) static CODECS: &[&dyn Codec] = &[&HBH];

mod field {
    use super::*;
    pub const HDRLEN: usize = offset_of!(ip6t_opts, hdrlen);
    pub const FLAGS: usize = offset_of!(ip6t_opts, flags);
    pub const INVFLAGS: usize = offset_of!(ip6t_opts, invflags);
    pub const OPTS: usize = offset_of!(ip6t_opts, opts);
    pub const OPTSNR: usize = offset_of!(ip6t_opts, optsnr);
}

/// Option ids of libip6t_hbh / libip6t_dst.
pub(crate) const O_LEN: u8 = 0;
pub(crate) const O_OPTS: u8 = 1;

static HBH_TABLE: [XtOpt; 2] = [
    XtOpt::new("hbh-len", O_LEN, Arg::One, XTOPT_INVERT),
    XtOpt::new("hbh-opts", O_OPTS, Arg::One, 0),
];
static HBH_SPECS: [OptSpec; 2] = XtOpt::specs(&HBH_TABLE);

static HBH: OptsMatch = OptsMatch {
    name: "hbh",
    table: &HBH_TABLE,
    specs: &HBH_SPECS,
    pad0: "PAD0 has not got length",
};

/// A match on an options header (`ip6t_opts`): `hbh` or `dst`.
pub(crate) struct OptsMatch {
    /// The extension name; its options are `--NAME-len` and `--NAME-opts`.
    pub name: &'static str,
    /// Its libxtables option table (ids [`O_LEN`], [`O_OPTS`]).
    pub table: &'static [XtOpt],
    /// The parser's view of `table`.
    pub specs: &'static [OptSpec],
    /// The extension's message for a length given to option type 0 (Pad1).
    pub pad0: &'static str,
}

impl OptsMatch {
    /// parse_opts_num: a number as strtoul reads it (base 0). iptables keeps
    /// the low 8 bits of any value (so `256` becomes 0 and `-1` 255); those
    /// are refused here instead.
    fn parse_num(&self, s: &str, what: &str) -> ExtResult<u8> {
        let ext = self.name;
        let negative = s
            .trim_start_matches(|c: char| c.is_ascii_whitespace())
            .starts_with('-');
        match strtoul_prefix(s) {
            _ if negative => Err(format!("{ext}: {what} `{s}' is out of range (0-255)")),
            None => Err(format!("{ext}: no valid digits in {what} `{s}'")),
            Some((_, rest)) if !rest.is_empty() => {
                Err(format!("{ext}: error parsing {what} `{s}'"))
            }
            Some((v, _)) => {
                u8::try_from(v).map_err(|_| format!("{ext}: {what} `{s}' is out of range (0-255)"))
            }
        }
    }

    /// parse_options: up to IP6T_OPTS_OPTSNR items `TYPE[:LEN]`, each kept
    /// as `TYPE << 8 | LEN` (LEN 0xff when not given).
    fn parse_options(&self, s: &str) -> ExtResult<Vec<u16>> {
        let max = IP6T_OPTS_OPTSNR as usize;
        let mut out = Vec::new();
        for item in s.split(',') {
            if out.len() == max {
                return Err("too many addresses specified".into());
            }
            let (ty, len) = match item.split_once(':') {
                // libip6t_hbh/dst refuse a length on the last possible item.
                Some(_) if out.len() == max - 1 => {
                    return Err("too many ports specified".into());
                }
                Some((ty, len)) => (ty, Some(len)),
                None => (item, None),
            };
            let ty = self.parse_num(ty, "opt")?;
            let len = match len {
                Some(_) if ty == 0 => return Err(self.pad0.into()),
                Some(len) => self.parse_num(len, "length")?,
                None => 0xff,
            };
            out.push(u16::from(ty) << 8 | u16::from(len));
        }
        Ok(out)
    }
}

impl Codec for OptsMatch {
    fn name(&self) -> &'static str {
        self.name
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V6]
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        self.specs
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<ip6t_opts>();
        let (mut flags, mut inv) = (0u32, 0u32);
        let mut seen = XtFlags::default();
        for o in opts {
            match seen.take(self.name, self.table, o)? {
                O_LEN => {
                    let v = parse_int_opt(self.name, o, 0, u32::MAX.into())?;
                    p.u32(field::HDRLEN, v as u32);
                    if o.invert {
                        inv |= IP6T_OPTS_INV_LEN;
                    }
                    flags |= IP6T_OPTS_LEN;
                }
                _ => {
                    let list = self.parse_options(o.arg())?;
                    for (i, v) in list.iter().enumerate() {
                        p.u16(field::OPTS + 2 * i, *v);
                    }
                    p.u8(field::OPTSNR, list.len() as u8);
                    flags |= IP6T_OPTS_OPTS;
                }
            }
        }
        seen.fcheck(self.name, self.table)?;
        p.u8(field::FLAGS, flags as u8)
            .u8(field::INVFLAGS, inv as u8);
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<ip6t_opts>())?;
        let flags = u32::from(r.u8(field::FLAGS)?);
        let inv = u32::from(r.u8(field::INVFLAGS)?);
        if flags & IP6T_OPTS_LEN != 0 {
            save_inv(out, inv & IP6T_OPTS_INV_LEN != 0);
            out.push_str(&format!(" --{}-len {}", self.name, r.u32(field::HDRLEN)?));
        }
        if flags & IP6T_OPTS_OPTS != 0 {
            out.push_str(&format!(" --{}-opts", self.name));
        }
        // The list is printed whatever the flags say, as hbh_save does.
        let n = usize::from(r.u8(field::OPTSNR)?);
        if n > IP6T_OPTS_OPTSNR as usize {
            return Err(format!(
                "{}: {n} options in a list of at most {IP6T_OPTS_OPTSNR}",
                self.name
            ));
        }
        for i in 0..n {
            let v = r.u16(field::OPTS + 2 * i)?;
            out.push(if i == 0 { ' ' } else { ',' });
            out.push_str(&(v >> 8).to_string());
            if v & 0xff != 0xff {
                out.push_str(&format!(":{}", v & 0xff));
            }
        }
        Ok(())
    }
}

/// Shared unit tests of `hbh` and `dst` (their kernel bytes are the same).
#[cfg(test)]
pub(crate) mod opts_tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;
    use crate::rules::IpMatch;

    fn ov(name: &'static str, invert: bool, arg: &str) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: vec![arg.to_string()].into(),
        }
    }

    fn with_ctx<T>(f: impl FnOnce(&RuleContext) -> T) -> T {
        let ip = IpMatch::any(Family::V6);
        f(&RuleContext {
            family: Family::V6,
            ip: &ip,
            table: "filter",
        })
    }

    fn parse(m: &OptsMatch, opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        with_ctx(|ctx| m.parse(0, opts, ctx)).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(m: &OptsMatch, data: &[u8]) -> ExtResult<String> {
        let mut out = String::new();
        with_ctx(|ctx| m.save(0, data, ctx, &mut out))?;
        Ok(out)
    }

    // Captured from the kernel after ip6tables-legacy-restore
    // (tests/rules6/hbh.rules and dst.rules, which give the same bytes):
    // hdrlen (host order), flags, invflags, opts[16] (host-order u16,
    // type << 8 | len), optsnr, padding.
    /// `--X-len 8`
    const LEN_8: &str =
        "08000000 01 00 0000000000000000000000000000000000000000000000000000000000000000 00 00";
    /// `! --X-len 0 --X-opts 1:4,194,5:2`
    const INV_LEN_OPTS: &str =
        "00000000 03 01 0401ffc202050000000000000000000000000000000000000000000000000000 03 00";
    /// `--X-opts 0,0x1:255,010:0`
    const OPTS_BASES: &str =
        "00000000 02 00 ff00ff0100080000000000000000000000000000000000000000000000000000 03 00";
    /// `--X-opts 1:1,2:2,...,15:15,16`
    const SIXTEEN: &str =
        "00000000 02 00 0101020203030404050506060707080809090a0a0b0b0c0c0d0d0e0e0f0fff10 10 00";
    /// `! --X-len 4294967295`
    const INV_MAX: &str =
        "ffffffff 01 01 0000000000000000000000000000000000000000000000000000000000000000 00 00";
    /// no option
    const NONE: &str =
        "00000000 00 00 0000000000000000000000000000000000000000000000000000000000000000 00 00";

    /// Round trips of the captured payloads for one of the two codecs.
    pub(crate) fn round_trips(m: &OptsMatch) {
        let len: &'static str = if m.name == "hbh" {
            "hbh-len"
        } else {
            "dst-len"
        };
        let opts: &'static str = if m.name == "hbh" {
            "hbh-opts"
        } else {
            "dst-opts"
        };
        let sixteen = "1:1,2:2,3:3,4:4,5:5,6:6,7:7,8:8,9:9,10:10,11:11,12:12,13:13,14:14,15:15,16";
        let cases: Vec<(Vec<OptValue>, &str, String)> = vec![
            (vec![ov(len, false, "8")], LEN_8, format!(" --{len} 8")),
            (
                vec![ov(len, true, "0"), ov(opts, false, "1:4,194,5:2")],
                INV_LEN_OPTS,
                format!(" ! --{len} 0 --{opts} 1:4,194,5:2"),
            ),
            (
                vec![ov(opts, false, "0,0x1:255,010:0")],
                OPTS_BASES,
                format!(" --{opts} 0,1,8:0"),
            ),
            (
                vec![ov(opts, false, sixteen)],
                SIXTEEN,
                format!(" --{opts} {sixteen}"),
            ),
            (
                vec![ov(len, true, "4294967295")],
                INV_MAX,
                format!(" ! --{len} 4294967295"),
            ),
            (vec![], NONE, String::new()),
        ];
        for (o, fx, text) in cases {
            assert_eq!(parse(m, &o).unwrap(), hex(fx), "{o:?}");
            assert_eq!(save(m, &hex(fx)).unwrap(), text);
        }
    }

    /// Values both codecs refuse.
    pub(crate) fn refusals(m: &OptsMatch) {
        let len: &'static str = if m.name == "hbh" {
            "hbh-len"
        } else {
            "dst-len"
        };
        let opts: &'static str = if m.name == "hbh" {
            "hbh-opts"
        } else {
            "dst-opts"
        };
        let seventeen = (1..=17)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let sixteen_len = (1..=16)
            .map(|i| format!("{i}:1"))
            .collect::<Vec<_>>()
            .join(",");
        for o in [
            ov(len, false, "4294967296"),
            ov(len, false, "-1"),
            ov(opts, false, ""),
            ov(opts, false, "1,,2"),
            ov(opts, false, "x"),
            ov(opts, false, "1x"),
            ov(opts, false, "0:2"),
            ov(opts, false, "1:2:3"),
            ov(opts, false, "256"),
            ov(opts, false, "-1"),
            ov(opts, false, "1:256"),
            ov(opts, false, "99999999999999999999999"),
            ov(opts, false, &seventeen),
            ov(opts, false, &sixteen_len),
            ov(opts, true, "1"),
        ] {
            assert!(
                parse(m, std::slice::from_ref(&o)).is_err(),
                "{o:?} accepted"
            );
        }
        assert_eq!(
            parse(m, &[ov(opts, false, "0:2")]).unwrap_err(),
            m.pad0,
            "Pad1 has no length"
        );
        assert!(parse(m, &[ov(len, false, "1"), ov(len, false, "2")])
            .unwrap_err()
            .contains("only be used once"));
        let mut corrupt = hex(NONE);
        corrupt[field::OPTSNR] = 17;
        assert!(save(m, &corrupt).is_err(), "optsnr beyond the array");
        assert!(save(m, &[0u8; 6]).is_err(), "short payload must not panic");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_bytes_round_trip() {
        opts_tests::round_trips(&HBH);
    }

    #[test]
    fn bad_values_are_refused() {
        opts_tests::refusals(&HBH);
    }
}
