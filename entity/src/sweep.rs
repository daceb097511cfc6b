use sea_orm::entity::prelude::*;

use crate::ids::SweepId;
use crate::states::SweepTrigger;

/// One pass re-verifying every member.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sweeps")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: SweepId,
    /// The schedule tick it serves (RFC 3339), or `manual-…`.
    #[sea_orm(unique)]
    pub tick: String,
    pub trigger: SweepTrigger,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    /// Members owed a check when the sweep began.
    pub total: i64,
    #[sea_orm(has_many)]
    pub items: HasMany<super::sweep_item::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
