//! What an import did, counted, with every malformed row named for the operator to fix.

use std::collections::BTreeMap;
use std::fmt;

use super::profile::{EmailDropped, SkipReason};

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
    /// Each field's label with the source column it was read from.
    pub columns: Vec<(&'static str, String)>,
    pub dry_run: bool,
    pub rows_read: u64,
    pub created: u64,
    pub updated: u64,
    /// Already imported with exactly these values.
    pub unchanged: u64,
    pub skipped: BTreeMap<SkipReason, Skipped>,
    /// Rows imported without their email, by why it was left out.
    pub emails_dropped: BTreeMap<EmailDropped, Skipped>,
}

impl ImportReport {
    pub fn skip(&mut self, row_id: Option<&str>, reason: SkipReason) {
        let entry = self.skipped.entry(reason).or_default();
        entry.count += 1;
        if reason.is_malformed() && entry.row_ids.len() < LISTED_PER_REASON {
            entry.row_ids.push(row_id.map(str::to_owned));
        }
    }

    pub fn drop_email(&mut self, row_id: &str, why: EmailDropped) {
        let entry = self.emails_dropped.entry(why).or_default();
        entry.count += 1;
        if entry.row_ids.len() < LISTED_PER_REASON {
            entry.row_ids.push(Some(row_id.to_owned()));
        }
    }

    pub fn emails_dropped_total(&self) -> u64 {
        self.emails_dropped.values().map(|s| s.count).sum()
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
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|(field, column)| format!("{field}={column}"))
            .collect();
        writeln!(f, "  columns    {}", columns.join(" "))?;
        writeln!(f, "  created    {}", self.created)?;
        writeln!(f, "  updated    {}", self.updated)?;
        writeln!(f, "  unchanged  {}", self.unchanged)?;
        writeln!(f, "  skipped    {}", self.skipped_total())?;
        for (reason, s) in &self.skipped {
            writeln!(f, "    {}: {}", reason.describe(), s.count)?;
        }
        let dropped = self.emails_dropped_total();
        if dropped > 0 {
            writeln!(f, "  imported without their email  {dropped}")?;
            for (why, s) in &self.emails_dropped {
                writeln!(f, "    {}: {}", why.describe(), s.count)?;
            }
        }
        let malformed = self.skipped.iter().filter(|(r, _)| r.is_malformed());
        for (reason, s) in malformed {
            list_rows(f, s, &reason.describe())?;
        }
        for (why, s) in &self.emails_dropped {
            list_rows(f, s, &format!("{} (imported without it)", why.describe()))?;
        }
        Ok(())
    }
}

fn list_rows(f: &mut fmt::Formatter<'_>, rows: &Skipped, what: &str) -> fmt::Result {
    for id in &rows.row_ids {
        // Debug-quoted and cut short: ids are untrusted text from the old database.
        let shown = match id {
            Some(id) => format!("{:?}", id.chars().take(40).collect::<String>()),
            None => "(no id)".into(),
        };
        writeln!(f, "  row {shown}: {what}")?;
    }
    let unlisted = rows.count - rows.row_ids.len() as u64;
    if unlisted > 0 {
        writeln!(f, "  … and {unlisted} more: {what}")?;
    }
    Ok(())
}
