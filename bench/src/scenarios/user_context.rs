//! `user_context`: push+pop of user contexts, with the durable floor as a
//! third side.

use std::sync::Arc;

use super::pairs::Side;
use super::setup::open_sessions;
use super::{Bench, throughput_spec};
use crate::Result;
use crate::load::Workload;
use crate::report::Report;

impl Bench {
    /// `user_context`: push+pop in one session per worker; the durable
    /// floor is each pair's third side.
    pub(super) async fn user_context(&self, report: &mut Report) -> Result<()> {
        let baseline = self.start_baseline().await?;
        let sessiond = self.start_sessiond(&self.path("user_context.db")).await?;
        let floor = self.start_floor("user_context.log").await?;
        let sessions: Arc<[i64]> = open_sessions(&sessiond, self.max_inflight(), "uc", None)
            .await?
            .into();
        for &inflight in &self.options.inflight {
            let workload = Workload::PushPop {
                sessions: sessions.clone(),
            };
            let sides = [
                Side::Grpc {
                    label: "baseline",
                    server: &baseline,
                    workload: workload.clone(),
                },
                Side::Grpc {
                    label: "sessiond",
                    server: &sessiond,
                    workload: workload.clone(),
                },
                Side::Grpc {
                    label: "durable floor",
                    server: &floor,
                    workload,
                },
            ];
            let spec = throughput_spec(inflight, 0.50);
            let mut measurement = self
                .pairs("user_context", inflight, &sides, spec, Vec::new())
                .await?;
            measurement.extra = measurement.floor_fields();
            report.measurements.push(measurement);
        }
        baseline.stop().await?;
        sessiond.stop().await?;
        floor.stop().await?;
        Ok(())
    }
}
