//! Python's `repr()` of the values a flytekit `ImageSpec` holds, byte for byte.
//!
//! flytekit's tag is the md5 of `str(dict)`, so the quoting of strings, the escapes, the spelling
//! of floats and the order of dict keys all change the name. Only the value kinds that
//! `yaml.safe_load` produces for a spec file (and the `CopyFileDetection` enum) are modelled.

use std::fmt::Write;

/// A Python value as `yaml.safe_load` (then flytekit) holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<PyValue>),
    /// A dict in insertion order (the file's order).
    Dict(Vec<(PyValue, PyValue)>),
    /// A member of flytekit's `CopyFileDetection`: its name and value.
    Enum(&'static str, i64),
}

impl PyValue {
    /// `repr(self)`, which is also what `str()` of a containing dict prints for it.
    pub fn repr(&self) -> String {
        let mut out = String::new();
        self.write_repr(&mut out);
        out
    }

    fn write_repr(&self, out: &mut String) {
        match self {
            PyValue::None => out.push_str("None"),
            PyValue::Bool(true) => out.push_str("True"),
            PyValue::Bool(false) => out.push_str("False"),
            PyValue::Int(i) => {
                let _ = write!(out, "{i}");
            }
            PyValue::Float(f) => out.push_str(&float_repr(*f)),
            PyValue::Str(s) => out.push_str(&str_repr(s)),
            PyValue::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write_repr(out);
                }
                out.push(']');
            }
            PyValue::Dict(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.write_repr(out);
                    out.push_str(": ");
                    v.write_repr(out);
                }
                out.push('}');
            }
            PyValue::Enum(name, value) => {
                let _ = write!(out, "<CopyFileDetection.{name}: {value}>");
            }
        }
    }

    /// Python truthiness (`if self.copy:`).
    pub fn truthy(&self) -> bool {
        match self {
            PyValue::None => false,
            PyValue::Bool(b) => *b,
            PyValue::Int(i) => *i != 0,
            PyValue::Float(f) => *f != 0.0,
            PyValue::Str(s) => !s.is_empty(),
            PyValue::List(l) => !l.is_empty(),
            PyValue::Dict(d) => !d.is_empty(),
            PyValue::Enum(..) => true,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// `repr(str)`: single quotes unless the text holds `'` and no `"`; `\\`, `\n`, `\r`, `\t` and
/// the quote escaped; non-printable characters as `\xNN`, `\uNNNN` or `\UNNNNNNNN`; printable
/// non-ASCII kept as is (Python 3).
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !is_printable(c) => {
                let code = c as u32;
                let _ = if code < 0x100 {
                    write!(out, "\\x{code:02x}")
                } else if code < 0x10000 {
                    write!(out, "\\u{code:04x}")
                } else {
                    write!(out, "\\U{code:08x}")
                };
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isprintable()` for one character: not a control (Cc), format (Cf), surrogate,
/// private-use, line/paragraph separator or space separator other than ` `. Unassigned code
/// points (Cn) are not tabulated here; they count as printable (a documented limit).
fn is_printable(c: char) -> bool {
    let code = c as u32;
    if c == ' ' {
        return true;
    }
    if c.is_control() {
        return false;
    }
    // Zs (other than space), Zl, Zp.
    if matches!(
        code,
        0xA0 | 0x1680 | 0x2000..=0x200A | 0x2028 | 0x2029 | 0x202F | 0x205F | 0x3000
    ) {
        return false;
    }
    // Cf: the format characters of the BMP and beyond.
    if matches!(
        code,
        0xAD | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x890..=0x891
            | 0x8E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    ) {
        return false;
    }
    // Co: private use.
    !matches!(code, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD)
}

/// `repr(float)`: the shortest text that reads back as the same double, in fixed notation for
/// 1e-4 <= |x| < 1e16 (with `.0` for integral values), else as `1.5e+16`.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let abs = f.abs();
    if f == 0.0 || (1e-4..1e16).contains(&abs) {
        let s = format!("{f}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        // Rust's `{:e}` is shortest-round-trip too: `1.5e16`, `1e-5`.
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        format!("{mantissa}e{sign}{digits:0>2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_quote_like_python() {
        assert_eq!(str_repr("abc"), "'abc'");
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("it's \"x\""), "'it\\'s \"x\"'");
        assert_eq!(str_repr("a\\b\n\t\r"), "'a\\\\b\\n\\t\\r'");
        assert_eq!(str_repr("\u{7f}\u{1}"), "'\\x7f\\x01'");
        assert_eq!(str_repr("é漢字🙂"), "'é漢字🙂'");
        assert_eq!(str_repr("\u{a0}\u{200b}\u{feff}"), "'\\xa0\\u200b\\ufeff'");
    }

    #[test]
    fn floats_print_like_python() {
        assert_eq!(float_repr(3.1), "3.1");
        assert_eq!(float_repr(3.0), "3.0");
        assert_eq!(float_repr(1e16), "1e+16");
        assert_eq!(float_repr(1.5e-5), "1.5e-05");
        assert_eq!(float_repr(0.0001), "0.0001");
        assert_eq!(float_repr(-0.0), "-0.0");
    }

    #[test]
    fn containers_and_enums() {
        let v = PyValue::Dict(vec![
            (
                PyValue::Str("b".into()),
                PyValue::List(vec![PyValue::Int(1), PyValue::None]),
            ),
            (PyValue::Str("a".into()), PyValue::Bool(true)),
            (PyValue::Str("m".into()), PyValue::Enum("ALL", 2)),
        ]);
        assert_eq!(
            v.repr(),
            "{'b': [1, None], 'a': True, 'm': <CopyFileDetection.ALL: 2>}"
        );
    }
}
