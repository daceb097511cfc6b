use sea_orm_migration::{prelude::*, schema::*};

/// Sweeps (every member re-verified) and the per-member work each one owes. The database is the
/// record of what is owed: a lost queue only delays a sweep, the reconciler pushes again.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("sweeps")
                    .col(big_pk_auto("id"))
                    // The schedule tick it serves, or `manual-…`: unique, so one sweep per tick.
                    .col(string_uniq("tick"))
                    .col(string("trigger"))
                    .col(timestamp_with_time_zone("started_at"))
                    .col(timestamp_with_time_zone_null("finished_at"))
                    .col(big_integer("total").default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("sweep_items")
                    .col(big_integer("sweep_id"))
                    .col(big_integer("user_id"))
                    // `pending`, `queued` or `done`.
                    .col(string("status"))
                    .col(string_null("outcome"))
                    .col(string_null("error"))
                    .col(integer("attempts").default(0))
                    .col(timestamp_with_time_zone_null("pushed_at"))
                    .col(timestamp_with_time_zone_null("finished_at"))
                    .primary_key(Index::create().col("sweep_id").col("user_id"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sweep_items_sweep")
                            .from("sweep_items", "sweep_id")
                            .to("sweeps", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sweep_items_user")
                            .from("sweep_items", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sweep_items_status")
                    .table("sweep_items")
                    .col("sweep_id")
                    .col("status")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["sweep_items", "sweeps"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
