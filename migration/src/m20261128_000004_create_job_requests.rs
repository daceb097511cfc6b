use sea_orm_migration::{prelude::*, schema::*};

/// Jobs someone waits for (a member's "recheck my status", an admin's "recheck now"): written
/// before the push, so the database knows every accepted request even if the queue loses it.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("job_requests")
                    .col(string("id").primary_key())
                    .col(string("kind"))
                    .col(big_integer("user_id"))
                    .col(big_integer_null("requested_by"))
                    .col(string("trigger"))
                    .col(string("status"))
                    .col(string_null("result"))
                    .col(string_null("error"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("started_at"))
                    .col(timestamp_with_time_zone_null("finished_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_job_requests_user")
                            .from("job_requests", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_job_requests_user_created_at")
                    .table("job_requests")
                    .col("user_id")
                    .col("created_at")
                    .to_owned(),
            )
            .await?;
        // At most one open request per member and kind, whatever races the api has. Partial
        // unique indexes read the same on PostgreSQL and SQLite.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX idx_job_requests_one_open ON job_requests (user_id, kind) \
                 WHERE status IN ('queued', 'running')",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("job_requests").to_owned())
            .await
    }
}
