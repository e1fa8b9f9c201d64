//! Sending a structured request with the generated clients, remembering
//! what it returned, and checking the call.

use std::time::Duration;

use sessiond_proto::v1::access_service_client::AccessServiceClient;
use sessiond_proto::v1::audit_service_client::AuditServiceClient;
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use sessiond_proto::v1::user_context_service_client::UserContextServiceClient;
use sessiond_proto::v1::*;
use tonic::Status;

use crate::requests::Call;
use crate::target::Target;
use crate::values::{
    duration, module, number, optional_text, revision, structure, text, timestamp,
};

/// What a call was, and how it went.
struct Sent {
    /// The method's name.
    method: &'static str,
    /// Whether the method only reads.
    read_only: bool,
    /// Its answer (what it started, when it started a run).
    result: Result<Option<(i64, String)>, Status>,
}

impl Sent {
    fn new<T>(method: &'static str, read_only: bool, result: Result<T, Status>) -> Self {
        Self {
            method,
            read_only,
            result: result.map(|_| None),
        }
    }
}

impl Target {
    /// Sends `call`, then checks it (see [`Target::check`]); waits for a run
    /// it started.
    pub fn send(&self, call: &Call) {
        let before = self.data_version();
        let sent = self.runtime.block_on(self.sent(call));
        self.check(sent.method, &sent.result, before, sent.read_only);
        if let Ok(Some((session_id, module_id))) = sent.result {
            self.await_run(session_id, module_id);
        }
    }

    /// Sends `call` and remembers the ids and tokens it returned.
    #[allow(clippy::too_many_lines)]
    async fn sent(&self, call: &Call) -> Sent {
        let mut sessions = SessionServiceClient::new(self.channel.clone());
        let mut contexts = UserContextServiceClient::new(self.channel.clone());
        let mut access = AccessServiceClient::new(self.channel.clone());
        let mut audit = AuditServiceClient::new(self.channel.clone());
        let session = |id| self.memory.lock().unwrap().session(id);
        let optional_session = |id: &Option<crate::requests::Id>| {
            id.as_ref()
                .map(|id| self.memory.lock().unwrap().session(id))
                .unwrap_or_default()
        };
        match call {
            Call::GetSessionUser(id) => {
                let request = GetSessionUserRequest {
                    session_id: session(id),
                };
                Sent::new(
                    "GetSessionUser",
                    true,
                    sessions.get_session_user(request).await,
                )
            }
            Call::GetSessionInfo(id) => {
                let request = GetSessionInfoRequest {
                    session_id: session(id),
                };
                Sent::new(
                    "GetSessionInfo",
                    true,
                    sessions.get_session_info(request).await,
                )
            }
            Call::ListSessions {
                user,
                kind,
                state,
                states,
                page_size,
                page_token,
                started_after,
                started_before,
                newest_first,
            } => {
                let request = ListSessionsRequest {
                    user: optional_text(user.as_ref()),
                    kind: number(kind),
                    state: number(state),
                    states: states.iter().map(number).collect(),
                    page_size: crate::values::page_size(page_size),
                    page_token: self.memory.lock().unwrap().token(false, page_token),
                    started_after: timestamp(started_after),
                    started_before: timestamp(started_before),
                    newest_first: *newest_first,
                };
                let result = sessions.list_sessions(request).await;
                if let Ok(page) = &result {
                    let token = page.get_ref().next_page_token.clone();
                    self.memory.lock().unwrap().page(false, token);
                }
                Sent::new("ListSessions", true, result)
            }
            Call::StartSession { user, client } => {
                let request = StartSessionRequest {
                    user: text(user),
                    client: optional_text(client.as_ref()),
                };
                let result = sessions.start_session(request).await;
                if let Ok(started) = &result {
                    let id = started.get_ref().session_id;
                    self.memory.lock().unwrap().session_opened(id);
                }
                Sent::new("StartSession", false, result)
            }
            Call::TouchSession(id) => {
                let request = TouchSessionRequest {
                    session_id: session(id),
                };
                Sent::new("TouchSession", false, sessions.touch_session(request).await)
            }
            Call::EndSession(id) => {
                let request = EndSessionRequest {
                    session_id: session(id),
                };
                Sent::new("EndSession", false, sessions.end_session(request).await)
            }
            Call::OpenClientlessSession(user) => {
                let request = OpenClientlessSessionRequest { user: text(user) };
                let result = sessions.open_clientless_session(request).await;
                if let Ok(opened) = &result {
                    let id = opened.get_ref().session_id;
                    self.memory.lock().unwrap().session_opened(id);
                }
                Sent::new("OpenClientlessSession", false, result)
            }
            Call::CloseClientlessSession(id, grace) => {
                let request = CloseClientlessSessionRequest {
                    session_id: session(id),
                    grace: duration(grace),
                };
                let result = sessions.close_clientless_session(request).await;
                Sent::new("CloseClientlessSession", false, result)
            }
            Call::OpenModule {
                session: id,
                module: name,
                parameters,
            } => {
                let request = OpenModuleRequest {
                    session_id: session(id),
                    module_id: module(name),
                    parameters: parameters.as_ref().map(|p| structure(&p.0)),
                };
                let opened = (request.session_id, request.module_id.clone());
                let result = sessions.open_module(request).await;
                Sent {
                    method: "OpenModule",
                    read_only: false,
                    result: result.map(|_| Some(opened)),
                }
            }
            Call::GetReturnValue(id, name, timeout) => {
                let request = GetReturnValueRequest {
                    session_id: session(id),
                    module_id: module(name),
                    timeout: duration(timeout),
                };
                Sent::new(
                    "GetReturnValue",
                    true,
                    sessions.get_return_value(request).await,
                )
            }
            Call::WatchSessions {
                after_revision,
                user,
                session: id,
                send_initial_state,
            } => {
                let request = WatchSessionsRequest {
                    after_revision: revision(after_revision),
                    user: optional_text(user.as_ref()),
                    session_id: optional_session(id),
                    send_initial_state: *send_initial_state,
                };
                // Its first answer (the headers, a message or the end)
                // within a moment; a watch with nothing to say yet is
                // dropped.
                let watch = async {
                    let mut watch = sessions.watch_sessions(request).await?.into_inner();
                    watch.message().await.map(drop)
                };
                let result = tokio::time::timeout(Duration::from_millis(100), watch)
                    .await
                    .unwrap_or(Ok(()));
                Sent::new("WatchSessions", true, result)
            }
            Call::GetUserContext(id) => {
                let request = GetUserContextRequest {
                    session_id: session(id),
                };
                Sent::new(
                    "GetUserContext",
                    true,
                    contexts.get_user_context(request).await,
                )
            }
            Call::SetUserContext(id, user) => {
                let request = SetUserContextRequest {
                    session_id: session(id),
                    user: text(user),
                };
                Sent::new(
                    "SetUserContext",
                    false,
                    contexts.set_user_context(request).await,
                )
            }
            Call::PushUserContext(id, user) => {
                let request = PushUserContextRequest {
                    session_id: session(id),
                    user: text(user),
                };
                let result = contexts.push_user_context(request).await;
                if let Ok(pushed) = &result {
                    let scope = pushed.get_ref().scope_id;
                    self.memory.lock().unwrap().scope_pushed(scope);
                }
                Sent::new("PushUserContext", false, result)
            }
            Call::PopUserContext(id, scope) => {
                let request = PopUserContextRequest {
                    session_id: session(id),
                    scope_id: self.memory.lock().unwrap().scope(scope),
                };
                Sent::new(
                    "PopUserContext",
                    false,
                    contexts.pop_user_context(request).await,
                )
            }
            Call::WhoAmI => Sent::new("WhoAmI", true, access.who_am_i(WhoAmIRequest {}).await),
            Call::CheckAccess {
                permission,
                session: id,
                user,
                module: name,
            } => {
                let request = CheckAccessRequest {
                    permission: number(permission),
                    session_id: optional_session(id),
                    user: optional_text(user.as_ref()),
                    module_id: name.as_ref().map(module).unwrap_or_default(),
                };
                Sent::new("CheckAccess", true, access.check_access(request).await)
            }
            Call::ListEvents {
                session: id,
                user,
                subject,
                kinds,
                start_time,
                end_time,
                after_revision,
                page_size,
                page_token,
                newest_first,
            } => {
                let request = ListEventsRequest {
                    session_id: optional_session(id),
                    user: optional_text(user.as_ref()),
                    subject: optional_text(subject.as_ref()),
                    kinds: kinds.iter().map(number).collect(),
                    start_time: timestamp(start_time),
                    end_time: timestamp(end_time),
                    after_revision: revision(after_revision),
                    page_size: crate::values::page_size(page_size),
                    page_token: self.memory.lock().unwrap().token(true, page_token),
                    newest_first: *newest_first,
                };
                let result = audit.list_events(request).await;
                if let Ok(page) = &result {
                    let token = page.get_ref().next_page_token.clone();
                    self.memory.lock().unwrap().page(true, token);
                }
                Sent::new("ListEvents", true, result)
            }
            Call::VerifyLedger(from, to) => {
                let request = VerifyLedgerRequest {
                    from_revision: revision(from),
                    to_revision: revision(to),
                };
                let result = audit.verify_ledger(request).await;
                if let Ok(verified) = &result {
                    let verified = verified.get_ref();
                    assert!(verified.ok, "the ledger does not verify: {verified:?}");
                }
                Sent::new("VerifyLedger", true, result)
            }
            Call::GetCheckpoint => Sent::new(
                "GetCheckpoint",
                true,
                audit.get_checkpoint(GetCheckpointRequest {}).await,
            ),
        }
    }
}
