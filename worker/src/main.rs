//! The worker binary: runs queued jobs, and operator commands (`worker help` lists them).

use std::process::ExitCode;

use clap::Parser;
use domain::infra::config::Settings;
use worker::cli::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    // First, so `worker help` needs no configuration; a mistyped command exits with status 2.
    let command = Cli::parse().command.unwrap_or(Command::Run);
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    domain::infra::telemetry::init("info");
    match worker::commands::dispatch(settings, command).await {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`worker members export … | head`): not a failure of ours.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
