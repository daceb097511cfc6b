use sea_orm::entity::prelude::*;

/// A piece of work one process holds until `expires_at` (or until it lets go).
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job_leases")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// Random per acquisition, so a late release cannot drop someone else's lease.
    pub holder: String,
    pub expires_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
