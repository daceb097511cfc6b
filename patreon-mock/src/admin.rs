//! `/__mock/*`: JSON admin routes for the binary, the demo and benchmarks.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Json, Path};
use poem::{Response, handler};
use serde_json::json;

use crate::errors::json_response;
use crate::faults::{Faults, set_faults};
use crate::model::MockUser;
use crate::state::Shared;

fn no_content() -> Response {
    Response::builder().status(StatusCode::NO_CONTENT).finish()
}

fn unknown_user(id: &str) -> Response {
    json_response(404, &json!({ "error": "unknown user", "id": id }))
}

#[handler]
pub(crate) fn list_users(Data(shared): Data<&Arc<Shared>>) -> Response {
    let users: Vec<MockUser> = shared.lock().users.values().cloned().collect();
    json_response(200, &json!(users))
}

/// Create or replace a user; the path id wins over the body's.
#[handler]
pub(crate) fn put_user(
    Path(id): Path<String>,
    Json(mut user): Json<MockUser>,
    Data(shared): Data<&Arc<Shared>>,
) -> Response {
    user.id = id;
    let body = json!(user);
    shared.upsert_users([user]);
    json_response(200, &body)
}

#[handler]
pub(crate) fn delete_user(Path(id): Path<String>, Data(shared): Data<&Arc<Shared>>) -> Response {
    if shared.remove_user(&id) {
        no_content()
    } else {
        unknown_user(&id)
    }
}

#[handler]
pub(crate) fn get_faults(Data(shared): Data<&Arc<Shared>>) -> Response {
    let faults = shared.lock().faults.clone();
    json_response(200, &json!(faults))
}

#[handler]
pub(crate) fn put_faults(Json(faults): Json<Faults>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let body = json!(faults);
    set_faults(shared, faults);
    json_response(200, &body)
}

#[handler]
pub(crate) fn stats(Data(shared): Data<&Arc<Shared>>) -> Response {
    let stats = shared.lock().stats.clone();
    json_response(200, &json!(stats))
}

#[handler]
pub(crate) fn reset_stats(Data(shared): Data<&Arc<Shared>>) -> Response {
    shared.lock().stats = Default::default();
    no_content()
}

#[handler]
pub(crate) fn expire_tokens(Path(id): Path<String>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let mut inner = shared.lock();
    if !inner.users.contains_key(&id) {
        return unknown_user(&id);
    }
    inner.expire_access_tokens(&id);
    no_content()
}

#[handler]
pub(crate) fn revoke(Path(id): Path<String>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let mut inner = shared.lock();
    if !inner.users.contains_key(&id) {
        return unknown_user(&id);
    }
    inner.revoke_app(&id);
    no_content()
}
