//! Who may do what: the access rules applied to every call.
//!
//! [`Access`] holds the server's [`Policy`] (reloadable) and decides, for a
//! caller and an [`Action`], whether the call goes on. Without
//! authentication there is nothing to enforce and every caller may do
//! everything; with it, an anonymous caller is refused and an
//! authenticated one gets what the policy grants.
//!
//! Decisions, in the order they are made:
//! - A session the caller may not read is [`Error::SessionNotFound`], the
//!   same as a session that does not exist: a caller learns nothing about
//!   sessions it may not read, whatever it asks.
//! - A module run's credential reaches its own session only: every other
//!   session does not exist for it, and it may not open, touch or end
//!   sessions; in its session it may read, act as users and run modules as
//!   far as the policy allows the caller that opened the module.
//! - Anything else the policy does not grant is
//!   [`Error::PermissionDenied`], naming the permission and, when acting as
//!   someone, the user.

mod policy;

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

pub use policy::{Policy, PolicyError, Reach};

use crate::model::{Denial, Error, ModuleId, Permission, Result, SessionId, UserId};
use crate::principal::{Identity, Principal};
use crate::store::{UserCheck, allow_anyone};

/// What a caller asks to do.
#[derive(Clone, Copy, Debug)]
pub enum Action<'a> {
    /// Read a session.
    ReadSession(Session<'a>),
    /// Open a session (interactive or clientless) for a user.
    Open {
        /// Interactive or clientless.
        kind: crate::model::SessionKind,
        /// For whom.
        user: &'a UserId,
    },
    /// Record activity on a session.
    TouchSession(Session<'a>),
    /// End or close a session.
    EndSession(Session<'a>),
    /// Set, push or pop `user` as a session's user context.
    ActAs(Session<'a>, &'a UserId),
    /// Run `module` in a session, acting as `user` (its user context).
    RunModule(Session<'a>, &'a UserId, &'a ModuleId),
    /// Read the audit trail.
    ReadAudit,
}

/// An action on one session, before its facts are known (see
/// [`crate::sessions::Sessions::authorize`]).
#[derive(Clone, Copy, Debug)]
pub enum OnSession<'a> {
    /// Read it.
    Read,
    /// Record activity on it.
    Touch,
    /// End or close it.
    End,
    /// Set or push this user as its user context.
    ActAs(&'a UserId),
}

impl<'a> OnSession<'a> {
    /// The action on `session`.
    #[must_use]
    pub fn on(self, session: Session<'a>) -> Action<'a> {
        match self {
            Self::Read => Action::ReadSession(session),
            Self::Touch => Action::TouchSession(session),
            Self::End => Action::EndSession(session),
            Self::ActAs(user) => Action::ActAs(session, user),
        }
    }
}

/// The facts about a session that access depends on.
#[derive(Clone, Copy, Debug)]
pub struct Session<'a> {
    /// Its id.
    pub id: SessionId,
    /// Its user (who it belongs to; never changes).
    pub user: &'a UserId,
}

/// The server's access rules: enforced with a policy, or open to every
/// caller when the server runs without authentication.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// `None` without authentication.
    enforced: Option<Arc<Enforced>>,
}

#[derive(Debug)]
struct Enforced {
    policy: ArcSwap<Policy>,
    /// Where the policy is reloaded from.
    file: Option<PathBuf>,
}

/// Which sessions a caller may list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listable {
    /// Every session.
    All,
    /// Only those of this user.
    OfUser(UserId),
    /// Only this one.
    Only(SessionId),
    /// None.
    Nothing,
}

impl Access {
    /// No authentication: every caller may do everything.
    #[must_use]
    pub fn open() -> Self {
        Self::default()
    }

    /// Authentication on: callers get what `policy` grants; `file` is where
    /// [`Access::reload`] reads it again.
    #[must_use]
    pub fn enforced(policy: Policy, file: Option<PathBuf>) -> Self {
        Self {
            enforced: Some(Arc::new(Enforced {
                policy: ArcSwap::from_pointee(policy),
                file,
            })),
        }
    }

    /// Whether callers must authenticate.
    #[must_use]
    pub fn is_enforced(&self) -> bool {
        self.enforced.is_some()
    }

    /// Reads the policy file again and uses it; on an error the policy in
    /// use stays. Returns whether there was a file to read.
    ///
    /// # Errors
    /// [`PolicyError`] naming the file, line and problem.
    pub fn reload(&self) -> std::result::Result<bool, PolicyError> {
        let Some(enforced) = &self.enforced else {
            return Ok(false);
        };
        let Some(file) = &enforced.file else {
            return Ok(false);
        };
        let policy = Policy::load(file)?;
        enforced.policy.store(Arc::new(policy));
        Ok(true)
    }

    /// Whether `caller` may take `action`: `Ok`, or the error the call
    /// fails with (see the module's documentation).
    ///
    /// # Errors
    /// [`Error::Unauthenticated`], [`Error::SessionNotFound`],
    /// [`Error::PermissionDenied`].
    pub fn check(&self, caller: &Principal, action: Action<'_>) -> Result<()> {
        let Some(enforced) = &self.enforced else {
            return Ok(());
        };
        let identity = authenticated(caller)?;
        decide(&enforced.policy.load(), identity, action)
    }

    /// A check, for a store to run inside the transaction that starts a
    /// run, that `caller` may run `module` in session `id` (of
    /// `session_user`) as the user the transaction finds in its context.
    #[must_use]
    pub fn run_check(
        &self,
        caller: &Principal,
        id: SessionId,
        session_user: UserId,
        module: ModuleId,
    ) -> UserCheck {
        self.user_check(caller, id, session_user, Some(module))
    }

    /// A check, for a store to run inside the transaction that pops a
    /// scope, that `caller` may act as the user that scope acts as, in
    /// session `id` (of `session_user`).
    #[must_use]
    pub fn act_as_check(
        &self,
        caller: &Principal,
        id: SessionId,
        session_user: UserId,
    ) -> UserCheck {
        self.user_check(caller, id, session_user, None)
    }

    fn user_check(
        &self,
        caller: &Principal,
        id: SessionId,
        session_user: UserId,
        module: Option<ModuleId>,
    ) -> UserCheck {
        if self.enforced.is_none() {
            return allow_anyone();
        }
        let (access, caller) = (self.clone(), caller.clone());
        Arc::new(move |user: &UserId| {
            let session = Session {
                id,
                user: &session_user,
            };
            let action = match &module {
                Some(module) => Action::RunModule(session, user, module),
                None => Action::ActAs(session, user),
            };
            access.check(&caller, action)
        })
    }

    /// Which sessions `caller` may list: every session when it may read
    /// any; else its own, when it may read them (sessions it may read only
    /// because it may open them for their users are read one by one, not
    /// listed); a module run's credential, its session.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`].
    pub fn listable(&self, caller: &Principal) -> Result<Listable> {
        let Some(enforced) = &self.enforced else {
            return Ok(Listable::All);
        };
        let identity = authenticated(caller)?;
        if let Some(only) = identity.confined_to {
            return Ok(Listable::Only(only));
        }
        let policy = enforced.policy.load();
        if policy.may_read_any(identity) {
            return Ok(Listable::All);
        }
        Ok(UserId::parse("subject", identity.subject.clone())
            .ok()
            .filter(|user| policy.may_read(identity, user))
            .map_or(Listable::Nothing, Listable::OfUser))
    }
}

/// The identity of an authenticated caller.
fn authenticated(caller: &Principal) -> Result<&Identity> {
    caller
        .identity()
        .ok_or_else(|| Error::Unauthenticated("this server requires a credential".to_owned()))
}

/// The decision for an authenticated caller.
fn decide(policy: &Policy, caller: &Identity, action: Action<'_>) -> Result<()> {
    let denied = |permission,
                  session: Option<SessionId>,
                  user: Option<&UserId>,
                  module: Option<&ModuleId>| {
        Err(Error::PermissionDenied(Box::new(Denial {
            permission,
            subject: caller.subject.clone(),
            session_id: session,
            user: user.cloned(),
            module_id: module.cloned(),
        })))
    };
    let session = match action {
        Action::ReadSession(s)
        | Action::TouchSession(s)
        | Action::EndSession(s)
        | Action::ActAs(s, _)
        | Action::RunModule(s, _, _) => Some(s),
        Action::Open { .. } | Action::ReadAudit => None,
    };
    // Reading first: a session the caller may not read does not exist for it.
    if let Some(session) = session {
        let readable = match caller.confined_to {
            Some(own) => own == session.id,
            None => policy.may_read(caller, session.user),
        };
        if !readable {
            return Err(Error::SessionNotFound {
                session_id: session.id,
            });
        }
    }
    let confined = caller.confined_to.is_some();
    match action {
        Action::ReadSession(_) => Ok(()),
        Action::Open { kind, user } => {
            let permission = match kind {
                crate::model::SessionKind::Interactive => Permission::StartSession,
                crate::model::SessionKind::Clientless => Permission::OpenClientlessSession,
            };
            if !confined && policy.may_open(caller, kind, user) {
                Ok(())
            } else {
                denied(permission, None, Some(user), None)
            }
        }
        Action::TouchSession(s) => {
            if !confined && policy.may_touch(caller, s.user) {
                Ok(())
            } else {
                denied(Permission::TouchSession, Some(s.id), None, None)
            }
        }
        Action::EndSession(s) => {
            if !confined && policy.may_end(caller, s.user) {
                Ok(())
            } else {
                denied(Permission::EndSession, Some(s.id), None, None)
            }
        }
        Action::ActAs(s, user) => {
            if policy.may_act_as(caller, user) {
                Ok(())
            } else {
                denied(Permission::ActAs, Some(s.id), Some(user), None)
            }
        }
        Action::RunModule(s, user, module) => {
            if policy.may_run(caller, user, module) {
                Ok(())
            } else {
                denied(Permission::RunModule, Some(s.id), Some(user), Some(module))
            }
        }
        Action::ReadAudit => {
            if !confined && policy.may_read_audit(caller) {
                Ok(())
            } else {
                denied(Permission::ReadAudit, None, None, None)
            }
        }
    }
}

impl Access {
    /// Reads the access policy again at every SIGHUP until `stop`; an invalid
    /// policy is reported and the one in use stays.
    pub async fn reload_on_hangup(self, stop: tokio_util::sync::CancellationToken) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hangups) = signal(SignalKind::hangup()) else {
                tracing::warn!("cannot listen for SIGHUP; the policy will not be reloaded");
                return;
            };
            loop {
                tokio::select! {
                    _ = hangups.recv() => match self.reload() {
                        Ok(true) => tracing::info!("access policy reloaded"),
                        Ok(false) => tracing::info!("SIGHUP: no policy file to reload"),
                        Err(error) => tracing::error!(error = %error, "access policy not reloaded; the previous one stays"),
                    },
                    () = stop.cancelled() => return,
                }
            }
        }
        #[cfg(not(unix))]
        stop.cancelled().await;
    }
}
