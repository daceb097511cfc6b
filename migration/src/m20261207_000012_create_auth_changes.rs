use sea_orm_migration::{prelude::*, schema::*};

/// Changes to sessions and users, logged for api processes on SQLite, which has no `NOTIFY`:
/// each polls the rows after the last it read and drops those entries from its cache. Written
/// in the same transaction as the change; only the latest few thousand rows are kept.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("auth_changes")
                    .col(big_pk_auto("id"))
                    .col(string("payload"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("auth_changes").to_owned())
            .await
    }
}
