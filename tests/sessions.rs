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
    let end_time = closed.end_time.expect("an ended session has an end time");
    let start_time = closed.start_time.unwrap();
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
    for bad_user in [
        "",
        "   ",
        "R\u{7}41",
        long.as_str(),
        "\u{200b}",
        "\u{feff}",
        "\u{301}",
        "adm\u{202e}nimda",
        "R41\u{2028}",
    ] {
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

#[tokio::test]
async fn an_interactive_session_starts_is_touched_and_ends_once() {
    let server = TestServer::start().await;
    let mut sessions = server.sessions().await;
    let started = sessions
        .start_session(StartSessionRequest {
            user: "R41".into(),
            client: "web/2.3".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let session = started.session.unwrap();
    assert_eq!(session.kind(), SessionKind::Interactive);
    assert_eq!(session.client, "web/2.3");
    assert_eq!(session.session_uuid, started.session_uuid);

    let touched = sessions
        .touch_session(TouchSessionRequest {
            session_id: started.session_id,
        })
        .await
        .unwrap()
        .into_inner()
        .last_activity_time
        .unwrap();
    let first_activity = session.last_activity_time.unwrap();
    assert!((touched.seconds, touched.nanos) >= (first_activity.seconds, first_activity.nanos));

    assert_error(
        sessions
            .close_clientless_session(CloseClientlessSessionRequest {
                session_id: started.session_id,
                grace: None,
            })
            .await,
        Code::FailedPrecondition,
        "SESSION_NOT_CLIENTLESS",
    );

    let ended = sessions
        .end_session(EndSessionRequest {
            session_id: started.session_id,
        })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(ended.state(), SessionState::Ended);
    assert_eq!(ended.end_reason(), EndReason::ClosedByClient);

    let again = sessions
        .end_session(EndSessionRequest {
            session_id: started.session_id,
        })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(again, ended, "ending an ended session returns it unchanged");

    assert_error(
        sessions
            .touch_session(TouchSessionRequest {
                session_id: started.session_id,
            })
            .await,
        Code::FailedPrecondition,
        "SESSION_ENDED",
    );
    let user = sessions
        .get_session_user(GetSessionUserRequest {
            session_id: started.session_id,
        })
        .await
        .unwrap()
        .into_inner()
        .user;
    assert_eq!(user, "R41", "an ended session stays readable");
}

#[tokio::test]
async fn closing_a_clientless_session_twice_returns_the_same_record() {
    let server = TestServer::start().await;
    let mut sessions = server.sessions().await;
    let id = sessions
        .open_clientless_session(OpenClientlessSessionRequest { user: "R41".into() })
        .await
        .unwrap()
        .into_inner()
        .session_id;
    let close = || CloseClientlessSessionRequest {
        session_id: id,
        grace: Some(prost_types::Duration {
            seconds: 1,
            nanos: 0,
        }),
    };
    let first = sessions
        .close_clientless_session(close())
        .await
        .unwrap()
        .into_inner();
    let second = sessions
        .close_clientless_session(close())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, second);
    let ended_via_end = sessions
        .end_session(EndSessionRequest { session_id: id })
        .await
        .unwrap()
        .into_inner()
        .session;
    assert_eq!(ended_via_end, first.session);
}

#[tokio::test]
async fn a_grace_out_of_range_is_invalid() {
    let server = TestServer::start().await;
    let mut sessions = server.sessions().await;
    for (seconds, nanos) in [(-1, 0), (3601, 0), (0, -5), (0, 1_000_000_000), (1, -1)] {
        let status = assert_error(
            sessions
                .close_clientless_session(CloseClientlessSessionRequest {
                    session_id: 1,
                    grace: Some(prost_types::Duration { seconds, nanos }),
                })
                .await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(violated_fields(&status), ["grace"]);
    }
}

#[tokio::test]
async fn end_session_closes_a_clientless_session_too() {
    let server = TestServer::start().await;
    let mut sessions = server.sessions().await;
    let id = sessions
        .open_clientless_session(OpenClientlessSessionRequest { user: "R41".into() })
        .await
        .unwrap()
        .into_inner()
        .session_id;
    let ended = sessions
        .end_session(EndSessionRequest { session_id: id })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(ended.state(), SessionState::Ended);
    assert_eq!(ended.end_reason(), EndReason::ClosedByClient);
}

#[tokio::test]
async fn list_filters_by_user_kind_and_state_and_pages() {
    let server = TestServer::start().await;
    let mut sessions = server.sessions().await;
    let mut r41_clientless = Vec::new();
    for _ in 0..5 {
        let id = sessions
            .open_clientless_session(OpenClientlessSessionRequest { user: "R41".into() })
            .await
            .unwrap()
            .into_inner()
            .session_id;
        r41_clientless.push(id);
    }
    let interactive = sessions
        .start_session(StartSessionRequest {
            user: "R41".into(),
            client: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .session_id;
    sessions
        .open_clientless_session(OpenClientlessSessionRequest { user: "R42".into() })
        .await
        .unwrap();
    sessions
        .end_session(EndSessionRequest {
            session_id: r41_clientless[0],
        })
        .await
        .unwrap();

    let mut listed = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = sessions
            .list_sessions(ListSessionsRequest {
                user: "R41".into(),
                kind: SessionKind::Clientless.into(),
                page_size: 2,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.sessions.len() <= 2);
        listed.extend(page.sessions.iter().map(|s| s.session_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(
        listed, r41_clientless,
        "every R41 clientless session, in id order"
    );
    assert_eq!(pages, 3);

    let open = sessions
        .list_sessions(ListSessionsRequest {
            user: "R41".into(),
            state: SessionState::Open.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let open_ids: Vec<_> = open.sessions.iter().map(|s| s.session_id).collect();
    let mut expected = r41_clientless[1..].to_vec();
    expected.push(interactive);
    assert_eq!(open_ids, expected);
    assert!(open.next_page_token.is_empty());
}

#[tokio::test]
async fn list_takes_several_states_together_with_state() {
    let server = TestServer::start().await;
    let mut sessions = server.sessions().await;
    let open = |user: &str| {
        let request = OpenClientlessSessionRequest { user: user.into() };
        let mut sessions = sessions.clone();
        async move {
            sessions
                .open_clientless_session(request)
                .await
                .unwrap()
                .into_inner()
                .session_id
        }
    };
    let (a, b, c) = (open("R41").await, open("R41").await, open("R42").await);
    sessions
        .end_session(EndSessionRequest { session_id: b })
        .await
        .unwrap();
    let list = |state: SessionState, states: &[SessionState], page_size, page_token: &str| {
        let request = ListSessionsRequest {
            state: state.into(),
            states: states.iter().map(|&s| s.into()).collect(),
            page_size,
            page_token: page_token.to_owned(),
            ..Default::default()
        };
        let mut sessions = sessions.clone();
        async move {
            let page = sessions.list_sessions(request).await.unwrap().into_inner();
            let ids: Vec<i64> = page.sessions.iter().map(|s| s.session_id).collect();
            (ids, page.next_page_token)
        }
    };
    use SessionState::{Closing, Ended, Open, Unspecified};

    assert_eq!(list(Unspecified, &[Open, Closing], 0, "").await.0, [a, c]);
    assert_eq!(list(Unspecified, &[Ended], 0, "").await.0, [b]);
    assert_eq!(
        list(Ended, &[Open], 0, "").await.0,
        [a, b, c],
        "`state` and `states` together: a session in any of them"
    );
    assert_eq!(list(Open, &[Open, Open], 0, "").await.0, [a, c]);
    assert_eq!(list(Unspecified, &[], 0, "").await.0, [a, b, c]);
    let (first, token) = list(Unspecified, &[Open, Closing], 1, "").await;
    assert_eq!(first, [a]);
    let (second, token) = list(Unspecified, &[Open, Closing], 1, &token).await;
    assert_eq!(second, [c], "the filter holds across pages");
    assert!(token.is_empty(), "no session after {c} is open or closing");

    let status = assert_error(
        sessions
            .list_sessions(ListSessionsRequest {
                state: 99,
                states: vec![Open.into(), Unspecified.into(), 42],
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["state", "states[1]"]);
}

#[tokio::test]
async fn list_pages_newest_first_and_filters_by_start_time() {
    let server = TestServer::start().await;
    let mut sessions = server.sessions().await;
    let mut opened = Vec::new();
    for _ in 0..5 {
        let info = sessions
            .open_clientless_session(OpenClientlessSessionRequest { user: "R41".into() })
            .await
            .unwrap()
            .into_inner()
            .session
            .unwrap();
        opened.push((info.session_id, info.start_time.unwrap()));
    }
    let ids: Vec<i64> = opened.iter().map(|(id, _)| *id).collect();
    let list = |request: ListSessionsRequest| {
        let mut sessions = sessions.clone();
        async move {
            let page = sessions.list_sessions(request).await.unwrap().into_inner();
            let ids: Vec<i64> = page.sessions.iter().map(|s| s.session_id).collect();
            (ids, page.next_page_token)
        }
    };

    let newest = |page_token: String| ListSessionsRequest {
        newest_first: true,
        page_size: 2,
        page_token,
        ..Default::default()
    };
    let mut listed = Vec::new();
    let mut token = String::new();
    loop {
        let (page, next) = list(newest(token)).await;
        listed.extend(page);
        if next.is_empty() {
            break;
        }
        token = next;
    }
    let mut descending = ids.clone();
    descending.reverse();
    assert_eq!(
        listed, descending,
        "every session, newest first, over pages"
    );

    // The second session's start (inclusive) to the fourth's (exclusive);
    // sessions opened in the same microsecond fall on the same side.
    let (from, to) = (opened[1].1, opened[3].1);
    let expected: Vec<i64> = opened
        .iter()
        .filter(|(_, t)| (t.seconds, t.nanos) >= (from.seconds, from.nanos))
        .filter(|(_, t)| (t.seconds, t.nanos) < (to.seconds, to.nanos))
        .map(|(id, _)| *id)
        .collect();
    assert!(expected.contains(&ids[1]) && !expected.contains(&ids[3]));
    let (between, _) = list(ListSessionsRequest {
        started_after: Some(from),
        started_before: Some(to),
        ..Default::default()
    })
    .await;
    assert_eq!(between, expected);

    let status = assert_error(
        sessions
            .list_sessions(ListSessionsRequest {
                started_after: Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: 1_000_000_000,
                }),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["started_after"]);
}

#[tokio::test]
async fn the_open_session_limit_per_user_is_enforced() {
    let server = TestServer::start_with(|config| config.max_open_sessions_per_user = Some(2)).await;
    let mut sessions = server.sessions().await;
    let open = |user: &str| OpenClientlessSessionRequest { user: user.into() };
    let first = sessions.open_clientless_session(open("R41")).await.unwrap();
    sessions.open_clientless_session(open("R41")).await.unwrap();
    let status = assert_error(
        sessions.open_clientless_session(open("R41")).await,
        Code::ResourceExhausted,
        "TOO_MANY_SESSIONS",
    );
    assert_eq!(metadata(&status, "limit").as_deref(), Some("2"));
    sessions
        .open_clientless_session(open("R42"))
        .await
        .expect("another user is not limited by R41's sessions");
    sessions
        .end_session(EndSessionRequest {
            session_id: first.into_inner().session_id,
        })
        .await
        .unwrap();
    sessions
        .open_clientless_session(open("R41"))
        .await
        .expect("an ended session no longer counts");
}

/// A cache far smaller than the sessions read through it
/// (`--cached-sessions`): every answer is still right, what is not kept
/// is read from the database.
#[tokio::test]
async fn a_small_session_cache_answers_every_session_right() {
    let server = TestServer::start_with(|config| config.cached_sessions = 16).await;
    let mut sessions = server.sessions().await;
    let mut opened = Vec::new();
    for n in 0..200 {
        let user = format!("user-{n}");
        let id = sessions
            .open_clientless_session(OpenClientlessSessionRequest { user: user.clone() })
            .await
            .unwrap()
            .into_inner()
            .session_id;
        opened.push((id, user));
    }
    sessions
        .close_clientless_session(CloseClientlessSessionRequest {
            session_id: opened[0].0,
            grace: None,
        })
        .await
        .unwrap();
    for round in 0..2 {
        for (session_id, user) in &opened {
            let request = GetSessionUserRequest {
                session_id: *session_id,
            };
            let got = sessions
                .get_session_user(request)
                .await
                .unwrap()
                .into_inner();
            assert_eq!(&got.user, user, "round {round}");
            let request = GetSessionInfoRequest {
                session_id: *session_id,
            };
            let info = sessions
                .get_session_info(request)
                .await
                .unwrap()
                .into_inner();
            let state = info.session.unwrap().state();
            let expected = if *session_id == opened[0].0 {
                SessionState::Ended
            } else {
                SessionState::Open
            };
            assert_eq!(state, expected, "session {session_id}, round {round}");
        }
    }
}
