//! `tls_get_session_user`: what TLS itself costs `GetSessionUser`, with no
//! bound. Two measurements per number in flight: `baseline`, the
//! empty-handler baseline over TLS against the same over plain TCP (TLS's
//! own cost); `sessiond`, sessiond over TLS (no authentication) against the
//! baseline over TLS (sessiond's ratio when both pay for TLS, to compare
//! with `get_session_user`'s).

use std::sync::Arc;
use std::time::Instant;

use super::pairs::Side;
use super::setup::start_sessions;
use super::{Bench, cost_spec};
use crate::Result;
use crate::credentials::TlsFiles;
use crate::load::Workload;
use crate::report::Report;

impl Bench {
    /// `tls_get_session_user`: the baseline without and with TLS, then
    /// sessiond with TLS against the baseline with TLS.
    pub(super) async fn tls_get_session_user(&self, report: &mut Report) -> Result<()> {
        let name = "tls_get_session_user";
        let tls = TlsFiles::create(&self.path(name))?;
        let baseline = self.start_baseline().await?;
        let baseline_tls = self.start_baseline_tls(&tls).await?;
        let sessiond_tls = self
            .start_sessiond_tls(&self.path(&format!("{name}.db")), &tls)
            .await?;
        let count = self.options.sessions();
        let began = Instant::now();
        let ids: Arc<[i64]> = start_sessions(&sessiond_tls, count, None).await?.into();
        println!(
            "   {count} sessions created through StartSession (over TLS) in {:.1} s",
            began.elapsed().as_secs_f64()
        );
        let workload = Workload::GetSessionUser { ids };
        let extra = vec![("sessions".to_owned(), count.to_string())];
        for variant in ["baseline", "sessiond"] {
            for &inflight in &self.options.inflight {
                let sides = if variant == "baseline" {
                    [
                        Side::Grpc {
                            label: "baseline",
                            server: &baseline,
                            workload: workload.clone(),
                        },
                        Side::Grpc {
                            label: "baseline, TLS",
                            server: &baseline_tls,
                            workload: workload.clone(),
                        },
                    ]
                } else {
                    [
                        Side::Grpc {
                            label: "baseline, TLS",
                            server: &baseline_tls,
                            workload: workload.clone(),
                        },
                        Side::Grpc {
                            label: "sessiond, TLS",
                            server: &sessiond_tls,
                            workload: workload.clone(),
                        },
                    ]
                };
                let mut measurement = self
                    .pairs(name, inflight, &sides, cost_spec(inflight), extra.clone())
                    .await?;
                measurement.variant = Some(variant);
                report.measurements.push(measurement);
            }
        }
        baseline.stop().await?;
        baseline_tls.stop().await?;
        sessiond_tls.stop().await?;
        Ok(())
    }
}
