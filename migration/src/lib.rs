//! Schema migrations. Append-only; every migration has a working `down`.

pub use sea_orm_migration::prelude::*;
/// The table of applied migrations, for callers that check the schema without changing it.
pub use sea_orm_migration::seaql_migrations;

mod m20261128_000001_create_users;
mod m20261128_000002_create_sign_in_tables;
mod m20261128_000003_create_membership_checks;
mod m20261128_000004_create_job_requests;
mod m20261128_000005_add_job_request_attempts;
mod m20261128_000006_create_sweeps;
mod m20261128_000007_create_job_leases;
mod m20261128_000008_create_webhook_events;
mod m20261128_000009_add_user_admin_role;
mod m20261128_000010_add_user_import_columns;
mod m20261207_000011_add_user_delivery_order;
mod m20261207_000012_create_auth_changes;
mod m20261207_000013_create_patreon_budget;
mod m20261207_000014_create_queue_clients;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_create_users::Migration),
            Box::new(m20261128_000002_create_sign_in_tables::Migration),
            Box::new(m20261128_000003_create_membership_checks::Migration),
            Box::new(m20261128_000004_create_job_requests::Migration),
            Box::new(m20261128_000005_add_job_request_attempts::Migration),
            Box::new(m20261128_000006_create_sweeps::Migration),
            Box::new(m20261128_000007_create_job_leases::Migration),
            Box::new(m20261128_000008_create_webhook_events::Migration),
            Box::new(m20261128_000009_add_user_admin_role::Migration),
            Box::new(m20261128_000010_add_user_import_columns::Migration),
            Box::new(m20261207_000011_add_user_delivery_order::Migration),
            Box::new(m20261207_000012_create_auth_changes::Migration),
            Box::new(m20261207_000013_create_patreon_budget::Migration),
            Box::new(m20261207_000014_create_queue_clients::Migration),
        ]
    }
}
