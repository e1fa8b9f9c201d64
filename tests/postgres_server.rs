//! sessiond on PostgreSQL end to end: two servers (two replicas, two node
//! ids) on one database, driven over gRPC — open a clientless session on
//! one and see its user on the other, switch user contexts across them,
//! close it; plus how `store::open` treats PostgreSQL URLs.
//!
//! The database comes from `common::postgres`; the tests that need one are
//! ignored when the build found no PostgreSQL (`cfg(has_postgres)`).

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use sessiond::Error;
use sessiond::model::{ScopeId, SessionId, Timestamp, UserId};
use sessiond_proto::v1::{
    CloseClientlessSessionRequest, EndReason, EndSessionRequest, GetSessionInfoRequest,
    GetSessionUserRequest, GetUserContextRequest, ListSessionsRequest,
    OpenClientlessSessionRequest, PopUserContextRequest, PushUserContextRequest, SessionState,
    StartSessionRequest,
};

/// A server on the PostgreSQL database at `url`, owning sessions as `node`.
async fn replica(url: &str, node: &str) -> TestServer {
    TestServer::start_with(|config| {
        config.database = url.to_owned();
        node.clone_into(&mut config.node_id);
    })
    .await
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn two_replicas_on_postgres_share_sessions_and_user_contexts() {
    let url = common::postgres::fresh_database("two_replicas_on_postgres").await;
    let a = replica(&url, "replica-a").await;
    let b = replica(&url, "replica-b").await;
    let (mut sessions_a, mut sessions_b) = (a.sessions().await, b.sessions().await);
    let (mut contexts_a, mut contexts_b) = (a.user_contexts().await, b.user_contexts().await);

    // Open on A; B knows whose it is.
    let opened = sessions_a
        .open_clientless_session(OpenClientlessSessionRequest { user: "R41".into() })
        .await
        .unwrap()
        .into_inner();
    let id = opened.session_id;
    assert!(id > 0);
    let user = sessions_b
        .get_session_user(GetSessionUserRequest { session_id: id })
        .await
        .unwrap()
        .into_inner()
        .user;
    assert_eq!(user, "R41");

    // Push on A, read and pop on B, read on A.
    let pushed = contexts_a
        .push_user_context(PushUserContextRequest {
            session_id: id,
            user: "R50".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pushed.previous_user, "R41");
    let inside = contexts_b
        .get_user_context(GetUserContextRequest { session_id: id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((inside.user.as_str(), inside.depth), ("R50", 1));
    let popped = contexts_b
        .pop_user_context(PopUserContextRequest {
            session_id: id,
            scope_id: pushed.scope_id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(popped.user, "R41");
    let after = contexts_a
        .get_user_context(GetUserContextRequest { session_id: id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((after.user.as_str(), after.depth), ("R41", 0));

    // An interactive session started on B gets an id of its own.
    let web = sessions_b
        .start_session(StartSessionRequest {
            user: "R42".into(),
            client: "web".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .session_id;
    assert!(web > 0 && web != id);

    // Close on A (the owner); B sees it ended.
    let closed = sessions_a
        .close_clientless_session(CloseClientlessSessionRequest {
            session_id: id,
            grace: None,
        })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(closed.state(), SessionState::Ended);
    let seen = sessions_b
        .get_session_info(GetSessionInfoRequest { session_id: id })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(seen.state(), SessionState::Ended);
    assert_eq!(seen.end_reason(), EndReason::ClosedByClient);

    sessions_a
        .end_session(EndSessionRequest { session_id: web })
        .await
        .unwrap();
    let listed = sessions_b
        .list_sessions(ListSessionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .sessions;
    let listed: Vec<_> = listed.iter().map(|s| (s.session_id, s.state())).collect();
    assert_eq!(
        listed,
        [(id, SessionState::Ended), (web, SessionState::Ended)]
    );

    // A restarted replica B recovers only its own sessions: A's stay.
    let reopened = sessions_a
        .open_clientless_session(OpenClientlessSessionRequest { user: "R43".into() })
        .await
        .unwrap()
        .into_inner()
        .session_id;
    b.stop().await;
    let b = replica(&url, "replica-b").await;
    let still_open = b
        .sessions()
        .await
        .get_session_info(GetSessionInfoRequest {
            session_id: reopened,
        })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(still_open.state(), SessionState::Open);
    a.stop().await;
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn a_replica_replaces_pooled_connections_the_database_dropped() {
    let url = common::postgres::fresh_database("replaces_dropped_connections").await;
    let server = replica(&url, "replica-a").await;
    let mut sessions = server.sessions().await;
    let open = OpenClientlessSessionRequest { user: "R41".into() };
    let first = sessions
        .open_clientless_session(open.clone())
        .await
        .unwrap()
        .into_inner();

    // The database drops every connection the server holds (a restart, a
    // failover, an administrator), while they sit idle in its pool.
    common::postgres::execute(
        &url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'sessiond'",
    )
    .await;
    // Long enough for the pool to check a connection before handing it out.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Every request still succeeds: the dead connections are noticed and
    // replaced, not handed to requests.
    let second = sessions
        .open_clientless_session(open)
        .await
        .expect("an open after the connections were dropped")
        .into_inner();
    assert_ne!(second.session_id, first.session_id);
    for id in [first.session_id, second.session_id] {
        let closed = sessions
            .close_clientless_session(CloseClientlessSessionRequest {
                session_id: id,
                ..Default::default()
            })
            .await
            .expect("a close after the connections were dropped")
            .into_inner();
        assert_eq!(closed.session.unwrap().state(), SessionState::Ended);
    }
    server.stop().await;
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn migration_5_gives_existing_sessions_their_scope_count_and_keeps_it() {
    let url = common::postgres::fresh_database("migration_5_scope_count").await;
    // The database as the first four migrations left it: a session with two
    // scopes pushed and one without.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("server/migrations/postgres");
    let mut migrator = sqlx::migrate::Migrator::new(dir).await.unwrap();
    migrator.migrations = migrator.migrations[..4].to_vec().into();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    migrator.run(&pool).await.unwrap();
    for (uuid, effective) in [
        ("0190a0b0-0000-7000-8000-000000000001", "R43"),
        ("0190a0b0-0000-7000-8000-000000000002", "R41"),
    ] {
        sqlx::query(
            "INSERT INTO sessions (session_uuid, user_id, kind, state, start_time, \
             last_activity_time, effective_user, owner_node) \
             VALUES ($1::uuid, 'R41', 'clientless', 'open', 1, 1, $2, 'a')",
        )
        .bind(uuid)
        .bind(effective)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO user_context_scopes (session_id, depth, user_id, previous_user, pushed_at) \
         VALUES (1, 1, 'R42', 'R41', 1), (1, 2, 'R43', 'R42', 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = sessiond::store::open(&url).await.unwrap();
    let (one, two) = (SessionId::from_store(1), SessionId::from_store(2));
    assert_eq!(store.session(one).await.unwrap().user_context_depth, 2);
    assert_eq!(store.session(two).await.unwrap().user_context_depth, 0);

    // Pops and pushes keep the count.
    let now = Timestamp::from_unix_micros(2);
    store
        .pop_user_context(one, ScopeId::from_store(2), now)
        .await
        .unwrap();
    let pushed = store
        .push_user_context(two, UserId::from_store("R44".to_owned()), now)
        .await
        .unwrap();
    assert_eq!(pushed.depth, 1);
    let one = store.session(one).await.unwrap();
    assert_eq!(
        (one.user_context_depth, one.effective_user.as_str()),
        (1, "R42")
    );
    let two = store.session(two).await.unwrap();
    assert_eq!(
        (two.user_context_depth, two.effective_user.as_str()),
        (1, "R44")
    );
}

#[tokio::test]
#[cfg_attr(
    not(has_postgres),
    ignore = "no PostgreSQL (SESSIOND_TEST_POSTGRES_URL, or initdb, pg_ctl and psql): see README"
)]
async fn the_store_debug_output_hides_the_password() {
    let url = common::postgres::fresh_database("the_store_debug_output_hides_the_password").await;
    // The test clusters trust local connections, so any password is
    // accepted; a URL that already has one keeps it.
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, host) = rest.split_once('@').unwrap();
    let (with_password, password) = match userinfo.split_once(':') {
        Some((_, password)) => (url.clone(), password.to_owned()),
        None => (
            format!("{scheme}://{userinfo}:s3cret-pw@{host}"),
            "s3cret-pw".to_owned(),
        ),
    };
    let store = sessiond::store::open(&with_password).await.unwrap();
    let debug = format!("{store:?}");
    assert!(!debug.contains(&password), "{debug}");
    assert!(debug.contains(":***@"), "{debug}");
}

#[tokio::test]
async fn an_unreachable_postgres_is_store_unavailable() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let result =
        sessiond::store::open(&format!("postgresql://postgres@127.0.0.1:{port}/sessiond")).await;
    assert!(
        matches!(result, Err(Error::StoreUnavailable(_))),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "gave up after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn database_urls_of_other_schemes_are_invalid_arguments() {
    for url in ["mysql://localhost/sessiond", "postgre://localhost/x", ""] {
        let result = sessiond::store::open(url).await;
        assert!(
            matches!(result, Err(Error::InvalidArgument(_))),
            "{url}: {result:?}"
        );
    }
}
