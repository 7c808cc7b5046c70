//! `-m comment` (xt_comment): a text attached to a rule, matched by nothing.

use std::mem::offset_of;

use super::{
    no_invert, once, opt, Arg, Codec, ExtResult, Kind, OptSpec, OptValue, Payload, Reader,
    RuleContext,
};
use crate::rules::Family;
use crate::sys::bindings::{xt_comment_info, XT_MAX_COMMENT_LEN};

pub(super) static CODECS: &[&dyn Codec] = &[&Comment];

mod field {
    use super::*;
    pub const COMMENT: usize = offset_of!(xt_comment_info, comment);
}

/// The longest comment kept: iptables truncates to the field size less the NUL.
const MAX_LEN: usize = XT_MAX_COMMENT_LEN as usize - 1;

/// xtables_save_string: a word of `[A-Za-z0-9_-]` is printed bare; anything
/// else (the empty string included) goes in double quotes with `"`, `\` and
/// `'` escaped by a backslash.
pub(crate) fn save_xtables_string(out: &mut String, s: &str) {
    let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    out.push(' ');
    if !s.is_empty() && s.chars().all(bare) {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

struct Comment;

impl Codec for Comment {
    fn name(&self) -> &'static str {
        "comment"
    }
    fn kind(&self) -> Kind {
        Kind::Match
    }
    fn families(&self) -> &'static [Family] {
        &[Family::V4, Family::V6]
    }
    fn revisions(&self, _: Family) -> &'static [u8] {
        &[0]
    }
    fn options(&self) -> &'static [OptSpec] {
        const O: &[OptSpec] = &[opt("comment", Arg::One)];
        O
    }

    fn parse(&self, _rev: u8, opts: &[OptValue], _ctx: &RuleContext) -> ExtResult<Vec<u8>> {
        let mut p = Payload::of::<xt_comment_info>();
        let mut seen = Vec::new();
        for o in opts {
            match o.name {
                "comment" => {
                    once(&mut seen, o, "comment")?;
                    no_invert(o, "comment")?;
                    // The field is NUL-terminated: iptables copies at most
                    // MAX_LEN bytes and stops at an embedded NUL.
                    let b = o.arg_bytes();
                    let b = &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())];
                    p.bytes(field::COMMENT, &b[..b.len().min(MAX_LEN)]);
                }
                _ => return Err(super::unknown_option("comment", o)),
            }
        }
        if seen.is_empty() {
            return Err("comment: option \"--comment\" must be specified".into());
        }
        Ok(p.finish())
    }

    fn save(&self, _rev: u8, data: &[u8], _ctx: &RuleContext, out: &mut String) -> ExtResult<()> {
        let r = Reader::new(data, std::mem::size_of::<xt_comment_info>())?;
        // iptables forces a NUL into the last byte before printing.
        let text = r.cstr(field::COMMENT, MAX_LEN)?;
        out.push_str(" --comment");
        save_xtables_string(out, &crate::text::from_bytes(text));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::hex;
    use crate::rules::IpMatch;

    fn ov(name: &'static str, invert: bool, args: &[&str]) -> OptValue<'static> {
        OptValue {
            name,
            invert,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn run(opts: &[OptValue]) -> ExtResult<Vec<u8>> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        Comment.parse(0, opts, &ctx)
    }

    fn save(data: &[u8]) -> ExtResult<String> {
        let ip = IpMatch::any(Family::V4);
        let ctx = RuleContext {
            family: Family::V4,
            ip: &ip,
            table: "filter",
        };
        let mut out = String::new();
        Comment.save(0, data, &ctx, &mut out)?;
        Ok(out)
    }

    /// The 256-byte comment field: the text, then NULs.
    fn field_of(text: &str) -> Vec<u8> {
        let mut v = hex(text);
        v.resize(256, 0);
        v
    }

    // Captured from the kernel after iptables-legacy-restore of
    // `-A INPUT -m comment --comment foo` (xt_comment_info, 256 bytes):
    // 66 6f 6f  "foo", then NUL padding to 256.
    #[test]
    fn plain_word_both_ways() {
        let fixture = field_of("666f6f");
        assert_eq!(run(&[ov("comment", false, &["foo"])]).unwrap(), fixture);
        assert_eq!(save(&fixture).unwrap(), " --comment foo");
    }

    // Kernel capture of `--comment "say \"hi\" it's a\\b"`: the raw text;
    // save quotes it and escapes `"`, `'` and `\`.
    #[test]
    fn quoted_both_ways() {
        let fixture = field_of("7361792022686922206974277320615c62"); // say "hi" it's a\b
        assert_eq!(
            run(&[ov("comment", false, &["say \"hi\" it's a\\b"])]).unwrap(),
            fixture
        );
        assert_eq!(
            save(&fixture).unwrap(),
            r#" --comment "say \"hi\" it\'s a\\b""#
        );
    }

    // Kernel capture of `--comment "kube-system/dns:dns-tcp"`.
    #[test]
    fn punctuation_is_quoted() {
        let fixture = field_of("6b7562652d73797374656d2f646e733a646e732d746370");
        assert_eq!(
            run(&[ov("comment", false, &["kube-system/dns:dns-tcp"])]).unwrap(),
            fixture
        );
        assert_eq!(
            save(&fixture).unwrap(),
            " --comment \"kube-system/dns:dns-tcp\""
        );
    }

    // Kernel capture of `--comment ""`: an all-zero field, saved as "".
    #[test]
    fn empty_comment() {
        let fixture = field_of("");
        assert_eq!(run(&[ov("comment", false, &[""])]).unwrap(), fixture);
        assert_eq!(save(&fixture).unwrap(), " --comment \"\"");
    }

    // Kernel capture of a 300-character comment: iptables keeps 255 bytes
    // and the last byte of the field stays NUL.
    #[test]
    fn long_comment_truncated() {
        let long = "x".repeat(300);
        let fixture = field_of(&"78".repeat(255));
        assert_eq!(fixture[255], 0);
        assert_eq!(run(&[ov("comment", false, &[&long])]).unwrap(), fixture);
        assert_eq!(
            save(&fixture).unwrap(),
            format!(" --comment {}", "x".repeat(255))
        );
    }

    // Kernel capture of `--comment "café"`: UTF-8 bytes kept as they are.
    #[test]
    fn utf8_comment() {
        let fixture = field_of("636166c3a9");
        assert_eq!(run(&[ov("comment", false, &["café"])]).unwrap(), fixture);
        assert_eq!(save(&fixture).unwrap(), " --comment \"café\"");
    }

    #[test]
    fn refused() {
        assert!(run(&[]).unwrap_err().contains("must be specified"));
        assert!(run(&[ov("comment", true, &["x"])])
            .unwrap_err()
            .contains("cannot be inverted"));
        let twice = [ov("comment", false, &["a"]), ov("comment", false, &["b"])];
        assert!(run(&twice).unwrap_err().contains("only be used once"));
        assert!(save(&[0; 10]).is_err());
    }
}
