//! Time as Carnet sees it: a millisecond timestamp and an injected clock.
//!
//! No code outside the binary's wiring reads the system clock: tests drive a
//! [`ManualClock`] through idle timeouts or years of retention in microseconds.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// The timestamp as RFC 3339 text in UTC (for the API and logs).
    pub fn to_rfc3339(self) -> String {
        let Some(instant) = self.to_offset_date_time() else {
            return format!("@{}ms", self.0);
        };
        instant
            .format(&::time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| format!("@{}ms", self.0))
    }

    /// The timestamp as French civil text, "23/11/2026 à 10:17 UTC" (for the pages).
    pub fn to_french_text(self) -> String {
        let Some(instant) = self.to_offset_date_time() else {
            return format!("@{}ms", self.0);
        };
        let format =
            ::time::macros::format_description!("[day]/[month]/[year] à [hour]:[minute] UTC");
        instant
            .format(&format)
            .unwrap_or_else(|_| format!("@{}ms", self.0))
    }

    /// Parses RFC 3339 (`2026-11-23T10:17:00Z`) or a calendar date (`2026-11-23`, taken
    /// as midnight UTC), as people and scripts type them in filters.
    pub fn parse_rfc3339_or_date(text: &str) -> Option<Self> {
        use ::time::format_description::well_known::Rfc3339;
        let text = text.trim();
        if let Ok(instant) = ::time::OffsetDateTime::parse(text, &Rfc3339) {
            return Some(Self((instant.unix_timestamp_nanos() / 1_000_000) as i64));
        }
        let format = ::time::macros::format_description!("[year]-[month]-[day]");
        let date = ::time::Date::parse(text, &format).ok()?;
        Some(Self(date.midnight().assume_utc().unix_timestamp() * 1000))
    }

    fn to_offset_date_time(self) -> Option<::time::OffsetDateTime> {
        ::time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000).ok()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// The source of the current time, injected everywhere time matters.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// A clock that only moves when told to: for tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicI64,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self {
            millis: AtomicI64::new(start.unix_millis()),
        }
    }

    pub fn advance_millis(&self, millis: i64) {
        self.millis.fetch_add(millis, Ordering::SeqCst);
    }

    pub fn set(&self, now: Timestamp) {
        self.millis.store(now.unix_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.millis.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_rfc3339_and_french() {
        let instant = Timestamp::from_unix_millis(1_795_429_020_000);
        assert_eq!(instant.to_rfc3339(), "2026-11-23T10:17:00Z");
        assert_eq!(instant.to_french_text(), "23/11/2026 à 10:17 UTC");
    }

    #[test]
    fn out_of_range_timestamps_format_without_panicking() {
        let far = Timestamp::from_unix_millis(i64::MAX);
        assert!(far.to_rfc3339().starts_with('@'));
        assert!(far.to_french_text().starts_with('@'));
    }

    #[test]
    fn parses_instants_and_dates() {
        assert_eq!(
            Timestamp::parse_rfc3339_or_date("2026-11-23T10:17:00Z"),
            Some(Timestamp::from_unix_millis(1_795_429_020_000))
        );
        assert_eq!(
            Timestamp::parse_rfc3339_or_date("2026-11-23"),
            Some(Timestamp::from_unix_millis(1_795_392_000_000))
        );
        assert_eq!(Timestamp::parse_rfc3339_or_date("23/11/2026"), None);
        assert_eq!(Timestamp::parse_rfc3339_or_date(""), None);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp::from_unix_millis(1_000));
        assert_eq!(clock.now().unix_millis(), 1_000);
        clock.advance_millis(500);
        assert_eq!(clock.now().unix_millis(), 1_500);
        clock.set(Timestamp::from_unix_millis(7));
        assert_eq!(clock.now().unix_millis(), 7);
    }
}
