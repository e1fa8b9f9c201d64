//! The store's operations, written once for every backend: each locks and
//! reads what a rule depends on through the transaction's primitives
//! ([`WriteTx`]), asks the domain ([`crate::model`]), and writes its answer.
//! The store traits are implemented here for every [`Backend`].

use async_trait::async_trait;

use super::backend::{Backend, End, WriteTx};
use super::{
    EventQuery, EventStore, LedgerHead, NodeStore, Pending, Recovered, RunStore, ScopeStore,
    SessionQuery, SessionStore, StartedRun, StatsStore, StoreStats, StoredEvent, UserCheck,
};
use crate::model::{
    Change, EndReason, Error, EventKind, Expiry, ModuleId, ModuleRun, NewSession, PoppedScope,
    PushedScope, Result, RunId, RunOutcome, RunProcess, ScopeId, Session, SessionFacts, SessionId,
    Timestamp, UserContext, UserId, admit,
};

/// Creates a session, admitted by the per-user limit ([`admit`]).
///
/// # Errors
/// [`Error::TooManySessions`].
pub async fn create(tx: &mut dyn WriteTx, new: NewSession) -> Result<Session> {
    if new.max_open_per_user.is_some() {
        let open = tx.lock_user_and_count_unended(&new.user).await?;
        admit(&new, open)?;
    }
    let id = tx.insert_session(&new).await?;
    let session = new.into_session(id);
    tx.record(Change::started(&session));
    Ok(session)
}

/// Ends a session as [`End::decide`] says; returns it as it is now.
///
/// # Errors
/// [`Error::SessionNotFound`], [`Error::SessionNotClientless`].
pub async fn end(tx: &mut dyn WriteTx, end: End) -> Result<Session> {
    change(tx, end.id, end.now, |session| end.decide(session)).await
}

/// Locks session `id`, asks `rule` what it becomes (`None`: it stays as it
/// is), writes that and records what it did to the session's life (closing,
/// ended) as of `now`; returns the session as it is now.
async fn change(
    tx: &mut dyn WriteTx,
    id: SessionId,
    now: Timestamp,
    rule: impl FnOnce(&Session) -> Result<Option<Session>>,
) -> Result<Session> {
    let session = tx.lock_session(id).await?;
    match rule(&session)? {
        Some(changed) => {
            tx.write_session(&session, &changed).await?;
            if let Some(event) = Change::of_life(&session, &changed, now) {
                tx.record(event);
            }
            Ok(changed)
        }
        None => Ok(session),
    }
}

/// Crash recovery of `node`: locks its clientless sessions that have not
/// ended (so that no run starts or concludes in between), interrupts their
/// running runs and recovers the sessions, as the domain says.
async fn recover(
    tx: &mut dyn WriteTx,
    node: &str,
    reason: EndReason,
    now: Timestamp,
) -> Result<Recovered> {
    let sessions = tx.lock_unended_clientless_of_node(node).await?;
    let mut recovered = Recovered::default();
    for run in tx.running_runs_of_node(node).await? {
        if let Some(interrupted) = run.interrupt(now) {
            tx.write_run(&interrupted).await?;
            if let Some(session) = sessions.iter().find(|s| s.id == run.session_id) {
                tx.record(Change::of_run(session, &interrupted, now));
            }
            recovered.runs += 1;
        }
    }
    for session in sessions {
        if let Some(ended) = session.recover(reason, now) {
            tx.write_session(&session, &ended).await?;
            if let Some(event) = Change::of_life(&session, &ended, now) {
                tx.record(event);
            }
            recovered.sessions += 1;
        }
    }
    Ok(recovered)
}

#[async_trait]
impl<B: Backend> SessionStore for B {
    async fn create_session(&self, new: NewSession) -> Result<Session> {
        Backend::create_session(self, new).await
    }

    async fn session(&self, id: SessionId) -> Result<Session> {
        Backend::session(self, id).await
    }

    async fn session_facts(&self, id: SessionId) -> Result<SessionFacts> {
        Backend::session_facts(self, id).await
    }

    async fn list_sessions(&self, query: &SessionQuery) -> Result<Vec<Session>> {
        Backend::list_sessions(self, query).await
    }

    async fn touch_session(&self, id: SessionId, now: Timestamp) -> Result<Session> {
        self.write(Box::new(move |tx| {
            Box::pin(change(tx, id, now, move |s| s.touch(now).map(Some)))
        }))
        .await
    }

    async fn begin_closing(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Session> {
        self.write(Box::new(move |tx| {
            Box::pin(async move {
                let session = tx.lock_session(id).await?;
                let Some(closing) = session.begin_closing(now)? else {
                    return Ok(session);
                };
                tx.write_session(&session, &closing).await?;
                // The record keeps no reason until it ends; the event says
                // why it will.
                tx.record(Change::closing(&closing, reason, now));
                Ok(closing)
            })
        }))
        .await
    }

    async fn end_clientless_session(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Session> {
        Backend::end_session(self, End::clientless(id, reason, now)).await
    }

    async fn end_session(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Session> {
        Backend::end_session(self, End::any(id, reason, now)).await
    }

    async fn unended_clientless_sessions(&self, node: &str) -> Result<Vec<SessionId>> {
        Backend::unended_clientless_sessions(self, node).await
    }

    async fn expired_sessions(&self, node: &str, expiry: &Expiry) -> Result<Vec<SessionId>> {
        Backend::expired_sessions(self, node, expiry).await
    }

    async fn begin_closing_expired(
        &self,
        id: SessionId,
        expiry: &Expiry,
        now: Timestamp,
    ) -> Result<Option<EndReason>> {
        let expiry = *expiry;
        self.write(Box::new(move |tx| {
            Box::pin(async move {
                let session = tx.lock_session(id).await?;
                let running = tx.has_running_run(id).await?;
                let Some((reason, closing)) = expiry.close(&session, running) else {
                    return Ok(None);
                };
                tx.write_session(&session, &closing).await?;
                tx.record(Change::closing(&closing, reason, now));
                Ok(Some(reason))
            })
        }))
        .await
    }
}

#[async_trait]
impl<B: Backend> ScopeStore for B {
    async fn user_context(&self, id: SessionId) -> Result<UserContext> {
        Backend::session(self, id).await?.user_context()
    }

    async fn set_user_context(
        &self,
        id: SessionId,
        user: UserId,
        now: Timestamp,
    ) -> Result<UserId> {
        self.write(Box::new(move |tx| {
            Box::pin(async move {
                let session = tx.lock_session(id).await?;
                let changed = session.set_user_context(user, now)?;
                tx.write_session(&session, &changed).await?;
                tx.record(Change::user_context(
                    EventKind::UserContextSet,
                    &changed,
                    None,
                    now,
                ));
                Ok(session.effective_user)
            })
        }))
        .await
    }

    async fn push_user_context(
        &self,
        id: SessionId,
        user: UserId,
        now: Timestamp,
    ) -> Result<PushedScope> {
        self.write(Box::new(move |tx| {
            Box::pin(async move {
                let session = tx.lock_session(id).await?;
                let (scope, pushed) = session.push_user_context(user, now)?;
                let scope_id = tx.insert_scope(&scope).await?;
                tx.write_session(&session, &pushed).await?;
                tx.record(Change::user_context(
                    EventKind::UserContextPushed,
                    &pushed,
                    Some(scope_id),
                    now,
                ));
                Ok(PushedScope {
                    scope_id,
                    previous_user: scope.previous_user,
                    depth: scope.depth,
                })
            })
        }))
        .await
    }

    async fn pop_user_context_as(
        &self,
        id: SessionId,
        scope: ScopeId,
        now: Timestamp,
        check: UserCheck,
    ) -> Result<PoppedScope> {
        self.write(Box::new(move |tx| {
            Box::pin(async move {
                let session = tx.lock_session(id).await?;
                let stack = tx.scopes(id).await?;
                let (popped, restored) = session.pop_user_context(&stack, scope, now)?;
                if let Some(leaving) = stack.iter().find(|s| s.id == scope) {
                    check(&leaving.user)?;
                }
                tx.delete_scope(scope).await?;
                tx.write_session(&session, &restored).await?;
                tx.record(Change::user_context(
                    EventKind::UserContextPopped,
                    &restored,
                    Some(scope),
                    now,
                ));
                Ok(popped)
            })
        }))
        .await
    }
}

#[async_trait]
impl<B: Backend> RunStore for B {
    async fn start_run_as(
        &self,
        session_id: SessionId,
        module: &ModuleId,
        parameters: &serde_json::Map<String, serde_json::Value>,
        now: Timestamp,
        check: UserCheck,
    ) -> Result<StartedRun> {
        let (module, parameters) = (module.clone(), parameters.clone());
        self.write(Box::new(move |tx| {
            Box::pin(async move {
                let session = tx.lock_session(session_id).await?;
                let (run, active) = session.start_run(module, parameters, now)?;
                check(&run.acting_user)?;
                let id = tx.insert_run(&run).await?;
                tx.write_session(&session, &active).await?;
                let run = run.into_run(id);
                tx.record(Change::of_run(&active, &run, now));
                Ok(StartedRun {
                    run,
                    session: active,
                })
            })
        }))
        .await
    }

    async fn finish_run(
        &self,
        run_id: RunId,
        outcome: &RunOutcome,
        now: Timestamp,
    ) -> Result<ModuleRun> {
        let outcome = outcome.clone();
        self.write(Box::new(move |tx| {
            Box::pin(async move {
                // The session first, as every writer locks: a run's session
                // never changes, so reading it unlocked is safe.
                let session_id = tx.run(run_id).await?.session_id;
                let session = tx.lock_session(session_id).await?;
                let run = tx.run(run_id).await?;
                // Its processes are gone: the run's module killed its group.
                tx.set_run_process(run_id, None).await?;
                let Some(concluded) = run.conclude(outcome, now) else {
                    return Ok(run);
                };
                tx.write_run(&concluded).await?;
                let touched = session.touched(now);
                tx.write_session(&session, &touched).await?;
                tx.record(Change::of_run(&touched, &concluded, now));
                Ok(concluded)
            })
        }))
        .await
    }

    async fn run(&self, run_id: RunId) -> Result<ModuleRun> {
        Backend::run(self, run_id).await
    }

    async fn latest_run(&self, session_id: SessionId, module: &ModuleId) -> Result<ModuleRun> {
        match Backend::latest_run(self, session_id, module).await? {
            Some(run) => Ok(run),
            None => {
                // Tell an unknown session from a module never opened in it.
                Backend::session_facts(self, session_id).await?;
                Err(Error::ModuleNotOpened {
                    session_id,
                    module_id: module.clone(),
                })
            }
        }
    }

    async fn record_run_process(&self, run: RunId, process: &RunProcess) -> Result<()> {
        let process = process.clone();
        self.write(Box::new(move |tx| {
            Box::pin(async move { tx.set_run_process(run, Some(&process)).await })
        }))
        .await
    }

    async fn run_processes_of_node(&self, node: &str) -> Result<Vec<(RunId, RunProcess)>> {
        let node = node.to_owned();
        self.write(Box::new(move |tx| {
            Box::pin(async move { tx.run_processes_of_node(&node).await })
        }))
        .await
    }

    async fn forget_run_processes(&self, runs: &[RunId]) -> Result<()> {
        let runs = runs.to_vec();
        self.write(Box::new(move |tx| {
            Box::pin(async move {
                for run in runs {
                    tx.set_run_process(run, None).await?;
                }
                Ok(())
            })
        }))
        .await
    }
}

#[async_trait]
impl<B: Backend> NodeStore for B {
    async fn renew_node(&self, node: &str, endpoint: &str, expires: Timestamp) -> Result<bool> {
        let (node, endpoint) = (node.to_owned(), endpoint.to_owned());
        self.write(Box::new(move |tx| {
            Box::pin(async move { tx.renew_node(&node, &endpoint, expires).await })
        }))
        .await
    }

    async fn node_endpoint(&self, node: &str, now: Timestamp) -> Result<Option<String>> {
        Backend::node_endpoint(self, node, now).await
    }

    async fn recover_node(
        &self,
        node: &str,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<Recovered> {
        let node = node.to_owned();
        self.write(Box::new(move |tx| {
            Box::pin(async move { recover(tx, &node, reason, now).await })
        }))
        .await
    }

    async fn take_over_lost_nodes(
        &self,
        taker: &str,
        now: Timestamp,
        reason: EndReason,
    ) -> Result<Vec<(String, Recovered)>> {
        let mut taken = Vec::new();
        loop {
            // One node per transaction: replicas looking at the same time
            // take over different nodes, never one twice.
            let taker = taker.to_owned();
            let one = self
                .write(Box::new(move |tx| {
                    Box::pin(async move {
                        let Some(node) = tx.lock_lost_node(&taker, now).await? else {
                            return Ok(None);
                        };
                        let recovered = recover(tx, &node, reason, now).await?;
                        tx.delete_node(&node).await?;
                        Ok(Some((node, recovered)))
                    })
                }))
                .await?;
            match one {
                Some(node) => taken.push(node),
                None => return Ok(taken),
            }
        }
    }

    async fn remove_node(&self, node: &str) -> Result<()> {
        let node = node.to_owned();
        self.write(Box::new(move |tx| {
            Box::pin(async move { tx.delete_node(&node).await })
        }))
        .await
    }
}

#[async_trait]
impl<B: Backend> EventStore for B {
    async fn record_events(&self, changes: Vec<Pending>) -> Result<()> {
        self.write(Box::new(move |tx| {
            Box::pin(async move {
                for (change, cause) in changes {
                    tx.record_as(change, cause);
                }
                Ok(())
            })
        }))
        .await
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>> {
        Backend::events(self, query).await
    }

    async fn ledger_head(&self) -> Result<LedgerHead> {
        Backend::ledger_head(self).await
    }

    async fn unended_sessions_at_head(&self, query: &SessionQuery) -> Result<(i64, Vec<Session>)> {
        Backend::unended_sessions_at_head(self, query).await
    }

    async fn compact_events(&self, before: Timestamp, limit: u32) -> Result<u64> {
        self.write(Box::new(move |tx| {
            Box::pin(async move { tx.compact_events(before, limit).await })
        }))
        .await
    }

    fn commits(&self) -> std::sync::Arc<crate::store::Commits> {
        Backend::commits(self)
    }
}

#[async_trait]
impl<B: Backend> StatsStore for B {
    async fn stats(&self) -> Result<StoreStats> {
        Backend::stats(self).await
    }
}
