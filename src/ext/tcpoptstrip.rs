//! `-j TCPOPTSTRIP` (xt_TCPOPTSTRIP, `xt_tcpoptstrip_target_info`): remove
//! TCP options, given by name or number, from packets. A 256-bit bitmap of
//! option kinds. One revision, both families; the kernel allows it in the
//! mangle table for `-p tcp` only.

use std::mem::{offset_of, size_of};

use super::{
    no_invert, once, opt, parse_uint, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload,
    Reader, RuleContext,
};
use crate::sys::bindings::xt_tcpoptstrip_target_info;

pub(super) static CODECS: &[&dyn Codec] = &[&TcpOptStrip];

mod field {
    use super::*;
    /// `strip_bmap[8]`: u32 words, host order; kind K is bit K%32 of word K/32.
    pub const BMAP: usize = offset_of!(xt_tcpoptstrip_target_info, strip_bmap);
    pub const WORDS: usize = 8;
}

/// The option names iptables knows (exact, case-sensitive).
const NAMES: &[(&str, u8)] = &[
    ("wscale", 3),
    ("mss", 2),
    ("sack-permitted", 4),
    ("sack", 5),
    ("timestamp", 8),
    ("md5", 19),
];

/// parse_list: comma-separated names or numbers 2..=255, each once.
fn parse_list(arg: &str) -> ExtResult<[u32; field::WORDS]> {
    let mut bmap = [0u32; field::WORDS];
    for item in arg.split(',') {
        let kind = match NAMES.iter().find(|(n, _)| *n == item) {
            Some((_, k)) => u64::from(*k),
            None => parse_uint(item, 0, 255)
                .ok_or_else(|| format!("Bad TCP option value \"{item}\""))?,
        };
        if kind < 2 {
            return Err("Option value may not be 0 or 1".into());
        }
        let (word, bit) = (kind as usize / 32, 1u32 << (kind % 32));
        if bmap[word] & bit != 0 {
            return Err(format!("Option \"{item}\" already specified"));
        }
        bmap[word] |= bit;
    }
    Ok(bmap)
}

struct TcpOptStrip;

impl Codec for TcpOptStrip {
    fn name(&self) -> &'static str {
        "TCPOPTSTRIP"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn revisions(&self, _: crate::rules::Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[opt("strip-options", Arg::One)];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_tcpoptstrip_target_info>();
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "TCPOPTSTRIP")?;
            no_invert(o, "TCPOPTSTRIP")?;
            match o.name {
                "strip-options" => {
                    for (i, w) in parse_list(o.arg())?.iter().enumerate() {
                        p.u32(field::BMAP + 4 * i, *w);
                    }
                }
                _ => return Err(super::unknown_option("TCPOPTSTRIP", o)),
            }
        }
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, size_of::<xt_tcpoptstrip_target_info>())?;
        let mut kinds = Vec::new();
        for kind in 0..256usize {
            if r.u32(field::BMAP + 4 * (kind / 32))? & (1 << (kind % 32)) != 0 {
                kinds.push(kind.to_string());
            }
        }
        // An empty bitmap prints nothing; the save side is always numeric.
        if !kinds.is_empty() {
            out.push_str(" --strip-options ");
            out.push_str(&kinds.join(","));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::rules::{Family, IpMatch};

    fn with_ctx<T>(f: impl FnOnce(&RuleContext) -> T) -> T {
        let mut ip = IpMatch::any(Family::V4);
        ip.proto = 6;
        f(&RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "mangle",
        })
    }

    fn parse(arg: Option<&str>) -> ExtResult<Vec<u8>> {
        let opts: Vec<OptValue> = arg
            .iter()
            .map(|a| OptValue {
                name: "strip-options",
                invert: false,
                args: vec![a.to_string()].into(),
            })
            .collect();
        with_ctx(|c| TcpOptStrip.parse(0, &opts, c))
    }

    fn save(data: &[u8]) -> String {
        let mut out = String::new();
        with_ctx(|c| TcpOptStrip.save(0, data, c, &mut out)).expect("save");
        out
    }

    /// The 32-byte bitmap from the non-zero leading words given.
    fn bmap(words: &str) -> Vec<u8> {
        let mut v = hex(words);
        v.resize(32, 0);
        v
    }

    // Captured from the kernel after iptables-legacy-restore and
    // ip6tables-legacy-restore (same bytes): strip_bmap[8], u32 words in
    // host order.
    const CASES: &[(Option<&str>, &str, &str)] = &[
        // argument, kernel bytes (leading words), iptables-legacy-save
        (Some("wscale"), "08000000", " --strip-options 3"),
        (
            Some("mss,sack-permitted,sack,timestamp,md5"),
            "34010800",
            " --strip-options 2,4,5,8,19",
        ),
        (
            Some("2,3,255"),
            "0c000000 00000000 00000000 00000000 00000000 00000000 00000000 00000080",
            " --strip-options 2,3,255",
        ),
        (
            Some("0x1f,010,30,32,33,64,128"),
            "000100c0 03000000 01000000 00000000 01000000",
            " --strip-options 8,30,31,32,33,64,128",
        ),
        (
            Some("timestamp,wscale,7"),
            "88010000",
            " --strip-options 3,7,8",
        ),
        (None, "", ""),
    ];

    #[test]
    fn parse_matches_kernel_bytes() {
        for (arg, bytes, _) in CASES {
            assert_eq!(parse(*arg).unwrap(), bmap(bytes), "{arg:?}");
        }
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        for (arg, bytes, text) in CASES {
            assert_eq!(save(&bmap(bytes)), *text, "{arg:?}");
        }
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(
            parse(Some("mss,")).unwrap_err(),
            "Bad TCP option value \"\""
        );
        assert_eq!(
            parse(Some("MSS")).unwrap_err(),
            "Bad TCP option value \"MSS\""
        );
        assert_eq!(
            parse(Some("256")).unwrap_err(),
            "Bad TCP option value \"256\""
        );
        assert_eq!(
            parse(Some("1")).unwrap_err(),
            "Option value may not be 0 or 1"
        );
        assert_eq!(
            parse(Some("mss,2")).unwrap_err(),
            "Option \"2\" already specified"
        );
        let twice: Vec<OptValue> = ["2", "3"]
            .iter()
            .map(|a| OptValue {
                name: "strip-options",
                invert: false,
                args: vec![a.to_string()].into(),
            })
            .collect();
        assert!(with_ctx(|c| TcpOptStrip.parse(0, &twice, c))
            .unwrap_err()
            .contains("only be used once"));
        assert!(with_ctx(|c| TcpOptStrip.save(0, &[0; 31], c, &mut String::new())).is_err());
    }
}
