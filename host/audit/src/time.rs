//! The one form of time in a trail: RFC 3339 UTC with microseconds, so
//! that times compare as strings; and reading times a person gives.

use std::time::{SystemTime, UNIX_EPOCH};

/// `time` as RFC 3339 UTC with microseconds: `2026-11-26T17:30:05.123456Z`.
/// Every record uses this form, so times compare as strings.
pub fn format_time(time: SystemTime) -> String {
    let micros = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default();
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{fraction:06}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Reads a time given by a person — `2026-11-26`, `2026-11-26T17:30:00Z`,
/// with or without fractions — into the records' form, for comparisons.
pub fn parse_time(text: &str) -> Result<String, String> {
    let bad =
        || format!("{text:?} is not a time; expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.ffffff]Z");
    let (date, clock) = match text.split_once('T') {
        Some((date, clock)) => (date, Some(clock.strip_suffix('Z').ok_or_else(bad)?)),
        None => (text, None),
    };
    let numbers = |part: &str, sep: char| -> Option<Vec<i64>> {
        part.split(sep).map(|n| n.parse::<i64>().ok()).collect()
    };
    let [year, month, day] = numbers(date, '-')
        .and_then(|v| <[i64; 3]>::try_from(v).ok())
        .ok_or_else(bad)?;
    let (clock, fraction) = match clock {
        None => ("00:00:00", "0"),
        Some(clock) => clock.split_once('.').unwrap_or((clock, "0")),
    };
    let [hour, minute, second] = numbers(clock, ':')
        .and_then(|v| <[i64; 3]>::try_from(v).ok())
        .ok_or_else(bad)?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
        || fraction.len() > 9
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let micros_text = format!("{fraction:0<6}");
    let micros: i64 = micros_text[..6].parse().map_err(|_| bad())?;
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    let total = seconds * 1_000_000 + micros;
    let time =
        UNIX_EPOCH + std::time::Duration::from_micros(u64::try_from(total).map_err(|_| bad())?);
    Ok(format_time(time))
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn times_have_one_form() {
        let time = UNIX_EPOCH + std::time::Duration::from_micros(1_795_714_205_123_456);
        assert_eq!(format_time(time), "2026-11-26T17:30:05.123456Z");
        assert_eq!(
            parse_time("2026-11-27").unwrap(),
            "2026-11-27T00:00:00.000000Z"
        );
        assert_eq!(
            parse_time("2026-11-27T17:30:05.1Z").unwrap(),
            "2026-11-27T17:30:05.100000Z"
        );
        assert!(parse_time("yesterday").unwrap_err().contains("not a time"));
        assert!(parse_time("2026-13-01").is_err());
    }

    proptest! {
        #[test]
        fn formatted_times_read_back(micros in 0u64..8_000_000_000_000_000) {
            let text = format_time(UNIX_EPOCH + std::time::Duration::from_micros(micros));
            prop_assert_eq!(parse_time(&text).unwrap(), text);
        }
    }
}
