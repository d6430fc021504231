//! `log_date_format` as users write it: strftime (`%Y-%m-%d %H:%M:%S`), or
//! the day.js tokens of PM2 files (`YYYY-MM-DD HH:mm:ss Z`), which are
//! translated so that a PM2 file keeps its timestamps.

use chrono::format::{Item, StrftimeItems};

/// day.js tokens, longest first so that `MMMM` wins over `MM`.
const TOKENS: &[(&str, &str)] = &[
    ("YYYY", "%Y"),
    ("YY", "%y"),
    ("MMMM", "%B"),
    ("MMM", "%b"),
    ("MM", "%m"),
    ("M", "%-m"),
    ("DD", "%d"),
    ("D", "%-d"),
    ("dddd", "%A"),
    ("ddd", "%a"),
    ("HH", "%H"),
    ("H", "%-H"),
    ("hh", "%I"),
    ("h", "%-I"),
    ("mm", "%M"),
    ("m", "%-M"),
    ("ss", "%S"),
    ("s", "%-S"),
    ("SSS", "%3f"),
    ("ZZ", "%z"),
    ("Z", "%:z"),
    ("A", "%p"),
    ("a", "%P"),
    ("X", "%s"),
];

fn dayjs_to_strftime(f: &str) -> String {
    let mut out = String::new();
    let mut rest = f;
    while let Some(c) = rest.chars().next() {
        if c == '[' {
            // [text] is literal in day.js.
            let end = rest.find(']').unwrap_or(rest.len());
            out.push_str(&rest[1..end].replace('%', "%%"));
            rest = rest.get(end + 1..).unwrap_or("");
            continue;
        }
        if let Some((tok, rep)) = TOKENS.iter().find(|(t, _)| rest.starts_with(t)) {
            out.push_str(rep);
            rest = &rest[tok.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The strftime format to use; a format with no `%` is read as day.js.
pub fn to_strftime(f: &str) -> Result<String, String> {
    let out = if f.contains('%') {
        f.to_string()
    } else {
        dayjs_to_strftime(f)
    };
    if StrftimeItems::new(&out).any(|i| matches!(i, Item::Error)) {
        return Err(format!(
            "'{f}' is not a date format, use strftime (e.g. '%Y-%m-%d %H:%M:%S') or day.js tokens (e.g. 'YYYY-MM-DD HH:mm:ss')"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_passes_and_dayjs_is_translated() {
        assert_eq!(
            to_strftime("%Y-%m-%d %H:%M:%S").unwrap(),
            "%Y-%m-%d %H:%M:%S"
        );
        assert_eq!(
            to_strftime("YYYY-MM-DD HH:mm:ss Z").unwrap(),
            "%Y-%m-%d %H:%M:%S %:z"
        );
        assert_eq!(
            to_strftime("DD/MM HH:mm:ss.SSS").unwrap(),
            "%d/%m %H:%M:%S.%3f"
        );
        assert_eq!(to_strftime("[at] HH:mm").unwrap(), "at %H:%M");
    }

    #[test]
    fn broken_formats_are_refused() {
        assert!(to_strftime("%Y-%Q")
            .unwrap_err()
            .contains("not a date format"));
    }
}
