use sea_orm_migration::{prelude::*, schema::*};

/// Marks users imported from the old app's profiles (`worker import-profiles`): when they were
/// first imported, which bounds the access an unverified import can give, and the old app's team
/// flag, kept for admins to see. SQLite alters one column per statement, hence two statements.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .add_column(timestamp_with_time_zone_null("imported_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .add_column(boolean("imported_team").default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["imported_team", "imported_at"] {
            manager
                .alter_table(Table::alter().table("users").drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
