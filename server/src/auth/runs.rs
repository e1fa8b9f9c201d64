//! Module runs' own credentials: each run gets a bearer token
//! (`SESSIOND_TOKEN`) that acts for the caller that opened the module, on
//! the run's session only, until the run concludes. Tokens live in this
//! process's memory only: never stored, never logged.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::model::SessionId;
use crate::principal::{Identity, Method, Principal};

/// The prefix of every run token, so that the authenticating layer knows
/// where to look it up.
pub const RUN_TOKEN_PREFIX: &str = "sdr_";

/// The run credentials issued and not yet revoked. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct RunCredentials {
    issued: Arc<Mutex<HashMap<String, Arc<Identity>>>>,
}

/// A run's credential: valid while this value lives (the runner drops it
/// when the run concludes).
pub struct RunCredential {
    token: Secret,
    issued: Arc<Mutex<HashMap<String, Arc<Identity>>>>,
}

/// A secret string whose `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that must pass it on.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl RunCredentials {
    /// A credential for a run in `session` opened by `opener`, or `None`
    /// when the server runs without authentication (then modules need no
    /// credential).
    #[must_use]
    pub fn issue(&self, opener: &Principal, session: SessionId) -> Option<RunCredential> {
        let opener = opener.identity()?;
        let mut bytes = [0_u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random number generator");
        let token = format!("{RUN_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        let identity = Identity {
            subject: opener.subject.clone(),
            groups: opener.groups.clone(),
            method: Method::ModuleRun,
            confined_to: Some(session),
        };
        self.issued
            .lock()
            .expect("run credentials lock")
            .insert(token.clone(), Arc::new(identity));
        Some(RunCredential {
            token: Secret(token),
            issued: Arc::clone(&self.issued),
        })
    }

    /// The identity a run token stands for, while its run lasts.
    #[must_use]
    pub fn verify(&self, token: &str) -> Option<Arc<Identity>> {
        self.issued
            .lock()
            .expect("run credentials lock")
            .get(token)
            .cloned()
    }
}

impl RunCredential {
    /// The token, to hand to the module.
    #[must_use]
    pub fn token(&self) -> &Secret {
        &self.token
    }
}

impl Drop for RunCredential {
    fn drop(&mut self) {
        self.issued
            .lock()
            .expect("run credentials lock")
            .remove(&self.token.0);
    }
}

impl fmt::Debug for RunCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunCredential").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opener() -> Principal {
        Principal::from(Identity {
            subject: "billing".to_owned(),
            groups: vec!["services".to_owned()],
            method: Method::StaticToken,
            confined_to: None,
        })
    }

    #[test]
    fn a_run_token_acts_for_its_opener_on_its_session_until_dropped() {
        let runs = RunCredentials::default();
        let session = SessionId::parse("session_id", 7).unwrap();
        let credential = runs.issue(&opener(), session).unwrap();
        let token = credential.token().expose().to_owned();
        assert!(token.starts_with(RUN_TOKEN_PREFIX));
        let identity = runs.verify(&token).unwrap();
        assert_eq!(identity.subject, "billing");
        assert_eq!(identity.groups, ["services"]);
        assert_eq!(identity.method, Method::ModuleRun);
        assert_eq!(identity.confined_to, Some(session));
        assert!(!format!("{credential:?}").contains(&token[4..]));
        drop(credential);
        assert!(
            runs.verify(&token).is_none(),
            "revoked when the run concludes"
        );
    }

    #[test]
    fn no_credential_without_authentication() {
        let runs = RunCredentials::default();
        let session = SessionId::parse("session_id", 7).unwrap();
        assert!(runs.issue(&Principal::Anonymous, session).is_none());
    }
}
