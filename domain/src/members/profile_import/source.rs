//! Reading the old app's profile table: names checked before any query, then keyset-paginated
//! batches, so a table of any size is read a batch at a time.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, Value,
    sea_query::{Alias, Expr, ExprTrait, Order, Query, SelectStatement},
};

use super::ImportError;
use super::schema::{ProfileColumns, ResolvedColumns, is_identifier, table_columns};

/// One source row as read, before any validation. `id` is the id as text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceRow {
    pub id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub avatar: Option<String>,
    pub tier: Option<String>,
    pub paid: Option<bool>,
    pub team: Option<bool>,
}

/// Where the next batch starts: after this key value (an integer id, or an id's text form).
#[derive(Clone, Debug)]
enum Cursor {
    Start,
    After(Value),
    Done,
}

/// A validated profile table on the source connection, read batch by batch.
pub struct ProfileSource<'a> {
    db: &'a DatabaseConnection,
    table: String,
    columns: ResolvedColumns,
    integer_ids: bool,
    cursor: Cursor,
}

impl<'a> ProfileSource<'a> {
    /// Checks the names, then that the table and every column exist (names are exact, as
    /// stored; an unnamed flag column is whichever known spelling exists). Fails before
    /// anything is read or written.
    pub async fn open(
        db: &'a DatabaseConnection,
        table: &str,
        columns: ProfileColumns,
    ) -> Result<ProfileSource<'a>, ImportError> {
        let names = std::iter::once(("--table", table)).chain(columns.named());
        for (flag, name) in names {
            if !is_identifier(name) {
                return Err(ImportError::InvalidName {
                    flag,
                    name: name.to_owned(),
                });
            }
        }
        let found = table_columns(db, table).await?;
        if found.is_empty() {
            return Err(ImportError::NoSuchTable(table.to_owned()));
        }
        let names: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
        let columns = columns
            .resolve(&names)
            .map_err(|missing| ImportError::NoSuchColumns {
                table: table.to_owned(),
                columns: missing.join(", "),
            })?;
        let type_of = |column: &str| {
            found
                .iter()
                .find(|(name, _)| name == column)
                .map(|(_, t)| t.to_ascii_lowercase())
                .unwrap_or_default()
        };
        let sqlite = db.get_database_backend() == DbBackend::Sqlite;
        for (flag, column) in [
            ("--paid-column", &columns.paid),
            ("--team-column", &columns.team),
        ] {
            let declared = type_of(column);
            // SQLite stores booleans as integers, whatever the declaration says.
            let boolean = declared == "boolean"
                || (sqlite && (declared.contains("bool") || declared.contains("int")));
            if !boolean {
                return Err(ImportError::NotBoolean {
                    flag,
                    column: column.clone(),
                    declared,
                });
            }
        }
        let id_type = type_of(&columns.id);
        Ok(ProfileSource {
            db,
            table: table.to_owned(),
            integer_ids: matches!(id_type.as_str(), "smallint" | "integer" | "bigint")
                || (sqlite && id_type.contains("int")),
            columns,
            cursor: Cursor::Start,
        })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The columns read, as found in the table.
    pub fn columns(&self) -> &ResolvedColumns {
        &self.columns
    }

    pub async fn count_rows(&self) -> Result<u64, ImportError> {
        self.count(None).await
    }

    /// Rows without an id: they cannot be paged by id, so they are only counted.
    pub async fn count_rows_without_id(&self) -> Result<u64, ImportError> {
        self.count(Some(Expr::col(Alias::new(&self.columns.id)).is_null()))
            .await
    }

    async fn count(&self, filter: Option<Expr>) -> Result<u64, ImportError> {
        let mut q = Query::select();
        q.expr(Expr::cust("COUNT(*)")).from(Alias::new(&self.table));
        if let Some(filter) = filter {
            q.and_where(filter);
        }
        let row = self.db.query_one(&q).await.map_err(ImportError::Source)?;
        let n: i64 = match row {
            Some(row) => row.try_get_by_index(0).map_err(ImportError::Source)?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The next rows with an id, about `size` of them (a run of equal ids is never split, so
    /// duplicates are seen together), or none once the table is exhausted.
    pub async fn next_batch(&mut self, size: u64) -> Result<Vec<SourceRow>, ImportError> {
        let after = match &self.cursor {
            Cursor::Done => return Ok(Vec::new()),
            Cursor::Start => None,
            Cursor::After(value) => Some(value.clone()),
        };
        let key = self.key();
        let mut q = self.select();
        q.and_where(key.clone().is_not_null());
        if let Some(after) = after {
            q.and_where(key.clone().gt(after));
        }
        q.limit(size);
        let mut rows = self.read(&q).await?;
        let Some(last) = rows.last().and_then(|r| r.id.clone()) else {
            self.cursor = Cursor::Done;
            return Ok(rows);
        };
        if (rows.len() as u64) < size {
            self.cursor = Cursor::Done;
            return Ok(rows);
        }
        // The limit may have cut a run of equal ids: take that id's rows whole.
        rows.retain(|r| r.id.as_deref() != Some(last.as_str()));
        let last = self.key_value(&last)?;
        let mut ties = self.select();
        ties.and_where(key.eq(last.clone()));
        rows.extend(self.read(&ties).await?);
        self.cursor = Cursor::After(last);
        Ok(rows)
    }

    /// What rows are ordered and paged by.
    fn key(&self) -> Expr {
        let id = Expr::col(Alias::new(&self.columns.id));
        if self.integer_ids {
            id
        } else {
            id.cast_as("TEXT")
        }
    }

    fn key_value(&self, id_text: &str) -> Result<Value, ImportError> {
        if !self.integer_ids {
            return Ok(Value::from(id_text.to_owned()));
        }
        id_text
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| ImportError::UnexpectedValue {
                column: self.columns.id.clone(),
                expected: "an integer",
            })
    }

    /// Every field, text columns cast to text so any text-like type reads the same way. Ties are
    /// ordered by every field, so which of several equal-id rows comes first never varies.
    fn select(&self) -> SelectStatement {
        let c = &self.columns;
        let text = |name: &str| Expr::col(Alias::new(name)).cast_as("TEXT");
        let mut q = Query::select();
        q.expr(text(&c.id))
            .expr(text(&c.email))
            .expr(text(&c.name))
            .expr(text(&c.avatar))
            .expr(text(&c.tier))
            .expr(Expr::col(Alias::new(&c.paid)))
            .expr(Expr::col(Alias::new(&c.team)))
            .from(Alias::new(&self.table))
            .order_by_expr(self.key(), Order::Asc);
        for name in [&c.email, &c.name, &c.avatar, &c.tier] {
            q.order_by_expr(text(name), Order::Asc);
        }
        q
    }

    async fn read(&self, q: &SelectStatement) -> Result<Vec<SourceRow>, ImportError> {
        let rows = self.db.query_all(q).await.map_err(ImportError::Source)?;
        rows.iter().map(|r| self.decode(r)).collect()
    }

    fn decode(&self, r: &QueryResult) -> Result<SourceRow, ImportError> {
        let text = |i: usize| r.try_get_by_index::<Option<String>>(i);
        let flag = |i: usize, column: &String| {
            r.try_get_by_index::<Option<bool>>(i)
                .map_err(|_| ImportError::UnexpectedValue {
                    column: column.clone(),
                    expected: "a boolean",
                })
        };
        Ok(SourceRow {
            id: text(0).map_err(ImportError::Source)?,
            email: text(1).map_err(ImportError::Source)?,
            name: text(2).map_err(ImportError::Source)?,
            avatar: text(3).map_err(ImportError::Source)?,
            tier: text(4).map_err(ImportError::Source)?,
            paid: flag(5, &self.columns.paid)?,
            team: flag(6, &self.columns.team)?,
        })
    }
}
