//! `SessionService` session calls: whose session is this, the records, and
//! interactive and clientless sessions.

use std::time::{Duration, SystemTime};

use sessiond_proto::v1 as pb;

use super::{Call, Client};
use crate::error::{Error, ErrorContext, Result};
use crate::guard::ClientlessSession;
use crate::ids::SessionId;
use crate::retry::CallKind;
use crate::session::{SessionFilter, SessionInfo, SessionPage};
use crate::time::{required_time, to_proto_duration};

/// The longest grace the contract allows; a close without a grace may take
/// up to the server's default grace, which is at most this.
const MAX_GRACE: Duration = Duration::from_secs(3600);

impl Client {
    /// The user a session belongs to (the seed's `get_session_user`);
    /// answered for ended sessions too.
    ///
    /// # Errors
    /// [`Error::SessionNotFound`] when there is no such session;
    /// [`Error::InvalidArgument`] for an id ≤ 0.
    pub async fn get_session_user(&self, session_id: SessionId) -> Result<String> {
        let call = Call::new(
            "GetSessionUser",
            CallKind::Read,
            ErrorContext::session(session_id),
        );
        let request = pb::GetSessionUserRequest {
            session_id: session_id.get(),
        };
        let response = self
            .unary(call, request, |r| {
                let mut c = self.sessions();
                async move { c.get_session_user(r).await }
            })
            .await?;
        Ok(response.user)
    }

    /// The full record of a session, ended or not (the seed's
    /// `get_session_info`).
    ///
    /// # Errors
    /// [`Error::SessionNotFound`] when there is no such session;
    /// [`Error::InvalidArgument`] for an id ≤ 0.
    pub async fn get_session_info(&self, session_id: SessionId) -> Result<SessionInfo> {
        let call = Call::new(
            "GetSessionInfo",
            CallKind::Read,
            ErrorContext::session(session_id),
        );
        let request = pb::GetSessionInfoRequest {
            session_id: session_id.get(),
        };
        let response = self
            .unary(call, request, |r| {
                let mut c = self.sessions();
                async move { c.get_session_info(r).await }
            })
            .await?;
        SessionInfo::from_response(response.session)
    }

    /// One page of the sessions `filter` matches, oldest first.
    /// `page_size` 0 means the server's default (100); at most 1000.
    /// `page_token` is the previous page's
    /// [`next_page_token`](SessionPage::next_page_token), with the same
    /// filter.
    ///
    /// The page is checked against the filter's states too, as a server
    /// older than [`SessionFilter::states`] ignores them: with such a server
    /// a page may hold fewer sessions than `page_size` (even none) and still
    /// have a next page.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad user filter, page size or token.
    pub async fn list_sessions_page(
        &self,
        filter: &SessionFilter,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<SessionPage> {
        let call = Call::new(
            "ListSessions",
            CallKind::Read,
            ErrorContext {
                user: filter.user.as_deref(),
                ..ErrorContext::default()
            },
        );
        let request = pb::ListSessionsRequest {
            user: filter.user.clone().unwrap_or_default(),
            kind: filter.kind.map_or(0, |k| k.wire()),
            state: filter.state.map_or(0, |s| s.wire()),
            page_size: i32::try_from(page_size).unwrap_or(i32::MAX),
            page_token: page_token.unwrap_or_default().to_owned(),
            states: filter.states.iter().map(|s| s.wire()).collect(),
            started_after: filter.started_after.map(prost_types::Timestamp::from),
            started_before: filter.started_before.map(prost_types::Timestamp::from),
            newest_first: filter.newest_first,
        };
        let response = self
            .unary(call, request, |r| {
                let mut c = self.sessions();
                async move { c.list_sessions(r).await }
            })
            .await?;
        Ok(SessionPage {
            sessions: response
                .sessions
                .into_iter()
                .map(SessionInfo::try_from)
                .filter(|info| match info {
                    Ok(session) => filter.wants_state(session.state),
                    Err(_) => true,
                })
                .collect::<Result<_>>()?,
            next_page_token: Some(response.next_page_token).filter(|t| !t.is_empty()),
        })
    }

    /// Every session `filter` matches, oldest first (newest first if it
    /// says so), reading page after page.
    ///
    /// # Errors
    /// As [`Client::list_sessions_page`].
    pub async fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionInfo>> {
        let mut sessions = Vec::new();
        let mut token = None;
        loop {
            let page = self.list_sessions_page(filter, 0, token.as_deref()).await?;
            sessions.extend(page.sessions);
            match page.next_page_token {
                Some(next) if Some(&next) != token.as_ref() => token = Some(next),
                Some(_) => {
                    return Err(Error::invalid_response(
                        "ListSessions returned the same page token twice",
                    ));
                }
                None => return Ok(sessions),
            }
        }
    }

    /// Registers a new interactive session for `user` (a client logged in);
    /// `client` describes the client (program, version, address) and may be
    /// empty.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad user or description;
    /// [`Error::TooManySessions`] when the user has as many open sessions
    /// as the server allows.
    pub async fn start_session(
        &self,
        user: impl Into<String>,
        client: impl Into<String>,
    ) -> Result<SessionInfo> {
        let user = user.into();
        let call = Call::new("StartSession", CallKind::Write, ErrorContext::user(&user));
        let request = pb::StartSessionRequest {
            user: user.clone(),
            client: client.into(),
        };
        let response = self
            .unary(call, request, |r| {
                let mut c = self.sessions();
                async move { c.start_session(r).await }
            })
            .await?;
        SessionInfo::from_response(response.session)
    }

    /// Records activity on an open session (resets its idle clock); returns
    /// the activity time now recorded.
    ///
    /// # Errors
    /// [`Error::SessionNotFound`]; [`Error::SessionEnded`] on an ended
    /// session.
    pub async fn touch_session(&self, session_id: SessionId) -> Result<SystemTime> {
        let call = Call::new(
            "TouchSession",
            CallKind::IdempotentWrite,
            ErrorContext::session(session_id),
        );
        let request = pb::TouchSessionRequest {
            session_id: session_id.get(),
        };
        let response = self
            .unary(call, request, |r| {
                let mut c = self.sessions();
                async move { c.touch_session(r).await }
            })
            .await?;
        required_time("last_activity_time", response.last_activity_time)
    }

    /// Ends a session (closed by client). A clientless session is closed
    /// gracefully with the server's default grace. Idempotent: an ended
    /// session's record is returned unchanged.
    ///
    /// # Errors
    /// [`Error::SessionNotFound`] when there is no such session.
    pub async fn end_session(&self, session_id: SessionId) -> Result<SessionInfo> {
        let call = Call::new(
            "EndSession",
            CallKind::IdempotentWrite,
            ErrorContext::session(session_id),
        )
        .extra_time(MAX_GRACE);
        let request = pb::EndSessionRequest {
            session_id: session_id.get(),
        };
        let response = self
            .unary(call, request, |r| {
                let mut c = self.sessions();
                async move { c.end_session(r).await }
            })
            .await?;
        SessionInfo::from_response(response.session)
    }

    /// Opens a clientless session for `user` and returns its record. The
    /// session stays open until it is closed (or the server's idle timeout
    /// or maximum lifetime ends it); prefer [`Client::clientless_session`],
    /// whose guard closes it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad user; [`Error::TooManySessions`].
    pub async fn open_clientless_session(&self, user: impl Into<String>) -> Result<SessionInfo> {
        let user = user.into();
        let call = Call::new(
            "OpenClientlessSession",
            CallKind::Write,
            ErrorContext::user(&user),
        );
        let request = pb::OpenClientlessSessionRequest { user: user.clone() };
        let response = self
            .unary(call, request, |r| {
                let mut c = self.sessions();
                async move { c.open_clientless_session(r).await }
            })
            .await?;
        SessionInfo::from_response(response.session)
    }

    /// Opens a clientless session for `user` (the seed's
    /// `ClientlessSession('R41')`), as a guard that closes it: call
    /// [`ClientlessSession::close`]; if the guard is dropped instead, the
    /// session is closed in the background.
    ///
    /// # Errors
    /// As [`Client::open_clientless_session`].
    pub async fn clientless_session(&self, user: impl Into<String>) -> Result<ClientlessSession> {
        let info = self.open_clientless_session(user).await?;
        Ok(ClientlessSession::new(self.clone(), info))
    }

    /// Shuts a clientless session down gracefully and returns its ended
    /// record: no new modules, running ones get `grace` (`None`: the
    /// server's default) to conclude, the rest are cancelled. Idempotent: an
    /// ended session's record is returned unchanged. The call's deadline is
    /// extended by the grace.
    ///
    /// # Errors
    /// [`Error::SessionNotFound`]; [`Error::SessionNotClientless`] for an
    /// interactive session; [`Error::InvalidArgument`] for a grace over one
    /// hour.
    pub async fn close_clientless_session(
        &self,
        session_id: SessionId,
        grace: Option<Duration>,
    ) -> Result<SessionInfo> {
        self.close_clientless(session_id, grace, true).await
    }

    /// [`Client::close_clientless_session`]; `settle: false` for the
    /// clean-up of a dropped guard, which must not wait for itself.
    pub(crate) async fn close_clientless(
        &self,
        session_id: SessionId,
        grace: Option<Duration>,
        settle: bool,
    ) -> Result<SessionInfo> {
        let call = Call::new(
            "CloseClientlessSession",
            CallKind::IdempotentWrite,
            ErrorContext::session(session_id),
        )
        .extra_time(grace.unwrap_or(MAX_GRACE))
        .settle(settle);
        let request = pb::CloseClientlessSessionRequest {
            session_id: session_id.get(),
            grace: grace.map(to_proto_duration),
        };
        let response = self
            .unary(call, request, |r| {
                let mut c = self.sessions();
                async move { c.close_clientless_session(r).await }
            })
            .await?;
        SessionInfo::from_response(response.session)
    }
}
