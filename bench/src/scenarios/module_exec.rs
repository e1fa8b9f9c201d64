//! `module_exec`: open+value of an exec module, against spawning its
//! program directly.

use std::sync::Arc;

use super::Bench;
use super::pairs::Side;
use super::setup::open_sessions;
use crate::Result;
use crate::load::Workload;
use crate::report::{Bound, Figure, Report, Spec};
use crate::serve::EXEC_MODULE;

impl Bench {
    /// `module_exec`: open+value of an exec module running `true`, against
    /// spawning `true` directly.
    pub(super) async fn module_exec(&self, report: &mut Report) -> Result<()> {
        let sessiond = self.start_sessiond(&self.path("module_exec.db")).await?;
        let sessions: Arc<[i64]> = open_sessions(&sessiond, self.max_inflight(), "exec", None)
            .await?
            .into();
        for &inflight in &self.options.inflight {
            let sides = [
                Side::SpawnLoop {
                    label: "spawn",
                    program: "true".to_owned(),
                },
                Side::Grpc {
                    label: "sessiond",
                    server: &sessiond,
                    workload: Workload::Module {
                        sessions: sessions.clone(),
                        module_id: EXEC_MODULE.to_owned(),
                    },
                },
            ];
            let spec = Spec {
                headline: Figure::Throughput,
                targets: vec![(Figure::Throughput, Bound::AtLeast(0.80))],
            };
            report.measurements.push(
                self.pairs("module_exec", inflight, &sides, spec, Vec::new())
                    .await?,
            );
        }
        sessiond.stop().await?;
        Ok(())
    }
}
