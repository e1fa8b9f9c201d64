//! "Whose session is this?" answered from memory.
//!
//! A session's user never changes, so a remembered answer can never be
//! wrong: the hot-path lookup `GetSessionUser` is served from here and only
//! goes to the store for sessions it has not seen. The map is sharded so
//! that concurrent lookups do not serialise on one lock, and bounded: a
//! shard that reaches its share of the capacity is emptied (its sessions are
//! read from the store again on their next lookup).

use std::collections::HashMap;
use std::sync::RwLock;

use crate::model::{SessionId, UserId};

/// How many shards the map is split into.
const SHARDS: usize = 16;

/// The session → user map.
#[derive(Debug)]
pub struct SessionUsers {
    /// Each session's user, by the session id's shard.
    shards: Box<[RwLock<HashMap<SessionId, UserId>>]>,
    /// The most sessions one shard holds.
    per_shard: usize,
}

impl SessionUsers {
    /// A map of at most about `capacity` sessions.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// The user of session `id`, if known here.
    #[must_use]
    pub fn get(&self, id: SessionId) -> Option<UserId> {
        self.shard(id)
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// Remembers that session `id` belongs to `user`.
    pub fn insert(&self, id: SessionId, user: &UserId) {
        let mut shard = self
            .shard(id)
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if shard.len() >= self.per_shard {
            shard.clear();
        }
        shard.insert(id, user.clone());
    }

    fn shard(&self, id: SessionId) -> &RwLock<HashMap<SessionId, UserId>> {
        // Ids are assigned in sequence, so the low bits spread evenly.
        let index = usize::try_from(id.get().rem_euclid(SHARDS as i64)).unwrap_or(0);
        &self.shards[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_users_and_stays_within_its_capacity() {
        let users = SessionUsers::new(32);
        let user = UserId::from_store("R41".to_owned());
        for id in 1..=1000 {
            users.insert(SessionId::from_store(id), &user);
        }
        let remembered = (1..=1000)
            .filter(|&id| users.get(SessionId::from_store(id)).is_some())
            .count();
        assert!(remembered <= 32, "{remembered} sessions remembered");
        assert_eq!(users.get(SessionId::from_store(1000)), Some(user));
        assert_eq!(users.get(SessionId::from_store(5000)), None);
    }
}
