//! The `passport` binary: CLI commands and the standalone authorization server.

use std::process::ExitCode;

use clap::Parser as _;
use passport_server::{cli, commands};
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
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)))
        .with_writer(std::io::stderr)
        .init();
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
