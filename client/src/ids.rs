//! The numeric ids the server assigns: sessions, user-context scopes and
//! module runs.

use std::fmt;
use std::num::ParseIntError;
use std::str::FromStr;

macro_rules! server_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(i64);

        impl $name {
            #[doc = concat!("Wraps a raw ", $what, " id as the contract carries it.")]
            ///
            /// Ids are assigned by the server and are always > 0; the client
            /// does not check, the server refuses other values with
            /// [`Error::InvalidArgument`](crate::Error::InvalidArgument).
            #[must_use]
            pub const fn new(id: i64) -> Self {
                Self(id)
            }

            /// The raw id, as the contract carries it.
            #[must_use]
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                Self(id)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ParseIntError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.trim().parse().map(Self)
            }
        }
    };
}

server_id!(
    /// A session's numeric id (the contract's `session_id`), assigned by the
    /// server.
    SessionId,
    "session"
);

server_id!(
    /// The id of one pushed user-context scope (the contract's `scope_id`),
    /// needed to pop exactly that scope.
    ScopeId,
    "scope"
);

server_id!(
    /// The id of one module run (the contract's `run_id`).
    RunId,
    "module run"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_and_print_as_plain_numbers() {
        let id: SessionId = " 42 ".parse().unwrap();
        assert_eq!(id, SessionId::new(42));
        assert_eq!(id.to_string(), "42");
        assert_eq!(i64::from(id), 42);
        assert!("forty-two".parse::<SessionId>().is_err());
    }
}
