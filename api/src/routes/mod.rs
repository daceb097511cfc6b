pub mod admin;
pub mod auth;
pub mod demo_page;
pub mod health;
pub mod housekeeping;
pub mod jobs;
pub mod session;
mod tags;

pub use tags::ApiTags;
