//! `-j LED` (xt_LED, `xt_led_info`): blink an LED trigger named
//! `netfilter-ID` on matching packets. One revision, both families.
//!
//! The test kernel is built without xt_LED (no LED target in
//! /proc/net/ip_tables_targets), so nothing can be loaded or dumped. The
//! fixtures below are the bytes iptables-legacy-restore 1.8.9 hands to the
//! kernel (captured from its IPT_SO_SET_REPLACE call) and the text that
//! libxt_LED.so's own save function prints for them.

use std::mem::{offset_of, size_of};

use super::{
    no_invert, once, opt, parse_uint, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload,
    Reader, RuleContext,
};
use crate::sys::bindings::xt_led_info;

pub(super) static CODECS: &[&dyn Codec] = &[&Led];

mod field {
    use super::*;
    /// `id[27]`: "netfilter-" and the trigger id, NUL-terminated.
    pub const ID: usize = offset_of!(xt_led_info, id);
    pub const ID_LEN: usize = 27;
    pub const ALWAYS_BLINK: usize = offset_of!(xt_led_info, always_blink);
    pub const DELAY: usize = offset_of!(xt_led_info, delay);
    /// Where the kernel-only part starts (the user size).
    pub const USER: usize = offset_of!(xt_led_info, internal_data);
}

const PREFIX: &str = "netfilter-";
/// The longest id that fits after the prefix (iptables' `.max`).
const MAX_ID: usize = field::ID_LEN - PREFIX.len() - 1;

struct Led;

impl Codec for Led {
    fn name(&self) -> &'static str {
        "LED"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn revisions(&self, _: crate::rules::Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("led-trigger-id", Arg::One),
            opt("led-delay", Arg::One),
            opt("led-always-blink", Arg::None),
        ];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_led_info>();
        let mut seen = Vec::new();
        for o in opts {
            once(&mut seen, o, "LED")?;
            no_invert(o, "LED")?;
            match o.name {
                "led-trigger-id" => {
                    if o.arg_bytes().len() > MAX_ID {
                        return Err(format!(
                            "Argument must have a maximum length of {MAX_ID} characters"
                        ));
                    }
                    let mut id = PREFIX.as_bytes().to_vec();
                    id.extend_from_slice(&o.arg_bytes());
                    p.bytes(field::ID, &id);
                }
                "led-delay" => {
                    let a = o.arg();
                    let delay = if a.len() >= 3 && a[..3].eq_ignore_ascii_case("inf") {
                        u32::MAX
                    } else {
                        parse_uint(a, 0, u32::MAX.into()).ok_or_else(|| {
                            format!("Delay value must be within range 0..{}", u32::MAX)
                        })? as u32
                    };
                    p.u32(field::DELAY, delay);
                }
                "led-always-blink" => {
                    p.u8(field::ALWAYS_BLINK, 1);
                }
                _ => return Err(super::unknown_option("LED", o)),
            }
        }
        if !seen.contains(&"led-trigger-id") {
            return Err("LED: option \"--led-trigger-id\" must be specified".into());
        }
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, field::USER)?;
        // iptables skips the prefix's length, whatever the field holds.
        let id = r.cstr(field::ID + PREFIX.len(), field::ID_LEN - PREFIX.len())?;
        let mut quoted = Vec::with_capacity(id.len() + 2);
        for &c in id {
            if c == b'"' || c == b'\\' {
                quoted.push(b'\\');
            }
            quoted.push(c);
        }
        out.push_str(" --led-trigger-id \"");
        out.push_str(&crate::text::from_bytes(&quoted));
        out.push('"');
        // `delay > 0` on an unsigned field, printed with %d: "inf" (all
        // ones) comes out as -1, as in iptables.
        let delay = r.u32(field::DELAY)?;
        if delay > 0 {
            out.push_str(&format!(" --led-delay {}", delay as i32));
        }
        if r.u8(field::ALWAYS_BLINK)? != 0 {
            out.push_str(" --led-always-blink");
        }
        Ok(())
    }
}

const _: () = assert!(size_of::<xt_led_info>() > field::USER);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::rules::{Family, IpMatch};

    fn ov(name: &'static str, arg: &str) -> OptValue<'static> {
        OptValue {
            name,
            invert: false,
            args: if name == "led-always-blink" {
                Default::default()
            } else {
                vec![arg.to_string()].into()
            },
        }
    }

    fn with_ctx<T>(f: impl FnOnce(&RuleContext) -> T) -> T {
        let ip = IpMatch::any(Family::V4);
        f(&RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        })
    }

    fn parse(opts: &[(&'static str, &str)]) -> ExtResult<Vec<u8>> {
        let opts: Vec<OptValue> = opts.iter().map(|(n, a)| ov(n, a)).collect();
        with_ctx(|c| Led.parse(0, &opts, c))
    }

    fn save(data: &[u8]) -> String {
        let mut out = String::new();
        with_ctx(|c| Led.save(0, data, c, &mut out)).expect("save");
        out
    }

    type Case = (
        &'static [(&'static str, &'static str)],
        &'static str,
        &'static str,
    );

    // Bytes from iptables-legacy-restore 1.8.9's IPT_SO_SET_REPLACE call
    // (LD_PRELOAD capture): id[27] | always_blink | delay (u32 host order)
    // | the kernel's pointer (zero). Text: libxt_LED.so's save function run
    // on those bytes.
    const CASES: &[Case] = &[
        (
            &[("led-trigger-id", "ssh")],
            "6e657466696c7465722d7373680000000000000000000000000000 00 00000000",
            " --led-trigger-id \"ssh\"",
        ),
        (
            &[
                ("led-trigger-id", "a\"b\\c"),
                ("led-delay", "100"),
                ("led-always-blink", ""),
            ],
            "6e657466696c7465722d6122625c63000000000000000000000000 01 64000000",
            " --led-trigger-id \"a\\\"b\\\\c\" --led-delay 100 --led-always-blink",
        ),
        (
            &[
                ("led-trigger-id", "1234567890123456"),
                ("led-delay", "INFinity"),
            ],
            "6e657466696c7465722d3132333435363738393031323334353600 00 ffffffff",
            " --led-trigger-id \"1234567890123456\" --led-delay -1",
        ),
        (
            &[("led-trigger-id", "x"), ("led-delay", "0")],
            "6e657466696c7465722d7800000000000000000000000000000000 00 00000000",
            " --led-trigger-id \"x\"",
        ),
        (
            &[("led-trigger-id", "y"), ("led-delay", "4294967295")],
            "6e657466696c7465722d7900000000000000000000000000000000 00 ffffffff",
            " --led-trigger-id \"y\" --led-delay -1",
        ),
        (
            &[("led-trigger-id", "z"), ("led-delay", "0x80000000")],
            "6e657466696c7465722d7a00000000000000000000000000000000 00 00000080",
            " --led-trigger-id \"z\" --led-delay -2147483648",
        ),
        (
            &[("led-trigger-id", ""), ("led-delay", "5")],
            "6e657466696c7465722d0000000000000000000000000000000000 00 05000000",
            " --led-trigger-id \"\" --led-delay 5",
        ),
    ];

    fn info(bytes: &str) -> Vec<u8> {
        let mut v = hex(bytes);
        v.resize(size_of::<xt_led_info>(), 0);
        v
    }

    #[test]
    fn parse_matches_iptables_bytes() {
        for (o, bytes, text) in CASES {
            assert_eq!(parse(o).unwrap(), info(bytes), "{text}");
        }
    }

    #[test]
    fn save_matches_libxt_led() {
        for (_, bytes, text) in CASES {
            assert_eq!(save(&info(bytes)), *text);
        }
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(
            parse(&[("led-delay", "1")]).unwrap_err(),
            "LED: option \"--led-trigger-id\" must be specified"
        );
        assert_eq!(
            parse(&[("led-trigger-id", "12345678901234567")]).unwrap_err(),
            "Argument must have a maximum length of 16 characters"
        );
        assert_eq!(
            parse(&[("led-trigger-id", "x"), ("led-delay", "-1")]).unwrap_err(),
            "Delay value must be within range 0..4294967295"
        );
        assert!(parse(&[("led-trigger-id", "x"), ("led-delay", "4294967296")]).is_err());
        assert!(parse(&[("led-trigger-id", "x"), ("led-trigger-id", "y")])
            .unwrap_err()
            .contains("only be used once"));
        let inv = [OptValue {
            invert: true,
            ..ov("led-always-blink", "")
        }];
        assert!(with_ctx(|c| Led.parse(0, &inv, c))
            .unwrap_err()
            .contains("cannot be inverted"));
        assert!(with_ctx(|c| Led.save(0, &[0; 31], c, &mut String::new())).is_err());
    }
}
