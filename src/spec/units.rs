//! Parsing of the human units PM2 users write: sizes ("300M", "1G") and
//! durations ("10s", "500ms"). Errors say what would have been accepted.

/// Bytes from `1024`, `512K`, `300M`, `1G` (powers of 1024, case-insensitive,
/// an optional `B` after the unit is refused so "1GB" gets a clear hint).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || format!("'{s}' is not a size, use e.g. 1G, 300M, 512K or a number of bytes");
    if t.is_empty() {
        return Err(bad());
    }
    let (digits, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        Some(c) if c.is_ascii_digit() => (t, 1),
        _ => {
            if let Some(stripped) = t.strip_suffix(['B', 'b']) {
                if parse_size(stripped).is_ok() {
                    return Err(format!(
                        "'{s}' is not a size, use {}",
                        size_spellings(stripped)
                    ));
                }
            }
            return Err(bad());
        }
    };
    let n: f64 = digits.trim().parse().map_err(|_| bad())?;
    if !n.is_finite() || n <= 0.0 {
        return Err(bad());
    }
    Ok((n * mult as f64) as u64)
}

/// "1G or 1024M" for `1G`: the unit-less-B spelling and the same size in
/// the next smaller unit, which is what people who wrote "1.5GB" want.
fn size_spellings(valid: &str) -> String {
    let v = valid.trim().to_ascii_uppercase();
    let smaller = |digits: &str, unit: &str| {
        digits
            .trim()
            .parse::<f64>()
            .ok()
            .map(|n| format!("{v} or {}{unit}", n * 1024.0))
    };
    let alt = match v.chars().last() {
        Some('G') => smaller(&v[..v.len() - 1], "M"),
        Some('M') => smaller(&v[..v.len() - 1], "K"),
        Some('K') => smaller(&v[..v.len() - 1], ""),
        _ => None,
    };
    alt.unwrap_or(v)
}

/// Milliseconds from `1500`, `500ms`, `10s`, `2m`, `1h`.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || {
        format!("'{s}' is not a duration, use e.g. 500ms, 10s, 2m, 1h or a number of milliseconds")
    };
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" => 1.0,
        "s" => 1_000.0,
        "m" | "min" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return Err(bad()),
    };
    if !n.is_finite() || n < 0.0 {
        return Err(bad());
    }
    Ok((n * mult).round() as u64)
}

/// Renders bytes the way `list` shows them: `12.3mb`.
pub fn format_bytes(b: u64) -> String {
    const K: f64 = 1024.0;
    let f = b as f64;
    if f < K {
        format!("{b}b")
    } else if f < K * K {
        format!("{:.1}kb", f / K)
    } else if f < K * K * K {
        format!("{:.1}mb", f / (K * K))
    } else {
        format!("{:.2}gb", f / (K * K * K))
    }
}

/// Renders an uptime the way `list` shows it: `45s`, `12m`, `3h`, `2D`.
pub fn format_uptime(ms: u64) -> String {
    let s = ms / 1000;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m", s / 60)
    } else if s < 86_400 {
        format!("{}h", s / 3600)
    } else {
        format!("{}D", s / 86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("512K"), Ok(512 * 1024));
        assert_eq!(parse_size("300M"), Ok(300 << 20));
        assert_eq!(parse_size("300m"), Ok(300 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
    }

    #[test]
    fn size_errors_teach() {
        assert_eq!(
            parse_size("1GB").unwrap_err(),
            "'1GB' is not a size, use 1G or 1024M"
        );
        assert_eq!(
            parse_size("1.5gb").unwrap_err(),
            "'1.5gb' is not a size, use 1.5G or 1536M"
        );
        assert_eq!(
            parse_size("512KB").unwrap_err(),
            "'512KB' is not a size, use 512K or 524288"
        );
        assert!(parse_size("lots").unwrap_err().contains("use e.g. 1G"));
        assert!(parse_size("").is_err());
        assert!(parse_size("0M").is_err());
        assert!(parse_size("-1M").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("1500"), Ok(1500));
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("10s"), Ok(10_000));
        assert_eq!(parse_duration_ms("1.5s"), Ok(1_500));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert!(parse_duration_ms("10 parsecs").is_err());
        assert!(parse_duration_ms("s").is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(format_bytes(512), "512b");
        assert_eq!(format_bytes(40 * 1024 * 1024), "40.0mb");
        assert_eq!(format_uptime(5_000), "5s");
        assert_eq!(format_uptime(600_000), "10m");
        assert_eq!(format_uptime(7_200_000), "2h");
        assert_eq!(format_uptime(3 * 86_400_000), "3D");
    }
}
