//! UserContextService end to end: the seed's `UserContext('R41')` block as
//! scopes that restore exactly what was there before.

mod common;

use common::{TestServer, assert_error, metadata, violated_fields};
use sessiond_proto::v1::session_service_client::SessionServiceClient;
use sessiond_proto::v1::user_context_service_client::UserContextServiceClient;
use sessiond_proto::v1::{
    EndSessionRequest, GetSessionInfoRequest, GetUserContextRequest, OpenClientlessSessionRequest,
    PopUserContextRequest, PushUserContextRequest, SetUserContextRequest, StartSessionRequest,
};
use tonic::Code;
use tonic::transport::Channel;

struct Clients {
    sessions: SessionServiceClient<Channel>,
    contexts: UserContextServiceClient<Channel>,
}

async fn clients(server: &TestServer) -> Clients {
    Clients {
        sessions: server.sessions().await,
        contexts: server.user_contexts().await,
    }
}

async fn open_session(c: &mut Clients, user: &str) -> i64 {
    c.sessions
        .open_clientless_session(OpenClientlessSessionRequest { user: user.into() })
        .await
        .unwrap()
        .into_inner()
        .session_id
}

async fn current(c: &mut Clients, session_id: i64) -> (String, u32) {
    let context = c
        .contexts
        .get_user_context(GetUserContextRequest { session_id })
        .await
        .unwrap()
        .into_inner();
    (context.user, context.depth)
}

async fn push(c: &mut Clients, session_id: i64, user: &str) -> i64 {
    c.contexts
        .push_user_context(PushUserContextRequest {
            session_id,
            user: user.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .scope_id
}

async fn pop(c: &mut Clients, session_id: i64, scope_id: i64) -> Result<String, tonic::Status> {
    c.contexts
        .pop_user_context(PopUserContextRequest {
            session_id,
            scope_id,
        })
        .await
        .map(|r| r.into_inner().user)
}

#[tokio::test]
async fn a_scope_acts_as_its_user_and_restores_the_session_user() {
    let server = TestServer::start().await;
    let mut c = clients(&server).await;
    let id = open_session(&mut c, "ADMIN").await;
    assert_eq!(current(&mut c, id).await, ("ADMIN".to_owned(), 0));

    let pushed = c
        .contexts
        .push_user_context(PushUserContextRequest {
            session_id: id,
            user: "R41".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pushed.previous_user, "ADMIN");
    assert_eq!(pushed.depth, 1);
    assert_eq!(current(&mut c, id).await, ("R41".to_owned(), 1));
    let info = c
        .sessions
        .get_session_info(GetSessionInfoRequest { session_id: id })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(info.user, "ADMIN", "the session's own user never changes");
    assert_eq!(info.effective_user, "R41");
    assert_eq!(info.user_context_depth, 1);

    assert_eq!(pop(&mut c, id, pushed.scope_id).await.unwrap(), "ADMIN");
    assert_eq!(current(&mut c, id).await, ("ADMIN".to_owned(), 0));
}

#[tokio::test]
async fn nested_scopes_pop_innermost_first_and_refuse_anything_else() {
    let server = TestServer::start().await;
    let mut c = clients(&server).await;
    let id = open_session(&mut c, "ADMIN").await;
    let outer = push(&mut c, id, "R41").await;
    let inner = push(&mut c, id, "R42").await;
    assert_ne!(outer, inner);

    let status = assert_error(
        pop(&mut c, id, outer).await,
        Code::FailedPrecondition,
        "SCOPE_NOT_INNERMOST",
    );
    assert_eq!(
        metadata(&status, "innermost_scope_id"),
        Some(inner.to_string())
    );
    assert_eq!(
        current(&mut c, id).await,
        ("R42".to_owned(), 2),
        "a refused pop changes nothing"
    );

    assert_eq!(pop(&mut c, id, inner).await.unwrap(), "R41");
    assert_eq!(pop(&mut c, id, outer).await.unwrap(), "ADMIN");
    assert_error(
        pop(&mut c, id, outer).await,
        Code::NotFound,
        "SCOPE_NOT_FOUND",
    );
}

#[tokio::test]
async fn a_pop_restores_the_value_from_before_its_push_even_after_a_set() {
    let server = TestServer::start().await;
    let mut c = clients(&server).await;
    let id = open_session(&mut c, "ADMIN").await;
    let previous = c
        .contexts
        .set_user_context(SetUserContextRequest {
            session_id: id,
            user: "OPS".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .previous_user;
    assert_eq!(previous, "ADMIN");
    let scope = push(&mut c, id, "R41").await;
    c.contexts
        .set_user_context(SetUserContextRequest {
            session_id: id,
            user: "R99".into(),
        })
        .await
        .unwrap();
    assert_eq!(current(&mut c, id).await, ("R99".to_owned(), 1));
    assert_eq!(pop(&mut c, id, scope).await.unwrap(), "OPS");
}

#[tokio::test]
async fn scopes_of_one_session_are_not_another_sessions() {
    let server = TestServer::start().await;
    let mut c = clients(&server).await;
    let first = open_session(&mut c, "A").await;
    let second = open_session(&mut c, "B").await;
    let scope = push(&mut c, first, "R41").await;
    assert_error(
        pop(&mut c, second, scope).await,
        Code::NotFound,
        "SCOPE_NOT_FOUND",
    );
    assert_eq!(current(&mut c, first).await, ("R41".to_owned(), 1));
}

#[tokio::test]
async fn an_ended_session_has_no_user_context_to_change() {
    let server = TestServer::start().await;
    let mut c = clients(&server).await;
    let id = c
        .sessions
        .start_session(StartSessionRequest {
            user: "R41".into(),
            client: "web".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .session_id;
    let scope = push(&mut c, id, "R42").await;
    c.sessions
        .end_session(EndSessionRequest { session_id: id })
        .await
        .unwrap();

    assert_error(
        c.contexts
            .get_user_context(GetUserContextRequest { session_id: id })
            .await,
        Code::FailedPrecondition,
        "SESSION_ENDED",
    );
    assert_error(
        c.contexts
            .set_user_context(SetUserContextRequest {
                session_id: id,
                user: "X".into(),
            })
            .await,
        Code::FailedPrecondition,
        "SESSION_ENDED",
    );
    assert_error(
        c.contexts
            .push_user_context(PushUserContextRequest {
                session_id: id,
                user: "X".into(),
            })
            .await,
        Code::FailedPrecondition,
        "SESSION_ENDED",
    );
    assert_error(
        pop(&mut c, id, scope).await,
        Code::FailedPrecondition,
        "SESSION_ENDED",
    );
}

#[tokio::test]
async fn bad_user_context_requests_are_invalid_arguments() {
    let server = TestServer::start().await;
    let mut c = clients(&server).await;
    let status = assert_error(
        c.contexts
            .push_user_context(PushUserContextRequest {
                session_id: -1,
                user: "\t".into(),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["session_id", "user"]);
    let status = assert_error(
        c.contexts
            .pop_user_context(PopUserContextRequest {
                session_id: 1,
                scope_id: 0,
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["scope_id"]);
    assert_error(
        c.contexts
            .get_user_context(GetUserContextRequest { session_id: 77 })
            .await,
        Code::NotFound,
        "SESSION_NOT_FOUND",
    );
}
