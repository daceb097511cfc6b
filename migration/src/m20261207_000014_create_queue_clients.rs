use sea_orm_migration::{prelude::*, schema::*};

/// Which job queue each running api and worker process uses, so that a deployment whose api
/// and worker do not share one (two queue files, a file per host) is detected, not silent.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("queue_clients")
                    .col(string("instance").primary_key())
                    .col(string("role"))
                    .col(string("queue_epoch"))
                    .col(string("queue_location"))
                    .col(timestamp_with_time_zone("seen_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("queue_clients").to_owned())
            .await
    }
}
