//! `sessionctl`: the operators' command-line tool for sessiond, built on
//! `sessiond-client`.
//!
//! # Layout
//! - `args.rs`, `args/`: the command line (clap); `args/audit.rs`: the
//!   `audit` subcommands.
//! - `commands/`: what each subcommand does, one module per concern
//!   (`sessions`, `modules`, `user_context`, `access`, `events`), and
//!   `interrupt.rs`: Ctrl-C for the commands that clean up after it.
//! - `output.rs`: JSON lines or tables (`output/table.rs`: columns by
//!   display width; `output/events.rs`: events, watch lines, the ledger's
//!   verification and checkpoint).
#![forbid(unsafe_code)]

mod args;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;
use sessiond_client::{Client, ClientBuilder, TlsSettings};

use crate::args::Cli;
use crate::commands::{Failure, Outcome};

/// Exit status of a failed operation, of a `can-i` answered no and of an
/// `audit verify` that found the ledger broken.
const FAILED: u8 = 1;
/// Exit status when `run` or `value` got no value within `--timeout` (as
/// `timeout(1)` exits).
const TIMED_OUT: u8 = 124;
/// Exit status after Ctrl-C / SIGTERM (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = 130;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();

    let result = async {
        let client = client_settings(&cli)?.connect(&cli.endpoint).await?;
        commands::run(&client, cli.command, cli.output).await
    }
    .await;
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::No) => ExitCode::from(FAILED),
        Ok(Outcome::Interrupted) => ExitCode::from(INTERRUPTED),
        Ok(Outcome::TimedOut) => ExitCode::from(TIMED_OUT),
        Err(error) => {
            eprintln!("sessionctl: {}", one_line(&*error));
            ExitCode::from(FAILED)
        }
    }
}

/// The client's settings from the command line: deadline, token, and TLS
/// when any --tls-* file is given (an https:// endpoint alone uses the
/// platform's roots).
///
/// # Errors
/// When a TLS file cannot be read or is not PEM.
fn client_settings(cli: &Cli) -> Result<ClientBuilder, Failure> {
    let mut builder = Client::builder().timeout(cli.call_timeout);
    if let Some(token) = &cli.token {
        builder = builder.bearer_token(token);
    }
    if cli.tls_ca.is_some() || cli.tls_cert.is_some() || cli.tls_key.is_some() {
        builder = builder.tls(TlsSettings::from_pem_files(
            cli.tls_ca.as_deref(),
            cli.tls_cert.as_deref(),
            cli.tls_key.as_deref(),
        )?);
    }
    Ok(builder)
}

/// An error and its causes in one line, skipping causes the text already
/// says.
fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line.replace('\n', " ")
}
