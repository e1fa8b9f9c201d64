//! The access policy: who may do what, read from a TOML file, and its rules
//! as plain functions of the caller and the facts of the action.
//!
//! A policy is a list of grants. Each grant names whom it applies to
//! (`subjects` and caller `groups`, patterns such as `svc-*` or `*`) and
//! what they may do:
//!
//! ```toml
//! [[grant]]
//! groups = ["services"]
//! read_sessions = "any"                  # "none" (default), "own", "any"
//! start_sessions_for = ["R*"]            # interactive sessions, for these users
//! open_clientless_sessions_for = ["R*"]  # clientless sessions, for these users
//! act_as = ["R*", "group:finance"]       # set or push as user context
//! run_modules = ["*"]                    # modules it may run acting as them (default: all)
//! end_sessions = "none"                  # "none" (default), "own", "any"
//! read_audit = false
//!
//! [user_groups]                          # named groups of users, for "group:NAME"
//! finance = ["R41", "R42"]
//! ```
//!
//! Anything no grant allows is denied, except acting as oneself. A
//! session is "own" when its user is the caller's subject.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::model::{ModuleId, SessionKind, UserId};
use crate::principal::Identity;

/// A loaded, checked policy.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    grants: Vec<Grant>,
}

/// Which sessions a grant reaches.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// None.
    #[default]
    None,
    /// Those whose user is the caller's subject.
    Own,
    /// All.
    Any,
}

impl Reach {
    fn covers(self, caller: &Identity, session_user: &UserId) -> bool {
        match self {
            Self::None => false,
            Self::Own => caller.subject == session_user.as_str(),
            Self::Any => true,
        }
    }
}

/// One grant, its user lists resolved.
#[derive(Clone, Debug)]
struct Grant {
    subjects: Vec<Pattern>,
    groups: Vec<Pattern>,
    read_sessions: Reach,
    end_sessions: Reach,
    start_sessions_for: Vec<Pattern>,
    open_clientless_sessions_for: Vec<Pattern>,
    act_as: Vec<Pattern>,
    /// `None`: every module.
    run_modules: Option<Vec<Pattern>>,
    read_audit: bool,
}

/// The file's shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    grant: Vec<toml::Spanned<GrantFile>>,
    #[serde(default)]
    user_groups: BTreeMap<String, Vec<String>>,
}

/// A grant as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantFile {
    #[serde(default)]
    subjects: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    read_sessions: Reach,
    #[serde(default)]
    end_sessions: Reach,
    #[serde(default)]
    start_sessions_for: Vec<String>,
    #[serde(default)]
    open_clientless_sessions_for: Vec<String>,
    #[serde(default)]
    act_as: Vec<String>,
    run_modules: Option<Vec<String>>,
    #[serde(default)]
    read_audit: bool,
}

/// Why a policy file was refused: the file, the line, the problem.
#[derive(Debug, thiserror::Error)]
#[error("policy {file}{}: {problem}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
pub struct PolicyError {
    /// The file.
    pub file: String,
    /// The line (1-based), when the problem has one.
    pub line: Option<usize>,
    /// What is wrong.
    pub problem: String,
}

impl Policy {
    /// Reads and checks the policy in `path`.
    ///
    /// # Errors
    /// [`PolicyError`] naming the file, line and problem.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| PolicyError {
            file: file.clone(),
            line: None,
            problem: error.to_string(),
        })?;
        Self::parse(&file, &text)
    }

    /// Parses and checks a policy's text; `file` names it in errors.
    ///
    /// # Errors
    /// [`PolicyError`] naming the file, line and problem.
    pub fn parse(file: &str, text: &str) -> Result<Self, PolicyError> {
        let error_at = |offset: Option<usize>, problem: String| PolicyError {
            file: file.to_owned(),
            line: offset.map(|at| line_of(text, at)),
            problem,
        };
        let parsed: PolicyFile = toml::from_str(text).map_err(|error| {
            error_at(
                error.span().map(|span| span.start),
                error.message().to_owned(),
            )
        })?;
        let groups = parsed.user_groups;
        let mut grants = Vec::with_capacity(parsed.grant.len());
        for spanned in parsed.grant {
            let at = Some(spanned.span().start);
            let written = spanned.into_inner();
            let grant =
                Grant::resolve(written, &groups).map_err(|problem| error_at(at, problem))?;
            grants.push(grant);
        }
        Ok(Self { grants })
    }

    /// The grants that apply to `caller`.
    fn grants_of<'a>(&'a self, caller: &'a Identity) -> impl Iterator<Item = &'a Grant> + 'a {
        self.grants
            .iter()
            .filter(move |grant| grant.applies_to(caller))
    }

    /// Whether `caller` may read a session of `session_user`: its read
    /// reach covers it, or it may open sessions (of either kind) for that
    /// user — whoever opens a session may see it, read its values and
    /// close it.
    #[must_use]
    pub fn may_read(&self, caller: &Identity, session_user: &UserId) -> bool {
        self.grants_of(caller).any(|grant| {
            grant.read_sessions.covers(caller, session_user)
                || matches_any(&grant.start_sessions_for, session_user.as_str())
                || matches_any(&grant.open_clientless_sessions_for, session_user.as_str())
        })
    }

    /// Whether `caller` may read every session (so that listing needs no
    /// filter).
    #[must_use]
    pub fn may_read_any(&self, caller: &Identity) -> bool {
        self.grants_of(caller)
            .any(|grant| grant.read_sessions == Reach::Any)
    }

    /// Whether `caller` may open a session of `kind` for `user`.
    #[must_use]
    pub fn may_open(&self, caller: &Identity, kind: SessionKind, user: &UserId) -> bool {
        self.grants_of(caller).any(|grant| {
            let users = match kind {
                SessionKind::Interactive => &grant.start_sessions_for,
                SessionKind::Clientless => &grant.open_clientless_sessions_for,
            };
            matches_any(users, user.as_str())
        })
    }

    /// Whether `caller` may end (or close) a session whose user is
    /// `session_user`: its end reach covers it, or it may open sessions
    /// (of either kind) for that user.
    #[must_use]
    pub fn may_end(&self, caller: &Identity, session_user: &UserId) -> bool {
        self.grants_of(caller).any(|grant| {
            grant.end_sessions.covers(caller, session_user)
                || matches_any(&grant.start_sessions_for, session_user.as_str())
                || matches_any(&grant.open_clientless_sessions_for, session_user.as_str())
        })
    }

    /// Whether `caller` may record activity on a session: its own, or one
    /// it may end.
    #[must_use]
    pub fn may_touch(&self, caller: &Identity, session_user: &UserId) -> bool {
        caller.subject == session_user.as_str() || self.may_end(caller, session_user)
    }

    /// Whether `caller` may act as `user` (always, as itself).
    #[must_use]
    pub fn may_act_as(&self, caller: &Identity, user: &UserId) -> bool {
        caller.subject == user.as_str()
            || self
                .grants_of(caller)
                .any(|grant| matches_any(&grant.act_as, user.as_str()))
    }

    /// Whether `caller` may run `module` acting as `user`: as itself any
    /// module; as someone else, a module a grant to act as that user allows.
    #[must_use]
    pub fn may_run(&self, caller: &Identity, user: &UserId, module: &ModuleId) -> bool {
        caller.subject == user.as_str()
            || self.grants_of(caller).any(|grant| {
                matches_any(&grant.act_as, user.as_str())
                    && grant
                        .run_modules
                        .as_ref()
                        .is_none_or(|modules| matches_any(modules, module.as_str()))
            })
    }

    /// Whether `caller` may read the audit trail.
    #[must_use]
    pub fn may_read_audit(&self, caller: &Identity) -> bool {
        self.grants_of(caller).any(|grant| grant.read_audit)
    }
}

impl Grant {
    fn resolve(
        written: GrantFile,
        user_groups: &BTreeMap<String, Vec<String>>,
    ) -> Result<Self, String> {
        if written.subjects.is_empty() && written.groups.is_empty() {
            return Err("a grant must name `subjects` or `groups` it applies to".to_owned());
        }
        let users = |field: &str, list: Vec<String>| -> Result<Vec<Pattern>, String> {
            let mut patterns = Vec::new();
            for entry in list {
                if let Some(name) = entry.strip_prefix("group:") {
                    let members = user_groups.get(name).ok_or_else(|| {
                        format!(
                            "`{field}` names group {name:?}, which [user_groups] does not define"
                        )
                    })?;
                    for member in members {
                        patterns.push(Pattern::new(field, member)?);
                    }
                } else {
                    patterns.push(Pattern::new(field, &entry)?);
                }
            }
            Ok(patterns)
        };
        let plain = |field: &str, list: Vec<String>| -> Result<Vec<Pattern>, String> {
            list.iter()
                .map(|entry| Pattern::new(field, entry))
                .collect()
        };
        Ok(Self {
            subjects: plain("subjects", written.subjects)?,
            groups: plain("groups", written.groups)?,
            read_sessions: written.read_sessions,
            end_sessions: written.end_sessions,
            start_sessions_for: users("start_sessions_for", written.start_sessions_for)?,
            open_clientless_sessions_for: users(
                "open_clientless_sessions_for",
                written.open_clientless_sessions_for,
            )?,
            act_as: users("act_as", written.act_as)?,
            run_modules: written
                .run_modules
                .map(|modules| plain("run_modules", modules))
                .transpose()?,
            read_audit: written.read_audit,
        })
    }

    fn applies_to(&self, caller: &Identity) -> bool {
        matches_any(&self.subjects, &caller.subject)
            || caller
                .groups
                .iter()
                .any(|group| matches_any(&self.groups, group))
    }
}

/// A name, or a glob where `*` stands for any run of characters.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern(String);

impl Pattern {
    fn new(field: &str, text: &str) -> Result<Self, String> {
        if text.is_empty() || text.chars().any(char::is_control) {
            return Err(format!(
                "`{field}` has an empty entry or one with control characters"
            ));
        }
        Ok(Self(text.to_owned()))
    }

    fn matches(&self, name: &str) -> bool {
        glob(self.0.as_bytes(), name.as_bytes())
    }
}

fn matches_any(patterns: &[Pattern], name: &str) -> bool {
    patterns.iter().any(|pattern| pattern.matches(name))
}

/// Whether `name` matches `pattern`, where `*` matches any run of bytes
/// (iterative, with one backtrack point: linear in practice).
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((star_p, star_n)) = star {
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Method;

    const EXAMPLE: &str = include_str!("../../../examples/policy.toml");

    fn caller(subject: &str, groups: &[&str]) -> Identity {
        Identity {
            subject: subject.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            method: Method::StaticToken,
            confined_to: None,
        }
    }

    fn user(name: &str) -> UserId {
        UserId::parse("user", name.to_owned()).unwrap()
    }

    fn module(id: &str) -> ModuleId {
        ModuleId::parse("module_id", id.to_owned()).unwrap()
    }

    #[test]
    fn globs() {
        assert!(glob(b"R*", b"R41"));
        assert!(glob(b"R*", b"R"));
        assert!(!glob(b"R*", b"admin"));
        assert!(glob(b"*", b""));
        assert!(glob(b"a*b*c", b"axxbyyc"));
        assert!(!glob(b"a*b*c", b"axxbyy"));
        assert!(glob(b"R41", b"R41"));
        assert!(!glob(b"R41", b"R410"));
    }

    #[test]
    fn the_example_policy_gives_the_three_callers_what_the_readme_says() {
        let policy = Policy::parse("examples/policy.toml", EXAMPLE).unwrap();
        let service = caller("billing", &["services"]);
        let operator = caller("olga", &["operators"]);
        let end_user = caller("R41", &[]);

        assert!(policy.may_read(&service, &user("admin")));
        assert!(policy.may_open(&service, SessionKind::Clientless, &user("R41")));
        assert!(!policy.may_open(&service, SessionKind::Clientless, &user("admin")));
        assert!(policy.may_act_as(&service, &user("R42")));
        assert!(!policy.may_act_as(&service, &user("root")));
        assert!(policy.may_run(&service, &user("R42"), &module("100000")));
        assert!(!policy.may_run(&service, &user("admin"), &module("100000")));
        assert!(policy.may_end(&service, &user("R41")));
        assert!(!policy.may_end(&service, &user("admin")));

        assert!(policy.may_read(&operator, &user("admin")));
        assert!(policy.may_end(&operator, &user("admin")));
        assert!(!policy.may_act_as(&operator, &user("R41")));
        assert!(!policy.may_open(&operator, SessionKind::Clientless, &user("R41")));

        assert!(policy.may_read(&end_user, &user("R41")));
        assert!(!policy.may_read(&end_user, &user("R42")));
        assert!(policy.may_end(&end_user, &user("R41")));
        assert!(!policy.may_end(&end_user, &user("R42")));
        assert!(policy.may_act_as(&end_user, &user("R41")));
        assert!(!policy.may_act_as(&end_user, &user("R42")));
        assert!(!policy.may_read_any(&end_user));
        assert!(!policy.may_read_audit(&end_user));
    }

    #[test]
    fn who_may_open_sessions_for_a_user_may_read_and_end_them() {
        let policy = Policy::parse(
            "p.toml",
            "[[grant]]\nsubjects = [\"opener\"]\nopen_clientless_sessions_for = [\"R*\"]\n",
        )
        .unwrap();
        let opener = caller("opener", &[]);
        assert!(policy.may_read(&opener, &user("R41")));
        assert!(policy.may_end(&opener, &user("R41")));
        assert!(!policy.may_read(&opener, &user("admin")));
        assert!(!policy.may_read_any(&opener));
    }

    #[test]
    fn an_empty_policy_allows_only_acting_as_oneself() {
        let policy = Policy::default();
        let me = caller("R41", &["services"]);
        assert!(!policy.may_read(&me, &user("R41")));
        assert!(!policy.may_open(&me, SessionKind::Interactive, &user("R41")));
        assert!(policy.may_act_as(&me, &user("R41")));
        assert!(!policy.may_act_as(&me, &user("R42")));
    }

    #[test]
    fn constrained_acting_as_limits_the_modules() {
        let policy = Policy::parse(
            "p.toml",
            r#"
[user_groups]
finance = ["R41", "F*"]

[[grant]]
subjects = ["reporter"]
act_as = ["group:finance"]
run_modules = ["report-*"]
"#,
        )
        .unwrap();
        let reporter = caller("reporter", &[]);
        assert!(policy.may_act_as(&reporter, &user("F7")));
        assert!(policy.may_run(&reporter, &user("R41"), &module("report-daily")));
        assert!(!policy.may_run(&reporter, &user("R41"), &module("100000")));
        assert!(!policy.may_act_as(&reporter, &user("R42")));
    }

    #[test]
    fn errors_name_the_file_line_and_problem() {
        let error = Policy::parse(
            "p.toml",
            "[[grant]]\ngroups = [\"x\"]\nread_sessions = \"sometimes\"\n",
        )
        .unwrap_err();
        assert_eq!(error.line, Some(3), "{error}");
        assert!(
            error.to_string().starts_with("policy p.toml, line 3: "),
            "{error}"
        );
        assert!(error.problem.contains("sometimes"), "{error}");

        let error =
            Policy::parse("p.toml", "\n\n[[grant]]\nread_sessions = \"any\"\n").unwrap_err();
        assert_eq!(error.line, Some(3), "{error}");
        assert!(error.problem.contains("subjects"), "{error}");

        let error = Policy::parse(
            "p.toml",
            "[[grant]]\nsubjects = [\"a\"]\nact_as = [\"group:x\"]\n",
        )
        .unwrap_err();
        assert!(error.problem.contains("\"x\""), "{error}");

        let error =
            Policy::parse("p.toml", "[[grant]]\nsubjects = [\"a\"]\nwrite = true\n").unwrap_err();
        assert_eq!(error.line, Some(3), "{error}");
        assert!(error.problem.contains("write"), "{error}");
    }
}
