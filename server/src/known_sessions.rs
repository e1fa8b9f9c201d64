//! "Whose session is this?" answered from memory.
//!
//! A session's user and its owner node never change, so a remembered answer
//! can never be wrong: the hot-path lookup `GetSessionUser`, and the routing
//! of module requests to the owner, are served from here and only go to the
//! store for sessions not seen yet. The map is sharded so
//! that concurrent lookups do not serialise on one lock, and bounded: a
//! shard that reaches its share of the capacity is emptied (its sessions are
//! read from the store again on their next lookup).

use std::collections::HashMap;
use std::sync::RwLock;

use crate::model::{SessionFacts, SessionId};

/// How many sessions are kept in memory unless configured otherwise
/// ([`crate::Config::cached_sessions`]): about 0.8 KiB per session here and
/// in the SQLite store's records together, some 50 MiB once full (measured:
/// RELIABILITY.md, Soak).
pub const DEFAULT_CACHED_SESSIONS: usize = 65_536;

/// How many shards the map is split into.
const SHARDS: usize = 16;

/// The session → facts map.
#[derive(Debug)]
pub struct KnownSessions {
    /// Each session's facts, by the session id's shard.
    shards: Box<[RwLock<HashMap<SessionId, SessionFacts>>]>,
    /// The most sessions one shard holds.
    per_shard: usize,
}

impl KnownSessions {
    /// A map of at most about `capacity` sessions.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// The facts of session `id`, if known here.
    #[must_use]
    pub fn get(&self, id: SessionId) -> Option<SessionFacts> {
        self.shard(id)
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// Remembers the facts of session `id`.
    pub fn insert(&self, id: SessionId, facts: SessionFacts) {
        let mut shard = self
            .shard(id)
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if shard.len() >= self.per_shard {
            shard.clear();
        }
        shard.insert(id, facts);
    }

    fn shard(&self, id: SessionId) -> &RwLock<HashMap<SessionId, SessionFacts>> {
        // Ids are assigned in sequence, so the low bits spread evenly.
        let index = usize::try_from(id.get().rem_euclid(SHARDS as i64)).unwrap_or(0);
        &self.shards[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_facts_and_stays_within_its_capacity() {
        let known = KnownSessions::new(32);
        let facts = SessionFacts {
            user: crate::model::UserId::from_store("R41".to_owned()),
            owner_node: "a".to_owned(),
        };
        for id in 1..=1000 {
            known.insert(SessionId::from_store(id), facts.clone());
        }
        let remembered = (1..=1000)
            .filter(|&id| known.get(SessionId::from_store(id)).is_some())
            .count();
        assert!(remembered <= 32, "{remembered} sessions remembered");
        assert_eq!(known.get(SessionId::from_store(1000)), Some(facts));
        assert_eq!(known.get(SessionId::from_store(5000)), None);
    }
}
