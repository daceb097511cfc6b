use sea_orm::entity::prelude::*;

use crate::ids::{SweepId, UserId};
use crate::states::{CheckOutcome, ItemStatus};

/// One member's check within a sweep.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sweep_items")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub sweep_id: SweepId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: UserId,
    pub status: ItemStatus,
    /// Set once done.
    pub outcome: Option<CheckOutcome>,
    pub error: Option<String>,
    pub attempts: i32,
    pub pushed_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    #[sea_orm(belongs_to, from = "sweep_id", to = "id", on_delete = "Cascade")]
    pub sweep: BelongsTo<super::sweep::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
