//! Access: who the server takes the caller to be, the actions its policy
//! grants or refuses, and the question "may I?" asked without acting.

use sessiond_proto::v1 as pb;

use crate::contract_enum::contract_enum;
use crate::error::{Error, Result};
use crate::ids::SessionId;

contract_enum! {
    /// How a caller proved who it is (the contract's
    /// `AuthenticationMethod`).
    pub enum AuthenticationMethod {
        /// The server runs without authentication; the caller is
        /// "anonymous" and may do everything.
        None = 1, "none", "AUTHENTICATION_METHOD_NONE";
        /// A TLS client certificate verified against the server's client CA
        /// (mTLS).
        TlsClientCertificate = 2, "tls_client_certificate", "AUTHENTICATION_METHOD_TLS_CLIENT_CERTIFICATE";
        /// A bearer JWT from the server's configured issuer.
        Jwt = 3, "jwt", "AUTHENTICATION_METHOD_JWT";
        /// A bearer token from the server's tokens file.
        StaticToken = 4, "static_token", "AUTHENTICATION_METHOD_STATIC_TOKEN";
        /// The credential a module run receives in `SESSIOND_TOKEN`: it acts
        /// for the caller that opened the module, on the run's own session
        /// only, until the run concludes.
        ModuleRun = 5, "module_run", "AUTHENTICATION_METHOD_MODULE_RUN";
    }
}

contract_enum! {
    /// An action the server's policy grants or refuses (the contract's
    /// `Permission`). Its [`name`](Permission::name) is how the
    /// `"permission"` of an [`Error::PermissionDenied`] spells it: `act_as`
    /// for `PERMISSION_ACT_AS`.
    pub enum Permission {
        /// Read a session: its user, record, user context and module values;
        /// list it. Applies to a session.
        ReadSession = 1, "read_session", "PERMISSION_READ_SESSION";
        /// Start an interactive session for a user.
        StartSession = 2, "start_session", "PERMISSION_START_SESSION";
        /// Open a clientless session for a user.
        OpenClientlessSession = 3, "open_clientless_session", "PERMISSION_OPEN_CLIENTLESS_SESSION";
        /// Record activity on a session (`TouchSession`).
        TouchSession = 4, "touch_session", "PERMISSION_TOUCH_SESSION";
        /// End or close a session.
        EndSession = 5, "end_session", "PERMISSION_END_SESSION";
        /// Act as a user in a session: set or push it as the session's user
        /// context, or pop the scope that acts as it.
        ActAs = 6, "act_as", "PERMISSION_ACT_AS";
        /// Run a module in a session, acting as the session's current user
        /// context.
        RunModule = 7, "run_module", "PERMISSION_RUN_MODULE";
        /// Read the audit trail.
        ReadAudit = 8, "read_audit", "PERMISSION_READ_AUDIT";
    }
}

/// Who the server takes the caller to be (the contract's
/// `WhoAmIResponse`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WhoAmI {
    /// The authenticated subject; `"anonymous"` when the server runs
    /// without authentication.
    pub subject: String,
    /// The caller's groups, as its credential states them.
    pub groups: Vec<String>,
    /// How the caller authenticated.
    pub method: AuthenticationMethod,
    /// For a module run's credential
    /// ([`AuthenticationMethod::ModuleRun`]): the one session it may act
    /// on; `None` otherwise.
    pub session_id: Option<SessionId>,
}

impl TryFrom<pb::WhoAmIResponse> for WhoAmI {
    type Error = Error;

    fn try_from(response: pb::WhoAmIResponse) -> Result<Self> {
        Ok(Self {
            subject: response.subject,
            groups: response.groups,
            method: AuthenticationMethod::from_wire(response.method)
                .ok_or_else(|| Error::invalid_response("method is unspecified"))?,
            session_id: (response.session_id != 0).then(|| SessionId::new(response.session_id)),
        })
    }
}

/// An action to ask about with
/// [`Client::check_access`](crate::Client::check_access): a permission and
/// what it applies to (the contract's `CheckAccessRequest`).
///
/// Which targets matter depends on the permission: a session for
/// `read_session`, `touch_session`, `end_session`, `act_as` and
/// `run_module`; a user for `start_session`, `open_clientless_session` and
/// `act_as`; a module for `run_module`. The server refuses a question that
/// lacks one with [`Error::InvalidArgument`].
///
/// ```
/// use sessiond_client::{Access, Permission, SessionId};
///
/// // May I act as R50 in session 42?
/// let act_as = Access::new(Permission::ActAs)
///     .session(SessionId::new(42))
///     .user("R50");
/// assert_eq!(act_as.user.as_deref(), Some("R50"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Access {
    /// The action.
    pub permission: Permission,
    /// The session it applies to, where it applies to one.
    pub session_id: Option<SessionId>,
    /// The user it is taken for or acts as, where it names one.
    pub user: Option<String>,
    /// The module to run, for [`Permission::RunModule`].
    pub module_id: Option<String>,
}

impl Access {
    /// The action `permission`, on nothing in particular yet.
    #[must_use]
    pub fn new(permission: Permission) -> Self {
        Self {
            permission,
            session_id: None,
            user: None,
            module_id: None,
        }
    }

    /// On session `session_id`.
    #[must_use]
    pub fn session(mut self, session_id: SessionId) -> Self {
        self.session_id = Some(session_id);
        self
    }

    /// For, or acting as, `user`.
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Running module `module_id`.
    #[must_use]
    pub fn module(mut self, module_id: impl Into<String>) -> Self {
        self.module_id = Some(module_id.into());
        self
    }

    /// The request asking about this action.
    pub(crate) fn to_request(&self) -> pb::CheckAccessRequest {
        pb::CheckAccessRequest {
            permission: self.permission.wire(),
            session_id: self.session_id.map_or(0, SessionId::get),
            user: self.user.clone().unwrap_or_default(),
            module_id: self.module_id.clone().unwrap_or_default(),
        }
    }
}

/// The server's answer to [`Client::check_access`](crate::Client::check_access)
/// (the contract's `CheckAccessResponse`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessDecision {
    /// Whether the caller may take the action.
    pub allowed: bool,
    /// Why not, when it may not: the message a refused call would carry.
    /// Empty when allowed.
    pub reason: String,
}

impl From<pb::CheckAccessResponse> for AccessDecision {
    fn from(response: pb::CheckAccessResponse) -> Self {
        Self {
            allowed: response.allowed,
            reason: response.reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_enums_mirror_the_contract() {
        for &permission in Permission::ALL {
            let contract = pb::Permission::try_from(permission.wire()).unwrap();
            assert_eq!(contract.as_str_name(), permission.contract_name());
            assert_eq!(
                Some(permission.name()),
                permission
                    .contract_name()
                    .strip_prefix("PERMISSION_")
                    .map(str::to_lowercase)
                    .as_deref(),
                "the metadata's spelling: the name without the prefix, in lower case"
            );
        }
        assert_eq!(
            Permission::ALL.len(),
            (1..=i32::from(u8::MAX))
                .filter(|n| pb::Permission::try_from(*n).is_ok())
                .count(),
            "every permission of the contract"
        );
        for &method in AuthenticationMethod::ALL {
            let contract = pb::AuthenticationMethod::try_from(method.wire()).unwrap();
            assert_eq!(contract.as_str_name(), method.contract_name());
        }
        assert_eq!(
            AuthenticationMethod::ALL.len(),
            (1..=i32::from(u8::MAX))
                .filter(|n| pb::AuthenticationMethod::try_from(*n).is_ok())
                .count(),
            "every authentication method of the contract"
        );
    }

    #[test]
    fn permissions_parse_as_the_metadata_and_the_contract_spell_them() {
        assert_eq!("act_as".parse(), Ok(Permission::ActAs));
        assert_eq!("PERMISSION_RUN_MODULE".parse(), Ok(Permission::RunModule));
        assert_eq!(Permission::ReadSession.to_string(), "read_session");
        let error = "fly".parse::<Permission>().unwrap_err();
        assert!(
            error.to_string().contains("read_session, start_session"),
            "{error}"
        );
        assert_eq!(Permission::from_wire(0), None);
        assert_eq!(Permission::from_wire(99), Some(Permission::Unknown(99)));
    }

    #[test]
    fn who_am_i_reads_the_response() {
        let run = WhoAmI::try_from(pb::WhoAmIResponse {
            subject: "alice".into(),
            groups: vec!["ops".into()],
            method: pb::AuthenticationMethod::ModuleRun.into(),
            session_id: 42,
        })
        .unwrap();
        assert_eq!(run.method, AuthenticationMethod::ModuleRun);
        assert_eq!(run.session_id, Some(SessionId::new(42)));
        let anonymous = WhoAmI::try_from(pb::WhoAmIResponse {
            subject: "anonymous".into(),
            method: pb::AuthenticationMethod::None.into(),
            ..pb::WhoAmIResponse::default()
        })
        .unwrap();
        assert_eq!(anonymous.session_id, None);
        assert!(anonymous.groups.is_empty());
        assert!(matches!(
            WhoAmI::try_from(pb::WhoAmIResponse::default()),
            Err(Error::InvalidResponse(_))
        ));
    }

    #[test]
    fn an_access_question_leaves_what_it_does_not_name_unset() {
        let request = Access::new(Permission::RunModule)
            .session(SessionId::new(7))
            .module("100000")
            .to_request();
        assert_eq!(
            request,
            pb::CheckAccessRequest {
                permission: pb::Permission::RunModule.into(),
                session_id: 7,
                user: String::new(),
                module_id: "100000".into(),
            }
        );
        let request = Access::new(Permission::ReadAudit).to_request();
        assert_eq!(request.session_id, 0);
        assert!(request.user.is_empty() && request.module_id.is_empty());
    }
}
