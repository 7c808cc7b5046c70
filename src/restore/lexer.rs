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
    let mut words = Vec::with_capacity(24);
    let mut cur: Vec<u8> = Vec::with_capacity(64);
    let mut start = 0usize;
    let mut in_word = false;
    let mut quoted = false;
    let mut quote_open: Option<usize> = None;
    let mut escaped = false;
    let bytes = line.as_bytes();

    let push = |cur: &mut Vec<u8>,
                start: usize,
                quoted: bool,
                words: &mut Vec<Word<'a>>|
     -> Result<(), (usize, String)> {
        if cur.len() > MAX_PARAM {
            return Err((
                start + 1,
                format!("parameter longer than {MAX_PARAM} bytes"),
            ));
        }
        // A word without quotes is the very bytes of the line: borrowed.
        // Otherwise one allocation of the exact size; `cur` keeps its buffer
        // for the next word.
        let text = if quoted {
            std::borrow::Cow::Owned(
                std::str::from_utf8(cur)
                    .map_err(|_| (start + 1, "the word is not valid UTF-8".to_string()))?
                    .to_owned(),
            )
        } else {
            std::borrow::Cow::Borrowed(&line[start..start + cur.len()])
        };
        cur.clear();
        words.push(Word {
            text,
            column: start + 1,
            quoted,
        });
        Ok(())
    };

    for (i, &b) in bytes.iter().enumerate() {
        if quote_open.is_some() {
            if escaped {
                cur.push(b);
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quote_open = None;
                push(&mut cur, start, quoted, &mut words)?;
                in_word = false;
                quoted = false;
            } else {
                cur.push(b);
            }
            continue;
        }
        match b {
            b'"' => {
                if !in_word {
                    start = i;
                    in_word = true;
                }
                quote_open = Some(i);
                quoted = true;
            }
            b' ' | b'\t' | b'\n' => {
                if in_word {
                    push(&mut cur, start, quoted, &mut words)?;
                    in_word = false;
                    quoted = false;
                }
            }
            _ => {
                if !in_word {
                    start = i;
                    in_word = true;
                }
                cur.push(b);
            }
        }
    }
    if let Some(q) = quote_open {
        return Err((
            q + 1,
            "unterminated quote: expected a closing `\"' before the end of the line".into(),
        ));
    }
    if in_word {
        push(&mut cur, start, quoted, &mut words)?;
    }
    Ok(words)
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
