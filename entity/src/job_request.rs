use sea_orm::entity::prelude::*;

use crate::ids::{JobRequestId, UserId};
use crate::states::{CheckTrigger, RequestKind, RequestStatus};

/// A job someone waits for, and how it went.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job_requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: JobRequestId,
    pub kind: RequestKind,
    pub user_id: UserId,
    /// The user who asked (the member themself or an admin).
    pub requested_by: Option<UserId>,
    pub trigger: CheckTrigger,
    pub status: RequestStatus,
    /// What the job found, e.g. `paying_member` or `not_a_paying_member`.
    pub result: Option<String>,
    /// The error of the last attempt (kept while a retry is queued).
    pub error: Option<String>,
    /// Attempts started so far.
    pub attempts: i32,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<super::user::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
