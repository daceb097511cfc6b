use std::process::ExitCode;

use domain::infra::config::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    domain::infra::telemetry::init("info");
    match api::startup::Application::build(settings, None).await {
        Ok(app) => {
            tracing::info!(port = app.port(), "api listening");
            match app.run_until_stopped().await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "api stopped with an error");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "api failed to start");
            eprintln!("api failed to start: {e:#}");
            ExitCode::FAILURE
        }
    }
}
