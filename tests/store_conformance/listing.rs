//! Listing sessions: filters and pages.

use sessiond::model::{EndReason, SessionKind, SessionState};
use sessiond::store::SessionQuery;

use crate::{Fixture, all, at, clientless, clientless_at, ids, interactive, user};

conformance!(
    list_sessions_filters_and_pages,
    list_sessions_newest_first_and_by_start_time,
);

async fn list_sessions_filters_and_pages(f: Fixture) {
    let store = &*f.store;
    let a1 = interactive(store, "A").await;
    let a2 = clientless(store, "A").await;
    let b1 = clientless(store, "B").await;
    let a3 = clientless(store, "A").await;
    let b2 = interactive(store, "B").await;
    store
        .end_session(a1, EndReason::ClosedByClient, at(5))
        .await
        .unwrap();
    store
        .begin_closing(a3, EndReason::ClosedByClient, at(5))
        .await
        .unwrap();

    let every = store.list_sessions(&all(100)).await.unwrap();
    assert_eq!(ids(&every), [a1, a2, b1, a3, b2]);
    assert_eq!(every[0].state, SessionState::Ended);
    assert_eq!(every[3].state, SessionState::Closing);

    let query = |user_name: Option<&str>, kind, state: Option<SessionState>| SessionQuery {
        user: user_name.map(user),
        kind,
        states: state.into_iter().collect(),
        limit: 100,
        ..SessionQuery::default()
    };
    let list = |q: SessionQuery| async move { ids(&store.list_sessions(&q).await.unwrap()) };
    assert_eq!(list(query(Some("A"), None, None)).await, [a1, a2, a3]);
    assert_eq!(list(query(Some("B"), None, None)).await, [b1, b2]);
    assert_eq!(list(query(Some("C"), None, None)).await, []);
    assert_eq!(
        list(query(None, Some(SessionKind::Clientless), None)).await,
        [a2, b1, a3]
    );
    assert_eq!(
        list(query(None, Some(SessionKind::Interactive), None)).await,
        [a1, b2]
    );
    assert_eq!(
        list(query(None, None, Some(SessionState::Open))).await,
        [a2, b1, b2]
    );
    assert_eq!(
        list(query(None, None, Some(SessionState::Closing))).await,
        [a3]
    );
    assert_eq!(
        list(query(None, None, Some(SessionState::Ended))).await,
        [a1]
    );
    assert_eq!(
        list(query(
            Some("A"),
            Some(SessionKind::Clientless),
            Some(SessionState::Open)
        ))
        .await,
        [a2]
    );

    // Several states: a session in any of them.
    let in_states = |states: &[SessionState]| SessionQuery {
        states: states.to_vec(),
        limit: 100,
        ..SessionQuery::default()
    };
    assert_eq!(
        list(in_states(&[SessionState::Open, SessionState::Closing])).await,
        [a2, b1, a3, b2],
        "every session not ended"
    );
    assert_eq!(
        list(in_states(&[SessionState::Ended, SessionState::Closing])).await,
        [a1, a3]
    );
    assert_eq!(
        list(in_states(&[
            SessionState::Ended,
            SessionState::Open,
            SessionState::Closing
        ]))
        .await,
        [a1, a2, b1, a3, b2]
    );
    assert_eq!(
        list(SessionQuery {
            user: Some(user("A")),
            kind: Some(SessionKind::Clientless),
            ..in_states(&[SessionState::Open, SessionState::Closing])
        })
        .await,
        [a2, a3]
    );

    // Paging: pages of two, each after the previous page's last id.
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_sessions(&SessionQuery {
                after,
                limit: 2,
                ..SessionQuery::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        after = page.last().map(|s| s.id);
        pages.push(ids(&page));
    }
    assert_eq!(pages, [vec![a1, a2], vec![b1, a3], vec![b2]]);
    let filtered_page = store
        .list_sessions(&SessionQuery {
            user: Some(user("A")),
            after: Some(a1),
            limit: 1,
            ..SessionQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&filtered_page), [a2]);
    assert!(store.list_sessions(&all(0)).await.unwrap().is_empty());
}

async fn list_sessions_newest_first_and_by_start_time(f: Fixture) {
    let store = &*f.store;
    let started = [10, 20, 30, 40];
    let mut made = Vec::new();
    for (n, micros) in started.into_iter().enumerate() {
        let name = if n % 2 == 0 { "A" } else { "B" };
        made.push(clientless_at(store, name, at(micros), "node-1").await);
    }
    let [s10, s20, s30, s40] = made[..] else {
        unreachable!()
    };
    let list = |q: SessionQuery| async move { ids(&store.list_sessions(&q).await.unwrap()) };
    let newest = SessionQuery {
        newest_first: true,
        limit: 100,
        ..SessionQuery::default()
    };
    assert_eq!(list(newest.clone()).await, [s40, s30, s20, s10]);
    assert_eq!(
        list(SessionQuery {
            user: Some(user("A")),
            ..newest.clone()
        })
        .await,
        [s30, s10]
    );

    // Newest-first pages go on towards older sessions.
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = list(SessionQuery {
            after,
            limit: 3,
            ..newest.clone()
        })
        .await;
        let Some(&last) = page.last() else { break };
        after = Some(last);
        pages.push(page);
    }
    assert_eq!(pages, [vec![s40, s30, s20], vec![s10]]);

    // From (inclusive) and before (exclusive), in either order.
    let between = SessionQuery {
        started_after: Some(at(20)),
        started_before: Some(at(40)),
        limit: 100,
        ..SessionQuery::default()
    };
    assert_eq!(list(between.clone()).await, [s20, s30]);
    assert_eq!(
        list(SessionQuery {
            newest_first: true,
            ..between.clone()
        })
        .await,
        [s30, s20]
    );
    assert_eq!(
        list(SessionQuery {
            started_before: None,
            ..between.clone()
        })
        .await,
        [s20, s30, s40]
    );
    assert_eq!(
        list(SessionQuery {
            user: Some(user("B")),
            started_after: Some(at(21)),
            ..between
        })
        .await,
        [] as [sessiond::model::SessionId; 0]
    );
}
