//! The interceptor that adds `authorization: Bearer …` to every call when a
//! token is configured.

use std::fmt;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::error::{Error, Result};

/// Adds the configured bearer token to each request; does nothing without
/// one.
#[derive(Clone, Default)]
pub(crate) struct BearerToken {
    /// The whole header value (`Bearer TOKEN`), marked sensitive.
    header: Option<MetadataValue<Ascii>>,
}

impl BearerToken {
    /// A token to send with every call; `None` sends none.
    ///
    /// # Errors
    /// [`Error::Config`] when the token is empty or not printable ASCII.
    pub(crate) fn new(token: Option<&str>) -> Result<Self> {
        let Some(token) = token else {
            return Ok(Self::default());
        };
        let token = token.trim();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Config(
                "a bearer token must be non-empty printable ASCII without spaces".to_owned(),
            ));
        }
        let mut header: MetadataValue<Ascii> = format!("Bearer {token}").parse().map_err(|_| {
            Error::Config("the bearer token is not a valid header value".to_owned())
        })?;
        header.set_sensitive(true);
        Ok(Self {
            header: Some(header),
        })
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(header) = &self.header {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
        }
        Ok(request)
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = if self.header.is_some() {
            "Some(<redacted>)"
        } else {
            "None"
        };
        f.debug_struct("BearerToken")
            .field("header", &format_args!("{shown}"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_token_is_sent_and_never_printed() {
        let mut auth = BearerToken::new(Some("s3cret")).unwrap();
        let request = auth.call(Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer s3cret"
        );
        assert!(!format!("{auth:?}").contains("s3cret"));
    }

    #[test]
    fn no_token_sends_no_header_and_bad_tokens_are_refused() {
        let mut none = BearerToken::new(None).unwrap();
        let request = none.call(Request::new(())).unwrap();
        assert!(request.metadata().get("authorization").is_none());
        assert!(matches!(BearerToken::new(Some("")), Err(Error::Config(_))));
        assert!(matches!(
            BearerToken::new(Some("two words")),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            BearerToken::new(Some("naïve")),
            Err(Error::Config(_))
        ));
    }
}
