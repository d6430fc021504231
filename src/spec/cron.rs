//! Checking `cron_restart` patterns as PM2 users write them, so a typo is
//! refused when the app is defined rather than silently never firing.

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
};
const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY: Field = Field {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
};
const WEEKDAY: Field = Field {
    name: "day of week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};

const MACROS: &[&str] = &[
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

/// Accepts `m h dom mon dow`, the same with seconds first, and the
/// `@daily`-style macros.
pub fn check_cron(expr: &str) -> Result<(), String> {
    let e = expr.trim();
    if e.starts_with('@') {
        return if MACROS.contains(&e.to_ascii_lowercase().as_str()) {
            Ok(())
        } else {
            Err(format!(
                "'{expr}' is not a cron pattern: known macros are {}",
                MACROS.join(", ")
            ))
        };
    }
    let parts: Vec<&str> = e.split_whitespace().collect();
    let fields: &[Field] = match parts.len() {
        5 => &[MINUTE, HOUR, DAY, MONTH, WEEKDAY],
        6 => &[SECOND, MINUTE, HOUR, DAY, MONTH, WEEKDAY],
        n => {
            return Err(format!(
                "'{expr}' is not a cron pattern: it has {n} fields, use 5 (minute hour day month weekday, e.g. '0 3 * * *') or 6 (seconds first)"
            ))
        }
    };
    for (part, field) in parts.iter().zip(fields) {
        check_field(part, field).map_err(|why| format!("'{expr}' is not a cron pattern: {why}"))?;
    }
    Ok(())
}

fn check_field(part: &str, f: &Field) -> Result<(), String> {
    for item in part.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        if let Some(s) = step {
            match s.parse::<u32>() {
                Ok(n) if n > 0 => {}
                _ => return Err(format!("{} step '{s}' must be a number above 0", f.name)),
            }
        }
        // `?` is Quartz's "no specific value", accepted for the day fields.
        if range == "*" || (range == "?" && matches!(f.name, "day of month" | "day of week")) {
            continue;
        }
        let (lo, hi) = match range.split_once('-') {
            Some((a, b)) => (value(a, f)?, value(b, f)?),
            None => {
                let v = value(range, f)?;
                (v, v)
            }
        };
        if lo > hi {
            return Err(format!("{} range '{range}' goes backwards", f.name));
        }
    }
    Ok(())
}

fn value(s: &str, f: &Field) -> Result<u32, String> {
    let upper = s.to_ascii_uppercase();
    if let Some(i) = f.names.iter().position(|n| *n == upper) {
        return Ok(i as u32 + if f.names.len() == 12 { 1 } else { 0 });
    }
    match s.parse::<u32>() {
        Ok(v) if (f.min..=f.max).contains(&v) => Ok(v),
        Ok(_) => Err(format!(
            "{} '{s}' is out of range {}-{}",
            f.name, f.min, f.max
        )),
        Err(_) => Err(format!("{} '{s}' is not a number", f.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted() {
        for p in [
            "0 3 * * *",
            "*/15 * * * *",
            "0 0 1,15 * MON-FRI",
            "30 0 3 * * sun",
            "0 0 * JAN-MAR 0",
            "0 12 ? * 7",
            "@daily",
            "@HOURLY",
        ] {
            assert_eq!(check_cron(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn refused_with_the_reason() {
        assert!(check_cron("0 3 * *").unwrap_err().contains("4 fields"));
        assert!(check_cron("0 25 * * *")
            .unwrap_err()
            .contains("hour '25' is out of range 0-23"));
        assert!(check_cron("0 0 0 * *")
            .unwrap_err()
            .contains("day of month '0'"));
        assert!(check_cron("*/0 * * * *").unwrap_err().contains("step"));
        assert!(check_cron("5-1 * * * *").unwrap_err().contains("backwards"));
        assert!(check_cron("x * * * *")
            .unwrap_err()
            .contains("not a number"));
        assert!(check_cron("@sometimes").unwrap_err().contains("macros"));
    }
}
