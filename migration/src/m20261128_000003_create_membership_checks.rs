use sea_orm_migration::{prelude::*, schema::*};

/// The audit trail of membership checks: when, why, what changed, what failed.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("membership_checks")
                    .col(big_pk_auto("id"))
                    .col(big_integer("user_id"))
                    .col(timestamp_with_time_zone("checked_at"))
                    .col(string("trigger"))
                    .col(string("outcome"))
                    .col(boolean_null("old_active"))
                    .col(boolean_null("new_active"))
                    .col(string_null("old_patron_status"))
                    .col(string_null("new_patron_status"))
                    .col(string_null("access_reason"))
                    .col(string_null("error"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_membership_checks_user")
                            .from("membership_checks", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_membership_checks_user_checked_at")
                    .table("membership_checks")
                    .col("user_id")
                    .col("checked_at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("membership_checks").to_owned())
            .await
    }
}
