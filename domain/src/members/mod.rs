//! Members and the membership rule: who pays, what a check of one member found, the admin
//! listing, a member's data rights, and the import from the old app.

pub mod data_rights;
pub mod listing;
pub mod membership;
pub mod membership_checks;
pub mod profile_import;
pub mod users;
pub mod verification;
