//! Splits a rule line into words exactly as iptables-restore does
//! (`add_param_to_argv` in iptables 1.8.9):
//!
//! * words are separated by spaces and tabs;
//! * `"` opens a quoted part; inside it `\x` stands for `x` (so `\"` is a
//!   quote and `\\` a backslash) and spaces are kept; the closing `"` ends the
//!   word;
//! * outside double quotes every other character is literal, single quotes
//!   and backslashes included (`'a b'` is two words, `'a` and `b'`).
//!
//! Where iptables-restore silently accepts an unterminated quote (keeping
//! the newline in the argument), we report it.

/// One word of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word<'a> {
    /// The text, quotes removed: borrowed from the line unless quotes had to
    /// be removed.
    pub text: std::borrow::Cow<'a, str>,
    /// 1-based column where the word starts.
    pub column: usize,
    /// Part of it was in double quotes.
    pub quoted: bool,
}

/// iptables' limit on one parameter (its buffer is 1024 bytes).
pub const MAX_PARAM: usize = 1023;

/// Splits `line` (without its newline). Errors carry a 1-based column.
pub fn split_words<'a>(line: &'a str) -> Result<Vec<Word<'a>>, (usize, String)> {
    use std::borrow::Cow;
    let bytes = line.as_bytes();
    let blank = |b: u8| matches!(b, b' ' | b'\t' | b'\n');
    let mut words = Vec::with_capacity(24);
    let mut i = 0;
    while i < bytes.len() {
        if blank(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        // The unquoted part: up to a blank or an opening quote.
        while i < bytes.len() && !blank(bytes[i]) && bytes[i] != b'"' {
            i += 1;
        }
        let plain = start..i;
        if i == bytes.len() || bytes[i] != b'"' {
            if plain.len() > MAX_PARAM {
                return Err((start + 1, too_long()));
            }
            words.push(Word {
                text: Cow::Borrowed(&line[plain]),
                column: start + 1,
                quoted: false,
            });
            continue;
        }
        // A quoted part, which ends the word at its closing quote. Without
        // escapes and unquoted text before it, the word is borrowed too.
        let open = i;
        i += 1;
        let mut owned: Option<Vec<u8>> = None;
        let mut from = i;
        loop {
            match bytes.get(i) {
                None => return Err(unterminated(open)),
                Some(b'\\') => {
                    let buf = owned.get_or_insert_with(|| bytes[plain.clone()].to_vec());
                    buf.extend_from_slice(&bytes[from..i]);
                    match bytes.get(i + 1) {
                        Some(&c) => buf.push(c),
                        None => return Err(unterminated(open)),
                    }
                    i += 2;
                    from = i;
                }
                Some(b'"') => break,
                Some(_) => i += 1,
            }
        }
        let text = match owned {
            Some(mut buf) => {
                buf.extend_from_slice(&bytes[from..i]);
                Cow::Owned(
                    String::from_utf8(buf)
                        .map_err(|_| (start + 1, "the word is not valid UTF-8".to_string()))?,
                )
            }
            None if plain.is_empty() => Cow::Borrowed(&line[from..i]),
            None => Cow::Owned(format!("{}{}", &line[plain], &line[from..i])),
        };
        i += 1;
        if text.len() > MAX_PARAM {
            return Err((start + 1, too_long()));
        }
        words.push(Word {
            text,
            column: start + 1,
            quoted: true,
        });
    }
    Ok(words)
}

fn unterminated(open: usize) -> (usize, String) {
    (
        open + 1,
        "unterminated quote: expected a closing `\"' before the end of the line".into(),
    )
}

fn too_long() -> String {
    format!("parameter longer than {MAX_PARAM} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        split_words(line)
            .unwrap()
            .into_iter()
            .map(|w| w.text.into_owned())
            .collect()
    }

    #[test]
    fn splits_on_blanks() {
        assert_eq!(
            texts("-A  INPUT\t-j ACCEPT"),
            ["-A", "INPUT", "-j", "ACCEPT"]
        );
    }

    #[test]
    fn double_quotes_keep_spaces() {
        assert_eq!(
            texts(r#"--log-prefix "Denied TCP: " -j"#),
            ["--log-prefix", "Denied TCP: ", "-j"]
        );
    }

    #[test]
    fn backslash_escapes_inside_quotes_only() {
        assert_eq!(texts(r#""a \"b\" \\c" d\e"#), [r#"a "b" \c"#, r"d\e"]);
    }

    #[test]
    fn quote_inside_word_joins_and_closing_quote_ends_word() {
        assert_eq!(texts(r#"ab"c d"ef"#), ["abc d", "ef"]);
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(texts("--comment 'a b'"), ["--comment", "'a", "b'"]);
    }

    #[test]
    fn empty_quotes_give_an_empty_word() {
        assert_eq!(texts(r#"--comment """#), ["--comment", ""]);
    }

    #[test]
    fn columns_are_one_based() {
        let w = split_words("  -A INPUT").unwrap();
        assert_eq!((w[0].column, w[1].column), (3, 6));
    }

    #[test]
    fn unterminated_quote_is_an_error_at_the_quote() {
        let e = split_words(r#"-m comment --comment "abc"#).unwrap_err();
        assert_eq!(e.0, 22);
        assert!(e.1.contains("unterminated quote"));
    }

    #[test]
    fn overlong_parameter_is_an_error() {
        let long = "x".repeat(MAX_PARAM + 1);
        assert!(split_words(&long).is_err());
        assert!(split_words(&"x".repeat(MAX_PARAM)).is_ok());
    }
}
