//! The domain: its values (ids, users, times, the session record, user
//! contexts, module runs), its one error type, and **every rule**, once, as
//! plain functions on those values.
//!
//! A rule takes the records as they are and says what they become, or why
//! not: [`Session::start_run`] says whether a module may start and what the
//! run and the session look like then, [`Session::pop_user_context`] which
//! scope may be popped, [`Expiry::applies_to`] which expiry applies,
//! [`Session::end`] what an ended record looks like, [`admit`] whether a
//! user may open one more session. The stores lock and read, ask these,
//! and write what they answer; they know no rule.
//!
//! Constructors that take caller input (`SessionId::parse`, `UserId::parse`,
//! …) validate it and say what is wrong as a [`FieldViolation`], so that the
//! API layer can report every bad field of a request at once.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod error;
mod event;
mod process;
mod run;
mod scope;
mod session;

pub use error::{BoxError, Denial, Error, FieldViolation, Permission, Result, Validate};
pub use event::{Change, EventKind, Refusal, SessionRef};
pub use process::{BadRunProcess, RunProcess};
pub use run::{
    FailureKind, MAX_VALUE_DEPTH, ModuleFailure, ModuleId, ModuleRun, NewRun, RunId, RunOutcome,
    RunState, check_value,
};
pub use scope::{NewScope, PoppedScope, PushedScope, Scope, UserContext};
pub use session::{
    EndReason, Expiry, NewSession, Session, SessionFacts, SessionKind, SessionState, admit,
};

/// The longest user id, module id or client description, in characters.
pub const MAX_ID_CHARS: usize = 256;

/// A session's numeric id: assigned by the store, always > 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(i64);

impl SessionId {
    /// Wraps an id read from the store.
    ///
    /// # Panics
    /// Never with ids the store assigned; a non-positive id is a store bug
    /// and is reported by [`SessionId::parse`] for caller input instead.
    #[must_use]
    pub fn from_store(id: i64) -> Self {
        debug_assert!(id > 0, "store returned a non-positive session id");
        Self(id)
    }

    /// Validates caller input: an id must be > 0.
    ///
    /// # Errors
    /// A violation of `field` when `id` is not positive.
    pub fn parse(field: &str, id: i64) -> Result<Self, FieldViolation> {
        if id > 0 {
            Ok(Self(id))
        } else {
            Err(FieldViolation::new(field, "must be a session id > 0"))
        }
    }

    /// The raw id, as the contract carries it.
    #[must_use]
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The id of one pushed user-context scope: assigned by the store, > 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ScopeId(i64);

impl ScopeId {
    /// Wraps an id read from the store.
    #[must_use]
    pub fn from_store(id: i64) -> Self {
        Self(id)
    }

    /// Validates caller input: an id must be > 0.
    ///
    /// # Errors
    /// A violation of `field` when `id` is not positive.
    pub fn parse(field: &str, id: i64) -> Result<Self, FieldViolation> {
        if id > 0 {
            Ok(Self(id))
        } else {
            Err(FieldViolation::new(field, "must be a scope id > 0"))
        }
    }

    /// The raw id, as the contract carries it.
    #[must_use]
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for ScopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A user id: 1–256 characters, by the rule of [`check_text`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    /// Validates caller input.
    ///
    /// # Errors
    /// A violation of `field` saying which rule `user` breaks.
    pub fn parse(field: &str, user: String) -> Result<Self, FieldViolation> {
        check_text(field, &user, false)?;
        Ok(Self(user))
    }

    /// Wraps a user id read from the store (validated when it was written).
    #[must_use]
    pub fn from_store(user: String) -> Self {
        Self(user)
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned string.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A free-form description of an interactive session's client: at most 256
/// characters by the rule of [`check_text`], may be empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientDescription(String);

impl ClientDescription {
    /// Validates caller input.
    ///
    /// # Errors
    /// A violation of `field` saying which rule `client` breaks.
    pub fn parse(field: &str, client: String) -> Result<Self, FieldViolation> {
        check_text(field, &client, true)?;
        Ok(Self(client))
    }

    /// Wraps a description read from the store.
    #[must_use]
    pub fn from_store(client: String) -> Self {
        Self(client)
    }

    /// The description as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The one rule for text callers give (user ids, module ids, client
/// descriptions): at most 256 characters; not blank; no character that is
/// invisible or changes how the text around it reads — control characters
/// (Unicode category Cc), format characters (Cf: zero-width characters,
/// the byte-order mark, bidirectional overrides such as U+202E), line and
/// paragraph separators (Zl, Zp), private-use and unassigned code points
/// (Co, Cn); and no combining mark (M*) at the start, where it has nothing
/// to combine with. So a name shows as what it is: `adm\u{202e}nimda`
/// (which reads "admin" reversed) and a name of zero-width spaces are
/// refused.
pub(crate) fn check_text(
    field: &str,
    text: &str,
    may_be_empty: bool,
) -> Result<(), FieldViolation> {
    let problem = if text.is_empty() && !may_be_empty {
        Some("must not be empty")
    } else if text.chars().count() > MAX_ID_CHARS {
        Some("must be at most 256 characters")
    } else if text.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else if text.chars().any(is_invisible) {
        Some(
            "must not contain invisible or formatting characters (zero-width, bidirectional, line separators, private use, unassigned)",
        )
    } else if text.chars().next().is_some_and(is_mark) {
        Some("must not start with a combining mark")
    } else if !text.is_empty() && text.trim().is_empty() {
        Some("must not be blank")
    } else {
        None
    };
    problem.map_or(Ok(()), |p| Err(FieldViolation::new(field, p)))
}

/// Whether `c` is a format, separator, private-use or unassigned character
/// (see [`check_text`]).
fn is_invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::Surrogate
    )
}

/// Whether `c` is a combining mark.
fn is_mark(c: char) -> bool {
    use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
    c.general_category_group() == GeneralCategoryGroup::Mark
}

/// A point in time with microsecond precision, as the store keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// A timestamp from microseconds since the Unix epoch.
    #[must_use]
    pub fn from_unix_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the Unix epoch.
    #[must_use]
    pub fn unix_micros(self) -> i64 {
        self.0
    }

    /// The time `duration` before this one (saturating).
    #[must_use]
    pub fn minus(self, duration: Duration) -> Self {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(micros))
    }

    /// The time `duration` after this one (saturating).
    #[must_use]
    pub fn plus(self, duration: Duration) -> Self {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(micros))
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        let micros = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
        };
        Self(micros)
    }
}

impl From<Timestamp> for prost_types::Timestamp {
    fn from(time: Timestamp) -> Self {
        Self {
            seconds: time.0.div_euclid(1_000_000),
            // The remainder is in 0..1_000_000, so the nanos fit an i32.
            nanos: i32::try_from(time.0.rem_euclid(1_000_000) * 1_000).unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_hide_what_they_are_are_refused() {
        let refused = [
            "\u{200b}",
            "\u{200b}\u{200b}",
            "\u{feff}",
            "\u{0301}",
            "\u{0301}R41",
            "adm\u{202e}nimda",
            "R41\u{2028}",
            "R\u{2029}41",
            "R41\u{2066}",
            "R\u{e000}41",
            "R\u{0378}41",
            "R41\n",
            "   ",
            "",
        ];
        for name in refused {
            assert!(
                UserId::parse("user", name.to_owned()).is_err(),
                "{name:?} is refused"
            );
        }
    }

    #[test]
    fn names_in_any_script_with_marks_and_spaces_are_accepted() {
        for name in [
            "R41",
            "José",
            "e\u{0301}",
            "李小龙",
            "Ελένη",
            "o'brien \"ops\"",
            "a b",
        ] {
            assert!(UserId::parse("user", name.to_owned()).is_ok(), "{name:?}");
        }
    }
}
