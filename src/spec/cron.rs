//! `cron_restart` patterns as PM2 users write them: checked when the app is
//! defined, so a typo is refused rather than silently never firing, and
//! their next run times, in local time (croner, which follows Vixie cron:
//! a day matches when its day of month *or* its day of week does).

use std::str::FromStr;

use chrono::{DateTime, TimeZone};
use croner::Cron;

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
    check_fields(expr)?;
    // What is accepted must also be what runs.
    Schedule::parse(expr).map(|_| ())
}

/// A checked pattern, ready to give its run times.
#[derive(Debug, Clone)]
pub struct Schedule(Cron);

impl Schedule {
    pub fn parse(expr: &str) -> Result<Self, String> {
        let e = expr.trim();
        // croner knows every macro but this one.
        let e = if e.eq_ignore_ascii_case("@midnight") {
            "@daily".to_string()
        } else {
            open_steps(e)
        };
        Cron::from_str(&e)
            .map(Schedule)
            .map_err(|err| format!("'{expr}' is not a cron pattern: {err}"))
    }

    /// The first run strictly after `t`; None when the pattern never
    /// matches again (the 31st of February).
    pub fn next_after<Tz: TimeZone>(&self, t: &DateTime<Tz>) -> Option<DateTime<Tz>>
    where
        DateTime<Tz>: croner::CronDateTime,
    {
        self.0.find_next_occurrence(t, false).ok()
    }
}

/// `5/15` is Vixie cron's "from 5, every 15"; croner wants it spelled
/// `5-59/15`.
fn open_steps(expr: &str) -> String {
    let parts: Vec<&str> = expr.split_whitespace().collect();
    let fields: &[Field] = match parts.len() {
        5 => &[MINUTE, HOUR, DAY, MONTH, WEEKDAY],
        6 => &[SECOND, MINUTE, HOUR, DAY, MONTH, WEEKDAY],
        _ => return expr.to_string(),
    };
    let open = |item: &str, f: &Field| match item.split_once('/') {
        Some((start, step)) if start != "*" && !start.contains('-') => {
            format!("{start}-{}/{step}", f.max)
        }
        _ => item.to_string(),
    };
    parts
        .iter()
        .zip(fields)
        .map(|(part, f)| {
            part.split(',')
                .map(|item| open(item, f))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn check_fields(expr: &str) -> Result<(), String> {
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

    fn at(s: &str) -> DateTime<chrono::Utc> {
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    fn next(expr: &str, from: &str) -> String {
        Schedule::parse(expr)
            .unwrap()
            .next_after(&at(from))
            .unwrap()
            .to_rfc3339()
    }

    #[test]
    fn next_run_times() {
        assert_eq!(
            next("0 3 * * *", "2026-03-10T02:59:59Z"),
            "2026-03-10T03:00:00+00:00"
        );
        assert_eq!(
            next("0 3 * * *", "2026-03-10T03:00:00Z"),
            "2026-03-11T03:00:00+00:00"
        );
        assert_eq!(
            next("*/15 * * * *", "2026-03-10T10:16:00Z"),
            "2026-03-10T10:30:00+00:00"
        );
        // Six fields: seconds first.
        assert_eq!(
            next("*/2 * * * * *", "2026-03-10T10:00:01Z"),
            "2026-03-10T10:00:02+00:00"
        );
        assert_eq!(
            next("30 0 3 * * sun", "2026-03-10T00:00:00Z"),
            "2026-03-15T03:00:30+00:00"
        );
        // 7 is Sunday too; names and ranges.
        assert_eq!(
            next("0 12 * * 7", "2026-03-10T00:00:00Z"),
            "2026-03-15T12:00:00+00:00"
        );
        assert_eq!(
            next("0 0 * JAN-MAR MON-FRI", "2026-03-31T00:00:00Z"),
            "2027-01-01T00:00:00+00:00"
        );
        assert_eq!(
            next("@daily", "2026-03-10T10:00:00Z"),
            "2026-03-11T00:00:00+00:00"
        );
        assert_eq!(
            next("@midnight", "2026-03-10T10:00:00Z"),
            "2026-03-11T00:00:00+00:00"
        );
        assert_eq!(
            next("@hourly", "2026-03-10T10:00:00Z"),
            "2026-03-10T11:00:00+00:00"
        );
        assert_eq!(
            next("5/15 * * * *", "2026-03-10T10:21:00Z"),
            "2026-03-10T10:35:00+00:00"
        );
        assert_eq!(
            next("5/15,0 * * * *", "2026-03-10T10:51:00Z"),
            "2026-03-10T11:00:00+00:00"
        );
        // Vixie cron: day of month OR day of week.
        assert_eq!(
            next("0 0 13 * FRI", "2026-03-10T00:00:00Z"),
            "2026-03-13T00:00:00+00:00"
        );
        assert_eq!(
            next("0 0 1,15 * MON", "2026-03-10T00:00:00Z"),
            "2026-03-15T00:00:00+00:00"
        );
    }

    #[test]
    fn every_accepted_form_runs() {
        for p in [
            "5/15 * * * *",
            "0-59/5 * * * *",
            "0 0 ? * *",
            "0 0 * * ?",
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
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
