//! Days and RFC 3339 times. Events are partitioned and rolled up by UTC day: days since
//! 1970-01-01.

use chorus_kit::clock::Micros;

pub const DAY_MICROS: i64 = 86_400_000_000;

/// The UTC day of a time in unix micros.
pub fn day_of(micros: Micros) -> i32 {
    i32::try_from(micros.div_euclid(DAY_MICROS)).unwrap_or(i32::MAX)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An RFC 3339 time ("2023-01-10T21:18:40+02:00", "2026-11-27T10:00:00.5Z") in unix micros.
pub fn parse_rfc3339(s: &str) -> Option<Micros> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac_micros = 0;
    if let Some(f) = rest.strip_prefix('.') {
        let digits = f.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut scaled: String = f[..digits].chars().take(6).collect();
        while scaled.len() < 6 {
            scaled.push('0');
        }
        frac_micros = scaled.parse::<i64>().ok()?;
        rest = &f[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset_secs;
    Some(secs * 1_000_000 + frac_micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_turn_at_midnight_utc() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(DAY_MICROS - 1), 0);
        assert_eq!(day_of(DAY_MICROS), 1);
        assert_eq!(day_of(-1), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn rfc3339_times_with_offsets_and_fractions() {
        // 2023-01-10T19:18:40Z is 1673378320.
        assert_eq!(parse_rfc3339("2023-01-10T21:18:40+02:00"), Some(1_673_378_320_000_000));
        assert_eq!(parse_rfc3339("2023-01-10T19:18:40Z"), Some(1_673_378_320_000_000));
        assert_eq!(parse_rfc3339("2023-01-10T19:18:40.25Z"), Some(1_673_378_320_250_000));
        assert_eq!(parse_rfc3339("2023-01-10T14:18:40-05:00"), Some(1_673_378_320_000_000));
        for bad in [
            "",
            "2023-01-10",
            "2023-13-10T00:00:00Z",
            "2023-01-10T00:00:00",
            "2023-01-10T00:00:00+0200",
            "x023-01-10T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
