//! What an import did, counted, with every malformed row named for the operator to fix.

use std::collections::BTreeMap;
use std::fmt;

use super::profile::SkipReason;

/// Malformed rows listed per reason; beyond this they are only counted (memory stays bounded).
const LISTED_PER_REASON: usize = 1000;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    pub count: u64,
    /// Source ids of the rows (as read; `None` for a missing id), at most `LISTED_PER_REASON`.
    pub row_ids: Vec<Option<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub table: String,
    pub dry_run: bool,
    pub rows_read: u64,
    pub created: u64,
    pub updated: u64,
    /// Already imported with exactly these values.
    pub unchanged: u64,
    pub skipped: BTreeMap<SkipReason, Skipped>,
}

impl ImportReport {
    pub fn skip(&mut self, row_id: Option<&str>, reason: SkipReason) {
        let entry = self.skipped.entry(reason).or_default();
        entry.count += 1;
        if reason.is_malformed() && entry.row_ids.len() < LISTED_PER_REASON {
            entry.row_ids.push(row_id.map(str::to_owned));
        }
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().map(|s| s.count).sum()
    }

    pub fn skipped_for(&self, reason: SkipReason) -> u64 {
        self.skipped.get(&reason).map_or(0, |s| s.count)
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        };
        writeln!(
            f,
            "import from {}{mode}: {} rows read",
            self.table, self.rows_read
        )?;
        writeln!(f, "  created    {}", self.created)?;
        writeln!(f, "  updated    {}", self.updated)?;
        writeln!(f, "  unchanged  {}", self.unchanged)?;
        writeln!(f, "  skipped    {}", self.skipped_total())?;
        for (reason, s) in &self.skipped {
            writeln!(f, "    {}: {}", reason.describe(), s.count)?;
        }
        let malformed = self.skipped.iter().filter(|(r, _)| r.is_malformed());
        for (reason, s) in malformed {
            for id in &s.row_ids {
                // Debug-quoted and cut short: ids are untrusted text from the old database.
                let shown = match id {
                    Some(id) => format!("{:?}", id.chars().take(40).collect::<String>()),
                    None => "(no id)".into(),
                };
                writeln!(f, "  row {shown}: {}", reason.describe())?;
            }
            let unlisted = s.count - s.row_ids.len() as u64;
            if unlisted > 0 {
                writeln!(f, "  … and {unlisted} more: {}", reason.describe())?;
            }
        }
        Ok(())
    }
}
