//! `lookup_scale`: `GetSessionUser` on a small table against a large one.

use std::sync::Arc;
use std::time::Instant;

use super::Bench;
use super::pairs::Side;
use super::setup::{SETUP_CONCURRENCY, look_up_all};
use crate::load::Workload;
use crate::report::{Bound, Figure, Report, Spec};
use crate::{Result, store};

impl Bench {
    /// `lookup_scale`: `GetSessionUser` on a small and a large table, both
    /// seeded through sessiond's store before sessiond starts.
    pub(super) async fn lookup_scale(&self, report: &mut Report) -> Result<()> {
        let (small, large) = self.options.lookup_sizes();
        let mut servers = Vec::new();
        for (count, file) in [(small, "lookup_small.db"), (large, "lookup_large.db")] {
            let path = self.path(file);
            let began = Instant::now();
            store::seed_sessions(&path, count).await?;
            println!(
                "   {count} sessions created through the store in {:.1} s",
                began.elapsed().as_secs_f64()
            );
            let began = Instant::now();
            // A cache that holds the whole table (`--cached-sessions`): the
            // steady state of a server sized for its sessions.
            let cached =
                usize::try_from(count)?.max(sessiond::known_sessions::DEFAULT_CACHED_SESSIONS);
            servers.push(self.start_sessiond_caching(&path, cached).await?);
            println!(
                "   sessiond started on them in {:.1} s",
                began.elapsed().as_secs_f64()
            );
        }
        let ids = |count: u64| -> Arc<[i64]> { (1..=i64::try_from(count).unwrap_or(1)).collect() };
        let (small_ids, large_ids) = (ids(small), ids(large));
        // The steady state of a long-running server: every session has been
        // looked up once (the cold lookups' rate is reported too).
        let mut cold_rates = Vec::new();
        for (server, ids) in servers.iter().zip([&small_ids, &large_ids]) {
            let began = Instant::now();
            look_up_all(server, ids).await?;
            let rate = ids.len() as f64 / began.elapsed().as_secs_f64();
            println!(
                "   each of the {} sessions looked up once ({SETUP_CONCURRENCY} in flight): \
                 {rate:.0}/s",
                ids.len()
            );
            cold_rates.push(rate);
        }
        for &inflight in &self.options.inflight {
            let sides = [
                Side::Grpc {
                    label: "small table",
                    server: &servers[0],
                    workload: Workload::GetSessionUser {
                        ids: small_ids.clone(),
                    },
                },
                Side::Grpc {
                    label: "large table",
                    server: &servers[1],
                    workload: Workload::GetSessionUser {
                        ids: large_ids.clone(),
                    },
                },
            ];
            let spec = Spec {
                headline: Figure::P99,
                targets: vec![(Figure::P99, Bound::AtMost(1.2))],
            };
            let extra = vec![
                ("sessions_small".to_owned(), small.to_string()),
                ("sessions_large".to_owned(), large.to_string()),
                (
                    "first_lookup_rps_small".to_owned(),
                    format!("{:.0}", cold_rates[0]),
                ),
                (
                    "first_lookup_rps_large".to_owned(),
                    format!("{:.0}", cold_rates[1]),
                ),
            ];
            report.measurements.push(
                self.pairs("lookup_scale", inflight, &sides, spec, extra)
                    .await?,
            );
        }
        for server in servers {
            server.kill().await?;
        }
        Ok(())
    }
}
