//! `auth_get_session_user` and `auth_user_context`: what authentication
//! costs. The baseline side is sessiond without authentication; the
//! measured side is sessiond authenticating its callers (static tokens and
//! JWTs both accepted) and enforcing an access policy under which the
//! caller may read every session and act as the user it pushes. Each runs
//! twice per number in flight: every call carrying the static token, then
//! the JWT.

use std::sync::Arc;
use std::time::Instant;

use super::pairs::Side;
use super::setup::{open_sessions, start_sessions};
use super::{Bench, auth_spec};
use crate::Result;
use crate::credentials::Credentials;
use crate::load::{Bearer, Workload};
use crate::report::Report;

/// The credentials each scenario runs with, in order: the variant's name
/// (in the table and the `BENCH` line) and the measured side's label.
const VARIANTS: [(&str, &str); 2] = [
    ("token", "sessiond, static token"),
    ("jwt", "sessiond, JWT"),
];

impl Bench {
    /// `auth_get_session_user` (GetSessionUser of a random session of a
    /// table created through gRPC) or `auth_user_context` (push+pop in one
    /// session per worker), without and with authentication.
    pub(super) async fn auth(&self, name: &str, report: &mut Report) -> Result<()> {
        let credentials = Credentials::create(&self.path(name))?;
        println!(
            "   credentials: a static token of {} bytes, an ES256 JWT of {} bytes; the \
             authenticated server accepts both",
            credentials.static_token.len(),
            credentials.jwt.len()
        );
        let token = Bearer::new(&credentials.static_token)?;
        let jwt = Bearer::new(&credentials.jwt)?;
        let plain = self
            .start_sessiond(&self.path(&format!("{name}.db")))
            .await?;
        let secured = self
            .start_sessiond_authenticating(&self.path(&format!("{name}-auth.db")), &credentials)
            .await?;
        let (plain_load, secured_load, extra) = if name == "auth_get_session_user" {
            let count = self.options.sessions();
            let began = Instant::now();
            let plain_ids = start_sessions(&plain, count, None).await?;
            let secured_ids = start_sessions(&secured, count, Some(&token)).await?;
            println!(
                "   {count} sessions created through StartSession on each server in {:.1} s",
                began.elapsed().as_secs_f64()
            );
            (
                Workload::GetSessionUser {
                    ids: plain_ids.into(),
                },
                Workload::GetSessionUser {
                    ids: secured_ids.into(),
                },
                vec![("sessions".to_owned(), count.to_string())],
            )
        } else {
            let count = self.max_inflight();
            let plain_sessions: Arc<[i64]> =
                open_sessions(&plain, count, "auth", None).await?.into();
            let secured_sessions: Arc<[i64]> = open_sessions(&secured, count, "auth", Some(&token))
                .await?
                .into();
            (
                Workload::PushPop {
                    sessions: plain_sessions,
                },
                Workload::PushPop {
                    sessions: secured_sessions,
                },
                Vec::new(),
            )
        };
        for ((variant, label), bearer) in VARIANTS.into_iter().zip([&token, &jwt]) {
            for &inflight in &self.options.inflight {
                let sides = [
                    Side::Grpc {
                        label: "sessiond, no auth",
                        server: &plain,
                        workload: plain_load.clone(),
                    },
                    Side::Authenticated {
                        label,
                        server: &secured,
                        workload: secured_load.clone(),
                        bearer,
                    },
                ];
                let mut measurement = self
                    .pairs(name, inflight, &sides, auth_spec(), extra.clone())
                    .await?;
                measurement.variant = Some(variant);
                report.measurements.push(measurement);
            }
        }
        plain.stop().await?;
        secured.stop().await?;
        Ok(())
    }
}
