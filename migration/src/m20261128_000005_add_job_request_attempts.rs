use sea_orm_migration::{prelude::*, schema::*};

/// Counts attempts, so transient failures are retried a bounded number of times.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("job_requests")
                    .add_column(integer("attempts").default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("job_requests")
                    .drop_column("attempts")
                    .to_owned(),
            )
            .await
    }
}
