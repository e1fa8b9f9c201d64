//! The seed's clientless-session example, against a running sessiond:
//!
//! ```python
//! with utilities.ClientlessSession('R41') as session:
//!     session.open_module(module_id='100000')
//!     data = session.get_return_value(module_id='100000', timeout=5)
//! ```
//!
//! Run a server (`cargo run -p sessiond -- --database sqlite:///tmp/x.db`),
//! then `cargo run -p sessiond-client --example clientless`. The endpoint
//! comes from `SESSIOND_ENDPOINT` (default `http://127.0.0.1:50051`).

use std::time::Duration;

use sessiond_client::Client;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint =
        std::env::var("SESSIOND_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:50051".to_owned());
    let client = Client::connect(&endpoint).await?;

    // with utilities.ClientlessSession('R41') as session:
    let session = client.clientless_session("R41").await?;
    println!(
        "opened clientless session {} for {}",
        session.id(),
        session.user()
    );
    let data = async {
        session.open_module("100000").await?;
        session
            .get_return_value("100000", Duration::from_secs(5))
            .await
    }
    .await;
    // Leaving the `with` block: close, waiting for running modules to
    // conclude — also when the block failed.
    let ended = session.close().await?;
    println!(
        "session {} ended ({})",
        ended.session_id,
        ended.end_reason.map_or("-", |reason| reason.name())
    );

    println!("module 100000 returned {}", data?);
    Ok(())
}
