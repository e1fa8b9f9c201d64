//! What a write sends to the database: the columns of a session that
//! changed ([`SessionChanges`]) and a run's conclusion, as statements built
//! once per column set and dialect and kept for good (no SQL is formatted
//! per write).

use std::sync::OnceLock;

use super::names;
use crate::model::{Session, Timestamp};

/// How a backend writes statement parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `?1`, `?2`, …
    Sqlite,
    /// `$1`, `$2`, …
    Postgres,
}

impl Dialect {
    /// The `n`th (1-based) parameter.
    pub(crate) fn parameter(self, n: usize) -> String {
        match self {
            Self::Sqlite => format!("?{n}"),
            Self::Postgres => format!("${n}"),
        }
    }

    /// `UPDATE table SET c1 = p1, … WHERE key = pN` of `columns`, built
    /// once into `slot` (one per dialect and column set) and kept for good.
    fn update<'c>(
        self,
        slot: &'static OnceLock<String>,
        table: &str,
        columns: impl Iterator<Item = &'c str>,
        key: &str,
    ) -> &'static str {
        slot.get_or_init(|| {
            let assignments: Vec<String> = columns
                .enumerate()
                .map(|(n, column)| format!("{column} = {}", self.parameter(n + 1)))
                .collect();
            let key_parameter = self.parameter(assignments.len() + 1);
            format!(
                "UPDATE {table} SET {} WHERE {key} = {key_parameter}",
                assignments.join(", ")
            )
        })
    }
}

/// A value of a session column a write changes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ColumnValue<'a> {
    /// An integer (times, the depth), or NULL.
    Int(Option<i64>),
    /// Text (names, users), or NULL.
    Text(Option<&'a str>),
}

/// The columns of a session's row a write may change, in the order of
/// [`SessionChanges`]'s mask bits.
const SESSION_COLUMNS: [&str; 6] = [
    "state",
    "end_time",
    "end_reason",
    "last_activity_time",
    "effective_user",
    "user_context_depth",
];

/// The columns of a session's row that differ between two versions of its
/// record: what a store writes for a change the domain decided, and
/// nothing more (an index on a column that did not change is not touched).
#[derive(Debug)]
pub(crate) struct SessionChanges<'a> {
    /// Which of [`SESSION_COLUMNS`] changed, one bit each.
    mask: usize,
    /// Their new values, in column order.
    pub values: Vec<ColumnValue<'a>>,
}

impl<'a> SessionChanges<'a> {
    /// What changed from `old` to `new`.
    pub fn between(old: &Session, new: &'a Session) -> Self {
        let candidates = [
            (old.state != new.state).then(|| ColumnValue::Text(Some(names::state_name(new.state)))),
            (old.end_time != new.end_time)
                .then(|| ColumnValue::Int(new.end_time.map(Timestamp::unix_micros))),
            (old.end_reason != new.end_reason)
                .then(|| ColumnValue::Text(new.end_reason.map(names::reason_name))),
            (old.last_activity_time != new.last_activity_time)
                .then(|| ColumnValue::Int(Some(new.last_activity_time.unix_micros()))),
            (old.effective_user != new.effective_user)
                .then(|| ColumnValue::Text(Some(new.effective_user.as_str()))),
            (old.user_context_depth != new.user_context_depth)
                .then(|| ColumnValue::Int(Some(i64::from(new.user_context_depth)))),
        ];
        let mut mask = 0;
        let mut values = Vec::with_capacity(candidates.len());
        for (i, value) in candidates.into_iter().enumerate() {
            if let Some(value) = value {
                mask |= 1 << i;
                values.push(value);
            }
        }
        Self { mask, values }
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.mask == 0
    }

    /// The `UPDATE sessions` statement of these columns, the session id its
    /// last parameter.
    pub fn sql(&self, dialect: Dialect) -> &'static str {
        static CACHE: [[OnceLock<String>; 64]; 2] = [const { [const { OnceLock::new() }; 64] }; 2];
        let columns = (0..SESSION_COLUMNS.len())
            .filter(|i| self.mask & (1 << i) != 0)
            .map(|i| SESSION_COLUMNS[i]);
        let slot = &CACHE[dialect as usize][self.mask];
        dialect.update(slot, "sessions", columns, "session_id")
    }
}

/// The `UPDATE module_runs` statement of a run's conclusion
/// ([`names::ConcludedRun`]'s columns), the run id its last parameter.
pub(crate) fn conclude_run_sql(dialect: Dialect) -> &'static str {
    static CACHE: [OnceLock<String>; 2] = [const { OnceLock::new() }; 2];
    let columns = names::CONCLUDE_RUN_COLUMNS.into_iter();
    dialect.update(&CACHE[dialect as usize], "module_runs", columns, "run_id")
}
