//! The worker binary: runs queued jobs, and operator commands (see `worker::commands::USAGE`).

use std::process::ExitCode;

use domain::config::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    domain::telemetry::init("info");
    let args: Vec<String> = std::env::args().skip(1).collect();
    match worker::commands::dispatch(settings, &args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
