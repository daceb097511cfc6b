//! The row a *verify membership* job reports into, and its transitions in the job's words.

use sea_orm::ConnectionTrait;

use super::{Transition, items, requests};
use crate::members::membership_checks::CheckOutcome;
use crate::members::verification::Verification;
use crate::work::jobs::Job;
use crate::{JobRequestId, SweepId, UserId};

/// Where a check reports its progress: the request someone waits on, or its sweep's item; a
/// check nobody tracks (an old job without either) reports nowhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkRef {
    Request(JobRequestId),
    SweepItem { sweep_id: SweepId, user_id: UserId },
    Untracked,
}

impl WorkRef {
    /// The row `job` reports into (`Untracked` for jobs that are not checks).
    pub fn of(job: &Job) -> Self {
        match job {
            Job::VerifyMembership {
                request_id: Some(id),
                ..
            } => Self::Request(id.clone()),
            Job::VerifyMembership {
                user_id,
                request_id: None,
                sweep_id: Some(sweep_id),
                ..
            } => Self::SweepItem {
                sweep_id: *sweep_id,
                user_id: *user_id,
            },
            Job::VerifyMembership { .. }
            | Job::RefreshToken { .. }
            | Job::Sweep { .. }
            | Job::ApplyWebhook { .. } => Self::Untracked,
        }
    }

    /// **start**: counts the attempt; `None` when there is nothing left to do (done already, or
    /// gone).
    pub async fn start(&self, db: &impl ConnectionTrait) -> crate::Result<Option<i32>> {
        match self {
            Self::Request(id) => requests::start(db, id).await,
            Self::SweepItem { sweep_id, user_id } => items::start(db, *sweep_id, *user_id).await,
            Self::Untracked => Ok(Some(1)),
        }
    }

    /// **retry_later**: a transient failure; the retry is pushed with backoff by the caller.
    pub async fn retry_later(
        &self,
        db: &impl ConnectionTrait,
        error: &str,
    ) -> crate::Result<Transition> {
        match self {
            Self::Request(id) => requests::retry_later(db, id, error).await,
            Self::SweepItem { sweep_id, user_id } => {
                items::retry_later(db, *sweep_id, *user_id, error).await
            }
            Self::Untracked => Ok(Transition::Unmoved),
        }
    }

    /// **defer**: Patreon rate limited the deployment; the attempt is given back, since nothing
    /// about the member failed, and the work waits for its deferred job.
    pub async fn defer(&self, db: &impl ConnectionTrait, error: &str) -> crate::Result<Transition> {
        match self {
            Self::Request(id) => requests::defer(db, id, error).await,
            Self::SweepItem { sweep_id, user_id } => {
                items::defer(db, *sweep_id, *user_id, error).await
            }
            Self::Untracked => Ok(Transition::Unmoved),
        }
    }

    /// **give_up** without a check: it crashed its worker too many times (a poison job).
    pub async fn give_up(
        &self,
        db: &impl ConnectionTrait,
        error: &str,
    ) -> crate::Result<Transition> {
        match self {
            Self::Request(id) => requests::give_up(db, id, error).await,
            Self::SweepItem { sweep_id, user_id } => {
                items::finish(db, *sweep_id, *user_id, CheckOutcome::Failed, Some(error)).await
            }
            Self::Untracked => Ok(Transition::Unmoved),
        }
    }

    /// **succeed** or **give_up** with how the check ended.
    pub async fn finish(
        &self,
        db: &impl ConnectionTrait,
        outcome: &Result<Verification, crate::Error>,
    ) -> crate::Result<Transition> {
        let error = match outcome {
            Ok(_) => None,
            Err(crate::Error::Patreon(e)) => Some(e.kind()),
            Err(crate::Error::UnknownUser) => Some("unknown_user"),
            Err(_) => Some("internal"),
        };
        match self {
            Self::Request(id) => match (outcome, error) {
                (Ok(v), _) => requests::succeed(db, id, request_result(v)).await,
                (Err(_), error) => requests::give_up(db, id, error.unwrap_or("internal")).await,
            },
            Self::SweepItem { sweep_id, user_id } => {
                let check = match outcome {
                    Ok(Verification::Verified { changed: true, .. }) => CheckOutcome::Changed,
                    Ok(Verification::Verified { changed: false, .. }) => CheckOutcome::Verified,
                    Ok(Verification::NeedsRelogin) => CheckOutcome::Skipped,
                    Err(_) => CheckOutcome::Failed,
                };
                items::finish(db, *sweep_id, *user_id, check, error).await
            }
            Self::Untracked => Ok(Transition::Unmoved),
        }
    }
}

/// What a finished recheck reports to whoever waits for it.
fn request_result(v: &Verification) -> &'static str {
    match v {
        Verification::Verified { granted: true, .. } => "paying_member",
        Verification::Verified { granted: false, .. } => "not_a_paying_member",
        Verification::NeedsRelogin => "needs_relogin",
    }
}
