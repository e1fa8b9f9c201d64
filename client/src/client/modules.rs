//! `SessionService` module calls: starting a module run in a clientless
//! session and reading its return value.

use std::time::Duration;

use sessiond_proto::v1 as pb;

use super::{Call, Client};
use crate::error::{ErrorContext, Result};
use crate::ids::SessionId;
use crate::module::{self, ModuleRun};
use crate::retry::CallKind;
use crate::time::to_proto_duration;
use crate::value;

impl Client {
    /// Starts a run of `module_id` in an open clientless session (the seed's
    /// `open_module`), handing it `parameters` (a JSON object, or `null`
    /// for none); returns as soon as the run is recorded as running.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for
    /// parameters that are not an object (raised before sending) or a bad
    /// module id; [`Error::ModuleNotFound`](crate::Error::ModuleNotFound);
    /// [`Error::SessionNotFound`](crate::Error::SessionNotFound);
    /// [`Error::SessionNotClientless`](crate::Error::SessionNotClientless),
    /// [`Error::SessionClosing`](crate::Error::SessionClosing) or
    /// [`Error::SessionEnded`](crate::Error::SessionEnded) when the session
    /// cannot run modules;
    /// [`Error::TooManyRunningModules`](crate::Error::TooManyRunningModules).
    pub async fn open_module(
        &self,
        session_id: SessionId,
        module_id: &str,
        parameters: serde_json::Value,
    ) -> Result<ModuleRun> {
        let parameters = value::parameters(parameters)?;
        let call = Call::new(
            "OpenModule",
            CallKind::Write,
            ErrorContext {
                module_id: Some(module_id),
                ..ErrorContext::session(session_id)
            },
        );
        let request = pb::OpenModuleRequest {
            session_id: session_id.get(),
            module_id: module_id.to_owned(),
            parameters,
        };
        let response = self
            .unary(call, request, |r| {
                let mut c = self.sessions();
                async move { c.open_module(r).await }
            })
            .await?;
        ModuleRun::try_from(response)
    }

    /// The return value of the latest run of `module_id` in a session,
    /// waiting up to `timeout` for it to conclude (the seed's
    /// `get_return_value`; `Duration::ZERO`: do not wait). The call's
    /// deadline is extended by `timeout`.
    ///
    /// # Errors
    /// [`Error::ModuleFailed`](crate::Error::ModuleFailed) when the run failed
    /// or was cancelled, with the failure's kind, message, exit code, signal
    /// and stderr tail;
    /// [`Error::ModuleStillRunning`](crate::Error::ModuleStillRunning) when it
    /// did not conclude in time (it goes on running);
    /// [`Error::ModuleNotOpened`](crate::Error::ModuleNotOpened);
    /// [`Error::SessionNotFound`](crate::Error::SessionNotFound);
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for a
    /// timeout over one hour.
    pub async fn get_return_value(
        &self,
        session_id: SessionId,
        module_id: &str,
        timeout: Duration,
    ) -> Result<serde_json::Value> {
        let call = Call::new(
            "GetReturnValue",
            CallKind::Read,
            ErrorContext {
                module_id: Some(module_id),
                ..ErrorContext::session(session_id)
            },
        )
        .extra_time(timeout);
        let request = pb::GetReturnValueRequest {
            session_id: session_id.get(),
            module_id: module_id.to_owned(),
            timeout: Some(to_proto_duration(timeout)),
        };
        let response = self
            .unary(call, request, |r| {
                let mut c = self.sessions();
                async move { c.get_return_value(r).await }
            })
            .await?;
        module::return_value(session_id, module_id, response)
    }
}
