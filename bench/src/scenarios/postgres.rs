//! `pg_get_session_user` and `pg_open_close`: sessiond on PostgreSQL, with
//! one replica and with two.

use std::time::Instant;

use super::pairs::Side;
use super::setup::start_sessions;
use super::{Bench, lookup_spec, throughput_spec};
use crate::Result;
use crate::load::Workload;
use crate::pg::Postgres;
use crate::report::Report;
use crate::serve::NODE_ID;

/// The replica counts of the `pg_*` scenarios.
const PG_REPLICAS: [usize; 2] = [1, 2];

impl Bench {
    /// `pg_get_session_user` / `pg_open_close`: the SQLite scenario's
    /// workload, spec and baseline, against sessiond on a fresh PostgreSQL
    /// database, with one replica and then two.
    pub(super) async fn pg(
        &self,
        name: &str,
        postgres: &Postgres,
        report: &mut Report,
    ) -> Result<()> {
        for replicas in PG_REPLICAS {
            let database = postgres.fresh_database(&format!("{name}_{replicas}"))?;
            let baseline = self.start_baseline().await?;
            let mut servers = Vec::with_capacity(replicas);
            for replica in 1..=replicas {
                servers.push(
                    self.start_sessiond_on(&database, &format!("{NODE_ID}-{replica}"))
                        .await?,
                );
            }
            let mut extra = Vec::new();
            let workload = if name == "pg_get_session_user" {
                // The sessions are created evenly over the replicas.
                let count = self.options.sessions();
                let began = Instant::now();
                let mut ids = Vec::new();
                for (index, server) in servers.iter().enumerate() {
                    let share = count / replicas as u64
                        + u64::from((index as u64) < count % replicas as u64);
                    ids.extend(start_sessions(server, share, None).await?);
                }
                println!(
                    "   {replicas} replica(s): {count} sessions created through StartSession in \
                     {:.1} s",
                    began.elapsed().as_secs_f64()
                );
                extra.push(("sessions".to_owned(), count.to_string()));
                Workload::GetSessionUser { ids: ids.into() }
            } else {
                println!("   {replicas} replica(s)");
                Workload::OpenClose
            };
            for &inflight in &self.options.inflight {
                let sides = [
                    Side::Replicas {
                        label: "baseline",
                        servers: std::slice::from_ref(&baseline),
                        database: postgres.postmaster_pid(),
                        workload: workload.clone(),
                    },
                    Side::Replicas {
                        label: "sessiond",
                        servers: &servers,
                        database: postgres.postmaster_pid(),
                        workload: workload.clone(),
                    },
                ];
                let spec = if name == "pg_get_session_user" {
                    lookup_spec("get_session_user", inflight)
                } else {
                    throughput_spec(inflight, 0.50)
                };
                let mut measurement = self
                    .pairs(name, inflight, &sides, spec, extra.clone())
                    .await?;
                measurement.replicas = Some(replicas);
                report.measurements.push(measurement);
            }
            baseline.stop().await?;
            for server in servers {
                server.stop().await?;
            }
        }
        Ok(())
    }
}
