//! Reading the event log: which events a query asks for, as one SQL
//! statement for either dialect.

use super::{ColumnValue, Dialect};
use crate::model::{EventKind, SessionId, Timestamp};

/// Which events to read, and where the page starts.
#[derive(Clone, Debug, Default)]
pub struct EventQuery {
    /// Only events with a greater revision.
    pub after: i64,
    /// Only events with a smaller revision.
    pub before: Option<i64>,
    /// Only this session's events.
    pub session_id: Option<SessionId>,
    /// Only events of this user's sessions.
    pub user: Option<String>,
    /// Only events this subject caused.
    pub subject: Option<String>,
    /// Only events of these kinds (empty: every kind).
    pub kinds: Vec<EventKind>,
    /// Only events at or after this time.
    pub start_time: Option<Timestamp>,
    /// Only events before this time.
    pub end_time: Option<Timestamp>,
    /// Newest first instead of oldest first.
    pub newest_first: bool,
    /// The most events to return.
    pub limit: u32,
}

impl EventQuery {
    /// Every event after `after`, oldest first, at most `limit`.
    #[must_use]
    pub fn after(after: i64, limit: u32) -> Self {
        Self {
            after,
            limit,
            ..Self::default()
        }
    }

    /// The `SELECT revision, body, prev_hash, hash FROM events …` of this
    /// query in `dialect`, and its parameters in order. Only the filters
    /// that are set appear, so that an index serves each.
    #[must_use]
    pub(crate) fn sql(&self, dialect: Dialect) -> (String, Vec<ColumnValue<'_>>) {
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        let mut condition = |sql: &str, value: ColumnValue<'static>| {
            values.push(value);
            conditions.push(sql.replace('?', &dialect.parameter(values.len())));
        };
        condition("revision > ?", ColumnValue::Int(Some(self.after)));
        if let Some(before) = self.before {
            condition("revision < ?", ColumnValue::Int(Some(before)));
        }
        if let Some(session) = self.session_id {
            condition("session_id = ?", ColumnValue::Int(Some(session.get())));
        }
        if let Some(start) = self.start_time {
            condition("time >= ?", ColumnValue::Int(Some(start.unix_micros())));
        }
        if let Some(end) = self.end_time {
            condition("time < ?", ColumnValue::Int(Some(end.unix_micros())));
        }
        if !self.kinds.is_empty() {
            let kinds: Vec<String> = self
                .kinds
                .iter()
                .map(|&kind| super::ledger::kind_number(kind).to_string())
                .collect();
            conditions.push(format!("kind IN ({})", kinds.join(", ")));
        }
        let mut sql = String::from("SELECT revision, body, prev_hash, hash FROM events WHERE ");
        let mut texts = Vec::new();
        for (column, text) in [("user_id", &self.user), ("subject", &self.subject)] {
            if let Some(text) = text {
                texts.push(ColumnValue::Text(Some(text.as_str())));
                conditions.push(format!(
                    "{column} = {}",
                    dialect.parameter(values.len() + texts.len())
                ));
            }
        }
        values.extend(texts);
        sql.push_str(&conditions.join(" AND "));
        let order = if self.newest_first { "DESC" } else { "ASC" };
        sql.push_str(&format!(
            " ORDER BY revision {order} LIMIT {}",
            self.limit.max(1)
        ));
        (sql, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_filters_set_appear_each_with_its_parameter() {
        let query = EventQuery {
            session_id: Some(SessionId::from_store(7)),
            subject: Some("alice".to_owned()),
            kinds: vec![EventKind::SessionEnded],
            ..EventQuery::after(3, 10)
        };
        let (sql, values) = query.sql(Dialect::Postgres);
        assert_eq!(
            sql,
            "SELECT revision, body, prev_hash, hash FROM events WHERE revision > $1 AND \
             session_id = $2 AND kind IN (4) AND subject = $3 ORDER BY revision ASC LIMIT 10"
        );
        assert_eq!(
            values,
            [
                ColumnValue::Int(Some(3)),
                ColumnValue::Int(Some(7)),
                ColumnValue::Text(Some("alice")),
            ]
        );
    }
}
