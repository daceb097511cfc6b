pub mod admin;
pub mod admin_data_rights;
pub mod admin_members;
pub mod admin_page;
pub mod admin_sweeps;
pub mod auth;
pub mod demo_page;
pub mod health;
pub mod housekeeping;
pub mod jobs;
pub mod refresh;
pub mod session;
mod tags;
pub mod webhook;

pub use tags::ApiTags;
