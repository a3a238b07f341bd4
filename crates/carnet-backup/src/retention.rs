//! Which snapshots to keep: the newest of each of the last N hours, days, weeks and
//! months that have one (restic's `forget --keep-*` rules), and always the newest.

use rustic_core::jiff::Zoned;
use rustic_core::repofile::SnapshotFile;
use rustic_core::{KeepOptions, RusticResult};

/// How many hourly, daily, weekly and monthly snapshots to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

impl Default for RetentionPolicy {
    /// 24 hourly, 14 daily, 8 weekly, 12 monthly: covers "at least weekly, monthly
    /// copies kept 12 rolling months" with room to spare.
    fn default() -> Self {
        Self {
            hourly: 24,
            daily: 14,
            weekly: 8,
            monthly: 12,
        }
    }
}

fn count(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

impl RetentionPolicy {
    /// The snapshots to forget at `now`, newest first. The newest snapshot is never among
    /// them, whatever the policy.
    pub fn to_forget(
        &self,
        snapshots: Vec<SnapshotFile>,
        now: &Zoned,
    ) -> RusticResult<Vec<SnapshotFile>> {
        let newest = snapshots
            .iter()
            .max_by_key(|s| s.time.timestamp())
            .map(|s| s.id);
        let keep = KeepOptions::default()
            .keep_hourly(count(self.hourly))
            .keep_daily(count(self.daily))
            .keep_weekly(count(self.weekly))
            .keep_monthly(count(self.monthly))
            // Keeps the newest even if every count is zero (and makes the options valid).
            .keep_last(1);
        Ok(keep
            .apply(snapshots, now)?
            .into_iter()
            .filter(|decision| !decision.keep && Some(decision.snapshot.id) != newest)
            .map(|decision| decision.snapshot)
            .collect())
    }
}
