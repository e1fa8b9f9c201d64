//! The pair protocol: the sides a pair measures, one side's measurement,
//! and the pairs of one measurement (alternating order, the load rule).

use std::time::Instant;

use tonic::transport::Channel;

use super::Bench;
use crate::Result;
use crate::child::{self, Server};
use crate::load::{self, Bearer, Workload};
use crate::machine::{CpuUse, Sample};
use crate::report::{Measurement, Pair, SideResult, Spec};

/// One side of a pair.
pub(super) enum Side<'a> {
    /// A load of `workload` against `server`.
    Grpc {
        label: &'static str,
        server: &'a Server,
        workload: Workload,
    },
    /// A load of `workload` against `server`, every call carrying
    /// `bearer`.
    Authenticated {
        label: &'static str,
        server: &'a Server,
        workload: Workload,
        bearer: &'a Bearer,
    },
    /// A load of `workload` spread over the replicas `servers` (their
    /// connections alternate; their CPU is summed), on the database server
    /// `database` (a local pid, whose CPU is not counted as other load).
    Replicas {
        label: &'static str,
        servers: &'a [Server],
        database: Option<u32>,
        workload: Workload,
    },
    /// The direct spawn loop of `program`, as a child.
    SpawnLoop {
        label: &'static str,
        program: String,
    },
}

impl Bench {
    fn connections(&self, inflight: usize) -> usize {
        self.options.connections.clamp(1, inflight.max(1))
    }

    /// Measures one load side once: `inflight` requests over connections to
    /// `servers`, which alternate (replica 1, replica 2, replica 1, …; at
    /// least one connection each), with the CPU of all of `servers` summed;
    /// with `bearer`, every call carries it.
    async fn grpc_side(
        &self,
        label: &str,
        servers: &[Server],
        database: Option<u32>,
        workload: &Workload,
        bearer: Option<&Bearer>,
        inflight: usize,
    ) -> Result<SideResult> {
        let warmup = self.options.warmup();
        let duration = self.options.duration();
        let per_server = self.connections(inflight).div_ceil(servers.len()).max(1);
        let mut by_server = Vec::with_capacity(servers.len());
        for server in servers {
            by_server.push(server.connect(per_server).await?);
        }
        let channels: Vec<Channel> = (0..per_server)
            .flat_map(|i| by_server.iter().map(move |channels| channels[i].clone()))
            .collect();
        let ops = (0..inflight)
            .map(|i| workload.op(i, channels[i % channels.len()].clone(), bearer.cloned()))
            .collect();
        let pids: Vec<u32> = servers.iter().map(Server::pid).collect();
        let outcome =
            load::run(ops, warmup, duration, || Sample::take_all(&pids, database)).await?;
        let cpu = CpuUse::between(outcome.start_sample, outcome.end_sample, duration);
        Ok(SideResult {
            label: label.to_owned(),
            rps: outcome.rate(),
            p50_us: outcome.percentile_us(50.0),
            p99_us: outcome.percentile_us(99.0),
            cpu_us_per_op: cpu.server_us / outcome.ops.max(1) as f64,
            switches_per_op: cpu.server_switches as f64 / outcome.ops.max(1) as f64,
            server_cores: cpu.server,
            generator_cores: cpu.generator,
            other_cores: cpu.other,
            database_cores: cpu.database,
        })
    }

    /// Measures one side once.
    async fn side(&self, side: &Side<'_>, inflight: usize) -> Result<SideResult> {
        let warmup = self.options.warmup();
        let duration = self.options.duration();
        match side {
            Side::Grpc {
                label,
                server,
                workload,
            } => {
                self.grpc_side(
                    label,
                    std::slice::from_ref(*server),
                    None,
                    workload,
                    None,
                    inflight,
                )
                .await
            }
            Side::Authenticated {
                label,
                server,
                workload,
                bearer,
            } => {
                self.grpc_side(
                    label,
                    std::slice::from_ref(*server),
                    None,
                    workload,
                    Some(*bearer),
                    inflight,
                )
                .await
            }
            Side::Replicas {
                label,
                servers,
                database,
                workload,
            } => {
                self.grpc_side(label, servers, *database, workload, None, inflight)
                    .await
            }
            Side::SpawnLoop { label, program } => {
                let args = child::args([
                    "spawn-loop".to_owned(),
                    "--inflight".to_owned(),
                    inflight.to_string(),
                    "--warmup".to_owned(),
                    warmup.as_secs_f64().to_string(),
                    "--duration".to_owned(),
                    duration.as_secs_f64().to_string(),
                    "--program".to_owned(),
                    program.clone(),
                ]);
                let before = Sample::take(None);
                let began = Instant::now();
                let stdout = child::run_to_end("the spawn loop", &args, self.server_core).await?;
                let after = Sample::take(None);
                let whole = CpuUse::between(before, after, began.elapsed());
                let json: serde_json::Value = serde_json::from_str(stdout.trim())
                    .map_err(|e| format!("the spawn loop printed {stdout:?}: {e}"))?;
                let number = |key: &str| {
                    json.get(key)
                        .and_then(serde_json::Value::as_f64)
                        .ok_or_else(|| format!("the spawn loop's output lacks {key}"))
                };
                let ops = number("ops")?;
                let elapsed = number("elapsed_s")?;
                let cpu_us = number("cpu_us")?;
                Ok(SideResult {
                    label: (*label).to_owned(),
                    rps: ops / elapsed,
                    p50_us: number("p50_us")?,
                    p99_us: number("p99_us")?,
                    cpu_us_per_op: cpu_us / ops.max(1.0),
                    switches_per_op: 0.0,
                    server_cores: cpu_us / 1e6 / elapsed,
                    // The child's CPU is in this process's (waited-for
                    // children), so `whole.other` excludes it.
                    generator_cores: 0.0,
                    other_cores: whole.other,
                    database_cores: 0.0,
                })
            }
        }
    }

    /// Runs the pairs of one measurement.
    pub(super) async fn pairs(
        &self,
        scenario: &str,
        inflight: usize,
        sides: &[Side<'_>],
        spec: Spec,
        extra: Vec<(String, String)>,
    ) -> Result<Measurement> {
        let wanted = self.options.pairs();
        let mut pairs: Vec<Pair> = Vec::new();
        for attempt in 0..self.max_attempts() {
            if pairs.iter().filter(|p| p.kept).count() >= wanted {
                break;
            }
            let mut order: Vec<usize> = (0..sides.len()).collect();
            if attempt % 2 == 1 {
                order.reverse();
            }
            let mut results: Vec<Option<SideResult>> = vec![None; sides.len()];
            for &index in &order {
                results[index] = Some(self.side(&sides[index], inflight).await?);
            }
            let sides_done: Vec<SideResult> = results.into_iter().flatten().collect();
            let mut pair = Pair {
                sides: sides_done,
                kept: true,
            };
            pair.kept = pair.other_cores() <= self.options.max_other_load;
            print_pair(inflight, pairs.len() + 1, &pair, &spec);
            pairs.push(pair);
        }
        let noisy = !pairs.iter().any(|p| p.kept);
        if noisy {
            println!(
                "   no pair of {scenario} inflight={inflight} passed the load rule: using all \
                 of them (noisy)"
            );
        }
        Ok(Measurement {
            scenario: scenario.to_owned(),
            inflight,
            replicas: None,
            variant: None,
            spec,
            pairs,
            noisy,
            extra,
        })
    }
}

fn print_pair(inflight: usize, number: usize, pair: &Pair, spec: &Spec) {
    let sides: Vec<String> = pair
        .sides
        .iter()
        .map(|s| {
            format!(
                "{} {:.0}/s p50 {:.1} p99 {:.1} us, cpu {:.1} us/op, {:.1} switches/op ({:.2} \
                 cores, generator {:.2}{})",
                s.label,
                s.rps,
                s.p50_us,
                s.p99_us,
                s.cpu_us_per_op,
                s.switches_per_op,
                s.server_cores,
                s.generator_cores,
                if s.database_cores > 0.0 {
                    format!(", postgres {:.2}", s.database_cores)
                } else {
                    String::new()
                }
            )
        })
        .collect();
    println!(
        "   inflight={inflight} pair {number}: {} | {} {:.3} | other load {:.2} cores: {}",
        sides.join(" | "),
        spec.headline.describe(),
        spec.headline.of(pair),
        pair.other_cores(),
        if pair.kept { "kept" } else { "DISCARDED" }
    );
}
