//! The SQLite store's memory of session records, so that reading a session
//! (`GetSessionInfo`, `GetUserContext`) costs no query.
//!
//! It can be exact because one process owns the database file (the store
//! holds its lock, [`super::ownership`]) and every write goes through the
//! one writer thread: after each commit, before any caller of that batch
//! hears back, the writer applies the batch's changes here — the new record
//! of each session it changed. So a caller always reads its own writes, and the writer itself
//! checks its writes' preconditions against these records
//! ([`super::writer::Transaction`]).
//!
//! Readers that miss read the database and *offer* the record. An offer is
//! refused once any commit happened since the reader began (the record may
//! predate it); one accepted before such a commit is overwritten or
//! forgotten when the writer applies that commit's changes, which it does
//! under the same shard lock. Eviction (a full shard is emptied) only
//! forgets, so it cannot make a record stale either.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::model::{Session, SessionId};

/// Shards, each with its own lock, so that concurrent reads rarely wait.
const SHARDS: usize = 16;

/// Session records by id, bounded, exact (see the module documentation).
#[derive(Debug)]
pub struct SessionCache {
    /// The records, sharded by id.
    shards: Box<[Mutex<HashMap<SessionId, Session>>]>,
    /// The most records one shard keeps.
    per_shard: usize,
    /// How many batches the writer has applied.
    epoch: AtomicU64,
}

impl SessionCache {
    /// A cache of up to about `capacity` records.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            epoch: AtomicU64::new(0),
        }
    }

    /// The record of `id`, if kept.
    pub fn get(&self, id: SessionId) -> Option<Session> {
        self.shard(id).get(&id).cloned()
    }

    /// The current epoch: read it before reading the database, then pass
    /// it to [`SessionCache::offer`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Keeps `session`, read from the database after [`SessionCache::epoch`]
    /// returned `epoch`, unless a batch was applied since or a record is
    /// already kept.
    pub fn offer(&self, session: Session, epoch: u64) {
        let mut shard = self.shard(session.id);
        if self.epoch.load(Ordering::Acquire) == epoch && !shard.contains_key(&session.id) {
            self.insert(&mut shard, session);
        }
    }

    /// Applies a committed batch's changes (the new record of each session
    /// it changed), in commit order. Called by the writer thread only, after
    /// the commit and before it replies.
    pub fn apply(&self, changes: impl IntoIterator<Item = Session>) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for session in changes {
            let mut shard = self.shard(session.id);
            self.insert(&mut shard, session);
        }
    }

    fn insert(&self, shard: &mut HashMap<SessionId, Session>, session: Session) {
        if shard.len() >= self.per_shard && !shard.contains_key(&session.id) {
            // Make room by forgetting the shard's records: constant time per
            // insert, where finding one record to drop means scanning the
            // table's emptied slots each time.
            shard.clear();
        }
        shard.insert(session.id, session);
    }

    fn shard(&self, id: SessionId) -> MutexGuard<'_, HashMap<SessionId, Session>> {
        let index = usize::try_from(id.get().unsigned_abs()).unwrap_or(0) % SHARDS;
        lock(&self.shards[index])
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::NewSession;
    use crate::model::{ClientDescription, SessionKind, Timestamp, UserId};

    /// A clientless session `id` of `R41`, open, started at `id` µs.
    pub(in crate::store::sqlite) fn session(id: i64) -> Session {
        NewSession {
            uuid: uuid::Uuid::now_v7(),
            user: UserId::from_store("R41".to_owned()),
            kind: SessionKind::Clientless,
            client: ClientDescription::default(),
            now: Timestamp::from_unix_micros(id),
            owner_node: "a".to_owned(),
            max_open_per_user: None,
        }
        .into_session(SessionId::from_store(id))
    }

    #[test]
    fn stays_within_its_capacity_and_keeps_the_latest_record() {
        let cache = SessionCache::new(32);
        for id in 1..=1000 {
            cache.apply([session(id)]);
        }
        let kept = (1..=1000)
            .filter(|&id| cache.get(SessionId::from_store(id)).is_some())
            .count();
        assert!((16..=32).contains(&kept), "{kept} records kept");
        let latest = cache
            .get(SessionId::from_store(1000))
            .expect("the latest is kept");
        assert_eq!(latest.start_time, Timestamp::from_unix_micros(1000));
    }

    #[test]
    fn refuses_an_offer_read_before_a_commit() {
        let cache = SessionCache::new(32);
        let epoch = cache.epoch();
        cache.apply([session(8)]);
        cache.offer(session(7), epoch);
        assert!(cache.get(SessionId::from_store(7)).is_none());
        cache.offer(session(7), cache.epoch());
        assert!(cache.get(SessionId::from_store(7)).is_some());
    }
}
