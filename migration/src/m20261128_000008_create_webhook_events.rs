use sea_orm_migration::{prelude::*, schema::*};

/// Patreon webhook deliveries, recorded before they are acknowledged: the durable queue of
/// membership changes to apply. One row per distinct body (its SHA-256), so a delivery
/// repeated any number of times has one effect.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("webhook_events")
                    .col(big_pk_auto("id"))
                    .col(string_uniq("body_sha256"))
                    .col(string("trigger"))
                    .col(string_null("member_id"))
                    .col(string_null("patreon_user_id"))
                    .col(string_null("campaign_id"))
                    .col(text("body"))
                    .col(string("status"))
                    .col(string_null("outcome"))
                    .col(timestamp_with_time_zone("received_at"))
                    .col(timestamp_with_time_zone_null("processed_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_events_status_received")
                    .table("webhook_events")
                    .col("status")
                    .col("received_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_events_patreon_user")
                    .table("webhook_events")
                    .col("patreon_user_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("webhook_events").to_owned())
            .await
    }
}
