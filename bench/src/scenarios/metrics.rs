//! `metrics`: what counting the metrics costs — `GetSessionUser` on
//! sessiond with its admin listener and metrics (as deployed, and as every
//! other scenario runs it) against the same build without them, at every
//! number in flight.

use std::sync::Arc;

use super::Bench;
use super::pairs::Side;
use super::setup::start_sessions;
use super::throughput_spec;
use crate::Result;
use crate::load::Workload;
use crate::report::Report;

impl Bench {
    /// `metrics`: GetSessionUser without, then with, the metrics.
    pub(super) async fn metrics(&self, report: &mut Report) -> Result<()> {
        let without = self
            .start_sessiond_without_metrics(&self.path("metrics_off.db"))
            .await?;
        let with = self.start_sessiond(&self.path("metrics_on.db")).await?;
        let count = self.options.sessions();
        let without_ids: Arc<[i64]> = start_sessions(&without, count, None).await?.into();
        let with_ids: Arc<[i64]> = start_sessions(&with, count, None).await?.into();
        for &inflight in &self.options.inflight {
            let sides = [
                Side::Grpc {
                    label: "sessiond, no metrics",
                    server: &without,
                    workload: Workload::GetSessionUser {
                        ids: without_ids.clone(),
                    },
                },
                Side::Grpc {
                    label: "sessiond, metrics",
                    server: &with,
                    workload: Workload::GetSessionUser {
                        ids: with_ids.clone(),
                    },
                },
            ];
            let extra = vec![("sessions".to_owned(), count.to_string())];
            report.measurements.push(
                self.pairs(
                    "metrics",
                    inflight,
                    &sides,
                    throughput_spec(inflight, 0.95),
                    extra,
                )
                .await?,
            );
        }
        without.stop().await?;
        with.stop().await?;
        Ok(())
    }
}
