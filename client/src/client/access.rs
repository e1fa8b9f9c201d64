//! `AccessService` calls: who the caller is, and what it may do.

use sessiond_proto::v1 as pb;

use super::{Call, Client};
use crate::access::{Access, AccessDecision, WhoAmI};
use crate::error::{ErrorContext, Result};
use crate::retry::CallKind;

impl Client {
    /// Who the server takes this client to be: the subject its credential
    /// (bearer token, client certificate) proves, its groups and the method.
    /// A server without authentication answers `"anonymous"` with
    /// [`AuthenticationMethod::None`](crate::AuthenticationMethod::None).
    ///
    /// # Errors
    /// [`Error::Unauthenticated`](crate::Error::Unauthenticated) when the
    /// server requires a credential and this client sent none or one it
    /// does not accept; [`Error::Status`](crate::Error::Status)
    /// `UNIMPLEMENTED` from a server older than `AccessService`.
    pub async fn who_am_i(&self) -> Result<WhoAmI> {
        let call = Call::new("WhoAmI", CallKind::Read, ErrorContext::default());
        let response = self
            .unary(call, pb::WhoAmIRequest {}, |r| {
                let mut c = self.access();
                async move { c.who_am_i(r).await }
            })
            .await?;
        WhoAmI::try_from(response)
    }

    /// Whether the server's policy lets this client take `access`'s action,
    /// without taking it. A refusal is not an error:
    /// [`AccessDecision::allowed`] is false and
    /// [`AccessDecision::reason`] says why.
    ///
    /// ```no_run
    /// # async fn run(client: sessiond_client::Client) -> sessiond_client::Result<()> {
    /// use sessiond_client::{Access, Permission, SessionId};
    ///
    /// let decision = client
    ///     .check_access(&Access::new(Permission::ActAs).session(SessionId::new(42)).user("R50"))
    ///     .await?;
    /// if !decision.allowed {
    ///     println!("no: {}", decision.reason);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) when the
    /// action lacks a target its permission needs (see [`Access`]);
    /// [`Error::Unauthenticated`](crate::Error::Unauthenticated) as for
    /// [`Client::who_am_i`].
    pub async fn check_access(&self, access: &Access) -> Result<AccessDecision> {
        let call = Call::new(
            "CheckAccess",
            CallKind::Read,
            ErrorContext {
                session_id: access.session_id,
                user: access.user.as_deref(),
                module_id: access.module_id.as_deref(),
                ..ErrorContext::default()
            },
        );
        let response = self
            .unary(call, access.to_request(), |r| {
                let mut c = self.access();
                async move { c.check_access(r).await }
            })
            .await?;
        Ok(AccessDecision::from(response))
    }
}
