use sea_orm_migration::{prelude::*, schema::*};

/// Short leases on work keyed by name (e.g. `verify:42`): the guard that keeps one member's check
/// from running twice at once, whatever the queue delivers twice (docs/job-queue.md §3.4, §3.5).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("job_leases")
                    .col(string("key").primary_key())
                    .col(string("holder"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("job_leases").to_owned())
            .await
    }
}
