//! The seed's user-context example, against a running sessiond:
//!
//! ```python
//! with utilities.UserContext('R41'):
//!     pojo = utilities.create_pojo('Project', attributes={})
//!     utilities.save_pojo(pojo)
//! ```
//!
//! The work inside the block acts as R41; leaving the block restores exactly
//! the user context from before. Here the block runs in a clientless session
//! opened for SYSTEM, and shows the acting user instead of saving a record.
//!
//! Run a server (`cargo run -p sessiond -- --database sqlite:///tmp/x.db`),
//! then `cargo run -p sessiond-client --example user_context`. The endpoint
//! comes from `SESSIOND_ENDPOINT` (default `http://127.0.0.1:50051`).

use sessiond_client::Client;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint =
        std::env::var("SESSIOND_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:50051".to_owned());
    let client = Client::connect(&endpoint).await?;
    let session = client.clientless_session("SYSTEM").await?;
    let id = session.id();
    println!(
        "session {id}: acting as {}",
        client.get_user_context(id).await?.user
    );

    // with utilities.UserContext('R41'):
    let as_r41 = session.user_context("R41").await?;
    let inside = client.get_user_context(id).await?;
    println!(
        "  inside the block: acting as {} (session user {}, {} scope open)",
        inside.user, inside.session_user, inside.depth
    );
    // ... records created here are owned by R41 ...
    let restored = as_r41.restore().await?;
    println!("after the block: acting as {} again", restored.user);

    session.close().await?;
    Ok(())
}
