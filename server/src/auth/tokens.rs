//! Static bearer tokens, for services that have no identity provider.
//!
//! A tokens file is TOML with one `[[token]]` table per token:
//!
//! ```toml
//! [[token]]
//! sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! subject = "billing"
//! groups = ["services"]
//! created = "2026-12-05T11:50:00Z"
//! ```
//!
//! Only the SHA-256 of a token is ever stored; the token itself is shown
//! once, by whoever called [`create`]. Tokens are 32 random bytes, base64url
//! encoded and prefixed `sdt_` so that one found in a log or a repository is
//! recognisable. `created` is informational and not checked.
//!
//! [`StaticTokens::verify`] costs one SHA-256 of the presented token and one
//! hash-map lookup: a token is looked up by its hash, so the comparison
//! never touches the secret.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::Credential;
use crate::principal::{Identity, Method};

/// What every token starts with.
pub const TOKEN_PREFIX: &str = "sdt_";

/// A SHA-256 digest: how a token is known.
type TokenHash = [u8; 32];

/// Why a tokens file could not be read, loaded or added to.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// The file could not be read.
    #[error("cannot read the tokens file {}: {source}", path.display())]
    Read {
        /// The tokens file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file could not be created or appended to.
    #[error("cannot write the tokens file {}: {source}", path.display())]
    Write {
        /// The tokens file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is not a valid tokens file.
    #[error("{}: {message}", location(path, *line))]
    Invalid {
        /// The tokens file.
        path: PathBuf,
        /// The line (1-based) the problem is on, where known.
        line: Option<usize>,
        /// What is wrong there.
        message: String,
    },
    /// A subject or group given to [`create`] cannot be stored.
    #[error("{0}")]
    InvalidName(String),
    /// The operating system's random number generator failed.
    #[error("cannot draw a random token from the operating system: {0}")]
    Random(getrandom::Error),
}

/// `path` or `path, line N`, for error messages.
fn location(path: &Path, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{}, line {line}", path.display()),
        None => path.display().to_string(),
    }
}

/// The tokens a service accepts, by the SHA-256 of each.
#[derive(Clone, Default)]
pub struct StaticTokens {
    /// The credential each token names, keyed by the token's SHA-256.
    by_hash: HashMap<TokenHash, Arc<Identity>>,
}

impl std::fmt::Debug for StaticTokens {
    /// The number of tokens only: even hashes stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTokens")
            .field("tokens", &self.by_hash.len())
            .finish()
    }
}

impl StaticTokens {
    /// Loads the tokens file at `path`.
    ///
    /// # Errors
    /// [`TokensError::Read`] if the file cannot be read;
    /// [`TokensError::Invalid`], naming the file and, where it can, the
    /// line, if it is not TOML, has an unknown key, a `sha256` that is not
    /// 64 hexadecimal digits, the same hash twice, or a subject or group
    /// that is empty or holds control characters.
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokensError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Loads tokens from `text`, the content of the file at `path`.
    fn parse(path: &Path, text: &str) -> Result<Self, TokensError> {
        let invalid =
            |span: Option<std::ops::Range<usize>>, message: String| TokensError::Invalid {
                path: path.to_owned(),
                line: span.map(|span| line_of(text, span.start)),
                message,
            };
        let file: TokensFile =
            toml::from_str(text).map_err(|e| invalid(e.span(), e.message().to_owned()))?;
        let mut by_hash = HashMap::with_capacity(file.token.len());
        for entry in file.token {
            let hash = parse_hash(entry.sha256.get_ref()).ok_or_else(|| {
                invalid(
                    Some(entry.sha256.span()),
                    "`sha256` must be 64 hexadecimal digits (the SHA-256 of the token)".to_owned(),
                )
            })?;
            check_name("subject", entry.subject.get_ref())
                .map_err(|message| invalid(Some(entry.subject.span()), message))?;
            let groups = match entry.groups {
                None => Vec::new(),
                Some(groups) => {
                    let span = groups.span();
                    let groups = groups.into_inner();
                    for group in &groups {
                        check_name("group", group)
                            .map_err(|message| invalid(Some(span.clone()), message))?;
                    }
                    groups
                }
            };
            let identity = Identity {
                subject: entry.subject.into_inner(),
                groups,
                method: Method::StaticToken,
                confined_to: None,
            };
            if by_hash.insert(hash, Arc::new(identity)).is_some() {
                return Err(invalid(
                    Some(entry.sha256.span()),
                    "this `sha256` is already listed for another token".to_owned(),
                ));
            }
        }
        Ok(Self { by_hash })
    }

    /// The credential `token` names, or `None` if it is not one of these
    /// tokens. Costs one SHA-256 and one lookup.
    #[must_use]
    pub fn verify(&self, token: &str) -> Option<Credential> {
        self.verify_identity(token).map(|identity| Credential {
            subject: identity.subject.clone(),
            groups: identity.groups.clone(),
        })
    }

    /// The caller `token` authenticates, shared (nothing is allocated), or
    /// `None` if it is not one of these tokens.
    #[must_use]
    pub fn verify_identity(&self, token: &str) -> Option<Arc<Identity>> {
        let hash: TokenHash = Sha256::digest(token.as_bytes()).into();
        self.by_hash.get(&hash).cloned()
    }

    /// How many tokens there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether there are no tokens.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// Makes a new token for `subject` in `groups`, appends its hash to the
/// tokens file at `path` (created with mode 0600 if missing) and returns
/// the token. The token is stored nowhere else: show it once.
///
/// An existing file is loaded first, so a file this appends to stays
/// loadable.
///
/// # Errors
/// [`TokensError::InvalidName`] if the subject or a group is empty or holds
/// control characters; [`TokensError::Read`] or [`TokensError::Invalid`] if
/// the existing file does not load; [`TokensError::Write`] if it cannot be
/// written; [`TokensError::Random`] if the operating system has no
/// randomness to give.
pub fn create(path: &Path, subject: &str, groups: &[String]) -> Result<String, TokensError> {
    check_name("subject", subject).map_err(TokensError::InvalidName)?;
    for group in groups {
        check_name("group", group).map_err(TokensError::InvalidName)?;
    }
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => {
            StaticTokens::parse(path, &text)?;
            text
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(TokensError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };

    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(TokensError::Random)?;
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );

    let entry = NewTokensFile {
        token: [NewToken {
            sha256: to_hex(&Sha256::digest(token.as_bytes())),
            subject,
            groups,
            created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        }],
    };
    let table = toml::to_string(&entry).map_err(|e| {
        TokensError::InvalidName(format!("cannot write this subject or group as TOML: {e}"))
    })?;
    let separator = if existing.is_empty() || existing.ends_with("\n\n") {
        ""
    } else if existing.ends_with('\n') {
        "\n"
    } else {
        "\n\n"
    };

    let write_error = |source| TokensError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(write_error)?;
    file.write_all(format!("{separator}{table}").as_bytes())
        .map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    Ok(token)
}

/// A tokens file as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    /// The `[[token]]` tables.
    #[serde(default)]
    token: Vec<TokenEntry>,
}

/// One `[[token]]` table as read; spans give error messages their line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    /// Hex of the token's SHA-256.
    sha256: toml::Spanned<String>,
    /// Who the token names.
    subject: toml::Spanned<String>,
    /// The groups it puts its subject in.
    #[serde(default)]
    groups: Option<toml::Spanned<Vec<String>>>,
    /// When it was made: informational, a string or a TOML date-time.
    #[serde(default)]
    #[expect(dead_code, reason = "accepted so that the file may say it; never read")]
    created: Option<toml::Value>,
}

/// A tokens file holding the one table [`create`] appends.
#[derive(Serialize)]
struct NewTokensFile<'a> {
    /// The new `[[token]]` table.
    token: [NewToken<'a>; 1],
}

/// The `[[token]]` table [`create`] appends.
#[derive(Serialize)]
struct NewToken<'a> {
    /// Hex of the token's SHA-256.
    sha256: String,
    /// Who the token names.
    subject: &'a str,
    /// The groups it puts its subject in.
    groups: &'a [String],
    /// When it was made (RFC 3339, UTC).
    created: String,
}

/// Refuses a subject or group that is empty or holds control characters.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err(format!("a {what} must not be empty"))
    } else if name.chars().any(char::is_control) {
        Err(format!("a {what} must not contain control characters"))
    } else {
        Ok(())
    }
}

/// The digest spelled by 64 hexadecimal digits (either case).
fn parse_hash(hex: &str) -> Option<TokenHash> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (out, pair) in hash.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |b: u8| char::from(b).to_digit(16);
        *out = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(hash)
}

/// Lower-case hexadecimal of `bytes`.
fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn groups(names: &[&str]) -> Vec<String> {
        names.iter().map(|&g| g.to_owned()).collect()
    }

    #[test]
    fn a_created_token_verifies_as_its_subject_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let billing = create(&path, "billing", &groups(&["services", "payments"])).unwrap();
        let reports = create(&path, "reports", &[]).unwrap();

        let tokens = StaticTokens::load(&path).unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(
            tokens.verify(&billing),
            Some(Credential {
                subject: "billing".into(),
                groups: groups(&["services", "payments"]),
            })
        );
        assert_eq!(tokens.verify(&reports).unwrap().subject, "reports");
        assert_eq!(tokens.verify(&format!("{billing}x")), None);
        assert_eq!(tokens.verify(""), None);
    }

    #[test]
    fn a_token_is_prefixed_random_base64url_and_only_its_hash_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let first = create(&path, "svc", &[]).unwrap();
        let second = create(&path, "svc", &[]).unwrap();
        assert_ne!(first, second);
        for token in [&first, &second] {
            let body = token.strip_prefix(TOKEN_PREFIX).unwrap();
            assert_eq!(
                body.len(),
                43,
                "32 bytes in unpadded base64: {}",
                body.len()
            );
            assert!(
                body.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&first[TOKEN_PREFIX.len()..]));
        assert!(text.contains(&to_hex(&Sha256::digest(first.as_bytes()))));
        assert_eq!(text.matches("[[token]]").count(), 2);
        assert!(text.contains("created = \""));
    }

    #[test]
    fn a_new_tokens_file_is_private_to_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        create(&path, "svc", &[]).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn create_appends_to_a_hand_written_file_and_keeps_its_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let hand = to_hex(&Sha256::digest(b"hand-made"));
        // No newline at the end: the appended table must not join its line.
        std::fs::write(
            &path,
            format!("# ops\n[[token]]\nsha256 = \"{hand}\"\nsubject = \"ops\""),
        )
        .unwrap();
        let token = create(&path, "svc", &[]).unwrap();
        let tokens = StaticTokens::load(&path).unwrap();
        assert_eq!(tokens.verify("hand-made").unwrap().subject, "ops");
        assert_eq!(tokens.verify(&token).unwrap().subject, "svc");
    }

    #[test]
    fn create_refuses_empty_names_and_control_characters_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        for (subject, groups) in [
            ("", vec![]),
            ("a\nb", vec![]),
            ("svc", vec![String::new()]),
            ("svc", vec!["ok".to_owned(), "tab\there".to_owned()]),
        ] {
            let err = create(&path, subject, &groups).unwrap_err();
            assert!(matches!(err, TokensError::InvalidName(_)), "{err}");
        }
        assert!(!path.exists());
    }

    #[test]
    fn create_refuses_to_append_to_a_file_that_does_not_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        std::fs::write(&path, "[[token]]\nsha256 = \"nothex\"\nsubject = \"x\"\n").unwrap();
        let err = create(&path, "svc", &[]).unwrap_err();
        assert!(matches!(err, TokensError::Invalid { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
    }

    #[test]
    fn load_errors_name_the_file_and_line() {
        let hash = to_hex(&Sha256::digest(b"t"));
        let cases = [
            (
                "[[token]]\nsha256 = \"abc\"\nsubject = \"x\"\n",
                2,
                "64 hexadecimal",
            ),
            (
                &format!("[[token]]\nsha256 = \"{hash}\"\nsubject = \"\"\n"),
                3,
                "must not be empty",
            ),
            (
                &format!("[[token]]\nsha256 = \"{hash}\"\nsubject = \"x\"\nsubjet = \"y\"\n"),
                4,
                "unknown field",
            ),
            (
                &format!(
                    "[[token]]\nsha256 = \"{hash}\"\nsubject = \"x\"\n\n[[token]]\nsha256 = \"{}\"\nsubject = \"y\"\n",
                    hash.to_uppercase()
                ),
                6,
                "already listed",
            ),
            ("[[token]]\nsubject = \"x\"\nsha256 = \n", 3, ""),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        for (text, line, words) in cases {
            std::fs::write(&path, text).unwrap();
            let err = StaticTokens::load(&path).unwrap_err();
            let message = err.to_string();
            let TokensError::Invalid { line: Some(at), .. } = err else {
                panic!("no line in {message}");
            };
            assert_eq!(at, line, "{message}");
            assert!(
                message.starts_with(&path.display().to_string()),
                "{message}"
            );
            assert!(message.contains(words), "{message}");
        }
    }

    #[test]
    fn a_missing_file_is_a_read_error_naming_it() {
        let path = Path::new("/nonexistent/tokens.toml");
        let err = StaticTokens::load(path).unwrap_err();
        assert!(matches!(err, TokensError::Read { .. }));
        assert!(err.to_string().contains("/nonexistent/tokens.toml"));
    }

    #[test]
    fn an_empty_file_has_no_tokens_and_created_may_be_a_toml_datetime() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        std::fs::write(&path, "").unwrap();
        assert!(StaticTokens::load(&path).unwrap().is_empty());
        let hash = to_hex(&Sha256::digest(b"t"));
        std::fs::write(
            &path,
            format!(
                "[[token]]\nsha256 = \"{hash}\"\nsubject = \"x\"\ncreated = 2026-12-05T10:00:00Z\n"
            ),
        )
        .unwrap();
        assert_eq!(
            StaticTokens::load(&path)
                .unwrap()
                .verify("t")
                .unwrap()
                .groups,
            Vec::<String>::new()
        );
    }

    #[test]
    fn debug_shows_no_hashes() {
        let tokens = StaticTokens::parse(
            Path::new("t.toml"),
            &format!(
                "[[token]]\nsha256 = \"{}\"\nsubject = \"x\"\n",
                to_hex(&[7; 32])
            ),
        )
        .unwrap();
        let debug = format!("{tokens:?}");
        assert_eq!(debug, "StaticTokens { tokens: 1 }");
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..32).collect();
        let hex = to_hex(&bytes);
        assert_eq!(parse_hash(&hex).unwrap().to_vec(), bytes);
        assert_eq!(parse_hash(&hex.to_uppercase()).unwrap().to_vec(), bytes);
        assert_eq!(parse_hash(&hex[..62]), None);
        assert_eq!(parse_hash(&format!("{}zz", &hex[..62])), None);
        assert_eq!(parse_hash(&format!("+1{}", &hex[2..])), None);
    }
}
