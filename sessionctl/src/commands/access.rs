//! Who the caller is and what they may do: `whoami` and `can-i`.

use sessiond_client::{Access, Client, Permission, SessionId};

use super::{Failure, Outcome, unimplemented_by};
use crate::args::OutputFormat;
use crate::output;

/// `AccessService`, which servers older than this sessionctl lack.
const ACCESS_SERVICE: &str = "sessiond.v1.AccessService";

/// `whoami`: prints who the server takes the caller to be.
pub async fn whoami(client: &Client, format: OutputFormat) -> Result<Outcome, Failure> {
    let me = client
        .who_am_i()
        .await
        .map_err(|e| unimplemented_by(e, ACCESS_SERVICE))?;
    output::one(format, &output::who_am_i(format, &me))?;
    Ok(Outcome::Done)
}

/// `can-i`: prints the server's decision; [`Outcome::No`] when it is no.
pub async fn can_i(
    client: &Client,
    permission: Permission,
    session: Option<SessionId>,
    user: Option<String>,
    module: Option<String>,
    format: OutputFormat,
) -> Result<Outcome, Failure> {
    let mut access = Access::new(permission);
    access.session_id = session;
    access.user = user;
    access.module_id = module;
    let decision = client
        .check_access(&access)
        .await
        .map_err(|e| unimplemented_by(e, ACCESS_SERVICE))?;
    output::decision(format, &decision)?;
    Ok(if decision.allowed {
        Outcome::Done
    } else {
        Outcome::No
    })
}
