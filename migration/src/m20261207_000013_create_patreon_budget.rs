use sea_orm_migration::{prelude::*, schema::*};

/// Patreon's rate budget kept in the database, for deployments without Redis: every call taken
/// (per budget key, by the database's clock in ms) and the pause a 429 asks for, so the api and
/// every worker process share one budget.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("patreon_budget_calls")
                    .col(big_pk_auto("id"))
                    .col(string("budget_key"))
                    .col(big_integer("at_ms"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_patreon_budget_calls_key_at")
                    .table("patreon_budget_calls")
                    .col("budget_key")
                    .col("at_ms")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("patreon_budget_pauses")
                    .col(string("budget_key").primary_key())
                    .col(big_integer("until_ms"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("patreon_budget_pauses").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("patreon_budget_calls").to_owned())
            .await
    }
}
