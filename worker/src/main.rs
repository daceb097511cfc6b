//! The worker binary: runs queued jobs, and operator commands (see `worker::commands::USAGE`).

use std::process::ExitCode;

use domain::infra::config::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    domain::infra::telemetry::init("info");
    let args: Vec<String> = std::env::args().skip(1).collect();
    match worker::commands::dispatch(settings, &args).await {
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
