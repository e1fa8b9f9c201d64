//! `module_inproc`: open+value of the in-process no-op module.

use std::sync::Arc;

use super::Bench;
use super::pairs::Side;
use super::setup::open_sessions;
use crate::Result;
use crate::load::Workload;
use crate::report::{Bound, Figure, Report, Spec};
use crate::serve::NOOP_MODULE;

impl Bench {
    /// `module_inproc`: open+value of the no-op module, against the baseline
    /// and against one `GetSessionUser` on the same sessiond.
    pub(super) async fn module_inproc(&self, report: &mut Report) -> Result<()> {
        let baseline = self.start_baseline().await?;
        let sessiond = self.start_sessiond(&self.path("module_inproc.db")).await?;
        let sessions: Arc<[i64]> = open_sessions(&sessiond, self.max_inflight(), "mod", None)
            .await?
            .into();
        for &inflight in &self.options.inflight {
            let workload = Workload::Module {
                sessions: sessions.clone(),
                module_id: NOOP_MODULE.to_owned(),
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
                Side::Grpc {
                    label: "sessiond GetSessionUser",
                    server: &sessiond,
                    workload: Workload::GetSessionUser {
                        ids: sessions.clone(),
                    },
                },
            ];
            let spec = Spec {
                headline: Figure::P50OverReference,
                targets: if inflight == 1 {
                    vec![(Figure::P50OverReference, Bound::AtMost(3.0))]
                } else {
                    Vec::new()
                },
            };
            let mut measurement = self
                .pairs("module_inproc", inflight, &sides, spec, Vec::new())
                .await?;
            let reference = measurement.side(2);
            measurement.extra = vec![
                (
                    "ref_get_session_user_p50_us".to_owned(),
                    format!("{:.1}", reference.p50_us),
                ),
                (
                    "ref_get_session_user_rps".to_owned(),
                    format!("{:.0}", reference.rps),
                ),
            ];
            report.measurements.push(measurement);
        }
        baseline.stop().await?;
        sessiond.stop().await?;
        Ok(())
    }
}
