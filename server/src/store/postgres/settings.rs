//! How to reach the PostgreSQL database, and a `Debug` that never shows
//! its password.

use std::fmt;
use std::time::Duration;

/// The connection pool's size unless the settings say otherwise: enough for
/// a replica's concurrent writes (each holds a connection for one short
/// transaction), small enough that several replicas stay well under
/// PostgreSQL's default `max_connections` of 100.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

/// How long a request waits for a free pooled connection (or a new one)
/// before it fails with [`crate::Error::StoreUnavailable`].
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The settings of a [`super::PostgresStore`].
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE?…` (or `postgresql://`),
    /// in libpq's URL syntax. May carry a password, hence the hand-written
    /// `Debug`.
    pub url: String,
    /// The most connections the pool opens.
    pub max_connections: u32,
    /// How long to wait for a connection.
    pub acquire_timeout: Duration,
    /// Whether changes are recorded in the event log (see
    /// [`crate::store::open_with`]).
    pub record_events: bool,
    /// The password, when it is not in the URL (`--database-password-file`);
    /// it wins over one in the URL. Never shown by `Debug`.
    pub password: Option<String>,
}

impl PostgresSettings {
    /// The default settings for the database at `url`.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            record_events: true,
            password: None,
        }
    }

    /// The URL with any password replaced by `***`, for logs and `Debug`.
    #[must_use]
    pub fn redacted_url(&self) -> String {
        redact_password(&self.url)
    }
}

impl fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The password a password file holds: its first line (a file written
/// with a trailing newline, or by `echo`, works).
///
/// # Errors
/// When the file cannot be read, or its first line is empty.
pub fn read_password_file(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let password = text.lines().next().unwrap_or_default();
    if password.is_empty() {
        return Err("the file's first line is empty".to_owned());
    }
    Ok(password.to_owned())
}

/// `url` with the password of its user-info part (`user:PASSWORD@`) and of
/// a `password=` query parameter replaced by `***`.
#[must_use]
pub fn redact_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let path = match path.split_once('?') {
        Some((before, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{before}?{}", query.join("&"))
        }
        None => path.to_owned(),
    };
    if scheme.is_empty() && !url.contains("://") {
        format!("{authority}{path}")
    } else {
        format!("{scheme}://{authority}{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        let cases = [
            (
                "postgres://app:s3cret@db:5432/sessiond",
                "postgres://app:***@db:5432/sessiond",
            ),
            (
                "postgresql://app:p@ss@db/sessiond?sslmode=require",
                "postgresql://app:***@db/sessiond?sslmode=require",
            ),
            (
                "postgres://app@db/sessiond?password=s3cret&sslmode=disable",
                "postgres://app@db/sessiond?password=***&sslmode=disable",
            ),
            ("postgres://db/sessiond", "postgres://db/sessiond"),
            ("postgres://app:s3cret@db", "postgres://app:***@db"),
        ];
        for (url, expected) in cases {
            assert_eq!(redact_password(url), expected, "{url}");
        }
    }

    #[test]
    fn debug_shows_no_password() {
        let settings = PostgresSettings::new("postgres://app:s3cret@db/sessiond?password=s3cret");
        let debug = format!("{settings:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("app:***@db/sessiond"), "{debug}");
    }
}
