//! The names an import may use: plain identifiers, and the source table's actual columns.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use super::ImportError;

/// Spellings of the paid flag tried, in order, when no column is named: the plan's
/// `UserProfile.is_paid_member` (which its own migration script reads), then `is_paid`.
pub const PAID_SPELLINGS: [&str; 2] = ["is_paid_member", "is_paid"];
/// The same for the team flag: `is_team_member` (as `isTeamMember` in the plan's API), then
/// `is_team`.
pub const TEAM_SPELLINGS: [&str; 2] = ["is_team_member", "is_team"];

/// Which source columns hold each field. Defaults are the old app's `UserProfile` names; the
/// flags, when not named, are whichever known spelling the table has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileColumns {
    pub id: String,
    pub email: String,
    pub name: String,
    pub avatar: String,
    pub tier: String,
    /// `None`: the first of [`PAID_SPELLINGS`] the table has.
    pub paid: Option<String>,
    /// `None`: the first of [`TEAM_SPELLINGS`] the table has.
    pub team: Option<String>,
}

/// The source columns an import reads, every one found in the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedColumns {
    pub id: String,
    pub email: String,
    pub name: String,
    pub avatar: String,
    pub tier: String,
    pub paid: String,
    pub team: String,
}

impl ResolvedColumns {
    /// Each field's label with its column, for the report.
    pub fn used(&self) -> Vec<(&'static str, String)> {
        [
            ("id", &self.id),
            ("email", &self.email),
            ("name", &self.name),
            ("avatar", &self.avatar),
            ("tier", &self.tier),
            ("paid", &self.paid),
            ("team", &self.team),
        ]
        .into_iter()
        .map(|(field, column)| (field, column.clone()))
        .collect()
    }
}

impl Default for ProfileColumns {
    fn default() -> Self {
        Self {
            id: "id".into(),
            email: "email".into(),
            name: "name".into(),
            avatar: "avatar_url".into(),
            tier: "membership_tier".into(),
            paid: None,
            team: None,
        }
    }
}

impl ProfileColumns {
    /// Each named column with the flag that names it, for error messages.
    pub(super) fn named(&self) -> Vec<(&'static str, &str)> {
        let mut named = vec![
            ("--id-column", self.id.as_str()),
            ("--email-column", &self.email),
            ("--name-column", &self.name),
            ("--avatar-column", &self.avatar),
            ("--tier-column", &self.tier),
        ];
        named.extend(self.paid.as_deref().map(|c| ("--paid-column", c)));
        named.extend(self.team.as_deref().map(|c| ("--team-column", c)));
        named
    }

    /// The columns to read from a table that has `found`; the names of those missing, each
    /// with its flag, otherwise.
    pub(super) fn resolve(&self, found: &[&str]) -> Result<ResolvedColumns, Vec<String>> {
        let mut missing = Vec::new();
        let mut take = |flag: &str, given: Option<&str>, spellings: &[&str]| -> String {
            let candidates: Vec<&str> = match given {
                Some(name) => vec![name],
                None => spellings.to_vec(),
            };
            match candidates.iter().find(|c| found.contains(c)) {
                Some(column) => (*column).to_owned(),
                None => {
                    missing.push(format!("{} ({flag})", candidates.join(" or ")));
                    String::new()
                }
            }
        };
        let resolved = ResolvedColumns {
            id: take("--id-column", Some(&self.id), &[]),
            email: take("--email-column", Some(&self.email), &[]),
            name: take("--name-column", Some(&self.name), &[]),
            avatar: take("--avatar-column", Some(&self.avatar), &[]),
            tier: take("--tier-column", Some(&self.tier), &[]),
            paid: take("--paid-column", self.paid.as_deref(), &PAID_SPELLINGS),
            team: take("--team-column", self.team.as_deref(), &TEAM_SPELLINGS),
        };
        if missing.is_empty() {
            Ok(resolved)
        } else {
            Err(missing)
        }
    }
}

/// A table or column name we are willing to put in SQL: a plain identifier. Everything is also
/// quoted when used, so this is about clear errors as much as about injection.
pub(super) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

/// The table's columns and their declared types; empty when there is no such table.
pub(super) async fn table_columns(
    db: &DatabaseConnection,
    table: &str,
) -> Result<Vec<(String, String)>, ImportError> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1"
        }
        DbBackend::Sqlite => "SELECT name, type FROM pragma_table_info(?)",
        _ => return Err(ImportError::UnsupportedSource),
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, [table.into()]))
        .await
        .map_err(ImportError::Source)?;
    rows.iter()
        .map(|r| Ok((r.try_get_by_index(0)?, r.try_get_by_index(1)?)))
        .collect::<Result<_, sea_orm::DbErr>>()
        .map_err(ImportError::Source)
}

#[cfg(test)]
mod tests {
    use super::{ProfileColumns, is_identifier};

    const PLAIN: [&str; 5] = ["id", "email", "name", "avatar_url", "membership_tier"];

    #[test]
    fn unnamed_flags_take_whichever_known_spelling_the_table_has() {
        let columns = ProfileColumns::default();
        let plan = [&PLAIN[..], &["is_paid_member", "is_team_member"]].concat();
        let resolved = columns.resolve(&plan).unwrap();
        assert_eq!(
            (resolved.paid.as_str(), resolved.team.as_str()),
            ("is_paid_member", "is_team_member")
        );
        let short = [&PLAIN[..], &["is_paid", "is_team"]].concat();
        let resolved = columns.resolve(&short).unwrap();
        assert_eq!(
            (resolved.paid.as_str(), resolved.team.as_str()),
            ("is_paid", "is_team")
        );
        let missing = columns.resolve(&PLAIN).unwrap_err();
        assert_eq!(
            missing,
            [
                "is_paid_member or is_paid (--paid-column)",
                "is_team_member or is_team (--team-column)"
            ]
        );
    }

    #[test]
    fn a_named_flag_column_is_taken_as_named() {
        let columns = ProfileColumns {
            paid: Some("is_paid".into()),
            ..ProfileColumns::default()
        };
        let table = [&PLAIN[..], &["is_paid_member", "is_team"]].concat();
        assert_eq!(
            columns.resolve(&table).unwrap_err(),
            ["is_paid (--paid-column)"]
        );
    }

    #[test]
    fn only_plain_identifiers_are_accepted_as_names() {
        for ok in ["user_profiles", "_x", "Profile2", "is_paid"] {
            assert!(is_identifier(ok), "{ok}");
        }
        let long = "a".repeat(64);
        for bad in [
            "",
            "1abc",
            "user profiles",
            "x;drop table users",
            "a\"b",
            "public.user_profiles",
            long.as_str(),
        ] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }
}
