//! When sweeps run: `VERIFY_SCHEDULE`, a cron expression in UTC with seconds first
//! (default `0 0 0 1,15 * *`: midnight on the 1st and the 15th). Every replica derives the same
//! ticks from it, so a tick's id names one sweep however many replicas see it.

use std::str::FromStr;

use chrono::{DateTime, Duration, SecondsFormat, Utc};

pub const DEFAULT_VERIFY_SCHEDULE: &str = "0 0 0 1,15 * *";

#[derive(Clone, Debug)]
pub struct SweepSchedule(cron::Schedule);

impl SweepSchedule {
    pub fn parse(expression: &str) -> Result<Self, String> {
        cron::Schedule::from_str(expression)
            .map(Self)
            .map_err(|e| e.to_string())
    }

    /// The cron expression, as configured.
    pub fn expression(&self) -> &str {
        self.0.source()
    }

    /// The latest tick at or before `now`, looking back at most 40 days (longer than any gap
    /// of a twice-monthly schedule), so a tick missed while every worker was down runs once.
    pub fn latest_at_or_before(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Look back in growing windows: a frequent schedule is found in the first, a sparse one
        // costs a few steps per window (the cron crate's backward walk is slow per step).
        let mut window = Duration::minutes(1);
        while window <= Duration::days(40) * 4 {
            let found = self
                .0
                .after(&(now - window))
                .take_while(|t| *t <= now)
                .last();
            if found.is_some() {
                return found.filter(|t| *t > now - Duration::days(40));
            }
            window = window * 4;
        }
        None
    }

    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0.after(&now).next()
    }
}

/// A tick's sweep id, the same on every replica.
pub fn tick_id(tick: DateTime<Utc>) -> String {
    tick.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_default_schedule_is_midnight_utc_on_the_1st_and_15th() {
        let s = SweepSchedule::parse(DEFAULT_VERIFY_SCHEDULE).unwrap();
        assert_eq!(
            s.next_after(at("2026-11-28T10:00:00Z")),
            Some(at("2026-12-01T00:00:00Z"))
        );
        assert_eq!(
            s.next_after(at("2026-12-01T00:00:00Z")),
            Some(at("2026-12-15T00:00:00Z"))
        );
        assert_eq!(
            s.latest_at_or_before(at("2026-11-28T10:00:00Z")),
            Some(at("2026-11-15T00:00:00Z"))
        );
        assert_eq!(
            s.latest_at_or_before(at("2026-12-01T00:00:00Z")),
            Some(at("2026-12-01T00:00:00Z"))
        );
        assert_eq!(tick_id(at("2026-12-01T00:00:00Z")), "2026-12-01T00:00:00Z");
    }

    #[test]
    fn a_frequent_schedule_finds_its_latest_tick_at_once() {
        let s = SweepSchedule::parse("* * * * * *").unwrap();
        let now = at("2026-11-28T10:00:05Z") + Duration::milliseconds(500);
        assert_eq!(s.latest_at_or_before(now), Some(at("2026-11-28T10:00:05Z")));
        assert_eq!(s.next_after(now), Some(at("2026-11-28T10:00:06Z")));
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in ["", "every day", "61 * * * * *", "* * *"] {
            assert!(SweepSchedule::parse(bad).is_err(), "{bad:?}");
        }
    }
}
