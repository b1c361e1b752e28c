//! The values `yaml.safe_load` (PyYAML, YAML 1.1) gives the scalars of a spec file, which is how
//! pyflyte reads an image spec file (`flytekit.configuration.Image.look_up_image_info`).
//!
//! A quoted scalar is a `str`. A plain one may be a null, a bool (`yes`, `on`, ... in YAML 1.1),
//! an int or a float; those PyYAML also resolves to dates and sexagesimal numbers are refused
//! rather than guessed (quoting them makes them text, in both tools).

use marked_yaml::types::Node;

use super::pyrepr::PyValue;

/// A plain scalar whose Python value imagespec does not reproduce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// Converts a node the way `yaml.safe_load` would.
pub fn to_py(node: &Node) -> Result<PyValue, Unsupported> {
    match node {
        Node::Scalar(s) if s.may_coerce() => resolve_plain(s.as_str()),
        Node::Scalar(s) => Ok(PyValue::Str(s.as_str().to_string())),
        Node::Sequence(items) => items
            .iter()
            .map(to_py)
            .collect::<Result<Vec<_>, _>>()
            .map(PyValue::List),
        Node::Mapping(map) => map
            .iter()
            .map(|(k, v)| {
                let key = if k.may_coerce() {
                    resolve_plain(k.as_str())?
                } else {
                    PyValue::Str(k.as_str().to_string())
                };
                Ok((key, to_py(v)?))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(PyValue::Dict),
    }
}

/// PyYAML's implicit resolvers for a plain scalar (`yaml/resolver.py`).
pub fn resolve_plain(text: &str) -> Result<PyValue, Unsupported> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(PyValue::None),
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Ok(PyValue::Bool(true));
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Ok(PyValue::Bool(false));
        }
        _ => {}
    }
    if let Some(i) = int(text) {
        return Ok(PyValue::Int(i));
    }
    if let Some(f) = float(text) {
        return Ok(PyValue::Float(f));
    }
    let unsupported = || Unsupported(text.to_string());
    let b = text.as_bytes();
    // Timestamps (`2024-01-02`) and sexagesimal numbers (`1:30`) become dates and numbers.
    let looks_like_date = b.len() >= 8
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5].is_ascii_digit();
    let sexagesimal = text.contains(':')
        && text.trim_start_matches(['-', '+']).split(':').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_digit() || c == '_' || c == '.')
        });
    if looks_like_date || sexagesimal || text == "=" || text == "<<" {
        return Err(unsupported());
    }
    Ok(PyValue::Str(text.to_string()))
}

fn int(text: &str) -> Option<i128> {
    let (neg, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(d) = body.strip_prefix("0b") {
        (2, d)
    } else if let Some(d) = body.strip_prefix("0x") {
        (16, d)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || (radix == 10 && digits.starts_with('_')) {
        return None;
    }
    if !digits.chars().all(|c| c == '_' || c.is_digit(radix)) {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() {
        return None;
    }
    let value = i128::from_str_radix(&clean, radix).ok()?;
    Some(if neg { -value } else { value })
}

/// `[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+][0-9]+)?` and `.inf`/`.nan` (a dot is required).
fn float(text: &str) -> Option<f64> {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let neg = text.starts_with('-');
    if matches!(body, ".inf" | ".Inf" | ".INF") {
        return Some(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if body.len() == text.len() && matches!(body, ".nan" | ".NaN" | ".NAN") {
        return Some(f64::NAN);
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac) = mantissa.split_once('.')?;
    let int_ok = int_part.is_empty()
        || (int_part.as_bytes()[0].is_ascii_digit()
            && int_part.chars().all(|c| c.is_ascii_digit() || c == '_'));
    let frac_ok = frac.chars().all(|c| c.is_ascii_digit() || c == '_');
    // `.` alone, or `._` without a digit, is not a float.
    let has_digit = int_part
        .chars()
        .chain(frac.chars())
        .any(|c| c.is_ascii_digit());
    let exp_ok = match exponent {
        None => true,
        Some(e) => {
            e.len() >= 2 && e.starts_with(['-', '+']) && e[1..].chars().all(|c| c.is_ascii_digit())
        }
    };
    if !(int_ok && frac_ok && has_digit && exp_ok) {
        return None;
    }
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    clean.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_pyyaml() {
        assert_eq!(resolve_plain("3.10"), Ok(PyValue::Float(3.1)));
        assert_eq!(resolve_plain("yes"), Ok(PyValue::Bool(true)));
        assert_eq!(resolve_plain("~"), Ok(PyValue::None));
        assert_eq!(resolve_plain("010"), Ok(PyValue::Int(8)));
        assert_eq!(resolve_plain("1_000"), Ok(PyValue::Int(1000)));
        assert_eq!(resolve_plain("1e5"), Ok(PyValue::Str("1e5".into())));
        assert_eq!(resolve_plain("1.0e+5"), Ok(PyValue::Float(1e5)));
        assert_eq!(resolve_plain("12.4.0"), Ok(PyValue::Str("12.4.0".into())));
        assert_eq!(resolve_plain("numpy"), Ok(PyValue::Str("numpy".into())));
        assert!(resolve_plain("2024-01-02").is_err());
        assert!(resolve_plain("1:30").is_err());
    }
}
