//! `-m connlabel` (xt_connlabel): test (or, with `--set`, set) one of the
//! 128 conntrack label bits, given by number or by a name from
//! `/etc/xtables/connlabel.conf`.
//!
//! iptables reads names through libnetfilter_conntrack's label map; this
//! file reads the same file by the same rules (see [`LabelMap::parse`]):
//! * a number is taken without the file;
//! * a name needs the file: if it cannot be opened the name is unknown; if
//!   it holds no usable label, iptables stops with "no labels found", and
//!   so do parse and save here;
//! * save prints the bit's name when the file names it, else the number,
//!   always in double quotes.
//!
//! iptables takes any number and stores it cut to 16 bits (`65576` is bit
//! 40); numbers above 127, which the kernel has no bit for, are refused
//! here instead.

use std::mem::{offset_of, size_of};

use super::recent::{XtFlags, XtOpt, XTOPT_INVERT, XTOPT_MAND};
use super::{Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader, RuleContext};
use crate::rules::Family;
use crate::sys::bindings::{
    xt_connlabel_mtinfo, XT_CONNLABEL_MAXBIT, XT_CONNLABEL_OP_INVERT, XT_CONNLABEL_OP_SET,
};

pub(super) static CODECS: &[&dyn Codec] = &[&Connlabel];

mod field {
    use super::*;
    pub const BIT: usize = offset_of!(xt_connlabel_mtinfo, bit);
    pub const OPTIONS: usize = offset_of!(xt_connlabel_mtinfo, options);
}

/// Where libnetfilter_conntrack (and so iptables) reads label names.
pub(crate) const CONNLABEL_CONF: &str = "/etc/xtables/connlabel.conf";

const O_LABEL: u8 = 0;
const O_SET: u8 = 1;
const TABLE: [XtOpt; 2] = [
    XtOpt::new("label", O_LABEL, Arg::One, XTOPT_MAND | XTOPT_INVERT),
    XtOpt::new("set", O_SET, Arg::None, 0),
];
static SPECS: [OptSpec; 2] = XtOpt::specs(&TABLE);

/// The label map's own limit on bit numbers in the file.
const MAP_MAX_BITS: u64 = 1024;

/// C `strtoul(s, &end, 0)` on bytes: leading white space, a sign, then
/// digits in base 0. Returns the value (saturated, negated modulo 2^64 for
/// `-`, as C does) and the index where parsing stopped (0 when no digit
/// was read).
fn c_strtoul(s: &[u8]) -> (u64, usize) {
    let mut i = s
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .unwrap_or(s.len());
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let hex_digit_at = |j: usize| s.get(j).is_some_and(|c| c.is_ascii_hexdigit());
    let (radix, start) = if s.get(i) == Some(&b'0')
        && s.get(i + 1).is_some_and(|c| c | 0x20 == b'x')
        && hex_digit_at(i + 2)
    {
        (16, i + 2)
    } else if s.get(i) == Some(&b'0') {
        (8, i)
    } else {
        (10, i)
    };
    let digits = s[start.min(s.len())..]
        .iter()
        .take_while(|c| (**c as char).is_digit(radix))
        .count();
    if digits == 0 {
        return (0, 0);
    }
    let mut v: u64 = 0;
    let mut overflow = false;
    for &c in &s[start..start + digits] {
        let d = u64::from((c as char).to_digit(radix).unwrap_or(0));
        match v.checked_mul(radix.into()).and_then(|x| x.checked_add(d)) {
            Some(x) => v = x,
            None => overflow = true,
        }
    }
    let v = if overflow {
        u64::MAX
    } else if neg {
        v.wrapping_neg()
    } else {
        v
    };
    (v, start + digits)
}

/// libnetfilter_conntrack's label map: names by bit and bits by name.
#[derive(Debug, Default)]
pub(crate) struct LabelMap {
    /// (bit, name) in file order.
    labels: Vec<(u16, Vec<u8>)>,
}

/// Why a label map could not be had.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum MapError {
    /// The file could not be opened: iptables warns and goes on without names.
    Unreadable,
    /// The file has no usable line: iptables stops.
    NoLabels,
}

impl LabelMap {
    /// __labelmap_new's reading of the file: each line (fgets, at most 1023
    /// bytes at a time) not starting with `#` is a number (C strtoul, base
    /// 0, below 1024) followed by a name; the name is trimmed of blanks and
    /// must consist of ASCII letters, digits, spaces and `-`. The first line
    /// for a bit wins; a name already taken is skipped.
    pub(crate) fn parse(text: &[u8]) -> Result<LabelMap, MapError> {
        let mut map = LabelMap::default();
        let mut rest = text;
        while !rest.is_empty() {
            let len = rest
                .iter()
                .take(1023)
                .position(|&c| c == b'\n')
                .map_or(rest.len().min(1023), |p| p + 1);
            let (line, tail) = rest.split_at(len);
            rest = tail;
            if line.first() == Some(&b'#') {
                continue;
            }
            let (bit, end) = c_strtoul(line);
            if end == 0 || bit >= MAP_MAX_BITS || map.name(bit as u16).is_some() {
                continue;
            }
            let Some(name) = trim_label(&line[end..]) else {
                continue;
            };
            let sane = name
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b' ' || *c == b'-');
            if sane && map.bit(name).is_none() {
                map.labels.push((bit as u16, name.to_vec()));
            }
        }
        if map.labels.is_empty() {
            return Err(MapError::NoLabels);
        }
        Ok(map)
    }

    /// Reads the map from a file.
    pub(crate) fn load(path: &str) -> Result<LabelMap, MapError> {
        let text = std::fs::read(path).map_err(|_| MapError::Unreadable)?;
        LabelMap::parse(&text)
    }

    /// nfct_labelmap_get_bit.
    pub(crate) fn bit(&self, name: &[u8]) -> Option<u16> {
        self.labels.iter().find(|(_, n)| n == name).map(|(b, _)| *b)
    }

    /// nfct_labelmap_get_name (an unnamed bit is `None`).
    pub(crate) fn name(&self, bit: u16) -> Option<&[u8]> {
        self.labels
            .iter()
            .find(|(b, _)| *b == bit)
            .map(|(_, n)| n.as_slice())
    }
}

/// trim_label: drop leading blanks (not newlines), cut at the first
/// newline, drop trailing blanks; `None` when nothing is left.
fn trim_label(s: &[u8]) -> Option<&[u8]> {
    let blank = |c: &u8| matches!(c, b' ' | 0x0c | b'\r' | b'\t' | 0x0b);
    let start = s.iter().position(|c| !blank(c)).unwrap_or(s.len());
    let s = &s[start..];
    let s = &s[..s.iter().position(|&c| c == b'\n').unwrap_or(s.len())];
    let end = s.iter().rposition(|c| !blank(c)).map_or(0, |p| p + 1);
    let s = &s[..end];
    (!s.is_empty()).then_some(s)
}

fn no_labels(path: &str) -> String {
    format!("cannot parse {path}: no labels found")
}

/// The bit for `--label ARG`: a number (C strtoul of the whole argument,
/// taken when it is a non-negative C int), else a name from the map at
/// `path`.
pub(crate) fn label_bit(arg: &str, path: &str) -> ExtResult<u16> {
    if arg.is_empty() {
        return Err("Argument must have a minimum length of 1 characters".into());
    }
    let (v, end) = c_strtoul(arg.as_bytes());
    // connlabel_value_parse returns the value as an int: negative ones
    // (a leading `-`, or 2^31 and up cut to 32 bits) mean "look it up".
    let as_int = v as u32 as i32;
    if end == arg.len() && as_int >= 0 {
        if v > u64::from(XT_CONNLABEL_MAXBIT) {
            return Err(format!(
                "connlabel: label {arg} is out of range: bits are 0 to {XT_CONNLABEL_MAXBIT}"
            ));
        }
        return Ok(v as u16);
    }
    let not_found = || format!("label '{arg}' not found or invalid value (names come from {path})");
    match LabelMap::load(path) {
        Ok(map) => map.bit(arg.as_bytes()).ok_or_else(not_found),
        Err(MapError::NoLabels) => Err(no_labels(path)),
        Err(MapError::Unreadable) => Err(not_found()),
    }
}

fn parse_with(opts: &[OptValue], path: &str) -> ExtResult<Vec<u8>> {
    let mut p = Payload::of::<xt_connlabel_mtinfo>();
    let mut options = 0u16;
    let mut xf = XtFlags::default();
    for o in opts {
        if xf.take("connlabel", &TABLE, o)? == O_SET {
            options |= XT_CONNLABEL_OP_SET as u16;
            continue;
        }
        p.u16(field::BIT, label_bit(o.arg(), path)?);
        if o.invert {
            options |= XT_CONNLABEL_OP_INVERT as u16;
        }
    }
    xf.fcheck("connlabel", &TABLE)?;
    p.u16(field::OPTIONS, options);
    Ok(p.finish())
}

fn save_with(data: &[u8], path: &str, out: &mut String) -> ExtResult<()> {
    let r = Reader::new(data, size_of::<xt_connlabel_mtinfo>())?;
    let (bit, options) = (r.u16(field::BIT)?, r.u16(field::OPTIONS)?);
    let map = match LabelMap::load(path) {
        Ok(m) => Some(m),
        Err(MapError::Unreadable) => None,
        Err(MapError::NoLabels) => return Err(no_labels(path)),
    };
    if options & XT_CONNLABEL_OP_INVERT as u16 != 0 {
        out.push_str(" !");
    }
    match map.as_ref().and_then(|m| m.name(bit)) {
        Some(name) => {
            out.push_str(" --label \"");
            out.push_str(&crate::text::from_bytes(name));
            out.push('"');
        }
        None => out.push_str(&format!(" --label \"{bit}\"")),
    }
    if options & XT_CONNLABEL_OP_SET as u16 != 0 {
        out.push_str(" --set");
    }
    Ok(())
}

struct Connlabel;

impl Codec for Connlabel {
    fn name(&self) -> &'static str {
        "connlabel"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        &SPECS
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        parse_with(opts, CONNLABEL_CONF)
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        save_with(data, CONNLABEL_CONF, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::ext::xt_align;

    fn ov(name: &'static str, invert: bool, args: &[&str]) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn fixture(s: &str) -> Vec<u8> {
        hex(&s
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .collect::<String>())
    }

    const NO_FILE: &str = "/nonexistent/connlabel.conf";

    /// A label file in a fresh temporary directory.
    fn conf(name: &str, text: &str) -> String {
        let dir =
            std::env::temp_dir().join(format!("ipta-connlabel-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("connlabel.conf");
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn parse(opts: &[OptValue], path: &str) -> ExtResult<Vec<u8>> {
        parse_with(opts, path).map(|mut v| {
            v.resize(xt_align(v.len()), 0);
            v
        })
    }

    fn save(data: &[u8], path: &str) -> ExtResult<String> {
        let mut out = String::new();
        save_with(data, path, &mut out).map(|_| out)
    }

    // Captured from the kernel after iptables-legacy-restore of
    // `-m connlabel ! --label 41 --set`.
    const INV_SET: &str = "
        2900        # bit 41 (host order)
        0300        # options: INVERT|SET
        00000000    # padding to XT_ALIGN";

    // `-m connlabel --label 40` (ip6tables gives the same bytes).
    const PLAIN: &str = "
        2800        # bit 40
        0000        # options: none
        00000000    # padding";

    // `-m connlabel --label "bulk traffic"` with a connlabel.conf holding
    // `7 bulk traffic` (loaded with the file present in a private mount
    // namespace).
    const NAMED: &str = "
        0700        # bit 7
        0000        # options
        00000000    # padding";

    #[test]
    fn parse_matches_kernel_bytes() {
        let opts = [ov("label", true, &["41"]), ov("set", false, &[])];
        assert_eq!(parse(&opts, NO_FILE).unwrap(), fixture(INV_SET));
        assert_eq!(
            parse(&[ov("label", false, &["40"])], NO_FILE).unwrap(),
            fixture(PLAIN)
        );
        assert_eq!(
            parse(&[ov("label", false, &["0x28"])], NO_FILE).unwrap(),
            fixture(PLAIN)
        );
        let path = conf("named", "# labels\n7 bulk traffic\n");
        assert_eq!(
            parse(&[ov("label", false, &["bulk traffic"])], &path).unwrap(),
            fixture(NAMED)
        );
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        assert_eq!(
            save(&fixture(INV_SET), NO_FILE).unwrap(),
            " ! --label \"41\" --set"
        );
        assert_eq!(save(&fixture(PLAIN), NO_FILE).unwrap(), " --label \"40\"");
        let path = conf("save", "7 bulk traffic\n");
        assert_eq!(
            save(&fixture(NAMED), &path).unwrap(),
            " --label \"bulk traffic\""
        );
        assert_eq!(save(&fixture(PLAIN), &path).unwrap(), " --label \"40\"");
    }

    #[test]
    fn label_file_follows_libnetfilter_conntrack() {
        let text = b"# comment\n\
            0 zero\n\
            \t 1\tone  \r\n\
            2\n\
            3 bad;name\n\
            4 one\n\
            1 again\n\
            0x5 five\n\
            1024 too-big\n\
            -0 minus-zero\n\
            x 9\n\
            6 with space\n";
        let m = LabelMap::parse(text).unwrap();
        assert_eq!(m.bit(b"zero"), Some(0));
        assert_eq!(m.bit(b"one"), Some(1));
        assert_eq!(m.name(2), None, "a number without a name");
        assert_eq!(m.name(3), None, "an insane name");
        assert_eq!(m.name(4), None, "a name already taken");
        assert_eq!(
            m.name(1),
            Some(&b"one"[..]),
            "the first line for a bit wins"
        );
        assert_eq!(m.bit(b"five"), Some(5));
        assert_eq!(m.bit(b"too-big"), None);
        assert_eq!(m.bit(b"minus-zero"), None, "bit 0 was taken");
        assert_eq!(m.bit(b"with space"), Some(6));
        assert_eq!(
            LabelMap::parse(b"# nothing\n").unwrap_err(),
            MapError::NoLabels
        );
        assert_eq!(LabelMap::load(NO_FILE).unwrap_err(), MapError::Unreadable);
    }

    #[test]
    fn bad_values_are_refused() {
        for arg in ["128", "65576", "4294967336", "", "nosuchlabel", "-1", "4x"] {
            assert!(
                parse(&[ov("label", false, &[arg])], NO_FILE).is_err(),
                "{arg} accepted"
            );
        }
        let empty = conf("empty", "# no labels\n");
        assert_eq!(
            parse(&[ov("label", false, &["x"])], &empty).unwrap_err(),
            format!("cannot parse {empty}: no labels found")
        );
        assert!(save(&fixture(PLAIN), &empty).is_err());
        assert_eq!(
            parse(&[ov("set", false, &[])], NO_FILE).unwrap_err(),
            "connlabel: option \"--label\" must be specified"
        );
        assert!(parse(&[ov("label", false, &["1"]), ov("set", true, &[])], NO_FILE).is_err());
        assert!(save(&[0; 2], NO_FILE).is_err(), "short payload");
    }
}
