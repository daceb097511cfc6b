//! The `worker` command line, declared once: `worker help` and the errors for a mistyped command
//! come from these types (a test checks the README's command table against `worker help`).

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use crate::{
    admin_commands::AdminCommand, data_rights_commands::MembersCommand, import_command::ImportArgs,
    webhook_commands::WebhookCommand,
};

/// patreon-gate's worker: runs the queued jobs and scheduled sweeps, and the operator's commands.
///
/// Configured by the same environment variables as the api (DATABASE_URL, REDIS_URL, PATREON_*,
/// …). Members are named by their Patreon user id. A failing command prints why on stderr and
/// exits with status 1; a mistyped one exits with status 2.
#[derive(Debug, Parser)]
#[command(name = "worker", version)]
pub struct Cli {
    /// Without a command: `run`.
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The command `args` (the program's arguments without its name) ask for; `run` when none.
    pub fn command_from<I, T>(args: I) -> Result<Command, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let program = std::iter::once(OsString::from("worker"));
        let cli = Self::try_parse_from(program.chain(args.into_iter().map(Into::into)))?;
        Ok(cli.command.unwrap_or(Command::Run))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs queued jobs, scheduled sweeps and their reconciliation until SIGTERM or Ctrl-C (the
    /// default).
    ///
    /// Started before the api, it waits for the api to migrate the database; `/readyz` on
    /// WORKER_HTTP_PORT fails meanwhile.
    Run,
    // The commands on the database: they refuse to run on an outdated schema.
    #[command(flatten)]
    OneOff(OneOffCommand),
    /// Registers, lists or unpauses Patreon's webhook for this gate
    /// (needs PATREON_CREATOR_ACCESS_TOKEN).
    #[command(subcommand)]
    Webhook(WebhookCommand),
}

/// The one-off commands that read or change the database.
#[derive(Debug, Subcommand)]
pub enum OneOffCommand {
    /// Sweeps every member now, printing the outcome; exits 1 when some could not be verified.
    Sweep {
        /// Required: start the sweep now rather than at the next tick of VERIFY_SCHEDULE.
        #[arg(long, required = true)]
        now: bool,
    },
    /// Deletes expired sign-ins, and finished rechecks, sweeps, webhook deliveries and leases
    /// past their retention.
    Purge,
    /// Re-encrypts every member's tokens under the current TOKEN_ENCRYPTION_KEY (after a key
    /// rotation; old keys stay in TOKEN_ENCRYPTION_OLD_KEYS until it has run).
    RotateKeys,
    /// Checks one member with Patreon now, in this process, and prints their status.
    Verify {
        /// The member's Patreon user id.
        patreon_id: String,
    },
    /// Imports members from the old app's profile table into DATABASE_URL.
    ImportProfiles(ImportArgs),
    // `users`, `admins`, `dead-jobs`, `sessions`: the admin dashboard's work from a shell.
    #[command(flatten)]
    Admin(AdminCommand),
    /// Exports or erases what is stored about a member (a data request).
    #[command(subcommand)]
    Members(MembersCommand),
}
