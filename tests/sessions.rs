//! SessionService end to end: the seed's session functions and their
//! errors, over real gRPC against a real server and database.

mod common;

use common::{TestServer, assert_error, metadata, violated_fields};
use sessiond_proto::v1::{
    CloseClientlessSessionRequest, EndReason, EndSessionRequest, GetSessionInfoRequest,
    GetSessionUserRequest, ListSessionsRequest, OpenClientlessSessionRequest, SessionKind,
    SessionState, StartSessionRequest, TouchSessionRequest,
};
use tonic::Code;

#[tokio::test]
async fn a_clientless_session_is_whose_it_was_opened_for() {
    let server = TestServer::start().await;
    let mut sessions = server.sessions().await;

    let opened = sessions
        .open_clientless_session(OpenClientlessSessionRequest { user: "R41".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(opened.session_id > 0);

    let user = sessions
        .get_session_user(GetSessionUserRequest {
            session_id: opened.session_id,
        })
        .await
        .unwrap()
        .into_inner()
        .user;
    assert_eq!(user, "R41");

    let info = sessions
        .get_session_info(GetSessionInfoRequest {
            session_id: opened.session_id,
        })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(info.session_uuid, opened.session_uuid);
    assert_eq!(
        uuid::Uuid::parse_str(&info.session_uuid)
            .unwrap()
            .get_version_num(),
        7
    );
    assert_eq!(info.user, "R41");
    assert_eq!(info.effective_user, "R41");
    assert_eq!(info.kind(), SessionKind::Clientless);
    assert_eq!(info.state(), SessionState::Open);
    assert!(info.start_time.is_some());
    assert!(info.end_time.is_none());
    assert_eq!(info.end_reason(), EndReason::Unspecified);

    let closed = sessions
        .close_clientless_session(CloseClientlessSessionRequest {
            session_id: opened.session_id,
            grace: None,
        })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(closed.state(), SessionState::Ended);
    assert_eq!(closed.end_reason(), EndReason::ClosedByClient);
    let end_time = closed
        .end_time
        .clone()
        .expect("an ended session has an end time");
    let start_time = closed.start_time.clone().unwrap();
    assert!((end_time.seconds, end_time.nanos) >= (start_time.seconds, start_time.nanos));
}

#[tokio::test]
async fn an_unknown_session_is_not_found() {
    let server = TestServer::start().await;
    let mut sessions = server.sessions().await;
    let status = assert_error(
        sessions
            .get_session_user(GetSessionUserRequest { session_id: 4242 })
            .await,
        Code::NotFound,
        "SESSION_NOT_FOUND",
    );
    assert_eq!(metadata(&status, "session_id").as_deref(), Some("4242"));
    assert_error(
        sessions
            .get_session_info(GetSessionInfoRequest { session_id: 4242 })
            .await,
        Code::NotFound,
        "SESSION_NOT_FOUND",
    );
    for result in [
        sessions
            .end_session(EndSessionRequest { session_id: 4242 })
            .await
            .map(drop),
        sessions
            .touch_session(TouchSessionRequest { session_id: 4242 })
            .await
            .map(drop),
        sessions
            .close_clientless_session(CloseClientlessSessionRequest {
                session_id: 4242,
                grace: None,
            })
            .await
            .map(drop),
    ] {
        assert_error(result, Code::NotFound, "SESSION_NOT_FOUND");
    }
}

#[tokio::test]
async fn invalid_arguments_name_every_bad_field_and_change_nothing() {
    let server = TestServer::start().await;
    let mut sessions = server.sessions().await;
    let status = assert_error(
        sessions
            .get_session_user(GetSessionUserRequest { session_id: 0 })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["session_id"]);

    let long = "x".repeat(257);
    for bad_user in ["", "   ", "R\u{7}41", long.as_str()] {
        let status = assert_error(
            sessions
                .open_clientless_session(OpenClientlessSessionRequest {
                    user: bad_user.into(),
                })
                .await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(violated_fields(&status), ["user"], "user {bad_user:?}");
    }
    let status = assert_error(
        sessions
            .start_session(StartSessionRequest {
                user: String::new(),
                client: "web\n".into(),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["user", "client"]);

    let status = assert_error(
        sessions
            .list_sessions(ListSessionsRequest {
                kind: 99,
                page_size: -1,
                page_token: "nonsense".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(
        violated_fields(&status),
        ["kind", "page_size", "page_token"]
    );

    let listed = sessions
        .list_sessions(ListSessionsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.sessions.is_empty(),
        "a refused request created nothing"
    );
}
