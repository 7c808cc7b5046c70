//! `-j IDLETIMER` (xt_IDLETIMER): a timer per label, restarted by each
//! packet; when it runs out the kernel notifies userspace (sysfs, and for
//! `--alarm` an alarm timer that wakes the system).
//!
//! Revisions (both families): 0 `idletimer_tg_info` (timeout, label) and
//! 1 `idletimer_tg_info_v1` (adds `timer_type`, set by `--alarm`). The
//! kernel's timer pointer at the end lies beyond the target's user size
//! and reads back as zero.

use std::mem::{offset_of, size_of};

use super::ttl_tg::parse_xt_uint;
use super::{
    no_invert, once, opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::sys::bindings::{
    idletimer_tg_info, idletimer_tg_info_v1, MAX_IDLETIMER_LABEL_SIZE, XT_IDLETIMER_ALARM,
};

pub(super) static CODECS: &[&dyn Codec] = &[&IdleTimer];

mod field {
    use super::*;
    pub const TIMEOUT: usize = offset_of!(idletimer_tg_info, timeout);
    pub const LABEL: usize = offset_of!(idletimer_tg_info, label);
    pub const LABEL_LEN: usize = MAX_IDLETIMER_LABEL_SIZE as usize;
    pub const V1_TIMER_TYPE: usize = offset_of!(idletimer_tg_info_v1, timer_type);
    /// Where the kernel-only part starts (the user size).
    pub const V0_USER: usize = offset_of!(idletimer_tg_info, timer);
    pub const V1_USER: usize = offset_of!(idletimer_tg_info_v1, timer);
}

struct IdleTimer;

impl Codec for IdleTimer {
    fn name(&self) -> &'static str {
        "IDLETIMER"
    }
    fn kind(&self) -> Kind {
        Kind::Target
    }
    fn revisions(&self, _: crate::rules::Family) -> &'static [u8] {
        &[1, 0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[
            opt("timeout", Arg::One),
            opt("label", Arg::One),
            opt("alarm", Arg::None),
        ];
        O
    }

    fn parse(&self, rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = if rev == 0 {
            Payload::of::<idletimer_tg_info>()
        } else {
            Payload::of::<idletimer_tg_info_v1>()
        };
        let mut seen = Vec::new();
        for o in opts {
            if rev == 0 && o.name == "alarm" {
                return Err(
                    "IDLETIMER: option \"--alarm\" needs revision 1, which the kernel lacks".into(),
                );
            }
            once(&mut seen, o, "IDLETIMER")?;
            no_invert(o, "IDLETIMER")?;
            match o.name {
                "timeout" => {
                    let v = parse_xt_uint("IDLETIMER", o, 0, u32::MAX.into())?;
                    p.u32(field::TIMEOUT, v as u32);
                }
                "label" => {
                    // iptables cuts a longer label to 27 bytes; refused here.
                    if o.arg_bytes().len() >= field::LABEL_LEN {
                        return Err(format!(
                            "IDLETIMER: label `{}' is longer than {} characters",
                            o.arg(),
                            field::LABEL_LEN - 1
                        ));
                    }
                    p.bytes(field::LABEL, &o.arg_bytes());
                }
                "alarm" => {
                    p.u8(field::V1_TIMER_TYPE, XT_IDLETIMER_ALARM as u8);
                }
                _ => return Err(super::unknown_option("IDLETIMER", o)),
            }
        }
        for mand in ["timeout", "label"] {
            if !seen.contains(&mand) {
                return Err(format!("IDLETIMER: option \"--{mand}\" must be specified"));
            }
        }
        Ok(p.finish())
    }

    fn save(&self, rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let user = if rev == 0 {
            field::V0_USER
        } else {
            field::V1_USER
        };
        let r = Reader::new(data, user)?;
        out.push_str(&format!(" --timeout {}", r.u32(field::TIMEOUT)?));
        // Printed as it is, unquoted, as iptables does.
        out.push_str(" --label ");
        out.push_str(&crate::text::from_bytes(
            r.cstr(field::LABEL, field::LABEL_LEN)?,
        ));
        if rev >= 1 && u32::from(r.u8(field::V1_TIMER_TYPE)?) == XT_IDLETIMER_ALARM {
            out.push_str(" --alarm");
        }
        Ok(())
    }
}

const _: () = assert!(size_of::<idletimer_tg_info_v1>() > field::V1_USER);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::rules::{Family, IpMatch};

    fn ov(name: &'static str, arg: &str) -> OptValue<'static> {
        OptValue {
            name,
            invert: false,
            args: if arg.is_empty() {
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

    fn parse(rev: u8, opts: &[(&'static str, &str)]) -> ExtResult<Vec<u8>> {
        let opts: Vec<OptValue> = opts.iter().map(|(n, a)| ov(n, a)).collect();
        with_ctx(|c| IdleTimer.parse(rev, &opts, c))
    }

    fn save(rev: u8, data: &[u8]) -> String {
        let mut out = String::new();
        with_ctx(|c| IdleTimer.save(rev, data, c, &mut out)).expect("save");
        out
    }

    /// timeout (u32 host order) + label[28] (+ v1: send_nl_msg, timer_type),
    /// then zeros up to the struct size (the kernel pointer reads as 0).
    fn info(rev: u8, hexbytes: &str) -> Vec<u8> {
        let mut v = hex(hexbytes);
        v.resize(
            if rev == 0 {
                size_of::<idletimer_tg_info>()
            } else {
                size_of::<idletimer_tg_info_v1>()
            },
            0,
        );
        v
    }

    type Case = (
        u8,
        &'static [(&'static str, &'static str)],
        &'static str,
        &'static str,
    );

    // Captured from the kernel after iptables-legacy-restore (and
    // ip6tables-legacy-restore, same layout). Revision 0 was captured with
    // iptables-legacy-restore made to believe (LD_PRELOAD on the revision
    // query) that the kernel has no revision 1.
    const CASES: &[Case] = &[
        (
            1,
            &[("timeout", "60"), ("label", "idle4-web")],
            "3c000000 69646c65342d776562",
            " --timeout 60 --label idle4-web",
        ),
        (
            1,
            &[("label", "idle4-x"), ("timeout", "0x10")],
            "10000000 69646c65342d78",
            " --timeout 16 --label idle4-x",
        ),
        (
            1,
            &[
                ("timeout", "2147482"),
                ("label", "idle4_max_label_27_bytes_xx"),
            ],
            "9ac42000 69646c65345f6d61785f6c6162656c5f32375f62797465735f7878",
            " --timeout 2147482 --label idle4_max_label_27_bytes_xx",
        ),
        (
            1,
            &[("timeout", "1"), ("label", "idle4-alarm"), ("alarm", "")],
            "01000000 69646c65342d616c61726d0000000000000000000000000000000000 00 01",
            " --timeout 1 --label idle4-alarm --alarm",
        ),
        (
            1,
            &[
                ("alarm", ""),
                ("timeout", "3600"),
                ("label", "idle4-alarm2"),
            ],
            "100e0000 69646c65342d616c61726d3200000000000000000000000000000000 00 01",
            " --timeout 3600 --label idle4-alarm2 --alarm",
        ),
        (
            0,
            &[("timeout", "60"), ("label", "idle0-web")],
            "3c000000 69646c65302d776562",
            " --timeout 60 --label idle0-web",
        ),
        (
            0,
            &[
                ("timeout", "2147482"),
                ("label", "idle0_max_label_27_bytes_xx"),
            ],
            "9ac42000 69646c65305f6d61785f6c6162656c5f32375f62797465735f7878",
            " --timeout 2147482 --label idle0_max_label_27_bytes_xx",
        ),
    ];

    #[test]
    fn parse_matches_kernel_bytes() {
        for (rev, o, bytes, text) in CASES {
            assert_eq!(parse(*rev, o).unwrap(), info(*rev, bytes), "{text}");
        }
    }

    #[test]
    fn save_matches_iptables_legacy_save() {
        for (rev, _, bytes, text) in CASES {
            assert_eq!(save(*rev, &info(*rev, bytes)), *text);
        }
        // A label with a blank is printed bare, as iptables does.
        assert_eq!(
            save(1, &info(1, "05000000 612062")),
            " --timeout 5 --label a b"
        );
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(
            parse(1, &[("label", "x")]).unwrap_err(),
            "IDLETIMER: option \"--timeout\" must be specified"
        );
        assert_eq!(
            parse(1, &[("timeout", "1")]).unwrap_err(),
            "IDLETIMER: option \"--label\" must be specified"
        );
        assert_eq!(
            parse(1, &[("timeout", "4294967296"), ("label", "x")]).unwrap_err(),
            "IDLETIMER: bad value for option \"--timeout\", or out of range (0-4294967295)."
        );
        assert!(parse(
            1,
            &[("timeout", "1"), ("label", "x123456789012345678901234567")]
        )
        .unwrap_err()
        .contains("longer than 27"));
        assert!(parse(0, &[("timeout", "1"), ("label", "x"), ("alarm", "")]).is_err());
        assert!(parse(1, &[("timeout", "1"), ("timeout", "2")])
            .unwrap_err()
            .contains("only be used once"));
        let inv = [OptValue {
            invert: true,
            ..ov("alarm", "")
        }];
        assert!(with_ctx(|c| IdleTimer.parse(1, &inv, c))
            .unwrap_err()
            .contains("cannot be inverted"));
        assert!(with_ctx(|c| IdleTimer.save(1, &[0; 33], c, &mut String::new())).is_err());
    }
}
