use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("users")
                    .col(big_pk_auto("id"))
                    .col(string_uniq("patreon_id"))
                    .col(string_null("email"))
                    .col(string_null("full_name"))
                    .col(text_null("avatar_url"))
                    .col(string_null("patreon_member_id"))
                    .col(string_null("patron_status"))
                    .col(string_null("last_charge_status"))
                    .col(timestamp_with_time_zone_null("last_charge_date"))
                    .col(big_integer("entitled_amount_cents").default(0))
                    .col(string_null("tier_title"))
                    .col(boolean("membership_active").default(false))
                    .col(timestamp_with_time_zone_null("last_checked"))
                    .col(text_null("access_token"))
                    .col(text_null("refresh_token"))
                    .col(timestamp_with_time_zone_null("token_expires_at"))
                    .col(big_integer("token_version").default(0))
                    .col(timestamp_with_time_zone_null("token_refresh_lease_until"))
                    .col(boolean("needs_relogin").default(false))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        // Emails move between Patreon accounts, so this index is deliberately not unique.
        manager
            .create_index(
                Index::create()
                    .name("idx_users_email")
                    .table("users")
                    .col("email")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_users_patreon_member_id")
                    .table("users")
                    .col("patreon_member_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("users").to_owned())
            .await
    }
}
