use sea_orm_migration::{prelude::*, schema::*};

/// Stores the admin role, so operators can grant and revoke it (`worker admins grant|revoke`)
/// beyond the bootstrap list in `ADMIN_PATREON_IDS`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A NOT NULL column with a constant default is one of the few ALTERs SQLite allows.
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .add_column(boolean("is_admin").default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .drop_column("is_admin")
                    .to_owned(),
            )
            .await
    }
}
