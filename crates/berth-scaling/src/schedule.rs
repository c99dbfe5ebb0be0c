//! Scheduled actions' schedules, as Application Auto Scaling writes them:
//!
//! - `at(yyyy-mm-ddThh:mm:ss)`: once, at that wall-clock time in the action's time zone;
//! - `rate(N minute|minutes|hour|hours|day|days)`: every N units from the start time (or from
//!   when the action was put), first one interval after it;
//! - `cron(minutes hours day-of-month month day-of-week year)`: EventBridge's six fields, with
//!   `* , - /`, `?` in one of the two day fields, month and day names (`JAN`, `MON`), `L` (last
//!   day of the month, or `5L` last Thursday), `W` (`15W` nearest weekday, `LW`), `#` (`2#1`
//!   first Monday); days of the week run 1 (Sunday) to 7 (Saturday).
//!
//! `at` and `cron` read in the `Timezone` given (an IANA name, UTC by default): daylight saving
//! shifts are followed, a wall-clock time skipped by a shift runs at the shifted time. Runs
//! outside `[StartTime, EndTime]` do not happen. Times are milliseconds since the epoch.

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScheduleError {
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> ScheduleError {
    ScheduleError::Invalid(message.into())
}

/// A set of small numbers (minutes 0-59 and the like) as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bits(u64);

impl Bits {
    fn has(self, n: u32) -> bool {
        n < 64 && self.0 & (1 << n) != 0
    }

    fn iter(self) -> impl Iterator<Item = u32> {
        (0..64).filter(move |n| self.has(*n))
    }
}

/// The day-of-month field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayOfMonth {
    Any,
    Days(Bits),
    Last,
    /// The weekday nearest to this day, within the month.
    NearestWeekday(u32),
    LastWeekday,
}

/// The day-of-week field (1 Sunday .. 7 Saturday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayOfWeek {
    Any,
    Days(Bits),
    /// The last such weekday of the month.
    Last(u32),
    /// The n-th such weekday of the month.
    Nth(u32, u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Cron {
    minutes: Bits,
    hours: Bits,
    dom: DayOfMonth,
    months: Bits,
    dow: DayOfWeek,
    /// Years since 1970 are too many for bits: an explicit range list.
    years: Vec<(i16, i16, i16)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    At(DateTime),
    /// Seconds.
    Rate(i64),
    Cron(Cron),
}

/// A parsed schedule with its time zone and active window.
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: Kind,
    zone: TimeZone,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn number(raw: &str, names: &[&str], base: u32, field: &str) -> Result<u32, ScheduleError> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(raw)) {
        return Ok(i as u32 + base);
    }
    raw.parse::<u32>().map_err(|_| invalid(format!("the {field} field has {raw:?}, which is not a value it takes")))
}

/// A numeric field: `*`, `a`, `a-b`, `*/n`, `a/n`, `a-b/n`, comma-separated.
fn numbers(raw: &str, lo: u32, hi: u32, names: &[&str], field: &str) -> Result<Vec<(u32, u32, u32)>, ScheduleError> {
    let mut out = Vec::new();
    for item in raw.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step = s.parse::<u32>().ok().filter(|s| *s > 0);
                (r, step.ok_or_else(|| invalid(format!("the {field} field has a bad increment {s:?}")))?)
            }
            None => (item, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (number(a, names, 1, field)?, number(b, names, 1, field)?)
        } else {
            let a = number(range, names, 1, field)?;
            (a, if item.contains('/') { hi } else { a })
        };
        if a < lo || b > hi || a > b {
            return Err(invalid(format!("the {field} field must be within {lo}-{hi}, not {item:?}")));
        }
        out.push((a, b, step));
    }
    Ok(out)
}

fn bits(ranges: &[(u32, u32, u32)]) -> Bits {
    let mut b = 0u64;
    for &(a, z, step) in ranges {
        let mut n = a;
        while n <= z {
            b |= 1 << n;
            n += step;
        }
    }
    Bits(b)
}

fn day_of_month(raw: &str) -> Result<DayOfMonth, ScheduleError> {
    Ok(match raw {
        "?" | "*" => DayOfMonth::Any,
        "L" => DayOfMonth::Last,
        "LW" => DayOfMonth::LastWeekday,
        w if w.ends_with('W') => {
            let day = w[..w.len() - 1].parse::<u32>().ok().filter(|d| (1..=31).contains(d));
            DayOfMonth::NearestWeekday(day.ok_or_else(|| invalid(format!("the day-of-month field has {w:?}")))?)
        }
        _ => DayOfMonth::Days(bits(&numbers(raw, 1, 31, &[], "day-of-month")?)),
    })
}

fn day_of_week(raw: &str) -> Result<DayOfWeek, ScheduleError> {
    Ok(match raw {
        "?" | "*" => DayOfWeek::Any,
        "L" => DayOfWeek::Days(Bits(1 << 7)),
        l if l.len() > 1 && l.ends_with('L') => DayOfWeek::Last(number(&l[..l.len() - 1], &DAYS, 1, "day-of-week")?),
        n if n.contains('#') => {
            let (d, nth) = n.split_once('#').expect("contains #");
            let nth = nth.parse::<u32>().ok().filter(|k| (1..=5).contains(k));
            DayOfWeek::Nth(
                number(d, &DAYS, 1, "day-of-week")?,
                nth.ok_or_else(|| invalid(format!("the day-of-week field has {n:?}: # takes 1 to 5")))?,
            )
        }
        _ => DayOfWeek::Days(bits(&numbers(raw, 1, 7, &DAYS, "day-of-week")?)),
    })
    .and_then(|d| match d {
        DayOfWeek::Last(x) | DayOfWeek::Nth(x, _) if !(1..=7).contains(&x) => {
            Err(invalid(format!("the day-of-week field must be within 1-7, not {raw:?}")))
        }
        d => Ok(d),
    })
}

fn cron(body: &str) -> Result<Cron, ScheduleError> {
    let fields: Vec<&str> = body.split_whitespace().collect();
    let [minutes, hours, dom, months, dow, years] = fields[..] else {
        return Err(invalid(format!(
            "a cron expression has six fields (minutes hours day-of-month month day-of-week year), not {}",
            fields.len()
        )));
    };
    let dom = day_of_month(dom)?;
    let dow = day_of_week(dow)?;
    let (dom_raw, dow_raw) = (fields[2], fields[4]);
    if (dom_raw == "?") == (dow_raw == "?") {
        return Err(invalid("a cron expression must have ? in exactly one of day-of-month and day-of-week"));
    }
    let years =
        numbers(years, 1970, 2199, &[], "year")?.into_iter().map(|(a, b, s)| (a as i16, b as i16, s as i16)).collect();
    Ok(Cron {
        minutes: bits(&numbers(minutes, 0, 59, &[], "minutes")?),
        hours: bits(&numbers(hours, 0, 23, &[], "hours")?),
        dom,
        months: bits(&numbers(months, 1, 12, &MONTHS, "month")?),
        dow,
        years,
    })
}

fn rate(body: &str) -> Result<i64, ScheduleError> {
    let bad = || {
        invalid(format!(
            "a rate expression is rate(VALUE UNIT) with a positive VALUE and a UNIT of minute(s), hour(s) or day(s), not rate({body})"
        ))
    };
    let (value, unit) = body.trim().split_once(' ').ok_or_else(bad)?;
    let value = value.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(bad)?;
    let unit_secs = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return Err(bad()),
    };
    value.checked_mul(unit_secs).filter(|s| *s <= 3650 * 86_400).ok_or_else(bad)
}

fn at(body: &str) -> Result<DateTime, ScheduleError> {
    let bad = || invalid(format!("an at expression is at(yyyy-mm-ddThh:mm:ss), not at({body})"));
    if body.len() != 19 || body.as_bytes()[10] != b'T' {
        return Err(bad());
    }
    body.parse::<DateTime>().map_err(|_| bad())
}

/// The time zone an IANA name names.
pub fn zone(name: &str) -> Result<TimeZone, ScheduleError> {
    TimeZone::get(name).map_err(|_| {
        invalid(format!("{name} is not a time zone name Berth knows (IANA names such as America/New_York)"))
    })
}

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn instant(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::MAX)
}

impl Schedule {
    /// Parses `expression` (with `at(`, `rate(` or `cron(`) read in `timezone` (UTC when
    /// `None`), active within `[start_ms, end_ms]`.
    pub fn parse(
        expression: &str,
        timezone: Option<&str>,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
    ) -> Result<Schedule, ScheduleError> {
        let e = expression.trim();
        let body = |prefix: &str| e.strip_prefix(prefix).and_then(|r| r.strip_suffix(')'));
        let kind = if let Some(b) = body("at(") {
            Kind::At(at(b)?)
        } else if let Some(b) = body("rate(") {
            Kind::Rate(rate(b)?)
        } else if let Some(b) = body("cron(") {
            Kind::Cron(cron(b)?)
        } else {
            return Err(invalid(format!("a schedule is at(...), rate(...) or cron(...), not {expression:?}")));
        };
        if let (Some(s), Some(e)) = (start_ms, end_ms)
            && e <= s
        {
            return Err(invalid("EndTime must be after StartTime"));
        }
        let zone = match timezone {
            Some(name) => zone(name)?,
            None => TimeZone::UTC,
        };
        Ok(Schedule { kind, zone, start_ms, end_ms })
    }

    /// The first run strictly after `after_ms`, within the window; `anchor_ms` (when the
    /// action was put) starts a rate without a start time. `None`: it never runs again.
    pub fn next_after(&self, after_ms: i64, anchor_ms: i64) -> Option<i64> {
        // Runs before the start time are not looked for.
        let from = match self.start_ms {
            Some(s) if s - 1 > after_ms => s - 1,
            _ => after_ms,
        };
        let next = match &self.kind {
            Kind::At(when) => {
                let t = ms(self.zone.to_ambiguous_zoned_datetime(*when).compatible().ok()?.timestamp());
                (t > from).then_some(t)
            }
            Kind::Rate(secs) => {
                let anchor = self.start_ms.unwrap_or(anchor_ms);
                let every = secs * 1000;
                let k = if from < anchor { 1 } else { (from - anchor) / every + 1 };
                Some(anchor + k * every)
            }
            Kind::Cron(c) => c.next_after(&self.zone, from),
        }?;
        match self.end_ms {
            Some(end) if next > end => None,
            _ => Some(next),
        }
    }
}

impl Cron {
    fn year_ok(&self, y: i16) -> bool {
        self.years.iter().any(|&(a, b, s)| y >= a && y <= b && (y - a) % s == 0)
    }

    fn dom_ok(&self, d: Date) -> bool {
        let last = d.last_of_month();
        match self.dom {
            DayOfMonth::Any => true,
            DayOfMonth::Days(b) => b.has(d.day() as u32),
            DayOfMonth::Last => d == last,
            DayOfMonth::NearestWeekday(n) => {
                let Ok(target) = d.first_of_month().checked_add(i64::from(n.min(last.day() as u32) - 1).days()) else {
                    return false;
                };
                nearest_weekday(target) == d
            }
            DayOfMonth::LastWeekday => nearest_weekday(last) == d,
        }
    }

    fn dow_ok(&self, d: Date) -> bool {
        let dow = d.weekday().to_sunday_one_offset() as u32;
        match self.dow {
            DayOfWeek::Any => true,
            DayOfWeek::Days(b) => b.has(dow),
            DayOfWeek::Last(x) => dow == x && d.checked_add(7.days()).is_ok_and(|n| n.month() != d.month()),
            DayOfWeek::Nth(x, n) => dow == x && (d.day() as u32 - 1) / 7 + 1 == n,
        }
    }

    fn day_ok(&self, d: Date) -> bool {
        self.year_ok(d.year()) && self.months.has(d.month() as u32) && self.dom_ok(d) && self.dow_ok(d)
    }

    fn next_after(&self, zone: &TimeZone, after_ms: i64) -> Option<i64> {
        let local = zone.to_datetime(instant(after_ms));
        let mut day = local.date();
        let last_year = self.years.iter().map(|r| r.1).max()?;
        while day.year() <= last_year {
            if self.day_ok(day) {
                for h in self.hours.iter() {
                    for m in self.minutes.iter() {
                        let wall = day.to_datetime(jiff::civil::time(h as i8, m as i8, 0, 0));
                        let Ok(zoned) = zone.to_ambiguous_zoned_datetime(wall).compatible() else { continue };
                        let t = ms(zoned.timestamp());
                        if t > after_ms {
                            return Some(t);
                        }
                    }
                }
            }
            day = day.tomorrow().ok()?;
        }
        None
    }
}

/// The weekday nearest to `d` within its month (Saturday goes to Friday, Sunday to Monday,
/// never across the month's edge).
fn nearest_weekday(d: Date) -> Date {
    let shift = match d.weekday() {
        Weekday::Saturday if d.day() == 1 => 2,
        Weekday::Saturday => -1,
        Weekday::Sunday if d == d.last_of_month() => -2,
        Weekday::Sunday => 1,
        _ => 0,
    };
    d.checked_add(shift.days()).unwrap_or(d)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn t(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn next(expr: &str, tz: Option<&str>, after: &str) -> Option<String> {
        let s = Schedule::parse(expr, tz, None, None).unwrap();
        s.next_after(t(after), t(after)).map(|ms| instant(ms).to_string())
    }

    #[test]
    fn at_runs_once_in_its_time_zone() {
        assert_eq!(
            next("at(2026-12-01T09:30:00)", None, "2026-11-30T00:00:00Z").as_deref(),
            Some("2026-12-01T09:30:00Z")
        );
        assert_eq!(
            next("at(2026-12-01T09:30:00)", Some("America/New_York"), "2026-11-30T00:00:00Z").as_deref(),
            Some("2026-12-01T14:30:00Z")
        );
        assert_eq!(next("at(2026-12-01T09:30:00)", None, "2026-12-01T09:30:00Z"), None, "past: never again");
    }

    #[test]
    fn rate_counts_from_its_anchor() {
        let s = Schedule::parse("rate(5 minutes)", None, None, None).unwrap();
        let anchor = t("2026-11-30T10:00:00Z");
        assert_eq!(s.next_after(anchor, anchor), Some(anchor + 300_000));
        assert_eq!(s.next_after(anchor + 300_000, anchor), Some(anchor + 600_000));
        assert_eq!(s.next_after(anchor + 301_000, anchor), Some(anchor + 600_000));
        let with_start = Schedule::parse("rate(1 hour)", None, Some(anchor + 7_200_000), None).unwrap();
        assert_eq!(with_start.next_after(anchor, anchor), Some(anchor + 7_200_000 + 3_600_000));
    }

    #[test]
    fn cron_fields_and_specials() {
        let after = "2026-11-30T10:07:00Z"; // a Monday
        assert_eq!(next("cron(0 12 * * ? *)", None, after).as_deref(), Some("2026-11-30T12:00:00Z"));
        assert_eq!(next("cron(*/15 * * * ? *)", None, after).as_deref(), Some("2026-11-30T10:15:00Z"));
        assert_eq!(next("cron(0 9 ? * MON-FRI *)", None, after).as_deref(), Some("2026-12-01T09:00:00Z"));
        assert_eq!(next("cron(0 9 ? * 2 *)", None, after).as_deref(), Some("2026-12-07T09:00:00Z"), "2 is Monday");
        assert_eq!(next("cron(0 0 L * ? *)", None, after).as_deref(), Some("2026-12-31T00:00:00Z"));
        assert_eq!(next("cron(0 0 ? * 6L *)", None, after).as_deref(), Some("2026-12-25T00:00:00Z"), "last Friday");
        assert_eq!(next("cron(0 0 ? * 2#1 *)", None, after).as_deref(), Some("2026-12-07T00:00:00Z"), "first Monday");
        assert_eq!(next("cron(0 0 1W * ? *)", None, after).as_deref(), Some("2026-12-01T00:00:00Z"));
        assert_eq!(next("cron(0 0 1W * ? *)", None, "2026-12-02T00:00:00Z").as_deref(), Some("2027-01-01T00:00:00Z"));
        assert_eq!(next("cron(0 0 LW * ? *)", None, "2027-01-01T00:00:00Z").as_deref(), Some("2027-01-29T00:00:00Z"));
        assert_eq!(next("cron(0 8 1 JAN ? 2027)", None, after).as_deref(), Some("2027-01-01T08:00:00Z"));
        assert_eq!(next("cron(0 8 1 JAN ? 2025)", None, after), None, "only in the past");
    }

    #[test]
    fn cron_follows_daylight_saving() {
        // 09:00 in New York is 14:00 UTC in winter, 13:00 in summer.
        let tz = Some("America/New_York");
        assert_eq!(next("cron(0 9 * * ? *)", tz, "2026-03-07T20:00:00Z").as_deref(), Some("2026-03-08T13:00:00Z"));
        assert_eq!(next("cron(0 9 * * ? *)", tz, "2026-03-06T20:00:00Z").as_deref(), Some("2026-03-07T14:00:00Z"));
        // 02:30 does not exist on 2026-03-08 in New York: it runs at the shifted 03:30.
        assert_eq!(next("cron(30 2 * * ? *)", tz, "2026-03-08T05:00:00Z").as_deref(), Some("2026-03-08T07:30:00Z"));
    }

    #[test]
    fn windows_bound_the_runs() {
        let start = t("2026-12-01T00:00:00Z");
        let end = t("2026-12-03T00:00:00Z");
        let s = Schedule::parse("cron(0 12 * * ? *)", None, Some(start), Some(end)).unwrap();
        let before = t("2026-11-01T00:00:00Z");
        assert_eq!(s.next_after(before, before), Some(t("2026-12-01T12:00:00Z")));
        assert_eq!(s.next_after(t("2026-12-02T12:00:00Z"), before), None, "past the end time");
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        for (expr, tz, fragment) in [
            ("every day", None, "at(...), rate(...) or cron(...)"),
            ("at(2026-12-01 09:30:00)", None, "yyyy-mm-ddThh:mm:ss"),
            ("at(2026-13-01T09:30:00)", None, "yyyy-mm-ddThh:mm:ss"),
            ("rate(0 minutes)", None, "positive VALUE"),
            ("rate(5 weeks)", None, "UNIT"),
            ("cron(0 12 * * *)", None, "six fields"),
            ("cron(0 12 * * * *)", None, "exactly one"),
            ("cron(0 12 ? * ? *)", None, "exactly one"),
            ("cron(60 12 * * ? *)", None, "minutes field must be within 0-59"),
            ("cron(0 24 * * ? *)", None, "hours"),
            ("cron(0 12 ? * 8 *)", None, "day-of-week"),
            ("cron(0 12 ? * MON#6 *)", None, "# takes 1 to 5"),
            ("cron(0 12 * FOO ? *)", None, "month field"),
            ("cron(0 12 * * ? 1900)", None, "year"),
            ("cron(*/0 12 * * ? *)", None, "increment"),
            ("cron(0 12 * * ? *)", Some("Mars/Olympus"), "time zone"),
        ] {
            let err = Schedule::parse(expr, tz, None, None).unwrap_err().to_string();
            assert!(err.contains(fragment), "{expr}: {err} lacks {fragment}");
        }
        let err = Schedule::parse("rate(1 day)", None, Some(10), Some(5)).unwrap_err();
        assert!(err.to_string().contains("EndTime"));
    }

    /// Brute force: every minute from `after` on, the first that the cron's fields accept.
    fn brute(c: &Cron, after_ms: i64) -> Option<i64> {
        let mut m = (after_ms / 60_000 + 1) * 60_000;
        for _ in 0..(60 * 24 * 400) {
            let dt = TimeZone::UTC.to_datetime(instant(m));
            if c.day_ok(dt.date()) && c.hours.has(dt.hour() as u32) && c.minutes.has(dt.minute() as u32) {
                return Some(m);
            }
            m += 60_000;
        }
        None
    }

    proptest! {
        /// In UTC, the next run is the first minute the fields accept: nothing is skipped
        /// and nothing earlier matches.
        #[test]
        fn cron_next_is_the_first_matching_minute(
            minute in 0u32..60, hour_step in 1u32..12, dom in 1u32..29, by_dom: bool, dow in 1u32..8,
            offset_min in 0i64..(60 * 24 * 60),
        ) {
            let day = if by_dom { format!("{dom} * ?") } else { format!("? * {dow}") };
            let expr = format!("{minute} */{hour_step} {day} *");
            let c = cron(&expr).unwrap();
            let after = t("2026-01-01T00:00:00Z") + offset_min * 60_000 + 17_000;
            prop_assert_eq!(c.next_after(&TimeZone::UTC, after), brute(&c, after));
        }

        /// A rate's runs are exactly its interval apart, all after the anchor.
        #[test]
        fn rate_runs_are_evenly_spaced(n in 1i64..120, after_s in 0i64..1_000_000) {
            let s = Schedule::parse(&format!("rate({n} minutes)"), None, None, None).unwrap();
            let anchor = 1_800_000_000_000;
            let first = s.next_after(anchor + after_s * 1000, anchor).unwrap();
            let second = s.next_after(first, anchor).unwrap();
            prop_assert_eq!(second - first, n * 60_000);
            prop_assert_eq!((first - anchor) % (n * 60_000), 0);
            prop_assert!(first > anchor + after_s * 1000);
        }
    }
}
