//! The budget counted in this process: alone, or while the shared store does not answer.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

use super::Quota;

/// Local windows kept before idle ones are dropped (one per token seen recently).
const LOCAL_WINDOWS_SOFT_CAP: usize = 1024;

#[derive(Default)]
pub(super) struct LocalBudget {
    windows: Mutex<HashMap<String, VecDeque<Instant>>>,
    paused_until: Mutex<Option<Instant>>,
}

impl LocalBudget {
    /// Takes a slot if one is free (and no pause holds); else returns how long to wait.
    pub(super) fn try_take(&self, key: &str, quota: Quota) -> Duration {
        if let Some(wait) = self.paused_for() {
            return wait;
        }
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > LOCAL_WINDOWS_SOFT_CAP {
            windows.retain(|_, calls| {
                calls.back().is_some_and(|t| {
                    now.duration_since(*t) < quota.window.max(Duration::from_secs(60))
                })
            });
        }
        let calls = windows.entry(key.to_owned()).or_default();
        while calls
            .front()
            .is_some_and(|t| now.duration_since(*t) >= quota.window)
        {
            calls.pop_front();
        }
        if calls.len() < quota.limit as usize {
            calls.push_back(now);
            return Duration::ZERO;
        }
        calls
            .front()
            .map_or(Duration::ZERO, |oldest| {
                (*oldest + quota.window).saturating_duration_since(now)
            })
            .max(Duration::from_millis(1))
    }

    /// Holds this process's calls for `how_long` (or longer, if already held longer).
    pub(super) fn pause(&self, how_long: Duration) {
        let until = Instant::now() + how_long;
        let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }

    /// How long this process's pause still holds, if it does.
    pub(super) fn paused_for(&self) -> Option<Duration> {
        let paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        let left = (*paused)?.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }
}
