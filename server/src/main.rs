//! The `sessiond` binary: load configuration, set up logging, open the
//! store, bind, serve until SIGINT or SIGTERM; or run one of its commands
//! (`sessiond token create`).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use sessiond::Sessiond;
use sessiond::config::{Args, Command, Config, TokenCommand};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let mut args = Args::parse();
    if let Some(command) = args.command.take() {
        return run_command(command);
    }
    let result = sessiond::server::runtime()
        .map_err(Into::into)
        .and_then(|runtime| runtime.block_on(run(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "sessiond stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::load(args)?;
    let listen = config.listen;
    let database = sessiond::store::redact_password(&config.database);
    // Bound first, so that an address in use is reported before anything
    // (a database file) is created.
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| format!("cannot listen on {listen}: {error}"))?;
    let server = Sessiond::open(config).await?;
    tracing::info!(address = %listener.local_addr()?, database = %database, "sessiond listening");
    server.serve(listener, shutdown_signal()).await?;
    Ok(())
}

/// Runs a command other than serving.
fn run_command(command: Command) -> ExitCode {
    match command {
        Command::Token(TokenCommand::Create {
            tokens,
            subject,
            groups,
        }) => match sessiond::auth::tokens::create(&tokens, &subject, &groups) {
            Ok(token) => {
                // The token itself is printed once, here, and kept nowhere.
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("sessiond token create: {error}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Completes at the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
