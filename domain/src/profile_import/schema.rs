//! The names an import may use: plain identifiers, and the source table's actual columns.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use super::ImportError;

/// Which source columns hold each field. Defaults are the old app's `UserProfile` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileColumns {
    pub id: String,
    pub email: String,
    pub name: String,
    pub avatar: String,
    pub tier: String,
    pub paid: String,
    pub team: String,
}

impl Default for ProfileColumns {
    fn default() -> Self {
        Self {
            id: "id".into(),
            email: "email".into(),
            name: "name".into(),
            avatar: "avatar_url".into(),
            tier: "membership_tier".into(),
            paid: "is_paid".into(),
            team: "is_team".into(),
        }
    }
}

impl ProfileColumns {
    /// Each column with the flag that names it, for error messages.
    pub(super) fn named(&self) -> [(&'static str, &str); 7] {
        [
            ("--id-column", &self.id),
            ("--email-column", &self.email),
            ("--name-column", &self.name),
            ("--avatar-column", &self.avatar),
            ("--tier-column", &self.tier),
            ("--paid-column", &self.paid),
            ("--team-column", &self.team),
        ]
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
    use super::is_identifier;

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
