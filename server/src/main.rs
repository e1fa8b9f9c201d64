//! The `sessiond` binary: load configuration, set up logging, open the
//! store, bind, serve until SIGINT or SIGTERM; or run one of its commands
//! (`sessiond token create`).

use std::process::ExitCode;

use clap::Parser;
use sessiond::Sessiond;
use sessiond::config::{Args, Command, Config, TokenCommand};

fn main() -> ExitCode {
    let mut args = Args::parse();
    if let Some(command) = args.command.take() {
        return run_command(command);
    }
    let config = match Config::load(args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("sessiond: {error}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match sessiond::server::runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sessiond: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let _telemetry = match sessiond::telemetry::init(&config) {
            Ok(telemetry) => telemetry,
            Err(error) => {
                eprintln!("sessiond: {error}");
                return ExitCode::FAILURE;
            }
        };
        match run(config).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(error = %error, "sessiond stopped");
                ExitCode::FAILURE
            }
        }
    })
}

async fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let listen = config.listen;
    let database = sessiond::store::redact_password(&config.database);
    // Bound first, so that an address in use is reported before anything
    // (a database file) is created.
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| format!("cannot listen on {listen}: {error}"))?;
    let admin = match config.admin_listen {
        Some(address) => match tokio::net::TcpListener::bind(address).await {
            Ok(listener) => Some(listener),
            Err(error) if !config.admin_listen_required => {
                tracing::warn!(address = %address, error = %error, "admin endpoints (/metrics, /healthz, /readyz) off: cannot listen on their default address; set --admin-listen");
                None
            }
            Err(error) => {
                return Err(format!("--admin-listen: cannot listen on {address}: {error}").into());
            }
        },
        None => None,
    };
    let mut builder = Sessiond::builder(config);
    if let Some(admin) = admin {
        tracing::info!(address = %admin.local_addr()?, "admin endpoints (/metrics, /healthz, /readyz) listening");
        builder = builder.admin(admin);
    }
    let server = builder.open().await?;
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
