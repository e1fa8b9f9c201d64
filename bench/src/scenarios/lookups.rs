//! `get_session_user` and `get_session_info`: lookups on a table of
//! sessions created through gRPC.

use std::sync::Arc;
use std::time::Instant;

use super::pairs::Side;
use super::setup::start_sessions;
use super::{Bench, lookup_spec};
use crate::Result;
use crate::load::Workload;
use crate::report::Report;

impl Bench {
    /// `get_session_user` / `get_session_info` over a table of sessions
    /// created through gRPC.
    pub(super) async fn lookups(&self, name: &str, report: &mut Report) -> Result<()> {
        let baseline = self.start_baseline().await?;
        let sessiond = self
            .start_sessiond(&self.path(&format!("{name}.db")))
            .await?;
        let count = self.options.sessions();
        let began = Instant::now();
        let ids: Arc<[i64]> = start_sessions(&sessiond, count, None).await?.into();
        println!(
            "   {count} sessions created through StartSession in {:.1} s",
            began.elapsed().as_secs_f64()
        );
        for &inflight in &self.options.inflight {
            let workload = if name == "get_session_user" {
                Workload::GetSessionUser { ids: ids.clone() }
            } else {
                Workload::GetSessionInfo { ids: ids.clone() }
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
                    workload,
                },
            ];
            let spec = lookup_spec(name, inflight);
            let extra = vec![("sessions".to_owned(), count.to_string())];
            report
                .measurements
                .push(self.pairs(name, inflight, &sides, spec, extra).await?);
        }
        baseline.stop().await?;
        sessiond.stop().await?;
        Ok(())
    }
}
