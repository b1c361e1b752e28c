//! POSIX shell quoting and splitting, for the values the plan puts on `RUN` command lines.
//!
//! Package specifiers such as `pandas[parquet]>=2` contain characters the shell would interpret
//! (globs, redirections), so every user value is quoted unless it is made only of characters that
//! are safe everywhere in a word.

use std::borrow::Cow;

/// Quotes `word` for `/bin/sh` if it needs it (single quotes; `'` written as `'\''`).
pub fn quote(word: &str) -> Cow<'_, str> {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b));
    if safe {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
    }
}

/// Quotes and joins words with spaces.
pub fn join<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Splits `text` into words as a POSIX shell would, without expansions: whitespace separates,
/// single quotes are literal, double quotes allow `\"`, `\\`, `\$` and `` \` ``, and a backslash
/// outside quotes escapes the next character.
pub fn split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("trailing backslash".into()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote("numpy==1.26.4"), "numpy==1.26.4");
        assert_eq!(quote("pandas[parquet]>=2"), "'pandas[parquet]>=2'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("~=1"), "'~=1'");
    }

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(
            split(r#"--no-build-isolation  --config-settings "a=b c" 'x y' z\ w "q\"uote""#)
                .expect("split"),
            vec![
                "--no-build-isolation",
                "--config-settings",
                "a=b c",
                "x y",
                "z w",
                "q\"uote"
            ]
        );
        assert_eq!(split("''").expect("split"), vec![""]);
        assert!(split("'open").is_err());
        assert!(split("\"open").is_err());
        assert!(split("end\\").is_err());
        assert!(split("   ").expect("split").is_empty());
    }
}
