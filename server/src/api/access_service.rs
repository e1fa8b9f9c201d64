//! `sessiond.v1.AccessService`: who the caller is, and whether it may take
//! an action — decided by the same checks the operations make
//! ([`crate::access`]).

use sessiond_proto::v1 as pb;
use sessiond_proto::v1::access_service_server::AccessService;
use tonic::{Request, Response, Status};

use crate::access::{self, Action, OnSession};
use crate::model::Validate;
use crate::model::{Error, FieldViolation, ModuleId, Result, SessionId, SessionKind, UserId};
use crate::principal::{self, Principal};
use crate::sessions::Sessions;
use crate::user_context::UserContexts;

/// The `AccessService` implementation.
#[derive(Clone, Debug)]
pub struct AccessApi {
    /// Sessions' facts and the access rules.
    sessions: Sessions,
    /// User contexts (whom a module would run as).
    contexts: UserContexts,
}

impl AccessApi {
    /// Answers from `sessions` and `contexts`.
    #[must_use]
    pub fn new(sessions: Sessions, contexts: UserContexts) -> Self {
        Self { sessions, contexts }
    }

    /// Whether `caller` may take `permission` on what the request names:
    /// `Ok(Ok(()))`, `Ok(Err(why not))`, or an error that is not a refusal.
    async fn decide(
        &self,
        caller: &Principal,
        permission: pb::Permission,
        id: Option<SessionId>,
        user: Option<UserId>,
        module: Option<ModuleId>,
    ) -> Result<std::result::Result<(), String>> {
        let session = || id.expect("validated: the permission needs a session");
        let user = user.as_ref();
        let decided = match permission {
            pb::Permission::ReadSession => self
                .sessions
                .authorize(caller, session(), OnSession::Read)
                .await
                .map(drop),
            pb::Permission::TouchSession => self
                .sessions
                .authorize(caller, session(), OnSession::Touch)
                .await
                .map(drop),
            pb::Permission::EndSession => self
                .sessions
                .authorize(caller, session(), OnSession::End)
                .await
                .map(drop),
            pb::Permission::ActAs => {
                let user = user.expect("validated: act_as needs a user");
                self.sessions
                    .authorize(caller, session(), OnSession::ActAs(user))
                    .await
                    .map(drop)
            }
            pb::Permission::StartSession | pb::Permission::OpenClientlessSession => {
                let kind = if permission == pb::Permission::StartSession {
                    SessionKind::Interactive
                } else {
                    SessionKind::Clientless
                };
                let user = user.expect("validated: opening needs a user");
                self.sessions
                    .access()
                    .check(caller, Action::Open { kind, user })
            }
            pb::Permission::RunModule => {
                let id = session();
                let module = module
                    .as_ref()
                    .expect("validated: run_module needs a module");
                match self.contexts.get(caller, id).await {
                    Ok(context) => {
                        let facts = access::Session {
                            id,
                            user: &context.session_user,
                        };
                        self.sessions
                            .access()
                            .check(caller, Action::RunModule(facts, &context.user, module))
                    }
                    Err(error) => Err(error),
                }
            }
            pb::Permission::ReadAudit => self.sessions.access().check(caller, Action::ReadAudit),
            pb::Permission::Unspecified => unreachable!("validated: a permission is named"),
        };
        match decided {
            Ok(()) => Ok(Ok(())),
            Err(error @ (Error::PermissionDenied(_) | Error::SessionNotFound { .. })) => {
                Ok(Err(error.to_string()))
            }
            Err(error) => Err(error),
        }
    }
}

#[tonic::async_trait]
impl AccessService for AccessApi {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> std::result::Result<Response<pb::WhoAmIResponse>, Status> {
        let caller = principal::of(&request);
        let response = match caller.identity() {
            None if self.sessions.access().is_enforced() => {
                return Err(
                    Error::Unauthenticated("this server requires a credential".to_owned()).into(),
                );
            }
            None => pb::WhoAmIResponse {
                subject: caller.subject().to_owned(),
                groups: Vec::new(),
                method: pb::AuthenticationMethod::None.into(),
                session_id: 0,
            },
            Some(identity) => pb::WhoAmIResponse {
                subject: identity.subject.clone(),
                groups: identity.groups.clone(),
                method: pb::AuthenticationMethod::from(identity.method).into(),
                session_id: identity.confined_to.map_or(0, SessionId::get),
            },
        };
        Ok(Response::new(response))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn check_access(
        &self,
        request: Request<pb::CheckAccessRequest>,
    ) -> std::result::Result<Response<pb::CheckAccessResponse>, Status> {
        let caller = principal::of(&request);
        let pb::CheckAccessRequest {
            permission,
            session_id,
            user,
            module_id,
        } = request.into_inner();
        let permission = pb::Permission::try_from(permission)
            .ok()
            .filter(|p| *p != pb::Permission::Unspecified)
            .ok_or_else(|| FieldViolation::new("permission", "must name a permission"));
        let needs = |p: &pb::Permission, list: &[pb::Permission]| list.contains(p);
        let named = permission.as_ref().ok();
        let on_session = named.is_some_and(|p| {
            needs(
                p,
                &[
                    pb::Permission::ReadSession,
                    pb::Permission::TouchSession,
                    pb::Permission::EndSession,
                    pb::Permission::ActAs,
                    pb::Permission::RunModule,
                ],
            )
        });
        let for_user = named.is_some_and(|p| {
            needs(
                p,
                &[
                    pb::Permission::StartSession,
                    pb::Permission::OpenClientlessSession,
                    pb::Permission::ActAs,
                ],
            )
        });
        let runs = named == Some(&pb::Permission::RunModule);
        let (permission, id, user, module) = (
            permission,
            optional(on_session, || SessionId::parse("session_id", session_id)),
            optional(for_user, || UserId::parse("user", user)),
            optional(runs, || ModuleId::parse("module_id", module_id)),
        )
            .validate()?;
        let (allowed, reason) = match self.decide(&caller, permission, id, user, module).await? {
            Ok(()) => (true, String::new()),
            Err(reason) => (false, reason),
        };
        Ok(Response::new(pb::CheckAccessResponse { allowed, reason }))
    }
}

/// `parse()` when the field is needed, else nothing.
fn optional<T>(
    needed: bool,
    parse: impl FnOnce() -> std::result::Result<T, FieldViolation>,
) -> std::result::Result<Option<T>, FieldViolation> {
    if needed { parse().map(Some) } else { Ok(None) }
}
