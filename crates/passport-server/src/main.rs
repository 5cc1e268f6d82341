//! The `passport` binary: CLI commands and the standalone authorization server.

use std::process::ExitCode;

use clap::Parser as _;
use passport_server::{app, cli, commands};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err)
            if !err.use_stderr() || err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            err.exit()
        }
        Err(err) => {
            // Usage errors too are one line on stderr (README: For operators): clap's message is its first
            // paragraph (e.g. the missing arguments are listed on the lines after the first);
            // the usage block and tips that follow it are dropped.
            let rendered = err.to_string();
            let message: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .skip_while(|l| l.is_empty())
                .take_while(|l| !l.is_empty())
                .collect();
            let line = if message.is_empty() {
                "error: invalid arguments".to_owned()
            } else {
                message.join(" ")
            };
            eprintln!("{line} (see --help)");
            return ExitCode::from(2);
        }
    };
    let serving = matches!(cli.command, cli::Command::Serve(_));
    let default_filter = if serving { "info,sqlx=warn" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log_format(&cli) {
        Ok(LogFormat::Text) => subscriber.init(),
        Ok(LogFormat::Json) => subscriber.json().flatten_event(true).with_current_span(true).init(),
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    }
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the error and its causes.
            let mut line = err.to_string();
            for cause in err.chain().skip(1) {
                let cause = cause.to_string();
                if !line.contains(&cause) {
                    line.push_str(": ");
                    line.push_str(&cause);
                }
            }
            eprintln!("error: {}", line.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

enum LogFormat {
    Text,
    Json,
}

/// `log_format` of `passport.toml` or `PASSPORT_LOG_FORMAT`: `text` (default) or `json`.
fn log_format(cli: &cli::Cli) -> Result<LogFormat, String> {
    let configured = match std::env::var("PASSPORT_LOG_FORMAT") {
        Ok(value) => Some(value),
        // The configuration file is read again by the command; a broken one is reported there.
        Err(_) => app::Context::from_cli(cli).ok().and_then(|c| c.config.log_format),
    };
    match configured.as_deref().map(str::trim) {
        None | Some("text" | "") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(format!("log_format: expected \"text\" or \"json\", got {other:?}")),
    }
}
