//! `open_close`: open+close of clientless sessions, anchored by the raw
//! SQLite write rates, with the durable floor as a third side.

use super::pairs::Side;
use super::{Bench, throughput_spec};
use crate::load::Workload;
use crate::report::Report;
use crate::{Result, store};

/// Open+close pairs per transaction in the grouped raw SQLite rate: what
/// 64 in flight can put into one commit at most (each has one write
/// outstanding, and an open+close is two writes).
const RAW_GROUP: u32 = 32;

impl Bench {
    /// `open_close`, with the raw SQLite rates measured first: one
    /// open+close per transaction (the anchor), and [`RAW_GROUP`]; the
    /// durable floor is each pair's third side.
    pub(super) async fn open_close(&self, report: &mut Report) -> Result<()> {
        let mut raw = Vec::new();
        for (per_transaction, name) in [(1, "raw.db"), (RAW_GROUP, "raw_group.db")] {
            let rate = store::raw_write_rate(
                &self.path(name),
                per_transaction,
                self.options.warmup(),
                self.options.duration(),
            )
            .await?;
            println!(
                "   raw SQLite, {} insert + update by key per transaction: {:.0} pairs/s \
                 ({} pairs), {:.1} us CPU per pair",
                rate.per_transaction, rate.per_second, rate.pairs, rate.cpu_us
            );
            raw.push(rate);
        }
        let (raw, raw_group) = (raw[0], raw[1]);
        report.raw_store = Some(raw);
        report.raw_group = Some(raw_group);
        let baseline = self.start_baseline().await?;
        let sessiond = self.start_sessiond(&self.path("open_close.db")).await?;
        let floor = self.start_floor("open_close.log").await?;
        for &inflight in &self.options.inflight {
            let sides = [
                Side::Grpc {
                    label: "baseline",
                    server: &baseline,
                    workload: Workload::OpenClose,
                },
                Side::Grpc {
                    label: "sessiond",
                    server: &sessiond,
                    workload: Workload::OpenClose,
                },
                Side::Grpc {
                    label: "durable floor",
                    server: &floor,
                    workload: Workload::OpenClose,
                },
            ];
            let spec = throughput_spec(inflight, 0.50);
            let mut measurement = self
                .pairs("open_close", inflight, &sides, spec, Vec::new())
                .await?;
            let multiple = measurement.side(1).rps / raw.per_second;
            measurement.extra = vec![
                ("raw_store_tps".to_owned(), format!("{:.0}", raw.per_second)),
                ("store_multiple".to_owned(), format!("{multiple:.2}")),
                (
                    "raw_group_tps".to_owned(),
                    format!("{:.0}", raw_group.per_second),
                ),
                (
                    "raw_group_cpu_us".to_owned(),
                    format!("{:.1}", raw_group.cpu_us),
                ),
            ];
            measurement.extra.extend(measurement.floor_fields());
            report.measurements.push(measurement);
        }
        baseline.stop().await?;
        sessiond.stop().await?;
        floor.stop().await?;
        Ok(())
    }
}
